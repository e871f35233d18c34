//! Which caption models there are, and loading one: the shipped model and the runs trained
//! in the app or by `captioner train`.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::{JobContext, JobError};
use crate::encoder::Encoder;
use crate::model_dir;
use crate::pipeline::{self, Captioner};

/// Which caption model to use (persisted by the app's panels).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelChoice {
    /// The model shipped in `models/`.
    #[default]
    Default,
    /// A model trained in the app (or by the command line), by its folder.
    Trained(PathBuf),
}

impl ModelChoice {
    /// A choice from an optional `--model DIR`.
    pub fn from_dir(dir: Option<&Path>) -> ModelChoice {
        match dir {
            Some(d) => ModelChoice::Trained(d.to_path_buf()),
            None => ModelChoice::Default,
        }
    }

    /// The model's folder.
    pub fn dir(&self) -> PathBuf {
        match self {
            ModelChoice::Default => pipeline::default_model_dir(),
            ModelChoice::Trained(dir) => dir.clone(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            ModelChoice::Default => "default (shipped)".to_string(),
            ModelChoice::Trained(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
        }
    }
}

/// Loads the chosen caption model and pairs it with `encoder`.
pub fn load_captioner(
    choice: &ModelChoice,
    encoder: Encoder,
    device: &Device,
) -> Result<Captioner, JobError> {
    let dir = choice.dir();
    let context = || match choice {
        ModelChoice::Default => format!(
            "loading the shipped model from {} (pass --model DIR to use another)",
            dir.display()
        ),
        ModelChoice::Trained(_) => format!("loading the model in {}", dir.display()),
    };
    let model = model_dir::load_model(&dir, device).job_context(context)?;
    Captioner::new(encoder, model, &dir).job_context(context)
}

/// A trained model found in the models folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    pub dir: PathBuf,
    pub name: String,
    pub description: String,
}

/// Trained models under `models_dir`: every folder with a `config.json`, and the `best/` and
/// `last/` of every training run.
pub fn list_models(models_dir: &Path) -> Vec<ModelEntry> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return found;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let run_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let candidates = [
            (dir.clone(), run_name.clone()),
            (
                dir.join(crate::train::BEST_DIR),
                format!("{run_name} (best)"),
            ),
            (
                dir.join(crate::train::LAST_DIR),
                format!("{run_name} (last)"),
            ),
        ];
        for (model, name) in candidates {
            if !model.join(model_dir::CONFIG_FILE).is_file() {
                continue;
            }
            let description = match model_dir::read_meta(&model) {
                Ok(meta) => describe_meta(&meta),
                Err(e) => format!("unreadable: {e}"),
            };
            found.push(ModelEntry {
                dir: model,
                name,
                description,
            });
        }
    }
    found
}

/// "N epochs on DATASET, dev BLEU-4 X".
pub fn describe_meta(meta: &model_dir::ModelMeta) -> String {
    let mut s = format!("{} epochs on {}", meta.epochs, meta.dataset);
    if let Some(b) = meta.metrics.get("dev_bleu4") {
        s.push_str(&format!(", dev BLEU-4 {b:.4}"));
    }
    s
}

/// The decoder, vocabulary and training record of a loaded model, in a line.
pub fn describe_model(model: &model_dir::LoadedModel) -> String {
    format!(
        "{} decoder, {} words, {}",
        model.config.decoder.kind,
        model.vocab.len(),
        describe_meta(&model.meta)
    )
}

/// A new run folder under `models_dir`, named after the dataset, decoder and time.
pub fn new_run_dir(
    models_dir: &Path,
    dataset: &Path,
    kind: crate::decoder::DecoderKind,
) -> PathBuf {
    let name = dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = model_dir::iso8601_utc(secs).replace(':', "-");
    models_dir.join(format!("{name}-{kind}-{stamp}"))
}
