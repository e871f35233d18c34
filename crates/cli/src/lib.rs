//! The command line: `captioner <subcommand>`, running the same library jobs the desktop app
//! runs.
//!
//! - [`args`]: every argument, defined once (clap derive);
//! - [`options`]: the one place where arguments become the library's option types;
//! - `render`: what the commands share at run time (Ctrl-C, device, model loading, progress
//!   bars and JSON lines);
//! - one module per command or group of commands: `dataset`, `encoder` (`classify`,
//!   `features`), `train`, `caption`, `batch` (also `--shard`), `watch`, `merge`, `evaluate` (`eval`, `calibrate`), `concepts`, `models`,
//!   `bench`.
//!
//! The command modules import `args`, `options` and `render`, never each other or this module.

pub mod args;
pub mod options;

mod batch;
mod bench;
mod caption;
mod concepts;
mod dataset;
mod encoder;
mod evaluate;
mod merge;
mod models;
mod render;
mod train;
mod watch;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, DatasetCommand};

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    // The tutorial's form, `captioner -i photo.jpg`, means `captioner caption -i photo.jpg`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "-i" || a == "--image") {
        args.insert(1, "caption".into());
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {}",
                captioner::files::shown_text(&captioner::jobs::report(e.as_ref()))
            );
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dataset(DatasetCommand::Inspect(args)) => dataset::inspect(&args),
        Command::Classify(args) => encoder::classify(&args),
        Command::Features(args) => encoder::features(&args),
        Command::Train(args) => train::train(&args),
        Command::Caption(args) => caption::caption(&args),
        Command::Eval(args) => evaluate::eval(&args),
        Command::Batch(args) => batch::batch(&args),
        Command::Merge(args) => merge::merge(&args),
        Command::Watch(args) => watch::watch(&args),
        Command::Calibrate(args) => evaluate::calibrate(&args),
        Command::Concepts(args) => concepts::concepts(&args),
        Command::Models(args) => models::models(&args),
        Command::App(a) => {
            captioner_app::run_with(captioner_app::Startup {
                tab: a.tab,
                open: a.open,
                run: a.run,
                model: a.model,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(b) => bench::bench(b),
    }
}
