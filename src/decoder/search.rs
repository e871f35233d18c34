//! Greedy and beam-search decoding.
//!
//! Both never emit [`PAD`], [`START`] or [`UNK`]: those ids are masked out before choosing.
//! Probabilities are the model's own (softmax over the whole vocabulary, not renormalised
//! after masking).

use super::cpu::{CpuDecoder, CpuState};
use super::{
    DecodeState, Decoder, DecoderError, END, PAD, Result, START, UNK, check_features, check_tokens,
};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

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
    /// Length-normalised score: `log_prob / n`, where `n` is the number of predicted tokens
    /// (`tokens.len()`, plus one for END when `ended`), at least 1. Beam search ranks by it.
    pub score: f32,
    /// False when decoding hit `max_len` words before predicting END.
    pub ended: bool,
}

fn is_banned(token: usize) -> bool {
    token == PAD as usize || token == START as usize || token == UNK as usize
}

#[derive(Clone, Debug, Default)]
struct Hypothesis {
    tokens: Vec<u32>,
    word_probs: Vec<f32>,
    log_prob: f64,
}

impl Hypothesis {
    fn into_caption(self, ended: bool) -> Caption {
        let n = (self.tokens.len() + usize::from(ended)).max(1);
        Caption {
            score: (self.log_prob / n as f64) as f32,
            log_prob: self.log_prob as f32,
            tokens: self.tokens,
            word_probs: self.word_probs,
            ended,
        }
    }
}

