//! The layer pieces both CPU engines ([`super::engine`], [`super::attention_engine`]) build
//! their passes from: the linear layer forward and backward, the word embeddings and their
//! gradient, dropout masks, the softmax cross-entropy and the LSTM's weight gradients.
//!
//! Matrices are row-major `f32` slices in PyTorch's layouts (a linear layer's weight is
//! `[out, in]`); a batch's rows are its packed rows ([`super::batch::Packed`]).

use super::batch::Result;
use super::params::Params;
use crate::decoder::linalg::{
    MatRef, column_sums, exp_shifted_sum, fill_rows, matmul, max_of, scale_in_place, transpose,
};
use rayon::prelude::*;
use std::ops::Range;

/// Sets `v`'s length to `n` (new values 0). The engines' buffers keep their memory from batch
/// to batch.
pub(super) fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// A linear layer's forward pass `y = x W^T + b`: `x` is `[n, in]`, `w` `[out, in]`, `b`
/// `[out]` and `y` `[n, out]` (overwritten).
pub(super) fn linear_forward(y: &mut [f32], x: MatRef<'_>, w: &[f32], b: &[f32]) {
    let out = b.len();
    fill_rows(y, b);
    matmul(y, x, MatRef::new(w, out, w.len() / out).t(), true);
}

/// A linear layer's weight and bias gradients from the gradient `dy` (`[n, out]`) of its
/// output: `dW = dY^T X` into `g[w]` and the column sums of `dY` into `g[b]` (both
/// overwritten). `x` is the layer's input `[n, in]`; `ones` holds at least `n` ones.
pub(super) fn linear_backward(
    g: &mut [f32],
    w: &Range<usize>,
    b: &Range<usize>,
    dy: &[f32],
    x: MatRef<'_>,
    ones: &[f32],
) {
    let out = b.len();
    let dy_t = MatRef::new(dy, dy.len() / out, out).t();
    linear_backward_transposed(g, w, b, dy_t, dy, x, ones);
}

/// [`linear_backward`] with `dY^T` (`[out, n]`) given as well, for when a contiguous transposed
/// copy exists (the kernel runs faster on it).
fn linear_backward_transposed(
    g: &mut [f32],
    w: &Range<usize>,
    b: &Range<usize>,
    dy_t: MatRef<'_>,
    dy: &[f32],
    x: MatRef<'_>,
    ones: &[f32],
) {
    let out = b.len();
    matmul(&mut g[w.clone()], dy_t, x, false);
    column_sums(&mut g[b.clone()], dy, dy.len() / out, out, ones);
}

/// Copies each row's word embedding from `table` (`[vocab, e]`) into the first `e` values of
/// that row of `dst` (rows of `stride` values).
pub(super) fn embed_rows(dst: &mut [f32], stride: usize, table: &[f32], tokens: &[u32], e: usize) {
    for (row, &tok) in tokens.iter().enumerate() {
        let t = tok as usize;
        dst[row * stride..row * stride + e].copy_from_slice(&table[t * e..(t + 1) * e]);
    }
}

/// The embedding table's gradient (overwritten): each row's gradient `d_rows` (`[rows, e]`)
/// added to its token's row.
pub(super) fn embedding_backward(d_table: &mut [f32], d_rows: &[f32], tokens: &[u32], e: usize) {
    d_table.fill(0.0);
    for (row, &tok) in tokens.iter().enumerate() {
        let t = tok as usize;
        for (d, s) in d_table[t * e..(t + 1) * e]
            .iter_mut()
            .zip(&d_rows[row * e..(row + 1) * e])
        {
            *d += s;
        }
    }
}

/// Multiplies `x` by a dropout mask (0 or `1 / (1 - p)` per value), in the forward pass or on
/// a gradient in the backward pass.
pub(super) fn apply_mask(x: &mut [f32], mask: &[f32]) {
    for (x, m) in x.iter_mut().zip(mask) {
        *x *= m;
    }
}

