//! Grounding: how well the photo supports each content word of a caption (issue 22).
//!
//! A word's support (0..1) comes from two sources that look at the photo, not at the caption:
//!
//! - the model's concept detector (`concepts.*` in the model folder, when it has one): the
//!   probability that the word applies to the photo;
//! - the ImageNet classifier of the encoder: the probability mass of the classes whose
//!   plain-word tags (`models/imagenet_tags.txt`) include the word ("dog" is the mass of all
//!   the dog breeds, "cat" of the five cats, "pizza" of the pizza).
//!
//! The support is the larger of the two (either source seeing the thing is enough; the
//! detector knows the words of the training captions, people, grass, water, the classifier
//! the ImageNet objects the captions rarely name). A word that names one of the 80 COCO
//! object categories also takes the support of the category's other names ("man" is
//! supported when the detector sees a woman: both are a person; hallucination is counted per
//! category, [`crate::eval::chair`]). A word neither source knows gets [`UNKNOWN_SUPPORT`]
//! and is never weak: nothing can check it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::tags::Classifier;

/// One content word of `text` and how well the photo supports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordGrounding {
    /// Index into the caption's `words`.
    pub position: usize,
    /// The word as the caption has it.
    pub word: String,
    /// How well the photo supports the word (0..1).
    pub support: f32,
    /// The support is below [`WEAK_BELOW`]: doubt the word.
    pub weak: bool,
    /// For people, e.g. "little sign of a person in this photo" (weak words only).
    pub note: Option<String>,
}

/// Where a caption came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionSource {
    /// The caption model's beam search.
    #[default]
    Decoder,
    /// A short caption from the ImageNet classifier's tag, used when the decoder's captions
    /// named things the photo shows little sign of.
    Classifier,
}

/// Whether captions are grounded ([`crate::pipeline::DecodeOptions::grounding`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grounding {
    /// Grounded decoding and per-word support (where the model has a concept detector).
    #[default]
    On,
    /// The decoder's plain beam search, as before grounding: no per-word support.
    Off,
}

/// A word whose support is below this is weak (doubt it).
pub const WEAK_BELOW: f32 = 0.2;
/// The support of a word no source knows (never weak).
pub const UNKNOWN_SUPPORT: f32 = 0.5;

/// What the photo shows, as the grounding sources see it: computed once per photo.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// The ImageNet class probabilities (empty without the classifier).
    pub classes: Vec<f32>,
    /// The concept detector's probability per detector word (`None` without a detector).
    pub concepts: Option<Vec<f32>>,
    /// Per COCO category, the detector's highest probability for a word naming it.
    pub categories: Vec<(&'static str, f32)>,
    /// The photo is less familiar than nearly all dev photos (the needs-review rule of
    /// [`super::Calibration::unfamiliar_below`]): the detector, which learned from the
    /// training photos, is least to be trusted there.
    pub unfamiliar: bool,
    /// Its nearest training photos (with familiarity data), for the trust signals.
    pub neighbours: Option<super::familiarity::Neighbours>,
}

/// The concept detector's words, looked up: word -> index, and the COCO category each names.
#[derive(Clone, Debug, Default)]
pub struct ConceptWords {
    index: HashMap<String, usize>,
    /// The COCO category of each detector word, if it names one.
    categories: Vec<Option<&'static str>>,
}

impl ConceptWords {
    /// The lookup of a detector's `words`.
    pub fn new(words: &[String]) -> ConceptWords {
        ConceptWords {
            index: words
                .iter()
                .enumerate()
                .map(|(i, w)| (crate::concepts::concept_word(w), i))
                .collect(),
            categories: words.iter().map(|w| category_of(w)).collect(),
        }
    }

    /// The index of a caption word (any form: "dogs", "Men") among the detector's words.
    pub fn index_of(&self, word: &str) -> Option<usize> {
        self.index
            .get(&crate::concepts::concept_word(word))
            .copied()
    }

    /// Per COCO category, the highest probability of the detector words that name it.
    pub fn category_support(&self, probs: &[f32]) -> Vec<(&'static str, f32)> {
        let mut out: Vec<(&'static str, f32)> = Vec::new();
        for (c, &p) in self.categories.iter().zip(probs) {
            let Some(c) = c else { continue };
            match out.iter_mut().find(|(k, _)| k == c) {
                Some((_, q)) => *q = q.max(p),
                None => out.push((c, p)),
            }
        }
        out
    }
}

/// The singular of a plural caption word ("dogs" -> "dog", "boxes" -> "box", "puppies" ->
/// "puppy"; "grass" stays), for looking it up.
pub fn singular(word: &str) -> String {
    let w = word.to_lowercase();
    if w.len() > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    for suffix in ["ches", "shes", "sses", "xes"] {
        if w.len() > suffix.len() + 1 && w.ends_with(suffix) {
            return w[..w.len() - 2].to_string();
        }
    }
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        return w[..w.len() - 1].to_string();
    }
    w
}

