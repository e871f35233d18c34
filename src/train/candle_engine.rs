//! Training on candle's autograd, on any candle [`Device`] (CPU or CUDA).
//!
//! The same computation as the hand-written CPU `engine.rs`: packed batches (captions
//! sorted longest first, time step `t` runs only the captions still going), the masked mean
//! cross-entropy over real tokens (each caption's words and its END; packing leaves no padding
//! to mask), global gradient-norm clipping and PyTorch's Adam. Dropout masks are drawn on the
//! host from the same random stream, in the same order, as the CPU engine's, so both engines
//! see identical masks and a run is reproducible on any device. Adam's moments live on the
//! device and are copied out into the CPU engine's [`Params`] / [`Adam`] layout for
//! checkpoints, so both engines write and resume the same checkpoint format.
//!
//! New decoders get this path first: it only needs [`Decoder::forward_packed`].

use super::adam::Adam;
use super::batch::{BatchLoss, EngineError, Example, Features, Packed, Result, check_input};
use super::params::Params;
use crate::decoder::{Decoder, DecoderConfig, DecoderKind, DropoutMasks};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

/// Host-drawn dropout factors, in the CPU engine's order: the pooled image features (`[B, F]`,
/// batch in packed order; not for attention), the word embeddings (`[rows, E]`), then, for
/// inject and attention, the LSTM outputs (`[rows, H]`).
pub fn draw_masks(
    cfg: &DecoderConfig,
    batch_size: usize,
    rows: usize,
    rng: &mut Rng,
) -> (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>) {
    let p = cfg.dropout;
    let features = (cfg.kind != DecoderKind::Attention).then(|| {
        let mut f = vec![0.0; batch_size * cfg.feature_dim];
        rng.dropout_mask(&mut f, p);
        f
    });
    let mut inputs = vec![0.0; rows * cfg.embed_dim];
    rng.dropout_mask(&mut inputs, p);
    let outputs = matches!(cfg.kind, DecoderKind::Inject | DecoderKind::Attention).then(|| {
        let mut o = vec![0.0; rows * cfg.hidden_dim];
        rng.dropout_mask(&mut o, p);
        o
    });
    (features, inputs, outputs)
}

/// Trainable variables and Adam's moments on one device.
#[derive(Debug)]
pub struct CandleEngine {
    cfg: DecoderConfig,
    device: Device,
    /// In [`DecoderConfig::param_specs`] order.
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// The decoder over `vars` (candle ops only: it must see every update).
    decoder: Decoder,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Updates applied so far.
    pub step: u64,
}

/// Gradients of the last [`CandleEngine::backward`], by parameter, in spec order.
#[derive(Debug)]
pub struct CandleGrads {
    grads: Vec<Tensor>,
}

impl CandleGrads {
    /// Copies the gradients into a flat buffer in [`Params`] layout.
    pub fn to_params(&self, cfg: &DecoderConfig) -> Result<Params> {
        let mut p = Params::zeros(cfg)?;
        let mut flat = Vec::with_capacity(p.len());
        for g in &self.grads {
            flat.extend(g.flatten_all()?.to_vec1::<f32>()?);
        }
        p.as_mut_slice().copy_from_slice(&flat);
        Ok(p)
    }

    /// The global L2 norm (summed on the device, in f32).
    pub fn norm(&self) -> Result<f64> {
        let mut total: Option<Tensor> = None;
        for g in &self.grads {
            let s = g.sqr()?.sum_all()?;
            total = Some(match total {
                Some(t) => (t + s)?,
                None => s,
            });
        }
        Ok(match total {
            Some(t) => f64::from(t.to_scalar::<f32>()?).sqrt(),
            None => 0.0,
        })
    }
}

