//! Captioning runs: which photos a run captions, the command sent to the worker, its events
//! turned into machine captions (one undo step per run), and the progress bar.
//!
//! Minimum length, prefix and suffix are applied here, to each result as it arrives
//! ([`machine_cell`]); the worker's job knows only the decoding options.

use std::time::{Duration, Instant};

use super::session::{self, Cell, Photo, Source};
use super::{Ask, BatchPanel};
use crate::Shared;
use crate::status::clock;
use captioner::export;
use captioner::worker::{CancelToken, CaptionOutput, Command, Event};

/// A batch run in progress.
pub struct Running {
    id: u64,
    /// Entry index and its revision when sent, per path sent.
    items: Vec<(usize, u64)>,
    fill_only: bool,
    cancel: CancelToken,
    started: Instant,
    done: usize,
    failed: usize,
    eta: Option<Duration>,
    /// The run's changes: one undo step when it ends.
    changes: Vec<(usize, Cell, Cell)>,
    /// Captions of the user's the run left alone.
    kept: usize,
    /// It captions the selected photos again (not the whole folder).
    selection: bool,
}

/// What a finished run says on the status line.
fn done_summary(
    done: usize,
    seconds: f64,
    kept: usize,
    failed: usize,
    stopped: bool,
    changed: usize,
) -> String {
    let mut text = format!("batch: {done} captioned in {seconds:.1} s");
    if kept > 0 {
        text.push_str(&format!(
            ", {} of yours kept (the model's are offered as alternatives)",
            super::plural(kept, "caption", "captions")
        ));
    }
    if failed > 0 {
        text.push_str(&format!(", {failed} could not be read (marked in red)"));
    }
    if stopped {
        text.push_str(", cancelled");
    }
    if changed > 0 {
        text.push_str("; Ctrl+Z undoes it, Save writes the sidecars");
    }
    text
}

/// A machine caption as the session keeps it: the best beam caption with at least `min_len`
/// words (the best one when none is that long), its alternatives and confidence.
/// `prefix` and `suffix` (a trigger word, say) go around the caption and its alternatives.
pub fn machine_cell(output: &CaptionOutput, min_len: usize, prefix: &str, suffix: &str) -> Cell {
    let mut alternatives: Vec<String> =
        output.alternatives.iter().map(|a| a.text.clone()).collect();
    if alternatives.is_empty() {
        alternatives.push(output.text.clone());
    }
    let caption = alternatives
        .iter()
        .find(|a| a.split_whitespace().count() >= min_len)
        .cloned()
        .unwrap_or_else(|| output.text.clone());
    let best = caption == output.text;
    let confidence = best.then(|| {
        output
            .confidence
            .unwrap_or_else(|| output.word_probability_geomean())
    });
    let needs_review = if best { output.needs_review } else { None };
    let flagged = best && output.needs_review == Some(true);
    // The model's tags are the classifier's and the shown caption's words (those of the best
    // caption as the model gave them; a flagged caption lends none).
    let tags = if best {
        output.tags.clone()
    } else {
        let mut tags = output.classifier_tags.clone();
        for w in session::caption_tags(&caption) {
            if !tags.contains(&w) {
                tags.push(w);
            }
        }
        tags
    };
    let affix = |c: &str| export::with_prefix_suffix(c, prefix, suffix);
    let caption = affix(&caption);
    let alternatives = alternatives.iter().map(|a| affix(a)).collect();
    Cell {
        caption,
        source: Source::Machine,
        confidence,
        alternatives,
        needs_review,
        review_note: if flagged {
            output.review_reason.map(|r| match &output.review_detail {
                Some(d) => format!("{} {d}", r.warning()),
                None => r.warning().to_string(),
            })
        } else {
            None
        },
        review_reason: flagged.then_some(output.review_reason).flatten(),
        review_detail: flagged.then(|| output.review_detail.clone()).flatten(),
        tags,
        classifier_tags: Some(output.classifier_tags.clone()),
        tags_edited: false,
        reviewed: false,
        attention: output
            .attention
            .clone()
            .filter(|m| m.words.len() == output.words.len())
            .map(|maps| session::CellAttention {
                words: output.words.iter().map(|w| w.word.clone()).collect(),
                maps,
            }),
        grounding: (best && !output.grounding.is_empty()).then(|| session::CellGrounding {
            words: output.words.iter().map(|w| w.word.clone()).collect(),
            support: output.grounding.clone(),
        }),
        grounding_note: output.grounding_note.clone(),
    }
}

