//! The attention decoder's forward and backward passes by hand, on flat `f32` buffers, in the
//! style of `engine.rs` (run by [`super::cpu_engine`] for [`DecoderKind::Attention`]): packed
//! sequences (time step `t` computes only the `n_t` captions still running), the word part of
//! the LSTM input projection as one product over all steps, the attention, gate and LSTM cell
//! as fused per-row loops, and the weight gradients as one product over all steps each.
//!
//! The network is described at [`crate::decoder::AttentionConfig`]. The objective is the mean
//! token cross-entropy (what [`BatchLoss`] reports) plus the doubly stochastic regularisation
//! `ATTENTION_REG * mean over captions and cells of (1 - sum_t alpha_ti)^2`; dropout falls on
//! the word embeddings and on the LSTM output before the output layer, with masks drawn in
//! the order of [`super::candle_engine::draw_masks`]. A test holds the loss and every gradient
//! to candle's autograd on the same network.

use super::batch::{BatchLoss, EngineError, Example, Features, Packed, Result};
use super::layers::{
    self, CoreRanges, LstmBuffers, apply_mask, embed_rows, linear_backward, linear_forward,
    masked_copy, resize, softmax_cross_entropy,
};
use super::params::Params;
use crate::decoder::linalg::{
    MatRef, attention_row_backward, attention_row_forward, fill_rows, matmul, matmul_by_rows_of,
    scale_in_place, transpose,
};
use crate::decoder::{ATTENTION_REG, DecoderConfig, DecoderKind};
use crate::rng::Rng;
use rayon::prelude::*;
use std::ops::Range;

/// Buffer ranges of the tensors the engine touches.
#[derive(Clone, Debug)]
struct Ranges {
    core: CoreRanges,
    init_h_w: Range<usize>,
    init_h_b: Range<usize>,
    init_c_w: Range<usize>,
    init_c_b: Range<usize>,
    att_enc_w: Range<usize>,
    att_enc_b: Range<usize>,
    att_dec_w: Range<usize>,
    att_dec_b: Range<usize>,
    att_full_w: Range<usize>,
    att_full_b: Range<usize>,
    f_beta_w: Range<usize>,
    f_beta_b: Range<usize>,
}

impl Ranges {
    fn new(p: &Params) -> Result<Self> {
        let r = |name: &str| p.require(name);
        Ok(Self {
            core: CoreRanges::new(p)?,
            init_h_w: r("init_h.weight")?,
            init_h_b: r("init_h.bias")?,
            init_c_w: r("init_c.weight")?,
            init_c_b: r("init_c.bias")?,
            att_enc_w: r("att_enc.weight")?,
            att_enc_b: r("att_enc.bias")?,
            att_dec_w: r("att_dec.weight")?,
            att_dec_b: r("att_dec.bias")?,
            att_full_w: r("att_full.weight")?,
            att_full_b: r("att_full.bias")?,
            f_beta_w: r("f_beta.weight")?,
            f_beta_b: r("f_beta.bias")?,
        })
    }
}

