//! `captioner merge OUT`: the shards of one split back in one list of records, in the order
//! of the photo list, after checking that every shard is finished and that they all came
//! from the same photo list, model and options.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{FailedPhoto, Manifest, ShardError, ShardFiles, ShardSpec, read_json, read_lines};
use crate::export::ExportRow;

/// A photo that could not be read, with the shard it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardFailure {
    pub shard: usize,
    pub photo: FailedPhoto,
}

/// The merged shards.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Every captioned photo, in the order of the photo list.
    pub rows: Vec<ExportRow>,
    /// The shards' manifests, shard 0 first.
    pub manifests: Vec<Manifest>,
    /// The photos that could not be read, by shard.
    pub failures: Vec<ShardFailure>,
}

impl Merged {
    /// The shards (by number) with photos that could not be read.
    pub fn failed_shards(&self) -> Vec<usize> {
        let set: BTreeSet<usize> = self.failures.iter().map(|f| f.shard).collect();
        set.into_iter().collect()
    }
}

/// The shard files in `out`, by split (N) and shard (K): whether each has a manifest.
fn shards_in(out: &Path) -> Result<BTreeMap<usize, BTreeMap<usize, bool>>, ShardError> {
    let entries = std::fs::read_dir(out).map_err(|source| ShardError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut found: BTreeMap<usize, BTreeMap<usize, bool>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("shard-") else {
            continue;
        };
        let Some((spec, ext)) = rest.split_once('.') else {
            continue;
        };
        if !matches!(ext, "jsonl" | "failed.jsonl" | "state.json" | "done.json") {
            continue;
        }
        let Some((k, n)) = spec.split_once("-of-") else {
            continue;
        };
        let (Ok(k), Ok(n)) = (k.parse::<usize>(), n.parse::<usize>()) else {
            continue;
        };
        if k >= n {
            continue;
        }
        let done = found.entry(n).or_default().entry(k).or_default();
        *done |= ext == "done.json";
    }
    Ok(found)
}

/// Merges the shards in `out`: every one of the N shards must have its manifest, and the
/// manifests must agree (photo list, model, options); the records come out in the order of
/// the photo list, which is the order `captioner batch` gives the same photos.
pub fn merge(out: &Path) -> Result<Merged, ShardError> {
    let found = shards_in(out)?;
    let n = match found.len() {
        0 => {
            return Err(ShardError::NoShards {
                out: out.to_path_buf(),
            });
        }
        1 => found.keys().copied().next().unwrap_or_default(),
        _ => {
            let counts: Vec<String> = found.keys().map(|n| format!("of {n}")).collect();
            return Err(ShardError::MixedSplits {
                out: out.to_path_buf(),
                counts: counts.join(", "),
            });
        }
    };
    let shards = &found[&n];
    let missing: Vec<usize> = (0..n).filter(|k| !shards.contains_key(k)).collect();
    let unfinished: Vec<usize> = (0..n).filter(|k| shards.get(k) == Some(&false)).collect();
    if !missing.is_empty() || !unfinished.is_empty() {
        return Err(ShardError::Incomplete {
            out: out.to_path_buf(),
            shards: n,
            missing,
            unfinished,
        });
    }
    let mut merged = Merged {
        rows: Vec::new(),
        manifests: Vec::new(),
        failures: Vec::new(),
    };
    let mut covered = 0;
    for k in 0..n {
        let files = ShardFiles::new(out, ShardSpec { index: k, count: n });
        let manifest: Manifest = read_json(&files.done)?;
        if let Some(first) = merged.manifests.first() {
            let differences = same_split_differences(&first.state, &manifest.state);
            if !differences.is_empty() {
                return Err(ShardError::Disagree {
                    path: files.done,
                    differences,
                });
            }
        }
        if (manifest.state.shard, manifest.state.shards) != (k, n) {
            return Err(ShardError::BadFile {
                path: files.done,
                message: format!(
                    "it is the manifest of shard {}/{}, not {k}/{n}",
                    manifest.state.shard, manifest.state.shards
                ),
            });
        }
        let (rows, _) = read_lines::<ExportRow>(&files.records, false)?;
        if rows.len() != manifest.captioned {
            return Err(ShardError::BadFile {
                path: files.records,
                message: format!(
                    "{} records, but the manifest counts {} captioned photos: the shard's files were changed after it finished",
                    rows.len(),
                    manifest.captioned
                ),
            });
        }
        covered += manifest.state.photos;
        merged.rows.extend(rows.into_iter().map(|(row, _)| row));
        merged
            .failures
            .extend(manifest.failures.iter().map(|f| ShardFailure {
                shard: k,
                photo: f.clone(),
            }));
        merged.manifests.push(manifest);
    }
    let total = merged.manifests.first().map_or(0, |m| m.state.photos_total);
    if covered != total {
        return Err(ShardError::BadFile {
            path: out.to_path_buf(),
            message: format!(
                "the shards hold {covered} photos, but the photo list has {total}: the shards were not cut from one list"
            ),
        });
    }
    Ok(merged)
}

/// What differs between two shards' states of one split (apart from the shard number).
fn same_split_differences(first: &super::ShardState, other: &super::ShardState) -> String {
    let aligned = super::ShardState {
        shard: first.shard,
        ..other.clone()
    };
    first.differences(&aligned)
}
