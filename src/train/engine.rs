//! The CPU training engine of the merge and inject decoders: forward and backward passes
//! written out by hand on flat `f32` buffers, one function per layer (the attention decoder's
//! are in [`super::attention_engine`], the pieces both share in [`super::layers`]).
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

use super::batch::{BatchLoss, EngineError, Example, Features, Packed, Result};
use super::layers::{
    self, CoreRanges, LstmBuffers, apply_mask, embed_rows, linear_backward, linear_forward,
    masked_copy, resize, softmax_cross_entropy,
};
use super::params::Params;
use crate::decoder::linalg::{MatRef, matmul, tanh_in_place, transpose};
use crate::decoder::{DecoderConfig, DecoderKind};
use crate::rng::Rng;
use std::ops::Range;

/// Buffer ranges of the tensors the engine touches.
#[derive(Clone, Debug)]
struct Ranges {
    core: CoreRanges,
    head: Head,
}

/// How the image enters the network.
#[derive(Clone, Debug)]
enum Head {
    /// Merge: `relu(image(f))` is added to every LSTM output before `relu(hidden(..))`.
    Merge {
        img_w: Range<usize>,
        img_b: Range<usize>,
        hid_w: Range<usize>,
        hid_b: Range<usize>,
    },
    /// Inject: the LSTM starts from `h0 = tanh(init_h(f))`, `c0 = tanh(init_c(f))`.
    Inject {
        h_w: Range<usize>,
        h_b: Range<usize>,
        c_w: Range<usize>,
        c_b: Range<usize>,
    },
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
            DecoderKind::Attention => {
                return Err(EngineError::Input(
                    "the attention decoder runs in its own passes".into(),
                ));
            }
        };
        Ok(Self {
            core: CoreRanges::new(p)?,
            head,
        })
    }

    fn inject(&self) -> bool {
        matches!(self.head, Head::Inject { .. })
    }
}

/// Reused buffers of one batch (grown on demand, never shrunk). `B` is the batch's captions,
/// `rows` its packed rows; per-caption buffers are in packed order.
#[derive(Debug, Default)]
struct Workspace {
    /// The batch packed by time step.
    pack: Packed,
    /// Image features after dropout `[B, F]`.
    image_in: Vec<f32>,
    /// Merge: the image projection after ReLU. Inject: the initial hidden state h0 `[B, H]`.
    image_out: Vec<f32>,
    /// Inject: the initial cell state `[B, H]`.
    c0: Vec<f32>,
    /// Word embeddings after dropout `[rows, E]` and their dropout mask.
    embeds: Vec<f32>,
    embed_mask: Vec<f32>,
    /// The LSTM's gates, states and their gradients.
    lstm: LstmBuffers,
    /// Merge: LSTM output + image projection. Inject: LSTM output after dropout `[rows, H]`.
    lstm_out: Vec<f32>,
    out_mask: Vec<f32>,
    /// Merge: the hidden Dense layer's output after ReLU `[rows, H]`.
    dense_out: Vec<f32>,
    /// The output layer's logits `[rows, V]`, then the loss gradient with respect to them.
    logits: Vec<f32>,
    row_loss: Vec<f64>,
    ones: Vec<f32>,
    // backward
    d_dense_out: Vec<f32>,
    d_image_out: Vec<f32>,
    d_c0: Vec<f32>,
    /// The previous hidden state of every row that has one.
    h_prev: Vec<f32>,
    d_embeds: Vec<f32>,
    w_out_t: Vec<f32>,
    d_gates_t: Vec<f32>,
    /// Whether the last forward pass applied dropout masks.
    dropped: bool,
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

/// The sizes, parameters and ranges one pass reads.
type Pass<'a> = layers::Pass<'a, Ranges>;

/// Forward/backward passes of the merge and inject decoders.
#[derive(Debug)]
pub(super) struct LstmEngine {
    cfg: DecoderConfig,
    ranges: Ranges,
    ws: Workspace,
    prof: Profiler,
}

impl LstmEngine {
    pub(super) fn new(cfg: &DecoderConfig) -> Result<Self> {
        let p = Params::zeros(cfg)?;
        Ok(Self {
            cfg: cfg.clone(),
            ranges: Ranges::new(&p)?,
            ws: Workspace::default(),
            prof: Profiler::default(),
        })
    }

