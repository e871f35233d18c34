//! `captioner merge OUT`: the shards of `batch --shard K/N --out OUT` merged into one JSON or
//! CSV file ([`captioner::jobs::shard::merge`]), written as `batch --json` and `--csv` write
//! theirs.

use std::process::ExitCode;

use super::args::MergeArgs;
use super::render::exit_code;
use captioner::export::{self, ExportKind};
use captioner::files::{shown, shown_text};

/// `captioner merge`: checks the shards, writes the files asked for, and names the shards
/// whose photos could not all be read (the exit status is then 1, as `batch`'s is).
pub fn merge(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let merged = captioner::jobs::shard::merge(&args.out)?;
    let shards = merged.manifests.len();
    let photos: usize = merged.manifests.iter().map(|m| m.state.photos).sum();
    eprintln!(
        "{shards} shards of {}: {photos} photos, {} captioned, {} could not be read",
        shown(&args.out),
        merged.rows.len(),
        merged.failures.len()
    );
    for f in &merged.failures {
        eprintln!(
            "  shard {}: {}: {}",
            f.shard,
            shown_text(&f.photo.image),
            shown_text(&f.photo.error)
        );
    }
    let failed = merged.failed_shards();
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|k| k.to_string()).collect();
        eprintln!(
            "shard{} {} of {shards} had photos that could not be read",
            if failed.len() == 1 { "" } else { "s" },
            list.join(", ")
        );
    }
    let title = format!("Photos in {}", args.out.display());
    let mut ok = true;
    if args.sidecars {
        let existing = if args.overwrite {
            export::Existing::Overwrite
        } else {
            export::Existing::Skip
        };
        let r = export::write_sidecars(&merged.rows, existing);
        eprintln!("{}", r.describe("sidecars"));
        for f in r.failed.iter().skip(1) {
            eprintln!("  failed: {f}");
        }
        ok &= r.failed.is_empty();
    }
    for (kind, file) in [(ExportKind::Json, &args.json), (ExportKind::Csv, &args.csv)] {
        if let Some(file) = file {
            let r = export::export_file(&merged.rows, kind, file, &title);
            eprintln!("{}", r.describe(&file.display().to_string()));
            ok &= r.failed.is_empty();
        }
    }
    Ok(exit_code(ok && failed.is_empty()))
}
