//! Caption time: how to decode ([`DecodeOptions`]), a loaded encoder + decoder pair that
//! captions images ([`Captioner`]), its results ([`CaptionResult`]) and a batched search over
//! many photos ([`CaptionStream`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{PipelineError, load_encoder};
use crate::decoder::{self, Caption, geometric_mean_probability};
use crate::encoder::{Encoder, PreprocessedImage};
use crate::model_dir::{self, LoadedModel};
pub use crate::trust::grounding::{CaptionSource, Grounding, WordGrounding};

/// How to decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Beam width; 1 is greedy decoding.
    pub beam: usize,
    /// Longest caption in words.
    pub max_len: usize,
    /// Repeated n-gram blocking and length normalisation.
    #[serde(default)]
    pub search: decoder::SearchOptions,
    /// Grounded decoding and per-word support ([`Grounding::On`], the default), or the plain
    /// search of before ([`Grounding::Off`]: the same captions as without grounding).
    #[serde(default)]
    pub grounding: Grounding,
    /// "Start the caption with": words every caption begins with, which the decoder goes
    /// on from (empty or blank: none). See [`Prefix`] for how they are read.
    #[serde(default)]
    pub start_with: String,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            beam: 3,
            max_len: 30,
            search: decoder::SearchOptions::default(),
            grounding: Grounding::default(),
            start_with: String::new(),
        }
    }
}

impl DecodeOptions {
    /// The same options with captions starting with `text` ([`DecodeOptions::start_with`]).
    pub fn start_with(mut self, text: impl Into<String>) -> Self {
        self.start_with = text.into();
        self
    }
}

/// The start a caption is given ([`DecodeOptions::start_with`]) as a caption model reads it
/// ([`Captioner::prefix`]).
///
/// The text is split at whitespace; each piece is one word of the caption, shown as the user
/// typed it ("A", "cat,"). The decoder is fed, for each, the vocabulary's id of the piece
/// cleaned as training captions are (lower case, punctuation removed), or `<unk>` when the
/// vocabulary lacks the word (or cleaning leaves nothing of it, as of "2"): the caption then
/// still shows the user's word, and the decoder goes on from "a word it does not know".
///
/// The prefix's words are the user's, not the model's: a caption's score and confidence
/// cover only the words after them (their word probabilities, the beam's agreement), its
/// grounding checks only those (the prefix's words are never marked as unsupported), and a
/// prefixed caption is never replaced by the image classifier's. They do count in the
/// caption's length and in the n-gram blocking, and their content words are among its tags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prefix {
    /// The words as given.
    pub words: Vec<String>,
    /// The token fed for each word.
    pub tokens: Vec<u32>,
}

impl Prefix {
    /// No prefix.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// One word of a caption with the model's probability for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredWord {
    pub word: String,
    pub probability: f32,
}

/// Another caption of the beam, with its length-normalised log-probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredCaption {
    pub text: String,
    pub score: f32,
}

