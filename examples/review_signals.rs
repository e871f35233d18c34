//! Prints, for each caption of the Flickr8k dev split and of tests/fixtures/{everyday,unfamiliar}
//! (default decoding), the signals that choose the "names an object the photo does not show"
//! review rule: the lowest support of the caption's object words, the calibrated confidence,
//! whether the calibration flags it, and whether CHAIR counts it as naming an absent object.
//! Never reads the test split. Output: one tab-separated line per caption.
//!
//! cargo run --release --example review_signals -- ../shared/flickr8k [models/default]

use std::path::{Path, PathBuf};

use captioner::dataset::{self, ImportOptions, Split};
use captioner::eval::chair::{objects, objects_of_references};
use captioner::features::FeatureCache;
use captioner::pipeline::{Captioner, DecodeOptions};

fn extra(folder: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<String>)>> {
    let text = std::fs::read_to_string(folder.join("captions.txt"))?;
    let mut out: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, cap)) = line.split_once('\t') else {
            continue;
        };
        let p = folder.join(name);
        match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, c)) => c.push(cap.to_string()),
            None => out.push((p, vec![cap.to_string()])),
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(args.get(1).map_or("../shared/flickr8k", String::as_str));
    let model = PathBuf::from(args.get(2).map_or("models/default", String::as_str));
    let device = candle_core::Device::Cpu;
    let c = Captioner::load(&model, &device)?;
    let ds = dataset::import(&data, &ImportOptions::default())?;
    let entries: Vec<&dataset::ImageEntry> = ds.split(Split::Dev).collect();
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let cache = FeatureCache::new(&captioner::paths::cache_dir(None), c.encoder.id());
    let mut inputs: Vec<Vec<f32>> = Vec::new();
    if c.wants_spatial() {
        for m in captioner::features::load_cached_spatial(&cache, &paths) {
            inputs.push(
                m.ok_or_else(|| anyhow::anyhow!("dev features not cached"))?
                    .to_f32(),
            );
        }
    } else {
        for m in captioner::features::load_cached(&cache, &paths) {
            inputs.push(m.ok_or_else(|| anyhow::anyhow!("dev features not cached"))?);
        }
    }
    let mut refs: Vec<Vec<String>> = entries.iter().map(|e| e.captions.clone()).collect();
    let mut sets: Vec<&str> = vec!["dev"; entries.len()];
    for folder in ["tests/fixtures/everyday", "tests/fixtures/unfamiliar"] {
        for (p, r) in extra(Path::new(folder))? {
            let img = c.encoder.preprocess_file(&p)?;
            let out = c.encoder.encode(&[img])?;
            inputs.push(c.decoder_inputs(&out)?.remove(0));
            refs.push(r);
            sets.push("fixtures");
        }
    }
    let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let results = c.caption_many(&views, &DecodeOptions::default())?;
    println!("set\tsupport\tconfidence\tflagged\tabsent\tsurest\tsurest_p\tcaption");
    for (((r, input), refs), set) in results.iter().zip(&inputs).zip(&refs).zip(&sets) {
        let ev = c.trust.evidence(&c.pooled_of(input));
        let words: Vec<String> = r.words.iter().map(|w| w.word.clone()).collect();
        let support = c.trust.lowest_object_support(&ev, &words);
        let truth = objects_of_references(refs);
        let absent = objects(&r.text).iter().any(|o| !truth.contains(o));
        let surest = c
            .trust
            .class_index
            .as_ref()
            .and_then(|i| i.surest(&ev.classes));
        println!(
            "{set}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{}",
            support.map_or("-".into(), |s| format!("{s:.3}")),
            r.confidence.map_or("-".into(), |s| format!("{s:.3}")),
            r.needs_review.map_or("-", |b| if b { "1" } else { "0" }),
            u8::from(absent),
            surest.as_ref().map_or("-", |s| s.name.as_str()),
            surest.as_ref().map_or(0.0, |s| s.probability),
            r.text
        );
    }
    Ok(())
}
