//! The batched beam search (many photos in one search, photos leaving and joining as they
//! finish) gives every photo exactly the captions that searching it alone gives: for every
//! decoder kind, greedy and beam, on the fixture photos with the shipped models, on the CPU
//! fast path (bit for bit) and on candle ops (the same words).

use candle_core::{Device, Tensor};
use captioner::decoder::{
    Caption, Decoder, DecoderConfig, DecoderKind, SearchOptions, beam_search_many,
    beam_search_with_options, greedy_with_options,
};
use captioner::jobs::caption::load_for_encoder;
use captioner::paths::shipped_models_dir;
use captioner::pipeline::{Captioner, DecodeOptions};
use captioner::train::{Params, Rng};
use std::path::PathBuf;

fn photos() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flickr8k_mini/Flicker8k_Dataset");
    let mut p: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    p.sort();
    p
}

/// The decoder inputs of the fixture photos for `captioner`'s model.
fn inputs(captioner: &Captioner) -> Vec<Vec<f32>> {
    let size = captioner.encoder.input_size();
    let images: Vec<_> = photos()
        .iter()
        .map(|p| load_for_encoder(p, size, &Default::default()).unwrap())
        .collect();
    let mut out = Vec::new();
    for chunk in images.chunks(8) {
        let enc = captioner.encoder.encode(chunk).unwrap();
        out.extend(captioner.decoder_inputs(&enc).unwrap());
    }
    out
}

fn tensors(inputs: &[Vec<f32>]) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|f| Tensor::from_slice(f, (1, f.len()), &Device::Cpu).unwrap())
        .collect()
}

/// Searches every photo alone and all of them together (with several numbers of photos in
/// flight), and checks that the captions agree: exactly when `exact`, else word for word
/// with scores within 1e-4.
fn check(decoder: &Decoder, features: &[Tensor], what: &str, exact: bool) {
    let options = SearchOptions::default();
    for width in [1, 3] {
        let alone: Vec<Vec<Caption>> = features
            .iter()
            .map(|f| {
                if width == 1 {
                    greedy_with_options(decoder, f, 20, &options).unwrap()
                } else {
                    beam_search_with_options(decoder, f, width, 20, &options).unwrap()
                }
            })
            .collect();
        for batch in [1, 4, features.len()] {
            let together = beam_search_many(decoder, features, width, 20, &options, batch).unwrap();
            assert_eq!(together.len(), alone.len());
            for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
                let b = if width == 1 { &b[..1] } else { &b[..] };
                if exact {
                    assert_eq!(a, b, "{what}: photo {i}, beam {width}, {batch} in flight");
                } else {
                    assert_eq!(a.len(), b.len(), "{what}: photo {i}");
                    for (x, y) in a.iter().zip(b) {
                        assert_eq!(x.tokens, y.tokens, "{what}: photo {i}, beam {width}");
                        assert!((x.score - y.score).abs() < 1e-4, "{what}: photo {i}");
                    }
                }
            }
        }
    }
}

fn shipped(name: &str) -> Captioner {
    Captioner::load(&shipped_models_dir().join(name), &Device::Cpu).unwrap()
}

#[test]
fn shipped_attention_model_captions_each_photo_the_same_in_a_batch() {
    let captioner = shipped("default");
    assert_eq!(
        captioner.model.decoder.config().kind,
        DecoderKind::Attention
    );
    let features = tensors(&inputs(&captioner));
    assert!(features.len() >= 20);
    check(&captioner.model.decoder, &features, "attention", true);
}

#[test]
fn shipped_merge_model_captions_each_photo_the_same_in_a_batch() {
    let captioner = shipped("merge");
    let features = tensors(&inputs(&captioner));
    check(&captioner.model.decoder, &features, "merge", true);
}

#[test]
fn inject_decoder_captions_each_photo_the_same_in_a_batch() {
    let cfg = DecoderConfig {
        kind: DecoderKind::Inject,
        feature_dim: 48,
        embed_dim: 16,
        hidden_dim: 40,
        vocab_size: 60,
        dropout: 0.5,
        attention: None,
    };
    let mut p = Params::init(&cfg, 3).unwrap();
    let mut rng = Rng::new(4);
    for x in p.as_mut_slice() {
        *x += (rng.next_f32() - 0.5) * 0.5;
    }
    let decoder = p.to_decoder(&Device::Cpu).unwrap();
    let features: Vec<Tensor> = (0..12)
        .map(|_| {
            let v: Vec<f32> = (0..48).map(|_| rng.next_f32() * 2.0).collect();
            Tensor::from_vec(v, (1, 48), &Device::Cpu).unwrap()
        })
        .collect();
    check(&decoder, &features, "inject", true);
    check(
        &decoder.clone().without_cpu_fast_path(),
        &features,
        "inject on candle ops",
        false,
    );
}

#[test]
fn candle_path_batches_the_shipped_models_too() {
    for name in ["merge", "default"] {
        let captioner = shipped(name);
        let features = tensors(&inputs(&captioner)[..6]);
        let decoder = captioner.model.decoder.clone().without_cpu_fast_path();
        check(&decoder, &features, &format!("{name} on candle ops"), false);
    }
}

#[test]
fn caption_many_gives_the_results_of_caption_features() {
    let captioner = shipped("default");
    let inputs = inputs(&captioner);
    let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    for beam in [1, 3] {
        let options = DecodeOptions {
            beam,
            ..DecodeOptions::default()
        };
        let many = captioner.caption_many(&views, &options).unwrap();
        assert_eq!(many.len(), inputs.len());
        for (i, (f, m)) in inputs.iter().zip(many).enumerate() {
            let mut one = captioner.caption_features(f, &options).unwrap();
            one.millis = m.millis;
            assert_eq!(one, m, "photo {i}, beam {beam}");
        }
    }
}
