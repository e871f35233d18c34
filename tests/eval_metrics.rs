//! Tests of the evaluation metrics (src/eval/): hand-computed cases, then agreement with
//! the reference implementation (pycocoevalcap 1.2) on the vectors in
//! tests/fixtures/eval_vectors.json, made by tools/make_eval_vectors.py.

use captioner::eval::{
    Scores, bleu_scores, cider_d, cider_d_scores, corpus_bleu, evaluate, tokenize,
};

fn toks(s: &str) -> Vec<String> {
    tokenize(s)
}

fn refs(rs: &[&str]) -> Vec<Vec<String>> {
    rs.iter().map(|r| tokenize(r)).collect()
}

/// `a` and `b` agree to `rel` relative (exact zeros must be exact).
fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, rel: f64) {
    assert!(
        close(actual, expected, rel),
        "actual {actual:e} vs expected {expected:e} (relative {rel:e})"
    );
}

// ---------------------------------------------------------------------------------------
// Tokenisation
// ---------------------------------------------------------------------------------------

#[test]
fn tokenize_lowercases_deletes_punctuation_keeps_every_word() {
    assert_eq!(
        tokenize("A dog's ball, and 2 kids!"),
        vec!["a", "dogs", "ball", "and", "2", "kids"]
    );
    // Punctuation is deleted, not turned into a space; one-letter words stay.
    assert_eq!(
        tokenize("A tri-colored dog 's toy ."),
        vec!["a", "tricolored", "dog", "s", "toy"]
    );
    // Any whitespace separates; runs of it and stray punctuation make no empty words.
    assert_eq!(
        tokenize("  Two\tdogs\n play -- in 4x4 ... "),
        vec!["two", "dogs", "play", "in", "4x4"]
    );
    // Typographic quotes and dashes go too; non-ASCII letters are kept and lowercased.
    assert_eq!(
        tokenize("\u{201C}Café\u{201D} \u{2014} ÉTÉ\u{2019}s"),
        vec!["café", "étés"]
    );
    assert!(tokenize("").is_empty());
    assert!(tokenize(" .,!? ").is_empty());
}

// ---------------------------------------------------------------------------------------
// BLEU, by hand
// ---------------------------------------------------------------------------------------

/// One hypothesis, two references.
///
/// hyp  = the cat sat on the mat            (6 words)
/// ref1 = the cat is on the mat             (6 words)
/// ref2 = there is a cat on the mat         (7 words)
///
/// Closest reference length to 6 is 6, so no brevity penalty (up to the 1e-9 constants).
/// 1-grams: the x2 (max in one ref: 2, ref1), cat, sat (0), on, mat -> 5 of 6.
/// 2-grams: the cat (1), cat sat (0), sat on (0), on the (1), the mat (1) -> 3 of 5.
/// 3-grams: the cat sat, cat sat on, sat on the (0 each), on the mat (1) -> 1 of 4.
/// 4-grams: the cat sat on, cat sat on the, sat on the mat -> 0 of 3.
///
/// BLEU-1 = 5/6
/// BLEU-2 = (5/6 * 3/5)^(1/2)       = 0.5^(1/2)  = 0.70710678...
/// BLEU-3 = (5/6 * 3/5 * 1/4)^(1/3) = 0.125^(1/3) = 0.5
/// BLEU-4 = (0.125 * (0 + 1e-15) / (3 + 1e-9))^(1/4) = (1e-15 / 24)^(1/4) = 8.034e-5:
///          not 0, because of the reference's tiny constant.
#[test]
fn bleu_one_hypothesis_two_references_by_hand() {
    let b = corpus_bleu(
        &[toks("the cat sat on the mat")],
        &[refs(&[
            "the cat is on the mat",
            "there is a cat on the mat",
        ])],
    );
    assert_close(b[0], 5.0 / 6.0, 1e-9);
    assert_close(b[1], 0.5_f64.sqrt(), 1e-9);
    assert_close(b[2], 0.5, 1e-9);
    assert_close(b[3], (1e-15_f64 / 24.0).powf(0.25), 1e-6);
    assert!(b[3] > 8.0e-5 && b[3] < 8.1e-5);
}

/// A perfect match: every precision is 1 and the lengths are equal. The constants make
/// ratio = (7 + 1e-15) / (7 + 1e-9) a hair under 1, so the score is 1 - 1.4e-10, not
/// exactly 1.
#[test]
fn bleu_perfect_match_is_one() {
    let s = "a man in a red shirt climbs";
    let b = corpus_bleu(&[toks(s)], &[refs(&[s, "someone climbs a rock"])]);
    for x in b {
        assert_close(x, 1.0, 1e-9);
        assert!(x <= 1.0);
    }
}

