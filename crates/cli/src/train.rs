//! `captioner train`.

use std::process::ExitCode;

use super::args::TrainArgs;
use super::render::{Renderer, device, interrupt_token};
use captioner::jobs::train::{TrainPlaces, TrainResources};
use captioner::pipeline;

/// `captioner train`: trains (or fine-tunes, or resumes) a caption model.
pub fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let cancel = interrupt_token();
    let device = device();
    let encoder = pipeline::load_encoder(&device)?;
    let places = TrainPlaces {
        cache_dir: captioner::paths::cache_dir(args.cache.as_deref()),
        models_dir: captioner::paths::trained_models_dir(),
    };
    let mut renderer = Renderer::new(false, args.json);
    let outcome = captioner::jobs::train::train(
        &settings,
        &places,
        args.resume,
        TrainResources {
            device: &device,
            encoder: &encoder,
        },
        &mut |e| renderer.event(e),
        &cancel,
    )?;
    renderer.finish_bar();
    if outcome.stopped_in_features {
        eprintln!("stopped during feature extraction; finished features are cached");
    } else if !args.json {
        println!("best model: {}", outcome.best_dir.display());
        println!("last checkpoint: {}", outcome.last_dir.display());
    }
    Ok(if outcome.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
