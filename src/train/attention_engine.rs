//! The attention decoder's forward and backward passes by hand, on flat `f32` buffers, in the
//! style of [`super::engine`] (which runs them for [`DecoderKind::Attention`]): packed
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
use super::params::Params;
use super::rng::Rng;
use crate::decoder::linalg::{
    MatRef, attention_row_backward, attention_row_forward, column_sums, exp_shifted_sum, fill_rows,
    lstm_backward_row, lstm_forward_row, matmul, matmul_by_rows_of, max_of, scale_in_place,
    transpose,
};
use crate::decoder::{ATTENTION_REG, DecoderConfig, DecoderKind};
use rayon::prelude::*;
use std::ops::Range;

#[derive(Clone, Debug)]
struct Ranges {
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
    embed: Range<usize>,
    w_ih: Range<usize>,
    w_hh: Range<usize>,
    b_ih: Range<usize>,
    b_hh: Range<usize>,
    out_w: Range<usize>,
    out_b: Range<usize>,
}

impl Ranges {
    fn new(p: &Params) -> Result<Self> {
        let r = |name: &str| p.require(name);
        Ok(Self {
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
            embed: r("embed.weight")?,
            w_ih: r("lstm.weight_ih_l0")?,
            w_hh: r("lstm.weight_hh_l0")?,
            b_ih: r("lstm.bias_ih_l0")?,
            b_hh: r("lstm.bias_hh_l0")?,
            out_w: r("output.weight")?,
            out_b: r("output.bias")?,
        })
    }
}