/// Too short: hyp = "a dog runs" (3 words), ref = "a dog runs on the grass" (6 words).
/// Every 1-, 2- and 3-gram matches (3/3, 2/2, 1/1); there are no 4-grams at all, so
/// p4 = (0 + 1e-15) / (0 + 1e-9) = 1e-6.
/// Brevity penalty = exp(1 - 6/3) = exp(-1) = 0.36788.
/// BLEU-1..3 = exp(-1); BLEU-4 = exp(-1) * (1e-6)^(1/4) = exp(-1) * 0.0316228.
#[test]
fn bleu_brevity_penalty() {
    let b = corpus_bleu(&[toks("a dog runs")], &[refs(&["a dog runs on the grass"])]);
    let bp = (-1.0_f64).exp();
    assert_close(b[0], bp, 1e-9);
    assert_close(b[1], bp, 1e-9);
    assert_close(b[2], bp, 1e-9);
    assert_close(b[3], bp * 1e-6_f64.powf(0.25), 1e-9);
}

/// Closest reference length, ties to the shorter one: a 4-word hypothesis with
/// references of 3 and 5 words uses 3, so there is no brevity penalty (with 5 it would be
/// exp(1 - 5/4) = 0.7788). All four words are in the 5-word reference.
#[test]
fn bleu_closest_reference_length_tie_goes_to_shorter() {
    let b = corpus_bleu(
        &[toks("dog runs on grass")],
        &[refs(&["dog runs fast", "a dog runs on grass"])],
    );
    assert_close(b[0], 1.0, 1e-9);
}

/// The corpus score pools counts; it is not the mean of sentence scores.
/// Image A: hyp "a a a", ref "a": clipped 1 of 3; testlen 3, reflen 1.
/// Image B: hyp "b c", ref "b c": 2 of 2; testlen 2, reflen 2.
/// Corpus BLEU-1 = (1 + 2) / (3 + 2) = 0.6 (testlen 5 > reflen 3: no penalty), whereas
/// the mean of the sentence BLEU-1s is (1/3 + 1) / 2 = 0.667.
#[test]
fn bleu_corpus_pools_counts() {
    let s = bleu_scores(
        &[toks("a a a"), toks("b c")],
        &[refs(&["a"]), refs(&["b c"])],
    );
    assert_close(s.corpus[0], 0.6, 1e-9);
    assert_eq!(s.per_sentence.len(), 2);
    assert_close(s.per_sentence[0][0], 1.0 / 3.0, 1e-9);
    assert_close(s.per_sentence[1][0], 1.0, 1e-9);
}

#[test]
fn bleu_degenerate_inputs_do_not_panic() {
    // Empty set: the reference formula itself gives 0 (ratio 1e-6 -> exp(1 - 1e6) = 0).
    assert_eq!(corpus_bleu(&[], &[]), [0.0; 4]);
    // A hypothesis with no words scores 0.
    assert_eq!(corpus_bleu(&[vec![]], &[refs(&["a dog"])]), [0.0; 4]);
    // An image with no references: its words are all wrong guesses.
    let b = corpus_bleu(&[toks("a dog")], &[vec![]]);
    assert!(b.iter().all(|x| x.is_finite() && *x < 1e-6));
    // Mismatched lengths: only the pairs are evaluated.
    let b = corpus_bleu(
        &[toks("a dog runs"), toks("extra")],
        &[refs(&["a dog runs"])],
    );
    assert_close(b[0], 1.0, 1e-9);
}

// ---------------------------------------------------------------------------------------
// CIDEr-D, by hand
// ---------------------------------------------------------------------------------------

/// Two images, N = 2, so the weight of an n-gram is tf * (ln 2 - ln max(1, df)).
///
/// image 1: hyp "a dog",  ref "a dog"
/// image 2: hyp "a cat",  ref "a bird"
///
/// df over the references: "a" 2; "dog", "a dog", "bird", "a bird" 1 each.
/// Weights: "a" -> ln2 - ln2 = 0; every other n-gram (df 1, or 0 -> max(1, 0) = 1) -> ln 2.
///
/// image 1, n=1: hyp (a:0, dog:ln2), ref the same:
///   sum min(h,r)*r = ln2^2, norms ln2 and ln2 -> 1.
/// n=2: "a dog" ln2 both -> 1. n=3, n=4: no n-grams -> 0.
/// Bigram counts 1 and 1 -> delta 0 -> penalty 1.
/// Score = 10 * mean(1, 1, 0, 0) / 1 reference = 5.
///
/// image 2, n=1: hyp (a:0, cat:ln2), ref (a:0, bird:ln2): min(0,0)*0 + min(ln2, 0)*0 = 0.
/// n=2: "a cat" not in ref -> 0. Score 0.
///
/// Corpus CIDEr-D = (5 + 0) / 2 = 2.5.
#[test]
fn cider_d_two_images_by_hand() {
    let hyps = [toks("a dog"), toks("a cat")];
    let rs = [refs(&["a dog"]), refs(&["a bird"])];
    let s = cider_d_scores(&hyps, &rs);
    assert_close(s.per_image[0], 5.0, 1e-12);
    assert_eq!(s.per_image[1], 0.0);
    assert_close(s.corpus, 2.5, 1e-12);
    assert_close(cider_d(&hyps, &rs), 2.5, 1e-12);
}

