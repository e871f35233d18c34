//! How much a photo looks like the photos a model learned from.
//!
//! The pooled encoder features of the training photos are L2-normalised, centred (the mean
//! training photo subtracted) and projected onto their top principal directions (a `dim`-d
//! basis), stored in f16 (`familiarity.safetensors`) with, per photo, the part of the cosine
//! similarity the projection leaves out (`offsets`), and up to [`CAPTIONS_KEPT`] reference
//! captions per training photo as token ids of the model's vocabulary.
//!
//! Two similarities come from one pass over the bank:
//! - the **familiarity similarity**: the mean cosine similarity of the photo's features to
//!   those of its [`NEIGHBOURS`] nearest training photos, computed as
//!   `p(x)·p(t) + x·m + t·m - m·m` (`p` the projection of the centred feature, `m` the mean
//!   training photo), which equals the full 1280-d cosine up to the part of the centred features
//!   outside the basis. Part of it is how much the photo looks like the average training photo,
//!   which is what tells photos unlike Flickr8k from Flickr8k's (AUROC 0.92 for the 24 photos of
//!   tests/fixtures/unfamiliar against the 1,000 dev photos, 0.97 with the 81 of
//!   tests/fixtures/everyday too, against 0.75 on the 24 for the similarity this replaced: the
//!   cosine of the renormalised projections, which drops that part);
//! - the **centred similarity**: the cosine between the projected centred features, which
//!   finds the training photos that look most like this one *among Flickr8k photos*; their
//!   captions are the ones [`Familiarity::neighbour_cider`] compares the caption with
//!   ([`AGREEMENT_NEIGHBOURS`] of them).
//!
//! The familiarity figure shown is the fraction of dev photos whose familiarity similarity is
//! no higher (the empirical distribution stored in `familiarity.json`), so 0.5 is a typical
//! Flickr8k photo and 0.0 is less familiar than any.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::TrustError;

/// The tensors' file inside a model folder.
pub const FAMILIARITY_TENSORS: &str = "familiarity.safetensors";
/// The settings and dev distribution's file inside a model folder.
pub const FAMILIARITY_JSON: &str = "familiarity.json";
/// Nearest training photos averaged for the similarities.
pub const NEIGHBOURS: usize = 5;
/// Nearest training photos (by centred similarity) whose captions the caption is compared with.
/// 40 ranks dev captions better than 5, 10 or 20 (AUROC of the agreement alone 0.772 against
/// 0.737 / 0.752 / 0.764 for the default model, measured outside the program), 80 no better.
pub const AGREEMENT_NEIGHBOURS: usize = 40;
/// The version of the familiarity files this program writes and reads.
pub const FAMILIARITY_VERSION: u32 = 2;
/// Reference captions kept per training photo.
pub const CAPTIONS_KEPT: usize = 3;
/// Size of the projected features.
pub const DEFAULT_DIM: usize = 96;

/// `familiarity.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamiliarityInfo {
    /// [`FAMILIARITY_VERSION`]; files without it were made by an older version.
    #[serde(default)]
    pub version: u32,
    pub encoder_id: String,
    pub dim: usize,
    pub neighbours: usize,
    pub train_photos: usize,
    /// Reference captions stored per training photo.
    #[serde(default = "default_captions_per_photo")]
    pub captions_per_photo: usize,
    /// Familiarity similarity of the dev photos, sorted (101 quantiles).
    pub dev_quantiles: Vec<f32>,
}

fn default_captions_per_photo() -> usize {
    CAPTIONS_KEPT
}

/// The nearest training photos of one photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    /// Familiarity similarity: mean cosine similarity to the [`NEIGHBOURS`] nearest training
    /// photos.
    pub similarity: f32,
    /// Mean centred similarity to the [`NEIGHBOURS`] nearest training photos by that measure.
    pub centred_similarity: f32,
    /// The [`AGREEMENT_NEIGHBOURS`] nearest training photos by centred similarity, nearest
    /// first.
    pub indices: Vec<usize>,
}

