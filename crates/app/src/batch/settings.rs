//! What the Batch panel keeps between runs (eframe's `app.ron`), apart from its runtime state,
//! and the options a batch run sends to the worker.
//!
//! [`BatchPanel`] persists as its [`Settings`] alone. The fields keep the names the panel's
//! persisted fields had before settings and runtime state were split, so an `app.ron` saved by
//! an older version loads as it was; a field it lacks (`search`, added since) takes its
//! default.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::BatchPanel;
use super::grid::{Filter, Sort};
use captioner::decoder::SearchOptions;
use captioner::export::Existing;
use captioner::jobs::ModelChoice;
use captioner::jobs::caption::FolderOptions;
use captioner::pipeline::{DecodeOptions, Grounding};

/// The longest caption the panel offers, in words.
pub const MAX_WORDS: usize = 60;
/// The widest beam the panel offers.
pub const MAX_BEAM: usize = 10;
/// The longest repeated n-gram the panel offers to block.
pub const MAX_BLOCK_NGRAM: usize = 6;
/// The range of the length normalisation exponent (as the decoder checks it).
pub const LENGTH_ALPHA: std::ops::RangeInclusive<f32> = 0.0..=4.0;

/// The Batch panel's persisted settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The batch folder, as typed or last chosen.
    pub folder: String,
    /// The Batch panel's own model (not the Caption panel's).
    pub model: ModelChoice,
    /// Beam width (1 = greedy).
    pub beam: usize,
    /// Shortest caption in words: the best beam caption at least this long is taken.
    pub min_len: usize,
    /// Longest caption in words.
    pub max_len: usize,
    /// Repeated n-gram blocking and length normalisation of the search.
    pub search: SearchOptions,
    /// Grounded decoding (prefer words the photo supports) or the plain beam search.
    pub grounding: Grounding,
    /// "Start with": words every caption of the batch begins with, which the model goes on
    /// from ([`DecodeOptions::start_with`]; empty: none). Unlike `prefix`, the model writes
    /// the rest of the caption after them.
    pub start_with: String,
    /// Thumbnail side in points.
    pub thumb_side: f32,
    /// Recently opened folders, newest first.
    pub recent: Vec<String>,
    pub filter: Filter,
    pub sort: Sort,
    /// Put before every machine caption (a trigger word, say).
    pub prefix: String,
    /// Put after every machine caption.
    pub suffix: String,
    /// What the photo-metadata export does with a description already there.
    pub existing: Existing,
}

impl Default for Settings {
    fn default() -> Self {
        let decode = DecodeOptions::default();
        Settings {
            folder: String::new(),
            model: ModelChoice::Default,
            beam: decode.beam,
            min_len: 0,
            max_len: decode.max_len,
            search: decode.search,
            grounding: decode.grounding,
            start_with: decode.start_with,
            thumb_side: 136.0,
            recent: Vec::new(),
            filter: Filter::All,
            sort: Sort::Name,
            prefix: String::new(),
            suffix: String::new(),
            existing: Existing::Skip,
        }
    }
}

impl Settings {
    /// How to decode, as set: beam width and caption length at least 1, the length exponent
    /// within the range the decoder accepts (a hand-edited `app.ron` may hold anything).
    pub fn decode_options(&self) -> DecodeOptions {
        let alpha = self.search.length_alpha;
        let length_alpha = if alpha.is_finite() {
            alpha.clamp(*LENGTH_ALPHA.start(), *LENGTH_ALPHA.end())
        } else {
            SearchOptions::default().length_alpha
        };
        DecodeOptions {
            beam: self.beam.max(1),
            max_len: self.max_len.max(1),
            search: SearchOptions {
                block_ngram: self.search.block_ngram,
                length_alpha,
            },
            grounding: self.grounding,
            start_with: self.start_with.trim().to_string(),
        }
    }

    /// The "Start with" box (for the whole batch); true when its text changed.
    pub fn start_with_ui(&mut self, ui: &mut egui::Ui, enabled: bool) -> bool {
        let label = ui.label("Start with");
        ui.add_enabled(
            enabled,
            egui::TextEdit::singleline(&mut self.start_with)
                .hint_text("(model's choice)")
                .desired_width(120.0),
        )
        .labelled_by(label.id)
        .on_hover_text(
            "Every caption starts with these words and the model goes on from them \
             (\"a cat\" -> \"a cat sitting on a windowsill\"); empty: the model chooses \
             every word. Caption the folder again to use it.",
        )
        .changed()
    }

    /// The options of a batch run: these decoding options, the library's defaults otherwise.
    pub fn folder_options(&self) -> FolderOptions {
        FolderOptions {
            decode: self.decode_options(),
            ..FolderOptions::default()
        }
    }

    /// Puts the search options back to the library's defaults.
    pub fn reset_search(&mut self) {
        let decode = DecodeOptions::default();
        self.search = decode.search;
        self.grounding = decode.grounding;
    }
}

