//! Decoding on the CPU without candle's per-op overhead: the same network as the candle
//! decoders, step by step on flat `f32` buffers, with the weights packed once into column
//! panels ([`super::panel::PackedWeights`]): a step's products stream the weights once for
//! all of its rows (one photo's beam or many photos' beams), the large ones split over two
//! threads, and every row's result depends only on that row, so a photo decodes the same
//! alone or among others. The attention step is the training engine's own per-row kernel
//! ([`super::linalg::attention_row_forward`]).

use super::linalg::{
    attention_row_forward, fill_rows, log_softmax_in_place, lstm_forward_row, scale_in_place,
    transpose,
};
use super::panel::PackedWeights;
use super::{DecoderConfig, DecoderError, DecoderKind, Result};
use candle_core::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Head {
    /// Merge: image projection `[F, H]` and bias; hidden Dense `[H, H]` and bias.
    Merge {
        img_w_t: PackedWeights,
        img_b: Vec<f32>,
        hid_w_t: PackedWeights,
        hid_b: Vec<f32>,
    },
    /// Inject: the initial-state Dense layers `[F, H]` and biases.
    Inject {
        h_w_t: PackedWeights,
        h_b: Vec<f32>,
        c_w_t: PackedWeights,
        c_b: Vec<f32>,
    },
    /// Attention: initial-state layers (linear), the attention and gate layers, transposed.
    Attention(Box<AttentionWeights>),
}

#[derive(Clone, Debug)]
struct AttentionWeights {
    h_w_t: PackedWeights,
    h_b: Vec<f32>,
    c_w_t: PackedWeights,
    c_b: Vec<f32>,
    /// `[F, A]`
    enc_w_t: PackedWeights,
    enc_b: Vec<f32>,
    /// `[H, A]`
    dec_w_t: PackedWeights,
    dec_b: Vec<f32>,
    full_w: Vec<f32>,
    full_b: f32,
    /// `[H, F]`
    beta_w_t: PackedWeights,
    beta_b: Vec<f32>,
}

/// The weights of a decoder laid out for CPU decoding.
#[derive(Clone, Debug)]
pub(super) struct CpuDecoder {
    cfg: DecoderConfig,
    embed: Vec<f32>,
    w_ih_t: PackedWeights,
    w_hh_t: PackedWeights,
    bias4: Vec<f32>,
    head: Head,
    out_w_t: PackedWeights,
    out_b: Vec<f32>,
}

/// What an attention decoder reads of one photo at every step: its feature map
/// `[cells, F]` and the map's projection `[cells, A]`, computed once and shared by the rows
/// of the photo's beam.
#[derive(Debug)]
struct AttendedImage {
    enc: Vec<f32>,
    att1: Vec<f32>,
}

/// Rows of captions being decoded.
#[derive(Clone, Debug)]
pub(super) struct CpuState {
    rows: usize,
    h: Vec<f32>,
    c: Vec<f32>,
    /// Merge: the image projection of each row.
    image: Vec<f32>,
    /// Attention: each row's photo (shared by the rows of its beam, never copied per step).
    attended: Vec<Arc<AttendedImage>>,
}