/// A familiarity model: projection, training bank, neighbour captions, dev distribution.
#[derive(Clone, Debug)]
pub struct Familiarity {
    pub info: FamiliarityInfo,
    mean: Vec<f32>,
    /// `dim` rows of `feature_dim` values.
    basis: Vec<f32>,
    /// `n` rows of `dim` values: the projected centred features of the training photos.
    bank: Vec<f32>,
    /// Length of each bank row.
    norms: Vec<f32>,
    /// `t·m - m·m` of each training photo.
    offsets: Vec<f32>,
    /// Token ids of the captions of training photo `i`.
    captions: Vec<Vec<Vec<u32>>>,
    /// In how many training photos' stored captions each n-gram (1..=4) occurs.
    df: HashMap<Vec<u32>, u32>,
}

/// n-grams (1..=4) of a caption with their counts.
fn ngrams(tokens: &[u32]) -> [BTreeMap<&[u32], f32>; 4] {
    let mut out: [BTreeMap<&[u32], f32>; 4] = Default::default();
    for (n, map) in out.iter_mut().enumerate() {
        for g in tokens.windows(n + 1) {
            *map.entry(g).or_insert(0.0) += 1.0;
        }
    }
    out
}

fn document_frequencies(captions: &[Vec<Vec<u32>>]) -> HashMap<Vec<u32>, u32> {
    let mut df: HashMap<Vec<u32>, u32> = HashMap::new();
    for caps in captions {
        let mut seen: std::collections::HashSet<&[u32]> = std::collections::HashSet::new();
        for c in caps {
            for n in 1..=4 {
                for g in c.windows(n) {
                    if seen.insert(g) {
                        *df.entry(g.to_vec()).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    df
}

pub(crate) use crate::decoder::linalg::dot;

fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-12 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl Familiarity {
    /// Builds the model from the training photos' pooled features (`feature_dim` each) and
    /// their captions (token ids), with the dev photos' features for the distribution.
    pub fn build(
        encoder_id: &str,
        train: &[&[f32]],
        captions: Vec<Vec<Vec<u32>>>,
        dev: &[&[f32]],
        dim: usize,
    ) -> Result<Familiarity, TrustError> {
        let n = train.len();
        if n < NEIGHBOURS || captions.len() != n {
            return Err(TrustError::Invalid(format!(
                "familiarity needs at least {NEIGHBOURS} training photos with captions (got {n} photos, {} caption sets)",
                captions.len()
            )));
        }
        let d = train[0].len();
        if train.iter().chain(dev).any(|r| r.len() != d) {
            return Err(TrustError::Invalid("features of different sizes".into()));
        }
        let dim = dim.min(d).min(n);
        let mut x: Vec<f32> = Vec::with_capacity(n * d);
        for row in train {
            let mut r = row.to_vec();
            l2_normalise(&mut r);
            x.extend_from_slice(&r);
        }
        let mut mean = vec![0f32; d];
        for row in x.chunks(d) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, v)| *m += v / n as f32);
        }
        for row in x.chunks_mut(d) {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        // The basis and bank go through f16 as they will be stored, so that queries now and
        // after loading agree.
        let basis = through_f16(top_directions(&x, n, d, dim)?)?;
        let mean_sq = dot(&mean, &mean);
        let mut fam = Familiarity {
            info: FamiliarityInfo {
                version: FAMILIARITY_VERSION,
                encoder_id: encoder_id.to_string(),
                dim,
                neighbours: NEIGHBOURS,
                train_photos: n,
                captions_per_photo: CAPTIONS_KEPT,
                dev_quantiles: Vec::new(),
            },
            mean,
            basis,
            bank: Vec::new(),
            norms: Vec::new(),
            offsets: Vec::new(),
            captions: captions
                .into_iter()
                .map(|c| c.into_iter().take(CAPTIONS_KEPT).collect())
                .collect(),
            df: HashMap::new(),
        };
        fam.df = document_frequencies(&fam.captions);
        let mut bank = Vec::with_capacity(n * dim);
        let mut offsets = Vec::with_capacity(n);
        for row in train {
            let (z, along_mean) = fam.project(row);
            bank.extend(z);
            offsets.push(along_mean - mean_sq);
        }
        fam.bank = through_f16(bank)?;
        fam.norms = row_norms(&fam.bank, dim);
        fam.offsets = offsets;
        let mut sims: Vec<f32> = dev.iter().map(|r| fam.neighbours(r).similarity).collect();
        if sims.is_empty() {
            return Err(TrustError::Invalid(
                "familiarity needs dev photos for its distribution".into(),
            ));
        }
        sims.sort_by(f32::total_cmp);
        fam.info.dev_quantiles = (0..=100)
            .map(|q| sims[((sims.len() - 1) * q) / 100])
            .collect();
        Ok(fam)
    }

    /// Projects a pooled feature: normalised, centred, onto the basis. Also returns the
    /// normalised feature's dot product with the mean training photo.
    fn project(&self, feature: &[f32]) -> (Vec<f32>, f32) {
        let mut f = feature.to_vec();
        l2_normalise(&mut f);
        let along_mean = dot(&f, &self.mean);
        f.iter_mut().zip(&self.mean).for_each(|(v, m)| *v -= m);
        let d = self.mean.len();
        let z: Vec<f32> = self.basis.chunks(d).map(|b| dot(b, &f)).collect();
        (z, along_mean)
    }

    /// The nearest training photos of a pooled feature.
    pub fn neighbours(&self, feature: &[f32]) -> Neighbours {
        if feature.len() != self.mean.len() {
            return Neighbours {
                similarity: 0.0,
                centred_similarity: 0.0,
                indices: Vec::new(),
            };
        }
        let (z, along_mean) = self.project(feature);
        let z_norm = dot(&z, &z).sqrt().max(1e-12);
        let dim = self.info.dim;
        // Keeps the `k` largest (score, index) pairs, largest first.
        fn keep(best: &mut Vec<(f32, usize)>, k: usize, s: f32, i: usize) {
            if best.len() < k || s > best[best.len() - 1].0 {
                let at = best.partition_point(|(b, _)| *b >= s);
                best.insert(at, (s, i));
                best.truncate(k);
            }
        }
        let k_centred = NEIGHBOURS.max(AGREEMENT_NEIGHBOURS);
        let mut centred: Vec<(f32, usize)> = Vec::with_capacity(k_centred + 1);
        let mut full: Vec<(f32, usize)> = Vec::with_capacity(NEIGHBOURS + 1);
        for (i, row) in self.bank.chunks(dim).enumerate() {
            let p = dot(row, &z);
            keep(
                &mut centred,
                k_centred,
                p / (z_norm * self.norms[i].max(1e-12)),
                i,
            );
            keep(&mut full, NEIGHBOURS, p + along_mean + self.offsets[i], i);
        }
        let mean_of =
            |v: &[(f32, usize)]| v.iter().map(|(s, _)| s).sum::<f32>() / v.len().max(1) as f32;
        Neighbours {
            similarity: mean_of(&full),
            centred_similarity: mean_of(&centred[..centred.len().min(NEIGHBOURS)]),
            indices: centred
                .into_iter()
                .take(AGREEMENT_NEIGHBOURS)
                .map(|(_, i)| i)
                .collect(),
        }
    }

    /// The fraction of dev photos no more familiar than `similarity` (0..1).
    pub fn familiarity(&self, similarity: f32) -> f32 {
        let q = &self.info.dev_quantiles;
        if q.is_empty() {
            return 0.0;
        }
        let below = q.partition_point(|v| *v <= similarity);
        if below == 0 {
            return 0.0;
        }
        if below >= q.len() {
            return 1.0;
        }
        // Interpolate between the quantiles around `similarity`.
        let (lo, hi) = (q[below - 1], q[below]);
        let frac = if hi > lo {
            (similarity - lo) / (hi - lo)
        } else {
            0.0
        };
        ((below - 1) as f32 + frac) / (q.len() - 1) as f32
    }

    /// CIDEr-D (n = 1..4, sigma 6, as `eval::cider_d`, but with the document frequencies of
    /// the training captions) of `caption` (token ids) against the stored captions of the
    /// training photos `indices`.
    pub fn neighbour_cider(&self, caption: &[u32], indices: &[usize]) -> f32 {
        let n_docs = (self.captions.len().max(1) as f32).ln();
        let tfidf = |tokens| self.tfidf(tokens, n_docs);
        let (hv, hn) = tfidf(caption);
        let mut total = 0f32;
        let mut refs = 0usize;
        for &i in indices {
            for r in self.captions(i) {
                let (rv, rn) = tfidf(r);
                let delta = caption.len() as f32 - r.len() as f32;
                let penalty = (-(delta * delta) / (2.0 * 36.0)).exp();
                let mut s = 0f32;
                for n in 0..4 {
                    let mut v: f32 = hv[n]
                        .iter()
                        .map(|(g, h)| {
                            let r = rv[n].get(*g).copied().unwrap_or(0.0);
                            h.min(r) * r
                        })
                        .sum();
                    if hn[n] > 0.0 && rn[n] > 0.0 {
                        v /= hn[n] * rn[n];
                    }
                    s += v * penalty;
                }
                total += s / 4.0;
                refs += 1;
            }
        }
        if refs == 0 {
            0.0
        } else {
            10.0 * total / refs as f32
        }
    }

    /// The tf-idf vectors (n = 1..4) of a caption, with their lengths.
    fn tfidf<'a>(
        &self,
        tokens: &'a [u32],
        n_docs: f32,
    ) -> ([BTreeMap<&'a [u32], f32>; 4], [f32; 4]) {
        let mut vecs = ngrams(tokens);
        let mut norms = [0f32; 4];
        for (map, norm) in vecs.iter_mut().zip(&mut norms) {
            for (g, w) in map.iter_mut() {
                let df = self.df.get(*g).copied().unwrap_or(0).max(1) as f32;
                *w *= n_docs - df.ln();
                *norm += *w * *w;
            }
            *norm = norm.sqrt();
        }
        (vecs, norms)
    }

    /// The stored captions (token ids) of training photo `i`.
    pub fn captions(&self, i: usize) -> &[Vec<u32>] {
        self.captions.get(i).map_or(&[], Vec::as_slice)
    }

    /// Writes `familiarity.safetensors` and `familiarity.json` into `dir` (each atomically).
    pub fn save(&self, dir: &Path) -> Result<(), TrustError> {
        let n = self.info.train_photos;
        let d = self.mean.len();
        let mut offsets: Vec<u32> = vec![0];
        let mut ids: Vec<u32> = Vec::new();
        for caps in &self.captions {
            for c in caps.iter().take(CAPTIONS_KEPT) {
                ids.extend(c.iter().map(|&t| t.min(u16::MAX as u32)));
                offsets.push(ids.len() as u32);
            }
            for _ in caps.len().min(CAPTIONS_KEPT)..CAPTIONS_KEPT {
                offsets.push(ids.len() as u32);
            }
        }
        // Two 16-bit ids per stored 32-bit value.
        let packed: Vec<u32> = ids
            .chunks(2)
            .map(|p| p[0] | (p.get(1).copied().unwrap_or(0) << 16))
            .collect();
        let cpu = Device::Cpu;
        let mut tensors = HashMap::new();
        tensors.insert("mean", Tensor::from_slice(&self.mean, d, &cpu)?);
        tensors.insert(
            "basis",
            Tensor::from_slice(&self.basis, (self.info.dim, d), &cpu)?.to_dtype(DType::F16)?,
        );
        tensors.insert(
            "bank",
            Tensor::from_slice(&self.bank, (n, self.info.dim), &cpu)?.to_dtype(DType::F16)?,
        );
        tensors.insert("offsets", Tensor::from_slice(&self.offsets, n, &cpu)?);
        tensors.insert(
            "caption_offsets",
            Tensor::from_slice(&offsets, offsets.len(), &cpu)?,
        );
        tensors.insert(
            "caption_ids",
            Tensor::from_slice(&packed, packed.len(), &cpu)?,
        );
        let path = dir.join(FAMILIARITY_TENSORS);
        let bytes = safetensors::serialize(tensors, None).map_err(|e| TrustError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        crate::files::write_atomic(&path, &bytes).map_err(|e| TrustError::Io {
            path: path.clone(),
            source: e,
        })?;
        super::write_json(&dir.join(FAMILIARITY_JSON), &self.info)
    }

    /// Reads a familiarity model from `dir`; `None` when the folder has none.
    pub fn load(dir: &Path) -> Result<Option<Familiarity>, TrustError> {
        let json = dir.join(FAMILIARITY_JSON);
        let path = dir.join(FAMILIARITY_TENSORS);
        if !json.is_file() && !path.is_file() {
            return Ok(None);
        }
        let info: FamiliarityInfo = super::read_json(&json)?;
        if info.version != FAMILIARITY_VERSION {
            return Err(TrustError::File {
                path: json,
                message: format!(
                    "familiarity data of version {} (this version reads {FAMILIARITY_VERSION}), made by an older captioner: run `captioner calibrate DATASET --model DIR` again",
                    info.version
                ),
            });
        }
        let bad = |message: String| TrustError::File {
            path: path.clone(),
            message,
        };
        let tensors =
            candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
        let get = |name: &str, dtype: DType| -> Result<Vec<f32>, TrustError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor `{name}`")))?;
            t.to_dtype(dtype)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))
        };
        let get_u32 = |name: &str| -> Result<Vec<u32>, TrustError> {
            tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor `{name}`")))?
                .to_vec1::<u32>()
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))
        };
        let mean = get("mean", DType::F32)?;
        let basis = get("basis", DType::F16)?;
        let bank = get("bank", DType::F16)?;
        let offsets_t = get("offsets", DType::F32)?;
        let offsets = get_u32("caption_offsets")?;
        let packed = get_u32("caption_ids")?;
        let d = mean.len();
        let n = info.train_photos;
        if info.dim == 0
            || basis.len() != info.dim * d
            || bank.len() != n * info.dim
            || offsets_t.len() != n
            || info.captions_per_photo == 0
            || offsets.len() != n * info.captions_per_photo + 1
            || info.dev_quantiles.is_empty()
        {
            return Err(bad(format!(
                "sizes do not match {} ({} photos, {}-d)",
                json.display(),
                n,
                info.dim
            )));
        }
        let ids: Vec<u32> = packed.iter().flat_map(|p| [p & 0xffff, p >> 16]).collect();
        let mut captions = Vec::with_capacity(n);
        for i in 0..n {
            let mut caps = Vec::new();
            let per = info.captions_per_photo;
            for j in 0..per {
                let (a, b) = (
                    offsets[i * per + j] as usize,
                    offsets[i * per + j + 1] as usize,
                );
                if a > b || b > ids.len() {
                    return Err(bad("caption offsets out of range".into()));
                }
                if b > a {
                    caps.push(ids[a..b].to_vec());
                }
            }
            captions.push(caps);
        }
        let df = document_frequencies(&captions);
        let norms = row_norms(&bank, info.dim);
        Ok(Some(Familiarity {
            info,
            mean,
            basis,
            bank,
            norms,
            offsets: offsets_t,
            captions,
            df,
        }))
    }

    /// The files a model folder gets.
    pub fn files(dir: &Path) -> [PathBuf; 2] {
        [dir.join(FAMILIARITY_TENSORS), dir.join(FAMILIARITY_JSON)]
    }
}

