//! Image encoder: ImageNet-pretrained EfficientNet-Lite in candle, plus image loading,
//! preprocessing and ImageNet class names.
//!
//! Typical use:
//!
//! ```ignore
//! // `encoder` is this module (`captioner::encoder` in the application crate).
//! let device = candle_core::Device::Cpu;
//! let encoder = Encoder::load(Path::new("models/efficientnet-lite0.safetensors"), Config::lite0(), &device)?;
//! let image = encoder.preprocess_file(Path::new("photo.jpg"))?;
//! let out = encoder.encode(&[image])?; // out.pooled: (1, 1280), out.feature_map: (1, 7, 7, 1280)
//! let names = ClassNames::load(Path::new("models/imagenet_classes.txt"))?;
//! for p in encoder.classify(&out, &names, 5)?.remove(0) {
//!     println!("{:>5.1}% {}", 100.0 * p.probability, p.label);
//! }
//! ```
//!
//! The encoder is inference-only: batch norms are folded into the convolutions at load time.
//! On the CPU it runs a dedicated NHWC fast path (see [`kernels`]); on other devices candle's
//! generic convolutions.

pub mod efficientnet_lite;
pub mod fast_jpeg;
pub mod image_error;
pub mod image_io;
pub mod kernels;
pub mod labels;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use efficientnet_lite::{BlockConfig, Config, EfficientNetLite, EncoderOutput};
pub use image_io::{
    DecodeLimits, ImageLoadError, PreprocessedImage, load_rgb, load_rgb_with_limits,
    preprocess_file, preprocess_file_with_limits, preprocess_files, preprocess_raw_rgb,
    preprocess_raw_rgb_file,
};
pub use labels::{ClassNames, LabelsError, Prediction, softmax, top_k_probabilities};

