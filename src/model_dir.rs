//! A caption model on disk: one directory holding
//!
//! - `config.json`: [`ModelConfig`] (format version, decoder configuration, encoder id, and the
//!   caller's text settings as free-form JSON),
//! - `vocab.json`: the vocabulary, a JSON array of words indexed by token id,
//! - `weights.safetensors`: the decoder's tensors (f32, names and shapes of
//!   [`DecoderConfig::param_specs`]),
//! - `meta.json`: [`ModelMeta`] (where the model came from and how good it is).
//!
//! Directories are written atomically ([`write_dir_atomically`]): into a temporary sibling,
//! every file synced, then renamed into place, so a reader sees the old model or the new one,
//! never a mix. Loading checks every file and reports the file at fault; it never panics.

use crate::decoder::{Decoder, DecoderConfig};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The model directory format this program writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
pub const CONFIG_FILE: &str = "config.json";
pub const VOCAB_FILE: &str = "vocab.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const META_FILE: &str = "meta.json";

/// Errors reading or writing a model directory; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("{}: file is missing", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: format version {found} is newer than this program understands (up to {supported}); \
         use a newer captioner",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    /// Writing a new version of a model folder failed (a full disk, a read-only folder, ...);
    /// the previous version, if any, is unchanged and no temporary folder is left.
    #[error("{}: cannot be written, the previous version is unchanged: {source}", path.display())]
    NotWritten {
        path: PathBuf,
        #[source]
        source: Box<ModelDirError>,
    },
}

pub type Result<T> = std::result::Result<T, ModelDirError>;

impl ModelDirError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelDirError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            ModelDirError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        ModelDirError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

/// `config.json`: what is needed to rebuild and feed the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format_version: u32,
    pub decoder: DecoderConfig,
    /// The image encoder whose features the decoder was trained on.
    #[serde(default)]
    pub encoder_id: String,
    /// Text settings of the caller (cleaning mode, minimum word count, ...), kept verbatim.
    #[serde(default)]
    pub text: serde_json::Value,
}

impl ModelConfig {
    pub fn new(decoder: DecoderConfig, encoder_id: &str, text: serde_json::Value) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            decoder,
            encoder_id: encoder_id.to_string(),
            text,
        }
    }
}

/// `meta.json`: provenance and metrics. Every field is optional when reading (defaulted), and
/// unknown fields are ignored, so files from later versions still load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelMeta {
    pub format_version: u32,
    /// Data set name (e.g. "flickr8k").
    pub dataset: String,
    /// Training split name.
    pub split: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Metric name -> value (e.g. "dev_bleu4", "dev_loss").
    pub metrics: BTreeMap<String, f64>,
    pub encoder_id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Creation time, ISO 8601 UTC (`2025-01-31T12:00:00Z`).
    pub created: String,
    /// The name the user gave the model (empty: none yet; see [`ModelMeta::default_name`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The latest scoring of the model on a dataset split (`captioner eval`, the Models view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<StoredEvaluation>,
    /// The model this one was fine-tuned from (its name and folder); empty when it was trained
    /// from scratch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base_model: String,
}

/// A model's scores on a dataset split, as kept in `meta.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredEvaluation {
    /// The dataset folder scored on.
    pub dataset_dir: PathBuf,
    pub split: String,
    pub images: usize,
    pub beam: usize,
    /// BLEU-1..4.
    pub bleu: [f64; 4],
    pub cider_d: f64,
    /// When, ISO 8601 UTC.
    pub when: String,
}

