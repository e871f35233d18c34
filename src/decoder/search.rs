//! Greedy and beam-search decoding.
//!
//! Both never emit [`PAD`], [`START`] or [`UNK`]: those ids are masked out before choosing.
//! Probabilities are the model's own (softmax over the whole vocabulary, not renormalised
//! after masking).
//!
//! Both also block repeated n-grams ([`SearchOptions::block_ngram`]): a word that would make
//! an n-gram of the caption occur twice is not chosen, so "a man is sitting on a bench on a
//! bench" cannot come out. Beam search ranks finished captions by a length-normalised score
//! ([`SearchOptions::length_alpha`]).
//!
//! Both can be held to a prefix ([`Constraints::prefix`], "start the caption with"): the
//! decoder is fed the prefix's tokens one step at a time, as if it had chosen them, and goes
//! on from there. The prefix is part of [`Caption::tokens`] (so it counts in the n-gram
//! blocking and in the caption's length), but not of its score: [`Caption::log_prob`] and
//! [`Caption::score`] cover the tokens the search chose, not the ones it was given.

use super::cpu::{CpuDecoder, CpuState};
use super::{
    DecodeState, Decoder, DecoderError, END, PAD, Result, START, UNK, check_features, check_tokens,
};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// How greedy decoding and beam search choose words (the defaults were chosen on the Flickr8k
/// dev split with the shipped model; see the README).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchOptions {
    /// No n-gram of this many words occurs twice in a caption (0 turns blocking off).
    pub block_ngram: usize,
    /// Beam search ranks captions by `log_prob / n^length_alpha`, `n` the number of predicted
    /// tokens (words, plus END when the caption ended): 0 ranks by the summed log-probability
    /// (favouring short captions), 1 by the mean per token.
    pub length_alpha: f32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            block_ngram: DEFAULT_BLOCK_NGRAM,
            length_alpha: DEFAULT_LENGTH_ALPHA,
        }
    }
}

impl SearchOptions {
    /// The plain search: no blocking, mean log-probability per token.
    pub fn plain() -> Self {
        SearchOptions {
            block_ngram: 0,
            length_alpha: 1.0,
        }
    }

    /// The length-normalised score of a caption with summed log-probability `log_prob` and
    /// `n` predicted tokens (at least 1 is counted).
    pub fn score(&self, log_prob: f64, n: usize) -> f64 {
        log_prob / (n.max(1) as f64).powf(f64::from(self.length_alpha))
    }

    fn check(&self) -> Result<()> {
        if !self.length_alpha.is_finite() || !(0.0..=4.0).contains(&self.length_alpha) {
            return Err(DecoderError::Input(format!(
                "length_alpha = {} (must be between 0 and 4)",
                self.length_alpha
            )));
        }
        Ok(())
    }
}

/// Default of [`SearchOptions::block_ngram`].
pub const DEFAULT_BLOCK_NGRAM: usize = 2;
/// Default of [`SearchOptions::length_alpha`].
pub const DEFAULT_LENGTH_ALPHA: f32 = 1.0;

/// The tokens that, appended to `tokens`, would make an `n`-gram occur a second time
/// (into `out`, cleared first; `n == 0` blocks nothing). An n-gram whose first `n - 1` words
/// include [`UNK`] (only a given prefix has it: the search never chooses it) repeats nothing,
/// as two unknown words need not be the same word.
pub fn blocked_tokens(tokens: &[u32], n: usize, out: &mut Vec<u32>) {
    out.clear();
    let k = tokens.len();
    if n == 0 || k < n {
        return;
    }
    let prefix = &tokens[k + 1 - n..];
    if prefix.contains(&UNK) {
        return;
    }
    for start in 0..=k - n {
        if tokens[start..start + n - 1] == *prefix {
            out.push(tokens[start + n - 1]);
        }
    }
}

/// A decoded caption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// Word ids, without START/END.
    pub tokens: Vec<u32>,
    /// The probability the model gave each word of `tokens` when it was chosen.
    pub word_probs: Vec<f32>,
    /// Sum of the log-probabilities of every predicted token: the words and, when the caption
    /// ended, the END token.
    pub log_prob: f32,
    /// Length-normalised score: `log_prob / n^alpha` ([`SearchOptions::score`]), where `n` is
    /// the number of predicted tokens (`tokens.len()`, plus one for END when `ended`), at
    /// least 1. Beam search ranks by it.
    pub score: f32,
    /// False when decoding hit `max_len` words before predicting END.
    pub ended: bool,
    /// How many of the first `tokens` were given ([`Constraints::prefix`]) rather than
    /// chosen: their `word_probs` are the model's probabilities for the given tokens, and
    /// they count in neither `log_prob` nor `score`. 0 without a prefix.
    #[serde(default)]
    pub given: usize,
    /// Attention decoders: where the decoder looked for each word of `tokens` (one map of
    /// `cells` weights summing to 1 per word, row-major over the grid). Empty for the other
    /// decoders.
    #[serde(default)]
    pub attention: Vec<Vec<f32>>,
}

fn is_banned(token: usize) -> bool {
    token == PAD as usize || token == START as usize || token == UNK as usize
}

/// Whether `token` may be chosen: not a special id, and not in `blocked` (short).
fn allowed(token: usize, blocked: &[u32]) -> bool {
    !is_banned(token) && (blocked.is_empty() || !blocked.contains(&(token as u32)))
}

#[derive(Clone, Debug, Default)]
struct Hypothesis {
    tokens: Vec<u32>,
    word_probs: Vec<f32>,
    log_prob: f64,
    /// The sum of the [`TokenBias`] terms its tokens took (0 without a bias).
    bias: f64,
    attention: Vec<Vec<f32>>,
    /// How many of `tokens` were given (the prefix), not chosen.
    given: usize,
}

