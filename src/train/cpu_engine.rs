//! The CPU training engine: the hand-written passes of `engine.rs` (the merge and inject
//! decoders) or of `attention_engine` (the attention decoder), picked by the decoder
//! kind, behind one interface.

use super::attention_engine::AttentionEngine;
use super::batch::{BatchLoss, EngineError, Example, Features, Result, check_input};
use super::engine::LstmEngine;
use super::params::Params;
use crate::decoder::{DecoderConfig, DecoderKind};
use crate::rng::Rng;

/// The passes of one decoder kind.
#[derive(Debug)]
enum Passes {
    Lstm(Box<LstmEngine>),
    Attention(Box<AttentionEngine>),
}

/// Forward/backward machinery for one decoder configuration.
#[derive(Debug)]
pub struct Engine {
    cfg: DecoderConfig,
    passes: Passes,
}

impl Engine {
    pub fn new(cfg: &DecoderConfig) -> Result<Self> {
        let passes = match cfg.kind {
            DecoderKind::Attention => Passes::Attention(Box::new(AttentionEngine::new(cfg)?)),
            DecoderKind::Merge | DecoderKind::Inject => {
                Passes::Lstm(Box::new(LstmEngine::new(cfg)?))
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            passes,
        })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Turns on (or off) accounting of the wall-clock time of each phase of the passes (the
    /// merge and inject decoders'; the attention decoder reports none).
    pub fn set_profiling(&mut self, on: bool) {
        if let Passes::Lstm(lstm) = &mut self.passes {
            lstm.set_profiling(on);
        }
    }

    /// Seconds spent in each phase since profiling was turned on, in first-seen
    /// order.
    pub fn phase_times(&self) -> &[(&'static str, f64)] {
        match &self.passes {
            Passes::Lstm(lstm) => lstm.phase_times(),
            Passes::Attention(_) => &[],
        }
    }

    /// Forward pass with dropout from `rng` (none when `None`) and backward pass: writes the
    /// gradient of the batch's mean token loss into `grads` (every element is overwritten;
    /// an empty batch's gradient is 0).
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
        self.check(params, features, batch)?;
        match &mut self.passes {
            Passes::Lstm(lstm) => {
                let loss = lstm.forward(params, features, batch, rng, true)?;
                lstm.backward(params, grads);
                Ok(loss)
            }
            Passes::Attention(att) => {
                let loss = att.forward(params, features, batch, rng, true)?;
                att.backward(params, grads);
                Ok(loss)
            }
        }
    }

    /// The attention decoder's doubly stochastic regularisation term of the last pass
    /// (added to the mean token loss in the gradients; 0 for the other decoders).
    pub fn last_regularisation(&self) -> f64 {
        match &self.passes {
            Passes::Lstm(_) => 0.0,
            Passes::Attention(att) => att.last_regularisation(),
        }
    }

    /// Loss of a batch with teacher forcing and no dropout (no gradients).
    pub fn eval_loss(
        &mut self,
        params: &Params,
        features: Features<'_>,
        batch: &[Example<'_>],
    ) -> Result<BatchLoss> {
        self.check(params, features, batch)?;
        match &mut self.passes {
            Passes::Lstm(lstm) => lstm.forward(params, features, batch, None, false),
            Passes::Attention(att) => att.forward(params, features, batch, None, false),
        }
    }

    /// Checks the parameters, features and batch against the engine's configuration.
    fn check(&self, params: &Params, features: Features<'_>, batch: &[Example<'_>]) -> Result<()> {
        if params.config() != &self.cfg {
            return Err(EngineError::Input(
                "parameters made for another configuration".into(),
            ));
        }
        check_input(&self.cfg, features, batch)
    }
}
