//! `captioner models`.

use std::process::ExitCode;

use super::args::ModelsArgs;

/// `captioner models`: the shipped and trained models ([`captioner::jobs::models::list_all`]).
pub fn models(args: &ModelsArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .models_dir
        .clone()
        .unwrap_or_else(captioner::paths::trained_models_dir);
    let all = captioner::jobs::models::list_all(&dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    let figure = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"));
    println!(
        "{:<40} {:<14} {:<7} {:>6} {:>6} {:<20} {:>8} {:>8}  folder",
        "name", "dataset", "decoder", "vocab", "epochs", "trained", "BLEU-4", "CIDEr-D"
    );
    // A training run is one entry (its best model); its last epoch follows on a row of its
    // own, so that either can be named with --model.
    for m in all.iter().flat_map(|m| m.with_last()) {
        println!(
            "{:<40} {:<14} {:<7} {:>6} {:>6} {:<20} {:>8} {:>8}  {}",
            m.label(),
            m.dataset,
            m.decoder,
            m.vocab_size,
            m.epochs,
            m.created,
            figure(m.dev_bleu4),
            figure(m.dev_cider_d),
            m.dir.display()
        );
        if let Some(p) = &m.problem {
            println!("  problem: {p}");
        }
    }
    println!("trained models are kept in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
