//! The layer pieces both CPU engines (`engine.rs`, [`super::attention_engine`]) build
//! their passes from: the linear layer forward and backward, the word embeddings and their
//! gradient, dropout masks, the softmax cross-entropy and the LSTM's weight gradients.
//!
//! Matrices are row-major `f32` slices in PyTorch's layouts (a linear layer's weight is
//! `[out, in]`); a batch's rows are its packed rows ([`super::batch::Packed`]).

use super::batch::{Packed, Result};
use super::params::Params;
use crate::decoder::DecoderConfig;
use crate::decoder::linalg::{
    MatRef, column_sums, exp_shifted_sum, fill_rows, lstm_backward_row, lstm_forward_row, matmul,
    max_of, scale_in_place, transpose,
};
use rayon::prelude::*;
use std::ops::Range;

/// What every layer function of one pass reads: the decoder's sizes, its parameters and the
/// ranges `R` of its tensors in them.
pub(super) struct Pass<'a, R> {
    pub f: usize,
    pub e: usize,
    pub h: usize,
    pub v: usize,
    /// Cells of the feature map (1 without attention) and the attention size (0 without).
    pub pc: usize,
    pub a: usize,
    pub p: &'a [f32],
    pub rg: &'a R,
}

impl<'a, R> Pass<'a, R> {
    pub(super) fn new(cfg: &DecoderConfig, p: &'a [f32], rg: &'a R) -> Self {
        Self {
            f: cfg.feature_dim,
            e: cfg.embed_dim,
            h: cfg.hidden_dim,
            v: cfg.vocab_size,
            pc: cfg.cells(),
            a: cfg.attention_dim(),
            p,
            rg,
        }
    }

    /// A parameter tensor's values.
    pub(super) fn w(&self, r: &Range<usize>) -> &'a [f32] {
        &self.p[r.clone()]
    }
}

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
fn embedding_backward(d_table: &mut [f32], d_rows: &[f32], tokens: &[u32], e: usize) {
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

/// `dst = src * mask` (dropout), or a copy of `src` without a mask.
pub(super) fn masked_copy(dst: &mut [f32], src: &[f32], mask: Option<&[f32]>) {
    match mask {
        Some(mask) => {
            for ((d, s), m) in dst.iter_mut().zip(src).zip(mask) {
                *d = s * m;
            }
        }
        None => dst.copy_from_slice(&src[..dst.len()]),
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
    /// The word embeddings' size and the LSTM's hidden size.
    pub embed_dim: usize,
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
            embed_dim: p.config().embed_dim,
            hidden: p.config().hidden_dim,
        })
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

    /// The embedding table's gradient from the gradient of the gates' pre-activations
    /// `d_gates` (`[rows, 4H]`), through the word part of the input projection (the first `E`
    /// columns of `W_ih`) and the embeddings' dropout `mask`; `d_embeds` receives the rows'
    /// embedding gradients.
    pub(super) fn embed_backward(
        &self,
        g: &mut [f32],
        p: &[f32],
        d_gates: &[f32],
        d_embeds: &mut Vec<f32>,
        mask: Option<&[f32]>,
        tokens: &[u32],
    ) {
        let (e, g4) = (self.embed_dim, 4 * self.hidden);
        let rows = tokens.len();
        resize(d_embeds, rows * e);
        matmul(
            d_embeds,
            MatRef::new(d_gates, rows, g4),
            MatRef::strided(&p[self.w_ih.clone()], g4, e, self.w_ih.len() / g4, 1),
            false,
        );
        if let Some(mask) = mask {
            apply_mask(d_embeds, mask);
        }
        embedding_backward(&mut g[self.embed.clone()], d_embeds, tokens, e);
    }
}

/// The LSTM's buffers over a batch's packed rows (`[rows, H]` unless said), and its cell
/// steps forward and back.
#[derive(Debug, Default)]
pub(super) struct LstmBuffers {
    /// The gates of every row `[rows, 4H]`: pre-activations, then activations; the backward
    /// pass turns them into the gradient of the pre-activations.
    pub gates: Vec<f32>,
    /// The cell states, their tanh and the hidden states.
    pub cells: Vec<f32>,
    pub tanh_cells: Vec<f32>,
    pub hidden: Vec<f32>,
    /// The gradient of the hidden states from the layers above (the recurrent part is added
    /// step by step).
    pub d_hidden: Vec<f32>,
    /// The gradient reaching the previous step's hidden state, per running caption `[B, H]`.
    pub d_h_prev: Vec<f32>,
    /// The gradient of the cell state, per running caption `[B, H]`.
    pub d_cell: Vec<f32>,
    /// `b_ih + b_hh` `[4H]`.
    pub gate_bias: Vec<f32>,
    /// Contiguous transposed copies of `W_ih` and `W_hh`: the kernel runs these shapes
    /// markedly faster than on transposed views (measured), and the copies are small next to
    /// the products.
    pub w_ih_t: Vec<f32>,
    pub w_hh_t: Vec<f32>,
    /// The zero initial cell state `[H]` (when the decoder has none).
    zeros: Vec<f32>,
}

