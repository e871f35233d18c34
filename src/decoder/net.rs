//! The merge, inject and attention networks built from candle_nn layers, for step-by-step
//! decoding and for teacher-forced training on candle's autograd (any device).

use super::{DecodeState, DecoderConfig, DecoderError, DecoderKind, Result};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::rnn::{LSTM, LSTMConfig, LSTMState, RNN};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use std::collections::HashMap;

/// Inverted-dropout factors (0 or `1 / (1 - p)`) for one teacher-forced pass.
#[derive(Clone, Debug)]
pub struct DropoutMasks {
    /// `[B, feature_dim]`, on the pooled image features (merge and inject).
    pub features: Option<Tensor>,
    /// `[rows, embed_dim]`, on the word embeddings (packed rows).
    pub inputs: Tensor,
    /// `[rows, hidden_dim]`, on the LSTM outputs (inject and attention).
    pub outputs: Option<Tensor>,
}

/// What sits around the shared embedding, LSTM and output layers.
#[derive(Clone, Debug)]
enum Head {
    /// `image`: `ReLU(Linear(feature))` added to the LSTM output; `hidden`: `ReLU(Linear)`
    /// before the output layer.
    Merge { image: Linear, hidden: Linear },
    /// `h0 = tanh(init_h(feature))`, `c0 = tanh(init_c(feature))`.
    Inject { init_h: Linear, init_c: Linear },
    /// See [`crate::decoder::AttentionConfig`].
    Attention(Box<AttentionHead>),
}

#[derive(Clone, Debug)]
pub(super) struct AttentionHead {
    init_h: Linear,
    init_c: Linear,
    att_enc: Linear,
    att_dec: Linear,
    att_full: Linear,
    f_beta: Linear,
}

impl AttentionHead {
    /// The gated attended features `z` `[B, feature_dim]` and the weights `alpha`
    /// `[B, cells]` for the states `h` `[B, hidden]`, feature maps `enc` `[B, cells, F]` and
    /// their projections `att1` `[B, cells, A]`.
    fn attend(&self, h: &Tensor, enc: &Tensor, att1: &Tensor) -> Result<(Tensor, Tensor)> {
        let att2 = self.att_dec.forward(h)?.unsqueeze(1)?;
        let pre = att1.broadcast_add(&att2)?.tanh()?;
        let e = self.att_full.forward(&pre)?.squeeze(2)?;
        let alpha = candle_nn::ops::softmax(&e, D::Minus1)?;
        let ctx = alpha.unsqueeze(1)?.matmul(enc)?.squeeze(1)?;
        let gate = candle_nn::ops::sigmoid(&self.f_beta.forward(h)?)?;
        Ok(((gate * ctx)?, alpha))
    }
}

#[derive(Clone, Debug)]
pub(super) struct Net {
    cfg: DecoderConfig,
    head: Head,
    embed: Embedding,
    lstm: LSTM,
    output: Linear,
    tensors: HashMap<String, Tensor>,
    device: Device,
}

fn tensor(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    tensors
        .get(name)
        .cloned()
        .ok_or_else(|| DecoderError::Input(format!("tensor {name} is missing")))
}

fn linear(tensors: &HashMap<String, Tensor>, prefix: &str) -> Result<Linear> {
    Ok(Linear::new(
        tensor(tensors, &format!("{prefix}.weight"))?,
        Some(tensor(tensors, &format!("{prefix}.bias"))?),
    ))
}

impl Net {
    /// From tensors with the names and shapes of `cfg.param_specs()` (already checked).
    pub(super) fn new(
        cfg: &DecoderConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let head = match cfg.kind {
            DecoderKind::Merge => Head::Merge {
                image: linear(&tensors, "image")?,
                hidden: linear(&tensors, "hidden")?,
            },
            DecoderKind::Inject => Head::Inject {
                init_h: linear(&tensors, "init_h")?,
                init_c: linear(&tensors, "init_c")?,
            },
            DecoderKind::Attention => Head::Attention(Box::new(AttentionHead {
                init_h: linear(&tensors, "init_h")?,
                init_c: linear(&tensors, "init_c")?,
                att_enc: linear(&tensors, "att_enc")?,
                att_dec: linear(&tensors, "att_dec")?,
                att_full: linear(&tensors, "att_full")?,
                f_beta: linear(&tensors, "f_beta")?,
            })),
        };
        let lstm_in = match cfg.kind {
            DecoderKind::Attention => cfg.embed_dim + cfg.feature_dim,
            _ => cfg.embed_dim,
        };
        let embed = Embedding::new(tensor(&tensors, "embed.weight")?, cfg.embed_dim);
        let lstm_vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
        let lstm = candle_nn::rnn::lstm(
            lstm_in,
            cfg.hidden_dim,
            LSTMConfig::default(),
            lstm_vb.pp("lstm"),
        )?;
        Ok(Self {
            cfg: cfg.clone(),
            head,
            embed,
            lstm,
            output: linear(&tensors, "output")?,
            tensors,
            device: device.clone(),
        })
    }

    pub(super) fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub(super) fn device(&self) -> &Device {
        &self.device
    }

