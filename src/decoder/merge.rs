//! The merge decoder (the tutorial's model): image and language streams added after the LSTM.

use super::lstm::LstmCell;
use super::{DecodeState, DecoderConfig, DecoderError, DecoderKind, Dense, Embedding, Result};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

/// `feature -> Dropout -> Dense(hidden, ReLU)` plus
/// `words -> Embedding -> Dropout -> LSTM(hidden)`, added, then
/// `Dense(hidden, ReLU) -> Dense(vocab)`. Tensors: `image.*`, `embed.weight`, `lstm.*`,
/// `hidden.*`, `output.*`.
#[derive(Clone, Debug)]
pub struct MergeDecoder {
    cfg: DecoderConfig,
    image: Dense,
    embed: Embedding,
    lstm: LstmCell,
    hidden: Dense,
    output: Dense,
    device: Device,
}

impl MergeDecoder {
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        if cfg.kind != DecoderKind::Merge {
            return Err(DecoderError::Config(format!(
                "MergeDecoder built from a {} configuration",
                cfg.kind
            )));
        }
        let (f, e, h, v) = (
            cfg.feature_dim,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.vocab_size,
        );
        Ok(Self {
            cfg: cfg.clone(),
            image: Dense::new(vb.pp("image"), f, h)?,
            embed: Embedding::new(vb.pp("embed"), v, e)?,
            lstm: LstmCell::new(vb.pp("lstm"), e, h)?,
            hidden: Dense::new(vb.pp("hidden"), h, h)?,
            output: Dense::new(vb.pp("output"), h, v)?,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Initial state for features `[B, feature_dim]` (already checked).
    pub(super) fn start(&self, features: &Tensor) -> Result<DecodeState> {
        let b = features.dim(0)?;
        let image = self.image.forward(features)?.relu()?;
        let zeros = Tensor::zeros((b, self.cfg.hidden_dim), DType::F32, &self.device)?;
        Ok(DecodeState {
            h: zeros.clone(),
            c: zeros,
            image: Some(image),
        })
    }

    pub(super) fn step(
        &self,
        state: &DecodeState,
        tokens: &[u32],
    ) -> Result<(Tensor, DecodeState)> {
        let image = state.image.as_ref().ok_or_else(|| {
            DecoderError::Input("decode state was not made by a merge decoder".into())
        })?;
        let x = self.embed.forward(tokens)?;
        let (h, c) = self.lstm.step(&x, &state.h, &state.c)?;
        let merged = (&h + image)?;
        let z = self.hidden.forward(&merged)?.relu()?;
        let logits = self.output.forward(&z)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok((
            log_probs,
            DecodeState {
                h,
                c,
                image: Some(image.clone()),
            },
        ))
    }

    pub(super) fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        self.image.export("image", &mut out)?;
        out.insert("embed.weight".into(), self.embed.table.clone());
        self.lstm.export("lstm", &mut out)?;
        self.hidden.export("hidden", &mut out)?;
        self.output.export("output", &mut out)?;
        Ok(out)
    }
}