impl ModelMeta {
    /// A record stamped with the current time.
    pub fn now(dataset: &str, split: &str, epochs: usize, encoder_id: &str) -> Self {
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            format_version: FORMAT_VERSION,
            dataset: dataset.to_string(),
            split: split.to_string(),
            epochs,
            metrics: BTreeMap::new(),
            encoder_id: encoder_id.to_string(),
            created_unix,
            created: iso8601_utc(created_unix),
            name: String::new(),
            evaluation: None,
            base_model: String::new(),
        }
    }

    /// The name given by the user, or one made from the record: "flickr8k merge, 12 epochs".
    pub fn display_name(&self, decoder: Option<&str>) -> String {
        match self.given_name(decoder) {
            Some(name) => name.to_string(),
            None => self.default_name(decoder),
        }
    }

    /// The name the user gave the model, if any. Earlier versions stored the automatic name
    /// ("flickr8k merge, 9 epochs (best)") when a run first stopped, and kept it when the run
    /// was resumed, so it went stale; a stored name of that form counts as no name, and the
    /// name is made from the record again.
    pub fn given_name(&self, decoder: Option<&str>) -> Option<&str> {
        let name = self.name.trim();
        (!name.is_empty() && !self.is_automatic_name(name, decoder)).then_some(name)
    }

    /// Whether `name` has the form of a name made from this record: "DATASET DECODER, N
    /// epoch(s)" for any N, with or without " (best)" or " (last)".
    pub fn is_automatic_name(&self, name: &str, decoder: Option<&str>) -> bool {
        let name = name.trim();
        let name = name
            .strip_suffix(" (best)")
            .or_else(|| name.strip_suffix(" (last)"))
            .unwrap_or(name);
        let Some((head, count)) = name.rsplit_once(", ") else {
            return false;
        };
        let Some((n, unit)) = count.split_once(' ') else {
            return false;
        };
        let dataset = if self.dataset.is_empty() {
            "model"
        } else {
            self.dataset.as_str()
        };
        let head_matches = match decoder {
            Some(kind) => head == format!("{dataset} {kind}") || head == dataset,
            None => head == dataset || head.starts_with(&format!("{dataset} ")),
        };
        head_matches
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (unit == "epoch" || unit == "epochs")
    }

    /// "DATASET DECODER, N epochs" (the parts that are known).
    pub fn default_name(&self, decoder: Option<&str>) -> String {
        let dataset = if self.dataset.is_empty() {
            "model"
        } else {
            self.dataset.as_str()
        };
        let mut s = match decoder {
            Some(kind) => format!("{dataset} {kind}"),
            None => dataset.to_string(),
        };
        s.push_str(&format!(
            ", {} epoch{}",
            self.epochs,
            if self.epochs == 1 { "" } else { "s" }
        ));
        s
    }
}

/// Changes `meta.json` in `dir` atomically (read, change, write a temporary file, rename): a
/// reader sees the old record or the new one.
pub fn update_meta(dir: &Path, change: impl FnOnce(&mut ModelMeta)) -> Result<ModelMeta> {
    let mut meta = read_meta(dir)?;
    change(&mut meta);
    let path = dir.join(META_FILE);
    let bytes = to_json(&path, &meta)?;
    crate::files::write_atomic(&path, &bytes).map_err(|e| ModelDirError::io(&path, e))?;
    Ok(meta)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A model read back from disk.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub config: ModelConfig,
    /// Token id -> word.
    pub vocab: Vec<String>,
    pub decoder: Decoder,
    pub meta: ModelMeta,
}

/// Writes a complete model directory atomically (replacing an existing one).
pub fn save_model(
    dir: &Path,
    config: &ModelConfig,
    vocab: &[String],
    weights: &HashMap<String, Tensor>,
    meta: &ModelMeta,
) -> Result<()> {
    save_model_with(dir, config, vocab, weights, meta, &mut |_| Ok(()))
}