impl Hypothesis {
    /// What the beam ranks partial captions by: the summed log-probability, plus the bias.
    fn ranked(&self) -> f64 {
        if self.bias == 0.0 {
            self.log_prob
        } else {
            self.log_prob + self.bias
        }
    }

    /// Appends a given token (of the prefix) with the model's log-probability `l` for it,
    /// which counts in neither the log-probability nor the score.
    fn push_given(&mut self, token: u32, l: f32, attention: Option<&[f32]>) {
        self.tokens.push(token);
        self.word_probs.push(l.exp());
        if let Some(a) = attention {
            self.attention.push(a.to_vec());
        }
        self.given += 1;
    }

    fn into_caption(self, ended: bool, options: &SearchOptions) -> Caption {
        let n = self.tokens.len() - self.given + usize::from(ended);
        Caption {
            given: self.given,
            score: options.score(self.ranked(), n) as f32,
            log_prob: self.log_prob as f32,
            tokens: self.tokens,
            word_probs: self.word_probs,
            ended,
            attention: self.attention,
        }
    }
}

/// The best allowed token of one row of log-probabilities (lowest id on ties), never one of
/// `blocked`.
fn argmax_allowed(log_probs: &[f32], blocked: &[u32]) -> (u32, f32) {
    let mut best: Option<(usize, f32)> = None;
    for (tok, &lp) in log_probs.iter().enumerate() {
        if !allowed(tok, blocked) || lp.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| lp > b) {
            best = Some((tok, lp));
        }
    }
    match best {
        Some((tok, lp)) => (tok as u32, lp),
        // Only possible with a vocabulary of NaNs: end the caption.
        None => (END, f32::NEG_INFINITY),
    }
}

/// A term added to one token's log-probability when a beam ranks its candidates (grounded
/// decoding: a penalty on a word the photo shows little sign of, a bonus for one the image
/// classifier is sure of). A bonus (`bias > 0`) counts only until the caption has the token;
/// a penalty every time. The words' probabilities stay the model's; [`Caption::score`]
/// includes the terms, [`Caption::log_prob`] does not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBias {
    pub token: u32,
    pub bias: f32,
}

/// What one photo's search is held to besides the [`SearchOptions`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Constraints {
    /// The tokens every caption starts with ("start the caption with"; empty: none). They
    /// are fed to the decoder one a step, whatever it would have chosen; any id below the
    /// vocabulary size may be given, [`UNK`] included (for a word the vocabulary lacks), but
    /// not [`PAD`], [`START`] or [`END`]. They count in the caption's length: a prefix of
    /// `max_len` words or more is the whole caption (it is never cut).
    pub prefix: Vec<u32>,
    /// Token biases of grounded decoding (empty: the plain search).
    pub bias: Vec<TokenBias>,
}

impl Constraints {
    /// Only a prefix.
    pub fn prefix(prefix: Vec<u32>) -> Self {
        Constraints {
            prefix,
            bias: Vec::new(),
        }
    }

    fn check(&self, vocab: usize) -> Result<()> {
        match self
            .prefix
            .iter()
            .find(|&&t| t as usize >= vocab || t == PAD || t == START || t == END)
        {
            Some(t) => Err(DecoderError::Input(format!(
                "prefix token {t} cannot be given (vocabulary of {vocab}; no pad, start or end)"
            ))),
            None => Ok(()),
        }
    }
}

/// The `k` best allowed tokens of one row, best first (lowest id first on ties), never one
/// of `blocked`.
fn top_k_allowed(log_probs: &[f32], k: usize, blocked: &[u32]) -> Vec<(u32, f32)> {
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (tok, &lp) in log_probs.iter().enumerate() {
        if !allowed(tok, blocked) || lp.is_nan() {
            continue;
        }
        if top.len() == k && top.last().is_some_and(|&(_, worst)| lp <= worst) {
            continue;
        }
        // Insert after every entry that is at least as good (keeps lower ids first on ties).
        let pos = top.partition_point(|&(_, v)| v >= lp);
        top.insert(pos, (tok as u32, lp));
        top.truncate(k);
    }
    top
}

fn rows_of(log_probs: &Tensor, vocab: usize) -> Result<Vec<f32>> {
    let flat = log_probs.flatten_all()?.to_vec1::<f32>()?;
    if vocab == 0 || flat.len() % vocab != 0 {
        return Err(DecoderError::Input(format!(
            "decoder returned {} log-probabilities for a vocabulary of {vocab}",
            flat.len()
        )));
    }
    Ok(flat)
}

type Step<S> = (Vec<f32>, Option<Vec<f32>>, S);

/// One decoding step at a time, on candle or on the CPU fast path.
trait Stepper {
    type State;
    fn vocab(&self) -> usize;
    fn start(&self, features: &Tensor) -> Result<Self::State>;
    fn rows(&self, state: &Self::State) -> usize;
    /// Log-probabilities `[rows, vocab]`, flat, the attention weights `[rows, cells]`, flat
    /// (attention decoders only), and the next state.
    fn step(&self, state: &Self::State, tokens: &[u32]) -> Result<Step<Self::State>>;
    fn select(&self, state: &Self::State, rows: &[u32]) -> Result<Self::State>;
    /// Appends the rows of `other` after those of `state`.
    fn append(&self, state: &mut Self::State, other: Self::State) -> Result<()>;
}

struct CandleStepper<'a>(&'a Decoder);