/// Reused buffers of one batch (grown on demand).
#[derive(Debug, Default)]
struct Workspace {
    /// The batch packed by time step.
    pack: Packed,
    /// Feature maps in packed order `[B, P, F]`, their mean `[B, F]` and projection
    /// `att_enc(a)` `[B, P, A]`.
    maps: Vec<f32>,
    mean_map: Vec<f32>,
    att_cells: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// The LSTM input of every row `[rows, E + F]`: the word embedding (after dropout), then
    /// the gated attended features.
    lstm_in: Vec<f32>,
    embed_mask: Vec<f32>,
    out_mask: Vec<f32>,
    /// Previous hidden state of every row `[rows, H]`.
    h_prev: Vec<f32>,
    /// `tanh(att1 + att2)` of every row `[rows, P, A]`.
    att_hidden: Vec<f32>,
    alpha: Vec<f32>,
    context: Vec<f32>,
    gate: Vec<f32>,
    att_state: Vec<f32>,
    gate_bias: Vec<f32>,
    gates: Vec<f32>,
    cells: Vec<f32>,
    tanh_cells: Vec<f32>,
    hidden: Vec<f32>,
    lstm_out: Vec<f32>,
    logits: Vec<f32>,
    row_loss: Vec<f64>,
    /// d(objective)/d(alpha) of the regularisation, `[B, P]`.
    reg_grad: Vec<f32>,
    ones: Vec<f32>,
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    att_dec_t: Vec<f32>,
    f_beta_t: Vec<f32>,
    // backward
    d_hidden: Vec<f32>,
    d_h_prev: Vec<f32>,
    d_cell: Vec<f32>,
    d_gated: Vec<f32>,
    d_gate_pre: Vec<f32>,
    d_att_state: Vec<f32>,
    d_att_cells: Vec<f32>,
    d_embeds: Vec<f32>,
    d_gates_t: Vec<f32>,
    /// The transposed product of [`matmul_by_rows_of`].
    scratch: Vec<f32>,
    dropped: bool,
}

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

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
        if batch.is_empty() {
            self.ws.pack.pack(batch);
            return Ok(BatchLoss::default());
        }
        let cfg = &self.cfg;
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        let (pc, a) = (cfg.cells(), cfg.attention_dim());
        let ex = e + f;
        let g4 = 4 * h;
        let p = params.as_slice();
        let rg = &self.r;
        let ws = &mut self.ws;
        let dropout = if rng.is_some() { cfg.dropout } else { 0.0 };
        ws.dropped = dropout > 0.0;

        ws.pack.pack(batch);
        let b = ws.pack.captions();
        let steps = ws.pack.n_steps();
        let rows = ws.pack.rows();
        if ws.ones.len() < rows.max(b * pc) {
            ws.ones.resize(rows.max(b * pc), 1.0);
        }

        // Feature maps, their mean, the initial state and the cells' projection.
        resize(&mut ws.maps, b * pc * f);
        for (slot, &i) in ws.pack.order.iter().enumerate() {
            ws.maps[slot * pc * f..(slot + 1) * pc * f]
                .copy_from_slice(features.row(batch[i].image));
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
        fill_rows(&mut ws.h0, &p[rg.init_h_b.clone()]);
        matmul(
            &mut ws.h0,
            mean,
            MatRef::new(&p[rg.init_h_w.clone()], h, f).t(),
            true,
        );
        resize(&mut ws.c0, b * h);
        fill_rows(&mut ws.c0, &p[rg.init_c_b.clone()]);
        matmul(
            &mut ws.c0,
            mean,
            MatRef::new(&p[rg.init_c_w.clone()], h, f).t(),
            true,
        );
        resize(&mut ws.att_cells, b * pc * a);
        fill_rows(&mut ws.att_cells, &p[rg.att_enc_b.clone()]);
        matmul(
            &mut ws.att_cells,
            MatRef::new(&ws.maps, b * pc, f),
            MatRef::new(&p[rg.att_enc_w.clone()], a, f).t(),
            true,
        );

        // Dropout masks (the candle engine draws them in this order) and embeddings.
        resize(&mut ws.lstm_in, rows * ex);
        let table = &p[rg.embed.clone()];
        for (row, &tok) in ws.pack.inputs.iter().enumerate() {
            let t = tok as usize;
            ws.lstm_in[row * ex..row * ex + e].copy_from_slice(&table[t * e..(t + 1) * e]);
        }
        if let (true, Some(r)) = (ws.dropped, rng) {
            resize(&mut ws.embed_mask, rows * e);
            r.dropout_mask(&mut ws.embed_mask, dropout);
            resize(&mut ws.out_mask, rows * h);
            r.dropout_mask(&mut ws.out_mask, dropout);
            for row in 0..rows {
                for (x, m) in ws.lstm_in[row * ex..row * ex + e]
                    .iter_mut()
                    .zip(&ws.embed_mask[row * e..(row + 1) * e])
                {
                    *x *= m;
                }
            }
        }

        // The word part of the input projection, all steps at once.
        resize(&mut ws.gate_bias, g4);
        for ((d, x), y) in ws
            .gate_bias
            .iter_mut()
            .zip(&p[rg.b_ih.clone()])
            .zip(&p[rg.b_hh.clone()])
        {
            *d = x + y;
        }
        resize(&mut ws.gates, rows * g4);
        fill_rows(&mut ws.gates, &ws.gate_bias);
        resize(&mut ws.w_ih_t, ex * g4);
        transpose(&p[rg.w_ih.clone()], g4, ex, &mut ws.w_ih_t);
        resize(&mut ws.w_hh_t, h * g4);
        transpose(&p[rg.w_hh.clone()], g4, h, &mut ws.w_hh_t);
        resize(&mut ws.att_dec_t, h * a);
        transpose(&p[rg.att_dec_w.clone()], a, h, &mut ws.att_dec_t);
        resize(&mut ws.f_beta_t, h * f);
        transpose(&p[rg.f_beta_w.clone()], f, h, &mut ws.f_beta_t);
        matmul(
            &mut ws.gates,
            MatRef::strided(&ws.lstm_in, rows, e, ex, 1),
            MatRef::new(&ws.w_ih_t, e, g4),
            true,
        );

        // The recurrence: attention, gate, LSTM cell.
        resize(&mut ws.h_prev, rows * h);
        resize(&mut ws.att_hidden, rows * pc * a);
        resize(&mut ws.alpha, rows * pc);
        resize(&mut ws.context, rows * f);
        resize(&mut ws.gate, rows * f);
        resize(&mut ws.att_state, b * a);
        resize(&mut ws.cells, rows * h);
        resize(&mut ws.tanh_cells, rows * h);
        resize(&mut ws.hidden, rows * h);
        let wf = &p[rg.att_full_w.clone()];
        let bf = p[rg.att_full_b.clone()][0];
        for t in 0..steps {
            let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
            // Previous hidden states of this step's rows.
            for bi in 0..nt {
                let row = r0 + bi;
                let src = if t == 0 {
                    &ws.h0[bi * h..(bi + 1) * h]
                } else {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &ws.hidden[pr * h..(pr + 1) * h]
                };
                ws.h_prev[row * h..(row + 1) * h].copy_from_slice(src);
            }
            let hp = MatRef::new(&ws.h_prev[r0 * h..(r0 + nt) * h], nt, h);
            fill_rows(&mut ws.att_state[..nt * a], &p[rg.att_dec_b.clone()]);
            matmul_by_rows_of(
                &mut ws.att_state[..nt * a],
                hp,
                MatRef::new(&p[rg.att_dec_w.clone()], a, h),
                true,
                &mut ws.scratch,
            );
            fill_rows(&mut ws.gate[r0 * f..(r0 + nt) * f], &p[rg.f_beta_b.clone()]);
            matmul_by_rows_of(
                &mut ws.gate[r0 * f..(r0 + nt) * f],
                hp,
                MatRef::new(&p[rg.f_beta_w.clone()], f, h),
                true,
                &mut ws.scratch,
            );
            // Per row: scores, softmax, context, gated input.
            let att1 = &ws.att_cells;
            let att2 = &ws.att_state;
            let enc = &ws.maps;
            let u_rows = &mut ws.att_hidden[r0 * pc * a..(r0 + nt) * pc * a];
            let al_rows = &mut ws.alpha[r0 * pc..(r0 + nt) * pc];
            let ctx_rows = &mut ws.context[r0 * f..(r0 + nt) * f];
            let gate_rows = &mut ws.gate[r0 * f..(r0 + nt) * f];
            let x_rows = &mut ws.lstm_in[r0 * ex..(r0 + nt) * ex];
            u_rows
                .par_chunks_mut(pc * a)
                .zip(al_rows.par_chunks_mut(pc))
                .zip(ctx_rows.par_chunks_mut(f))
                .zip(gate_rows.par_chunks_mut(f))
                .zip(x_rows.par_chunks_mut(ex))
                .enumerate()
                .for_each(|(bi, ((((u, al), ctx), gate), x))| {
                    attention_row_forward(
                        u,
                        al,
                        ctx,
                        gate,
                        &mut x[e..],
                        &att1[bi * pc * a..(bi + 1) * pc * a],
                        &att2[bi * a..(bi + 1) * a],
                        wf,
                        bf,
                        &enc[bi * pc * f..(bi + 1) * pc * f],
                    );
                });
            let block = &mut ws.gates[r0 * g4..(r0 + nt) * g4];
            matmul_by_rows_of(
                block,
                MatRef::strided(&ws.lstm_in[r0 * ex + e..], nt, f, ex, 1),
                MatRef::strided(&p[rg.w_ih.start + e..rg.w_ih.end], g4, f, ex, 1),
                true,
                &mut ws.scratch,
            );
            matmul_by_rows_of(
                block,
                hp,
                MatRef::new(&p[rg.w_hh.clone()], g4, h),
                true,
                &mut ws.scratch,
            );
            let (cs_prev, cs_cur) = ws.cells.split_at_mut(r0 * h);
            for bi in 0..nt {
                let row = r0 + bi;
                let cp: &[f32] = if t > 0 {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &cs_prev[pr * h..(pr + 1) * h]
                } else {
                    &ws.c0[bi * h..(bi + 1) * h]
                };
                lstm_forward_row(
                    &mut block[bi * g4..(bi + 1) * g4],
                    cp,
                    &mut cs_cur[bi * h..(bi + 1) * h],
                    &mut ws.tanh_cells[row * h..(row + 1) * h],
                    &mut ws.hidden[row * h..(row + 1) * h],
                );
            }
        }

        // Output layer on the LSTM outputs after dropout.
        resize(&mut ws.lstm_out, rows * h);
        if ws.dropped {
            for ((d, s), m) in ws.lstm_out.iter_mut().zip(&ws.hidden).zip(&ws.out_mask) {
                *d = s * m;
            }
        } else {
            ws.lstm_out.copy_from_slice(&ws.hidden[..rows * h]);
        }
        resize(&mut ws.logits, rows * v);
        fill_rows(&mut ws.logits, &p[rg.out_b.clone()]);
        matmul(
            &mut ws.logits,
            MatRef::new(&ws.lstm_out, rows, h),
            MatRef::new(&p[rg.out_w.clone()], v, h).t(),
            true,
        );
        ws.row_loss.resize(rows, 0.0);
        let scale = 1.0 / rows as f32;
        ws.logits
            .par_chunks_mut(v)
            .zip(ws.pack.targets.par_iter())
            .zip(ws.row_loss.par_iter_mut())
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
        let sum: f64 = ws.row_loss[..rows].iter().sum();

        // Doubly stochastic regularisation: its gradient with respect to every alpha.
        if want_grad {
            resize(&mut ws.reg_grad, b * pc);
            ws.reg_grad.fill(0.0);
            for t in 0..steps {
                for bi in 0..ws.pack.steps[t] {
                    let row = ws.pack.offsets[t] + bi;
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
        Ok(BatchLoss { sum, tokens: rows })
    }

    /// The regularisation term of the last forward pass (for tests and reports).
    pub(super) fn last_regularisation(&self) -> f64 {
        let ws = &self.ws;
        let b = ws.pack.order.len();
        let pc = self.cfg.cells();
        if b == 0 {
            return 0.0;
        }
        let mut sums = vec![0.0f64; b * pc];
        for t in 0..ws.pack.steps.len() {
            for bi in 0..ws.pack.steps[t] {
                let row = ws.pack.offsets[t] + bi;
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
        let cfg = &self.cfg;
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        let (pc, a) = (cfg.cells(), cfg.attention_dim());
        let ex = e + f;
        let g4 = 4 * h;
        let p = params.as_slice();
        let rg = &self.r;
        let ws = &mut self.ws;
        let g = grads.as_mut_slice();
        let b = ws.pack.order.len();
        if b == 0 {
            g.fill(0.0);
            return;
        }
        let steps = ws.pack.steps.len();
        let rows = ws.pack.inputs.len();
        let dl = MatRef::new(&ws.logits, rows, v);

        // Output layer.
        matmul(
            &mut g[rg.out_w.clone()],
            dl.t(),
            MatRef::new(&ws.lstm_out, rows, h),
            false,
        );
        column_sums(&mut g[rg.out_b.clone()], &ws.logits, rows, v, &ws.ones);
        resize(&mut ws.d_hidden, rows * h);
        matmul(
            &mut ws.d_hidden,
            dl,
            MatRef::new(&p[rg.out_w.clone()], v, h),
            false,
        );
        if ws.dropped {
            for (d, m) in ws.d_hidden.iter_mut().zip(&ws.out_mask) {
                *d *= m;
            }
        }

        // Backpropagation through time.
        resize(&mut ws.d_h_prev, b * h);
        resize(&mut ws.d_cell, b * h);
        resize(&mut ws.d_gated, b * f);
        resize(&mut ws.d_gate_pre, rows * f);
        resize(&mut ws.d_att_state, rows * a);
        resize(&mut ws.d_att_cells, b * pc * a);
        ws.d_att_cells.fill(0.0);
        let mut d_wf = vec![0.0f64; a];
        let mut d_bf = 0.0f64;
        let wf = &p[rg.att_full_w.clone()];
        for t in (0..steps).rev() {
            let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
            let n_next = if t + 1 < steps {
                ws.pack.steps[t + 1]
            } else {
                0
            };
            for bi in 0..n_next {
                let row = r0 + bi;
                for (d, s) in ws.d_hidden[row * h..(row + 1) * h]
                    .iter_mut()
                    .zip(&ws.d_h_prev[bi * h..(bi + 1) * h])
                {
                    *d += s;
                }
            }
            ws.d_cell[n_next * h..nt * h].fill(0.0);
            for bi in 0..nt {
                let row = r0 + bi;
                let cp: &[f32] = if t > 0 {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &ws.cells[pr * h..(pr + 1) * h]
                } else {
                    &ws.c0[bi * h..(bi + 1) * h]
                };
                lstm_backward_row(
                    &mut ws.gates[row * g4..(row + 1) * g4],
                    &ws.tanh_cells[row * h..(row + 1) * h],
                    &ws.d_hidden[row * h..(row + 1) * h],
                    &mut ws.d_cell[bi * h..(bi + 1) * h],
                    cp,
                );
            }
            let dg = MatRef::new(&ws.gates[r0 * g4..(r0 + nt) * g4], nt, g4);
            // To the previous hidden state through W_hh, and to the attended features.
            matmul_by_rows_of(
                &mut ws.d_h_prev[..nt * h],
                dg,
                MatRef::new(&ws.w_hh_t, h, g4),
                false,
                &mut ws.scratch,
            );
            matmul_by_rows_of(
                &mut ws.d_gated[..nt * f],
                dg,
                MatRef::new(&ws.w_ih_t[e * g4..], f, g4),
                false,
                &mut ws.scratch,
            );
            // Gate and attention, per row.
            let reg = &ws.reg_grad;
            let enc = &ws.maps;
            let dz = &ws.d_gated;
            let ctx = &ws.context[r0 * f..(r0 + nt) * f];
            let gate = &ws.gate[r0 * f..(r0 + nt) * f];
            let alpha = &ws.alpha[r0 * pc..(r0 + nt) * pc];
            let u = &ws.att_hidden[r0 * pc * a..(r0 + nt) * pc * a];
            let d_gpre = &mut ws.d_gate_pre[r0 * f..(r0 + nt) * f];
            let d_att2 = &mut ws.d_att_state[r0 * a..(r0 + nt) * a];
            let d_att1 = &mut ws.d_att_cells[..nt * pc * a];
            let partial: Vec<(Vec<f64>, f64)> = d_gpre
                .par_chunks_mut(f)
                .zip(d_att2.par_chunks_mut(a))
                .zip(d_att1.par_chunks_mut(pc * a))
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
                        &dz[bi * f..(bi + 1) * f],
                        &ctx[bi * f..(bi + 1) * f],
                        &gate[bi * f..(bi + 1) * f],
                        &alpha[bi * pc..(bi + 1) * pc],
                        &enc[bi * pc * f..(bi + 1) * pc * f],
                        &reg[bi * pc..(bi + 1) * pc],
                        &u[bi * pc * a..(bi + 1) * pc * a],
                        wf,
                    );
                    (dwf, dbf)
                })
                .collect();
            for (dwf, dbf) in partial {
                for (d, s) in d_wf.iter_mut().zip(dwf) {
                    *d += s;
                }
                d_bf += dbf;
            }
            // The gate and the attention read the previous hidden state too.
            matmul_by_rows_of(
                &mut ws.d_h_prev[..nt * h],
                MatRef::new(&ws.d_gate_pre[r0 * f..(r0 + nt) * f], nt, f),
                MatRef::new(&ws.f_beta_t, h, f),
                true,
                &mut ws.scratch,
            );
            matmul_by_rows_of(
                &mut ws.d_h_prev[..nt * h],
                MatRef::new(&ws.d_att_state[r0 * a..(r0 + nt) * a], nt, a),
                MatRef::new(&ws.att_dec_t, h, a),
                true,
                &mut ws.scratch,
            );
        }

        // Weight gradients, one product over all steps each.
        resize(&mut ws.d_gates_t, g4 * rows);
        transpose(&ws.gates[..rows * g4], rows, g4, &mut ws.d_gates_t);
        let dg_t = MatRef::new(&ws.d_gates_t, g4, rows);
        let hprev = MatRef::new(&ws.h_prev, rows, h);
        matmul(&mut g[rg.w_hh.clone()], dg_t, hprev, false);
        matmul(
            &mut g[rg.w_ih.clone()],
            dg_t,
            MatRef::new(&ws.lstm_in, rows, ex),
            false,
        );
        column_sums(&mut g[rg.b_ih.clone()], &ws.gates, rows, g4, &ws.ones);
        let (lo, hi) = (rg.b_ih.clone(), rg.b_hh.clone());
        g.copy_within(lo, hi.start);
        matmul(
            &mut g[rg.f_beta_w.clone()],
            MatRef::new(&ws.d_gate_pre, rows, f).t(),
            hprev,
            false,
        );
        column_sums(
            &mut g[rg.f_beta_b.clone()],
            &ws.d_gate_pre,
            rows,
            f,
            &ws.ones,
        );
        matmul(
            &mut g[rg.att_dec_w.clone()],
            MatRef::new(&ws.d_att_state, rows, a).t(),
            hprev,
            false,
        );
        column_sums(
            &mut g[rg.att_dec_b.clone()],
            &ws.d_att_state,
            rows,
            a,
            &ws.ones,
        );
        for (d, s) in g[rg.att_full_w.clone()].iter_mut().zip(&d_wf) {
            *d = *s as f32;
        }
        g[rg.att_full_b.clone()][0] = d_bf as f32;
        matmul(
            &mut g[rg.att_enc_w.clone()],
            MatRef::new(&ws.d_att_cells, b * pc, a).t(),
            MatRef::new(&ws.maps, b * pc, f),
            false,
        );
        column_sums(
            &mut g[rg.att_enc_b.clone()],
            &ws.d_att_cells,
            b * pc,
            a,
            &ws.ones,
        );
        // The initial state: dh_rec and dc now hold the gradients of h0 and c0.
        let mean = MatRef::new(&ws.mean_map, b, f);
        matmul(
            &mut g[rg.init_h_w.clone()],
            MatRef::new(&ws.d_h_prev, b, h).t(),
            mean,
            false,
        );
        column_sums(&mut g[rg.init_h_b.clone()], &ws.d_h_prev, b, h, &ws.ones);
        matmul(
            &mut g[rg.init_c_w.clone()],
            MatRef::new(&ws.d_cell, b, h).t(),
            mean,
            false,
        );
        column_sums(&mut g[rg.init_c_b.clone()], &ws.d_cell, b, h, &ws.ones);

        // Embeddings.
        resize(&mut ws.d_embeds, rows * e);
        matmul(
            &mut ws.d_embeds,
            MatRef::new(&ws.gates, rows, g4),
            MatRef::strided(&p[rg.w_ih.clone()], g4, e, ex, 1),
            false,
        );
        if ws.dropped {
            for (d, m) in ws.d_embeds.iter_mut().zip(&ws.embed_mask) {
                *d *= m;
            }
        }
        let ge = &mut g[rg.embed.clone()];
        ge.fill(0.0);
        for (row, &tok) in ws.pack.inputs.iter().enumerate() {
            let t = tok as usize;
            for (d, s) in ge[t * e..(t + 1) * e]
                .iter_mut()
                .zip(&ws.d_embeds[row * e..(row + 1) * e])
            {
                *d += s;
            }
        }
    }
}