impl Serialize for BatchPanel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.settings.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BatchPanel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Settings::deserialize(deserializer).map(BatchPanel::with_settings)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::Panels;

    /// eframe's storage, in memory.
    #[derive(Default)]
    struct Memory(HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_string(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    fn changed() -> Settings {
        Settings {
            folder: "/photos/holiday".into(),
            model: ModelChoice::Trained(PathBuf::from("/models/mine")),
            beam: 5,
            min_len: 4,
            max_len: 22,
            search: SearchOptions {
                block_ngram: 3,
                length_alpha: 0.5,
            },
            grounding: Grounding::Off,
            start_with: " a dog ".into(),
            thumb_side: 200.0,
            recent: vec!["/photos/holiday".into(), "/photos/cats".into()],
            filter: Filter::NeedsReview,
            sort: Sort::Confidence,
            prefix: "sks,".into(),
            suffix: "(auto)".into(),
            existing: Existing::Append,
        }
    }

    #[test]
    fn the_panel_persists_its_settings_through_app_ron() {
        let mut panels = Panels::default();
        panels.batch.settings = changed();
        // Runtime state is not persisted.
        panels.batch.search = "dog".into();
        panels.batch.attention_word = Some(2);
        let mut storage = Memory::default();
        eframe::set_value(&mut storage, eframe::APP_KEY, &panels);
        let back: Panels = eframe::get_value(&storage, eframe::APP_KEY).expect("loads");
        assert_eq!(back.batch.settings, changed());
        assert_eq!(back.batch.search, "");
        assert_eq!(back.batch.attention_word, None);
    }

    /// The batch part of an `app.ron` as the version before the split wrote it (its
    /// `BatchPanel` fields, no `search`).
    const OLD_BATCH: &str = r#"(folder:"/photos/holiday",model:Trained("/models/mine"),beam:5,min_len:4,max_len:22,thumb_side:200.0,recent:["/photos/holiday","/photos/cats"],filter:NeedsReview,sort:Confidence,prefix:"sks,",suffix:"(auto)",existing:Append)"#;

    #[test]
    fn an_app_ron_of_the_version_before_loads_with_default_search() {
        let mut storage = Memory::default();
        eframe::Storage::set_string(
            &mut storage,
            eframe::APP_KEY,
            format!("(tab:Batch,batch:{OLD_BATCH})"),
        );
        let back: Panels = eframe::get_value(&storage, eframe::APP_KEY).expect("loads");
        // An app.ron from before grounding: grounded decoding on, as for everyone.
        let want = Settings {
            search: SearchOptions::default(),
            grounding: Grounding::On,
            start_with: String::new(),
            ..changed()
        };
        assert_eq!(back.batch.settings, want);
        assert_eq!(back.tab, crate::Tab::Batch);
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        let mut storage = Memory::default();
        eframe::Storage::set_string(&mut storage, eframe::APP_KEY, "(batch:(beam:7))".into());
        let back: Panels = eframe::get_value(&storage, eframe::APP_KEY).expect("loads");
        assert_eq!(
            back.batch.settings,
            Settings {
                beam: 7,
                ..Settings::default()
            }
        );
    }

    #[test]
    fn defaults_are_the_librarys() {
        let s = Settings::default();
        assert_eq!(s.decode_options(), DecodeOptions::default());
        let f = s.folder_options();
        let d = FolderOptions::default();
        assert_eq!(f.decode, d.decode);
        assert_eq!(f.batch, d.batch);
    }

    #[test]
    fn the_run_gets_every_decoding_setting() {
        let o = changed().folder_options();
        assert_eq!(
            o.decode,
            DecodeOptions {
                beam: 5,
                max_len: 22,
                search: SearchOptions {
                    block_ngram: 3,
                    length_alpha: 0.5,
                },
                grounding: Grounding::Off,
                start_with: "a dog".into(),
            }
        );
    }

    #[test]
    fn out_of_range_settings_are_brought_into_range() {
        let mut s = Settings {
            beam: 0,
            max_len: 0,
            ..Settings::default()
        };
        s.search.length_alpha = 9.0;
        let d = s.decode_options();
        assert_eq!((d.beam, d.max_len), (1, 1));
        assert_eq!(d.search.length_alpha, 4.0);
        s.search.length_alpha = f32::NAN;
        assert_eq!(
            s.decode_options().search.length_alpha,
            SearchOptions::default().length_alpha
        );
        s.search.length_alpha = -1.0;
        assert_eq!(s.decode_options().search.length_alpha, 0.0);
    }

    #[test]
    fn resetting_the_search_restores_the_defaults_only() {
        let mut s = changed();
        s.reset_search();
        assert_eq!(s.search, SearchOptions::default());
        assert_eq!(s.beam, 5);
    }
}
