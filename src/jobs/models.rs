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
            ModelChoice::Default => crate::paths::default_model_dir(),
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

/// A caption model found on disk (the shipped one or a trained one), as the Models view, the
/// model choices and `captioner models` show it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelEntry {
    pub dir: PathBuf,
    /// The name in its `meta.json`, or one made from its record.
    pub name: String,
    /// Where it lies: the run folder, with "(best)" or "(last)" for a checkpoint.
    pub folder: String,
    /// The model shipped with the program (cannot be deleted).
    pub shipped: bool,
    pub dataset: String,
    /// "merge" or "inject" (empty when `config.json` is unreadable).
    pub decoder: String,
    pub vocab_size: usize,
    pub epochs: usize,
    /// Creation time, ISO 8601 UTC, and seconds since the Unix epoch.
    pub created: String,
    pub created_unix: u64,
    /// Dev BLEU-4: of the latest evaluation on the dev split, else the training's own figure.
    pub dev_bleu4: Option<f64>,
    /// Dev CIDEr-D of the latest evaluation on the dev split (none until evaluated).
    pub dev_cider_d: Option<f64>,
    /// The latest evaluation on any split.
    pub evaluation: Option<model_dir::StoredEvaluation>,
    /// A line about the model (or why its files cannot be read).
    pub description: String,
    /// Why `config.json` or `meta.json` cannot be read, when it cannot.
    pub problem: Option<String>,
}

impl ModelEntry {
    /// Reads the entry of the model in `dir`.
    pub fn read(dir: &Path, folder: String, shipped: bool) -> ModelEntry {
        let mut problems = Vec::new();
        let config = model_dir::read_config(dir)
            .map_err(|e| problems.push(e.to_string()))
            .ok();
        let meta = model_dir::read_meta(dir)
            .map_err(|e| problems.push(e.to_string()))
            .ok()
            .unwrap_or_default();
        let decoder = config
            .as_ref()
            .map(|c| c.decoder.kind.to_string())
            .unwrap_or_default();
        let evaluation = meta.evaluation.clone();
        let dev_eval = evaluation.as_ref().filter(|e| e.split == "dev");
        let dev_bleu4 = dev_eval
            .map(|e| e.bleu[3])
            .or_else(|| meta.metrics.get("dev_bleu4").copied());
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        let description = match &problem {
            Some(p) => format!("unreadable: {p}"),
            None => describe_meta(&meta),
        };
        let name = if meta.name.trim().is_empty() {
            default_name(
                dir,
                &meta,
                (!decoder.is_empty()).then_some(decoder.as_str()),
            )
        } else {
            meta.name.trim().to_string()
        };
        ModelEntry {
            dir: dir.to_path_buf(),
            name,
            folder,
            shipped,
            dataset: meta.dataset.clone(),
            decoder,
            vocab_size: config.map(|c| c.decoder.vocab_size).unwrap_or(0),
            epochs: meta.epochs,
            created: meta.created.clone(),
            created_unix: meta.created_unix,
            dev_bleu4,
            dev_cider_d: dev_eval.map(|e| e.cider_d),
            evaluation,
            description,
            problem,
        }
    }

    /// The choice that selects this model.
    pub fn choice(&self) -> ModelChoice {
        if self.shipped {
            ModelChoice::Default
        } else {
            ModelChoice::Trained(self.dir.clone())
        }
    }
}

impl ModelChoice {
    /// The name to show for this choice: the model's name from `entries` (as listed), else
    /// its folder name.
    pub fn display_name(&self, entries: &[ModelEntry]) -> String {
        match self {
            ModelChoice::Default => entries
                .iter()
                .find(|e| e.shipped)
                .map(|e| format!("{} (shipped)", e.name))
                .unwrap_or_else(|| self.label()),
            ModelChoice::Trained(dir) => entries
                .iter()
                .find(|e| !e.shipped && e.dir == *dir)
                .map(|e| e.name.clone())
                .unwrap_or_else(|| self.label()),
        }
    }
}