impl CpuState {
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn select(&self, rows: &[u32], hidden: usize) -> Result<Self> {
        let pick = |src: &[f32]| -> Result<Vec<f32>> {
            if src.is_empty() {
                return Ok(Vec::new());
            }
            let hidden = src.len() / self.rows.max(1);
            let mut out = Vec::with_capacity(rows.len() * hidden);
            for &r in rows {
                let r = r as usize;
                let row = src.get(r * hidden..(r + 1) * hidden).ok_or_else(|| {
                    DecoderError::Input(format!(
                        "row {r} selected from a state of {} rows",
                        self.rows
                    ))
                })?;
                out.extend_from_slice(row);
            }
            Ok(out)
        };
        debug_assert_eq!(self.h.len(), self.rows * hidden);
        let attended = if self.attended.is_empty() {
            Vec::new()
        } else {
            rows.iter()
                .map(|&r| self.attended.get(r as usize).map(Arc::clone))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    DecoderError::Input(format!(
                        "a row selected from a state of {} rows",
                        self.rows
                    ))
                })?
        };
        Ok(Self {
            rows: rows.len(),
            h: pick(&self.h)?,
            c: pick(&self.c)?,
            image: pick(&self.image)?,
            attended,
        })
    }

    /// Appends the rows of `other` (a state of the same decoder) after this state's rows.
    pub(super) fn append(&mut self, other: CpuState) -> Result<()> {
        let same = |a: &[f32], b: &[f32], what: &str| {
            let per_row = |v: &[f32], rows: usize| v.len().checked_div(rows);
            if a.is_empty() != b.is_empty()
                || (!a.is_empty()
                    && per_row(a, self.rows).is_some()
                    && per_row(a, self.rows) != per_row(b, other.rows))
            {
                return Err(DecoderError::Input(format!(
                    "cannot join decode states: their {what} differ"
                )));
            }
            Ok(())
        };
        if self.rows > 0 && other.rows > 0 {
            same(&self.h, &other.h, "hidden states")?;
            same(&self.image, &other.image, "image projections")?;
            if self.attended.is_empty() != other.attended.is_empty() {
                return Err(DecoderError::Input(
                    "cannot join decode states of different decoders".into(),
                ));
            }
        }
        self.rows += other.rows;
        self.h.extend(other.h);
        self.c.extend(other.c);
        self.image.extend(other.image);
        self.attended.extend(other.attended);
        Ok(())
    }
}