/// A caption of one image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptionResult {
    pub text: String,
    /// Each word of `text` with the model's probability for it (for the words of a given
    /// start, the probability the model gave the word it was fed).
    pub words: Vec<ScoredWord>,
    /// How many of the first `words` were given ([`DecodeOptions::start_with`]), not chosen
    /// by the model; every alternative starts with them too. Left out of JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub given_words: usize,
    /// The beam's captions, best first (the first is `text`); their scores cover the words
    /// after the given ones.
    pub alternatives: Vec<ScoredCaption>,
    /// Encode + decode time in milliseconds.
    pub millis: f64,
    /// The calibrated probability that the caption is acceptable (0..1); `None` when the model
    /// folder has no calibration (see [`Captioner::trust_note`]).
    #[serde(default)]
    pub confidence: Option<f32>,
    /// How much the photo looks like the model's training photos (0..1: the share of dev
    /// photos no more familiar); `None` without familiarity data.
    #[serde(default)]
    pub familiarity: Option<f32>,
    /// The caption should be checked by a person; `None` without calibration.
    #[serde(default)]
    pub needs_review: Option<bool>,
    /// Why it needs review (`review_reason.warning()` words it).
    #[serde(default)]
    pub review_reason: Option<crate::trust::ReviewReason>,
    /// Specifics of the reason for people (which animal the caption names and which the
    /// image classifier sees), when there are any.
    #[serde(default)]
    pub review_detail: Option<String>,
    /// Plain-word keywords: from the ImageNet classes above the calibrated threshold, then
    /// the caption's content words.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The tags the ImageNet classifier gave (the first of `tags`; the others are the
    /// caption's content words), so that a changed caption can take its own words instead.
    #[serde(default)]
    pub classifier_tags: Vec<String>,
    /// Where the decoder looked for each word of `text` (attention decoders only; `None` for
    /// the merge and inject decoders, which see the photo as one pooled vector).
    #[serde(default)]
    pub attention: Option<decoder::AttentionMaps>,
    /// How well the photo supports each content word of `text`; empty when grounding is off
    /// or the model cannot ground (see `grounding_note`).
    #[serde(default)]
    pub grounding: Vec<WordGrounding>,
    /// Where the caption came from: the decoder, or the image classifier when the decoder's
    /// captions named things the photo shows little sign of.
    #[serde(default)]
    pub source: CaptionSource,
    /// For people: why the caption is not grounded, or that it comes from the classifier.
    #[serde(default)]
    pub grounding_note: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CaptionResult {
    /// The geometric mean of the word probabilities (see [`geometric_mean_probability`]) of
    /// the words the model chose (not the given ones).
    pub fn word_probability_geomean(&self) -> f32 {
        let chosen = self.words.get(self.given_words..).unwrap_or_default();
        geometric_mean_probability(chosen.iter().map(|w| w.probability))
    }

    /// The caption needs review for a reason other than its confidence (an unfamiliar photo,
    /// the wrong animal): the confidence may still be high, as the calibration never saw
    /// such photos, and the warning overrules it.
    pub fn confidence_overruled(&self) -> bool {
        self.needs_review == Some(true)
            && self.review_reason != Some(crate::trust::ReviewReason::LowConfidence)
    }
}

/// An encoder and a caption model that belong together.
pub struct Captioner {
    pub encoder: Encoder,
    pub model: LoadedModel,
    pub model_dir: PathBuf,
    /// Familiarity, calibration and tags of the model (those its folder has).
    pub trust: crate::trust::Trust,
    /// Why captions lack a confidence, if they do (no calibration, or it could not be read).
    pub trust_note: Option<String>,
    /// The settings of grounded decoding.
    pub grounding: crate::trust::grounding::GroundingParams,
}

impl Captioner {
    /// Loads the caption model in `model_dir` and the shipped encoder, and checks that the
    /// model was trained on this encoder's features.
    pub fn load(model_dir: &Path, device: &Device) -> Result<Captioner, PipelineError> {
        let model = model_dir::load_model(model_dir, device)?;
        let encoder = load_encoder(device)?;
        Captioner::new(encoder, model, model_dir)
    }

