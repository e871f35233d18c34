//! `captioner watch DIR`: captions the photos that appear in a folder as they arrive
//! ([`captioner::jobs::watch`]), one line per photo on stdout, until Ctrl-C or the folder goes.

use std::process::ExitCode;

use super::args::WatchArgs;
use super::render::{Renderer, device, interrupt_token, load_captioner};
use captioner::export::with_prefix_suffix;
use captioner::files::shown;
use captioner::jobs::JobEvent;
use captioner::jobs::watch::{self, WatchEnd};

/// `captioner watch`: watches the folder until Ctrl-C or until it is renamed or deleted;
/// both end cleanly (exit 0).
pub fn watch(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let options = args.watch_options()?;
    if !args.dir.is_dir() {
        anyhow::bail!("{}: not a folder", args.dir.display());
    }
    let cancel = interrupt_token();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    if let Some(note) = &captioner.trust_note {
        eprintln!("note: {note}");
    }
    if !options.sidecars && options.metadata.is_empty() {
        eprintln!(
            "note: no --sidecars, --xmp-sidecars or --embed: captions are printed, not saved"
        );
    }
    let renderer = Renderer::new(false, false);
    let dir = args.dir.as_path();
    let report = watch::watch(
        &captioner,
        dir,
        &options,
        &mut |event| match event {
            JobEvent::Phase { message, .. } => {
                renderer.message(&format!("{message}; Ctrl-C stops"));
            }
            JobEvent::Captioned {
                path,
                result: Ok(c),
                ..
            } => {
                let shown_path = path.strip_prefix(dir).unwrap_or(&path);
                renderer.output(&format!(
                    "{}: {}{}",
                    shown(shown_path),
                    with_prefix_suffix(&c.text, &options.prefix, &options.suffix),
                    if c.needs_review == Some(true) {
                        "  [needs review]"
                    } else {
                        ""
                    }
                ));
            }
            JobEvent::Captioned { result: Err(e), .. } => {
                renderer.message(&format!("error: {}", e.report()))
            }
            JobEvent::Skipped { path, reason, .. } => {
                renderer.message(&format!("skipped {}: {reason}", shown(&path)))
            }
            JobEvent::Warning { message, .. } => renderer.message(&format!("warning: {message}")),
            _ => {}
        },
        &cancel,
    )?;
    let why = match report.end {
        WatchEnd::Cancelled => "stopped".to_string(),
        WatchEnd::FolderGone => format!(
            "{} was renamed, moved or deleted: stopped watching",
            shown(dir)
        ),
    };
    eprintln!(
        "{why}; {} captioned, {} left alone, {} failed",
        report.captioned, report.skipped, report.failed
    );
    Ok(ExitCode::SUCCESS)
}