impl BatchPanel {
    /// How many captions "Caption" fills, and how many "Caption all again" replaces.
    pub fn counts(&self) -> (usize, usize) {
        let entries = self.entries();
        let todo = entries
            .iter()
            .filter(|e| !e.has_caption() && e.photo != Photo::Missing)
            .count();
        let replace = entries.iter().filter(|e| e.has_caption()).count();
        (todo, replace)
    }

    /// Captions the photos without a caption; with `replace_all`, every photo (asks first
    /// when that replaces captions: see [`BatchPanel::confirm_replace`]).
    pub fn caption_all(&mut self, replace_all: bool, shared: &mut Shared) {
        if replace_all {
            let (_, replace) = self.counts();
            if replace > 0 {
                self.ask = Some(Ask::Replace(replace));
                return;
            }
        }
        self.start_run(replace_all, shared);
    }

    /// The user confirmed replacing captions.
    pub fn confirm_replace(&mut self, shared: &mut Shared) {
        self.ask = None;
        self.start_run(true, shared);
    }

    /// Captions the selected photos again (asks first when that replaces captions).
    pub fn caption_selected(&mut self, shared: &mut Shared) {
        self.caption_selected_starting_with(None, shared);
    }

    /// Captions the selected photos (or the one shown) again, each caption starting with
    /// `start_with` instead of the panel's "Start with" words when it is `Some` (the preview's
    /// box for this photo); asks first when that replaces captions.
    pub fn caption_selected_starting_with(
        &mut self,
        start_with: Option<String>,
        shared: &mut Shared,
    ) {
        let photos = self.targets();
        let captions = photos
            .iter()
            .filter(|&&i| self.entries().get(i).is_some_and(|e| e.has_caption()))
            .count();
        if captions > 0 {
            self.ask = Some(Ask::ReplaceSelected {
                photos,
                captions,
                start_with,
            });
        } else {
            self.start_run_on(Some(photos), true, start_with, shared);
        }
    }

    fn start_run(&mut self, replace_all: bool, shared: &mut Shared) {
        self.start_run_on(None, replace_all, None, shared);
    }

    /// Starts a run over the photos `only` (every photo with `None`), the captions starting
    /// with `start_with` when it is `Some` (else with the panel's "Start with" words).
    pub(super) fn start_run_on(
        &mut self,
        only: Option<Vec<usize>>,
        replace_all: bool,
        start_with: Option<String>,
        shared: &mut Shared,
    ) {
        if self.running.is_some() {
            return;
        }
        let Some(s) = &self.session else { return };
        let selection = only.is_some();
        let todo: Vec<(usize, u64)> = s
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| only.as_ref().is_none_or(|o| o.contains(i)))
            .filter(|(_, e)| e.photo != Photo::Missing && (replace_all || !e.has_caption()))
            .map(|(i, e)| (i, e.revision))
            .collect();
        if todo.is_empty() {
            shared.status.info("every photo has a caption already");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancelToken::new();
        let paths = todo
            .iter()
            .map(|&(i, _)| s.entries[i].path.clone())
            .collect();
        let mut options = self.settings.folder_options();
        if let Some(start) = start_with {
            options.decode.start_with = start.trim().to_string();
        }
        if shared.send(Command::CaptionBatch {
            id,
            paths,
            model: self.settings.model.clone(),
            options,
            cancel: cancel.clone(),
        }) {
            self.running = Some(Running {
                id,
                items: todo,
                fill_only: !replace_all,
                cancel,
                started: Instant::now(),
                done: 0,
                failed: 0,
                eta: None,
                changes: Vec::new(),
                kept: 0,
                selection,
            });
        }
    }

