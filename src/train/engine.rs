//! The training engine: forward and backward passes of both decoders written out by hand on
//! flat `f32` buffers.
//!
//! Why not candle's autograd: a step of this small model is dominated by per-op overhead and by
//! work that a generic graph cannot skip. Here:
//! - every batch is *packed* like PyTorch's `PackedSequence`: captions sorted by length, time
//!   step `t` holds only the `n_t` captions that are still running (a prefix of the batch), so
//!   no padding position is ever computed, in the LSTM or in the output layers;
//! - the input projections of all time steps are one matrix multiply; only the recurrent
//!   `h W_hh^T` product runs inside the time loop;
//! - the gates, cell and softmax are fused loops with a vectorisable `exp`;
//! - the backward pass (BPTT) reuses the forward buffers in place, and the weight gradients of
//!   the recurrent matrix are one matrix multiply over all time steps.
//!
//! The loss is the mean cross-entropy over the real target tokens of the batch (each caption's
//! words and its END), exactly what the candle [`crate::decoder::Decoder`] computes step by step
//! (a test checks the two agree).

use super::batch::{BatchLoss, EngineError, Example, Features};
use super::batch::{Packed, Result, check_input};
use super::params::Params;
use super::rng::Rng;
use crate::decoder::linalg::{
    MatRef, column_sums, exp_shifted_sum, fill_rows, lstm_backward_row, lstm_forward_row, matmul,
    max_of, scale_in_place, tanh_in_place, transpose,
};
use crate::decoder::{DecoderConfig, DecoderKind};
use rayon::prelude::*;
use std::ops::Range;

/// Buffer ranges of the tensors the engine touches.
#[derive(Clone, Debug)]
struct Ranges {
    embed: Range<usize>,
    w_ih: Range<usize>,
    w_hh: Range<usize>,
    b_ih: Range<usize>,
    b_hh: Range<usize>,
    out_w: Range<usize>,
    out_b: Range<usize>,
    head: Head,
}

#[derive(Clone, Debug)]
enum Head {
    Merge {
        img_w: Range<usize>,
        img_b: Range<usize>,
        hid_w: Range<usize>,
        hid_b: Range<usize>,
    },
    Inject {
        h_w: Range<usize>,
        h_b: Range<usize>,
        c_w: Range<usize>,
        c_b: Range<usize>,
    },
    /// Runs in [`super::attention_engine`].
    Attention,
}

impl Ranges {
    fn new(p: &Params) -> Result<Self> {
        let r = |name: &str| p.require(name);
        let head = match p.config().kind {
            DecoderKind::Merge => Head::Merge {
                img_w: r("image.weight")?,
                img_b: r("image.bias")?,
                hid_w: r("hidden.weight")?,
                hid_b: r("hidden.bias")?,
            },
            DecoderKind::Inject => Head::Inject {
                h_w: r("init_h.weight")?,
                h_b: r("init_h.bias")?,
                c_w: r("init_c.weight")?,
                c_b: r("init_c.bias")?,
            },
            DecoderKind::Attention => Head::Attention,
        };
        Ok(Self {
            embed: r("embed.weight")?,
            w_ih: r("lstm.weight_ih_l0")?,
            w_hh: r("lstm.weight_hh_l0")?,
            b_ih: r("lstm.bias_ih_l0")?,
            b_hh: r("lstm.bias_hh_l0")?,
            out_w: r("output.weight")?,
            out_b: r("output.bias")?,
            head,
        })
    }
}

/// Reused buffers of one batch (grown on demand, never shrunk).
#[derive(Debug, Default)]
struct Workspace {
    /// The batch packed by time step.
    pack: Packed,
    /// Image features after dropout `[B, F]`.
    image_in: Vec<f32>,
    /// Merge: image projection after ReLU. Inject: h0 = tanh(..).
    image_out: Vec<f32>,
    /// Inject: c0 = tanh(..).
    c0: Vec<f32>,
    embeds: Vec<f32>,
    embed_mask: Vec<f32>,
    gate_bias: Vec<f32>,
    gates: Vec<f32>,
    cells: Vec<f32>,
    tanh_cells: Vec<f32>,
    hidden: Vec<f32>,
    /// Merge: LSTM output + image projection. Inject: LSTM output after dropout.
    lstm_out: Vec<f32>,
    out_mask: Vec<f32>,
    /// Merge: hidden Dense output after ReLU.
    dense_out: Vec<f32>,
    logits: Vec<f32>,
    row_loss: Vec<f64>,
    ones: Vec<f32>,
    // backward
    d_dense_out: Vec<f32>,
    d_hidden: Vec<f32>,
    d_image_out: Vec<f32>,
    d_c0: Vec<f32>,
    d_h_prev: Vec<f32>,
    d_cell: Vec<f32>,
    h_prev: Vec<f32>,
    d_embeds: Vec<f32>,
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    w_out_t: Vec<f32>,
    d_gates_t: Vec<f32>,
    /// Whether the last forward pass applied dropout masks.
    dropped: bool,
}

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// Optional wall-clock accounting of the engine's phases.
#[derive(Debug, Default)]
struct Profiler {
    on: bool,
    last: Option<std::time::Instant>,
    acc: Vec<(&'static str, f64)>,
}

impl Profiler {
    fn start(&mut self) {
        if self.on {
            self.last = Some(std::time::Instant::now());
        }
    }

