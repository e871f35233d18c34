//! The pieces the command line and the app share above the model layers: where the shipped
//! encoder is and which device to run on (here), a loaded encoder + decoder pair that captions
//! images ([`caption`]: [`Captioner`], [`CaptionStream`]), turning an imported dataset and its
//! cached features into training data ([`training_data`]), and evaluation on a split
//! ([`evaluate`](mod@evaluate)). Everything is re-exported here, so `crate::pipeline::Captioner` and
//! the like keep working.

pub mod caption;
pub mod evaluate;
pub mod training_data;

use std::path::PathBuf;

use candle_core::Device;

use crate::decoder;
pub use crate::decoder::geometric_mean_probability;
use crate::encoder::{Config, Encoder, EncoderError, ImageLoadError};
use crate::model_dir::ModelDirError;

pub use caption::{
    CAPTION_BATCH, CaptionResult, CaptionSource, CaptionStream, Captioner, DecodeOptions, Finished,
    Grounding, ScoredCaption, ScoredWord, WordGrounding,
};
pub use evaluate::{EvalReport, TrustFigures, evaluate};
pub use training_data::{
    PreparedData, SAMPLE_IMAGES, TextSettings, UnknownWords, prepare_training_data,
    prepare_training_data_with,
};

/// Loads the shipped encoder. A weights file that is missing, unreadable or damaged comes as
/// [`EncoderError::Shipped`], which says what to do ([`crate::paths::shipped_models_fix`]).
pub fn load_encoder(device: &Device) -> Result<Encoder, EncoderError> {
    Encoder::load(&crate::paths::encoder_weights(), Config::lite0(), device).map_err(|e| match e {
        EncoderError::WeightsNotFound { .. }
        | EncoderError::WeightsIo { .. }
        | EncoderError::InvalidWeights { .. } => EncoderError::Shipped {
            dir: crate::paths::shipped_models_dir(),
            fix: crate::paths::shipped_models_fix(),
            source: Box::new(e),
        },
        e => e,
    })
}

/// The compute device: CUDA when built with the `cuda` feature and a GPU is present, else the
/// CPU. The note says why the CPU is used when a GPU build finds no GPU.
pub fn pick_device() -> (Device, Option<String>) {
    #[cfg(feature = "cuda")]
    {
        match Device::new_cuda(0) {
            Ok(d) => return (d, None),
            Err(e) => {
                // candle's error text carries a backtrace: the first line says what failed.
                let text = e.to_string();
                let why = text.lines().next().unwrap_or("unknown error").trim();
                return (
                    Device::Cpu,
                    Some(format!("no usable CUDA GPU ({why}); running on the CPU")),
                );
            }
        }
    }
    #[allow(unreachable_code)]
    (Device::Cpu, None)
}

/// A short name of a device for people.
pub fn device_name(device: &Device) -> String {
    match device {
        // The threads captioning runs on (every core unless `--threads` set fewer).
        Device::Cpu => format!("CPU ({} threads)", rayon::current_num_threads()),
        Device::Cuda(_) => "CUDA GPU".to_string(),
        Device::Metal(_) => "Metal GPU".to_string(),
    }
}

/// Errors of loading or running a captioner.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelDirError),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Image(#[from] ImageLoadError),
    #[error(transparent)]
    Decoder(#[from] decoder::DecoderError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(
        "{model}: the model was trained on features of encoder `{wanted}`, but the encoder here is `{have}`"
    )]
    EncoderMismatch {
        model: PathBuf,
        wanted: String,
        have: String,
    },
    #[error(transparent)]
    Instances(#[from] crate::eval::chair::InstancesError),
    #[error("{0}")]
    Other(String),
}
