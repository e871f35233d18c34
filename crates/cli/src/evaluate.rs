//! `captioner eval` and `captioner calibrate`: a model scored on a dataset split, and its
//! confidence fitted.

use std::process::ExitCode;

use super::args::{CalibrateArgs, EvalArgs};
use super::render::{Renderer, device, interrupt_token, load_captioner};

/// `captioner eval`: BLEU-1..4 and CIDEr-D on a split, the trust figures and object
/// hallucination (CHAIR).
pub fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let cancel = interrupt_token();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let mut renderer = Renderer::new(args.json, false);
    let report = captioner::jobs::evaluate::evaluate(
        &captioner,
        &args.dir,
        &captioner::paths::cache_dir(args.cache.as_deref()),
        &options,
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if args.store {
        captioner::jobs::models::store_evaluation(&captioner.model_dir, &args.dir, &report)?;
        eprintln!(
            "stored in {}",
            captioner
                .model_dir
                .join(captioner::model_dir::META_FILE)
                .display()
        );
    }
    let mix = if args.extra.is_empty() {
        None
    } else {
        let m = captioner::jobs::evaluate::evaluate_mix(
            &captioner,
            &args.dir,
            &captioner::paths::cache_dir(args.cache.as_deref()),
            &options,
            &args.extra,
            &mut |e| renderer.event(e),
            &cancel,
        )?;
        renderer.finish_bar();
        Some(m)
    };
    if args.json {
        match &mix {
            Some(m) => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"eval": report, "mix": m}))?
            ),
            None => println!("{}", serde_json::to_string_pretty(&report)?),
        }
    } else {
        println!(
            "{} split, {} images, {}: BLEU-1 {:.4}  BLEU-2 {:.4}  BLEU-3 {:.4}  BLEU-4 {:.4}  CIDEr-D {:.4}",
            report.split,
            report.images,
            if report.beam <= 1 {
                "greedy".to_string()
            } else {
                format!("beam {}", report.beam)
            },
            report.bleu[0],
            report.bleu[1],
            report.bleu[2],
            report.bleu[3],
            report.cider_d
        );
        println!("model: {}", captioner.model_dir.display());
        match &report.trust {
            Some(t) => {
                let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
                println!(
                    "confidence: AUROC {} (word probability {}) for telling the {} bad captions (per-photo CIDEr-D < {}) from the good",
                    f(t.auroc_confidence),
                    f(t.auroc_word_geomean),
                    t.bad,
                    captioner::trust::calibration::ACCEPTABLE_CIDER
                );
                println!(
                    "needs_review: {} flagged, precision {:.3}, recall {:.3}, good captions flagged {:.1}%",
                    t.review.flagged,
                    t.review.precision,
                    t.review.recall,
                    100.0 * t.review.good_flagged_rate
                );
            }
            None => {
                if let Some(note) = &captioner.trust_note {
                    println!("no confidence figures: {note}");
                }
            }
        }
        if let Some(c) = &report.chair {
            print_chair(&format!("{} split", report.split), c);
        }
        if !report.skipped.is_empty() {
            println!("skipped {} images", report.skipped.len());
        }
        if let Some(m) = &mix {
            print_mix(m);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The figures of a split mixed with extra photos (`eval --extra`, `calibrate --unfamiliar`).
fn print_mix(m: &captioner::jobs::calibrate::MixFigures) {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "{} split + {} extra photos ({} with bad captions): AUROC confidence {}  word probability {}  familiarity (extra vs split) {}",
        m.dev_photos,
        m.unfamiliar_photos,
        m.unfamiliar_bad,
        f(m.auroc_confidence),
        f(m.auroc_word_geomean),
        f(m.auroc_similarity_unfamiliar_vs_dev)
    );
    println!(
        "  with the extra photos weighted to half of the mix: AUROC confidence {}  word probability {}",
        f(m.auroc_confidence_balanced),
        f(m.auroc_word_geomean_balanced)
    );
    println!(
        "  needs_review: {:.0}% of the extra photos' bad captions, {:.1}% of the split's good captions; precision {:.3}",
        100.0 * m.unfamiliar_bad_flagged,
        100.0 * m.dev_good_flagged,
        m.review.precision
    );
    for p in &m.photos {
        println!("  {p}");
    }
    for c in &m.chair {
        print_chair(&c.folder.display().to_string(), &c.chair);
    }
    if let Some(c) = &m.chair_all_extra {
        print_chair(&format!("the {} extra folders together", m.chair.len()), c);
    }
}

/// The hallucination figures of one set of captions (the split, an extra folder).
fn print_chair(set: &str, c: &captioner::eval::chair::ChairReport) {
    println!(
        "hallucination on {set} ({}): {}",
        c.truth.describe(),
        c.all.summary()
    );
    if let Some(nf) = &c.not_flagged {
        println!("  captions not flagged for review: {}", nf.summary());
    }
}

/// `captioner calibrate`: fits the familiarity and the calibrated confidence.
pub fn calibrate(args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let cancel = interrupt_token();
    let device = device();
    let mut captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    let mut renderer = Renderer::new(args.json, false);
    let report = captioner::jobs::calibrate::calibrate(
        &mut captioner,
        &args.dir,
        &captioner::paths::cache_dir(args.cache.as_deref()),
        &options,
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "dev: {} photos, {} acceptable (per-photo CIDEr-D >= {})",
        report.dev_photos, report.dev_acceptable, report.acceptable_cider
    );
    println!(
        "AUROC on dev: confidence (fitted on the other half) {}  word probability {}",
        f(report.auroc_confidence_held_out),
        f(report.auroc_word_geomean)
    );
    for (name, a) in &report.auroc_signals {
        println!("  signal {name}: AUROC {}", f(*a));
    }
    let r = &report.review_dev;
    println!(
        "needs_review on dev: {} flagged, precision {:.3}, recall {:.3}, good captions flagged {:.1}%",
        r.flagged,
        r.precision,
        r.recall,
        100.0 * r.good_flagged_rate
    );
    println!(
        "familiarity: {:.3} ms per photo; all trust figures: {:.2} ms per photo; tag threshold {:.1}",
        report.familiarity_ms_per_photo,
        report.trust_ms_per_photo,
        report.calibration.tag_threshold
    );
    if let Some(m) = &report.mix {
        print_mix(m);
    }
    if options.write {
        println!("wrote the calibration into {}", report.model.display());
    }
    Ok(ExitCode::SUCCESS)
}
