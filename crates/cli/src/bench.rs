//! `captioner bench ...`: the measurements of [`captioner::bench`], printed as one JSON object.

use std::process::ExitCode;

use super::args::BenchCommand;

/// Runs one measurement and prints its JSON.
pub fn bench(command: BenchCommand) -> anyhow::Result<ExitCode> {
    let v = match command {
        BenchCommand::Encoder {
            dir,
            n,
            batches,
            reps,
        } => captioner::bench::encoder(&dir, n, &batches, reps)?,
        BenchCommand::Train {
            dir,
            cache,
            batch,
            engine,
            decoder,
            max_batches,
        } => captioner::bench::train(
            &dir,
            &captioner::paths::cache_dir(cache.as_deref()),
            batch,
            engine,
            decoder.into(),
            max_batches,
        )?,
        BenchCommand::Batch {
            dir,
            model,
            beam,
            batch,
            limit,
        } => captioner::bench::batch(
            &dir,
            &model.unwrap_or_else(captioner::paths::default_model_dir),
            beam,
            batch,
            limit,
        )?,
        BenchCommand::Caption {
            images,
            model,
            beam,
            n,
        } => captioner::bench::caption(
            &images,
            &model.unwrap_or_else(captioner::paths::default_model_dir),
            beam,
            n,
        )?,
    };
    println!("{v}");
    Ok(ExitCode::SUCCESS)
}