/// [`save_model`] plus `extra`, which writes further files into the (temporary) directory
/// before it is committed: a failure there leaves the previous directory untouched.
pub fn save_model_with(
    dir: &Path,
    config: &ModelConfig,
    vocab: &[String],
    weights: &HashMap<String, Tensor>,
    meta: &ModelMeta,
    extra: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let cfg = &config.decoder;
    cfg.validate()
        .map_err(|e| ModelDirError::invalid(&dir.join(CONFIG_FILE), e.to_string()))?;
    if vocab.len() != cfg.vocab_size {
        return Err(ModelDirError::invalid(
            &dir.join(VOCAB_FILE),
            format!(
                "{} words for a decoder vocabulary of {}",
                vocab.len(),
                cfg.vocab_size
            ),
        ));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut raw: Vec<(String, F32View)> = Vec::new();
    for spec in cfg.param_specs() {
        let t = weights.get(&spec.name).ok_or_else(|| {
            ModelDirError::invalid(&weights_path, format!("tensor {} is missing", spec.name))
        })?;
        if t.dims() != spec.shape.as_slice() {
            return Err(ModelDirError::invalid(
                &weights_path,
                format!(
                    "tensor {} has shape {:?}, expected {:?}",
                    spec.name,
                    t.dims(),
                    spec.shape
                ),
            ));
        }
        let values = t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| ModelDirError::invalid(&weights_path, e.to_string()))?;
        raw.push((spec.name.clone(), F32View::new(spec.shape.clone(), &values)));
    }
    let weight_bytes = safetensors::serialize(raw, None)
        .map_err(|e| ModelDirError::invalid(&weights_path, e.to_string()))?;
    let config_json = to_json(&dir.join(CONFIG_FILE), config)?;
    let vocab_json = to_json(&dir.join(VOCAB_FILE), &vocab)?;
    let meta_json = to_json(&dir.join(META_FILE), meta)?;
    write_dir_atomically(dir, &mut |tmp| {
        write_file_synced(&tmp.join(CONFIG_FILE), &config_json)?;
        write_file_synced(&tmp.join(VOCAB_FILE), &vocab_json)?;
        write_file_synced(&tmp.join(WEIGHTS_FILE), &weight_bytes)?;
        write_file_synced(&tmp.join(META_FILE), &meta_json)?;
        extra(tmp)
    })
}