    fn mark(&mut self, phase: &'static str) {
        if !self.on {
            return;
        }
        let now = std::time::Instant::now();
        let dt = self.last.map_or(0.0, |t| (now - t).as_secs_f64());
        self.last = Some(now);
        match self.acc.iter_mut().find(|(n, _)| *n == phase) {
            Some((_, s)) => *s += dt,
            None => self.acc.push((phase, dt)),
        }
    }
}

/// Forward/backward machinery for one decoder configuration.
#[derive(Debug)]
pub struct Engine {
    cfg: DecoderConfig,
    ranges: Ranges,
    ws: Workspace,
    prof: Profiler,
    /// The attention decoder's passes (for [`DecoderKind::Attention`]).
    attention: Option<super::attention_engine::AttentionEngine>,
}

impl Engine {
    pub fn new(cfg: &DecoderConfig) -> Result<Self> {
        let p = Params::zeros(cfg)?;
        let attention = if cfg.kind == DecoderKind::Attention {
            Some(super::attention_engine::AttentionEngine::new(cfg)?)
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            ranges: Ranges::new(&p)?,
            ws: Workspace::default(),
            prof: Profiler::default(),
            attention,
        })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Turns on (or off) accounting of the wall-clock time of each phase of the passes.
    pub fn set_profiling(&mut self, on: bool) {
        self.prof.on = on;
    }