/// The clipping and the length penalty. As above but image 1's hypothesis is
/// "a dog runs" (ref still "a dog"); df is unchanged (it only looks at references).
///
/// n=1: hyp (a:0, dog:ln2, runs:ln2), norm sqrt(2)*ln2; ref (a:0, dog:ln2), norm ln2.
///   sum = ln2*ln2 ("runs" is missing from the ref: min(ln2, 0) * 0 = 0)
///   -> ln2^2 / (sqrt2 ln2 * ln2) = 1/sqrt2.
/// n=2: hyp ("a dog":ln2, "dog runs":ln2), ref ("a dog":ln2) -> 1/sqrt2 likewise.
/// n=3: hyp "a dog runs", ref has no 3-grams (norm 0, no division) -> 0. n=4: 0.
/// Bigram counts 2 and 1 -> delta 1 -> penalty exp(-1/72).
/// Score = 10 * (2/sqrt2) * exp(-1/72) / 4 = 10 * sqrt2/4 * exp(-1/72) = 3.48676...
/// Corpus = score / 2.
#[test]
fn cider_d_length_penalty_by_hand() {
    let hyps = [toks("a dog runs"), toks("a cat")];
    let rs = [refs(&["a dog"]), refs(&["a bird"])];
    let s = cider_d_scores(&hyps, &rs);
    let expected = 10.0 * 2.0_f64.sqrt() / 4.0 * (-1.0_f64 / 72.0).exp();
    assert_close(s.per_image[0], expected, 1e-12);
    assert!((s.per_image[0] - 3.48676).abs() < 1e-5);
    assert_close(s.corpus, expected / 2.0, 1e-12);
}

/// Clipping: repeating a matching word does not earn more than the reference has.
/// Image 1: hyp "dog dog dog" vs ref "dog". Weight of "dog" = ln 2 per occurrence
/// (df 1, N = 2). Hyp vector dog:3ln2, ref dog:ln2: sum = min(3ln2, ln2)*ln2 = ln2^2,
/// norms 3ln2 and ln2 -> 1/3. Bigram counts 2 vs 0 -> penalty exp(-4/72).
/// Score = 10 * (1/3) * exp(-4/72) / 4 (only n=1 is non-zero).
#[test]
fn cider_d_clips_repeated_words() {
    let hyps = [toks("dog dog dog"), toks("cat")];
    let rs = [refs(&["dog"]), refs(&["bird"])];
    let s = cider_d_scores(&hyps, &rs);
    let expected = 10.0 / 3.0 * (-4.0_f64 / 72.0).exp() / 4.0;
    assert_close(s.per_image[0], expected, 1e-12);
}

/// With a single image ln N = ln 1 = 0 zeroes every weight: CIDEr-D is 0 even for a
/// perfect match (the reference behaves the same). CIDEr-D is a corpus metric.
#[test]
fn cider_d_single_image_is_zero() {
    let s = "a dog runs on the grass";
    assert_eq!(cider_d(&[toks(s)], &[refs(&[s])]), 0.0);
}

#[test]
fn cider_d_degenerate_inputs_do_not_panic() {
    assert_eq!(cider_d(&[], &[]), 0.0);
    // No reference has a word (Python raises): 0.
    let s = cider_d_scores(&[toks("a dog"), toks("cat")], &[refs(&[""]), refs(&["."])]);
    assert_eq!(s.corpus, 0.0);
    assert_eq!(s.per_image, vec![0.0, 0.0]);
    // An image without references scores 0 and counts; the other image is unaffected
    // apart from N (here N = 3, so weights are ln 3 - ...).
    let s = cider_d_scores(
        &[toks("a dog"), toks("a cat"), toks("a bird")],
        &[refs(&["a dog"]), refs(&["a cat"]), vec![]],
    );
    assert_eq!(s.per_image.len(), 3);
    assert_eq!(s.per_image[2], 0.0);
    assert!(s.per_image[0] > 0.0 && s.corpus.is_finite());
    // Empty hypothesis: 0.
    let s = cider_d_scores(
        &[vec![], toks("a cat")],
        &[refs(&["a dog"]), refs(&["a cat"])],
    );
    assert_eq!(s.per_image[0], 0.0);
    // Mismatched lengths: only the pairs are evaluated.
    let a = cider_d(
        &[toks("a dog"), toks("a cat")],
        &[refs(&["a dog"]), refs(&["a bird"])],
    );
    let b = cider_d(
        &[toks("a dog"), toks("a cat"), toks("extra")],
        &[refs(&["a dog"]), refs(&["a bird"])],
    );
    assert_eq!(a, b);
}