impl LstmBuffers {
    /// Starts the gates of `rows` rows at their bias `b_ih + b_hh`, and makes the transposed
    /// copies of `W_ih` and `W_hh`.
    pub(super) fn start_gates(&mut self, core: &CoreRanges, p: &[f32], rows: usize) {
        let (h, g4) = (core.hidden, 4 * core.hidden);
        let input = core.w_ih.len() / g4;
        resize(&mut self.gate_bias, g4);
        for ((d, a), c) in self
            .gate_bias
            .iter_mut()
            .zip(&p[core.b_ih.clone()])
            .zip(&p[core.b_hh.clone()])
        {
            *d = a + c;
        }
        resize(&mut self.gates, rows * g4);
        fill_rows(&mut self.gates, &self.gate_bias);
        resize(&mut self.w_ih_t, input * g4);
        transpose(&p[core.w_ih.clone()], g4, input, &mut self.w_ih_t);
        resize(&mut self.w_hh_t, h * g4);
        transpose(&p[core.w_hh.clone()], g4, h, &mut self.w_hh_t);
    }

    /// Sizes the cell buffers for `rows` rows of hidden size `h`.
    pub(super) fn resize_cells(&mut self, rows: usize, h: usize) {
        resize(&mut self.cells, rows * h);
        resize(&mut self.tanh_cells, rows * h);
        resize(&mut self.hidden, rows * h);
        self.zeros.clear();
        self.zeros.resize(h, 0.0);
    }

    /// Step `t`'s cells from its gates' pre-activations. The previous cell state is step
    /// `t - 1`'s, or at step 0 `c0` (per caption `[B, H]`; zeros when `None`).
    pub(super) fn cells_forward(&mut self, pack: &Packed, t: usize, h: usize, c0: Option<&[f32]>) {
        let g4 = 4 * h;
        let (r0, nt) = (pack.offsets[t], pack.steps[t]);
        let block = &mut self.gates[r0 * g4..(r0 + nt) * g4];
        let (cells_prev, cells_now) = self.cells.split_at_mut(r0 * h);
        for bi in 0..nt {
            let c_prev: &[f32] = if t > 0 {
                let pr = pack.row(t - 1, bi);
                &cells_prev[pr * h..(pr + 1) * h]
            } else if let Some(c0) = c0 {
                &c0[bi * h..(bi + 1) * h]
            } else {
                &self.zeros
            };
            let row = r0 + bi;
            lstm_forward_row(
                &mut block[bi * g4..(bi + 1) * g4],
                c_prev,
                &mut cells_now[bi * h..(bi + 1) * h],
                &mut self.tanh_cells[row * h..(row + 1) * h],
                &mut self.hidden[row * h..(row + 1) * h],
            );
        }
    }

    /// Step `t`'s cells backward: the captions still running at `t + 1` pass back dh (their
    /// dc is already in `d_cell`), the others end here and start from dc = 0; then every
    /// row's gates become d(pre-activation gates). `c0` as in [`LstmBuffers::cells_forward`].
    pub(super) fn cells_backward(&mut self, pack: &Packed, t: usize, h: usize, c0: Option<&[f32]>) {
        let g4 = 4 * h;
        let (r0, nt) = (pack.offsets[t], pack.steps[t]);
        let n_next = pack.running_after(t);
        for bi in 0..n_next {
            let row = r0 + bi;
            let dst = &mut self.d_hidden[row * h..(row + 1) * h];
            for (d, s) in dst.iter_mut().zip(&self.d_h_prev[bi * h..(bi + 1) * h]) {
                *d += s;
            }
        }
        self.d_cell[n_next * h..nt * h].fill(0.0);
        for bi in 0..nt {
            let row = r0 + bi;
            let c_prev: &[f32] = if t > 0 {
                let pr = pack.row(t - 1, bi);
                &self.cells[pr * h..(pr + 1) * h]
            } else if let Some(c0) = c0 {
                &c0[bi * h..(bi + 1) * h]
            } else {
                &self.zeros
            };
            lstm_backward_row(
                &mut self.gates[row * g4..(row + 1) * g4],
                &self.tanh_cells[row * h..(row + 1) * h],
                &self.d_hidden[row * h..(row + 1) * h],
                &mut self.d_cell[bi * h..(bi + 1) * h],
                c_prev,
            );
        }
    }
}
