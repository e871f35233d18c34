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

    /// The model's name as every list shows it ([`ModelEntry::label`]: its name, with
    /// "(shipped)" for a shipped model), read from its folder; the folder's name when its
    /// files cannot be read.
    pub fn label(&self) -> String {
        model_label(&self.dir())
    }
}

/// The name of the model in `dir` as every list shows it ([`ModelEntry::label`]), read from
/// its `meta.json` and `config.json` (remembered until `meta.json` changes, so a panel can ask
/// every frame); the folder's name when they cannot be read.
pub fn model_label(dir: &Path) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Labels = Mutex<HashMap<PathBuf, (Option<std::time::SystemTime>, String)>>;
    static LABELS: OnceLock<Labels> = OnceLock::new();
    let stamp = std::fs::metadata(dir.join(model_dir::META_FILE))
        .and_then(|m| m.modified())
        .ok();
    let labels = LABELS.get_or_init(Labels::default);
    if let Ok(map) = labels.lock()
        && let Some((seen, label)) = map.get(dir)
        && *seen == stamp
        && stamp.is_some()
    {
        return label.clone();
    }
    let label = if dir.join(model_dir::CONFIG_FILE).is_file() {
        entry_of(dir).label()
    } else {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    };
    if let Ok(mut map) = labels.lock() {
        map.insert(dir.to_path_buf(), (stamp, label.clone()));
    }
    label
}

