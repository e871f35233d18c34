//! Chooses the settings of grounded decoding (issue 22): captions the Flickr8k dev split and
//! the photos of tests/fixtures/{everyday,unfamiliar} with each setting of a small grid and
//! prints BLEU-4, CIDEr-D and CHAIR for each. Never reads the test split.
//!
//! cargo run --release --example tune_grounding -- ../shared/flickr8k [models/default] [GRID]
//! GRID: `penalty,bonus,bonus_sure,rerank_weight,fallback_sure,fallback_below;...`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use captioner::dataset::{self, ImportOptions, Split};
use captioner::eval::chair::{ChairFigures, objects_of_references};
use captioner::features::FeatureCache;
use captioner::pipeline::{Captioner, DecodeOptions, Grounding};
use captioner::trust::grounding::GroundingParams;

fn extra(folder: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let text = std::fs::read_to_string(folder.join("captions.txt")).expect("captions.txt");
    let mut out: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, cap) = line.split_once('\t').expect("tab");
        let p = folder.join(name);
        match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, c)) => c.push(cap.to_string()),
            None => out.push((p, vec![cap.to_string()])),
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(&args[1]);
    let model = PathBuf::from(args.get(2).map_or("models/default", String::as_str));
    let device = candle_core::Device::Cpu;
    let mut c = Captioner::load(&model, &device)?;
    let ds = dataset::import(&data, &ImportOptions::default())?;
    let entries: Vec<&dataset::ImageEntry> = ds.split(Split::Dev).collect();
    let paths: Vec<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
    let cache = FeatureCache::new(&captioner::paths::cache_dir(None), c.encoder.id());
    let feats: Vec<Vec<f32>> = if c.wants_spatial() {
        captioner::features::load_cached_spatial(&cache, &paths)
            .into_iter()
            .map(|m| m.expect("cached").to_f32())
            .collect()
    } else {
        captioner::features::load_cached(&cache, &paths)
            .into_iter()
            .map(|m| m.expect("cached"))
            .collect()
    };
    let dev_refs: Vec<Vec<String>> = entries.iter().map(|e| e.captions.clone()).collect();
    let mut fx_inputs = Vec::new();
    let mut fx_refs = Vec::new();
    let mut fx_names = Vec::new();
    for folder in [
        "tests/fixtures/everyday",
        "tests/fixtures/unfamiliar",
        "docs/photos",
    ] {
        let items = if folder == "docs/photos" {
            ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
                .iter()
                .map(|n| (Path::new(folder).join(n), vec![]))
                .collect()
        } else {
            extra(Path::new(folder))
        };
        for (p, refs) in items {
            let img = c.encoder.preprocess_file(&p)?;
            let out = c.encoder.encode(&[img])?;
            fx_inputs.push(c.decoder_inputs(&out)?.remove(0));
            fx_refs.push(refs);
            fx_names.push(p.display().to_string());
        }
    }
    let grid: Vec<GroundingParams> = match args.get(3) {
        Some(g) => g
            .split(';')
            .map(|s| {
                let v: Vec<f32> = s.split(',').map(|x| x.parse().expect("number")).collect();
                GroundingParams {
                    penalty: v[0],
                    bonus: v[1],
                    bonus_sure: v[2],
                    rerank_weight: v[3],
                    fallback_sure: v[4],
                    fallback_below: v[5],
                    ..GroundingParams::default()
                }
            })
            .collect(),
        None => vec![GroundingParams::default()],
    };
    let verbose = std::env::var("VERBOSE").is_ok();
    for (gi, params) in std::iter::once(None)
        .chain(grid.iter().map(Some))
        .enumerate()
    {
        let options = DecodeOptions {
            grounding: if params.is_some() {
                Grounding::On
            } else {
                Grounding::Off
            },
            ..DecodeOptions::default()
        };
        if let Some(p) = params {
            c.grounding = *p;
        }
        let t = std::time::Instant::now();
        let views: Vec<&[f32]> = feats.iter().map(Vec::as_slice).collect();
        let dev = c.caption_many(&views, &options)?;
        let views: Vec<&[f32]> = fx_inputs.iter().map(Vec::as_slice).collect();
        let fx = c.caption_many(&views, &options)?;
        let secs = t.elapsed().as_secs_f64();
        let hyps: Vec<String> = dev.iter().map(|r| r.text.clone()).collect();
        let s = captioner::eval::evaluate(&hyps, &dev_refs);
        let truths: Vec<BTreeSet<&'static str>> =
            dev_refs.iter().map(|r| objects_of_references(r)).collect();
        let dch = ChairFigures::measure(&hyps, &truths);
        let n = fx.len() - 3;
        let fh: Vec<String> = fx[..n].iter().map(|r| r.text.clone()).collect();
        let ft: Vec<BTreeSet<&'static str>> = fx_refs[..n]
            .iter()
            .map(|r| objects_of_references(r))
            .collect();
        let fch = ChairFigures::measure(&fh, &ft);
        let nf = |rs: &[captioner::pipeline::CaptionResult],
                  hs: &[String],
                  ts: &[BTreeSet<&'static str>]| {
            let keep: Vec<usize> = (0..rs.len())
                .filter(|&i| rs[i].needs_review == Some(false))
                .collect();
            let h: Vec<String> = keep.iter().map(|&i| hs[i].clone()).collect();
            let t: Vec<BTreeSet<&'static str>> = keep.iter().map(|&i| ts[i].clone()).collect();
            (keep.len(), ChairFigures::measure(&h, &t).chair_s)
        };
        let (dn, dns) = nf(&dev, &hyps, &truths);
        let (fnn, fns) = nf(&fx[..n], &fh, &ft);
        let cls = dev
            .iter()
            .filter(|r| r.source == captioner::pipeline::CaptionSource::Classifier)
            .count();
        let fcls = fx
            .iter()
            .filter(|r| r.source == captioner::pipeline::CaptionSource::Classifier)
            .count();
        println!(
            "{gi} {:?} | dev B4 {:.4} C {:.4} CHs {:.3} CHi {:.3} gr {:.3} cls {cls} nf {dn}:{:.3} | fx CHs {:.3} CHi {:.3} gr {:.3} cls {fcls} nf {fnn}:{:.3} | {:.1}s",
            params.map(|p| (
                p.penalty,
                p.bonus,
                p.bonus_sure,
                p.rerank_weight,
                p.fallback_sure,
                p.fallback_below
            )),
            s.bleu[3],
            s.cider_d,
            dch.chair_s,
            dch.chair_i,
            dch.grounded,
            dns,
            fch.chair_s,
            fch.chair_i,
            fch.grounded,
            fns,
            secs
        );
        for (name, r) in fx_names.iter().zip(&fx).skip(n) {
            println!("    {name}: {} [{:?}]", r.text, r.source);
        }
        if verbose {
            for (((name, r), refs), input) in fx_names
                .iter()
                .zip(&fx)
                .zip(&fx_refs)
                .zip(&fx_inputs)
                .take(n)
            {
                let ev = c.trust.evidence(&c.pooled_of(input));
                let sure = c
                    .trust
                    .class_index
                    .as_ref()
                    .and_then(|i| i.surest(&ev.classes));
                let g: Vec<String> = r
                    .grounding
                    .iter()
                    .map(|g| format!("{}:{:.2}", g.word, g.support))
                    .collect();
                println!(
                    "    {name}: {} [{:?}] refs {:?} | {:?} | {}",
                    r.text,
                    r.source,
                    objects_of_references(refs),
                    sure.map(|s| (s.name, (s.probability * 100.0).round())),
                    g.join(" ")
                );
            }
        }
    }
    Ok(())
}
