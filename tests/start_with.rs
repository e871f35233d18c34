//! "Start the caption with" ([`DecodeOptions::start_with`]) with the shipped models on the
//! fixture photos: every caption starts with the given words, for both decoders, greedy and
//! beam, grounded or not, one photo alone or many in the batched search; the given words are
//! the user's (kept as typed, never marked unsupported, left out of the scores); and with no
//! start the captions are exactly those of before.

use candle_core::Device;
use captioner::jobs::caption::load_for_encoder;
use captioner::paths::shipped_models_dir;
use captioner::pipeline::{CaptionResult, CaptionSource, Captioner, DecodeOptions, Grounding};
use std::path::PathBuf;

const PHOTOS: [&str; 4] = [
    "1191338263_a4fa073154.jpg",
    "1579798212_d30844b4c5.jpg",
    "1679557684_50a206e4a9.jpg",
    "2090545563_a4e66ec76b.jpg",
];

fn shipped(name: &str) -> Captioner {
    Captioner::load(&shipped_models_dir().join(name), &Device::Cpu).unwrap()
}

/// The decoder inputs of the four photos, read as the folder pipeline reads them.
fn inputs(captioner: &Captioner) -> Vec<Vec<f32>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flickr8k_mini/Flicker8k_Dataset");
    let size = captioner.encoder.input_size();
    let images: Vec<_> = PHOTOS
        .iter()
        .map(|p| load_for_encoder(&dir.join(p), size, &Default::default()).unwrap())
        .collect();
    let enc = captioner.encoder.encode(&images).unwrap();
    captioner.decoder_inputs(&enc).unwrap()
}

fn options(beam: usize, grounding: Grounding, start_with: &str) -> DecodeOptions {
    DecodeOptions {
        beam,
        grounding,
        ..DecodeOptions::default()
    }
    .start_with(start_with)
}

/// Each photo alone and all four in one batched search: the same results.
fn caption(c: &Captioner, inputs: &[Vec<f32>], options: &DecodeOptions) -> Vec<CaptionResult> {
    let views: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let many = c.caption_many(&views, options).unwrap();
    for (i, (f, m)) in inputs.iter().zip(&many).enumerate() {
        let mut one = c.caption_features(f, options).unwrap();
        one.millis = m.millis;
        assert_eq!(&one, m, "photo {i}, {options:?}");
    }
    many
}

/// The captions of the four photos before "start with" existed (`captioner caption` of the
/// commit before, beam 1 and 3, grounding on).
const BEFORE: [(&str, usize, [&str; 4]); 4] = [
    (
        "default",
        1,
        [
            "a woman sits in a subway",
            "a young boy is eating a baby in a pool",
            "a dog jumps to catch a ball",
            "a man in a red shirt is sitting on a skateboard",
        ],
    ),
    (
        "default",
        3,
        [
            "a woman sits in front of a store",
            "a young boy in a blue shirt is standing in the water",
            "a dog jumps to catch a ball in the grass",
            "a man in a red shirt is sitting on a skateboard",
        ],
    ),
    (
        "merge",
        1,
        [
            "a man in a black shirt is standing on a sidewalk",
            "a baby is holding a bubble",
            "a dog is running on a grassy field",
            "a skateboarder is jumping on a bicycle",
        ],
    ),
    (
        "merge",
        3,
        [
            "a group of people stand on a sidewalk",
            "a little girl in a blue shirt is holding a bubble",
            "a black and white dog is playing with a ball in a field",
            "a man in a blue shirt is sitting on a bicycle on the street",
        ],
    ),
];