/// Softmax cross-entropy of every packed row's logits (`[rows, v]`) against its target; the
/// rows' losses go to `row_loss` and their sum is returned. With `want_grad` the logits become
/// the gradient of the mean loss over the rows.
pub(super) fn softmax_cross_entropy(
    logits: &mut [f32],
    targets: &[u32],
    row_loss: &mut Vec<f64>,
    v: usize,
    want_grad: bool,
) -> f64 {
    let rows = targets.len();
    row_loss.resize(rows, 0.0);
    let scale = 1.0 / rows as f32;
    logits
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .zip(row_loss.par_iter_mut())
        .with_min_len(16)
        .for_each(|((l, &target), loss)| {
            let target = target as usize;
            let max = max_of(l);
            let picked = l[target];
            let sum = exp_shifted_sum(l, max);
            *loss = f64::from(max) + f64::from(sum).ln() - f64::from(picked);
            if want_grad {
                scale_in_place(l, scale / sum);
                l[target] -= scale;
            }
        });
    row_loss[..rows].iter().sum()
}

/// Buffer ranges of the tensors every decoder has: the word embeddings, the LSTM and the
/// output layer.
#[derive(Clone, Debug)]
pub(super) struct CoreRanges {
    pub embed: Range<usize>,
    pub w_ih: Range<usize>,
    pub w_hh: Range<usize>,
    pub b_ih: Range<usize>,
    pub b_hh: Range<usize>,
    pub out_w: Range<usize>,
    pub out_b: Range<usize>,
    /// The LSTM's hidden size.
    pub hidden: usize,
}

impl CoreRanges {
    pub(super) fn new(p: &Params) -> Result<Self> {
        Ok(Self {
            embed: p.require("embed.weight")?,
            w_ih: p.require("lstm.weight_ih_l0")?,
            w_hh: p.require("lstm.weight_hh_l0")?,
            b_ih: p.require("lstm.bias_ih_l0")?,
            b_hh: p.require("lstm.bias_hh_l0")?,
            out_w: p.require("output.weight")?,
            out_b: p.require("output.bias")?,
            hidden: p.config().hidden_dim,
        })
    }

    /// `b_ih + b_hh`, the gates' one bias (`[4H]`) into `dst`.
    pub(super) fn gate_bias(&self, p: &[f32], dst: &mut Vec<f32>) {
        resize(dst, 4 * self.hidden);
        for ((d, a), c) in dst
            .iter_mut()
            .zip(&p[self.b_ih.clone()])
            .zip(&p[self.b_hh.clone()])
        {
            *d = a + c;
        }
    }

    /// The LSTM's weight gradients from the gradient of the gates' pre-activations `d_gates`
    /// (`[rows, 4H]`): `W_ih` against the inputs `x` (`[rows, in]`), `W_hh` against `h_prev`,
    /// the previous hidden states of the last `h_prev.len() / H` rows (the rows before them
    /// have no previous state: h = 0), and both biases (the same sums). `d_gates_t` receives
    /// `d_gates^T` (both weight products read it as a plain row-major matrix).
    pub(super) fn lstm_backward(
        &self,
        g: &mut [f32],
        d_gates: &[f32],
        d_gates_t: &mut Vec<f32>,
        x: MatRef<'_>,
        h_prev: &[f32],
        ones: &[f32],
    ) {
        let (h, g4) = (self.hidden, 4 * self.hidden);
        let rows = d_gates.len() / g4;
        let with_prev = h_prev.len() / h;
        let first = rows - with_prev;
        resize(d_gates_t, g4 * rows);
        transpose(d_gates, rows, g4, d_gates_t);
        matmul(
            &mut g[self.w_hh.clone()],
            MatRef::strided(&d_gates_t[first..], g4, with_prev, rows, 1),
            MatRef::new(h_prev, with_prev, h),
            false,
        );
        let dg_t = MatRef::new(d_gates_t, g4, rows);
        linear_backward_transposed(g, &self.w_ih, &self.b_ih, dg_t, d_gates, x, ones);
        g.copy_within(self.b_ih.clone(), self.b_hh.start);
    }
}
