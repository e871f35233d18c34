//! Caption text preparation: cleaning, vocabulary and length statistics.
//!
//! Cleaning follows the well-known Keras tutorial (lowercase, strip punctuation, drop tokens
//! that contain digits or other non-letters). The tutorial also drops one-letter words such as
//! "a", which makes generated captions read badly; [`Cleaning::Natural`] (the default) keeps
//! them, [`Cleaning::Tutorial`] reproduces the tutorial exactly.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How captions are turned into words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cleaning {
    /// Lowercase, strip punctuation, drop tokens with digits; keep one-letter words.
    #[default]
    Natural,
    /// Exactly the tutorial's `cleaning_text`: as `Natural`, and also drop one-letter words.
    Tutorial,
}

impl Cleaning {
    pub fn name(self) -> &'static str {
        match self {
            Cleaning::Natural => "natural",
            Cleaning::Tutorial => "tutorial",
        }
    }
}

impl std::str::FromStr for Cleaning {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "natural" => Ok(Cleaning::Natural),
            "tutorial" => Ok(Cleaning::Tutorial),
            other => Err(format!(
                "unknown cleaning mode '{other}' (expected 'natural' or 'tutorial')"
            )),
        }
    }
}

impl std::fmt::Display for Cleaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Cleans one caption into words.
///
/// As the tutorial: split on whitespace, lowercase, delete ASCII punctuation inside each token
/// (so "three-wheeled" becomes "threewheeled" and "dog's" becomes "dogs", exactly as the
/// tutorial's code does), then drop tokens that are empty or contain anything but letters
/// (digits above all). `Tutorial` mode also drops one-letter words.
pub fn clean_caption(caption: &str, mode: Cleaning) -> Vec<String> {
    let mut words = Vec::new();
    for token in caption.split_whitespace() {
        let word: String = token
            .chars()
            .flat_map(char::to_lowercase)
            .filter(|c| !c.is_ascii_punctuation())
            .collect();
        if word.is_empty() || !word.chars().all(char::is_alphabetic) {
            continue;
        }
        if mode == Cleaning::Tutorial && word.chars().count() <= 1 {
            continue;
        }
        words.push(word);
    }
    words
}

pub const PAD: &str = "<pad>";
pub const START: &str = "<start>";
pub const END: &str = "<end>";
pub const UNK: &str = "<unk>";
/// Special tokens, in id order: `<pad>` = 0, `<start>` = 1, `<end>` = 2, `<unk>` = 3.
pub const SPECIALS: [&str; 4] = [PAD, START, END, UNK];
pub const PAD_ID: u32 = 0;
pub const START_ID: u32 = 1;
pub const END_ID: u32 = 2;
pub const UNK_ID: u32 = 3;

/// Word <-> id mapping built from training captions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    /// id -> word; the first four are the special tokens.
    pub words: Vec<String>,
    /// Minimum number of occurrences a word needed to get its own id.
    pub min_count: usize,
    pub cleaning: Cleaning,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    /// Builds a vocabulary from cleaned captions: every word seen at least `min_count` times,
    /// most frequent first (ties alphabetical), after the four special tokens.
    pub fn build<'a, I>(captions: I, min_count: usize, cleaning: Cleaning) -> Vocab
    where
        I: IntoIterator<Item = &'a [String]>,
    {
        let mut counts: HashMap<&'a str, usize> = HashMap::new();
        for words in captions {
            for w in words {
                *counts.entry(w.as_str()).or_default() += 1;
            }
        }
        let mut kept: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(_, n)| n >= min_count.max(1))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let words = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(kept.into_iter().map(|(w, _)| w.to_string()))
            .collect();
        Vocab::from_words(words, min_count, cleaning)
    }

    /// Rebuilds a vocabulary from its id -> word list (as stored in a model directory).
    pub fn from_words(words: Vec<String>, min_count: usize, cleaning: Cleaning) -> Vocab {
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Vocab {
            words,
            min_count,
            cleaning,
            index,
        }
    }

    /// Restores the word index after deserialisation.
    pub fn reindex(&mut self) {
        self.index = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
    }

    /// Number of ids, special tokens included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Id of a word; unknown words map to `<unk>`.
    pub fn id(&self, word: &str) -> u32 {
        self.index.get(word).copied().unwrap_or(UNK_ID)
    }

    /// Word of an id, if the id is in range.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// Ids of cleaned words (no start/end tokens added).
    pub fn encode(&self, words: &[String]) -> Vec<u32> {
        words.iter().map(|w| self.id(w)).collect()
    }

    /// Words of ids, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .filter(|&&id| id as usize >= SPECIALS.len())
            .filter_map(|&id| self.word(id).map(str::to_string))
            .collect()
    }
}