#[test]
fn without_a_start_the_captions_are_those_of_before() {
    for model in ["default", "merge"] {
        let c = shipped(model);
        let inputs = inputs(&c);
        for (m, beam, want) in BEFORE {
            if m != model {
                continue;
            }
            let plain = caption(&c, &inputs, &options(beam, Grounding::On, ""));
            let texts: Vec<&str> = plain.iter().map(|r| r.text.as_str()).collect();
            assert_eq!(texts, want, "{model} beam {beam}");
            // A blank start is no start: the very same results.
            let blank = caption(&c, &inputs, &options(beam, Grounding::On, "  "));
            for (a, b) in plain.iter().zip(&blank) {
                let mut b = b.clone();
                b.millis = a.millis;
                assert_eq!(a, &b);
                assert_eq!(a.given_words, 0);
            }
        }
    }
}

#[test]
fn every_decoder_continues_from_the_start() {
    for model in ["default", "merge"] {
        let c = shipped(model);
        let inputs = inputs(&c);
        for beam in [1, 3] {
            for grounding in [Grounding::On, Grounding::Off] {
                let what = format!("{model} beam {beam} {grounding:?}");
                let results = caption(&c, &inputs, &options(beam, grounding, "a cat"));
                for r in &results {
                    assert!(r.text.starts_with("a cat "), "{what}: {}", r.text);
                    assert!(r.text.split(' ').count() > 2, "{what}: {}", r.text);
                    assert_eq!(r.given_words, 2, "{what}");
                    assert_eq!(r.words[0].word, "a");
                    assert_eq!(r.words[1].word, "cat");
                    assert_eq!(r.source, CaptionSource::Decoder, "{what}");
                    for alt in &r.alternatives {
                        assert!(alt.text.starts_with("a cat "), "{what}: {}", alt.text);
                    }
                    assert!(r.grounding.iter().all(|g| g.position >= 2), "{what}");
                    if grounding == Grounding::On {
                        assert!(r.tags.contains(&"cat".to_string()), "{what}: {:?}", r.tags);
                    }
                    if let Some(maps) = &r.attention {
                        assert_eq!(maps.words.len(), r.words.len());
                    }
                    // The word figure covers the words the model chose.
                    let chosen: Vec<f32> = r.words[2..].iter().map(|w| w.probability).collect();
                    let geo = captioner::decoder::geometric_mean_probability(chosen.into_iter());
                    assert!((r.word_probability_geomean() - geo).abs() < 1e-6, "{what}");
                }
            }
        }
    }
}

/// The user's words are kept as typed, one the vocabulary lacks included (the model reads
/// it as an unknown word), and are never doubted: an elephant on these photos is the user's
/// say-so, and no classifier caption replaces a caption given a start.
#[test]
fn the_start_is_kept_as_typed_and_never_doubted() {
    for model in ["default", "merge"] {
        let c = shipped(model);
        let prefix = c.prefix("A Zorblat, elephant");
        assert_eq!(prefix.words, ["A", "Zorblat,", "elephant"]);
        assert_eq!(prefix.tokens[1], captioner::decoder::UNK);
        assert_ne!(prefix.tokens[0], captioner::decoder::UNK);
        assert_ne!(prefix.tokens[2], captioner::decoder::UNK);
        let inputs = inputs(&c);
        for beam in [1, 3] {
            for r in caption(
                &c,
                &inputs,
                &options(beam, Grounding::On, " A Zorblat, elephant "),
            ) {
                assert!(r.text.starts_with("A Zorblat, elephant "), "{}", r.text);
                assert!(!r.text.contains("<unk>"), "{}", r.text);
                assert_eq!(r.given_words, 3);
                assert!(r.grounding.iter().all(|g| g.position >= 3));
                assert_eq!(r.source, CaptionSource::Decoder);
            }
        }
    }
}

/// A start as long as the longest caption is the whole caption.
#[test]
fn a_start_of_max_len_words_is_the_caption() {
    let c = shipped("default");
    let inputs = inputs(&c);
    let mut o = options(3, Grounding::On, "a dog runs on the beach");
    o.max_len = 4;
    for r in caption(&c, &inputs[..1], &o) {
        assert_eq!(r.text, "a dog runs on the beach");
        assert_eq!(r.given_words, 6);
    }
}