impl Stepper for CandleStepper<'_> {
    type State = DecodeState;
    fn vocab(&self) -> usize {
        self.0.config().vocab_size
    }
    fn start(&self, features: &Tensor) -> Result<DecodeState> {
        self.0.start(features)
    }
    fn rows(&self, state: &DecodeState) -> usize {
        state.batch_size()
    }
    fn step(&self, state: &DecodeState, tokens: &[u32]) -> Result<Step<DecodeState>> {
        let (log_probs, alpha, next) = self.0.step_with_attention(state, tokens)?;
        let alpha = match alpha {
            Some(a) => Some(a.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        Ok((rows_of(&log_probs, self.vocab())?, alpha, next))
    }
    fn select(&self, state: &DecodeState, rows: &[u32]) -> Result<DecodeState> {
        state.select(rows)
    }
    fn append(&self, state: &mut DecodeState, other: DecodeState) -> Result<()> {
        state.append(&other)
    }
}

struct CpuStepper<'a>(&'a CpuDecoder, &'a Decoder);

impl Stepper for CpuStepper<'_> {
    type State = CpuState;
    fn vocab(&self) -> usize {
        self.1.config().vocab_size
    }
    fn start(&self, features: &Tensor) -> Result<CpuState> {
        let f = check_features(features, self.1.config().input_dim())?;
        let rows = f.dim(0)?;
        let values = f.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.0.start(&values, rows))
    }
    fn rows(&self, state: &CpuState) -> usize {
        state.rows()
    }
    fn step(&self, state: &CpuState, tokens: &[u32]) -> Result<Step<CpuState>> {
        if tokens.len() != state.rows() {
            return Err(DecoderError::Input(format!(
                "{} tokens for a state of {} rows",
                tokens.len(),
                state.rows()
            )));
        }
        check_tokens(tokens, self.vocab())?;
        Ok(self.0.step(state, tokens))
    }
    fn select(&self, state: &CpuState, rows: &[u32]) -> Result<CpuState> {
        state.select(rows, self.1.config().hidden_dim)
    }
    fn append(&self, state: &mut CpuState, other: CpuState) -> Result<()> {
        state.append(other)
    }
}

/// Greedy decoding of a batch of images `[B, input_dim]` (or one image `[input_dim]`):
/// at each step the most probable allowed token. At most `max_len` words per caption.
/// Returns one caption per image, in order. Uses the default [`SearchOptions`] (repeated
/// n-grams blocked); [`greedy_with_options`] takes others.
pub fn greedy(model: &Decoder, features: &Tensor, max_len: usize) -> Result<Vec<Caption>> {
    greedy_with_options(model, features, max_len, &SearchOptions::default())
}

/// [`greedy`] with explicit search options.
pub fn greedy_with_options(
    model: &Decoder,
    features: &Tensor,
    max_len: usize,
    options: &SearchOptions,
) -> Result<Vec<Caption>> {
    greedy_with_prefix(model, features, max_len, options, &[])
}

/// [`greedy_with_options`] with every caption starting with `prefix` (see
/// [`Constraints::prefix`]; empty: the same captions as without).
pub fn greedy_with_prefix(
    model: &Decoder,
    features: &Tensor,
    max_len: usize,
    options: &SearchOptions,
    prefix: &[u32],
) -> Result<Vec<Caption>> {
    match model.cpu() {
        Some(cpu) => greedy_with(&CpuStepper(cpu, model), features, max_len, options, prefix),
        None => greedy_with(&CandleStepper(model), features, max_len, options, prefix),
    }
}

fn greedy_with<S: Stepper>(
    model: &S,
    features: &Tensor,
    max_len: usize,
    options: &SearchOptions,
    prefix: &[u32],
) -> Result<Vec<Caption>> {
    if max_len == 0 {
        return Err(DecoderError::Input("max_len must be at least 1".into()));
    }
    options.check()?;
    Constraints::prefix(prefix.to_vec()).check(model.vocab())?;
    let mut blocked = Vec::new();
    let vocab = model.vocab();
    let mut state = model.start(features)?;
    let b = model.rows(&state);
    let mut hyps = vec![Hypothesis::default(); b];
    let mut ended = vec![false; b];
    // `active[r]` is the image of state row `r`; finished captions leave the batch.
    let mut active: Vec<usize> = (0..b).collect();
    let mut tokens = vec![START; b];
    for step in 0..max_len.max(prefix.len()) {
        let (flat, alpha, next) = model.step(&state, &tokens)?;
        let cells = alpha.as_ref().map_or(0, |a| a.len() / active.len().max(1));
        let mut keep = Vec::with_capacity(active.len());
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, lp) in flat.chunks_exact(vocab).enumerate() {
            let image = active[row];
            let hyp = &mut hyps[image];
            if let Some(&tok) = prefix.get(step) {
                let a = alpha.as_ref().map(|a| &a[row * cells..(row + 1) * cells]);
                hyp.push_given(tok, lp[tok as usize], a);
                keep.push(row as u32);
                next_tokens.push(tok);
                continue;
            }
            blocked_tokens(&hyp.tokens, options.block_ngram, &mut blocked);
            let (tok, l) = argmax_allowed(lp, &blocked);
            hyp.log_prob += f64::from(l);
            if tok == END {
                ended[image] = true;
            } else {
                hyp.tokens.push(tok);
                hyp.word_probs.push(l.exp());
                if let Some(a) = &alpha {
                    hyp.attention
                        .push(a[row * cells..(row + 1) * cells].to_vec());
                }
                keep.push(row as u32);
                next_tokens.push(tok);
            }
        }
        if keep.is_empty() {
            break;
        }
        state = if keep.len() == active.len() {
            next
        } else {
            model.select(&next, &keep)?
        };
        active = keep.iter().map(|&r| active[r as usize]).collect();
        tokens = next_tokens;
    }
    Ok(hyps
        .into_iter()
        .zip(ended)
        .map(|(h, e)| h.into_caption(e, options))
        .collect())
}

