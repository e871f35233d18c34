//! Tokenisation used for evaluation (not for training).
//!
//! The COCO evaluation code runs the Stanford PTB tokenizer (Java) and then drops
//! punctuation tokens. We do not depend on Java; instead every caption, hypothesis and
//! reference alike, goes through the same simple rule:
//!
//! 1. lowercase (Unicode-aware, `str::to_lowercase`),
//! 2. delete every punctuation character (see [`is_eval_punctuation`]); the character is
//!    removed, not replaced by a space, so `tri-colored` becomes `tricolored` and
//!    `dog 's` becomes `dog s` (the same as Python's `str.translate` with
//!    `string.punctuation`),
//! 3. split on Unicode whitespace.
//!
//! Every remaining word is kept, including one-letter words (`a`, `s`) and words with
//! digits (`2`, `4x4`). The Python twin of this function lives in
//! `tools/make_eval_vectors.py` (`tokenize`) and the two must stay identical.

/// Punctuation characters outside ASCII that are deleted as well: typographic quotes,
/// dashes, the ellipsis and Spanish/French marks.
const EXTRA_PUNCTUATION: &[char] = &[
    '\u{2018}', // ‘
    '\u{2019}', // ’
    '\u{201A}', // ‚
    '\u{201C}', // “
    '\u{201D}', // ”
    '\u{201E}', // „
    '\u{2013}', // –
    '\u{2014}', // —
    '\u{2026}', // …
    '\u{00AB}', // «
    '\u{00BB}', // »
    '\u{00A1}', // ¡
    '\u{00BF}', // ¿
];

/// Whether `c` is deleted by [`tokenize`]: ASCII punctuation (exactly Python's
/// `string.punctuation`: ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``) or one of a few common
/// non-ASCII quotes and dashes.
pub fn is_eval_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || EXTRA_PUNCTUATION.contains(&c)
}

/// Tokenises a caption for evaluation: lowercase, delete punctuation, split on
/// whitespace, keep every word.
///
/// ```
/// use captioner::eval::tokenize;
/// assert_eq!(
///     tokenize("A dog's ball, and 2 kids!"),
///     vec!["a", "dogs", "ball", "and", "2", "kids"]
/// );
/// ```
pub fn tokenize(s: &str) -> Vec<String> {
    let cleaned: String = s
        .to_lowercase()
        .chars()
        .filter(|&c| !is_eval_punctuation(c))
        .collect();
    cleaned.split_whitespace().map(str::to_owned).collect()
}