/// Word -> the ImageNet classes whose tags include it, and the classes grouped by their
/// plain name ([`plain_name`]), built from the classifier's tags.
#[derive(Clone, Debug, Default)]
pub struct ClassIndex {
    classes: HashMap<String, Vec<usize>>,
    /// Each class's group (classes with the same plain name).
    group_of: Vec<usize>,
    /// Each group's plain name.
    names: Vec<String>,
}

/// What the classifier is surest of, by plain name.
#[derive(Clone, Debug, PartialEq)]
pub struct Surest {
    /// The plain name ("cat").
    pub name: String,
    /// The probability of all the classes with that name.
    pub probability: f32,
    /// The likeliest class with that name.
    pub class: usize,
}

impl ClassIndex {
    /// The index of every tag of every class.
    pub fn new(classifier: &Classifier, classes: usize) -> ClassIndex {
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut group_of = Vec::with_capacity(classes);
        for i in 0..classes {
            let tags = classifier.tags(i);
            for t in tags {
                let e = map.entry(t.clone()).or_default();
                if !e.contains(&i) {
                    e.push(i);
                }
            }
            let name = plain_name(tags).unwrap_or_default().to_string();
            let g = match names.iter().position(|n| *n == name) {
                Some(g) => g,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            group_of.push(g);
        }
        ClassIndex {
            classes: map,
            group_of,
            names,
        }
    }

    /// The classes of a caption word (or of its singular), if any tag is that word.
    pub fn classes_of(&self, word: &str) -> Option<&[usize]> {
        let w = word.to_lowercase();
        self.classes
            .get(&w)
            .or_else(|| self.classes.get(&singular(&w)))
            .map(Vec::as_slice)
    }

    /// The probability mass of the classes of `word` (`None` when no tag is the word).
    pub fn mass(&self, word: &str, probs: &[f32]) -> Option<f32> {
        self.classes_of(word).map(|cs| {
            cs.iter()
                .filter_map(|&c| probs.get(c))
                .sum::<f32>()
                .min(1.0)
        })
    }

    /// The plain name with the most probability (class probabilities `probs`).
    pub fn surest(&self, probs: &[f32]) -> Option<Surest> {
        let mut mass = vec![0f32; self.names.len()];
        let mut best_class: Vec<Option<usize>> = vec![None; self.names.len()];
        for (c, (&g, &p)) in self.group_of.iter().zip(probs).enumerate() {
            mass[g] += p;
            if best_class[g].is_none_or(|b| probs[b] < p) {
                best_class[g] = Some(c);
            }
        }
        let (g, &p) = mass.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        Some(Surest {
            name: self.names[g].clone(),
            probability: p.min(1.0),
            class: best_class[g]?,
        })
    }
}

/// The COCO category a single caption word names, if it names one ("man" -> person).
pub fn category_of(word: &str) -> Option<&'static str> {
    let m = crate::eval::chair::mentions(word);
    match m.as_slice() {
        [one] => Some(one.category),
        _ => None,
    }
}

/// What a content word is called in a note: "a person" for the words of people, else the
/// word's singular with its article ("a dog", "an elephant").
pub fn described(word: &str) -> String {
    let thing = match category_of(word) {
        Some("person") => "person".to_string(),
        _ => singular(word),
    };
    let article = if thing.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {thing}")
}

/// The note of a weak word.
pub fn weak_note(word: &str) -> String {
    format!("little sign of {} in this photo", described(word))
}

/// The grounding of each content word of `words` (positions into `words`; stop words are
/// left out, repeats are each grounded), with `support(word)` giving a word's support or
/// `None` when no source knows it.
pub fn ground_words(
    words: &[String],
    support: &mut dyn FnMut(&str) -> Option<f32>,
) -> Vec<WordGrounding> {
    words
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            let w = w.to_lowercase();
            !w.is_empty() && !super::STOP_WORDS.contains(&w.as_str())
        })
        .map(|(position, word)| {
            let (support, weak) = match support(word) {
                Some(s) => (s.clamp(0.0, 1.0), s < WEAK_BELOW),
                None => (UNKNOWN_SUPPORT, false),
            };
            WordGrounding {
                position,
                word: word.clone(),
                support,
                weak,
                note: weak.then(|| weak_note(word)),
            }
        })
        .collect()
}

/// The settings of grounded decoding (chosen on the Flickr8k dev split and the photos of
/// tests/fixtures together; see docs/quality.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundingParams {
    /// Subtracted from the log-probability of an object word whose support is below
    /// [`WEAK_BELOW`] whenever the beam ranks it.
    pub penalty: f32,
    /// Added (until the caption has it) to the log-probability of an object word (a COCO
    /// category other than person) for which the image classifier's classes have at least
    /// [`GroundingParams::bonus_sure`] probability.
    pub bonus: f32,
    pub bonus_sure: f32,
    /// The beam's finished captions are ranked by their score plus this times the summed ln
    /// of the support of their object words (at least [`GroundingParams::support_floor`]).
    pub rerank_weight: f32,
    pub support_floor: f32,
    /// A caption from the classifier replaces the decoder's when the classifier's surest
    /// plain name has at least `fallback_sure` probability, the caption does not name it,
    /// and the caption has an object word with support below `fallback_below` or the photo
    /// is unfamiliar ([`Evidence::unfamiliar`]: the decoder's caption is then probably
    /// wrong, and the detector's support least to be trusted).
    pub fallback_sure: f32,
    pub fallback_below: f32,
}

