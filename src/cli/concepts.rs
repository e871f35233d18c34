//! `captioner concepts`: (re)trains a model folder's concept detector and prints how well it
//! detects its words on dev.

use std::process::ExitCode;
use std::time::Instant;

use super::args::{ConceptsArgs, LabelsArg};
use super::render::{Renderer, device, interrupt_token};
use crate::concepts::train::{ConceptOptions, Labels};

/// `captioner concepts --model DIR [DATASET]`.
pub fn concepts(args: &ConceptsArgs) -> anyhow::Result<ExitCode> {
    let options = ConceptOptions {
        words: args.words,
        min_photos: args.min_photos,
        labels: match args.labels {
            LabelsArg::Any => Labels::Any,
            LabelsArg::Soft => Labels::Soft,
        },
        epochs: args.epochs,
        l2: args.l2,
        learning_rate: args.learning_rate,
        ..ConceptOptions::default()
    };
    let started = Instant::now();
    let cancel = interrupt_token();
    let device = device();
    let encoder = crate::pipeline::load_encoder(&device)?;
    let mut renderer = Renderer::new(args.json, false);
    let outcome = crate::jobs::concepts::concepts(
        &args.model,
        &args.dir,
        &crate::paths::cache_dir(args.cache.as_deref()),
        &encoder,
        &args.text.import_options(),
        &options,
        !args.dry_run,
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    let r = &outcome.report;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": args.model,
                "report": r,
                "seconds_total": started.elapsed().as_secs_f64(),
                "written": !args.dry_run,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} words from {} training photos; dev mAP {} over the {} words with a dev photo ({} dev photos)",
        r.words,
        r.train_photos,
        r.dev_map.map_or("-".to_string(), |m| format!("{m:.3}")),
        r.ranked.len(),
        r.dev_photos
    );
    println!(
        "trained in {:.1} s ({:.1} s in all, with reading the dataset and features)",
        r.seconds,
        started.elapsed().as_secs_f64()
    );
    let list = |rows: &[(String, f32, usize)]| {
        rows.iter()
            .map(|(w, ap, n)| format!("{w} {ap:.2} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("best detected (AP, dev photos): {}", list(r.best(10)));
    println!("worst detected (AP, dev photos): {}", list(&r.worst(10)));
    if !args.dry_run {
        println!("wrote the concept detector into {}", args.model.display());
    }
    Ok(ExitCode::SUCCESS)
}