/// Beam search for one image (`[input_dim]` or `[1, input_dim]`).
///
/// Keeps the `width` best partial captions by summed log-probability; a hypothesis that
/// predicts END leaves the beam as a finished caption and the beam narrows by one, until
/// `width` captions are finished or `max_len` words are reached (the survivors are then
/// returned unfinished). All of the beam's hypotheses go through the decoder as one batch per
/// step. Returns up to `width` captions, distinct token sequences, sorted by
/// [`Caption::score`] (the length-normalised log-probability), best first. With `width == 1`
/// it equals [`greedy`]. Uses the default [`SearchOptions`]; [`beam_search_with_options`]
/// takes others.
pub fn beam_search(
    model: &Decoder,
    feature: &Tensor,
    width: usize,
    max_len: usize,
) -> Result<Vec<Caption>> {
    beam_search_with_options(model, feature, width, max_len, &SearchOptions::default())
}

/// [`beam_search`] with explicit search options.
pub fn beam_search_with_options(
    model: &Decoder,
    feature: &Tensor,
    width: usize,
    max_len: usize,
    options: &SearchOptions,
) -> Result<Vec<Caption>> {
    beam_search_biased(model, feature, width, max_len, options, &[])
}

/// [`beam_search_with_options`] with token biases ([`TokenBias`]; none: the same search).
pub fn beam_search_biased(
    model: &Decoder,
    feature: &Tensor,
    width: usize,
    max_len: usize,
    options: &SearchOptions,
    bias: &[TokenBias],
) -> Result<Vec<Caption>> {
    let constraints = Constraints {
        prefix: Vec::new(),
        bias: bias.to_vec(),
    };
    beam_search_constrained(model, feature, width, max_len, options, &constraints)
}

/// [`beam_search_with_options`] held to `constraints` (a prefix every caption starts with,
/// token biases; the default: the same search). With `width == 1` it equals
/// [`greedy_with_prefix`] with the same prefix (and no biases).
pub fn beam_search_constrained(
    model: &Decoder,
    feature: &Tensor,
    width: usize,
    max_len: usize,
    options: &SearchOptions,
    constraints: &Constraints,
) -> Result<Vec<Caption>> {
    check_one_image(feature, model.config().input_dim())?;
    match model.cpu() {
        Some(cpu) => beam_with(
            CpuStepper(cpu, model),
            feature,
            width,
            max_len,
            options,
            constraints,
        ),
        None => beam_with(
            CandleStepper(model),
            feature,
            width,
            max_len,
            options,
            constraints,
        ),
    }
}

fn beam_with<S: Stepper>(
    model: S,
    feature: &Tensor,
    width: usize,
    max_len: usize,
    options: &SearchOptions,
    constraints: &Constraints,
) -> Result<Vec<Caption>> {
    let mut search = Search::new(model, width, max_len, options)?;
    search.push(0, feature, constraints.clone())?;
    while search.in_flight() > 0 {
        if let Some((_, captions)) = search.step()?.pop() {
            return Ok(captions);
        }
    }
    Err(DecoderError::Input(
        "the beam search ended without captions".into(),
    ))
}

/// One photo's beam inside a [`Search`]: its partial captions (one state row each, in
/// order) and its finished ones.
struct Beam {
    id: usize,
    /// The photo's token biases (empty: the plain search).
    bias: Vec<TokenBias>,
    /// The tokens its captions start with (empty: none); while they are being fed the beam
    /// has one hypothesis.
    prefix: Vec<u32>,
    /// Its most steps: `max_len`, or the prefix's length when that is longer.
    limit: usize,
    alive: Vec<Hypothesis>,
    finished: Vec<Caption>,
    steps: usize,
}

impl Beam {
    /// The photo's captions once its search is over: the finished ones, then (if fewer than
    /// `width` finished) the best unfinished survivors, best first.
    fn into_captions(self, width: usize, options: &SearchOptions) -> Vec<Caption> {
        let mut finished = self.finished;
        if finished.len() < width {
            let mut rest: Vec<Caption> = self
                .alive
                .into_iter()
                .map(|h| h.into_caption(false, options))
                .collect();
            rest.sort_by(|a, b| b.score.total_cmp(&a.score));
            let room = width - finished.len();
            finished.extend(rest.into_iter().take(room));
        }
        finished.sort_by(|a, b| b.score.total_cmp(&a.score));
        finished
    }
}

/// Beam search over many photos at once: every photo in flight has its own beam, and one
/// decoder step advances all of their rows together. Photos whose search ends leave; new
/// ones can join before any step. Each photo's captions are exactly those of searching it
/// alone: the CPU path computes every row independently of the others
/// ([`super::panel::PackedWeights`]), and each beam's choices read only its own rows.
struct Search<S: Stepper> {
    model: S,
    width: usize,
    max_len: usize,
    options: SearchOptions,
    /// The rows of every beam in flight, beam after beam in the order of `beams`.
    state: Option<S::State>,
    beams: Vec<Beam>,
    /// The token each row feeds next.
    last: Vec<u32>,
    blocked: Vec<u32>,
    /// A row's log-probabilities with its beam's biases added (scratch).
    biased: Vec<f32>,
}

impl<S: Stepper> Search<S> {
    fn new(model: S, width: usize, max_len: usize, options: &SearchOptions) -> Result<Self> {
        if width == 0 {
            return Err(DecoderError::Input("beam width must be at least 1".into()));
        }
        if max_len == 0 {
            return Err(DecoderError::Input("max_len must be at least 1".into()));
        }
        options.check()?;
        Ok(Search {
            model,
            width,
            max_len,
            options: *options,
            state: None,
            beams: Vec::new(),
            last: Vec::new(),
            blocked: Vec::new(),
            biased: Vec::new(),
        })
    }