/// Caption length statistics, in words after cleaning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    pub count: usize,
    pub max: usize,
    pub mean: f64,
    pub p95: usize,
    /// `histogram[n]` = number of captions with `n` words.
    pub histogram: Vec<usize>,
}

impl LengthStats {
    pub fn from_lengths(lengths: impl IntoIterator<Item = usize>) -> LengthStats {
        let mut histogram: Vec<usize> = Vec::new();
        let mut count = 0usize;
        let mut total = 0usize;
        for n in lengths {
            if histogram.len() <= n {
                histogram.resize(n + 1, 0);
            }
            histogram[n] += 1;
            count += 1;
            total += n;
        }
        if count == 0 {
            return LengthStats::default();
        }
        let max = histogram.len() - 1;
        // Nearest-rank 95th percentile: the smallest length L such that at least 95% of the
        // captions have at most L words.
        let rank = (0.95 * count as f64).ceil() as usize;
        let mut seen = 0usize;
        let mut p95 = max;
        for (len, &n) in histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                p95 = len;
                break;
            }
        }
        LengthStats {
            count,
            max,
            mean: total as f64 / count as f64,
            p95,
            histogram,
        }
    }
}

/// Words that carry no content (left out of tags and agreement measures).
pub const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "with", "is", "are", "its", "his",
    "her", "their", "while", "for", "from", "by", "into", "up", "down", "out", "some", "two",
    "three", "one", "other", "another", "each", "it", "this", "that", "there", "who", "as", "be",
    "has", "have", "near", "next", "over", "under", "through", "front", "<unk>", "<start>",
    "<end>", "<pad>",
];

/// The content words of a caption (lower case, no stop words), in order, without repeats.
pub fn content_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words {
        let w = w.to_lowercase();
        if !w.is_empty() && !STOP_WORDS.contains(&w.as_str()) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// Adds a caption's content words to a photo's tags, each once, leaving out a word that is
/// already one of the words of a longer tag ("german" and "shepherd" beside the classifier's
/// "german shepherd").
pub fn add_word_tags(tags: &mut Vec<String>, words: impl IntoIterator<Item = String>) {
    for w in words {
        let covered = tags
            .iter()
            .any(|t| *t == w || (t.contains(' ') && t.split(' ').any(|part| part == w)));
        if !covered {
            tags.push(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_of_a_longer_tag_is_not_a_tag_again() {
        let mut tags = vec!["german shepherd".to_string(), "dog".to_string()];
        let words = content_words("a german shepherd dog runs in the woods".split(' '));
        add_word_tags(&mut tags, words);
        assert_eq!(tags, ["german shepherd", "dog", "runs", "woods"]);
        // Words still come in once each, and a one-word tag is no prefix of another word.
        let mut tags = vec!["cat".to_string()];
        add_word_tags(&mut tags, vec!["cats".into(), "cat".into(), "cats".into()]);
        assert_eq!(tags, ["cat", "cats"]);
    }

    fn words(s: &str, mode: Cleaning) -> String {
        clean_caption(s, mode).join(" ")
    }

    #[test]
    fn cleaning_matches_the_tutorial() {
        let s = "A man riding on a three-wheeled wheelchair .";
        assert_eq!(
            words(s, Cleaning::Tutorial),
            "man riding on threewheeled wheelchair"
        );
        assert_eq!(
            words(s, Cleaning::Natural),
            "a man riding on a threewheeled wheelchair"
        );
        assert_eq!(
            words(
                "Two dogs' 2nd ball, 3 PUPS & a cat's toy!",
                Cleaning::Natural
            ),
            "two dogs ball pups a cats toy"
        );
        assert_eq!(words("   ", Cleaning::Natural), "");
    }

    #[test]
    fn vocab_orders_by_frequency_and_applies_min_count() {
        let caps: Vec<Vec<String>> = ["a dog runs", "a dog sits", "a cat"]
            .iter()
            .map(|s| clean_caption(s, Cleaning::Natural))
            .collect();
        let v = Vocab::build(caps.iter().map(Vec::as_slice), 2, Cleaning::Natural);
        assert_eq!(
            v.words,
            vec!["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
        );
        assert_eq!(v.id("dog"), 5);
        assert_eq!(v.id("cat"), UNK_ID);
        assert_eq!(v.decode(&[1, 4, 5, 3, 2]), vec!["a", "dog"]);
    }

    #[test]
    fn length_stats() {
        let s = LengthStats::from_lengths([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(s.max, 10);
        assert_eq!(s.p95, 10);
        assert!((s.mean - 5.5).abs() < 1e-12);
        let s = LengthStats::from_lengths((0..100).map(|i| i % 20 + 1));
        assert_eq!(s.p95, 19);
        assert_eq!(LengthStats::from_lengths([]).count, 0);
    }
}
