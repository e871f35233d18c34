//! `captioner batch`: a folder (or a list of photos, or a tar archive of them) captioned and
//! exported with the same functions the Batch panel exports with ([`captioner::export`]); with
//! `--shard K/N`, one shard of it, resumably ([`captioner::jobs::shard`]).

use std::process::ExitCode;

use super::args::BatchArgs;
use super::render::{Renderer, device, exit_code, interrupt_token, load_captioner};
use captioner::export::{self, ExportRow};
use captioner::jobs::JobEvent;
use captioner::jobs::caption;
use captioner::jobs::shard::{self, PhotoList, PhotoSource, ShardOptions, ShardOutcome};
use captioner::pipeline::Captioner;

/// `captioner batch`: captions every photo of the folder (or list, or archive), then writes
/// what the flags ask; with `--shard K/N`, only that shard, into its files in `--out`.
pub fn batch(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    // Before anything runs in parallel: the threads are set once, for the whole process.
    let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok();
    if let Some(n) = shard::threads_for(args.threads, slurm.as_deref()) {
        shard::use_threads(n)?;
    }
    let options = args.folder_options()?;
    let source = match (&args.dir, &args.files_from) {
        (Some(dir), _) => PhotoSource::Path(dir.clone()),
        (None, Some(list)) => PhotoSource::List(list.clone()),
        (None, None) => anyhow::bail!("give a folder of photos, or --files-from LIST"),
    };
    let input = match &source {
        PhotoSource::Path(p) | PhotoSource::List(p) => p.clone(),
    };
    let list = PhotoList::open(&source)?;
    for (dir, reason) in &list.unreadable {
        eprintln!(
            "skipped folder {}: {}",
            captioner::files::shown(dir),
            captioner::files::shown_text(reason)
        );
    }
    if list.photos.is_empty() {
        anyhow::bail!("{}: no photos found", input.display());
    }
    if list.in_archives() && (args.sidecars || args.xmp_sidecars || args.embed) {
        anyhow::bail!(
            "{}: --sidecars, --xmp-sidecars and --embed write beside or into photo files, and photos in a tar archive are not files",
            input.display()
        );
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
    if let (Some(spec), Some(out)) = (args.shard, &args.out) {
        return run_shard(args, &captioner, &list, spec, out, options, &cancel);
    }
    let mut renderer = Renderer::new(false, false);
    let mut rows = Vec::new();
    let paths: Vec<std::path::PathBuf> = list.photos.iter().map(|p| p.path.clone()).collect();
    let report = caption::caption_photos(
        &captioner,
        &paths,
        &|i| list.read(i),
        &options,
        &mut |event| match event {
            JobEvent::Captioned {
                index,
                path,
                result,
            } => match result {
                Ok(c) => {
                    let name = list.photos[index].image.clone();
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
    let exported = write_exports(args, &input, &rows);
    Ok(exit_code(
        report.failed == 0 && exported && !report.stopped && list.unreadable.is_empty(),
    ))
}

/// `captioner batch --shard K/N --out OUT`: runs (or resumes, or skips) the shard and says
/// what it did.
fn run_shard(
    args: &BatchArgs,
    captioner: &Captioner,
    list: &PhotoList,
    spec: shard::ShardSpec,
    out: &std::path::Path,
    folder: caption::FolderOptions,
    cancel: &captioner::jobs::CancelToken,
) -> anyhow::Result<ExitCode> {
    let options = ShardOptions {
        folder,
        prefix: args.prefix.clone(),
        suffix: args.suffix.clone(),
    };
    let files = shard::ShardFiles::new(out, spec);
    let mut renderer = Renderer::new(false, false);
    let outcome = shard::run_shard(
        captioner,
        list,
        spec,
        &options,
        out,
        &mut |event| match event {
            JobEvent::Captioned { result: Ok(_), .. } => {}
            JobEvent::Captioned { result: Err(e), .. } => {
                renderer.message(&format!("error: {}", e.report()))
            }
            other => renderer.event(other),
        },
        cancel,
    )?;
    renderer.finish_bar();
    let shown = |p: &std::path::Path| captioner::files::shown(p);
    match outcome {
        ShardOutcome::AlreadyDone(m) => {
            eprintln!(
                "shard {spec} is already done ({}): {} photos, {} captioned, {} could not be read; nothing to do",
                shown(&files.done),
                m.state.photos,
                m.captioned,
                m.failed
            );
            Ok(exit_code(m.failed == 0))
        }
        ShardOutcome::Done(m) => {
            eprintln!(
                "shard {spec}: {} photos, {} captioned, {} could not be read, {:.1} photos/s on {} threads; {} and {}",
                m.state.photos,
                m.captioned,
                m.failed,
                m.timings.photos_per_second,
                m.timings.threads,
                shown(&files.records),
                shown(&files.done)
            );
            Ok(exit_code(m.failed == 0 && list.unreadable.is_empty()))
        }
        ShardOutcome::Stopped { handled, photos } => {
            eprintln!(
                "shard {spec} stopped after {handled} of {photos} photos; the same command goes on from there"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Writes the sidecars, metadata and files the flags ask for, each reported on stderr; false
/// when any of them failed.
fn write_exports(args: &BatchArgs, input: &std::path::Path, rows: &[ExportRow]) -> bool {
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
    let title = format!("Photos in {}", input.display());
    for (kind, file) in args.export_files() {
        let r = export::export_file(rows, kind, &file, &title);
        eprintln!("{}", r.describe(&file.display().to_string()));
        ok &= r.failed.is_empty();
    }
    ok
}