    /// Seconds spent in each phase since profiling was turned on, in first-seen
    /// order.
    pub fn phase_times(&self) -> &[(&'static str, f64)] {
        &self.prof.acc
    }

    /// Forward pass with dropout from `rng` (none when `None`) and backward pass: writes the
    /// gradient of the batch's mean token loss into `grads` (every element is overwritten).
    pub fn train_step(
        &mut self,
        params: &Params,
        grads: &mut Params,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: Option<&mut Rng>,
    ) -> Result<BatchLoss> {
        if grads.config() != &self.cfg {
            return Err(EngineError::Input(
                "gradient buffer made for another configuration".into(),
            ));
        }
        if let Some(att) = self.attention.as_mut() {
            check(&self.cfg, params, features, batch)?;
            let loss = att.forward(params, features, batch, rng, true)?;
            att.backward(params, grads);
            return Ok(loss);
        }
        let loss = self.forward(params, features, batch, rng, true)?;
        self.backward(params, grads);
        Ok(loss)
    }

    /// The attention decoder's doubly stochastic regularisation term of the last pass
    /// (added to the mean token loss in the gradients; 0 for the other decoders).
    pub fn last_regularisation(&self) -> f64 {
        self.attention
            .as_ref()
            .map_or(0.0, |a| a.last_regularisation())
    }

    /// Loss of a batch with teacher forcing and no dropout (no gradients).
    pub fn eval_loss(
        &mut self,
        params: &Params,
        features: Features<'_>,
        batch: &[Example<'_>],
    ) -> Result<BatchLoss> {
        if let Some(att) = self.attention.as_mut() {
            check(&self.cfg, params, features, batch)?;
            return att.forward(params, features, batch, None, false);
        }
        self.forward(params, features, batch, None, false)
    }

    fn check(&self, params: &Params, features: Features<'_>, batch: &[Example<'_>]) -> Result<()> {
        check(&self.cfg, params, features, batch)
    }

    fn forward(
        &mut self,
        params: &Params,
        features: Features<'_>,
        batch: &[Example<'_>],
        mut rng: Option<&mut Rng>,
        want_grad: bool,
    ) -> Result<BatchLoss> {
        self.check(params, features, batch)?;
        if matches!(self.ranges.head, Head::Attention) {
            return Err(EngineError::Input(
                "the attention decoder runs in its own passes".into(),
            ));
        }
        if batch.is_empty() {
            self.ws.pack.pack(batch);
            return Ok(BatchLoss::default());
        }
        self.prof.start();
        let cfg = &self.cfg;
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        let g4 = 4 * h;
        let p = params.as_slice();
        let rg = &self.ranges;
        let ws = &mut self.ws;
        let dropout = if rng.is_some() { cfg.dropout } else { 0.0 };
        let use_dropout = dropout > 0.0;
        ws.dropped = use_dropout;

        ws.pack.pack(batch);
        let b = ws.pack.captions();
        let steps = ws.pack.n_steps();
        let rows = ws.pack.rows();

        // Image features (with dropout).
        resize(&mut ws.image_in, b * f);
        for (slot, &i) in ws.pack.order.iter().enumerate() {
            let dst = &mut ws.image_in[slot * f..(slot + 1) * f];
            dst.copy_from_slice(features.row(batch[i].image));
            if let (true, Some(r)) = (use_dropout, rng.as_deref_mut()) {
                let keep = 1.0 / (1.0 - dropout);
                for x in dst.iter_mut() {
                    *x *= if r.next_f32() < dropout { 0.0 } else { keep };
                }
            }
        }
        let fd_mat = MatRef::new(&ws.image_in, b, f);
        resize(&mut ws.image_out, b * h);
        match &rg.head {
            Head::Merge { img_w, img_b, .. } => {
                fill_rows(&mut ws.image_out, &p[img_b.clone()]);
                matmul(
                    &mut ws.image_out,
                    fd_mat,
                    MatRef::new(&p[img_w.clone()], h, f).t(),
                    true,
                );
                for x in ws.image_out.iter_mut() {
                    *x = x.max(0.0);
                }
            }
            Head::Inject { h_w, h_b, c_w, c_b } => {
                fill_rows(&mut ws.image_out, &p[h_b.clone()]);
                matmul(
                    &mut ws.image_out,
                    fd_mat,
                    MatRef::new(&p[h_w.clone()], h, f).t(),
                    true,
                );
                tanh_in_place(&mut ws.image_out);
                resize(&mut ws.c0, b * h);
                fill_rows(&mut ws.c0, &p[c_b.clone()]);
                matmul(
                    &mut ws.c0,
                    fd_mat,
                    MatRef::new(&p[c_w.clone()], h, f).t(),
                    true,
                );
                tanh_in_place(&mut ws.c0);
            }
            Head::Attention => {}
        }

        self.prof.mark("fwd: packing, image layers");
        // Embeddings (with dropout) and the input projections of every step at once.
        resize(&mut ws.embeds, rows * e);
        let table = &p[rg.embed.clone()];
        for (row, &tok) in ws.pack.inputs.iter().enumerate() {
            let t = tok as usize;
            ws.embeds[row * e..(row + 1) * e].copy_from_slice(&table[t * e..(t + 1) * e]);
        }
        if let (true, Some(r)) = (use_dropout, rng.as_deref_mut()) {
            resize(&mut ws.embed_mask, rows * e);
            r.dropout_mask(&mut ws.embed_mask, dropout);
            for (x, m) in ws.embeds.iter_mut().zip(&ws.embed_mask) {
                *x *= m;
            }
        }
        resize(&mut ws.gate_bias, g4);
        for ((d, a), c) in ws
            .gate_bias
            .iter_mut()
            .zip(&p[rg.b_ih.clone()])
            .zip(&p[rg.b_hh.clone()])
        {
            *d = a + c;
        }
        resize(&mut ws.gates, rows * g4);
        fill_rows(&mut ws.gates, &ws.gate_bias);
        // Contiguous transposed copies: the kernel runs these shapes markedly faster than on
        // transposed views (measured), and the copies are small next to the products.
        resize(&mut ws.w_ih_t, e * g4);
        transpose(&p[rg.w_ih.clone()], g4, e, &mut ws.w_ih_t);
        resize(&mut ws.w_hh_t, h * g4);
        transpose(&p[rg.w_hh.clone()], g4, h, &mut ws.w_hh_t);
        let w_hh_t = MatRef::new(&ws.w_hh_t, h, g4);
        matmul(
            &mut ws.gates,
            MatRef::new(&ws.embeds, rows, e),
            MatRef::new(&ws.w_ih_t, e, g4),
            true,
        );

        self.prof.mark("fwd: embeddings, input projection");
        // The recurrence: only h_{t-1} W_hh^T inside the loop.
        resize(&mut ws.cells, rows * h);
        resize(&mut ws.tanh_cells, rows * h);
        resize(&mut ws.hidden, rows * h);
        let inject = matches!(rg.head, Head::Inject { .. });
        let zeros = vec![0.0f32; h];
        for t in 0..steps {
            let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
            let block = &mut ws.gates[r0 * g4..(r0 + nt) * g4];
            if t > 0 {
                let prev = ws.pack.offsets[t - 1];
                matmul(block, MatRef::new(&ws.hidden[prev * h..], nt, h), w_hh_t, true);
            } else if inject {
                matmul(block, MatRef::new(&ws.image_out, nt, h), w_hh_t, true);
            }
            let (cs_prev, cs_cur) = ws.cells.split_at_mut(r0 * h);
            for bi in 0..nt {
                let cp: &[f32] = if t > 0 {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &cs_prev[pr * h..(pr + 1) * h]
                } else if inject {
                    &ws.c0[bi * h..(bi + 1) * h]
                } else {
                    &zeros
                };
                let row = r0 + bi;
                lstm_forward_row(
                    &mut block[bi * g4..(bi + 1) * g4],
                    cp,
                    &mut cs_cur[bi * h..(bi + 1) * h],
                    &mut ws.tanh_cells[row * h..(row + 1) * h],
                    &mut ws.hidden[row * h..(row + 1) * h],
                );
            }
        }

        self.prof.mark("fwd: recurrence");
        // Output layers, on the real (packed) rows only.
        resize(&mut ws.lstm_out, rows * h);
        let head_in: &[f32] = match &rg.head {
            Head::Merge { hid_w, hid_b, .. } => {
                for t in 0..steps {
                    for bi in 0..ws.pack.steps[t] {
                        let row = ws.pack.offsets[t] + bi;
                        let dst = &mut ws.lstm_out[row * h..(row + 1) * h];
                        let src = &ws.hidden[row * h..(row + 1) * h];
                        let im = &ws.image_out[bi * h..(bi + 1) * h];
                        for j in 0..h {
                            dst[j] = src[j] + im[j];
                        }
                    }
                }
                resize(&mut ws.dense_out, rows * h);
                fill_rows(&mut ws.dense_out, &p[hid_b.clone()]);
                matmul(
                    &mut ws.dense_out,
                    MatRef::new(&ws.lstm_out, rows, h),
                    MatRef::new(&p[hid_w.clone()], h, h).t(),
                    true,
                );
                for x in ws.dense_out.iter_mut() {
                    *x = x.max(0.0);
                }
                &ws.dense_out
            }
            Head::Inject { .. } | Head::Attention => {
                if let (true, Some(r)) = (use_dropout, rng) {
                    resize(&mut ws.out_mask, rows * h);
                    r.dropout_mask(&mut ws.out_mask, dropout);
                    for ((d, s), m) in ws.lstm_out.iter_mut().zip(&ws.hidden).zip(&ws.out_mask) {
                        *d = s * m;
                    }
                } else {
                    ws.lstm_out.copy_from_slice(&ws.hidden[..rows * h]);
                }
                &ws.lstm_out
            }
        };
        resize(&mut ws.logits, rows * v);
        fill_rows(&mut ws.logits, &p[rg.out_b.clone()]);
        matmul(
            &mut ws.logits,
            MatRef::new(head_in, rows, h),
            MatRef::new(&p[rg.out_w.clone()], v, h).t(),
            true,
        );

        self.prof.mark("fwd: output layers");
        // Softmax cross-entropy; with `want_grad` the logits become d(mean loss)/d(logits).
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
        self.prof.mark("fwd: softmax, loss");
        Ok(BatchLoss { sum, tokens: rows })
    }

    /// Backward pass of the last `forward` (with `want_grad`), writing every gradient.
    fn backward(&mut self, params: &Params, grads: &mut Params) {
        let cfg = &self.cfg;
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        let g4 = 4 * h;
        let p = params.as_slice();
        let g = grads.as_mut_slice();
        let rg = &self.ranges;
        let ws = &mut self.ws;
        let b = ws.pack.order.len();
        if b == 0 {
            g.fill(0.0);
            return;
        }
        let steps = ws.pack.steps.len();
        let rows = ws.pack.inputs.len();
        if ws.ones.len() < rows.max(b) {
            ws.ones.resize(rows.max(b), 1.0);
        }
        let dl = MatRef::new(&ws.logits, rows, v);

        // Output layer and head.
        resize(&mut ws.d_hidden, rows * h);
        let head_in: &[f32] = match rg.head {
            Head::Merge { .. } => &ws.dense_out,
            Head::Inject { .. } | Head::Attention => &ws.lstm_out,
        };
        matmul(
            &mut g[rg.out_w.clone()],
            dl.t(),
            MatRef::new(head_in, rows, h),
            false,
        );
        column_sums(&mut g[rg.out_b.clone()], &ws.logits, rows, v, &ws.ones);
        // W_out as the transposed view of a contiguous W_out^T (faster for this shape).
        resize(&mut ws.w_out_t, h * v);
        transpose(&p[rg.out_w.clone()], v, h, &mut ws.w_out_t);
        let out_w = MatRef::new(&ws.w_out_t, h, v).t();
        match &rg.head {
            Head::Merge {
                img_w,
                img_b,
                hid_w,
                hid_b,
            } => {
                resize(&mut ws.d_dense_out, rows * h);
                matmul(&mut ws.d_dense_out, dl, out_w, false);
                for (d, a) in ws.d_dense_out.iter_mut().zip(&ws.dense_out) {
                    if *a <= 0.0 {
                        *d = 0.0;
                    }
                }
                let dz = MatRef::new(&ws.d_dense_out, rows, h);
                matmul(
                    &mut g[hid_w.clone()],
                    dz.t(),
                    MatRef::new(&ws.lstm_out, rows, h),
                    false,
                );
                column_sums(&mut g[hid_b.clone()], &ws.d_dense_out, rows, h, &ws.ones);
                matmul(
                    &mut ws.d_hidden,
                    dz,
                    MatRef::new(&p[hid_w.clone()], h, h),
                    false,
                );
                resize(&mut ws.d_image_out, b * h);
                ws.d_image_out.fill(0.0);
                for t in 0..steps {
                    for bi in 0..ws.pack.steps[t] {
                        let row = ws.pack.offsets[t] + bi;
                        let src = &ws.d_hidden[row * h..(row + 1) * h];
                        let dst = &mut ws.d_image_out[bi * h..(bi + 1) * h];
                        for j in 0..h {
                            dst[j] += src[j];
                        }
                    }
                }
                for (d, a) in ws.d_image_out.iter_mut().zip(&ws.image_out) {
                    if *a <= 0.0 {
                        *d = 0.0;
                    }
                }
                matmul(
                    &mut g[img_w.clone()],
                    MatRef::new(&ws.d_image_out, b, h).t(),
                    MatRef::new(&ws.image_in, b, f),
                    false,
                );
                column_sums(&mut g[img_b.clone()], &ws.d_image_out, b, h, &ws.ones);
            }
            Head::Inject { .. } | Head::Attention => {
                matmul(&mut ws.d_hidden, dl, out_w, false);
                if ws.dropped {
                    for (d, m) in ws.d_hidden.iter_mut().zip(&ws.out_mask) {
                        *d *= m;
                    }
                }
            }
        }

        self.prof.mark("bwd: output layers");
        // Backpropagation through time; the gates buffer becomes d(pre-activation gates).
        let inject = matches!(rg.head, Head::Inject { .. });
        resize(&mut ws.d_h_prev, b * h);
        resize(&mut ws.d_cell, b * h);
        let w_hh = MatRef::new(&p[rg.w_hh.clone()], g4, h);
        let zeros = vec![0.0f32; h];
        for t in (0..steps).rev() {
            let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
            let n_next = if t + 1 < steps {
                ws.pack.steps[t + 1]
            } else {
                0
            };
            // Captions still running at t + 1 pass back dh (dc is already in `ws.d_cell`); the
            // others end here and start from dc = 0.
            for bi in 0..n_next {
                let row = r0 + bi;
                let dst = &mut ws.d_hidden[row * h..(row + 1) * h];
                for (d, s) in dst.iter_mut().zip(&ws.d_h_prev[bi * h..(bi + 1) * h]) {
                    *d += s;
                }
            }
            ws.d_cell[n_next * h..nt * h].fill(0.0);
            for bi in 0..nt {
                let row = r0 + bi;
                let cp: &[f32] = if t > 0 {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &ws.cells[pr * h..(pr + 1) * h]
                } else if inject {
                    &ws.c0[bi * h..(bi + 1) * h]
                } else {
                    &zeros
                };
                lstm_backward_row(
                    &mut ws.gates[row * g4..(row + 1) * g4],
                    &ws.tanh_cells[row * h..(row + 1) * h],
                    &ws.d_hidden[row * h..(row + 1) * h],
                    &mut ws.d_cell[bi * h..(bi + 1) * h],
                    cp,
                );
            }
            if t > 0 || inject {
                matmul(
                    &mut ws.d_h_prev[..nt * h],
                    MatRef::new(&ws.gates[r0 * g4..], nt, g4),
                    w_hh,
                    false,
                );
            }
        }
        self.prof.mark("bwd: recurrence");
        // Recurrent weights: one product over all steps with the previous hidden states.
        let first = if inject { 0 } else { ws.pack.steps[0] };
        resize(&mut ws.h_prev, (rows - first) * h);
        for t in 0..steps {
            for bi in 0..ws.pack.steps[t] {
                let row = ws.pack.offsets[t] + bi;
                if row < first {
                    continue;
                }
                let src = if t > 0 {
                    let pr = ws.pack.offsets[t - 1] + bi;
                    &ws.hidden[pr * h..(pr + 1) * h]
                } else {
                    &ws.image_out[bi * h..(bi + 1) * h]
                };
                ws.h_prev[(row - first) * h..(row - first + 1) * h].copy_from_slice(src);
            }
        }
        let dg = MatRef::new(&ws.gates, rows, g4);
        // dG^T once (4h x rows): both weight gradients read it as a plain row-major matrix.
        resize(&mut ws.d_gates_t, g4 * rows);
        transpose(&ws.gates[..rows * g4], rows, g4, &mut ws.d_gates_t);
        matmul(
            &mut g[rg.w_hh.clone()],
            MatRef::strided(&ws.d_gates_t[first..], g4, rows - first, rows, 1),
            MatRef::new(&ws.h_prev, rows - first, h),
            false,
        );
        matmul(
            &mut g[rg.w_ih.clone()],
            MatRef::new(&ws.d_gates_t, g4, rows),
            MatRef::new(&ws.embeds, rows, e),
            false,
        );
        column_sums(&mut g[rg.b_ih.clone()], &ws.gates, rows, g4, &ws.ones);
        let (lo, hi) = (rg.b_ih.clone(), rg.b_hh.clone());
        g.copy_within(lo, hi.start);

        self.prof.mark("bwd: LSTM weight gradients");
        // Embeddings.
        resize(&mut ws.d_embeds, rows * e);
        matmul(
            &mut ws.d_embeds,
            dg,
            MatRef::new(&p[rg.w_ih.clone()], g4, e),
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
            let dst = &mut ge[t * e..(t + 1) * e];
            for (d, s) in dst.iter_mut().zip(&ws.d_embeds[row * e..(row + 1) * e]) {
                *d += s;
            }
        }

        self.prof.mark("bwd: embeddings");
        // Inject: the initial state's Dense layers.
        if let Head::Inject { h_w, h_b, c_w, c_b } = &rg.head {
            for (d, y) in ws.d_h_prev[..b * h].iter_mut().zip(&ws.image_out) {
                *d *= 1.0 - y * y;
            }
            resize(&mut ws.d_c0, b * h);
            for ((d, s), y) in ws.d_c0.iter_mut().zip(&ws.d_cell).zip(&ws.c0) {
                *d = s * (1.0 - y * y);
            }
            let fd = MatRef::new(&ws.image_in, b, f);
            matmul(
                &mut g[h_w.clone()],
                MatRef::new(&ws.d_h_prev, b, h).t(),
                fd,
                false,
            );
            column_sums(&mut g[h_b.clone()], &ws.d_h_prev, b, h, &ws.ones);
            matmul(
                &mut g[c_w.clone()],
                MatRef::new(&ws.d_c0, b, h).t(),
                fd,
                false,
            );
            column_sums(&mut g[c_b.clone()], &ws.d_c0, b, h, &ws.ones);
        }
        self.prof.mark("bwd: initial state");
    }
}

/// Checks the parameters, features and batch against the engine's configuration.
fn check(
    cfg: &DecoderConfig,
    params: &Params,
    features: Features<'_>,
    batch: &[Example<'_>],
) -> Result<()> {
    if params.config() != cfg {
        return Err(EngineError::Input(
            "parameters made for another configuration".into(),
        ));
    }
    check_input(cfg, features, batch)
}