fn to_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|source| ModelDirError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks a model directory and builds its decoder on `device`.
pub fn load_model(dir: &Path, device: &Device) -> Result<LoadedModel> {
    if !dir.is_dir() {
        let hint = interrupted_write_of(dir)
            .map(|old| format!(" (an interrupted save left {})", old.display()))
            .unwrap_or_default();
        return Err(ModelDirError::invalid(
            dir,
            format!("not a model directory{hint}"),
        ));
    }
    let config = read_config(dir)?;
    let vocab = read_vocab(dir, config.decoder.vocab_size)?;
    let path = dir.join(WEIGHTS_FILE);
    let tensors = read_f32_tensors(&path, &config.decoder.param_specs(), "")?;
    let mut map = HashMap::with_capacity(tensors.len());
    for (spec, values) in config.decoder.param_specs().into_iter().zip(tensors) {
        let t = Tensor::from_vec(values, spec.shape.as_slice(), device)
            .map_err(|e| ModelDirError::invalid(&path, e.to_string()))?;
        map.insert(spec.name, t);
    }
    let decoder = Decoder::from_tensors(&config.decoder, map, device)
        .map_err(|e| ModelDirError::invalid(&path, e.to_string()))?;
    let meta = read_meta(dir)?;
    Ok(LoadedModel {
        config,
        vocab,
        decoder,
        meta,
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| ModelDirError::io(path, e))
}

/// Parses a JSON file after checking its `format_version`.
fn read_versioned_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = read_bytes(path)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| ModelDirError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    match value.get("format_version").map(serde_json::Value::as_u64) {
        Some(Some(v)) if v > u64::from(FORMAT_VERSION) => {
            return Err(ModelDirError::TooNew {
                path: path.to_path_buf(),
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        Some(Some(_)) => {}
        Some(None) => {
            return Err(ModelDirError::invalid(
                path,
                "format_version is not a non-negative integer",
            ));
        }
        None => {
            return Err(ModelDirError::invalid(path, "format_version is missing"));
        }
    }
    serde_json::from_value(value).map_err(|source| ModelDirError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks `config.json`.
pub fn read_config(dir: &Path) -> Result<ModelConfig> {
    let path = dir.join(CONFIG_FILE);
    let config: ModelConfig = read_versioned_json(&path)?;
    config
        .decoder
        .validate()
        .map_err(|e| ModelDirError::invalid(&path, e.to_string()))?;
    Ok(config)
}

/// Reads `meta.json` (lenient: any format version, unknown fields ignored, missing ones
/// defaulted; it only describes the model).
pub fn read_meta(dir: &Path) -> Result<ModelMeta> {
    let path = dir.join(META_FILE);
    let bytes = read_bytes(&path)?;
    serde_json::from_slice(&bytes).map_err(|source| ModelDirError::Json { path, source })
}

/// Reads `vocab.json` and checks it has `vocab_size` words.
pub fn read_vocab(dir: &Path, vocab_size: usize) -> Result<Vec<String>> {
    let path = dir.join(VOCAB_FILE);
    let bytes = read_bytes(&path)?;
    let vocab: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|source| ModelDirError::Json {
            path: path.clone(),
            source,
        })?;
    if vocab.len() != vocab_size {
        return Err(ModelDirError::invalid(
            &path,
            format!(
                "{} words, but {} says the vocabulary has {vocab_size}",
                vocab.len(),
                CONFIG_FILE
            ),
        ));
    }
    Ok(vocab)
}

/// A little-endian f32 tensor for `safetensors::serialize`.
pub(crate) struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32View {
    pub(crate) fn new(shape: Vec<usize>, values: &[f32]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Self { shape, bytes }
    }
}

impl safetensors::View for F32View {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Reads the tensors `prefix + spec.name` of a safetensors file as f32 values, checking each
/// exists with the spec's shape and dtype F32.
pub(crate) fn read_f32_tensors(
    path: &Path,
    specs: &[crate::decoder::ParamSpec],
    prefix: &str,
) -> Result<Vec<Vec<f32>>> {
    let bytes = read_bytes(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        ModelDirError::invalid(
            path,
            format!("not a readable safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = format!("{prefix}{}", spec.name);
        let view = st
            .tensor(&name)
            .map_err(|_| ModelDirError::invalid(path, format!("tensor {name} is missing")))?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(ModelDirError::invalid(
                path,
                format!("tensor {name} is {:?}, expected F32", view.dtype()),
            ));
        }
        if view.shape() != spec.shape.as_slice() {
            return Err(ModelDirError::invalid(
                path,
                format!(
                    "tensor {name} has shape {:?}, expected {:?}",
                    view.shape(),
                    spec.shape
                ),
            ));
        }
        let data = view.data();
        if data.len() != spec.len() * 4 {
            return Err(ModelDirError::invalid(
                path,
                format!(
                    "tensor {name} has {} bytes for {} values",
                    data.len(),
                    spec.len()
                ),
            ));
        }
        out.push(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
    }
    Ok(out)
}

/// Writes a file and flushes it to disk.
pub fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e| ModelDirError::io(path, e);
    let mut f = fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

fn sync_dir(dir: &Path) -> Result<()> {
    crate::files::sync_dir(dir).map_err(|e| ModelDirError::io(dir, e))
}

/// `.NAME.KIND-*` beside `dir` ([`crate::files::temp_sibling`]).
fn sibling(dir: &Path, kind: &str) -> Result<PathBuf> {
    if dir.file_name().is_none() {
        return Err(ModelDirError::invalid(dir, "not a usable directory name"));
    }
    Ok(crate::files::temp_sibling(dir, kind))
}

/// Creates directory `dir` with the files `write` puts into the temporary directory it is
/// given, atomically: the files are synced, the temporary directory renamed over `dir` (the
/// previous `dir`, if any, first moved aside and deleted after the swap). If `write` fails,
/// the temporary directory is removed and `dir` is left as it was. A process killed between
/// the two renames leaves the previous version as `.NAME.old-*` beside `dir`;
/// [`recover_interrupted_write`] puts it back.
pub fn write_dir_atomically(dir: &Path, write: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()> {
    let not_written = |source: ModelDirError| ModelDirError::NotWritten {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    let tmp = sibling(dir, "tmp")?;
    if let Some(parent) = tmp.parent() {
        fs::create_dir_all(parent).map_err(|e| not_written(ModelDirError::io(parent, e)))?;
    }
    fs::create_dir(&tmp).map_err(|e| not_written(ModelDirError::io(&tmp, e)))?;
    if let Err(e) = write(&tmp).and_then(|()| sync_dir(&tmp)) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(not_written(e));
    }
    let old = sibling(dir, "old")?;
    let had_old = fs::symlink_metadata(dir).is_ok();
    if had_old && let Err(e) = fs::rename(dir, &old) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(not_written(ModelDirError::io(dir, e)));
    }
    if let Err(e) = fs::rename(&tmp, dir) {
        if had_old {
            let _ = fs::rename(&old, dir);
        }
        let _ = fs::remove_dir_all(&tmp);
        return Err(not_written(ModelDirError::io(dir, e)));
    }
    // The new version is in place; failing to sync the parent or to delete the old version
    // does not make the write fail.
    if let Some(parent) = tmp.parent() {
        let _ = sync_dir(parent);
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Siblings `.NAME.KIND-*` of `dir`.
fn siblings_of_kind(dir: &Path, kind: &str) -> Vec<PathBuf> {
    let (Some(name), Some(parent)) = (dir.file_name(), dir.parent()) else {
        return Vec::new();
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!(".{}.{kind}-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn interrupted_write_of(dir: &Path) -> Option<PathBuf> {
    siblings_of_kind(dir, "old").into_iter().next()
}

/// Cleans up after a write killed midway: deletes leftover temporary directories of `dir`
/// and, if `dir` itself is missing, restores the previous version moved aside. Returns
/// whether a previous version was restored.
pub fn recover_interrupted_write(dir: &Path) -> Result<bool> {
    for tmp in siblings_of_kind(dir, "tmp") {
        let _ = fs::remove_dir_all(&tmp);
    }
    let olds = siblings_of_kind(dir, "old");
    let mut restored = false;
    if fs::symlink_metadata(dir).is_err()
        && let Some(newest) = olds
            .iter()
            .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
    {
        fs::rename(newest, dir).map_err(|e| ModelDirError::io(newest, e))?;
        restored = true;
    }
    for old in olds {
        if old.exists() {
            let _ = fs::remove_dir_all(&old);
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_stored_automatic_name_is_made_again_from_the_record() {
        // A run first stopped at epoch 9 stored "ds200 merge, 9 epochs (best)"; resumed to
        // epoch 20, its record says 20.
        let mut meta = ModelMeta::now("ds200", "train", 20, "enc");
        meta.name = "ds200 merge, 9 epochs (best)".into();
        assert_eq!(meta.given_name(Some("merge")), None);
        assert_eq!(meta.display_name(Some("merge")), "ds200 merge, 20 epochs");
        meta.name = "ds200 merge, 1 epoch".into();
        assert_eq!(meta.given_name(Some("merge")), None);
        // Names the user gave stay, even ones that look a little like an automatic name.
        for given in [
            "my model",
            "ds200 merge, final",
            "holiday photos, 9 epochs",
            "ds200 merge, 9 epochs tuned",
        ] {
            meta.name = given.into();
            assert_eq!(meta.given_name(Some("merge")), Some(given), "{given}");
            assert_eq!(meta.display_name(Some("merge")), given);
        }
        // One epoch is singular.
        meta.name.clear();
        meta.epochs = 1;
        assert_eq!(meta.display_name(Some("merge")), "ds200 merge, 1 epoch");
    }
}
