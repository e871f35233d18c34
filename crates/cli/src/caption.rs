//! `captioner caption`: single photos, printed as text, with the trust figures, or as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::CaptionArgs;
use super::render::{device, exit_code, interrupt_token, load_captioner};
use captioner::export::ExportRow;
use captioner::files::{shown, shown_text};
use captioner::jobs::caption::{self, CaptionInput};
use captioner::jobs::{JobError, JobEvent};
use captioner::pipeline;

/// `captioner caption`: captions the photos (several in one batched search) and prints them
/// in the order given.
pub fn caption(args: &CaptionArgs) -> anyhow::Result<ExitCode> {
    let images: Vec<&PathBuf> = args.images.iter().chain(&args.image).collect();
    if images.is_empty() {
        anyhow::bail!("no image given: captioner caption PHOTO.jpg (or -i PHOTO.jpg)");
    }
    let options = args.decode.options()?.start_with(args.start_with.trim());
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
    let results = caption_all(&captioner, &images, options)?;
    let mut failed = 0;
    let mut json = Vec::new();
    for (path, outcome) in images.iter().zip(results) {
        match outcome {
            Ok((c, image)) => {
                if let Some(dir) = &args.attention
                    && !write_attention(dir, path, &c, image, &captioner)
                {
                    failed += 1;
                }
                if args.json {
                    let name = path.display().to_string();
                    let row = ExportRow::machine(name, path.to_path_buf(), &c, "", "");
                    json.push(serde_json::to_value(&row)?);
                } else if args.verbose {
                    print_verbose(path, &c, captioner.trust_note.as_deref());
                } else if images.len() == 1 {
                    println!("{}", c.text);
                } else {
                    println!("{}: {}", shown(path), c.text);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {}", shown(path), shown_text(&e.report()));
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

/// A photo's caption and, when it was read for display, the photo.
type Captioned = Result<(pipeline::CaptionResult, Option<image::RgbImage>), JobError>;

/// Captions the photos: one photo as the Caption panel does ([`caption::caption_one`], which
/// keeps the photo for attention overlays), several in one batched search as `captioner batch`
/// does ([`caption::caption_folder`]: the same captions, many times faster). Results are in the
/// order of `images`; Ctrl-C stops a long run after the photos in flight.
fn caption_all(
    captioner: &pipeline::Captioner,
    images: &[&PathBuf],
    options: pipeline::DecodeOptions,
) -> anyhow::Result<Vec<Captioned>> {
    if let [one] = images {
        let input = CaptionInput::File(one.to_path_buf());
        let outcome = caption::caption_one(captioner, input, &options);
        return Ok(vec![outcome.map(|o| (o.result, Some(o.image)))]);
    }
    let paths: Vec<PathBuf> = images.iter().map(|p| p.to_path_buf()).collect();
    let mut results: Vec<Option<Captioned>> = (0..paths.len()).map(|_| None).collect();
    let folder = caption::FolderOptions {
        decode: options,
        ..caption::FolderOptions::default()
    };
    let cancel = interrupt_token();
    caption::caption_folder(
        captioner,
        &paths,
        &folder,
        &mut |event| {
            if let JobEvent::Captioned { index, result, .. } = event
                && let Some(slot) = results.get_mut(index)
            {
                *slot = Some(result.map(|c| (c, None)));
            }
        },
        &cancel,
    )?;
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(JobError::msg("stopped before it was captioned"))))
        .collect())
}

/// Writes one PNG per word of the caption into `dir` (`--attention`); false (and the reason
/// on stderr) when there are no maps or they cannot be written.
fn write_attention(
    dir: &Path,
    path: &Path,
    result: &pipeline::CaptionResult,
    image: Option<image::RgbImage>,
    captioner: &pipeline::Captioner,
) -> bool {
    let Some(maps) = &result.attention else {
        eprintln!(
            "error: {}: no attention maps: {}",
            shown(path),
            no_attention_reason(captioner)
        );
        return false;
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let image = match image {
        Some(image) => image,
        None => {
            match caption::load_rgb_at_least(path, caption::PREVIEW_SIDE, &Default::default()) {
                Ok(image) => image,
                Err(e) => {
                    eprintln!(
                        "error: {}: attention maps: {}",
                        shown(path),
                        shown_text(&e.to_string())
                    );
                    return false;
                }
            }
        }
    };
    let words: Vec<String> = result.words.iter().map(|w| w.word.clone()).collect();
    match captioner::attention_view::write_word_pngs(dir, &stem, &image, &words, maps) {
        Ok(files) => {
            eprintln!(
                "{}: {} attention maps in {}",
                shown(path),
                files.len(),
                shown(dir)
            );
            true
        }
        Err(e) => {
            eprintln!(
                "error: {}: attention maps: {}",
                shown(path),
                shown_text(&e.to_string())
            );
            false
        }
    }
}

/// `--verbose`: the caption, its trust figures, tags, word probabilities and alternatives.
fn print_verbose(path: &Path, c: &pipeline::CaptionResult, trust_note: Option<&str>) {
    println!("{}: {}", shown(path), c.text);
    println!("  {}", trust_line(c, trust_note));
    println!("  tags: {}", c.tags.join(", "));
    let words: Vec<String> = c
        .words
        .iter()
        .map(|w| format!("{} ({:.0}%)", w.word, 100.0 * w.probability))
        .collect();
    println!("  words: {}", words.join(" "));
    if let Some(line) = grounding_line(c) {
        println!("  {line}");
    }
    for a in c.alternatives.iter().skip(1) {
        println!("  alt {:>7.3}  {}", a.score, a.text);
    }
    println!("  {:.0} ms", c.millis);
}

/// The caption's grounding for people: each content word's support, `?` after the weak
/// ones, and the note (why it is not grounded, or that the classifier wrote it).
pub fn grounding_line(c: &pipeline::CaptionResult) -> Option<String> {
    let mut parts = Vec::new();
    if !c.grounding.is_empty() {
        let words: Vec<String> = c
            .grounding
            .iter()
            .map(|g| {
                format!(
                    "{}{} ({:.0}%)",
                    g.word,
                    if g.weak { "?" } else { "" },
                    100.0 * g.support
                )
            })
            .collect();
        parts.push(format!("grounding: {}", words.join(" ")));
        let weak: Vec<&str> = c
            .grounding
            .iter()
            .filter_map(|g| g.note.as_deref())
            .collect();
        if !weak.is_empty() {
            parts.push(format!("doubt: {}", weak.join("; ")));
        }
    }
    if let Some(n) = &c.grounding_note {
        parts.push(n.clone());
    }
    (!parts.is_empty()).then(|| parts.join("\n  "))
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