impl CandleEngine {
    /// Uploads parameters and optimizer state to `device`.
    pub fn new(params: &Params, adam: &Adam, device: &Device) -> Result<Self> {
        let cfg = params.config().clone();
        if adam.len() != params.len() {
            return Err(EngineError::Input(
                "optimizer state does not match the parameters".into(),
            ));
        }
        let (m_all, v_all) = adam.moments();
        let mut vars = Vec::new();
        let mut m = Vec::new();
        let mut v = Vec::new();
        let mut tensors = HashMap::new();
        let mut offset = 0;
        for (spec, values) in params.iter() {
            let shape = spec.shape.as_slice();
            let var = Var::from_slice(values, shape, device)?;
            tensors.insert(spec.name.clone(), var.as_tensor().clone());
            let r = offset..offset + spec.len();
            offset = r.end;
            m.push(Tensor::from_slice(&m_all[r.clone()], shape, device)?);
            v.push(Tensor::from_slice(&v_all[r], shape, device)?);
            vars.push(var);
        }
        let decoder = Decoder::from_tensors(&cfg, tensors, device)?.without_cpu_fast_path();
        Ok(Self {
            cfg,
            device: device.clone(),
            vars,
            m,
            v,
            decoder,
            lr: adam.lr,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            step: adam.step,
        })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The decoder over the current weights (candle ops, on the engine's device).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The summed token loss of a batch as a scalar tensor, the number of tokens, and the
    /// attention decoder's regularisation term (graphs kept for backward).
    fn loss_tensor(
        &self,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: Option<&mut Rng>,
    ) -> Result<Option<(Tensor, usize, Option<Tensor>)>> {
        check_input(&self.cfg, features, batch)?;
        let packed = Packed::new(batch);
        let rows = packed.rows();
        if rows == 0 {
            return Ok(None);
        }
        let (b, f) = (packed.order.len(), self.cfg.input_dim());
        let mut feats = Vec::with_capacity(b * f);
        for &i in &packed.order {
            feats.extend_from_slice(features.row(batch[i].image));
        }
        let dev = &self.device;
        let feats = Tensor::from_vec(feats, (b, f), dev)?;
        let inputs = Tensor::new(packed.inputs.as_slice(), dev)?;
        let targets = Tensor::new(packed.targets.as_slice(), dev)?;
        let masks = match rng {
            Some(r) if self.cfg.dropout > 0.0 => {
                let (mf, mx, mo) = draw_masks(&self.cfg, b, rows, r);
                Some(DropoutMasks {
                    features: match mf {
                        Some(m) => Some(Tensor::from_vec(m, (b, self.cfg.feature_dim), dev)?),
                        None => None,
                    },
                    inputs: Tensor::from_vec(mx, (rows, self.cfg.embed_dim), dev)?,
                    outputs: match mo {
                        Some(o) => Some(Tensor::from_vec(o, (rows, self.cfg.hidden_dim), dev)?),
                        None => None,
                    },
                })
            }
            _ => None,
        };
        let (logits, alphas) = self.decoder.forward_packed_with_attention(
            &feats,
            &inputs,
            &packed.steps,
            masks.as_ref(),
        )?;
        let log_probs = candle_nn::ops::log_softmax(&logits, 1)?;
        let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?;
        let sum = picked.sum_all()?.neg()?;
        let reg = match alphas {
            Some(al) => Some(doubly_stochastic(&al, &packed.steps)?),
            None => None,
        };
        Ok(Some((sum, rows, reg)))
    }

    /// Forward and backward pass of the batch's mean token loss, with dropout from `rng`
    /// (none when `None`).
    pub fn backward(
        &self,
        features: Features<'_>,
        batch: &[Example<'_>],
        rng: Option<&mut Rng>,
    ) -> Result<(BatchLoss, CandleGrads)> {
        let Some((sum, rows, reg)) = self.loss_tensor(features, batch, rng)? else {
            let grads = self
                .vars
                .iter()
                .map(|v| v.as_tensor().zeros_like())
                .collect::<candle_core::Result<_>>()?;
            return Ok((BatchLoss::default(), CandleGrads { grads }));
        };
        let mut objective = (&sum / rows as f64)?;
        if let Some(reg) = reg {
            objective = (objective + reg)?;
        }
        let store = objective.backward()?;
        let mut grads = Vec::with_capacity(self.vars.len());
        for var in &self.vars {
            // A parameter the loss does not reach has a zero gradient.
            let g = match store.get(var.as_tensor()) {
                Some(g) => g.clone(),
                None => var.as_tensor().zeros_like()?,
            };
            grads.push(g);
        }
        let loss = BatchLoss {
            sum: f64::from(sum.to_dtype(DType::F32)?.to_scalar::<f32>()?),
            tokens: rows,
        };
        Ok((loss, CandleGrads { grads }))
    }

    /// Loss of a batch with teacher forcing and no dropout (no gradients kept).
    pub fn eval_loss(&self, features: Features<'_>, batch: &[Example<'_>]) -> Result<BatchLoss> {
        match self.loss_tensor(features, batch, None)? {
            Some((sum, rows, _)) => Ok(BatchLoss {
                sum: f64::from(sum.detach().to_scalar::<f32>()?),
                tokens: rows,
            }),
            None => Ok(BatchLoss::default()),
        }
    }

    /// One Adam update (PyTorch's formula, as [`Adam::update`]) with the gradient scaled by
    /// `grad_scale` (the clipping factor).
    pub fn update(&mut self, grads: &CandleGrads, grad_scale: f32) -> Result<()> {
        if grads.grads.len() != self.vars.len() {
            return Err(EngineError::Input("gradients of another model".into()));
        }
        self.step += 1;
        let t = self.step as f64;
        let (b1, b2) = (f64::from(self.beta1), f64::from(self.beta2));
        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        let step_size = f64::from(self.lr) / bc1;
        let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
        for (i, var) in self.vars.iter().enumerate() {
            let g = grads.grads[i].affine(f64::from(grad_scale), 0.0)?;
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let denom = v.sqrt()?.affine(inv_sqrt_bc2, f64::from(self.eps))?;
            let delta = (m.div(&denom)? * step_size)?;
            var.set(&var.as_tensor().sub(&delta)?.detach())?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(())
    }

    /// The weights and optimizer state copied to the host, in the CPU engine's layout (for
    /// checkpoints).
    pub fn snapshot(&self) -> Result<(Params, Adam)> {
        let mut params = Params::zeros(&self.cfg)?;
        let n = params.len();
        let mut p = Vec::with_capacity(n);
        let mut m = Vec::with_capacity(n);
        let mut v = Vec::with_capacity(n);
        for i in 0..self.vars.len() {
            p.extend(self.vars[i].as_tensor().flatten_all()?.to_vec1::<f32>()?);
            m.extend(self.m[i].flatten_all()?.to_vec1::<f32>()?);
            v.extend(self.v[i].flatten_all()?.to_vec1::<f32>()?);
        }
        params.as_mut_slice().copy_from_slice(&p);
        let mut adam = Adam::from_parts(self.lr, self.step, m, v)
            .ok_or_else(|| EngineError::Input("moments differ in length".into()))?;
        adam.beta1 = self.beta1;
        adam.beta2 = self.beta2;
        adam.eps = self.eps;
        Ok((params, adam))
    }
}

/// `ATTENTION_REG * mean over captions and cells of (1 - sum_t alpha_ti)^2` for the packed
/// attention weights `[rows, cells]` (time-major, `steps[t]` rows at step `t`).
pub fn doubly_stochastic(alphas: &Tensor, steps: &[usize]) -> Result<Tensor> {
    let b = steps.first().copied().unwrap_or(0);
    let cells = alphas.dim(1)?;
    let mut total: Option<Tensor> = None;
    let mut offset = 0;
    for &n in steps {
        let block = alphas.narrow(0, offset, n)?;
        let block = if n < b {
            block.pad_with_zeros(0, 0, b - n)?
        } else {
            block
        };
        total = Some(match total {
            Some(t) => (t + block)?,
            None => block,
        });
        offset += n;
    }
    let Some(total) = total else {
        return Ok(Tensor::zeros((), alphas.dtype(), alphas.device())?);
    };
    let k = f64::from(crate::decoder::ATTENTION_REG) / (b * cells) as f64;
    Ok((total.affine(-1.0, 1.0)?.sqr()?.sum_all()? * k)?)
}
