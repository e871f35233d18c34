//! Training checkpoints: a complete model directory (see [`crate::model_dir`]) plus
//! `optimizer.safetensors` (Adam's moments, `m.<tensor>` and `v.<tensor>`) and
//! `train_state.json` ([`TrainState`]: position, learning rate, history, best so far).

use super::adam::Adam;
use super::params::Params;
use super::{EpochReport, ModelInfo, TrainConfig};
use crate::decoder::DecoderConfig;
use crate::model_dir::{
    self, F32View, FORMAT_VERSION, ModelConfig, ModelDirError, ModelMeta, WEIGHTS_FILE,
    read_f32_tensors, write_file_synced,
};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "train_state.json";

/// What identifies the training data, to refuse resuming on different data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    pub n_images: usize,
    pub train_captions: usize,
    pub dev_captions: usize,
    /// FNV-1a hash of the training captions (image index and word ids).
    pub train_hash: u64,
}

/// Everything besides weights and moments needed to continue a run exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format_version: u32,
    pub decoder: DecoderConfig,
    pub train: TrainConfig,
    /// The epoch in progress (0-based); equals the number of completed epochs at a boundary.
    pub epoch: usize,
    /// Batches of `epoch` already trained.
    pub step: usize,
    pub lr: f32,
    pub adam_step: u64,
    /// Summed token loss and token count of `epoch` so far.
    pub loss_sum: f64,
    pub loss_tokens: u64,
    /// Wall-clock seconds spent on `epoch` so far (before a stop).
    pub epoch_seconds: f64,
    pub best_bleu4: Option<f64>,
    /// 1-based epoch of the best dev BLEU-4 (0: none yet).
    pub best_epoch: usize,
    /// Epochs since the best (early stopping counter).
    pub since_improvement: usize,
    /// Epochs since the best or the last learning-rate cut.
    pub plateau: usize,
    pub early_stopped: bool,
    pub history: Vec<EpochReport>,
    pub data: DataFingerprint,
}

/// Writes `dir` atomically: model files, optimizer moments and training state.
/// `dev_bleu_images` is how many dev photos the epochs' BLEU-4 is measured on (kept in
/// `meta.json` beside the figure, with the beam width, [`super::DEV_BEAM`]).
pub fn save_checkpoint(
    dir: &Path,
    params: &Params,
    adam: &Adam,
    state: &TrainState,
    vocab: &[String],
    info: &ModelInfo,
    dev_bleu_images: usize,
) -> Result<(), ModelDirError> {
    let config = ModelConfig::new(params.config().clone(), &info.encoder_id, info.text.clone());
    let mut meta = ModelMeta::now(&info.dataset, &info.split, state.epoch, &info.encoder_id);
    if let Some(last) = state.history.last() {
        meta.metrics.insert("dev_bleu4".into(), last.dev_bleu4);
        meta.metrics.insert("dev_loss".into(), last.dev_loss);
        meta.metrics.insert("train_loss".into(), last.train_loss);
        meta.metrics
            .insert("dev_bleu_images".into(), dev_bleu_images as f64);
        meta.metrics
            .insert("dev_bleu_beam".into(), super::DEV_BEAM as f64);
    }
    if let Some(b) = state.best_bleu4 {
        meta.metrics.insert("best_dev_bleu4".into(), b);
    }
    let weights = params
        .to_tensors(&Device::Cpu)
        .map_err(|e| ModelDirError::Invalid {
            path: dir.join(WEIGHTS_FILE),
            msg: e.to_string(),
        })?;
    let (m, v) = adam.moments();
    let opt_path = dir.join(OPTIMIZER_FILE);
    let mut views = Vec::with_capacity(2 * params.specs().len());
    let mut offset = 0;
    for spec in params.specs() {
        let r = offset..offset + spec.len();
        offset = r.end;
        let (Some(ms), Some(vs)) = (m.get(r.clone()), v.get(r)) else {
            return Err(ModelDirError::Invalid {
                path: opt_path,
                msg: "optimizer state does not match the parameters".into(),
            });
        };
        views.push((
            format!("m.{}", spec.name),
            F32View::new(spec.shape.clone(), ms),
        ));
        views.push((
            format!("v.{}", spec.name),
            F32View::new(spec.shape.clone(), vs),
        ));
    }
    let opt_bytes = safetensors::serialize(views, None).map_err(|e| ModelDirError::Invalid {
        path: opt_path.clone(),
        msg: e.to_string(),
    })?;
    let state_json = serde_json::to_vec_pretty(state).map_err(|source| ModelDirError::Json {
        path: dir.join(STATE_FILE),
        source,
    })?;
    model_dir::save_model_with(dir, &config, vocab, &weights, &meta, &mut |tmp| {
        write_file_synced(&tmp.join(OPTIMIZER_FILE), &opt_bytes)?;
        write_file_synced(&tmp.join(STATE_FILE), &state_json)
    })
}

/// Reads a checkpoint written by [`save_checkpoint`] for decoder `cfg`.
pub fn load_checkpoint(
    dir: &Path,
    cfg: &DecoderConfig,
) -> Result<(Params, Adam, TrainState), ModelDirError> {
    let state_path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&state_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ModelDirError::Missing {
                path: state_path.clone(),
            }
        } else {
            ModelDirError::Io {
                path: state_path.clone(),
                source: e,
            }
        }
    })?;
    let state: TrainState =
        serde_json::from_slice(&bytes).map_err(|source| ModelDirError::Json {
            path: state_path.clone(),
            source,
        })?;
    if state.format_version > FORMAT_VERSION {
        return Err(ModelDirError::TooNew {
            path: state_path,
            found: u64::from(state.format_version),
            supported: FORMAT_VERSION,
        });
    }
    let mismatch = |path: &Path| ModelDirError::Invalid {
        path: path.to_path_buf(),
        msg: "the checkpoint was made for a different decoder configuration".into(),
    };
    if state.decoder != *cfg {
        return Err(mismatch(&state_path));
    }
    let config = model_dir::read_config(dir)?;
    if config.decoder != *cfg {
        return Err(mismatch(&dir.join(model_dir::CONFIG_FILE)));
    }
    let specs = cfg.param_specs();
    let invalid = |path: &Path, msg: String| ModelDirError::Invalid {
        path: path.to_path_buf(),
        msg,
    };
    let params = load_weights(dir, cfg)?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    let m = read_f32_tensors(&opt_path, &specs, "m.")?.concat();
    let v = read_f32_tensors(&opt_path, &specs, "v.")?.concat();
    let adam = Adam::from_parts(state.lr, state.adam_step, m, v)
        .ok_or_else(|| invalid(&opt_path, "moments differ in length".into()))?;
    if adam.len() != params.len() {
        return Err(invalid(
            &opt_path,
            "moments do not match the parameters".into(),
        ));
    }
    Ok((params, adam, state))
}

/// The weights of the model folder `dir` (a checkpoint or any saved model) as training
/// parameters for `cfg`, the configuration in its `config.json`.
pub fn load_weights(dir: &Path, cfg: &DecoderConfig) -> Result<Params, ModelDirError> {
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut params = Params::zeros(cfg).map_err(|e| ModelDirError::Invalid {
        path: weights_path.clone(),
        msg: e.to_string(),
    })?;
    let flat: Vec<f32> = read_f32_tensors(&weights_path, &cfg.param_specs(), "")?.concat();
    if flat.len() != params.len() {
        return Err(ModelDirError::Invalid {
            path: weights_path,
            msg: format!("{} values for {} parameters", flat.len(), params.len()),
        });
    }
    params.as_mut_slice().copy_from_slice(&flat);
    Ok(params)
}