impl Default for GroundingParams {
    fn default() -> Self {
        GroundingParams {
            penalty: 4.0,
            bonus: 3.0,
            bonus_sure: 0.5,
            rerank_weight: 0.0,
            support_floor: 0.01,
            fallback_sure: 0.3,
            fallback_below: 0.1,
        }
    }
}

/// Class words that group others and make no caption of their own.
const GENERIC_TAGS: &[&str] = &[
    "food",
    "drink",
    "vegetable",
    "fruit",
    "animal",
    "plant",
    "reptile",
    "insect",
    "landscape",
    "fungus",
    "crustacean",
    "rodent",
];

/// Kitchen appliances: "a microwave in a kitchen".
const KITCHEN: &[&str] = &[
    "microwave",
    "refrigerator",
    "dishwasher",
    "stove",
    "toaster",
    "oven",
    "fridge",
];

/// The plain name of an ImageNet class for a caption, from its tags: the second tag when it
/// is one word and not a group word ("tabby, cat" -> cat, "granny smith, apple" -> apple,
/// "coffee mug, mug" -> mug), else the first ("broccoli", "microwave").
pub fn plain_name(tags: &[String]) -> Option<&str> {
    let first = tags.first()?;
    match tags.get(1) {
        Some(t) if !t.contains(' ') && !GENERIC_TAGS.contains(&t.as_str()) => Some(t),
        _ => Some(first),
    }
}

fn with_article(thing: &str) -> String {
    let article = if thing.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {thing}")
}

/// A short, honest caption of what the classifier sees (class `tags`, the class's index
/// `class`): "a cat", "a plate of broccoli", "a cup of coffee", "a microwave in a kitchen".
pub fn classifier_caption(tags: &[String], class: usize) -> Option<String> {
    let name = plain_name(tags)?;
    let has = |t: &str| tags.iter().any(|x| x == t);
    Some(if class < super::tags::ANIMAL_CLASSES {
        with_article(name)
    } else if has("drink") {
        if name == "cup" {
            "a cup".to_string()
        } else {
            format!("a cup of {name}")
        }
    } else if name == "plate" {
        "a plate of food".to_string()
    } else if has("vegetable") {
        format!("a plate of {name}")
    } else if KITCHEN.contains(&name) {
        format!("{} in a kitchen", with_article(name))
    } else {
        with_article(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split(", ").map(String::from).collect()
    }

    #[test]
    fn classifier_captions_are_short_and_plain() {
        let c = |t: &str, i| classifier_caption(&tags(t), i).unwrap();
        assert_eq!(c("egyptian cat, cat", 285), "a cat");
        assert_eq!(c("broccoli, food, vegetable", 937), "a plate of broccoli");
        assert_eq!(c("espresso, coffee, drink, food", 967), "a cup of coffee");
        assert_eq!(c("microwave", 651), "a microwave in a kitchen");
        assert_eq!(c("granny smith, apple, food, fruit", 948), "an apple");
        assert_eq!(c("pizza, food", 963), "a pizza");
        assert_eq!(c("plate, food", 923), "a plate of food");
        assert_eq!(c("cougar, big cat", 286), "a cougar");
        assert_eq!(c("soup bowl, bowl", 809), "a bowl");
    }

    #[test]
    fn singulars() {
        assert_eq!(singular("dogs"), "dog");
        assert_eq!(singular("puppies"), "puppy");
        assert_eq!(singular("boxes"), "box");
        assert_eq!(singular("benches"), "bench");
        assert_eq!(singular("grass"), "grass");
        assert_eq!(singular("bus"), "bus");
        assert_eq!(singular("cat"), "cat");
    }

    #[test]
    fn notes_name_people_as_people() {
        assert_eq!(weak_note("man"), "little sign of a person in this photo");
        assert_eq!(weak_note("dogs"), "little sign of a dog in this photo");
        assert_eq!(
            weak_note("elephant"),
            "little sign of an elephant in this photo"
        );
        assert_eq!(category_of("girls"), Some("person"));
        assert_eq!(category_of("grass"), None);
    }

    #[test]
    fn content_words_are_grounded_in_place() {
        let words: Vec<String> = "a dog runs on the grass with a man"
            .split(' ')
            .map(String::from)
            .collect();
        let g = ground_words(&words, &mut |w| match w {
            "dog" => Some(0.9),
            "man" => Some(0.05),
            _ => None,
        });
        let got: Vec<(usize, &str, bool)> = g
            .iter()
            .map(|g| (g.position, g.word.as_str(), g.weak))
            .collect();
        assert_eq!(
            got,
            [
                (1, "dog", false),
                (2, "runs", false),
                (5, "grass", false),
                (8, "man", true)
            ]
        );
        assert_eq!(g[1].support, UNKNOWN_SUPPORT);
        assert_eq!(
            g[3].note.as_deref(),
            Some("little sign of a person in this photo")
        );
        assert_eq!(g[0].note, None);
    }
}
