//! The commands that run the image encoder alone: `classify` and `features`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{ClassifyArgs, FeaturesArgs};
use super::render::{Renderer, device, exit_code, interrupt_token};
use captioner::encoder::ClassNames;
use captioner::features::FeatureCache;
use captioner::pipeline;

/// `captioner classify`: the top ImageNet classes of each image.
pub fn classify(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let names_path = captioner::paths::class_names();
    let names = ClassNames::load(&names_path)?;
    let mut failed = 0;
    let mut json = Vec::new();
    for path in &args.images {
        let result = encoder
            .preprocess_file(path)
            .map_err(anyhow::Error::from)
            .and_then(|img| Ok(encoder.encode(&[img])?))
            .and_then(|out| Ok(encoder.classify(&out, &names, args.top.max(1))?));
        match result {
            Ok(mut preds) => {
                let preds = preds.pop().unwrap_or_default();
                if args.json {
                    json.push(serde_json::json!({
                        "image": path,
                        "top": preds.iter().map(|p| serde_json::json!({
                            "index": p.index, "name": p.label, "probability": p.probability
                        })).collect::<Vec<_>>(),
                    }));
                } else {
                    println!("{}", captioner::files::shown(path));
                    for p in &preds {
                        println!(
                            "  {:>4}  {:>6.2}%  {}",
                            p.index,
                            100.0 * p.probability,
                            p.label
                        );
                    }
                }
            }
            Err(e) => {
                failed += 1;
                let message = captioner::jobs::report(e.as_ref());
                eprintln!("error: {}", captioner::files::shown_text(&message));
                if args.json {
                    json.push(serde_json::json!({"image": path, "error": message}));
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(exit_code(failed == 0))
}

/// `captioner features`: computes and caches the features of a dataset's images.
pub fn features(args: &FeaturesArgs) -> anyhow::Result<ExitCode> {
    let cancel = interrupt_token();
    let mut renderer = Renderer::new(args.json, false);
    let events = &mut |e| renderer.event(e);
    let ds =
        captioner::jobs::import::import(&args.dir, &args.text.import_options(), events, &cancel)?;
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let cache = FeatureCache::new(
        &captioner::paths::cache_dir(args.cache.as_deref()),
        encoder.id(),
    );
    let paths: Vec<PathBuf> = ds.images.iter().map(|e| e.path.clone()).collect();
    let options = args.extract_options();
    let report =
        captioner::jobs::extract::extract(&encoder, &cache, &paths, &options, events, &cancel)?;
    renderer.finish_bar();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "images": report.total,
                "cached": report.cached,
                "computed": report.computed,
                "failed": report.failed.iter().map(|(p, r)| serde_json::json!({"image": p, "reason": r})).collect::<Vec<_>>(),
                "stopped": report.stopped,
                "seconds": report.seconds,
                "cache": cache.dir(),
                "encoder": encoder.id(),
            }))?
        );
    } else {
        println!(
            "{} images: {} computed, {} already cached, {} skipped, in {:.1} s{}",
            report.total,
            report.computed,
            report.cached,
            report.failed.len(),
            report.seconds,
            if report.stopped {
                " (stopped early; run again to resume)"
            } else {
                ""
            }
        );
        println!("cache: {}", cache.dir().display());
    }
    Ok(if report.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