#[test]
fn evaluate_tokenises_raw_strings() {
    let hyps = vec!["A dog runs.".to_string(), "A cat!".to_string()];
    let rs = vec![vec!["a dog runs".to_string()], vec!["A bird.".to_string()]];
    let s: Scores = evaluate(&hyps, &rs);
    let ht = [toks("a dog runs"), toks("a cat")];
    let rt = [refs(&["a dog runs"]), refs(&["a bird"])];
    assert_eq!(s.bleu, corpus_bleu(&ht, &rt));
    assert_eq!(s.cider_d, cider_d(&ht, &rt));
    assert_eq!(
        evaluate(&[], &[]),
        Scores {
            bleu: [0.0; 4],
            cider_d: 0.0
        }
    );
}

// ---------------------------------------------------------------------------------------
// Agreement with pycocoevalcap
// ---------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    hyps: Vec<String>,
    refs: Vec<Vec<String>>,
    hyp_tokens: Vec<Vec<String>>,
    ref_tokens: Vec<Vec<Vec<String>>>,
    bleu: [f64; 4],
    bleu_per_sentence: Vec<[f64; 4]>,
    cider_d: f64,
    cider_d_per_image: Vec<f64>,
}

fn load_vectors() -> Vectors {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eval_vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

const REL: f64 = 1e-9;

#[test]
fn matches_pycocoevalcap_reference_vectors() {
    let vectors = load_vectors();
    assert!(vectors.cases.len() >= 30, "too few cases");
    let mut images = 0;
    for case in &vectors.cases {
        let name = &case.name;
        images += case.hyps.len();

        // Our tokenizer agrees with the Python twin that fed the reference scorers.
        let hyp_tokens: Vec<Vec<String>> = case.hyps.iter().map(|h| tokenize(h)).collect();
        let ref_tokens: Vec<Vec<Vec<String>>> = case
            .refs
            .iter()
            .map(|rs| rs.iter().map(|r| tokenize(r)).collect())
            .collect();
        assert_eq!(hyp_tokens, case.hyp_tokens, "{name}: hypothesis tokens");
        assert_eq!(ref_tokens, case.ref_tokens, "{name}: reference tokens");

        let b = bleu_scores(&hyp_tokens, &ref_tokens);
        for k in 0..4 {
            assert!(
                close(b.corpus[k], case.bleu[k], REL),
                "{name}: BLEU-{} {:e} vs python {:e}",
                k + 1,
                b.corpus[k],
                case.bleu[k]
            );
        }
        assert_eq!(b.per_sentence.len(), case.bleu_per_sentence.len(), "{name}");
        for (i, (ours, theirs)) in b
            .per_sentence
            .iter()
            .zip(&case.bleu_per_sentence)
            .enumerate()
        {
            for k in 0..4 {
                assert!(
                    close(ours[k], theirs[k], REL),
                    "{name}: image {i} BLEU-{} {:e} vs python {:e}",
                    k + 1,
                    ours[k],
                    theirs[k]
                );
            }
        }

        let c = cider_d_scores(&hyp_tokens, &ref_tokens);
        assert!(
            close(c.corpus, case.cider_d, REL),
            "{name}: CIDEr-D {:e} vs python {:e}",
            c.corpus,
            case.cider_d
        );
        assert_eq!(c.per_image.len(), case.cider_d_per_image.len(), "{name}");
        for (i, (ours, theirs)) in c.per_image.iter().zip(&case.cider_d_per_image).enumerate() {
            assert!(
                close(*ours, *theirs, REL),
                "{name}: image {i} CIDEr-D {ours:e} vs python {theirs:e}"
            );
        }

        // And the one-call API on raw strings gives the same corpus scores.
        let s = evaluate(&case.hyps, &case.refs);
        assert_eq!(s.bleu, b.corpus, "{name}");
        assert_eq!(s.cider_d, c.corpus, "{name}");
    }
    assert!(images > 300, "too few images: {images}");
}