/// The name a model without one gets: "flickr8k merge, 12 epochs", with "(best)" or
/// "(last)" for a training run's checkpoint.
pub fn default_name(dir: &Path, meta: &model_dir::ModelMeta, decoder: Option<&str>) -> String {
    let mut name = meta.default_name(decoder);
    if let Some(leaf) = dir.file_name()
        && (leaf == crate::train::BEST_DIR || leaf == crate::train::LAST_DIR)
    {
        name.push_str(&format!(" ({})", leaf.to_string_lossy()));
    }
    name
}

/// The shipped model's entry.
pub fn shipped_model() -> ModelEntry {
    ModelEntry::read(
        &crate::paths::default_model_dir(),
        "default (shipped)".to_string(),
        true,
    )
}

/// The models shipped in `models/`: the default first, then the others (such as
/// `merge`), by folder name.
pub fn shipped_models() -> Vec<ModelEntry> {
    let mut all = vec![shipped_model()];
    let default = crate::paths::default_model_dir();
    let Ok(entries) = std::fs::read_dir(crate::paths::shipped_models_dir()) else {
        return all;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(model_dir::CONFIG_FILE).is_file() && !same_dir(p, &default))
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        all.push(ModelEntry::read(&dir, format!("{name} (shipped)"), true));
    }
    all
}

/// Whether `dir` is one of the models shipped in `models/` (they cannot be deleted).
pub fn is_shipped(dir: &Path) -> bool {
    same_dir(dir, &crate::paths::default_model_dir())
        || dir
            .parent()
            .is_some_and(|p| same_dir(p, &crate::paths::shipped_models_dir()))
            && dir.join(model_dir::CONFIG_FILE).is_file()
}

/// The shipped models, then the trained ones under `models_dir`.
pub fn list_all(models_dir: &Path) -> Vec<ModelEntry> {
    let mut all = shipped_models();
    all.extend(list_models(models_dir));
    all
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
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
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
        for (model, folder) in candidates {
            if !model.join(model_dir::CONFIG_FILE).is_file() {
                continue;
            }
            found.push(ModelEntry::read(&model, folder, false));
        }
    }
    found
}

/// The longest name [`rename`] accepts, in characters.
pub const MAX_NAME_CHARS: usize = 120;

/// Gives the model in `dir` a new name (kept in its `meta.json`, written atomically).
pub fn rename(dir: &Path, name: &str) -> Result<ModelEntry, JobError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(JobError::msg("a model's name cannot be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(JobError::msg(format!(
            "a model's name can have at most {MAX_NAME_CHARS} characters"
        )));
    }
    if name.contains(['\n', '\r']) {
        return Err(JobError::msg("a model's name must fit on one line"));
    }
    model_dir::update_meta(dir, |m| m.name = name.to_string())
        .job_context(|| format!("renaming the model in {}", dir.display()))?;
    Ok(entry_of(dir))
}