    /// Stops the batch run after the image being captioned.
    pub fn cancel(&mut self) {
        if let Some(r) = &self.running {
            r.cancel.cancel();
        }
    }

    pub fn on_event(&mut self, event: Event, shared: &mut Shared) {
        match event {
            Event::BatchItem { id, index, result } => {
                let Some(run) = self.running.as_mut().filter(|r| r.id == id) else {
                    return;
                };
                let Some(s) = &mut self.session else { return };
                run.done += 1;
                run.eta = captioner::jobs::eta(run.started, run.done, run.items.len());
                let Some(&(i, revision)) = run.items.get(index) else {
                    return;
                };
                match result {
                    Ok(output) => {
                        let o = &self.settings;
                        let cell = machine_cell(&output, o.min_len, &o.prefix, &o.suffix);
                        match s.batch_result(i, revision, run.fill_only, cell) {
                            Some(change) => run.changes.push(change),
                            None => run.kept += 1,
                        }
                    }
                    Err(error) => {
                        run.failed += 1;
                        if let Some(e) = s.entries.get_mut(i) {
                            e.failed = Some(error.report());
                        }
                        s.touch();
                    }
                }
            }
            Event::BatchDone {
                id,
                done,
                failed,
                stopped,
                seconds,
            } => {
                let Some(run) = self.running.take_if(|r| r.id == id) else {
                    return;
                };
                let changed = run.changes.len();
                if let Some(s) = &mut self.session {
                    let label = if run.selection {
                        format!("caption {changed} selected photos again")
                    } else if run.fill_only {
                        format!("caption {changed} photos")
                    } else {
                        format!("caption all again ({changed} photos)")
                    };
                    s.push_batch_step(&label, run.changes);
                }
                let text = done_summary(done, seconds, run.kept, failed, stopped, changed);
                if failed > 0 {
                    shared.status.warn(text);
                } else {
                    shared.status.info(text);
                }
            }
            Event::Failed { error, .. } => {
                let message = error.report();
                if let Some(run) = self.running.take()
                    && let Some(s) = &mut self.session
                {
                    s.push_batch_step("caption (stopped)", run.changes);
                }
                shared
                    .status
                    .error(format!("batch captioning failed: {message}"));
            }
            _ => {}
        }
    }