/// Reused buffers of one batch (grown on demand). `B` is the batch's captions, `rows` its
/// packed rows, `P` the feature map's cells and `A` the attention size; per-caption buffers
/// are in packed order.
#[derive(Debug, Default)]
struct Workspace {
    /// The batch packed by time step.
    pack: Packed,
    /// Feature maps `[B, P, F]`, their mean over the cells `[B, F]` and the cells'
    /// projection `att_enc(a)` `[B, P, A]`.
    maps: Vec<f32>,
    mean_map: Vec<f32>,
    att_cells: Vec<f32>,
    /// The initial state `[B, H]`.
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// The LSTM input of every row `[rows, E + F]`: the word embedding (after dropout), then
    /// the gated attended features.
    lstm_in: Vec<f32>,
    /// Dropout masks of the embeddings `[rows, E]` and of the LSTM output `[rows, H]`.
    embed_mask: Vec<f32>,
    out_mask: Vec<f32>,
    /// Previous hidden state of every row `[rows, H]`.
    h_prev: Vec<f32>,
    /// `tanh(att_cells + att_state)` of every row `[rows, P, A]`.
    att_hidden: Vec<f32>,
    /// Attention weights `[rows, P]`, the attended features `[rows, F]` and the gate
    /// `sigmoid(f_beta(h))` (before the sigmoid while the step is computed) `[rows, F]`.
    alpha: Vec<f32>,
    context: Vec<f32>,
    gate: Vec<f32>,
    /// `att_dec(h_prev)` of the step's captions `[B, A]`.
    att_state: Vec<f32>,
    /// The LSTM's gates, states and their gradients.
    lstm: LstmBuffers,
    /// The LSTM output after dropout `[rows, H]`.
    lstm_out: Vec<f32>,
    /// The output layer's logits `[rows, V]`, then the loss gradient with respect to them.
    logits: Vec<f32>,
    row_loss: Vec<f64>,
    /// d(objective)/d(alpha) of the regularisation, `[B, P]`.
    reg_grad: Vec<f32>,
    ones: Vec<f32>,
    att_dec_t: Vec<f32>,
    f_beta_t: Vec<f32>,
    // backward
    /// The gradient of the step's gated attended features `[B, F]`.
    d_gated: Vec<f32>,
    /// The gradients of the gate's pre-activation `[rows, F]`, of `att_state` `[rows, A]`
    /// and of `att_cells` `[B, P, A]`.
    d_gate_pre: Vec<f32>,
    d_att_state: Vec<f32>,
    d_att_cells: Vec<f32>,
    d_embeds: Vec<f32>,
    d_gates_t: Vec<f32>,
    /// The transposed product of [`matmul_by_rows_of`].
    scratch: Vec<f32>,
    dropped: bool,
}

/// The sizes, parameters and ranges one pass reads.
type Pass<'a> = layers::Pass<'a, Ranges>;

/// Forward/backward machinery of the attention decoder.
#[derive(Debug)]
pub(super) struct AttentionEngine {
    cfg: DecoderConfig,
    r: Ranges,
    ws: Workspace,
}

impl AttentionEngine {
    pub(super) fn new(cfg: &DecoderConfig) -> Result<Self> {
        if cfg.kind != DecoderKind::Attention {
            return Err(EngineError::Input(format!(
                "the attention engine cannot train a {} decoder",
                cfg.kind
            )));
        }
        let p = Params::zeros(cfg)?;
        Ok(Self {
            cfg: cfg.clone(),
            r: Ranges::new(&p)?,
            ws: Workspace::default(),
        })
    }

    /// Forward pass with dropout from `rng` (none when `None`); with `want_grad` the buffers
    /// are kept for [`AttentionEngine::backward`]. Returns the cross-entropy part of the loss.
    pub(super) fn forward(
        &mut self,
        params: &Params,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: Option<&mut Rng>,
        want_grad: bool,
    ) -> Result<BatchLoss> {
        let ws = &mut self.ws;
        ws.pack.pack(batch);
        if batch.is_empty() {
            return Ok(BatchLoss::default());
        }
        let pass = Pass::new(&self.cfg, params.as_slice(), &self.r);
        let dropout = if rng.is_some() { self.cfg.dropout } else { 0.0 };
        ws.dropped = dropout > 0.0;
        let rng = if ws.dropped { rng } else { None };
        let need = ws.pack.rows().max(ws.pack.captions() * pass.pc);
        if ws.ones.len() < need {
            ws.ones.resize(need, 1.0);
        }

        image_forward(ws, &pass, features, batch);
        embed_forward(ws, &pass, dropout, rng);
        for t in 0..ws.pack.n_steps() {
            step_forward(ws, &pass, t);
        }
        output_forward(ws, &pass);
        let sum = softmax_cross_entropy(
            &mut ws.logits,
            &ws.pack.targets,
            &mut ws.row_loss,
            pass.v,
            want_grad,
        );
        if want_grad {
            regularisation_backward(ws, &pass);
        }
        Ok(BatchLoss {
            sum,
            tokens: ws.pack.rows(),
        })
    }