/// The best allowed token of one row of log-probabilities (lowest id on ties).
fn argmax_allowed(log_probs: &[f32]) -> (u32, f32) {
    let mut best: Option<(usize, f32)> = None;
    for (tok, &lp) in log_probs.iter().enumerate() {
        if is_banned(tok) || lp.is_nan() {
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

/// The `k` best allowed tokens of one row, best first (lowest id first on ties).
fn top_k_allowed(log_probs: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (tok, &lp) in log_probs.iter().enumerate() {
        if is_banned(tok) || lp.is_nan() {
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

/// One decoding step at a time, on candle or on the CPU fast path.
trait Stepper {
    type State;
    fn vocab(&self) -> usize;
    fn start(&self, features: &Tensor) -> Result<Self::State>;
    fn rows(&self, state: &Self::State) -> usize;
    /// Log-probabilities `[rows, vocab]`, flat, and the next state.
    fn step(&self, state: &Self::State, tokens: &[u32]) -> Result<(Vec<f32>, Self::State)>;
    fn select(&self, state: &Self::State, rows: &[u32]) -> Result<Self::State>;
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
    fn step(&self, state: &DecodeState, tokens: &[u32]) -> Result<(Vec<f32>, DecodeState)> {
        let (log_probs, next) = self.0.step(state, tokens)?;
        Ok((rows_of(&log_probs, self.vocab())?, next))
    }
    fn select(&self, state: &DecodeState, rows: &[u32]) -> Result<DecodeState> {
        state.select(rows)
    }
}

struct CpuStepper<'a>(&'a CpuDecoder, &'a Decoder);

impl Stepper for CpuStepper<'_> {
    type State = CpuState;
    fn vocab(&self) -> usize {
        self.1.config().vocab_size
    }
    fn start(&self, features: &Tensor) -> Result<CpuState> {
        let f = check_features(features, self.1.config().feature_dim)?;
        let rows = f.dim(0)?;
        let values = f.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.0.start(&values, rows))
    }
    fn rows(&self, state: &CpuState) -> usize {
        state.rows()
    }
    fn step(&self, state: &CpuState, tokens: &[u32]) -> Result<(Vec<f32>, CpuState)> {
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
}

/// Greedy decoding of a batch of images `[B, feature_dim]` (or one image `[feature_dim]`):
/// at each step the most probable allowed token. At most `max_len` words per caption.
/// Returns one caption per image, in order.
pub fn greedy(model: &Decoder, features: &Tensor, max_len: usize) -> Result<Vec<Caption>> {
    match model.cpu() {
        Some(cpu) => greedy_with(&CpuStepper(cpu, model), features, max_len),
        None => greedy_with(&CandleStepper(model), features, max_len),
    }
}

fn greedy_with<S: Stepper>(model: &S, features: &Tensor, max_len: usize) -> Result<Vec<Caption>> {
    if max_len == 0 {
        return Err(DecoderError::Input("max_len must be at least 1".into()));
    }
    let vocab = model.vocab();
    let mut state = model.start(features)?;
    let b = model.rows(&state);
    let mut hyps = vec![Hypothesis::default(); b];
    let mut ended = vec![false; b];
    // `active[r]` is the image of state row `r`; finished captions leave the batch.
    let mut active: Vec<usize> = (0..b).collect();
    let mut tokens = vec![START; b];
    for _ in 0..max_len {
        let (flat, next) = model.step(&state, &tokens)?;
        let mut keep = Vec::with_capacity(active.len());
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, lp) in flat.chunks_exact(vocab).enumerate() {
            let image = active[row];
            let (tok, l) = argmax_allowed(lp);
            let hyp = &mut hyps[image];
            hyp.log_prob += f64::from(l);
            if tok == END {
                ended[image] = true;
            } else {
                hyp.tokens.push(tok);
                hyp.word_probs.push(l.exp());
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
        .map(|(h, e)| h.into_caption(e))
        .collect())
}

/// Beam search for one image (`[feature_dim]` or `[1, feature_dim]`).
///
/// Keeps the `width` best partial captions by summed log-probability; a hypothesis that
/// predicts END leaves the beam as a finished caption and the beam narrows by one, until
/// `width` captions are finished or `max_len` words are reached (the survivors are then
/// returned unfinished). All of the beam's hypotheses go through the decoder as one batch per
/// step. Returns up to `width` captions sorted by [`Caption::score`] (log-probability divided
/// by the number of predicted tokens), best first. With `width == 1` it equals [`greedy`].
pub fn beam_search(
    model: &Decoder,
    feature: &Tensor,
    width: usize,
    max_len: usize,
) -> Result<Vec<Caption>> {
    let fd = model.config().feature_dim;
    match feature.dims() {
        [f] if *f == fd => {}
        [1, f] if *f == fd => {}
        dims => {
            return Err(DecoderError::Input(format!(
                "beam search takes one image's features, [{fd}] or [1, {fd}], not {dims:?}"
            )));
        }
    }
    match model.cpu() {
        Some(cpu) => beam_with(&CpuStepper(cpu, model), feature, width, max_len),
        None => beam_with(&CandleStepper(model), feature, width, max_len),
    }
}

fn beam_with<S: Stepper>(
    model: &S,
    feature: &Tensor,
    width: usize,
    max_len: usize,
) -> Result<Vec<Caption>> {
    if width == 0 {
        return Err(DecoderError::Input("beam width must be at least 1".into()));
    }
    if max_len == 0 {
        return Err(DecoderError::Input("max_len must be at least 1".into()));
    }
    let vocab = model.vocab();
    let mut state = model.start(feature)?;
    let mut alive = vec![Hypothesis::default()];
    let mut last = vec![START];
    let mut finished: Vec<Caption> = Vec::with_capacity(width);
    for _ in 0..max_len {
        let slots = width - finished.len();
        let (flat, next) = model.step(&state, &last)?;
        // (total log-prob, parent row, token, token log-prob)
        let mut candidates: Vec<(f64, usize, u32, f32)> = Vec::with_capacity(alive.len() * slots);
        for (row, lp) in flat.chunks_exact(vocab).enumerate() {
            for (tok, l) in top_k_allowed(lp, slots) {
                candidates.push((alive[row].log_prob + f64::from(l), row, tok, l));
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut next_alive = Vec::with_capacity(slots);
        let mut parents = Vec::with_capacity(slots);
        let mut next_last = Vec::with_capacity(slots);
        for &(total, row, tok, l) in candidates.iter().take(slots) {
            let mut hyp = alive[row].clone();
            hyp.log_prob = total;
            if tok == END {
                finished.push(hyp.into_caption(true));
            } else {
                hyp.tokens.push(tok);
                hyp.word_probs.push(l.exp());
                next_alive.push(hyp);
                parents.push(row as u32);
                next_last.push(tok);
            }
        }
        alive = next_alive;
        if alive.is_empty() || finished.len() >= width {
            break;
        }
        state = model.select(&next, &parents)?;
        last = next_last;
    }
    if finished.len() < width {
        let mut rest: Vec<Caption> = alive.into_iter().map(|h| h.into_caption(false)).collect();
        rest.sort_by(|a, b| b.score.total_cmp(&a.score));
        let room = width - finished.len();
        finished.extend(rest.into_iter().take(room));
    }
    finished.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_masks_and_orders() {
        let lp = [0.0, 0.0, -1.0, 0.0, -0.5, -0.5, -3.0];
        assert_eq!(top_k_allowed(&lp, 2), vec![(4, -0.5), (5, -0.5)]);
        assert_eq!(top_k_allowed(&lp, 3), vec![(4, -0.5), (5, -0.5), (2, -1.0)]);
        assert_eq!(argmax_allowed(&lp), (4, -0.5));
        assert_eq!(argmax_allowed(&[0.0, 0.0, f32::NAN, 0.0]).0, END);
    }
}