    /// Starts the search of one photo (`feature` one image's decoder input); it takes part
    /// from the next step on.
    fn push(&mut self, id: usize, feature: &Tensor, constraints: Constraints) -> Result<()> {
        constraints.check(self.model.vocab())?;
        let start = self.model.start(feature)?;
        if self.model.rows(&start) != 1 {
            return Err(DecoderError::Input(format!(
                "a beam starts from one image's features, not {}",
                self.model.rows(&start)
            )));
        }
        match self.state.as_mut() {
            Some(state) => self.model.append(state, start)?,
            None => self.state = Some(start),
        }
        let Constraints { prefix, bias } = constraints;
        self.beams.push(Beam {
            id,
            bias,
            limit: self.max_len.max(prefix.len()),
            prefix,
            alive: vec![Hypothesis::default()],
            finished: Vec::with_capacity(self.width),
            steps: 0,
        });
        self.last.push(START);
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.beams.len()
    }

    /// One decoder step for every photo in flight; returns the photos whose search ended,
    /// with their captions (see [`beam_search`]).
    fn step(&mut self) -> Result<Vec<(usize, Vec<Caption>)>> {
        let Some(state) = self.state.take() else {
            return Ok(Vec::new());
        };
        let (flat, alpha, next) = self.model.step(&state, &self.last)?;
        drop(state);
        let vocab = self.model.vocab();
        let rows = self.last.len();
        if flat.len() != rows * vocab {
            return Err(DecoderError::Input(format!(
                "decoder returned {} log-probabilities for {rows} rows of {vocab}",
                flat.len()
            )));
        }
        let cells = alpha.as_ref().map_or(0, |a| a.len() / rows.max(1));
        let mut parents: Vec<u32> = Vec::with_capacity(rows);
        let mut next_last: Vec<u32> = Vec::with_capacity(rows);
        let mut kept = Vec::with_capacity(self.beams.len());
        let mut done = Vec::new();
        let mut row0 = 0;
        for mut beam in std::mem::take(&mut self.beams) {
            let n = beam.alive.len();
            if beam.steps < beam.prefix.len() {
                // Feeding the prefix: one hypothesis, which takes the given token.
                let tok = beam.prefix[beam.steps];
                let l = flat[row0 * vocab + tok as usize];
                let a = alpha.as_ref().map(|a| &a[row0 * cells..(row0 + 1) * cells]);
                for hyp in &mut beam.alive {
                    hyp.push_given(tok, l, a);
                }
                parents.push(row0 as u32);
                next_last.push(tok);
                row0 += n;
                beam.steps += 1;
                if beam.steps >= beam.limit {
                    parents.truncate(parents.len() - 1);
                    next_last.truncate(next_last.len() - 1);
                    let id = beam.id;
                    done.push((id, beam.into_captions(self.width, &self.options)));
                } else {
                    kept.push(beam);
                }
                continue;
            }
            let slots = self.width - beam.finished.len();
            // (ranked total, row within the beam, token, token log-prob, bias taken)
            let mut candidates: Vec<(f64, usize, u32, f32, f32)> = Vec::with_capacity(n * slots);
            for (row, hyp) in beam.alive.iter().enumerate() {
                let lp = &flat[(row0 + row) * vocab..(row0 + row + 1) * vocab];
                blocked_tokens(&hyp.tokens, self.options.block_ngram, &mut self.blocked);
                if beam.bias.is_empty() {
                    for (tok, l) in top_k_allowed(lp, slots, &self.blocked) {
                        candidates.push((hyp.log_prob + f64::from(l), row, tok, l, 0.0));
                    }
                } else {
                    self.biased.clear();
                    self.biased.extend_from_slice(lp);
                    for b in &beam.bias {
                        let t = b.token as usize;
                        if t < vocab && (b.bias < 0.0 || !hyp.tokens.contains(&b.token)) {
                            self.biased[t] += b.bias;
                        }
                    }
                    for (tok, biased) in top_k_allowed(&self.biased, slots, &self.blocked) {
                        let l = lp[tok as usize];
                        candidates.push((
                            hyp.ranked() + f64::from(biased),
                            row,
                            tok,
                            l,
                            biased - l,
                        ));
                    }
                }
            }
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mark = parents.len();
            let mut alive = Vec::with_capacity(slots);
            for &(total, row, tok, l, taken) in candidates.iter().take(slots) {
                let mut hyp = beam.alive[row].clone();
                if beam.bias.is_empty() {
                    hyp.log_prob = total;
                } else {
                    hyp.log_prob += f64::from(l);
                    hyp.bias += f64::from(taken);
                }
                if tok == END {
                    beam.finished.push(hyp.into_caption(true, &self.options));
                } else {
                    hyp.tokens.push(tok);
                    hyp.word_probs.push(l.exp());
                    if let Some(a) = &alpha {
                        let g = row0 + row;
                        hyp.attention.push(a[g * cells..(g + 1) * cells].to_vec());
                    }
                    alive.push(hyp);
                    parents.push((row0 + row) as u32);
                    next_last.push(tok);
                }
            }
            row0 += n;
            beam.alive = alive;
            beam.steps += 1;
            if beam.alive.is_empty()
                || beam.finished.len() >= self.width
                || beam.steps >= beam.limit
            {
                // The photo leaves the batch: its rows are not carried on.
                parents.truncate(mark);
                next_last.truncate(mark);
                let id = beam.id;
                done.push((id, beam.into_captions(self.width, &self.options)));
            } else {
                kept.push(beam);
            }
        }
        self.beams = kept;
        self.last = next_last;
        if !parents.is_empty() {
            self.state = Some(self.model.select(&next, &parents)?);
        }
        Ok(done)
    }
}

enum AnySearch<'a> {
    Cpu(Search<CpuStepper<'a>>),
    Candle(Search<CandleStepper<'a>>),
}

/// Beam search over a stream of photos, many at a time (the many-photo paths: folders,
/// evaluation, calibration): [`BatchSearch::push`] a photo's decoder input, call
/// [`BatchSearch::step`] until it hands the photo's captions back. Keep a few dozen photos
/// in flight (say 16 at beam 3) so that each step's products have enough rows to be
/// compute-bound; push new photos as others finish. Each photo gets exactly the captions
/// [`beam_search_with_options`] gives it alone (with `width == 1`, those of [`greedy`]).
pub struct BatchSearch<'a> {
    search: AnySearch<'a>,
    input_dim: usize,
}

