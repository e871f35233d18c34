//! The Caption panel's attention display: a caption with attention maps shows a row of
//! per-word maps under the photo; pointing at a word (or its map) lays that word's map over the
//! photo, clicking keeps it; a model without attention says why there is no map. The maps here
//! come in a caption event (as the worker sends it); the shipped merge model gives none.

mod app_support;

use std::sync::Arc;

use app_support::{app, drop_files, fixtures, wait_until};
use captioner::decoder::AttentionMaps;
use captioner::pipeline::{CaptionResult, ScoredCaption, ScoredWord};
use captioner::worker::Event;
use captioner_app::{Startup, Tab};
use egui_kittest::kittest::{By, Queryable};

fn result_with_maps() -> CaptionResult {
    let words = ["a", "brown", "dog"];
    // 2x2 cells; "dog" looks at the bottom-right cell.
    let maps = vec![
        vec![0.25; 4],
        vec![0.4, 0.2, 0.2, 0.2],
        vec![0.05, 0.05, 0.1, 0.8],
    ];
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
        confidence: None,
        familiarity: None,
        needs_review: None,
        review_reason: None,
        review_detail: None,
        tags: Vec::new(),
        attention: Some(AttentionMaps {
            rows: 2,
            cols: 2,
            words: maps,
        }),
        ..Default::default()
    }
}

fn shown<'a>(
    h: &'a egui_kittest::Harness<'static, captioner_app::CaptionerApp>,
) -> &'a captioner_app::caption::Shown {
    h.state().panels.caption.shown().unwrap()
}

#[test]
fn words_show_their_attention_maps_over_the_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    let preview = egui::ColorImage::from_rgb([64, 48], &vec![120u8; 64 * 48 * 3]);
    {
        let app = h.state_mut();
        app.panels.caption.on_event(
            Event::Captioned {
                source: "dog.jpg".into(),
                output: result_with_maps(),
                preview: Some(Arc::new(preview)),
            },
            &mut app.shared,
        );
    }
    h.step();
    h.step();
    // The row of small maps, one per word; no map on the photo yet.
    for w in ["a", "brown", "dog"] {
        h.get_by_label(&format!("attention map of \"{w}\""));
    }
    assert_eq!(shown(&h).overlay_word(), None);
    h.get_by_label("less attention");

    // Clicking a word's small map keeps that map over the photo; clicking again takes it off.
    h.get_by_label("attention map of \"dog\"").click();
    h.step();
    h.step();
    assert_eq!(shown(&h).focus_word, Some(2));
    assert_eq!(shown(&h).overlay_word(), Some(2));
    h.get_by_label("The photo, showing where the model looked for \"dog\"");

    // Pointing at another word shows its map while the pointer is there.
    // (The word in the caption; the small map's label under the photo has the same text.)
    h.get_all_by_label("brown").last().unwrap().hover();
    h.step();
    h.step();
    assert_eq!(shown(&h).overlay_word(), Some(1));

    h.get_by_label("attention map of \"dog\"").click();
    h.step();
    h.step();
    assert_eq!(shown(&h).focus_word, None);
}

#[test]
fn a_model_without_attention_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = app(&tmp.path().join("data"), Tab::Caption);
    // The shipped merge model (the default has attention).
    h.state_mut().apply_startup(Startup {
        model: Some(captioner::paths::shipped_models_dir().join("merge")),
        ..Startup::default()
    });
    h.step();
    let photo = fixtures().join("encoder/images/246231741_882b45c4e1.jpg");
    drop_files(&mut h, std::slice::from_ref(&photo));
    wait_until(&mut h, 60, "the caption", |a| {
        a.panels.caption.shown().is_some() || a.panels.caption.error().is_some()
    });
    assert_eq!(h.state().panels.caption.error(), None);
    assert!(
        h.state()
            .panels
            .caption
            .shown()
            .unwrap()
            .output
            .attention
            .is_none()
    );
    h.get(
        By::new()
            .label_contains("No attention map: this model sees the photo as one pooled vector"),
    );
    assert!(
        h.query(By::new().label_contains("attention map of"))
            .is_none()
    );
}

/// The Batch panel keeps a machine caption's attention maps with its words (its preview shows
/// them the same way); a model without attention leaves none.
#[test]
fn batch_cells_keep_the_maps_of_their_words() {
    use captioner_app::batch::machine_cell;
    let cell = machine_cell(&result_with_maps(), 0, "sks", "");
    let att = cell.attention.expect("maps kept");
    assert_eq!(att.words, ["a", "brown", "dog"]);
    assert_eq!(att.maps.words.len(), 3);
    assert_eq!(cell.caption, "sks a brown dog");
    let mut plain = result_with_maps();
    plain.attention = None;
    assert!(machine_cell(&plain, 0, "", "").attention.is_none());
}