fn row_norms(rows: &[f32], dim: usize) -> Vec<f32> {
    rows.chunks(dim).map(|r| dot(r, r).sqrt()).collect()
}

fn through_f16(v: Vec<f32>) -> Result<Vec<f32>, TrustError> {
    let n = v.len();
    Ok(Tensor::from_vec(v, n, &Device::Cpu)?
        .to_dtype(DType::F16)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?)
}

/// The top `k` principal directions (rows of `d` values) of the centred rows `x` (`n` x `d`),
/// by subspace iteration on the covariance.
fn top_directions(x: &[f32], n: usize, d: usize, k: usize) -> Result<Vec<f32>, TrustError> {
    let cpu = Device::Cpu;
    let xt = Tensor::from_slice(x, (n, d), &cpu)?;
    let cov = xt.t()?.matmul(&xt)?; // d x d
    // Start from the first k coordinate directions, mixed deterministically.
    let mut q: Vec<f32> = (0..d * k)
        .map(|i| (((i * 7919 + 13) % 1009) as f32 / 1009.0) - 0.5)
        .collect();
    for _ in 0..30 {
        let qt = Tensor::from_slice(&q, (d, k), &cpu)?;
        let next = cov.matmul(&qt)?.to_vec2::<f32>()?; // d x k
        // Gram-Schmidt on the k columns.
        let mut cols: Vec<Vec<f64>> = (0..k)
            .map(|j| next.iter().map(|r| f64::from(r[j])).collect())
            .collect();
        for j in 0..k {
            for i in 0..j {
                let dot: f64 = cols[j].iter().zip(&cols[i]).map(|(a, b)| a * b).sum();
                let ci = cols[i].clone();
                cols[j].iter_mut().zip(&ci).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = cols[j].iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-12 {
                cols[j].iter_mut().for_each(|a| *a /= norm);
            }
        }
        for r in 0..d {
            for (j, col) in cols.iter().enumerate() {
                q[r * k + j] = col[r] as f32;
            }
        }
    }
    // Rows of the basis: one direction each.
    let mut basis = vec![0f32; k * d];
    for r in 0..d {
        for j in 0..k {
            basis[j * d + r] = q[r * k + j];
        }
    }
    Ok(basis)
}
