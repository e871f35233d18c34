//! Decoding on the CPU without candle's per-op overhead: the same network as the candle
//! decoders, step by step on flat `f32` buffers, with contiguous transposed weights (the
//! fast layout for products with a handful of rows) and single-threaded products (a beam's
//! few rows are too little work to share between threads, and a busy machine punishes
//! waiting for a second thread).

use super::linalg::{
    MatRef, fill_rows, log_softmax_in_place, lstm_forward_row, matmul, matmul_single, transpose,
};
use super::{DecoderConfig, DecoderError, DecoderKind, Result};
use candle_core::Tensor;
use std::collections::HashMap;

/// Rows from which a product is worth sharing between threads (a batch of images rather
/// than a beam).
const THREADED_ROWS: usize = 32;

/// `dst += a b`, threaded only for many rows.
fn product(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>) {
    if a.rows() >= THREADED_ROWS {
        matmul(dst, a, b, true);
    } else {
        matmul_single(dst, a, b, true);
    }
}

#[derive(Clone, Debug)]
enum Head {
    /// Merge: image projection `[F, H]` and bias; hidden Dense `[H, H]` and bias.
    Merge {
        img_w_t: Vec<f32>,
        img_b: Vec<f32>,
        hid_w_t: Vec<f32>,
        hid_b: Vec<f32>,
    },
    /// Inject: the initial-state Dense layers `[F, H]` and biases.
    Inject {
        h_w_t: Vec<f32>,
        h_b: Vec<f32>,
        c_w_t: Vec<f32>,
        c_b: Vec<f32>,
    },
}

/// The weights of a decoder laid out for CPU decoding.
#[derive(Clone, Debug)]
pub(super) struct CpuDecoder {
    cfg: DecoderConfig,
    embed: Vec<f32>,
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    bias4: Vec<f32>,
    head: Head,
    out_w_t: Vec<f32>,
    out_b: Vec<f32>,
}

/// Rows of captions being decoded.
#[derive(Clone, Debug)]
pub(super) struct CpuState {
    rows: usize,
    h: Vec<f32>,
    c: Vec<f32>,
    /// Merge: the image projection of each row.
    image: Vec<f32>,
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
        Ok(Self {
            rows: rows.len(),
            h: pick(&self.h)?,
            c: pick(&self.c)?,
            image: pick(&self.image)?,
        })
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
) -> Result<Vec<f32>> {
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
    Ok(t)
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
                return Err(DecoderError::Config(
                    "the attention decoder decodes through candle ops".into(),
                ));
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed: values(t, "embed.weight")?,
            w_ih_t: transposed(t, "lstm.weight_ih_l0", 4 * h, e)?,
            w_hh_t: transposed(t, "lstm.weight_hh_l0", 4 * h, h)?,
            bias4: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            head,
            out_w_t: transposed(t, "output.weight", v, h)?,
            out_b: values(t, "output.bias")?,
        })
    }

    /// `dst = x W^T + b` for `rows` rows (callers apply the activation).
    fn dense(&self, dst: &mut Vec<f32>, x: &[f32], rows: usize, w_t: &[f32], b: &[f32]) {
        let (k, n) = (w_t.len() / b.len(), b.len());
        dst.resize(rows * n, 0.0);
        fill_rows(dst, b);
        product(dst, MatRef::new(x, rows, k), MatRef::new(w_t, k, n));
    }

    /// Initial state for image features (row-major `[rows, feature_dim]`).
    pub(super) fn start(&self, features: &[f32], rows: usize) -> CpuState {
        let h = self.cfg.hidden_dim;
        let mut st = CpuState {
            rows,
            h: Vec::new(),
            c: Vec::new(),
            image: Vec::new(),
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
        }
        st
    }

    /// One step: log-probabilities `[rows, vocab]` (flat) and the new state.
    pub(super) fn step(&self, st: &CpuState, tokens: &[u32]) -> (Vec<f32>, CpuState) {
        let (e, h, v) = (self.cfg.embed_dim, self.cfg.hidden_dim, self.cfg.vocab_size);
        let g4 = 4 * h;
        let n = st.rows;
        let mut x = Vec::with_capacity(n * e);
        for &t in tokens {
            let t = t as usize;
            x.extend_from_slice(&self.embed[t * e..(t + 1) * e]);
        }
        let mut gates = vec![0.0; n * g4];
        fill_rows(&mut gates, &self.bias4);
        product(
            &mut gates,
            MatRef::new(&x, n, e),
            MatRef::new(&self.w_ih_t, e, g4),
        );
        product(
            &mut gates,
            MatRef::new(&st.h, n, h),
            MatRef::new(&self.w_hh_t, h, g4),
        );
        let mut next = CpuState {
            rows: n,
            h: vec![0.0; n * h],
            c: vec![0.0; n * h],
            image: st.image.clone(),
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
            Head::Inject { .. } => {
                self.dense(&mut logits, &next.h, n, &self.out_w_t, &self.out_b);
            }
        }
        for row in logits.chunks_exact_mut(v) {
            log_softmax_in_place(row);
        }
        (logits, next)
    }
}
