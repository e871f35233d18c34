//! `captioner caption`: single photos, printed as text, with the trust figures, or as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::CaptionArgs;
use super::render::{device, exit_code, load_captioner};
use crate::export::ExportRow;
use crate::jobs::caption::{self, CaptionInput};
use crate::pipeline;

/// `captioner caption`: captions each photo in turn.
pub fn caption(args: &CaptionArgs) -> anyhow::Result<ExitCode> {
    let images: Vec<&PathBuf> = args.images.iter().chain(&args.image).collect();
    if images.is_empty() {
        anyhow::bail!("no image given: captioner caption PHOTO.jpg (or -i PHOTO.jpg)");
    }
    let options = args.decode.options()?;
    let device = device();
    let captioner = load_captioner(args.decode.model.as_deref(), &device)?;
    if let Some(note) = &captioner.trust_note {
        eprintln!("note: {note}");
    }
    let mut failed = 0;
    let mut json = Vec::new();
    for path in &images {
        match caption::caption_one(&captioner, CaptionInput::File(path.to_path_buf()), &options) {
            Ok(one) => {
                if let Some(dir) = &args.attention
                    && !write_attention(dir, path, &one, &captioner)
                {
                    failed += 1;
                }
                let c = &one.result;
                if args.json {
                    let name = path.display().to_string();
                    let row = ExportRow::machine(name, path.to_path_buf(), c, "", "");
                    json.push(serde_json::to_value(&row)?);
                } else if args.verbose {
                    print_verbose(path, c, captioner.trust_note.as_deref());
                } else if images.len() == 1 {
                    println!("{}", c.text);
                } else {
                    println!("{}: {}", path.display(), c.text);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {}", path.display(), e.report());
                if args.json {
                    json.push(serde_json::json!({"image": path, "error": e.report()}));
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(exit_code(failed == 0))
}

/// Writes one PNG per word of the caption into `dir` (`--attention`); false (and the reason
/// on stderr) when there are no maps or they cannot be written.
fn write_attention(
    dir: &Path,
    path: &Path,
    one: &caption::OneCaption,
    captioner: &pipeline::Captioner,
) -> bool {
    let Some(maps) = &one.result.attention else {
        eprintln!(
            "error: {}: no attention maps: {}",
            path.display(),
            no_attention_reason(captioner)
        );
        return false;
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let words: Vec<String> = one.result.words.iter().map(|w| w.word.clone()).collect();
    match crate::attention_view::write_word_pngs(dir, &stem, &one.image, &words, maps) {
        Ok(files) => {
            eprintln!(
                "{}: {} attention maps in {}",
                path.display(),
                files.len(),
                dir.display()
            );
            true
        }
        Err(e) => {
            eprintln!("error: {}: attention maps: {e}", path.display());
            false
        }
    }
}

/// `--verbose`: the caption, its trust figures, tags, word probabilities and alternatives.
fn print_verbose(path: &Path, c: &pipeline::CaptionResult, trust_note: Option<&str>) {
    println!("{}: {}", path.display(), c.text);
    println!("  {}", trust_line(c, trust_note));
    println!("  tags: {}", c.tags.join(", "));
    let words: Vec<String> = c
        .words
        .iter()
        .map(|w| format!("{} ({:.0}%)", w.word, 100.0 * w.probability))
        .collect();
    println!("  words: {}", words.join(" "));
    for a in c.alternatives.iter().skip(1) {
        println!("  alt {:>7.3}  {}", a.score, a.text);
    }
    println!("  {:.0} ms", c.millis);
}

/// Why a model gives no attention maps, in words.
pub fn no_attention_reason(captioner: &pipeline::Captioner) -> String {
    format!(
        "this model's {} decoder sees the photo as one pooled vector, so there is no map of \
         where it looked (models trained with --decoder attention have them)",
        captioner.model.config.decoder.kind
    )
}

/// The trust figures of a caption for people.
fn trust_line(c: &pipeline::CaptionResult, note: Option<&str>) -> String {
    let pct = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{:.0}%", 100.0 * v));
    let mut s = format!(
        "confidence {}{}  familiarity {}  word probability (geometric mean) {:.0}%",
        pct(c.confidence),
        if c.confidence_overruled() && c.confidence.is_some() {
            " (see the warning)"
        } else {
            ""
        },
        pct(c.familiarity),
        100.0 * c.word_probability_geomean()
    );
    match (c.needs_review, c.review_reason) {
        (Some(true), Some(r)) => {
            s.push_str(&format!("\n  NEEDS REVIEW: {}", r.warning()));
            if let Some(d) = &c.review_detail {
                s.push_str(&format!(" {d}"));
            }
        }
        (Some(false), _) => s.push_str("  (no review needed)"),
        _ => {
            if let Some(n) = note {
                s.push_str(&format!("\n  ({n})"));
            }
        }
    }
    s
}