    /// The run's progress bar: photos done, rate, time left, failures.
    pub(super) fn progress_ui(&mut self, ui: &mut egui::Ui) {
        let Some(run) = &self.running else { return };
        let total = run.items.len().max(1);
        let fraction = run.done as f32 / total as f32;
        let eta = run
            .eta
            .map(|d| format!(" · {} left", clock(d)))
            .unwrap_or_default();
        let failed = if run.failed > 0 {
            format!(" · {} failed", run.failed)
        } else {
            String::new()
        };
        let rate = run.done as f64 / run.started.elapsed().as_secs_f64().max(1e-3);
        ui.add(
            egui::ProgressBar::new(fraction)
                .show_percentage()
                .text(format!(
                    "{}/{} · {rate:.1} images/s{eta}{failed}",
                    run.done,
                    run.items.len()
                )),
        );
        // Elapsed time and ETA move on between events.
        ui.ctx().request_repaint_after(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use captioner::worker::{Alternative, WordScore};

    fn output(text: &str, alternatives: &[&str]) -> CaptionOutput {
        CaptionOutput {
            text: text.into(),
            words: text
                .split_whitespace()
                .map(|w| WordScore {
                    word: w.into(),
                    probability: 0.5,
                })
                .collect(),
            alternatives: alternatives
                .iter()
                .map(|a| Alternative {
                    text: a.to_string(),
                    score: -1.0,
                })
                .collect(),
            millis: 1.0,
            confidence: Some(0.8),
            familiarity: None,
            needs_review: Some(true),
            review_reason: Some(captioner::trust::ReviewReason::LowConfidence),
            review_detail: None,
            tags: vec!["dog".into()],
            attention: None,
            ..Default::default()
        }
    }

    #[test]
    fn the_best_caption_keeps_its_confidence_and_flag() {
        let out = output("a dog", &["a dog", "a dog runs on grass"]);
        let cell = machine_cell(&out, 0, "", "");
        assert_eq!(cell.caption, "a dog");
        assert_eq!(cell.source, Source::Machine);
        assert_eq!(cell.confidence, Some(0.8));
        assert_eq!(cell.needs_review, Some(true));
        assert!(cell.review_note.is_some());
        assert_eq!(cell.alternatives, ["a dog", "a dog runs on grass"]);
        assert_eq!(cell.tags, ["dog"]);
    }

    #[test]
    fn a_minimum_length_takes_the_first_long_enough_alternative_without_the_best_ones_figures() {
        let out = output("a dog", &["a dog", "a brown dog", "a dog runs on grass"]);
        let cell = machine_cell(&out, 4, "", "");
        assert_eq!(cell.caption, "a dog runs on grass");
        assert_eq!(cell.confidence, None);
        assert_eq!(cell.needs_review, None);
        assert_eq!(cell.review_note, None);
        // None long enough: the best one.
        assert_eq!(machine_cell(&out, 9, "", "").caption, "a dog");
    }

    #[test]
    fn prefix_and_suffix_go_around_the_caption_and_its_alternatives() {
        let out = output("a dog", &["a dog", "a cat"]);
        let cell = machine_cell(&out, 0, "sks,", "(auto)");
        assert_eq!(
            cell.caption,
            export::with_prefix_suffix("a dog", "sks,", "(auto)")
        );
        assert!(cell.caption.starts_with("sks,") && cell.caption.ends_with("(auto)"));
        assert!(cell.alternatives.iter().all(|a| a.starts_with("sks,")));
    }

    #[test]
    fn a_greedy_caption_is_its_own_alternative_and_falls_back_to_the_word_probabilities() {
        let mut out = output("a dog", &[]);
        out.confidence = None;
        let cell = machine_cell(&out, 0, "", "");
        assert_eq!(cell.alternatives, ["a dog"]);
        assert_eq!(cell.confidence, Some(out.word_probability_geomean()));
    }

    #[test]
    fn the_best_caption_keeps_its_grounding_and_another_does_not() {
        let mut out = output("a man in a kitchen", &["a man in a kitchen", "a kitchen"]);
        out.grounding = vec![captioner::trust::grounding::WordGrounding {
            position: 1,
            word: "man".into(),
            support: 0.03,
            weak: true,
            note: Some("little sign of a person in this photo".into()),
        }];
        out.grounding_note = Some("grounded".into());
        let cell = machine_cell(&out, 0, "", "");
        let g = cell.grounding.expect("the best caption's grounding");
        assert_eq!(g.words, ["a", "man", "in", "a", "kitchen"]);
        assert_eq!(g.support, out.grounding);
        assert_eq!(cell.grounding_note.as_deref(), Some("grounded"));
        // A longer alternative taken for the minimum length has no grounding of its own.
        let mut out2 = out.clone();
        out2.alternatives[1].text = "a man is cooking in a kitchen".into();
        assert_eq!(machine_cell(&out2, 6, "", "").grounding, None);
    }

    #[test]
    fn the_summary_says_what_happened() {
        assert_eq!(
            done_summary(3, 1.24, 0, 0, false, 3),
            "batch: 3 captioned in 1.2 s; Ctrl+Z undoes it, Save writes the sidecars"
        );
        let text = done_summary(5, 2.0, 1, 2, true, 0);
        assert_eq!(
            text,
            "batch: 5 captioned in 2.0 s, 1 caption of yours kept (the model's are offered as \
             alternatives), 2 could not be read (marked in red), cancelled"
        );
    }
}