    /// Pairs an already loaded encoder with a model.
    pub fn new(
        encoder: Encoder,
        model: LoadedModel,
        model_dir: &Path,
    ) -> Result<Captioner, PipelineError> {
        let wanted = &model.config.encoder_id;
        if !wanted.is_empty() && wanted != encoder.id() {
            return Err(PipelineError::EncoderMismatch {
                model: model_dir.to_path_buf(),
                wanted: wanted.clone(),
                have: encoder.id().to_string(),
            });
        }
        let dim = model.decoder.config().feature_dim;
        if dim != encoder.feature_dim() {
            return Err(PipelineError::Other(format!(
                "{}: the model expects {dim}-d features, the encoder gives {}",
                model_dir.display(),
                encoder.feature_dim()
            )));
        }
        // A model without (or with unreadable) trust files still captions; the note says so.
        let (mut trust, problems) = crate::trust::Trust::load(model_dir, encoder.weights_path());
        let trust_note = if problems.is_empty() {
            trust.note()
        } else {
            // A damaged trust file: captions come without a confidence, and say why.
            trust.calibration = None;
            let why = problems
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let what_to_do = if why.contains("captioner calibrate") {
                ""
            } else {
                " (run `captioner calibrate` again)"
            };
            Some(format!(
                "no confidence for this model's captions: {why}{what_to_do}"
            ))
        };
        trust.set_vocab(&model.vocab);
        Ok(Captioner {
            encoder,
            model,
            model_dir: model_dir.to_path_buf(),
            trust,
            trust_note,
            grounding: Default::default(),
        })
    }

    /// How this model reads a caption's given start (see [`Prefix`]).
    pub fn prefix(&self, text: &str) -> Prefix {
        let vocab = &self.model.vocab;
        let mut prefix = Prefix::default();
        for piece in text.split_whitespace() {
            let cleaned = crate::dataset::clean_caption(piece, crate::dataset::Cleaning::Natural);
            let token = match cleaned.as_slice() {
                [word] => vocab
                    .iter()
                    .position(|w| w == word)
                    .map_or(decoder::UNK, |i| i as u32),
                _ => decoder::UNK,
            };
            // The special tokens are never fed as words ("<end>" typed is an unknown word).
            let token = if token < decoder::SPECIAL_WORDS.len() as u32 {
                decoder::UNK
            } else {
                token
            };
            prefix.words.push(piece.to_string());
            prefix.tokens.push(token);
        }
        prefix
    }