/// The entry of the model in `dir` (shipped or trained).
pub fn entry_of(dir: &Path) -> ModelEntry {
    if same_dir(dir, &crate::paths::default_model_dir()) {
        return shipped_model();
    }
    let folder = match (dir.parent().and_then(|p| p.file_name()), dir.file_name()) {
        (Some(run), Some(leaf))
            if leaf == crate::train::BEST_DIR || leaf == crate::train::LAST_DIR =>
        {
            format!("{} ({})", run.to_string_lossy(), leaf.to_string_lossy())
        }
        (_, Some(leaf)) => leaf.to_string_lossy().into_owned(),
        _ => dir.display().to_string(),
    };
    ModelEntry::read(dir, folder, false)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What [`delete`] removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Deleted {
    /// The model's folder.
    pub model: PathBuf,
    /// The run folder too, when the model was its last checkpoint.
    pub run: Option<PathBuf>,
}

/// Deletes a trained model under `models_dir`: its folder (a run's `best/` or `last/`
/// checkpoint, or a whole model folder); a run folder left without any model goes too. The
/// shipped model, and folders outside `models_dir` or without a model in them, are refused.
pub fn delete(models_dir: &Path, dir: &Path) -> Result<Deleted, JobError> {
    if is_shipped(dir) {
        return Err(JobError::msg(format!(
            "{} is a shipped model; it cannot be deleted",
            dir.display()
        )));
    }
    let root = models_dir
        .canonicalize()
        .job_context(|| format!("reading the models folder {}", models_dir.display()))?;
    let target = dir
        .canonicalize()
        .job_context(|| format!("finding the model {}", dir.display()))?;
    if !target.starts_with(&root) || target == root {
        return Err(JobError::msg(format!(
            "{} is not a model in the models folder {}; it is left alone",
            dir.display(),
            models_dir.display()
        )));
    }
    if !target.join(model_dir::CONFIG_FILE).is_file() {
        return Err(JobError::msg(format!(
            "{} holds no model ({} is missing); it is left alone",
            dir.display(),
            model_dir::CONFIG_FILE
        )));
    }
    std::fs::remove_dir_all(&target)
        .job_context(|| format!("deleting the model {}", dir.display()))?;
    let mut deleted = Deleted {
        model: dir.to_path_buf(),
        run: None,
    };
    let leaf = target.file_name().map(|n| n.to_os_string());
    if let (Some(run), Some(leaf)) = (target.parent(), leaf)
        && run != root
        && (leaf == crate::train::BEST_DIR || leaf == crate::train::LAST_DIR)
    {
        let has_model = [crate::train::BEST_DIR, crate::train::LAST_DIR]
            .iter()
            .any(|d| run.join(d).join(model_dir::CONFIG_FILE).is_file());
        if !has_model {
            std::fs::remove_dir_all(run)
                .job_context(|| format!("deleting the empty run folder {}", run.display()))?;
            deleted.run = dir.parent().map(Path::to_path_buf);
        }
    }
    Ok(deleted)
}

/// Scores the model `choice` on `options.split` of the dataset in `dataset_dir` (the shared
/// [`super::evaluate::evaluate`] job) and keeps the result in the model's `meta.json`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_and_store(
    choice: &ModelChoice,
    encoder: Encoder,
    device: &Device,
    dataset_dir: &Path,
    cache_dir: &Path,
    options: &super::evaluate::EvalOptions,
    events: super::Sink,
    cancel: &super::CancelToken,
) -> Result<pipeline::EvalReport, JobError> {
    let captioner = load_captioner(choice, encoder, device)?;
    let report =
        super::evaluate::evaluate(&captioner, dataset_dir, cache_dir, options, events, cancel)?;
    if cancel.is_cancelled() {
        return Err(JobError::msg("evaluation stopped; nothing was stored"));
    }
    store_evaluation(&choice.dir(), dataset_dir, &report)?;
    Ok(report)
}

/// Keeps an evaluation in the `meta.json` of the model in `dir` (atomically).
pub fn store_evaluation(
    dir: &Path,
    dataset_dir: &Path,
    report: &pipeline::EvalReport,
) -> Result<(), JobError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stored = model_dir::StoredEvaluation {
        dataset_dir: dataset_dir.to_path_buf(),
        split: report.split.clone(),
        images: report.images,
        beam: report.beam,
        bleu: report.bleu,
        cider_d: report.cider_d,
        when: model_dir::iso8601_utc(now),
    };
    model_dir::update_meta(dir, |m| m.evaluation = Some(stored))
        .job_context(|| format!("storing the evaluation in {}", dir.display()))?;
    Ok(())
}

/// Writes the default name into the `meta.json` of the models in `dirs` that have none (or
/// `keep`, a name given before, when there is one). Missing folders are passed over.
pub fn name_models(dirs: &[PathBuf], keep: Option<&str>) -> Result<(), JobError> {
    for dir in dirs {
        if !dir.join(model_dir::META_FILE).is_file() {
            continue;
        }
        let decoder = model_dir::read_config(dir)
            .ok()
            .map(|c| c.decoder.kind.to_string());
        model_dir::update_meta(dir, |m| {
            if m.name.trim().is_empty() {
                m.name = match keep {
                    Some(k) if !k.trim().is_empty() => k.trim().to_string(),
                    _ => default_name(dir, m, decoder.as_deref()),
                };
            }
        })
        .job_context(|| format!("naming the model in {}", dir.display()))?;
    }
    Ok(())
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