/// Loads the chosen caption model and pairs it with `encoder`.
pub fn load_captioner(
    choice: &ModelChoice,
    encoder: Encoder,
    device: &Device,
) -> Result<Captioner, JobError> {
    let dir = choice.dir();
    // A shipped model that cannot be loaded means a damaged installation or checkout: the
    // message says what to do (the cause that follows names the file).
    let shipped = dir.starts_with(crate::paths::shipped_models_dir());
    let context = || match choice {
        ModelChoice::Default => format!(
            "cannot load the shipped model in {}; {}, or pass --model DIR to use another",
            dir.display(),
            crate::paths::shipped_models_fix()
        ),
        ModelChoice::Trained(_) if shipped => format!(
            "cannot load the shipped model in {}; {}",
            dir.display(),
            crate::paths::shipped_models_fix()
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
    /// Dev BLEU-4: of the latest evaluation on the dev split (usually the whole split), else
    /// the training's own figure (on the dev photos training scores, often fewer).
    pub dev_bleu4: Option<f64>,
    /// How `dev_bleu4` was measured: "beam 3 on 1,000 dev photos", "beam 3, during training
    /// on 30 dev photos" (empty when there is no figure).
    pub dev_bleu4_how: String,
    /// How many dev photos `dev_bleu4` was measured on, when known.
    pub dev_bleu4_photos: Option<usize>,
    /// Dev CIDEr-D of the latest evaluation on the dev split (none until evaluated).
    pub dev_cider_d: Option<f64>,
    /// The latest evaluation on any split.
    pub evaluation: Option<model_dir::StoredEvaluation>,
    /// A line about the model (or why its files cannot be read).
    pub description: String,
    /// Why `config.json` or `meta.json` cannot be read, when it cannot.
    pub problem: Option<String>,
    /// For a training run's best checkpoint: the run's last checkpoint (the model after its
    /// last epoch), listed under it rather than beside it; `None` for other models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Box<ModelEntry>>,
}

/// A model's dev BLEU-4 and how it was measured: the latest evaluation on the dev split where
/// there is one, else the figure training measured for the epoch the model is from.
pub fn dev_bleu4_of(meta: &model_dir::ModelMeta) -> Option<(f64, String)> {
    if let Some(e) = meta.evaluation.as_ref().filter(|e| e.split == "dev") {
        let how = if e.beam <= 1 {
            "greedy".to_string()
        } else {
            format!("beam {}", e.beam)
        };
        return Some((e.bleu[3], format!("{how} on {}", dev_photos(e.images))));
    }
    let value = *meta.metrics.get("dev_bleu4")?;
    // Models trained before these were recorded say only that training measured it.
    let search = match meta.metrics.get(DEV_BLEU_BEAM) {
        Some(&b) if b > 1.0 => format!("beam {b}, during training"),
        Some(_) => "greedy, during training".to_string(),
        None => "measured during training".to_string(),
    };
    let how = match meta.metrics.get(DEV_BLEU_IMAGES) {
        Some(&n) if n >= 1.0 => format!("{search} on {}", dev_photos(n as usize)),
        _ => search,
    };
    Some((value, how))
}

/// How many dev photos [`dev_bleu4_of`]'s figure was measured on, when known.
pub fn dev_bleu4_photos(meta: &model_dir::ModelMeta) -> Option<usize> {
    match meta.evaluation.as_ref().filter(|e| e.split == "dev") {
        Some(e) => Some(e.images),
        None => meta
            .metrics
            .get(DEV_BLEU_IMAGES)
            .filter(|n| **n >= 1.0)
            .map(|n| *n as usize),
    }
}

/// Fewer dev photos than this make a dev figure that the lists mark with its count: it is
/// not comparable with figures on Flickr8k's 1,000.
pub const FEW_DEV_PHOTOS: usize = 100;

/// The `meta.json` metric that holds how many dev photos training's BLEU-4 was measured on.
pub const DEV_BLEU_IMAGES: &str = "dev_bleu_images";

/// The `meta.json` metric that holds the beam width of training's dev BLEU-4.
pub const DEV_BLEU_BEAM: &str = "dev_bleu_beam";

/// "30 dev photos", "1,000 dev photos", "1 dev photo".
fn dev_photos(n: usize) -> String {
    format!(
        "{} dev photo{}",
        thousands(n),
        if n == 1 { "" } else { "s" }
    )
}

/// 1234567 as "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
        let dev = dev_bleu4_of(&meta);
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        let description = match &problem {
            Some(p) => format!("unreadable: {p}"),
            None => describe_meta(&meta),
        };
        let kind = (!decoder.is_empty()).then_some(decoder.as_str());
        let name = match meta.given_name(kind) {
            Some(given) => given.to_string(),
            None => default_name(dir, &meta, kind),
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
            dev_bleu4: dev.as_ref().map(|d| d.0),
            dev_bleu4_how: dev.map(|d| d.1).unwrap_or_default(),
            dev_bleu4_photos: dev_bleu4_photos(&meta),
            dev_cider_d: dev_eval.map(|e| e.cider_d),
            evaluation,
            description,
            problem,
            last: None,
        }
    }

    /// The name every list shows: the model's name, with "(shipped)" for a shipped model.
    pub fn label(&self) -> String {
        if self.shipped {
            format!("{} (shipped)", self.name)
        } else {
            self.name.clone()
        }
    }

    /// This entry and, for a training run, its last checkpoint after it.
    pub fn with_last(&self) -> impl Iterator<Item = &ModelEntry> {
        std::iter::once(self).chain(self.last.as_deref())
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
    /// The name to show for this choice: its [`ModelEntry::label`] from `entries` (as listed,
    /// a run's last checkpoint included), else read from its folder ([`ModelChoice::label`]).
    pub fn display_name(&self, entries: &[ModelEntry]) -> String {
        let mut all = entries.iter().flat_map(ModelEntry::with_last);
        let found = match self {
            ModelChoice::Default => all.find(|e| e.shipped),
            ModelChoice::Trained(dir) => all.find(|e| e.dir == *dir),
        };
        found.map_or_else(|| self.label(), ModelEntry::label)
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

/// Trained models under `models_dir`, one entry per folder: a folder with a `config.json`, or
/// a training run, listed as its `best/` checkpoint with its `last/` one in
/// [`ModelEntry::last`] (a run with only one of them is listed as that one). Both remain
/// models of their own: `--model RUN/last` names the last one.
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
        if dir.join(model_dir::CONFIG_FILE).is_file() {
            found.push(ModelEntry::read(&dir, run_name.clone(), false));
        }
        let checkpoint = |leaf: &str| {
            let model = dir.join(leaf);
            model
                .join(model_dir::CONFIG_FILE)
                .is_file()
                .then(|| ModelEntry::read(&model, format!("{run_name} ({leaf})"), false))
        };
        match (
            checkpoint(crate::train::BEST_DIR),
            checkpoint(crate::train::LAST_DIR),
        ) {
            (Some(mut best), Some(last)) => {
                best.last = Some(Box::new(last));
                found.push(best);
            }
            (Some(one), None) | (None, Some(one)) => found.push(one),
            (None, None) => {}
        }
    }
    found
}

/// Every model of `entries` with each run's last checkpoint after its best one.
pub fn with_last_checkpoints(entries: &[ModelEntry]) -> Vec<ModelEntry> {
    entries
        .iter()
        .flat_map(ModelEntry::with_last)
        .map(|e| ModelEntry {
            last: None,
            ..e.clone()
        })
        .collect()
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

/// Keeps `keep`, a name the user gave before (a resumed run's), in the `meta.json` of the
/// models in `dirs`. No automatic name is written: it is made from the record whenever the
/// model is listed, so it follows the epochs trained (an automatic name that earlier versions
/// stored is removed). Missing folders are passed over.
pub fn name_models(dirs: &[PathBuf], keep: Option<&str>) -> Result<(), JobError> {
    for dir in dirs {
        if !dir.join(model_dir::META_FILE).is_file() {
            continue;
        }
        let decoder = model_dir::read_config(dir)
            .ok()
            .map(|c| c.decoder.kind.to_string());
        let meta = model_dir::read_meta(dir)
            .job_context(|| format!("naming the model in {}", dir.display()))?;
        let keep = keep
            .map(str::trim)
            .filter(|k| !k.is_empty() && !meta.is_automatic_name(k, decoder.as_deref()));
        let name = meta
            .given_name(decoder.as_deref())
            .or(keep)
            .unwrap_or_default()
            .to_string();
        if name != meta.name {
            model_dir::update_meta(dir, |m| m.name = name)
                .job_context(|| format!("naming the model in {}", dir.display()))?;
        }
    }
    Ok(())
}

/// "N epochs on DATASET, dev BLEU-4 X (how it was measured)".
pub fn describe_meta(meta: &model_dir::ModelMeta) -> String {
    let mut s = format!(
        "{} epoch{} on {}",
        meta.epochs,
        if meta.epochs == 1 { "" } else { "s" },
        if meta.dataset.is_empty() {
            "an unnamed dataset"
        } else {
            meta.dataset.as_str()
        }
    );
    if let Some((b, how)) = dev_bleu4_of(meta) {
        s.push_str(&format!(", dev BLEU-4 {b:.4} ({how})"));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A model folder in `dir` made of the shipped merge model's config and vocabulary, with
    /// the record `meta`.
    fn model_at(dir: &Path, meta: &model_dir::ModelMeta) {
        let merge = crate::paths::shipped_models_dir().join("merge");
        std::fs::create_dir_all(dir).unwrap();
        for f in [model_dir::CONFIG_FILE, "vocab.json"] {
            std::fs::copy(merge.join(f), dir.join(f)).unwrap();
        }
        std::fs::write(
            dir.join(model_dir::META_FILE),
            serde_json::to_vec_pretty(meta).unwrap(),
        )
        .unwrap();
    }

    fn meta(epochs: usize, name: &str, bleu: f64) -> model_dir::ModelMeta {
        let mut m = model_dir::ModelMeta::now("ds200", "train", epochs, "enc");
        m.name = name.to_string();
        m.metrics.insert("dev_bleu4".into(), bleu);
        m.metrics.insert(DEV_BLEU_IMAGES.into(), 30.0);
        m.metrics.insert(DEV_BLEU_BEAM.into(), 3.0);
        m
    }

    #[test]
    fn a_resumed_run_is_one_entry_named_after_its_own_record() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("ds200-merge-2026");
        // Names stored at the first stop (epoch 9 best, 11 last) by an earlier version; the
        // run was resumed to epoch 20 with its best at 18.
        model_at(
            &run.join("best"),
            &meta(18, "ds200 merge, 9 epochs (best)", 0.05),
        );
        model_at(
            &run.join("last"),
            &meta(20, "ds200 merge, 11 epochs (last)", 0.04),
        );
        let list = list_models(tmp.path());
        assert_eq!(list.len(), 1, "one entry per run: {list:?}");
        let best = &list[0];
        assert_eq!(best.name, "ds200 merge, 18 epochs (best)");
        assert_eq!(best.epochs, 18);
        let last = best
            .last
            .as_deref()
            .expect("the last checkpoint under the best");
        assert_eq!(last.name, "ds200 merge, 20 epochs (last)");
        assert_eq!(last.dir, run.join("last"));
        // Both are models of their own, by folder.
        let flat = with_last_checkpoints(&list);
        assert_eq!(flat.len(), 2);
        assert_eq!(
            ModelChoice::Trained(run.join("last")).display_name(&list),
            "ds200 merge, 20 epochs (last)"
        );
        // The label read from the folder is the same as the list's.
        assert_eq!(ModelChoice::Trained(run.join("best")).label(), best.label());
        // Naming after training removes the stale automatic names and keeps given ones.
        name_models(&[run.join("best")], None).unwrap();
        assert_eq!(model_dir::read_meta(&run.join("best")).unwrap().name, "");
        name_models(&[run.join("last")], Some("holiday model")).unwrap();
        assert_eq!(
            model_dir::read_meta(&run.join("last")).unwrap().name,
            "holiday model"
        );
        name_models(&[run.join("last")], Some("other")).unwrap();
        assert_eq!(
            model_dir::read_meta(&run.join("last")).unwrap().name,
            "holiday model"
        );
    }

    #[test]
    fn dev_bleu4_is_the_evaluation_where_there_is_one_and_says_how_it_was_measured() {
        let mut m = meta(1, "", 0.1767);
        let (b, how) = dev_bleu4_of(&m).unwrap();
        assert_eq!(b, 0.1767);
        assert_eq!(how, "beam 3, during training on 30 dev photos");
        assert_eq!(dev_bleu4_photos(&m), Some(30));
        assert_eq!(
            describe_meta(&m),
            "1 epoch on ds200, dev BLEU-4 0.1767 (beam 3, during training on 30 dev photos)"
        );
        m.evaluation = Some(model_dir::StoredEvaluation {
            split: "dev".into(),
            images: 1000,
            beam: 3,
            bleu: [0.6, 0.4, 0.3, 0.2148],
            ..Default::default()
        });
        let (b, how) = dev_bleu4_of(&m).unwrap();
        assert_eq!(b, 0.2148);
        assert_eq!(how, "beam 3 on 1,000 dev photos");
        assert!(describe_meta(&m).contains("dev BLEU-4 0.2148 (beam 3 on 1,000 dev photos)"));
        // An evaluation on another split leaves the training's figure.
        m.evaluation.as_mut().unwrap().split = "test".into();
        assert_eq!(dev_bleu4_of(&m).unwrap().0, 0.1767);
    }

    #[test]
    fn the_shipped_model_has_one_name_in_every_list() {
        let entry = shipped_model();
        let label = ModelChoice::Default.label();
        assert!(label.ends_with(" (shipped)"), "{label}");
        assert_eq!(label, entry.label());
        assert_eq!(
            ModelChoice::Default.display_name(std::slice::from_ref(&entry)),
            label
        );
        assert_ne!(label, "default (shipped)");
        // Its figure is the one the Models view shows, and the model line says the same.
        let meta = model_dir::read_meta(&entry.dir).unwrap();
        if let Some(b) = entry.dev_bleu4 {
            assert!(describe_meta(&meta).contains(&format!("{b:.4} ({})", entry.dev_bleu4_how)));
        }
    }
}