    /// Captions one preprocessed image.
    pub fn caption_image(
        &self,
        image: PreprocessedImage,
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let started = Instant::now();
        let out = self.encoder.encode(&[image])?;
        let input = self
            .decoder_inputs(&out)?
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::Other("the encoder returned no features".into()))?;
        let mut result = self.caption_features(&input, options)?;
        result.millis = started.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// What the caption model reads of each encoded image: the pooled feature, or, for an
    /// attention decoder, the feature map before pooling (row-major `[rows, cols, dim]`).
    pub fn decoder_inputs(
        &self,
        out: &crate::encoder::EncoderOutput,
    ) -> Result<Vec<Vec<f32>>, PipelineError> {
        let cfg = self.model.decoder.config();
        let t = if cfg.kind == decoder::DecoderKind::Attention {
            let map = out.feature_map.to_dtype(candle_core::DType::F32)?;
            let (n, rows, cols, dim) = map.dims4()?;
            if rows * cols * dim != cfg.input_dim() {
                return Err(PipelineError::Other(format!(
                    "{}: the model attends over {} cells of {} values, the encoder gives a {rows}x{cols}x{dim} map",
                    self.model_dir.display(),
                    cfg.cells(),
                    cfg.feature_dim
                )));
            }
            map.reshape((n, rows * cols * dim))?
        } else {
            out.pooled.to_dtype(candle_core::DType::F32)?
        };
        Ok(t.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
    }

    /// Whether the model reads feature maps (an attention decoder) rather than pooled features.
    pub fn wants_spatial(&self) -> bool {
        self.model.decoder.config().kind == decoder::DecoderKind::Attention
    }

    /// Captions an image file.
    pub fn caption_file(
        &self,
        path: &Path,
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let started = Instant::now();
        let image = self.encoder.preprocess_file(path)?;
        let mut result = self.caption_image(image, options)?;
        result.millis = started.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// Captions from one image's decoder input ([`Captioner::decoder_inputs`]: the pooled
    /// feature, `feature_dim` values, or an attention decoder's feature map).
    pub fn caption_features(
        &self,
        features: &[f32],
        options: &DecodeOptions,
    ) -> Result<CaptionResult, PipelineError> {
        let t = Tensor::from_slice(features, (1, features.len()), self.model.decoder.device())?;
        let prefix = self.prefix(&options.start_with);
        self.caption_tensor(&t, &self.pooled_of(features), options, &prefix)
    }

    /// The pooled feature of a decoder input, which the trust figures read: the input itself,
    /// or an attention decoder's map averaged over its cells.
    pub fn pooled_of(&self, features: &[f32]) -> Vec<f32> {
        let cfg = self.model.decoder.config();
        if cfg.kind == decoder::DecoderKind::Attention && features.len() == cfg.input_dim() {
            let f = cfg.feature_dim;
            let mut mean = vec![0.0f32; f];
            for cell in features.chunks_exact(f) {
                for (m, x) in mean.iter_mut().zip(cell) {
                    *m += x;
                }
            }
            let n = cfg.cells() as f32;
            mean.iter_mut().for_each(|m| *m /= n);
            mean
        } else {
            features.to_vec()
        }
    }

    /// Captions many images' decoder inputs with one batched beam search
    /// ([`CaptionStream`], [`CAPTION_BATCH`] photos in flight): the same results as
    /// [`Captioner::caption_features`] on each, in order, several times faster.
    pub fn caption_many(
        &self,
        features: &[&[f32]],
        options: &DecodeOptions,
    ) -> Result<Vec<CaptionResult>, PipelineError> {
        let mut stream = self.stream(options)?;
        let mut out: Vec<Option<CaptionResult>> = vec![None; features.len()];
        let mut next = 0;
        while next < features.len() || stream.in_flight() > 0 {
            while next < features.len() && stream.in_flight() < CAPTION_BATCH {
                stream.push(next, features[next])?;
                next += 1;
            }
            for (id, result) in stream.step()? {
                out[id] = Some(result?);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| PipelineError::Other("a photo got no caption".into())))
            .collect()
    }

    /// A batched caption search to push photos into and take captions out of as they finish
    /// (the folder pipeline keeps it fed while the encoder works on the next photos).
    pub fn stream(&self, options: &DecodeOptions) -> Result<CaptionStream<'_>, PipelineError> {
        Ok(CaptionStream {
            captioner: self,
            search: decoder::BatchSearch::new(
                &self.model.decoder,
                options.beam.max(1),
                options.max_len,
                &options.search,
            )?,
            flight: HashMap::new(),
            grounded: self.grounding_unavailable(options.grounding).is_none(),
            grounding: options.grounding,
            prefix: self.prefix(&options.start_with),
        })
    }

    /// Greedy captions of many decoder inputs at once (`n * input_dim` values), by the
    /// batched search with a beam of one.
    pub fn greedy_many(
        &self,
        features: &[f32],
        options: &DecodeOptions,
    ) -> Result<Vec<Vec<String>>, PipelineError> {
        let dim = self.model.decoder.config().input_dim();
        let device = self.model.decoder.device();
        let inputs = features
            .chunks_exact(dim.max(1))
            .map(|f| Tensor::from_slice(f, (1, dim), device))
            .collect::<Result<Vec<_>, _>>()?;
        let captions = decoder::beam_search_many(
            &self.model.decoder,
            &inputs,
            1,
            options.max_len,
            &options.search,
            3 * CAPTION_BATCH,
        )?;
        Ok(captions
            .iter()
            .map(|c| c.first().map(|c| self.words(&c.tokens)).unwrap_or_default())
            .collect())
    }

    fn caption_tensor(
        &self,
        input: &Tensor,
        feature: &[f32],
        options: &DecodeOptions,
        prefix: &Prefix,
    ) -> Result<CaptionResult, PipelineError> {
        let pooled = input;
        let grounded = self.grounding_unavailable(options.grounding).is_none();
        let evidence = self.trust.evidence(feature);
        let mut captions: Vec<Caption> = if options.beam <= 1 {
            decoder::greedy_with_prefix(
                &self.model.decoder,
                pooled,
                options.max_len,
                &options.search,
                &prefix.tokens,
            )?
        } else {
            decoder::beam_search_constrained(
                &self.model.decoder,
                pooled,
                options.beam,
                options.max_len,
                &options.search,
                &decoder::Constraints::prefix(prefix.tokens.clone()),
            )?
        };
        if grounded && let Some(bias) = self.second_pass(&captions, &evidence) {
            let second = decoder::beam_search_constrained(
                &self.model.decoder,
                pooled,
                options.beam.max(1),
                options.max_len,
                &options.search,
                &decoder::Constraints {
                    prefix: prefix.tokens.clone(),
                    bias,
                },
            )?;
            captions = merge_passes(second, captions);
        }
        self.result_from(&captions, feature, &evidence, options.grounding, prefix)
    }

    /// Whether grounded decoding searches a photo again, with token biases (returned): when
    /// the plain search's best caption names an object the photo shows little sign of, or
    /// misses one the image classifier is sure of. Most Flickr8k photos are not searched
    /// again, so their captions are the plain search's.
    fn second_pass(
        &self,
        captions: &[Caption],
        evidence: &crate::trust::Evidence,
    ) -> Option<Vec<decoder::TokenBias>> {
        let best = captions.first()?;
        let bias = self.trust.token_bias(evidence, &self.grounding);
        let named: Vec<&'static str> = self
            .words(&best.tokens)
            .iter()
            .filter_map(|w| crate::trust::grounding::category_of(w))
            .collect();
        // The given words are the user's: a penalised word among them is no reason to
        // search again (the search could not take it out).
        let chosen = best.tokens.get(best.given..).unwrap_or_default();
        let needed = bias.iter().any(|b| {
            if b.bias < 0.0 {
                chosen.contains(&b.token)
            } else {
                // A bonus word is missing when the caption names nothing of its category
                // ("dogs" has the dog of "dog").
                !self
                    .model
                    .vocab
                    .get(b.token as usize)
                    .and_then(|w| crate::trust::grounding::category_of(w))
                    .is_some_and(|c| named.contains(&c))
            }
        });
        needed.then_some(bias)
    }

    /// The caption result of a search's captions (best first) of the photo with pooled
    /// `feature`: words, alternatives, attention maps, grounding and trust figures (see
    /// [`Prefix`] for what the given words count in).
    fn result_from(
        &self,
        captions: &[Caption],
        feature: &[f32],
        evidence: &crate::trust::Evidence,
        grounding: Grounding,
        prefix: &Prefix,
    ) -> Result<CaptionResult, PipelineError> {
        let unavailable = self.grounding_unavailable(grounding);
        let reranked;
        let captions = if unavailable.is_none() && self.grounding.rerank_weight != 0.0 {
            reranked = self.rerank(captions, evidence);
            reranked.as_slice()
        } else {
            captions
        };
        let best = captions
            .first()
            .ok_or_else(|| PipelineError::Other("the decoder returned no caption".into()))?;
        let best_words = self.caption_words(best, prefix);
        let text = best_words.join(" ");
        let words: Vec<ScoredWord> = best_words
            .into_iter()
            .zip(&best.word_probs)
            .map(|(word, &probability)| ScoredWord { word, probability })
            .collect();
        let mut result = CaptionResult {
            text,
            words,
            given_words: best.given,
            alternatives: captions
                .iter()
                .map(|c| ScoredCaption {
                    text: self.caption_words(c, prefix).join(" "),
                    score: c.score,
                })
                .collect(),
            millis: 0.0,
            confidence: None,
            familiarity: None,
            needs_review: None,
            review_reason: None,
            review_detail: None,
            tags: Vec::new(),
            classifier_tags: Vec::new(),
            attention: self.model.decoder.config().attention.and_then(|g| {
                (best.attention.len() == best.tokens.len()).then(|| decoder::AttentionMaps {
                    rows: g.rows,
                    cols: g.cols,
                    words: best.attention.clone(),
                })
            }),
            grounding: Vec::new(),
            source: CaptionSource::Decoder,
            grounding_note: None,
        };
        match unavailable {
            Some(note) => result.grounding_note = Some(note),
            None => {
                if result.given_words == 0 {
                    self.maybe_classifier_caption(&mut result, evidence);
                }
                let words: Vec<String> = result.words.iter().map(|w| w.word.clone()).collect();
                let given = result.given_words;
                result.grounding = self.trust.ground(evidence, &words);
                result.grounding.retain(|g| g.position >= given);
            }
        }
        let a = self.assess_with(feature, &result, evidence);
        result.confidence = a.confidence;
        result.familiarity = a.familiarity;
        result.needs_review = a.needs_review;
        result.review_reason = a.review_reason;
        result.review_detail = a.review_detail;
        result.tags = a.tags;
        result.classifier_tags = a.classifier_tags;
        if result.given_words > 0 {
            // The given words' content words are tags too (cleaned as the vocabulary is).
            let given: Vec<String> = result.words[..result.given_words]
                .iter()
                .flat_map(|w| {
                    crate::dataset::clean_caption(&w.word, crate::dataset::Cleaning::Natural)
                })
                .collect();
            crate::trust::add_word_tags(
                &mut result.tags,
                crate::trust::content_words(given.iter().map(String::as_str)),
            );
        }
        Ok(result)
    }

    /// The words of a caption: the given ones as given, then the vocabulary's.
    fn caption_words(&self, caption: &Caption, prefix: &Prefix) -> Vec<String> {
        let mut words = self.words(&caption.tokens);
        for (w, given) in words.iter_mut().zip(&prefix.words).take(caption.given) {
            w.clone_from(given);
        }
        words
    }

    /// The beam's captions ranked by their score plus [`GroundingParams::rerank_weight`]
    /// times the summed ln support of their object words (stable: ties keep the beam's order).
    ///
    /// [`GroundingParams::rerank_weight`]: crate::trust::grounding::GroundingParams::rerank_weight
    fn rerank(&self, captions: &[Caption], evidence: &crate::trust::Evidence) -> Vec<Caption> {
        let p = &self.grounding;
        let mut ranked: Vec<(f32, &Caption)> = captions
            .iter()
            .map(|c| {
                let words = self.words(&c.tokens);
                let support: f32 = words
                    .iter()
                    .filter(|w| self.trust.is_object_word(w))
                    .filter_map(|w| self.trust.support(evidence, w))
                    .map(|s| s.max(p.support_floor).ln())
                    .sum();
                (c.score + p.rerank_weight * support, c)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.into_iter().map(|(_, c)| c.clone()).collect()
    }

    /// Replaces the decoder's caption in `result` by a short one from the image classifier
    /// ([`crate::trust::grounding::classifier_caption`]) when the decoder's names an object
    /// the photo shows little sign of and the classifier is sure of something the caption
    /// does not name. The decoder's captions stay as the alternatives.
    fn maybe_classifier_caption(
        &self,
        result: &mut CaptionResult,
        evidence: &crate::trust::Evidence,
    ) {
        let p = &self.grounding;
        let (Some(index), Some(classifier)) = (&self.trust.class_index, &self.trust.classifier)
        else {
            return;
        };
        let words: Vec<String> = result.words.iter().map(|w| w.word.clone()).collect();
        let unsupported = evidence.unfamiliar
            || self
                .trust
                .lowest_object_support(evidence, &words)
                .is_some_and(|s| s < p.fallback_below);
        if !unsupported {
            return;
        }
        let Some(surest) = index.surest(&evidence.classes) else {
            return;
        };
        let named = |w: &String| {
            crate::concepts::concept_word(w) == surest.name
                || index
                    .classes_of(w)
                    .is_some_and(|cs| cs.contains(&surest.class))
        };
        if surest.probability < p.fallback_sure || words.iter().any(named) {
            return;
        }
        let Some(text) = crate::trust::grounding::classifier_caption(
            classifier.tags(surest.class),
            surest.class,
        ) else {
            return;
        };
        result.words = text
            .split(' ')
            .map(|w| ScoredWord {
                word: w.to_string(),
                probability: surest.probability,
            })
            .collect();
        result.alternatives.insert(
            0,
            ScoredCaption {
                text: text.clone(),
                score: surest.probability.max(1e-6).ln(),
            },
        );
        result.text = text;
        result.attention = None;
        result.source = CaptionSource::Classifier;
        result.grounding_note = Some(
            "From the image classifier: the decoder's caption named things the photo shows little sign of."
                .into(),
        );
    }

    /// Why captions decoded with `grounding` are not grounded, for people; `None` when they
    /// are.
    pub fn grounding_unavailable(&self, grounding: Grounding) -> Option<String> {
        if grounding == Grounding::Off {
            Some("Grounding is off: the caption's words are not checked against the photo.".into())
        } else if self.trust.concepts.is_none() {
            Some("This model has no concept detector: captions are not grounded.".into())
        } else if self.trust.classifier.is_none() {
            Some(format!(
                "The ImageNet tag list ({}) is missing beside the encoder weights: captions are not grounded.",
                crate::trust::tags::TAGS_FILE
            ))
        } else {
            None
        }
    }

    /// The trust figures (and their signals) of a caption of the photo with pooled `feature`.
    pub fn assess(&self, feature: &[f32], result: &CaptionResult) -> crate::trust::Assessment {
        let words: Vec<(String, f32)> = result
            .words
            .iter()
            .map(|w| (w.word.clone(), w.probability))
            .collect();
        let alternatives: Vec<String> =
            result.alternatives.iter().map(|a| a.text.clone()).collect();
        self.trust.assess(feature, &words, &alternatives)
    }

    /// The trust figures of the words the model chose (those after the given ones, of the
    /// caption and of its alternatives).
    fn assess_with(
        &self,
        feature: &[f32],
        result: &CaptionResult,
        evidence: &crate::trust::Evidence,
    ) -> crate::trust::Assessment {
        let given = result.given_words;
        let words: Vec<(String, f32)> = result
            .words
            .iter()
            .skip(given)
            .map(|w| (w.word.clone(), w.probability))
            .collect();
        let alternatives: Vec<String> = result
            .alternatives
            .iter()
            .map(|a| {
                if given == 0 {
                    a.text.clone()
                } else {
                    a.text.split(' ').skip(given).collect::<Vec<_>>().join(" ")
                }
            })
            .collect();
        self.trust
            .assess_with(feature, &words, &alternatives, evidence)
    }

    fn words(&self, tokens: &[u32]) -> Vec<String> {
        tokens
            .iter()
            .map(|&t| {
                self.model
                    .vocab
                    .get(t as usize)
                    .cloned()
                    .unwrap_or_else(|| decoder::SPECIAL_WORDS[3].to_string())
            })
            .collect()
    }
}

/// The captions of a photo searched twice: those of the biased second search first, then the
/// plain search's that it does not have.
fn merge_passes(mut second: Vec<Caption>, first: Vec<Caption>) -> Vec<Caption> {
    for c in first {
        if !second.iter().any(|s| s.tokens == c.tokens) {
            second.push(c);
        }
    }
    second
}

/// Photos in flight in [`Captioner::caption_many`] and the folder pipeline: 16 photos at
/// beam 3 make the per-step products about 40 rows, enough to be compute-bound.
pub const CAPTION_BATCH: usize = 16;

/// A photo whose search ended: its id and its result.
pub type Finished = (usize, Result<CaptionResult, PipelineError>);

/// A photo in a [`CaptionStream`]: its pooled feature and what grounding sees in it (for
/// its trust figures), its decoder input (for a second, grounded search) and, while that
/// runs, the first search's captions.
struct InFlight {
    pooled: Vec<f32>,
    evidence: crate::trust::Evidence,
    input: Tensor,
    first: Option<Vec<Caption>>,
    /// Its captions' given start (the stream's, or its own).
    prefix: Prefix,
}

/// A batched caption search ([`Captioner::stream`]): push photos' decoder inputs, step, and
/// take each photo's [`CaptionResult`] when its search ends.
pub struct CaptionStream<'a> {
    captioner: &'a Captioner,
    search: decoder::BatchSearch<'a>,
    /// Each photo in flight.
    flight: HashMap<usize, InFlight>,
    grounding: Grounding,
    /// Whether the search is grounded (biased per photo).
    grounded: bool,
    /// The given start of its photos' captions ([`DecodeOptions::start_with`]) unless a
    /// photo has its own ([`CaptionStream::push_starting_with`]).
    prefix: Prefix,
}

impl CaptionStream<'_> {
    /// Starts captioning one photo from its decoder input; `id` comes back with its result.
    pub fn push(&mut self, id: usize, features: &[f32]) -> Result<(), PipelineError> {
        let prefix = self.prefix.clone();
        self.push_prefixed(id, features, prefix)
    }

    /// [`CaptionStream::push`] with the photo's own given start instead of the stream's
    /// (`start_with` as [`DecodeOptions::start_with`]; empty: none).
    pub fn push_starting_with(
        &mut self,
        id: usize,
        features: &[f32],
        start_with: &str,
    ) -> Result<(), PipelineError> {
        let prefix = self.captioner.prefix(start_with);
        self.push_prefixed(id, features, prefix)
    }

    fn push_prefixed(
        &mut self,
        id: usize,
        features: &[f32],
        prefix: Prefix,
    ) -> Result<(), PipelineError> {
        let device = self.captioner.model.decoder.device();
        let t = Tensor::from_slice(features, (1, features.len()), device)?;
        let pooled = self.captioner.pooled_of(features);
        let evidence = self.captioner.trust.evidence(&pooled);
        if prefix.is_empty() {
            self.search.push(id, &t)?;
        } else {
            let c = decoder::Constraints::prefix(prefix.tokens.clone());
            self.search.push_constrained(id, &t, c)?;
        }
        self.flight.insert(
            id,
            InFlight {
                pooled,
                evidence,
                input: t,
                first: None,
                prefix,
            },
        );
        Ok(())
    }

    /// Photos being captioned.
    pub fn in_flight(&self) -> usize {
        self.search.in_flight()
    }

    /// One decoding step for every photo in flight: the photos that are done, each with its
    /// result (in no particular order).
    pub fn step(&mut self) -> Result<Vec<Finished>, PipelineError> {
        let done = self.search.step()?;
        let mut out = Vec::with_capacity(done.len());
        for (id, captions) in done {
            let Some(mut f) = self.flight.remove(&id) else {
                continue;
            };
            if self.grounded
                && f.first.is_none()
                && let Some(bias) = self.captioner.second_pass(&captions, &f.evidence)
            {
                // Searched again with the biases; its result comes with that search's end.
                let c = decoder::Constraints {
                    prefix: f.prefix.tokens.clone(),
                    bias,
                };
                self.search.push_constrained(id, &f.input, c)?;
                f.first = Some(captions);
                self.flight.insert(id, f);
                continue;
            }
            let captions = match f.first {
                Some(first) => merge_passes(captions, first),
                None => captions,
            };
            out.push((
                id,
                self.captioner.result_from(
                    &captions,
                    &f.pooled,
                    &f.evidence,
                    self.grounding,
                    &f.prefix,
                ),
            ));
        }
        Ok(out)
    }
}
