//! A decoder's parameters in one flat `f32` buffer: what the CPU engines read and write, the
//! layout of gradients and of Adam's moments, and the checkpoints' order.

use super::batch::{EngineError, Result};
use crate::decoder::{DecoderConfig, ParamSpec};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::ops::Range;

/// All parameters of a decoder in one flat buffer, in [`DecoderConfig::param_specs`] order.
/// The same layout holds gradients and the optimizer's moments.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    cfg: DecoderConfig,
    specs: Vec<ParamSpec>,
    offsets: Vec<usize>,
    data: Vec<f32>,
}

impl Params {
    /// All zeros.
    pub fn zeros(cfg: &DecoderConfig) -> Result<Self> {
        cfg.validate()?;
        let specs = cfg.param_specs();
        let mut offsets = Vec::with_capacity(specs.len() + 1);
        let mut total = 0;
        for s in &specs {
            offsets.push(total);
            total += s.len();
        }
        offsets.push(total);
        Ok(Self {
            cfg: cfg.clone(),
            specs,
            offsets,
            data: vec![0.0; total],
        })
    }

    /// A fresh initialisation, reproducible from `seed`: [`DecoderConfig::init_values`], the
    /// one initialisation scheme of every decoder.
    pub fn init(cfg: &DecoderConfig, seed: u64) -> Result<Self> {
        let mut p = Self::zeros(cfg)?;
        p.data = cfg.init_values(seed)?;
        Ok(p)
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The buffer range of a named tensor.
    pub fn range(&self, name: &str) -> Option<Range<usize>> {
        let i = self.specs.iter().position(|s| s.name == name)?;
        Some(self.offsets[i]..self.offsets[i + 1])
    }

    /// The buffer range of a named tensor the caller's model must have.
    pub(super) fn require(&self, name: &str) -> Result<Range<usize>> {
        self.range(name)
            .ok_or_else(|| EngineError::Input(format!("parameter {name} is missing")))
    }

    /// One named tensor's values.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.range(name).map(|r| &self.data[r])
    }

    /// Every tensor by name and its values, in spec order.
    pub fn iter(&self) -> impl Iterator<Item = (&ParamSpec, &[f32])> {
        self.specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s, &self.data[self.offsets[i]..self.offsets[i + 1]]))
    }

    /// Copies into candle tensors named as in [`DecoderConfig::param_specs`].
    pub fn to_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::with_capacity(self.specs.len());
        for (spec, values) in self.iter() {
            let t = Tensor::from_slice(values, spec.shape.as_slice(), device)?;
            out.insert(spec.name.clone(), t);
        }
        Ok(out)
    }

    /// Reads named tensors (each must exist with its spec's shape).
    pub fn from_tensors(cfg: &DecoderConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let mut p = Self::zeros(cfg)?;
        for i in 0..p.specs.len() {
            let spec = &p.specs[i];
            let t = tensors
                .get(&spec.name)
                .ok_or_else(|| EngineError::Input(format!("tensor {} is missing", spec.name)))?;
            if t.dims() != spec.shape.as_slice() {
                return Err(EngineError::Input(format!(
                    "tensor {} has shape {:?}, expected {:?}",
                    spec.name,
                    t.dims(),
                    spec.shape
                )));
            }
            let values = t
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            p.data[p.offsets[i]..p.offsets[i + 1]].copy_from_slice(&values);
        }
        Ok(p)
    }

    /// Builds a candle decoder (for decoding) with these weights.
    pub fn to_decoder(&self, device: &Device) -> Result<crate::decoder::Decoder> {
        Ok(crate::decoder::Decoder::from_tensors(
            &self.cfg,
            self.to_tensors(device)?,
            device,
        )?)
    }
}
