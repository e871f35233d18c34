//! `captioner bench ...`: the measurements of [`crate::bench`], printed as one JSON object.

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
        } => crate::bench::encoder(&dir, n, &batches, reps)?,
        BenchCommand::Train {
            dir,
            cache,
            batch,
            engine,
            decoder,
            max_batches,
        } => crate::bench::train(
            &dir,
            &crate::paths::cache_dir(cache.as_deref()),
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
        } => crate::bench::batch(
            &dir,
            &model.unwrap_or_else(crate::paths::default_model_dir),
            beam,
            batch,
            limit,
        )?,
        BenchCommand::Caption {
            images,
            model,
            beam,
            n,
        } => crate::bench::caption(
            &images,
            &model.unwrap_or_else(crate::paths::default_model_dir),
            beam,
            n,
        )?,
    };
    println!("{v}");
    Ok(ExitCode::SUCCESS)
}
