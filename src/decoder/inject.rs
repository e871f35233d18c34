//! The inject decoder (Show and Tell style): the image sets the LSTM's initial state.

use super::lstm::LstmCell;
use super::{DecodeState, DecoderConfig, DecoderError, DecoderKind, Dense, Embedding, Result};
use candle_core::{D, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

/// `h0 = tanh(init_h(Dropout(feature)))`, `c0 = tanh(init_c(Dropout(feature)))`;
/// `words -> Embedding -> Dropout -> LSTM(hidden) -> Dropout -> Dense(vocab)`.
/// Tensors: `init_h.*`, `init_c.*`, `embed.weight`, `lstm.*`, `output.*`.
#[derive(Clone, Debug)]
pub struct InjectDecoder {
    cfg: DecoderConfig,
    init_h: Dense,
    init_c: Dense,
    embed: Embedding,
    lstm: LstmCell,
    output: Dense,
    device: Device,
}

impl InjectDecoder {
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        if cfg.kind != DecoderKind::Inject {
            return Err(DecoderError::Config(format!(
                "InjectDecoder built from a {} configuration",
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
            init_h: Dense::new(vb.pp("init_h"), f, h)?,
            init_c: Dense::new(vb.pp("init_c"), f, h)?,
            embed: Embedding::new(vb.pp("embed"), v, e)?,
            lstm: LstmCell::new(vb.pp("lstm"), e, h)?,
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

    pub(super) fn start(&self, features: &Tensor) -> Result<DecodeState> {
        Ok(DecodeState {
            h: self.init_h.forward(features)?.tanh()?,
            c: self.init_c.forward(features)?.tanh()?,
            image: None,
        })
    }

    pub(super) fn step(
        &self,
        state: &DecodeState,
        tokens: &[u32],
    ) -> Result<(Tensor, DecodeState)> {
        let x = self.embed.forward(tokens)?;
        let (h, c) = self.lstm.step(&x, &state.h, &state.c)?;
        let logits = self.output.forward(&h)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok((log_probs, DecodeState { h, c, image: None }))
    }

    pub(super) fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        self.init_h.export("init_h", &mut out)?;
        self.init_c.export("init_c", &mut out)?;
        out.insert("embed.weight".into(), self.embed.table.clone());
        self.lstm.export("lstm", &mut out)?;
        self.output.export("output", &mut out)?;
        Ok(out)
    }
}