fn values(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Vec<f32>> {
    let t = tensors
        .get(name)
        .ok_or_else(|| DecoderError::Input(format!("tensor {name} is missing")))?;
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

fn transposed(
    tensors: &HashMap<String, Tensor>,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<PackedWeights> {
    let v = values(tensors, name)?;
    if v.len() != rows * cols {
        return Err(DecoderError::Input(format!(
            "tensor {name} has {} values, expected {}",
            v.len(),
            rows * cols
        )));
    }
    let mut t = vec![0.0; rows * cols];
    transpose(&v, rows, cols, &mut t);
    Ok(PackedWeights::new(&t, cols, rows))
}

impl CpuDecoder {
    /// From named tensors with the shapes of `cfg.param_specs()` (already checked).
    pub(super) fn new(cfg: &DecoderConfig, t: &HashMap<String, Tensor>) -> Result<Self> {
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        let b_ih = values(t, "lstm.bias_ih_l0")?;
        let b_hh = values(t, "lstm.bias_hh_l0")?;
        let head = match cfg.kind {
            DecoderKind::Merge => Head::Merge {
                img_w_t: transposed(t, "image.weight", h, f)?,
                img_b: values(t, "image.bias")?,
                hid_w_t: transposed(t, "hidden.weight", h, h)?,
                hid_b: values(t, "hidden.bias")?,
            },
            DecoderKind::Inject => Head::Inject {
                h_w_t: transposed(t, "init_h.weight", h, f)?,
                h_b: values(t, "init_h.bias")?,
                c_w_t: transposed(t, "init_c.weight", h, f)?,
                c_b: values(t, "init_c.bias")?,
            },
            DecoderKind::Attention => {
                let a = cfg.attention_dim();
                Head::Attention(Box::new(AttentionWeights {
                    h_w_t: transposed(t, "init_h.weight", h, f)?,
                    h_b: values(t, "init_h.bias")?,
                    c_w_t: transposed(t, "init_c.weight", h, f)?,
                    c_b: values(t, "init_c.bias")?,
                    enc_w_t: transposed(t, "att_enc.weight", a, f)?,
                    enc_b: values(t, "att_enc.bias")?,
                    dec_w_t: transposed(t, "att_dec.weight", a, h)?,
                    dec_b: values(t, "att_dec.bias")?,
                    full_w: values(t, "att_full.weight")?,
                    full_b: values(t, "att_full.bias")?.first().copied().unwrap_or(0.0),
                    beta_w_t: transposed(t, "f_beta.weight", f, h)?,
                    beta_b: values(t, "f_beta.bias")?,
                }))
            }
        };
        let lstm_in = if cfg.kind == DecoderKind::Attention {
            e + f
        } else {
            e
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed: values(t, "embed.weight")?,
            w_ih_t: transposed(t, "lstm.weight_ih_l0", 4 * h, lstm_in)?,
            w_hh_t: transposed(t, "lstm.weight_hh_l0", 4 * h, h)?,
            bias4: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            head,
            out_w_t: transposed(t, "output.weight", v, h)?,
            out_b: values(t, "output.bias")?,
        })
    }

    /// `dst = x W^T + b` for `rows` rows (callers apply the activation).
    fn dense(&self, dst: &mut Vec<f32>, x: &[f32], rows: usize, w_t: &PackedWeights, b: &[f32]) {
        dst.resize(rows * w_t.n(), 0.0);
        fill_rows(dst, b);
        w_t.product(dst, x, rows);
    }

    /// Initial state for image features (row-major `[rows, input_dim]`).
    pub(super) fn start(&self, features: &[f32], rows: usize) -> CpuState {
        let h = self.cfg.hidden_dim;
        let mut st = CpuState {
            rows,
            h: Vec::new(),
            c: Vec::new(),
            image: Vec::new(),
            attended: Vec::new(),
        };
        match &self.head {
            Head::Merge { img_w_t, img_b, .. } => {
                self.dense(&mut st.image, features, rows, img_w_t, img_b);
                for x in st.image.iter_mut() {
                    *x = x.max(0.0);
                }
                st.h = vec![0.0; rows * h];
                st.c = vec![0.0; rows * h];
            }
            Head::Inject {
                h_w_t,
                h_b,
                c_w_t,
                c_b,
            } => {
                self.dense(&mut st.h, features, rows, h_w_t, h_b);
                self.dense(&mut st.c, features, rows, c_w_t, c_b);
                for x in st.h.iter_mut().chain(st.c.iter_mut()) {
                    *x = x.tanh();
                }
            }
            Head::Attention(w) => {
                let (f, pc) = (self.cfg.feature_dim, self.cfg.cells());
                let mut mean = vec![0.0f32; rows * f];
                for r in 0..rows {
                    let dst = &mut mean[r * f..(r + 1) * f];
                    for cell in features[r * pc * f..(r + 1) * pc * f].chunks_exact(f) {
                        for (d, x) in dst.iter_mut().zip(cell) {
                            *d += x;
                        }
                    }
                    scale_in_place(dst, 1.0 / pc as f32);
                }
                self.dense(&mut st.h, &mean, rows, &w.h_w_t, &w.h_b);
                self.dense(&mut st.c, &mean, rows, &w.c_w_t, &w.c_b);
                st.attended = features[..rows * pc * f]
                    .chunks_exact(pc * f)
                    .map(|map| {
                        let mut att1 = Vec::new();
                        self.dense(&mut att1, map, pc, &w.enc_w_t, &w.enc_b);
                        Arc::new(AttendedImage {
                            enc: map.to_vec(),
                            att1,
                        })
                    })
                    .collect();
            }
        }
        st
    }

    /// Attention: the LSTM's attended input `z` `[rows, F]` and the weights `[rows, cells]`
    /// for the state `st`.
    fn attend(&self, w: &AttentionWeights, st: &CpuState) -> (Vec<f32>, Vec<f32>) {
        let (f, pc, a) = (
            self.cfg.feature_dim,
            self.cfg.cells(),
            self.cfg.attention_dim(),
        );
        let n = st.rows;
        let mut att2 = Vec::new();
        self.dense(&mut att2, &st.h, n, &w.dec_w_t, &w.dec_b);
        let mut gate = Vec::new();
        self.dense(&mut gate, &st.h, n, &w.beta_w_t, &w.beta_b);
        let mut alpha = vec![0.0f32; n * pc];
        let mut z = vec![0.0f32; n * f];
        // Scratch of the shared per-row kernel (training keeps these for its backward pass).
        let (mut u, mut ctx) = (vec![0.0f32; pc * a], vec![0.0f32; f]);
        for (r, image) in st.attended.iter().enumerate().take(n) {
            attention_row_forward(
                &mut u,
                &mut alpha[r * pc..(r + 1) * pc],
                &mut ctx,
                &mut gate[r * f..(r + 1) * f],
                &mut z[r * f..(r + 1) * f],
                &image.att1,
                &att2[r * a..(r + 1) * a],
                &w.full_w,
                w.full_b,
                &image.enc,
            );
        }
        (z, alpha)
    }

    /// One step: log-probabilities `[rows, vocab]` (flat), the attention weights
    /// `[rows, cells]` (attention decoders), and the new state.
    pub(super) fn step(
        &self,
        st: &CpuState,
        tokens: &[u32],
    ) -> (Vec<f32>, Option<Vec<f32>>, CpuState) {
        let (e, h, v) = (self.cfg.embed_dim, self.cfg.hidden_dim, self.cfg.vocab_size);
        let g4 = 4 * h;
        let n = st.rows;
        let attended = match &self.head {
            Head::Attention(w) => Some(self.attend(w, st)),
            _ => None,
        };
        let ex = e + attended.as_ref().map_or(0, |_| self.cfg.feature_dim);
        let mut x = Vec::with_capacity(n * ex);
        for (r, &t) in tokens.iter().enumerate() {
            let t = t as usize;
            x.extend_from_slice(&self.embed[t * e..(t + 1) * e]);
            if let Some((z, _)) = &attended {
                let f = self.cfg.feature_dim;
                x.extend_from_slice(&z[r * f..(r + 1) * f]);
            }
        }
        let mut gates = vec![0.0; n * g4];
        fill_rows(&mut gates, &self.bias4);
        debug_assert_eq!(self.w_ih_t.k(), ex);
        self.w_ih_t.product(&mut gates, &x, n);
        self.w_hh_t.product(&mut gates, &st.h, n);
        let mut next = CpuState {
            rows: n,
            h: vec![0.0; n * h],
            c: vec![0.0; n * h],
            image: st.image.clone(),
            attended: st.attended.clone(),
        };
        let mut tc = vec![0.0; h];
        for r in 0..n {
            lstm_forward_row(
                &mut gates[r * g4..(r + 1) * g4],
                &st.c[r * h..(r + 1) * h],
                &mut next.c[r * h..(r + 1) * h],
                &mut tc,
                &mut next.h[r * h..(r + 1) * h],
            );
        }
        let mut logits = Vec::new();
        match &self.head {
            Head::Merge { hid_w_t, hid_b, .. } => {
                let merged: Vec<f32> = next.h.iter().zip(&st.image).map(|(a, b)| a + b).collect();
                let mut z = Vec::new();
                self.dense(&mut z, &merged, n, hid_w_t, hid_b);
                for x in z.iter_mut() {
                    *x = x.max(0.0);
                }
                self.dense(&mut logits, &z, n, &self.out_w_t, &self.out_b);
            }
            Head::Inject { .. } | Head::Attention(_) => {
                self.dense(&mut logits, &next.h, n, &self.out_w_t, &self.out_b);
            }
        }
        for row in logits.chunks_exact_mut(v) {
            log_softmax_in_place(row);
        }
        (logits, attended.map(|(_, alpha)| alpha), next)
    }
}