    /// The regularisation term of the last forward pass (for tests and reports).
    pub(super) fn last_regularisation(&self) -> f64 {
        let ws = &self.ws;
        let b = ws.pack.captions();
        let pc = self.cfg.cells();
        if b == 0 {
            return 0.0;
        }
        let mut sums = vec![0.0f64; b * pc];
        for t in 0..ws.pack.n_steps() {
            for bi in 0..ws.pack.steps[t] {
                let row = ws.pack.row(t, bi);
                for c in 0..pc {
                    sums[bi * pc + c] += f64::from(ws.alpha[row * pc + c]);
                }
            }
        }
        let sq: f64 = sums.iter().map(|s| (1.0 - s) * (1.0 - s)).sum();
        f64::from(ATTENTION_REG) * sq / (b * pc) as f64
    }

    /// Backward pass of the last `forward` (with `want_grad`), writing every gradient.
    pub(super) fn backward(&mut self, params: &Params, grads: &mut Params) {
        let pass = Pass::new(&self.cfg, params.as_slice(), &self.r);
        let ws = &mut self.ws;
        let g = grads.as_mut_slice();
        if ws.pack.captions() == 0 {
            g.fill(0.0);
            return;
        }
        output_backward(ws, &pass, g);
        let mut att_full = AttFullGrad::new(pass.a);
        start_backward(ws, &pass);
        for t in (0..ws.pack.n_steps()).rev() {
            step_backward(ws, &pass, t, &mut att_full);
        }
        weights_backward(ws, &pass, g, &att_full);
        let mask = ws.dropped.then_some(&ws.embed_mask[..]);
        let d_embeds = &mut ws.d_embeds;
        let (gates, tokens) = (&ws.lstm.gates, &ws.pack.inputs);
        (pass.rg.core).embed_backward(g, pass.p, gates, d_embeds, mask, tokens);
    }
}