impl<'a> BatchSearch<'a> {
    /// An empty search with beam `width` (1: greedy), at most `max_len` words a caption.
    pub fn new(
        model: &'a Decoder,
        width: usize,
        max_len: usize,
        options: &SearchOptions,
    ) -> Result<Self> {
        let search = match model.cpu() {
            Some(cpu) => AnySearch::Cpu(Search::new(
                CpuStepper(cpu, model),
                width,
                max_len,
                options,
            )?),
            None => AnySearch::Candle(Search::new(CandleStepper(model), width, max_len, options)?),
        };
        Ok(BatchSearch {
            search,
            input_dim: model.config().input_dim(),
        })
    }

    /// Starts searching one photo (`feature`: `[input_dim]` or `[1, input_dim]`); `id` comes
    /// back with its captions.
    pub fn push(&mut self, id: usize, feature: &Tensor) -> Result<()> {
        self.push_biased(id, feature, Vec::new())
    }

    /// [`BatchSearch::push`] with the photo's token biases: its captions are those of
    /// [`beam_search_biased`] with them.
    pub fn push_biased(&mut self, id: usize, feature: &Tensor, bias: Vec<TokenBias>) -> Result<()> {
        let constraints = Constraints {
            prefix: Vec::new(),
            bias,
        };
        self.push_constrained(id, feature, constraints)
    }

    /// [`BatchSearch::push`] held to `constraints` (a prefix, token biases): its captions
    /// are those of [`beam_search_constrained`] with them.
    pub fn push_constrained(
        &mut self,
        id: usize,
        feature: &Tensor,
        constraints: Constraints,
    ) -> Result<()> {
        check_one_image(feature, self.input_dim)?;
        match &mut self.search {
            AnySearch::Cpu(s) => s.push(id, feature, constraints),
            AnySearch::Candle(s) => s.push(id, feature, constraints),
        }
    }

    /// Photos being searched.
    pub fn in_flight(&self) -> usize {
        match &self.search {
            AnySearch::Cpu(s) => s.in_flight(),
            AnySearch::Candle(s) => s.in_flight(),
        }
    }

    /// One decoder step for every photo in flight: the photos whose search ended, with
    /// their captions (up to `width`, distinct, best first), in no particular order.
    pub fn step(&mut self) -> Result<Vec<(usize, Vec<Caption>)>> {
        match &mut self.search {
            AnySearch::Cpu(s) => s.step(),
            AnySearch::Candle(s) => s.step(),
        }
    }

    /// Steps until every photo in flight is done; their captions by id, in no order.
    pub fn finish(&mut self) -> Result<Vec<(usize, Vec<Caption>)>> {
        let mut out = Vec::with_capacity(self.in_flight());
        while self.in_flight() > 0 {
            out.extend(self.step()?);
        }
        Ok(out)
    }
}

