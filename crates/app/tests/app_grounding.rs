//! Per-word grounding in the Caption panel: a word the photo shows little sign of is marked
//! (dotted underline, explained under the caption), pointing at it says why, and a caption from
//! the image classifier says where it came from. The grounding comes in a caption event, as the
//! worker sends it.

mod app_support;

use std::sync::Arc;

use app_support::app;
use captioner::pipeline::{CaptionResult, CaptionSource, ScoredCaption, ScoredWord, WordGrounding};
use captioner::worker::Event;
use captioner_app::Tab;
use egui_kittest::kittest::{By, Queryable};

fn result(words: &[&str], grounding: Vec<WordGrounding>) -> CaptionResult {
    CaptionResult {
        text: words.join(" "),
        words: words
            .iter()
            .map(|w| ScoredWord {
                word: w.to_string(),
                probability: 0.7,
            })
            .collect(),
        alternatives: vec![ScoredCaption {
            text: words.join(" "),
            score: -0.4,
        }],
        millis: 12.0,
        grounding,
        ..Default::default()
    }
}

fn word(position: usize, word: &str, support: f32, weak: bool) -> WordGrounding {
    WordGrounding {
        position,
        word: word.to_string(),
        support,
        weak,
        note: weak.then(|| "little sign of a person in this photo".to_string()),
    }
}

fn show(h: &mut egui_kittest::Harness<'static, captioner_app::CaptionerApp>, out: CaptionResult) {
    let preview = egui::ColorImage::from_rgb([64, 48], &vec![120u8; 64 * 48 * 3]);
    let app = h.state_mut();
    app.panels.caption.on_event(
        Event::Captioned {
            source: "kitchen.jpg".into(),
            output: out,
            preview: Some(Arc::new(preview)),
        },
        &mut app.shared,
    );
    h.step();
    h.step();
}

/// Frames until a tooltip shows: egui waits for the pointer to rest (the harness's clock
/// advances one frame per step, so this counts frames, not the machine's time).
fn tooltip_time(h: &mut egui_kittest::Harness<'static, captioner_app::CaptionerApp>) {
    for _ in 0..60 {
        h.step();
    }
}

#[test]
fn a_word_the_photo_does_not_support_is_marked_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    show(
        &mut h,
        result(
            &["a", "man", "in", "a", "kitchen"],
            vec![word(1, "man", 0.03, true), word(4, "kitchen", 0.81, false)],
        ),
    );
    h.get(By::new().label_contains("Dotted underline: the photo shows little sign"));
    h.get_by_label("man").hover();
    tooltip_time(&mut h);
    h.get(
        By::new()
            .label_contains("little sign of a person in this photo (support 3%): doubt this word"),
    );
    h.get_by_label("kitchen").hover();
    tooltip_time(&mut h);
    h.get(By::new().label_contains("the photo supports this word (support 81%)"));
}

#[test]
fn a_supported_caption_has_no_mark_and_a_classifier_caption_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    show(
        &mut h,
        result(&["a", "dog", "runs"], vec![word(1, "dog", 0.9, false)]),
    );
    assert!(
        h.query(By::new().label_contains("Dotted underline"))
            .is_none()
    );

    let mut out = result(&["a", "plate", "of", "broccoli"], Vec::new());
    out.source = CaptionSource::Classifier;
    out.grounding_note = Some("From the image classifier: broccoli (92%).".into());
    show(&mut h, out);
    h.get(By::new().label_contains("From the image classifier: broccoli (92%)."));
}
