//! `captioner batch`: a folder captioned and exported with the same functions the Batch panel
//! exports with ([`captioner::export`]).

use std::process::ExitCode;

use super::args::BatchArgs;
use super::render::{Renderer, device, exit_code, interrupt_token, load_captioner};
use captioner::export::{self, ExportRow};
use captioner::jobs::JobEvent;
use captioner::jobs::caption;

/// `captioner batch`: captions every photo of the folder, then writes what the flags ask.
pub fn batch(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let options = args.folder_options()?;
    let (images, unreadable) = caption::list_photos(&args.dir)?;
    for (dir, reason) in &unreadable {
        eprintln!(
            "skipped folder {}: {}",
            captioner::files::shown(dir),
            captioner::files::shown_text(reason)
        );
    }
    if images.is_empty() {
        anyhow::bail!("{}: no photos found", args.dir.display());
    }
    let cancel = interrupt_token();
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    if let Some(note) = &captioner.trust_note {
        eprintln!("note: {note}");
    }
    if captioner.trust.concepts.is_none()
        && let Some(note) = captioner.grounding_unavailable(captioner::pipeline::Grounding::On)
    {
        eprintln!("note: {note}");
    }
    let mut renderer = Renderer::new(false, false);
    let mut rows = Vec::new();
    let report = caption::caption_folder(
        &captioner,
        &images,
        &options,
        &mut |event| match event {
            JobEvent::Captioned { path, result, .. } => match result {
                Ok(c) => {
                    let name = path
                        .strip_prefix(&args.dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    let row = ExportRow::machine(name, path, &c, &args.prefix, &args.suffix);
                    renderer.output(&format!(
                        "{}: {}{}",
                        row.image,
                        row.caption,
                        if row.needs_review == Some(true) {
                            "  [needs review]"
                        } else {
                            ""
                        }
                    ));
                    rows.push(row);
                }
                Err(e) => renderer.message(&format!("error: {}", e.report())),
            },
            other => renderer.event(other),
        },
        &cancel,
    )?;
    renderer.finish_bar();
    eprintln!(
        "{} captioned, {} could not be read{}, {:.1} photos/s",
        report.captioned,
        report.failed,
        if report.stopped {
            ", stopped early"
        } else {
            ""
        },
        (report.captioned + report.failed) as f64 / report.seconds.max(1e-9)
    );
    let exported = write_exports(args, &rows);
    Ok(exit_code(
        report.failed == 0 && exported && !report.stopped && unreadable.is_empty(),
    ))
}

/// Writes the sidecars, metadata and files the flags ask for, each reported on stderr; false
/// when any of them failed.
fn write_exports(args: &BatchArgs, rows: &[ExportRow]) -> bool {
    let mut ok = true;
    if args.sidecars {
        let r = export::write_sidecars(rows, args.existing());
        eprintln!("{}", r.describe("sidecars"));
        for f in r.failed.iter().skip(1) {
            eprintln!("  failed: {f}");
        }
        ok &= r.failed.is_empty();
    }
    for (target, what) in args.metadata_targets() {
        let r = export::write_metadata(rows, target, args.existing());
        eprintln!("{}", r.describe(what));
        for f in r.failed.iter().skip(1) {
            eprintln!("  failed: {f}");
        }
        ok &= r.failed.is_empty();
    }
    let title = format!("Photos in {}", args.dir.display());
    for (kind, file) in args.export_files() {
        let r = export::export_file(rows, kind, &file, &title);
        eprintln!("{}", r.describe(&file.display().to_string()));
        ok &= r.failed.is_empty();
    }
    ok
}