/// The feature maps in packed order, their mean, the initial state and the cells' projection.
fn image_forward(
    ws: &mut Workspace,
    pass: &Pass<'_>,
    features: Features<'_>,
    batch: &[Example<'_>],
) {
    let (f, h, pc, a) = (pass.f, pass.h, pass.pc, pass.a);
    let rg = pass.rg;
    let b = ws.pack.captions();
    resize(&mut ws.maps, b * pc * f);
    for (slot, &i) in ws.pack.order.iter().enumerate() {
        ws.maps[slot * pc * f..(slot + 1) * pc * f].copy_from_slice(features.row(batch[i].image));
    }
    resize(&mut ws.mean_map, b * f);
    ws.mean_map.fill(0.0);
    for slot in 0..b {
        let dst = &mut ws.mean_map[slot * f..(slot + 1) * f];
        for cell in ws.maps[slot * pc * f..(slot + 1) * pc * f].chunks_exact(f) {
            for (d, s) in dst.iter_mut().zip(cell) {
                *d += s;
            }
        }
        scale_in_place(dst, 1.0 / pc as f32);
    }
    let mean = MatRef::new(&ws.mean_map, b, f);
    resize(&mut ws.h0, b * h);
    linear_forward(&mut ws.h0, mean, pass.w(&rg.init_h_w), pass.w(&rg.init_h_b));
    resize(&mut ws.c0, b * h);
    linear_forward(&mut ws.c0, mean, pass.w(&rg.init_c_w), pass.w(&rg.init_c_b));
    resize(&mut ws.att_cells, b * pc * a);
    let cells = MatRef::new(&ws.maps, b * pc, f);
    linear_forward(
        &mut ws.att_cells,
        cells,
        pass.w(&rg.att_enc_w),
        pass.w(&rg.att_enc_b),
    );
}

/// The dropout masks (drawn in the candle engine's order), the word embeddings, the word
/// part of the LSTM input projection for all steps at once, and the transposed weights the
/// steps read.
fn embed_forward(ws: &mut Workspace, pass: &Pass<'_>, dropout: f32, rng: Option<&mut Rng>) {
    let (f, e, h, a) = (pass.f, pass.e, pass.h, pass.a);
    let (ex, g4) = (pass.e + pass.f, 4 * h);
    let rg = pass.rg;
    let core = &rg.core;
    let rows = ws.pack.rows();
    resize(&mut ws.lstm_in, rows * ex);
    embed_rows(&mut ws.lstm_in, ex, pass.w(&core.embed), &ws.pack.inputs, e);
    if let Some(r) = rng {
        resize(&mut ws.embed_mask, rows * e);
        r.dropout_mask(&mut ws.embed_mask, dropout);
        resize(&mut ws.out_mask, rows * h);
        r.dropout_mask(&mut ws.out_mask, dropout);
        for row in 0..rows {
            apply_mask(
                &mut ws.lstm_in[row * ex..row * ex + e],
                &ws.embed_mask[row * e..(row + 1) * e],
            );
        }
    }
    ws.lstm.start_gates(core, pass.p, rows);
    resize(&mut ws.att_dec_t, h * a);
    transpose(pass.w(&rg.att_dec_w), a, h, &mut ws.att_dec_t);
    resize(&mut ws.f_beta_t, h * f);
    transpose(pass.w(&rg.f_beta_w), f, h, &mut ws.f_beta_t);
    matmul(
        &mut ws.lstm.gates,
        MatRef::strided(&ws.lstm_in, rows, e, ex, 1),
        MatRef::new(&ws.lstm.w_ih_t, e, g4),
        true,
    );
    // The recurrence's buffers.
    resize(&mut ws.h_prev, rows * h);
    resize(&mut ws.att_hidden, rows * pass.pc * a);
    resize(&mut ws.alpha, rows * pass.pc);
    resize(&mut ws.context, rows * f);
    resize(&mut ws.gate, rows * f);
    resize(&mut ws.att_state, ws.pack.captions() * a);
    ws.lstm.resize_cells(rows, h);
}

/// One time step: the attention over the cells from the previous hidden state, the gated
/// attended features, and the LSTM cell.
fn step_forward(ws: &mut Workspace, pass: &Pass<'_>, t: usize) {
    let (f, e, h, a) = (pass.f, pass.e, pass.h, pass.a);
    let (ex, g4) = (pass.e + pass.f, 4 * h);
    let rg = pass.rg;
    let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
    // Previous hidden states of this step's rows.
    for bi in 0..nt {
        let row = r0 + bi;
        let src = if t == 0 {
            &ws.h0[bi * h..(bi + 1) * h]
        } else {
            let pr = ws.pack.row(t - 1, bi);
            &ws.lstm.hidden[pr * h..(pr + 1) * h]
        };
        ws.h_prev[row * h..(row + 1) * h].copy_from_slice(src);
    }
    let hp = MatRef::new(&ws.h_prev[r0 * h..(r0 + nt) * h], nt, h);
    fill_rows(&mut ws.att_state[..nt * a], pass.w(&rg.att_dec_b));
    matmul_by_rows_of(
        &mut ws.att_state[..nt * a],
        hp,
        MatRef::new(pass.w(&rg.att_dec_w), a, h),
        true,
        &mut ws.scratch,
    );
    fill_rows(&mut ws.gate[r0 * f..(r0 + nt) * f], pass.w(&rg.f_beta_b));
    matmul_by_rows_of(
        &mut ws.gate[r0 * f..(r0 + nt) * f],
        hp,
        MatRef::new(pass.w(&rg.f_beta_w), f, h),
        true,
        &mut ws.scratch,
    );
    attention_rows_forward(ws, pass, t);
    let hp = MatRef::new(&ws.h_prev[r0 * h..(r0 + nt) * h], nt, h);
    // The rest of the gates' pre-activations, then the cell.
    let w_ih = &rg.core.w_ih;
    let block = &mut ws.lstm.gates[r0 * g4..(r0 + nt) * g4];
    matmul_by_rows_of(
        block,
        MatRef::strided(&ws.lstm_in[r0 * ex + e..], nt, f, ex, 1),
        MatRef::strided(&pass.p[w_ih.start + e..w_ih.end], g4, f, ex, 1),
        true,
        &mut ws.scratch,
    );
    matmul_by_rows_of(
        block,
        hp,
        MatRef::new(pass.w(&rg.core.w_hh), g4, h),
        true,
        &mut ws.scratch,
    );
    ws.lstm.cells_forward(&ws.pack, t, h, Some(&ws.c0));
}

/// Step `t`'s attention, row by row: the scores over the cells, their softmax, the attended
/// features and the gated LSTM input.
fn attention_rows_forward(ws: &mut Workspace, pass: &Pass<'_>, t: usize) {
    let (f, e, pc, a) = (pass.f, pass.e, pass.pc, pass.a);
    let (ex, rg) = (pass.e + pass.f, pass.rg);
    let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
    let wf = pass.w(&rg.att_full_w);
    let bf = pass.w(&rg.att_full_b)[0];
    let att_cells = &ws.att_cells;
    let att_state = &ws.att_state;
    let maps = &ws.maps;
    ws.att_hidden[r0 * pc * a..(r0 + nt) * pc * a]
        .par_chunks_mut(pc * a)
        .zip(ws.alpha[r0 * pc..(r0 + nt) * pc].par_chunks_mut(pc))
        .zip(ws.context[r0 * f..(r0 + nt) * f].par_chunks_mut(f))
        .zip(ws.gate[r0 * f..(r0 + nt) * f].par_chunks_mut(f))
        .zip(ws.lstm_in[r0 * ex..(r0 + nt) * ex].par_chunks_mut(ex))
        .enumerate()
        .for_each(|(bi, ((((u, al), ctx), gate), x))| {
            attention_row_forward(
                u,
                al,
                ctx,
                gate,
                &mut x[e..],
                &att_cells[bi * pc * a..(bi + 1) * pc * a],
                &att_state[bi * a..(bi + 1) * a],
                wf,
                bf,
                &maps[bi * pc * f..(bi + 1) * pc * f],
            );
        });
}

/// The output layer on the LSTM outputs after dropout.
fn output_forward(ws: &mut Workspace, pass: &Pass<'_>) {
    let h = pass.h;
    let core = &pass.rg.core;
    let rows = ws.pack.rows();
    resize(&mut ws.lstm_out, rows * h);
    let mask = ws.dropped.then_some(&ws.out_mask[..]);
    masked_copy(&mut ws.lstm_out, &ws.lstm.hidden, mask);
    resize(&mut ws.logits, rows * pass.v);
    let x = MatRef::new(&ws.lstm_out, rows, h);
    linear_forward(&mut ws.logits, x, pass.w(&core.out_w), pass.w(&core.out_b));
}

/// The doubly stochastic regularisation's gradient with respect to every alpha.
fn regularisation_backward(ws: &mut Workspace, pass: &Pass<'_>) {
    let pc = pass.pc;
    let b = ws.pack.captions();
    resize(&mut ws.reg_grad, b * pc);
    ws.reg_grad.fill(0.0);
    for t in 0..ws.pack.n_steps() {
        for bi in 0..ws.pack.steps[t] {
            let row = ws.pack.row(t, bi);
            for c in 0..pc {
                ws.reg_grad[bi * pc + c] += ws.alpha[row * pc + c];
            }
        }
    }
    let k = -2.0 * ATTENTION_REG / (b * pc) as f32;
    for s in ws.reg_grad.iter_mut() {
        *s = k * (1.0 - *s);
    }
}

/// The output layer's gradients and the gradient reaching the LSTM's hidden states.
fn output_backward(ws: &mut Workspace, pass: &Pass<'_>, g: &mut [f32]) {
    let (h, v) = (pass.h, pass.v);
    let core = &pass.rg.core;
    let rows = ws.pack.rows();
    let x = MatRef::new(&ws.lstm_out, rows, h);
    linear_backward(g, &core.out_w, &core.out_b, &ws.logits, x, &ws.ones);
    resize(&mut ws.lstm.d_hidden, rows * h);
    matmul(
        &mut ws.lstm.d_hidden,
        MatRef::new(&ws.logits, rows, v),
        MatRef::new(pass.w(&core.out_w), v, h),
        false,
    );
    if ws.dropped {
        apply_mask(&mut ws.lstm.d_hidden, &ws.out_mask);
    }
}

/// The gradient of the attention's scoring layer `att_full`, summed over the steps in `f64`.
struct AttFullGrad {
    w: Vec<f64>,
    b: f64,
}

impl AttFullGrad {
    fn new(a: usize) -> Self {
        Self {
            w: vec![0.0; a],
            b: 0.0,
        }
    }
}

/// The buffers backpropagation through time accumulates into.
fn start_backward(ws: &mut Workspace, pass: &Pass<'_>) {
    let (f, h, pc, a) = (pass.f, pass.h, pass.pc, pass.a);
    let (b, rows) = (ws.pack.captions(), ws.pack.rows());
    resize(&mut ws.lstm.d_h_prev, b * h);
    resize(&mut ws.lstm.d_cell, b * h);
    resize(&mut ws.d_gated, b * f);
    resize(&mut ws.d_gate_pre, rows * f);
    resize(&mut ws.d_att_state, rows * a);
    resize(&mut ws.d_att_cells, b * pc * a);
    ws.d_att_cells.fill(0.0);
}

/// One step of backpropagation through time: the LSTM cell (the gates become d(pre-activation
/// gates)), then the gradients reaching the previous hidden state (through `W_hh`, the gate
/// and the attention) and the attention's inputs. After step 0, `d_h_prev` and `d_cell` hold
/// the gradients of h0 and c0.
fn step_backward(ws: &mut Workspace, pass: &Pass<'_>, t: usize, att_full: &mut AttFullGrad) {
    let (f, e, h, a) = (pass.f, pass.e, pass.h, pass.a);
    let g4 = 4 * h;
    let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
    ws.lstm.cells_backward(&ws.pack, t, h, Some(&ws.c0));
    let dg = MatRef::new(&ws.lstm.gates[r0 * g4..(r0 + nt) * g4], nt, g4);
    // To the previous hidden state through W_hh, and to the attended features.
    matmul_by_rows_of(
        &mut ws.lstm.d_h_prev[..nt * h],
        dg,
        MatRef::new(&ws.lstm.w_hh_t, h, g4),
        false,
        &mut ws.scratch,
    );
    matmul_by_rows_of(
        &mut ws.d_gated[..nt * f],
        dg,
        MatRef::new(&ws.lstm.w_ih_t[e * g4..], f, g4),
        false,
        &mut ws.scratch,
    );
    attention_rows_backward(ws, pass, t, att_full);
    // The gate and the attention read the previous hidden state too.
    matmul_by_rows_of(
        &mut ws.lstm.d_h_prev[..nt * h],
        MatRef::new(&ws.d_gate_pre[r0 * f..(r0 + nt) * f], nt, f),
        MatRef::new(&ws.f_beta_t, h, f),
        true,
        &mut ws.scratch,
    );
    matmul_by_rows_of(
        &mut ws.lstm.d_h_prev[..nt * h],
        MatRef::new(&ws.d_att_state[r0 * a..(r0 + nt) * a], nt, a),
        MatRef::new(&ws.att_dec_t, h, a),
        true,
        &mut ws.scratch,
    );
}

/// Step `t`'s gate and attention backward, row by row: the gradients of the gate's
/// pre-activation, of `att_state` and of `att_cells`, with `att_full`'s summed in.
fn attention_rows_backward(
    ws: &mut Workspace,
    pass: &Pass<'_>,
    t: usize,
    att_full: &mut AttFullGrad,
) {
    let (f, pc, a) = (pass.f, pass.pc, pass.a);
    let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
    let wf = pass.w(&pass.rg.att_full_w);
    let reg = &ws.reg_grad;
    let maps = &ws.maps;
    let d_gated = &ws.d_gated;
    let ctx = &ws.context[r0 * f..(r0 + nt) * f];
    let gate = &ws.gate[r0 * f..(r0 + nt) * f];
    let alpha = &ws.alpha[r0 * pc..(r0 + nt) * pc];
    let u = &ws.att_hidden[r0 * pc * a..(r0 + nt) * pc * a];
    let partial: Vec<(Vec<f64>, f64)> = ws.d_gate_pre[r0 * f..(r0 + nt) * f]
        .par_chunks_mut(f)
        .zip(ws.d_att_state[r0 * a..(r0 + nt) * a].par_chunks_mut(a))
        .zip(ws.d_att_cells[..nt * pc * a].par_chunks_mut(pc * a))
        .enumerate()
        .map(|(bi, ((dgp, da2), da1))| {
            let mut dctx = vec![0.0f32; f];
            let mut dal = vec![0.0f32; pc];
            let mut dwf = vec![0.0f64; a];
            let dbf = attention_row_backward(
                dgp,
                da2,
                da1,
                &mut dwf,
                &mut dctx,
                &mut dal,
                &d_gated[bi * f..(bi + 1) * f],
                &ctx[bi * f..(bi + 1) * f],
                &gate[bi * f..(bi + 1) * f],
                &alpha[bi * pc..(bi + 1) * pc],
                &maps[bi * pc * f..(bi + 1) * pc * f],
                &reg[bi * pc..(bi + 1) * pc],
                &u[bi * pc * a..(bi + 1) * pc * a],
                wf,
            );
            (dwf, dbf)
        })
        .collect();
    for (dwf, dbf) in partial {
        for (d, s) in att_full.w.iter_mut().zip(dwf) {
            *d += s;
        }
        att_full.b += dbf;
    }
}

/// The weight gradients, one product over all steps each: the LSTM, the gate, the attention
/// and the initial state.
fn weights_backward(ws: &mut Workspace, pass: &Pass<'_>, g: &mut [f32], att_full: &AttFullGrad) {
    let (f, h, pc) = (pass.f, pass.h, pass.pc);
    let rg = pass.rg;
    let (b, rows) = (ws.pack.captions(), ws.pack.rows());
    rg.core.lstm_backward(
        g,
        &ws.lstm.gates[..rows * 4 * h],
        &mut ws.d_gates_t,
        MatRef::new(&ws.lstm_in, rows, pass.e + pass.f),
        &ws.h_prev,
        &ws.ones,
    );
    let ones = &ws.ones;
    let h_prev = MatRef::new(&ws.h_prev, rows, h);
    linear_backward(g, &rg.f_beta_w, &rg.f_beta_b, &ws.d_gate_pre, h_prev, ones);
    linear_backward(
        g,
        &rg.att_dec_w,
        &rg.att_dec_b,
        &ws.d_att_state,
        h_prev,
        ones,
    );
    for (d, s) in g[rg.att_full_w.clone()].iter_mut().zip(&att_full.w) {
        *d = *s as f32;
    }
    g[rg.att_full_b.clone()][0] = att_full.b as f32;
    let maps = MatRef::new(&ws.maps, b * pc, f);
    linear_backward(g, &rg.att_enc_w, &rg.att_enc_b, &ws.d_att_cells, maps, ones);
    // The initial state: d_h_prev and d_cell now hold the gradients of h0 and c0.
    let mean = MatRef::new(&ws.mean_map, b, f);
    linear_backward(g, &rg.init_h_w, &rg.init_h_b, &ws.lstm.d_h_prev, mean, ones);
    linear_backward(g, &rg.init_c_w, &rg.init_c_b, &ws.lstm.d_cell, mean, ones);
}