    /// Turns on (or off) accounting of the wall-clock time of each phase of the passes.
    pub(super) fn set_profiling(&mut self, on: bool) {
        self.prof.on = on;
    }

    /// Seconds spent in each phase since profiling was turned on, in first-seen order.
    pub(super) fn phase_times(&self) -> &[(&'static str, f64)] {
        &self.prof.acc
    }

    /// Forward pass with dropout from `rng` (none when `None`); with `want_grad` the logits
    /// become the loss gradient and the buffers are kept for [`LstmEngine::backward`].
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
        self.prof.start();
        let pass = Pass::new(&self.cfg, params.as_slice(), &self.ranges);
        let dropout = if rng.is_some() { self.cfg.dropout } else { 0.0 };
        ws.dropped = dropout > 0.0;
        let mut rng = if ws.dropped { rng } else { None };

        image_forward(ws, &pass, features, batch, dropout, rng.as_deref_mut());
        self.prof.mark("fwd: packing, image layers");
        embed_forward(ws, &pass, dropout, rng.as_deref_mut());
        self.prof.mark("fwd: embeddings, input projection");
        lstm_forward(ws, &pass);
        self.prof.mark("fwd: recurrence");
        output_forward(ws, &pass, dropout, rng);
        self.prof.mark("fwd: output layers");
        let sum = softmax_cross_entropy(
            &mut ws.logits,
            &ws.pack.targets,
            &mut ws.row_loss,
            pass.v,
            want_grad,
        );
        self.prof.mark("fwd: softmax, loss");
        Ok(BatchLoss {
            sum,
            tokens: ws.pack.rows(),
        })
    }