/// Beam search of many photos, `batch` in flight at a time: the captions of each, in the
/// order of `features` (each `[input_dim]` or `[1, input_dim]`), exactly those of
/// [`beam_search_with_options`] per photo.
pub fn beam_search_many(
    model: &Decoder,
    features: &[Tensor],
    width: usize,
    max_len: usize,
    options: &SearchOptions,
    batch: usize,
) -> Result<Vec<Vec<Caption>>> {
    let mut search = BatchSearch::new(model, width, max_len, options)?;
    let mut out: Vec<Option<Vec<Caption>>> = vec![None; features.len()];
    let mut next = 0;
    while next < features.len() || search.in_flight() > 0 {
        while next < features.len() && search.in_flight() < batch.max(1) {
            search.push(next, &features[next])?;
            next += 1;
        }
        for (id, captions) in search.step()? {
            out[id] = Some(captions);
        }
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

fn check_one_image(feature: &Tensor, fd: usize) -> Result<()> {
    match feature.dims() {
        [f] if *f == fd => Ok(()),
        [1, f] if *f == fd => Ok(()),
        dims => Err(DecoderError::Input(format!(
            "beam search takes one image's features, [{fd}] or [1, {fd}], not {dims:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::{AttentionConfig, DecoderConfig, DecoderKind};
    use crate::train::{Params, Rng};
    use candle_core::Device;

    fn config(kind: DecoderKind) -> DecoderConfig {
        DecoderConfig {
            kind,
            feature_dim: 12,
            embed_dim: 8,
            hidden_dim: 10,
            vocab_size: 30,
            dropout: 0.0,
            attention: (kind == DecoderKind::Attention).then_some(AttentionConfig {
                rows: 2,
                cols: 3,
                attention_dim: 7,
            }),
        }
    }

    /// A random decoder (fast CPU path), and the same decoder on candle ops.
    fn decoders(kind: DecoderKind, seed: u64) -> [Decoder; 2] {
        let cfg = config(kind);
        let mut p = Params::init(&cfg, seed).unwrap();
        let mut rng = Rng::new(seed + 1);
        for x in p.as_mut_slice() {
            *x += (rng.next_f32() - 0.5) * 0.8;
        }
        let fast = p.to_decoder(&Device::Cpu).unwrap();
        assert!(fast.has_cpu_fast_path());
        let slow = p.to_decoder(&Device::Cpu).unwrap().without_cpu_fast_path();
        [fast, slow]
    }

    fn photos(model: &Decoder, n: usize, seed: u64) -> Vec<Tensor> {
        let dim = model.config().input_dim();
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rng.next_f32() * 2.0).collect();
                Tensor::from_vec(v, (1, dim), &Device::Cpu).unwrap()
            })
            .collect()
    }

    const KINDS: [DecoderKind; 2] = [DecoderKind::Merge, DecoderKind::Attention];
    /// Prefixes of one, two and three words, one with an unknown word.
    const PREFIXES: [&[u32]; 3] = [&[4], &[5, 9], &[6, UNK, 7]];

    /// Checks that `c` starts with `prefix` and that its score covers only the words after
    /// it.
    fn check_prefixed(c: &Caption, prefix: &[u32], options: &SearchOptions) {
        assert_eq!(&c.tokens[..prefix.len()], prefix, "{c:?}");
        assert_eq!(c.given, prefix.len());
        assert_eq!(c.word_probs.len(), c.tokens.len());
        let chosen: f64 = c.word_probs[prefix.len()..]
            .iter()
            .map(|&p| f64::from(p.ln()))
            .sum();
        let end = f64::from(c.log_prob) - chosen;
        if c.ended {
            // What is left is END's log-probability.
            assert!(end <= 1e-4, "{c:?}");
        } else {
            assert!(end.abs() < 1e-3, "{c:?}");
        }
        let n = c.tokens.len() - prefix.len() + usize::from(c.ended);
        let score = options.score(f64::from(c.log_prob), n) as f32;
        assert!((score - c.score).abs() < 1e-4, "{c:?}");
        for t in &c.tokens[prefix.len()..] {
            assert!(!is_banned(*t as usize), "{c:?}");
        }
    }

    #[test]
    fn greedy_and_beam_start_with_the_prefix_for_every_decoder() {
        let options = SearchOptions::default();
        for kind in KINDS {
            for model in decoders(kind, 3) {
                let photos = photos(&model, 3, 11);
                let batch = Tensor::cat(&photos, 0).unwrap();
                for prefix in PREFIXES {
                    let greedy = greedy_with_prefix(&model, &batch, 12, &options, prefix).unwrap();
                    assert_eq!(greedy.len(), 3);
                    for (photo, g) in photos.iter().zip(&greedy) {
                        check_prefixed(g, prefix, &options);
                        let c = Constraints::prefix(prefix.to_vec());
                        let beam =
                            beam_search_constrained(&model, photo, 3, 12, &options, &c).unwrap();
                        assert!(!beam.is_empty());
                        for b in &beam {
                            check_prefixed(b, prefix, &options);
                        }
                        // A beam of one is greedy decoding, prefix and all.
                        let one =
                            beam_search_constrained(&model, photo, 1, 12, &options, &c).unwrap();
                        assert_eq!(one, vec![g.clone()]);
                        if kind == DecoderKind::Attention {
                            assert_eq!(g.attention.len(), g.tokens.len());
                            assert_eq!(beam[0].attention.len(), beam[0].tokens.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_prefix_is_the_plain_search() {
        let options = SearchOptions::default();
        for kind in KINDS {
            for model in decoders(kind, 5) {
                let photos = photos(&model, 2, 13);
                let batch = Tensor::cat(&photos, 0).unwrap();
                assert_eq!(
                    greedy_with_prefix(&model, &batch, 12, &options, &[]).unwrap(),
                    greedy_with_options(&model, &batch, 12, &options).unwrap()
                );
                for photo in &photos {
                    let plain = beam_search_with_options(&model, photo, 3, 12, &options).unwrap();
                    assert!(plain.iter().all(|c| c.given == 0));
                    let c = Constraints::default();
                    assert_eq!(
                        beam_search_constrained(&model, photo, 3, 12, &options, &c).unwrap(),
                        plain
                    );
                }
            }
        }
    }

    #[test]
    fn a_prefix_at_least_max_len_long_is_the_whole_caption() {
        let options = SearchOptions::default();
        for kind in KINDS {
            let [model, _] = decoders(kind, 7);
            let photo = &photos(&model, 1, 17)[0];
            let prefix = [4, 5, 6, 7];
            let g = greedy_with_prefix(&model, photo, 3, &options, &prefix).unwrap();
            let c = Constraints::prefix(prefix.to_vec());
            let b = beam_search_constrained(&model, photo, 3, 3, &options, &c).unwrap();
            for c in [&g[0], &b[0]] {
                assert_eq!(c.tokens, prefix);
                assert!(!c.ended);
                assert_eq!(c.log_prob, 0.0);
            }
            assert_eq!(b.len(), 1);
            // Four words and max_len 5: one word is chosen.
            let g = greedy_with_prefix(&model, photo, 5, &options, &prefix).unwrap();
            assert!(g[0].tokens.len() <= 5 && g[0].tokens.len() >= 4);
        }
    }

    #[test]
    fn a_prefix_of_special_tokens_is_refused() {
        let [model, _] = decoders(DecoderKind::Merge, 9);
        let photo = &photos(&model, 1, 19)[0];
        let options = SearchOptions::default();
        for bad in [END, START, PAD, 30] {
            assert!(greedy_with_prefix(&model, photo, 5, &options, &[4, bad]).is_err());
            let c = Constraints::prefix(vec![bad]);
            assert!(beam_search_constrained(&model, photo, 2, 5, &options, &c).is_err());
        }
    }

    /// The n-gram blocking reads the prefix: after "u v u" the search may not choose "v"
    /// (the bigram "u v" would occur twice), even where the model would. Found among many
    /// prefixes, so that the test exercises a case where the model wants the repeat.
    #[test]
    fn ngram_blocking_spans_the_prefix() {
        let free = SearchOptions {
            block_ngram: 0,
            ..SearchOptions::default()
        };
        let blocking = SearchOptions {
            block_ngram: 2,
            ..SearchOptions::default()
        };
        for kind in KINDS {
            let [model, _] = decoders(kind, 21);
            let photo = &photos(&model, 1, 23)[0];
            let mut exercised = 0;
            for u in 4..30u32 {
                for v in 4..30u32 {
                    let prefix = [u, v, u];
                    let want = greedy_with_prefix(&model, photo, 6, &free, &prefix).unwrap();
                    let got = greedy_with_prefix(&model, photo, 6, &blocking, &prefix).unwrap();
                    let c = Constraints::prefix(prefix.to_vec());
                    let beam = beam_search_constrained(&model, photo, 3, 6, &blocking, &c).unwrap();
                    for c in beam.iter().chain(&got) {
                        assert_ne!(c.tokens.get(3), Some(&v), "{kind:?} {prefix:?} {c:?}");
                    }
                    if want[0].tokens.get(3) == Some(&v) {
                        exercised += 1;
                    }
                }
            }
            assert!(exercised > 0, "{kind:?}: no prefix made the model repeat");
        }
    }

    #[test]
    fn the_batched_search_gives_each_photo_its_prefixed_captions() {
        let options = SearchOptions::default();
        for kind in KINDS {
            for model in decoders(kind, 25) {
                let photos = photos(&model, 7, 27);
                for width in [1, 3] {
                    let mut search = BatchSearch::new(&model, width, 10, &options).unwrap();
                    let mut got: Vec<Option<Vec<Caption>>> = vec![None; photos.len()];
                    let mut next = 0;
                    // Photos join two at a time while others are still being searched.
                    while next < photos.len() || search.in_flight() > 0 {
                        while next < photos.len() && search.in_flight() < 3 {
                            let prefix = PREFIXES[next % 3].to_vec();
                            let c =
                                Constraints::prefix(if next == 4 { Vec::new() } else { prefix });
                            search.push_constrained(next, &photos[next], c).unwrap();
                            next += 1;
                        }
                        for (id, captions) in search.step().unwrap() {
                            got[id] = Some(captions);
                        }
                    }
                    for (i, photo) in photos.iter().enumerate() {
                        let prefix = if i == 4 { &[][..] } else { PREFIXES[i % 3] };
                        let c = Constraints::prefix(prefix.to_vec());
                        let alone = beam_search_constrained(&model, photo, width, 10, &options, &c)
                            .unwrap();
                        let got = got[i].as_ref().unwrap();
                        let what = format!("{kind:?} width {width} photo {i}");
                        if model.has_cpu_fast_path() {
                            // Rows are computed independently: exactly the same.
                            assert_eq!(got, &alone, "{what}");
                        } else {
                            assert_eq!(got.len(), alone.len(), "{what}");
                            for (x, y) in got.iter().zip(&alone) {
                                assert_eq!(x.tokens, y.tokens, "{what}");
                                assert_eq!(x.given, y.given, "{what}");
                                assert!((x.score - y.score).abs() < 1e-4, "{what}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_biased_search_keeps_the_prefix() {
        let options = SearchOptions::default();
        for kind in KINDS {
            let [model, _] = decoders(kind, 29);
            let photo = &photos(&model, 1, 31)[0];
            // A penalty on the prefix's own word and a bonus for another.
            let c = Constraints {
                prefix: vec![5, 9],
                bias: vec![
                    TokenBias {
                        token: 5,
                        bias: -5.0,
                    },
                    TokenBias {
                        token: 12,
                        bias: 3.0,
                    },
                ],
            };
            let captions = beam_search_constrained(&model, photo, 3, 10, &options, &c).unwrap();
            for caption in &captions {
                assert_eq!(&caption.tokens[..2], &[5, 9]);
                assert_eq!(caption.given, 2);
            }
            let mut search = BatchSearch::new(&model, 3, 10, &options).unwrap();
            search.push_constrained(0, photo, c.clone()).unwrap();
            assert_eq!(search.finish().unwrap(), vec![(0, captions)]);
        }
    }

    #[test]
    fn unknown_words_repeat_nothing() {
        let mut out = Vec::new();
        // "<unk> on <unk>": the second unknown word need not be the first.
        blocked_tokens(&[UNK, 6, UNK], 2, &mut out);
        assert!(out.is_empty());
        blocked_tokens(&[4, UNK, 6, 4, UNK], 3, &mut out);
        assert!(out.is_empty());
        blocked_tokens(&[4, UNK, 6, 4], 2, &mut out);
        assert_eq!(out, vec![UNK]);
    }

    #[test]
    fn top_k_masks_and_orders() {
        let lp = [0.0, 0.0, -1.0, 0.0, -0.5, -0.5, -3.0];
        assert_eq!(top_k_allowed(&lp, 2, &[]), vec![(4, -0.5), (5, -0.5)]);
        assert_eq!(
            top_k_allowed(&lp, 3, &[]),
            vec![(4, -0.5), (5, -0.5), (2, -1.0)]
        );
        assert_eq!(top_k_allowed(&lp, 2, &[4]), vec![(5, -0.5), (2, -1.0)]);
        assert_eq!(argmax_allowed(&lp, &[]), (4, -0.5));
        assert_eq!(argmax_allowed(&lp, &[4, 5]), (2, -1.0));
        assert_eq!(argmax_allowed(&[0.0, 0.0, f32::NAN, 0.0], &[]).0, END);
    }

    #[test]
    fn blocked_tokens_finds_every_repeat() {
        let mut out = Vec::new();
        // "a man on a bench on a" + "bench" would repeat "on a bench".
        let toks = [4, 5, 6, 4, 7, 6, 4];
        blocked_tokens(&toks, 3, &mut out);
        assert_eq!(out, vec![7]);
        blocked_tokens(&toks, 2, &mut out);
        assert_eq!(out, vec![5, 7]);
        blocked_tokens(&toks, 0, &mut out);
        assert!(out.is_empty());
        blocked_tokens(&toks[..2], 3, &mut out);
        assert!(out.is_empty());
        blocked_tokens(&toks, 1, &mut out);
        assert_eq!(out, toks.to_vec());
    }
}