/// Errors of the encoder. Every file-related variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("weights file not found: {}", path.display())]
    WeightsNotFound { path: PathBuf },
    #[error("cannot read weights file {}: {source}", path.display())]
    WeightsIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid weights file {} for {model}: {detail}", path.display())]
    InvalidWeights {
        path: PathBuf,
        model: String,
        detail: String,
    },
    #[error(transparent)]
    Image(#[from] ImageLoadError),
    #[error(transparent)]
    Labels(#[from] LabelsError),
    #[error("image {index} of the batch is {width}x{height}, the model expects {size}x{size}")]
    InputSize {
        index: usize,
        width: usize,
        height: usize,
        size: usize,
    },
    #[error("{0}")]
    Invalid(String),
    /// The shipped encoder cannot be loaded from the shipped models folder
    /// ([`crate::paths::shipped_models_dir`]); `source` names the file, `fix` says what to do.
    #[error("the shipped models in {} are incomplete or damaged; {fix}", dir.display())]
    Shipped {
        dir: PathBuf,
        fix: String,
        #[source]
        source: Box<EncoderError>,
    },
    #[error("encoder computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Identifier of a model + weights pair for feature-cache keys:
/// `"<model name>-<first 12 hex digits of the SHA-256 of the weights file>"`,
/// e.g. `efficientnet-lite0-0123456789ab`. The hash can be checked with `sha256sum`.
pub fn encoder_id(config: &Config, weights: &Path) -> Result<String, EncoderError> {
    let hash = crate::files::content_hash(weights).map_err(|e| weights_io(weights, e))?;
    Ok(format!("{}-{}", config.name, &hash[..12]))
}

fn weights_io(path: &Path, e: std::io::Error) -> EncoderError {
    if e.kind() == std::io::ErrorKind::NotFound {
        EncoderError::WeightsNotFound {
            path: path.to_path_buf(),
        }
    } else {
        EncoderError::WeightsIo {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Builds the model from a safetensors file (memory-mapped during loading only).
pub fn load_model(
    weights: &Path,
    config: &Config,
    device: &Device,
) -> Result<EfficientNetLite, EncoderError> {
    let invalid = |detail: String| EncoderError::InvalidWeights {
        path: weights.to_path_buf(),
        model: config.name.clone(),
        detail,
    };
    let meta = std::fs::metadata(weights).map_err(|e| weights_io(weights, e))?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".to_string()));
    }
    if meta.len() == 0 {
        return Err(invalid("the file is empty (0 bytes)".to_string()));
    }
    // SAFETY: the mapping is only read while the model is built (every tensor is copied out of
    // it and the VarBuilder is dropped at the end of this function); the weights file must not be
    // truncated by another process during those milliseconds, as for any mmap-based loader.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device) }
        .map_err(|e| {
            // The message names the file already: candle's own copy of the path goes.
            let e = match e {
                candle_core::Error::WithPath { inner, .. } => *inner,
                e => e,
            };
            invalid(format!(
                "not a readable safetensors file (truncated or corrupt?): {e}"
            ))
        })?;
    let n_blocks = config.blocks().len();
    if vb.contains_tensor(&format!("_blocks.{n_blocks}._project_conv.weight")) {
        return Err(invalid(format!(
            "the file has more than the {n_blocks} blocks of {} (weights of another variant?)",
            config.name
        )));
    }
    EfficientNetLite::new(config, vb).map_err(|e| invalid(e.to_string()))
}

/// EfficientNet-Lite encoder with its weights identity and preprocessing.
#[derive(Debug, Clone)]
pub struct Encoder {
    model: EfficientNetLite,
    id: String,
    weights: PathBuf,
    /// Images per forward pass on the CPU fast path (larger batches are split).
    micro_batch: usize,
}

/// Default number of images per forward pass on the CPU. Larger batches are cut into slices of
/// this size that run in parallel, one per thread: per-image cost grows with the batch (the
/// activations stop fitting in cache) and whole images in parallel need no synchronisation.
pub const DEFAULT_CPU_MICRO_BATCH: usize = 1;

impl Encoder {
    /// Loads the weights (safetensors with the PyTorch checkpoint names) for `config`.
    /// Missing, truncated or mismatched weights give an error naming the file.
    pub fn load(weights: &Path, config: Config, device: &Device) -> Result<Self, EncoderError> {
        let model = load_model(weights, &config, device)?;
        let id = encoder_id(&config, weights)?;
        Ok(Self {
            model,
            id,
            weights: weights.to_path_buf(),
            micro_batch: DEFAULT_CPU_MICRO_BATCH,
        })
    }

    /// Model + weights identifier, see [`encoder_id`].
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }

    pub fn model(&self) -> &EfficientNetLite {
        &self.model
    }

    pub fn device(&self) -> &Device {
        self.model.device()
    }

    pub fn weights_path(&self) -> &Path {
        &self.weights
    }

    /// Square input side in pixels (224 for Lite0).
    pub fn input_size(&self) -> u32 {
        self.config().image_size as u32
    }

    /// Size of the pooled feature (1280).
    pub fn feature_dim(&self) -> usize {
        self.config().head_channels
    }

    /// Sets how many images go through one CPU forward pass (at least 1); see
    /// [`DEFAULT_CPU_MICRO_BATCH`]. Has no effect on other devices, where a batch is one pass.
    pub fn set_micro_batch(&mut self, images: usize) {
        self.micro_batch = images.max(1);
    }

    /// Decode, orient, convert, resize and normalise one image file.
    pub fn preprocess_file(&self, path: &Path) -> Result<PreprocessedImage, ImageLoadError> {
        preprocess_file(path, self.input_size())
    }

    /// [`Self::preprocess_file`] for many files in parallel; one result per path, in order.
    pub fn preprocess_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
    ) -> Vec<Result<PreprocessedImage, ImageLoadError>> {
        preprocess_files(paths, self.input_size())
    }

    /// Stacks preprocessed images into an NHWC tensor `(N, S, S, 3)` on the model's device.
    pub fn batch_tensor(&self, images: &[PreprocessedImage]) -> Result<Tensor, EncoderError> {
        let size = self.config().image_size;
        let mut data = Vec::with_capacity(images.len() * size * size * 3);
        for (index, img) in images.iter().enumerate() {
            if img.width != size || img.height != size || img.data.len() != size * size * 3 {
                return Err(EncoderError::InputSize {
                    index,
                    width: img.width,
                    height: img.height,
                    size,
                });
            }
            data.extend_from_slice(&img.data);
        }
        Ok(Tensor::from_vec(
            data,
            (images.len(), size, size, 3),
            self.device(),
        )?)
    }

    /// Runs the encoder on preprocessed images.
    ///
    /// On the CPU a batch is cut into micro-batches ([`Self::set_micro_batch`], default 1 image)
    /// that run in parallel, one per thread, each with single-threaded kernels: per-image cost
    /// grows with the batch size (activations stop fitting in cache), and whole images in
    /// parallel need no synchronisation. A single micro-batch uses all threads inside each layer.
    pub fn encode(&self, images: &[PreprocessedImage]) -> Result<EncoderOutput, EncoderError> {
        if images.is_empty() {
            return Err(EncoderError::Invalid("no images to encode".to_string()));
        }
        if !self.device().is_cpu() || images.len() <= self.micro_batch {
            return Ok(self.model.forward_nhwc(&self.batch_tensor(images)?)?);
        }
        use rayon::prelude::*;
        let parts = images
            .par_chunks(self.micro_batch)
            .map(|part| {
                kernels::with_sequential_kernels(|| -> Result<EncoderOutput, EncoderError> {
                    Ok(self.model.forward_nhwc(&self.batch_tensor(part)?)?)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cat = |f: fn(&EncoderOutput) -> &Tensor| -> Result<Tensor, EncoderError> {
            let ts: Vec<&Tensor> = parts.iter().map(f).collect();
            Ok(Tensor::cat(&ts, 0)?)
        };
        Ok(EncoderOutput {
            logits: cat(|o| &o.logits)?,
            pooled: cat(|o| &o.pooled)?,
            feature_map: cat(|o| &o.feature_map)?,
        })
    }

    /// Preprocesses and encodes image files; fails on the first unreadable file.
    pub fn encode_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
    ) -> Result<EncoderOutput, EncoderError> {
        let images = self
            .preprocess_files(paths)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        self.encode(&images)
    }

    /// Top-`k` ImageNet classes for each image of an encoder output.
    pub fn classify(
        &self,
        output: &EncoderOutput,
        names: &ClassNames,
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>, EncoderError> {
        let logits = output
            .logits
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        logits
            .iter()
            .map(|row| names.top_k(row, k).map_err(EncoderError::Invalid))
            .collect()
    }
}