    pub(super) fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.tensors
    }

    /// Initial state for features `[B, input_dim]` (already checked).
    pub(super) fn start(&self, features: &Tensor) -> Result<DecodeState> {
        match &self.head {
            Head::Merge { image, .. } => {
                let zero = self.lstm.zero_state(features.dim(0)?)?;
                Ok(DecodeState {
                    h: zero.h,
                    c: zero.c,
                    image: Some(image.forward(features)?.relu()?),
                    cells: None,
                })
            }
            Head::Inject { init_h, init_c } => Ok(DecodeState {
                h: init_h.forward(features)?.tanh()?,
                c: init_c.forward(features)?.tanh()?,
                image: None,
                cells: None,
            }),
            Head::Attention(a) => {
                let b = features.dim(0)?;
                let enc = features.reshape((b, self.cfg.cells(), self.cfg.feature_dim))?;
                let mean = enc.mean(1)?;
                Ok(DecodeState {
                    h: a.init_h.forward(&mean)?,
                    c: a.init_c.forward(&mean)?,
                    image: None,
                    cells: Some((enc.clone(), a.att_enc.forward(&enc)?)),
                })
            }
        }
    }

    pub(super) fn step(
        &self,
        state: &DecodeState,
        tokens: &[u32],
    ) -> Result<(Tensor, Option<Tensor>, DecodeState)> {
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed.forward(&ids)?;
        let mut alpha = None;
        if let Head::Attention(a) = &self.head {
            let (enc, att1) = state.cells.as_ref().ok_or_else(|| {
                DecoderError::Input("decode state was not made by an attention decoder".into())
            })?;
            let (z, al) = a.attend(&state.h, enc, att1)?;
            x = Tensor::cat(&[&x, &z], 1)?;
            alpha = Some(al);
        }
        let next = self
            .lstm
            .step(&x, &LSTMState::new(state.h.clone(), state.c.clone()))?;
        let logits = match &self.head {
            Head::Merge { hidden, .. } => {
                let image = state.image.as_ref().ok_or_else(|| {
                    DecoderError::Input("decode state was not made by a merge decoder".into())
                })?;
                let z = hidden.forward(&(&next.h + image)?)?.relu()?;
                self.output.forward(&z)?
            }
            Head::Inject { .. } | Head::Attention(_) => self.output.forward(&next.h)?,
        };
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok((
            log_probs,
            alpha,
            DecodeState {
                h: next.h,
                c: next.c,
                image: state.image.clone(),
                cells: state.cells.clone(),
            },
        ))
    }

    /// See [`super::Decoder::forward_packed`].
    pub(super) fn forward_packed(
        &self,
        features: &Tensor,
        tokens: &Tensor,
        steps: &[usize],
        masks: Option<&DropoutMasks>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let b = features.dim(0)?;
        let rows: usize = steps.iter().sum();
        if features.dims() != [b, self.cfg.input_dim()] || tokens.dims() != [rows] {
            return Err(DecoderError::Input(format!(
                "packed batch: features {:?} and tokens {:?} for {} rows of {} captions",
                features.dims(),
                tokens.dims(),
                rows,
                b
            )));
        }
        if steps.first().is_some_and(|&n| n != b) || steps.windows(2).any(|w| w[1] > w[0]) {
            return Err(DecoderError::Input(
                "packed batch: step sizes must start at the batch size and never grow".into(),
            ));
        }
        let features = match masks.and_then(|m| m.features.as_ref()) {
            Some(m) => features.mul(m)?,
            None => features.clone(),
        };
        let mut x = self.embed.forward(tokens)?;
        if let Some(m) = masks {
            x = x.mul(&m.inputs)?;
        }
        let start = self.start(&features)?;
        let mut state = LSTMState::new(start.h, start.c);
        let mut outputs = Vec::with_capacity(steps.len());
        let mut alphas = Vec::new();
        let mut offset = 0;
        for &n in steps {
            let prev = if state.h.dim(0)? == n {
                state
            } else {
                LSTMState::new(state.h.narrow(0, 0, n)?, state.c.narrow(0, 0, n)?)
            };
            let mut xt = x.narrow(0, offset, n)?;
            if let (Head::Attention(a), Some((enc, att1))) = (&self.head, &start.cells) {
                let (z, alpha) =
                    a.attend(&prev.h, &enc.narrow(0, 0, n)?, &att1.narrow(0, 0, n)?)?;
                xt = Tensor::cat(&[&xt, &z], 1)?;
                alphas.push(alpha);
            }
            state = self.lstm.step(&xt, &prev)?;
            outputs.push(state.h.clone());
            offset += n;
        }
        let hs = Tensor::cat(&outputs, 0)?;
        let alphas = if alphas.is_empty() {
            None
        } else {
            Some(Tensor::cat(&alphas, 0)?)
        };
        let logits = match &self.head {
            Head::Merge { hidden, .. } => {
                let image = start.image.ok_or_else(|| {
                    DecoderError::Input("merge network without an image projection".into())
                })?;
                let per_step: Vec<Tensor> = steps
                    .iter()
                    .map(|&n| image.narrow(0, 0, n))
                    .collect::<candle_core::Result<_>>()?;
                let merged = (hs + Tensor::cat(&per_step, 0)?)?;
                self.output.forward(&hidden.forward(&merged)?.relu()?)?
            }
            Head::Inject { .. } | Head::Attention(_) => {
                let hs = match masks.and_then(|m| m.outputs.as_ref()) {
                    Some(m) => hs.mul(m)?,
                    None => hs,
                };
                self.output.forward(&hs)?
            }
        };
        Ok((logits, alphas))
    }
}
