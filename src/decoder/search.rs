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
/// (into `out`, cleared first; `n == 0` blocks nothing).
pub fn blocked_tokens(tokens: &[u32], n: usize, out: &mut Vec<u32>) {
    out.clear();
    let k = tokens.len();
    if n == 0 || k < n {
        return;
    }
    let prefix = &tokens[k + 1 - n..];
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

    fn into_caption(self, ended: bool, options: &SearchOptions) -> Caption {
        let n = self.tokens.len() + usize::from(ended);
        Caption {
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
    match model.cpu() {
        Some(cpu) => greedy_with(&CpuStepper(cpu, model), features, max_len, options),
        None => greedy_with(&CandleStepper(model), features, max_len, options),
    }
}

fn greedy_with<S: Stepper>(
    model: &S,
    features: &Tensor,
    max_len: usize,
    options: &SearchOptions,
) -> Result<Vec<Caption>> {
    if max_len == 0 {
        return Err(DecoderError::Input("max_len must be at least 1".into()));
    }
    options.check()?;
    let mut blocked = Vec::new();
    let vocab = model.vocab();
    let mut state = model.start(features)?;
    let b = model.rows(&state);
    let mut hyps = vec![Hypothesis::default(); b];
    let mut ended = vec![false; b];
    // `active[r]` is the image of state row `r`; finished captions leave the batch.
    let mut active: Vec<usize> = (0..b).collect();
    let mut tokens = vec![START; b];
    for _ in 0..max_len {
        let (flat, alpha, next) = model.step(&state, &tokens)?;
        let cells = alpha.as_ref().map_or(0, |a| a.len() / active.len().max(1));
        let mut keep = Vec::with_capacity(active.len());
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, lp) in flat.chunks_exact(vocab).enumerate() {
            let image = active[row];
            let hyp = &mut hyps[image];
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
    check_one_image(feature, model.config().input_dim())?;
    match model.cpu() {
        Some(cpu) => beam_with(
            CpuStepper(cpu, model),
            feature,
            width,
            max_len,
            options,
            bias,
        ),
        None => beam_with(CandleStepper(model), feature, width, max_len, options, bias),
    }
}

fn beam_with<S: Stepper>(
    model: S,
    feature: &Tensor,
    width: usize,
    max_len: usize,
    options: &SearchOptions,
    bias: &[TokenBias],
) -> Result<Vec<Caption>> {
    let mut search = Search::new(model, width, max_len, options)?;
    search.push(0, feature, bias.to_vec())?;
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
    fn push(&mut self, id: usize, feature: &Tensor, bias: Vec<TokenBias>) -> Result<()> {
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
        self.beams.push(Beam {
            id,
            bias,
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
                || beam.steps >= self.max_len
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
        check_one_image(feature, self.input_dim)?;
        match &mut self.search {
            AnySearch::Cpu(s) => s.push(id, feature, bias),
            AnySearch::Candle(s) => s.push(id, feature, bias),
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
