//! Evaluation on a split: captions every photo and scores the captions against the references
//! ([`evaluate`], [`EvalReport`]).

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Captioner, DecodeOptions, PipelineError};
use crate::dataset::{self, Dataset, Split};
use crate::features::{self, FeatureCache};

/// Scores of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub split: String,
    pub images: usize,
    pub beam: usize,
    pub bleu: [f64; 4],
    pub cider_d: f64,
    /// Images skipped (no feature could be computed), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub seconds: f64,
    /// How well the calibrated confidence ranks good and bad captions (beam search with a
    /// calibrated model only).
    #[serde(default)]
    pub trust: Option<TrustFigures>,
    /// Object hallucination (CHAIR-s, CHAIR-i, grounded share), over all captions and over
    /// those not flagged for review; `None` only in reports stored before it was measured.
    #[serde(default)]
    pub chair: Option<crate::eval::chair::ChairReport>,
}

/// How well the confidence and needs_review find bad captions (per-photo CIDEr-D below
/// [`crate::trust::calibration::ACCEPTABLE_CIDER`]) on an evaluated split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrustFigures {
    pub bad: usize,
    pub auroc_confidence: Option<f64>,
    pub auroc_word_geomean: Option<f64>,
    pub review: crate::trust::calibration::ReviewFigures,
}

/// Captions every image of `split` and scores the captions against the references.
/// Features come from `cache` (computed and cached first where missing).
pub fn evaluate(
    captioner: &Captioner,
    dataset: &Dataset,
    split: Split,
    cache: &FeatureCache,
    options: &DecodeOptions,
    stop: &std::sync::atomic::AtomicBool,
    on_extract: &mut dyn FnMut(features::ExtractEvent),
) -> Result<EvalReport, PipelineError> {
    let started = Instant::now();
    let entries: Vec<&dataset::ImageEntry> = dataset.split(split).collect();
    if entries.is_empty() {
        return Err(PipelineError::Other(format!(
            "{}: the dataset has no {} split",
            dataset.root.display(),
            split.name()
        )));
    }
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let spatial = captioner.wants_spatial();
    let report = features::extract(
        &captioner.encoder,
        cache,
        &paths,
        &features::ExtractOptions {
            spatial,
            ..features::ExtractOptions::default()
        },
        stop,
        on_extract,
    )
    .map_err(|e| PipelineError::Other(e.to_string()))?;
    let cached: Vec<Option<Vec<f32>>> = if spatial {
        features::load_cached_spatial(cache, &paths)
            .into_iter()
            .map(|m| m.map(|m| m.to_f32()))
            .collect()
    } else {
        features::load_cached(cache, &paths)
    };
    let mut hyps = Vec::new();
    let mut refs = Vec::new();
    let mut skipped = report.failed.clone();
    let mut inputs: Vec<Vec<f32>> = Vec::new();
    // The objects in each captioned photo: those its references mention, and a COCO dataset's
    // instance categories where it has `instances_*.json`.
    let instances = match dataset.layout {
        dataset::Layout::Coco => crate::eval::chair::instance_categories(&dataset.caption_files)?,
        _ => None,
    };
    let mut truths = Vec::new();
    for (entry, feature) in entries.iter().zip(cached) {
        let Some(feature) = feature else {
            if !skipped.iter().any(|(p, _)| p == &entry.path) {
                skipped.push((entry.path.clone(), "no feature in the cache".into()));
            }
            continue;
        };
        inputs.push(feature);
        let mut truth = crate::eval::chair::objects_of_references(&entry.captions);
        if let Some(found) = instances
            .as_ref()
            .and_then(|i| crate::eval::chair::instances_of(i, &entry.name))
        {
            truth.extend(found);
        }
        truths.push(truth);
        refs.push(entry.captions.clone());
    }
    // (confidence, word geomean, needs_review) of each beam-searched caption.
    let mut trust_rows: Vec<(Option<f32>, f32, Option<bool>)> = Vec::new();
    let grounded = captioner.grounding_unavailable(options.grounding).is_none();
    if options.beam <= 1 && grounded {
        // Grounded greedy decoding: the batched search with a beam of one, biased.
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        for c in captioner.caption_many(&views, options)? {
            hyps.push(c.text);
        }
    } else if options.beam <= 1 {
        for words in captioner.greedy_many(&inputs.concat(), options)? {
            hyps.push(words.join(" "));
        }
    } else {
        let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        for c in captioner.caption_many(&views, options)? {
            trust_rows.push((c.confidence, c.word_probability_geomean(), c.needs_review));
            hyps.push(c.text);
        }
    }
    let scores = crate::eval::evaluate(&hyps, &refs);
    let trust = trust_figures(&hyps, &refs, &trust_rows);
    let flagged: Option<Vec<bool>> = (trust_rows.len() == hyps.len())
        .then(|| {
            trust_rows
                .iter()
                .map(|r| r.2)
                .collect::<Option<Vec<bool>>>()
        })
        .flatten();
    let chair = crate::eval::chair::ChairReport::measure(
        &hyps,
        &truths,
        flagged.as_deref(),
        if instances.is_some() {
            crate::eval::chair::Truth::ReferencesAndInstances
        } else {
            crate::eval::chair::Truth::References
        },
    );
    Ok(EvalReport {
        split: split.name().to_string(),
        images: hyps.len(),
        beam: options.beam.max(1),
        bleu: scores.bleu,
        cider_d: scores.cider_d,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
        trust,
        chair: Some(chair),
    })
}

fn trust_figures(
    hyps: &[String],
    refs: &[Vec<String>],
    rows: &[(Option<f32>, f32, Option<bool>)],
) -> Option<TrustFigures> {
    if rows.len() != hyps.len() || rows.iter().any(|r| r.0.is_none() || r.2.is_none()) {
        return None;
    }
    let h: Vec<Vec<String>> = hyps.iter().map(|t| crate::eval::tokenize(t)).collect();
    let r: Vec<Vec<Vec<String>>> = refs
        .iter()
        .map(|rs| rs.iter().map(|t| crate::eval::tokenize(t)).collect())
        .collect();
    let cider = crate::eval::cider_d_scores(&h, &r).per_image;
    let good: Vec<bool> = cider
        .iter()
        .map(|c| *c >= crate::trust::calibration::ACCEPTABLE_CIDER)
        .collect();
    let conf: Vec<f32> = rows.iter().map(|r| r.0.unwrap_or(0.0)).collect();
    let geo: Vec<f32> = rows.iter().map(|r| r.1).collect();
    let flagged: Vec<bool> = rows.iter().map(|r| r.2.unwrap_or(false)).collect();
    Some(TrustFigures {
        bad: good.iter().filter(|g| !**g).count(),
        auroc_confidence: crate::trust::auroc(&conf, &good),
        auroc_word_geomean: crate::trust::auroc(&geo, &good),
        review: crate::trust::calibration::review_figures(&flagged, &good),
    })
}