    /// Backward pass of the last `forward` (with `want_grad`), writing every gradient.
    pub(super) fn backward(&mut self, params: &Params, grads: &mut Params) {
        let pass = Pass::new(&self.cfg, params.as_slice(), &self.ranges);
        let g = grads.as_mut_slice();
        let ws = &mut self.ws;
        let b = ws.pack.captions();
        if b == 0 {
            g.fill(0.0);
            return;
        }
        let rows = ws.pack.rows();
        if ws.ones.len() < rows.max(b) {
            ws.ones.resize(rows.max(b), 1.0);
        }
        output_backward(ws, &pass, g);
        self.prof.mark("bwd: output layers");
        lstm_backward(ws, &pass);
        self.prof.mark("bwd: recurrence");
        lstm_weights_backward(ws, &pass, g);
        self.prof.mark("bwd: LSTM weight gradients");
        let mask = ws.dropped.then_some(&ws.embed_mask[..]);
        let d_embeds = &mut ws.d_embeds;
        let (gates, tokens) = (&ws.lstm.gates, &ws.pack.inputs);
        (pass.rg.core).embed_backward(g, pass.p, gates, d_embeds, mask, tokens);
        self.prof.mark("bwd: embeddings");
        if let Head::Inject { h_w, h_b, c_w, c_b } = &pass.rg.head {
            init_state_backward(ws, &pass, g, [h_w, h_b, c_w, c_b]);
        }
        self.prof.mark("bwd: initial state");
    }
}

/// The image features in packed order (with dropout) and the image layers: merge's ReLU
/// projection or inject's initial state.
fn image_forward(
    ws: &mut Workspace,
    pass: &Pass<'_>,
    features: Features<'_>,
    batch: &[Example<'_>],
    dropout: f32,
    mut rng: Option<&mut Rng>,
) {
    let (f, h) = (pass.f, pass.h);
    let b = ws.pack.captions();
    resize(&mut ws.image_in, b * f);
    for (slot, &i) in ws.pack.order.iter().enumerate() {
        let dst = &mut ws.image_in[slot * f..(slot + 1) * f];
        dst.copy_from_slice(features.row(batch[i].image));
        if let Some(r) = rng.as_deref_mut() {
            let keep = 1.0 / (1.0 - dropout);
            for x in dst.iter_mut() {
                *x *= if r.next_f32() < dropout { 0.0 } else { keep };
            }
        }
    }
    let x = MatRef::new(&ws.image_in, b, f);
    resize(&mut ws.image_out, b * h);
    match &pass.rg.head {
        Head::Merge { img_w, img_b, .. } => {
            linear_forward(&mut ws.image_out, x, pass.w(img_w), pass.w(img_b));
            relu_in_place(&mut ws.image_out);
        }
        Head::Inject { h_w, h_b, c_w, c_b } => {
            linear_forward(&mut ws.image_out, x, pass.w(h_w), pass.w(h_b));
            tanh_in_place(&mut ws.image_out);
            resize(&mut ws.c0, b * h);
            linear_forward(&mut ws.c0, x, pass.w(c_w), pass.w(c_b));
            tanh_in_place(&mut ws.c0);
        }
    }
}

/// Word embeddings (with dropout) and the input projections `x W_ih^T + b` of every step at
/// once, into the gates.
fn embed_forward(ws: &mut Workspace, pass: &Pass<'_>, dropout: f32, rng: Option<&mut Rng>) {
    let (e, h) = (pass.e, pass.h);
    let core = &pass.rg.core;
    let (rows, g4) = (ws.pack.rows(), 4 * h);
    resize(&mut ws.embeds, rows * e);
    embed_rows(&mut ws.embeds, e, pass.w(&core.embed), &ws.pack.inputs, e);
    if let Some(r) = rng {
        resize(&mut ws.embed_mask, rows * e);
        r.dropout_mask(&mut ws.embed_mask, dropout);
        apply_mask(&mut ws.embeds, &ws.embed_mask);
    }
    ws.lstm.start_gates(core, pass.p, rows);
    matmul(
        &mut ws.lstm.gates,
        MatRef::new(&ws.embeds, rows, e),
        MatRef::new(&ws.lstm.w_ih_t, e, g4),
        true,
    );
}

/// The recurrence, step by step: only `h_{t-1} W_hh^T` inside the loop, then the fused cell.
fn lstm_forward(ws: &mut Workspace, pass: &Pass<'_>) {
    let h = pass.h;
    let (rows, g4) = (ws.pack.rows(), 4 * h);
    ws.lstm.resize_cells(rows, h);
    let inject = pass.rg.inject();
    for t in 0..ws.pack.n_steps() {
        let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
        let w_hh_t = MatRef::new(&ws.lstm.w_hh_t, h, g4);
        let block = &mut ws.lstm.gates[r0 * g4..(r0 + nt) * g4];
        if t > 0 {
            let prev = ws.pack.offsets[t - 1];
            matmul(
                block,
                MatRef::new(&ws.lstm.hidden[prev * h..], nt, h),
                w_hh_t,
                true,
            );
        } else if inject {
            matmul(block, MatRef::new(&ws.image_out, nt, h), w_hh_t, true);
        }
        let c0 = inject.then_some(&ws.c0[..]);
        ws.lstm.cells_forward(&ws.pack, t, h, c0);
    }
}

/// The output layers on the real (packed) rows only: merge's `relu(hidden(h + image))` or
/// inject's dropout, then the logits.
fn output_forward(ws: &mut Workspace, pass: &Pass<'_>, dropout: f32, rng: Option<&mut Rng>) {
    let h = pass.h;
    let core = &pass.rg.core;
    let rows = ws.pack.rows();
    resize(&mut ws.lstm_out, rows * h);
    let head_in: &[f32] = match &pass.rg.head {
        Head::Merge { hid_w, hid_b, .. } => {
            for t in 0..ws.pack.n_steps() {
                for bi in 0..ws.pack.steps[t] {
                    let row = ws.pack.row(t, bi);
                    let dst = &mut ws.lstm_out[row * h..(row + 1) * h];
                    let src = &ws.lstm.hidden[row * h..(row + 1) * h];
                    let im = &ws.image_out[bi * h..(bi + 1) * h];
                    for j in 0..h {
                        dst[j] = src[j] + im[j];
                    }
                }
            }
            resize(&mut ws.dense_out, rows * h);
            let x = MatRef::new(&ws.lstm_out, rows, h);
            linear_forward(&mut ws.dense_out, x, pass.w(hid_w), pass.w(hid_b));
            relu_in_place(&mut ws.dense_out);
            &ws.dense_out
        }
        Head::Inject { .. } => {
            let mask = match rng {
                Some(r) => {
                    resize(&mut ws.out_mask, rows * h);
                    r.dropout_mask(&mut ws.out_mask, dropout);
                    Some(&ws.out_mask[..])
                }
                None => None,
            };
            masked_copy(&mut ws.lstm_out, &ws.lstm.hidden, mask);
            &ws.lstm_out
        }
    };
    resize(&mut ws.logits, rows * pass.v);
    let x = MatRef::new(head_in, rows, h);
    linear_forward(&mut ws.logits, x, pass.w(&core.out_w), pass.w(&core.out_b));
}

/// The output layer's gradients and the gradient reaching the LSTM's hidden states (through
/// merge's hidden layer, whose image half goes to the image layer, or inject's dropout).
fn output_backward(ws: &mut Workspace, pass: &Pass<'_>, g: &mut [f32]) {
    let (h, v) = (pass.h, pass.v);
    let core = &pass.rg.core;
    let rows = ws.pack.rows();
    let dl = MatRef::new(&ws.logits, rows, v);
    resize(&mut ws.lstm.d_hidden, rows * h);
    let head_in: &[f32] = match pass.rg.head {
        Head::Merge { .. } => &ws.dense_out,
        Head::Inject { .. } => &ws.lstm_out,
    };
    let x = MatRef::new(head_in, rows, h);
    linear_backward(g, &core.out_w, &core.out_b, &ws.logits, x, &ws.ones);
    // W_out as the transposed view of a contiguous W_out^T (faster for this shape).
    resize(&mut ws.w_out_t, h * v);
    transpose(pass.w(&core.out_w), v, h, &mut ws.w_out_t);
    let out_w = MatRef::new(&ws.w_out_t, h, v).t();
    match &pass.rg.head {
        Head::Merge {
            img_w,
            img_b,
            hid_w,
            hid_b,
        } => {
            resize(&mut ws.d_dense_out, rows * h);
            matmul(&mut ws.d_dense_out, dl, out_w, false);
            relu_backward(&mut ws.d_dense_out, &ws.dense_out);
            let x = MatRef::new(&ws.lstm_out, rows, h);
            linear_backward(g, hid_w, hid_b, &ws.d_dense_out, x, &ws.ones);
            let dz = MatRef::new(&ws.d_dense_out, rows, h);
            matmul(
                &mut ws.lstm.d_hidden,
                dz,
                MatRef::new(pass.w(hid_w), h, h),
                false,
            );
            image_backward(ws, pass, g, img_w, img_b);
        }
        Head::Inject { .. } => {
            matmul(&mut ws.lstm.d_hidden, dl, out_w, false);
            if ws.dropped {
                apply_mask(&mut ws.lstm.d_hidden, &ws.out_mask);
            }
        }
    }
}

/// Merge: the image layer's gradients, from the image projection's share of every step.
fn image_backward(
    ws: &mut Workspace,
    pass: &Pass<'_>,
    g: &mut [f32],
    img_w: &Range<usize>,
    img_b: &Range<usize>,
) {
    let (f, h) = (pass.f, pass.h);
    let b = ws.pack.captions();
    resize(&mut ws.d_image_out, b * h);
    ws.d_image_out.fill(0.0);
    for t in 0..ws.pack.n_steps() {
        for bi in 0..ws.pack.steps[t] {
            let row = ws.pack.row(t, bi);
            let src = &ws.lstm.d_hidden[row * h..(row + 1) * h];
            let dst = &mut ws.d_image_out[bi * h..(bi + 1) * h];
            for j in 0..h {
                dst[j] += src[j];
            }
        }
    }
    relu_backward(&mut ws.d_image_out, &ws.image_out);
    let x = MatRef::new(&ws.image_in, b, f);
    linear_backward(g, img_w, img_b, &ws.d_image_out, x, &ws.ones);
}

/// Backpropagation through time; the gates buffer becomes d(pre-activation gates), and
/// `d_h_prev`, `d_cell` end with the gradients of the initial state.
fn lstm_backward(ws: &mut Workspace, pass: &Pass<'_>) {
    let (h, p) = (pass.h, pass.p);
    let (b, g4) = (ws.pack.captions(), 4 * h);
    let inject = pass.rg.inject();
    resize(&mut ws.lstm.d_h_prev, b * h);
    resize(&mut ws.lstm.d_cell, b * h);
    let w_hh = MatRef::new(&p[pass.rg.core.w_hh.clone()], g4, h);
    for t in (0..ws.pack.n_steps()).rev() {
        let (r0, nt) = (ws.pack.offsets[t], ws.pack.steps[t]);
        let c0 = inject.then_some(&ws.c0[..]);
        ws.lstm.cells_backward(&ws.pack, t, h, c0);
        if t > 0 || inject {
            matmul(
                &mut ws.lstm.d_h_prev[..nt * h],
                MatRef::new(&ws.lstm.gates[r0 * g4..], nt, g4),
                w_hh,
                false,
            );
        }
    }
}

/// The LSTM's weight gradients: one product over all steps each, with the previous hidden
/// states of the rows that have one (merge's first step starts from h = 0).
fn lstm_weights_backward(ws: &mut Workspace, pass: &Pass<'_>, g: &mut [f32]) {
    let (e, h) = (pass.e, pass.h);
    let rows = ws.pack.rows();
    let first = if pass.rg.inject() {
        0
    } else {
        ws.pack.steps[0]
    };
    resize(&mut ws.h_prev, (rows - first) * h);
    for t in 0..ws.pack.n_steps() {
        for bi in 0..ws.pack.steps[t] {
            let row = ws.pack.row(t, bi);
            if row < first {
                continue;
            }
            let src = if t > 0 {
                let pr = ws.pack.row(t - 1, bi);
                &ws.lstm.hidden[pr * h..(pr + 1) * h]
            } else {
                &ws.image_out[bi * h..(bi + 1) * h]
            };
            ws.h_prev[(row - first) * h..(row - first + 1) * h].copy_from_slice(src);
        }
    }
    pass.rg.core.lstm_backward(
        g,
        &ws.lstm.gates[..rows * 4 * h],
        &mut ws.d_gates_t,
        MatRef::new(&ws.embeds, rows, e),
        &ws.h_prev,
        &ws.ones,
    );
}

/// Inject: the initial state's Dense layers, from the gradients `d_h_prev` and `d_cell` of h0
/// and c0 (through their tanh).
fn init_state_backward(ws: &mut Workspace, pass: &Pass<'_>, g: &mut [f32], r: [&Range<usize>; 4]) {
    let [h_w, h_b, c_w, c_b] = r;
    let (f, h) = (pass.f, pass.h);
    let b = ws.pack.captions();
    for (d, y) in ws.lstm.d_h_prev[..b * h].iter_mut().zip(&ws.image_out) {
        *d *= 1.0 - y * y;
    }
    resize(&mut ws.d_c0, b * h);
    for ((d, s), y) in ws.d_c0.iter_mut().zip(&ws.lstm.d_cell).zip(&ws.c0) {
        *d = s * (1.0 - y * y);
    }
    let x = MatRef::new(&ws.image_in, b, f);
    linear_backward(g, h_w, h_b, &ws.lstm.d_h_prev[..b * h], x, &ws.ones);
    linear_backward(g, c_w, c_b, &ws.d_c0, x, &ws.ones);
}

fn relu_in_place(x: &mut [f32]) {
    for x in x.iter_mut() {
        *x = x.max(0.0);
    }
}

/// Zeroes the gradient `d` where the ReLU's output `y` is 0.
fn relu_backward(d: &mut [f32], y: &[f32]) {
    for (d, y) in d.iter_mut().zip(y) {
        if *y <= 0.0 {
            *d = 0.0;
        }
    }
}
