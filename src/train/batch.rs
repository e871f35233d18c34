//! What every engine reads and reports: the data set's image features, a batch's captions, the
//! batch packed by time step, the batch loss, and the check that a batch fits the model.
//!
//! Packing is PyTorch's `PackedSequence`: captions sorted by length (longest first), time step
//! `t` holds only the captions still running at `t` (a prefix of the sorted batch), so no
//! padding position is ever computed.

use crate::decoder::{DecoderConfig, END, START};

/// Errors of the training engines (inputs that do not fit the model).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid training input: {0}")]
    Input(String),
    #[error(transparent)]
    Decoder(#[from] crate::decoder::DecoderError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub(super) type Result<T> = std::result::Result<T, EngineError>;

/// Image features of the whole data set, row-major `[n_images, dim]`.
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> Features<'a> {
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(EngineError::Input(format!(
                "{} feature values do not divide into rows of {dim}",
                data.len()
            )));
        }
        Ok(Self { data, dim })
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// One caption of a batch: its image's row in [`Features`] and its word ids (no START/END).
#[derive(Clone, Copy, Debug)]
pub struct Example<'a> {
    pub image: usize,
    pub words: &'a [u32],
}

/// Summed loss of a batch and the number of predicted tokens it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    pub sum: f64,
    pub tokens: usize,
}

impl BatchLoss {
    /// Mean cross-entropy per token (0 for an empty batch).
    pub fn mean(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.sum / self.tokens as f64
        }
    }
}

/// A batch packed by time step. Packed row `offsets[t] + i` is the `i`-th longest caption at
/// step `t` (`i < steps[t]`); its input token is START or the previous word, its target the
/// word or END. The sorted position `i` is also the caption's row in every per-caption buffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packed {
    /// Batch positions sorted by caption length, longest first (ties in batch order).
    pub order: Vec<usize>,
    /// Captions still running at each time step.
    pub steps: Vec<usize>,
    /// The first packed row of each time step.
    pub offsets: Vec<usize>,
    /// Input and target token of every packed row (time-major).
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

impl Packed {
    pub fn new(batch: &[Example<'_>]) -> Self {
        let mut p = Self::default();
        p.pack(batch);
        p
    }

    /// Packs `batch` into these buffers (reusing their memory).
    pub fn pack(&mut self, batch: &[Example<'_>]) {
        self.order.clear();
        self.steps.clear();
        self.offsets.clear();
        self.inputs.clear();
        self.targets.clear();
        self.order.extend(0..batch.len());
        self.order
            .sort_by(|&x, &y| batch[y].words.len().cmp(&batch[x].words.len()));
        let Some(&longest) = self.order.first() else {
            return;
        };
        let n_steps = batch[longest].words.len() + 1;
        for t in 0..n_steps {
            let running = self
                .order
                .iter()
                .take_while(|&&i| batch[i].words.len() + 1 > t)
                .count();
            self.offsets.push(self.inputs.len());
            self.steps.push(running);
            for &i in &self.order[..running] {
                let w = batch[i].words;
                self.inputs.push(if t == 0 { START } else { w[t - 1] });
                self.targets.push(if t < w.len() { w[t] } else { END });
            }
        }
    }

    /// Number of captions.
    pub fn captions(&self) -> usize {
        self.order.len()
    }

    /// Number of time steps (the longest caption's words and its END).
    pub fn n_steps(&self) -> usize {
        self.steps.len()
    }

    /// Number of packed rows (= predicted tokens).
    pub fn rows(&self) -> usize {
        self.inputs.len()
    }

    /// The packed row of the `i`-th longest caption at step `t`.
    pub fn row(&self, t: usize, i: usize) -> usize {
        self.offsets[t] + i
    }

    /// Captions still running at step `t + 1` (0 after the last step).
    pub fn running_after(&self, t: usize) -> usize {
        self.steps.get(t + 1).copied().unwrap_or(0)
    }
}

/// Checks that `features` fit the decoder and that every example's image and words exist.
pub(super) fn check_input(
    cfg: &DecoderConfig,
    features: Features<'_>,
    batch: &[Example<'_>],
) -> Result<()> {
    if features.dim() != cfg.input_dim() {
        return Err(EngineError::Input(format!(
            "features have {} values per image, the decoder expects {}",
            features.dim(),
            cfg.input_dim()
        )));
    }
    let v = cfg.vocab_size;
    for ex in batch {
        if ex.image >= features.len() {
            return Err(EngineError::Input(format!(
                "image index {} out of range ({} images)",
                ex.image,
                features.len()
            )));
        }
        if let Some(bad) = ex.words.iter().find(|&&w| w as usize >= v) {
            return Err(EngineError::Input(format!(
                "word id {bad} is outside the vocabulary of {v}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_longest_first_with_ties_in_batch_order() {
        let words: [&[u32]; 4] = [&[5, 6], &[7], &[8, 9], &[]];
        let batch: Vec<Example<'_>> = words
            .iter()
            .enumerate()
            .map(|(image, words)| Example { image, words })
            .collect();
        let p = Packed::new(&batch);
        assert_eq!(p.order, vec![0, 2, 1, 3]);
        assert_eq!(p.steps, vec![4, 3, 2]);
        assert_eq!(p.offsets, vec![0, 4, 7]);
        assert_eq!(p.inputs, vec![START, START, START, START, 5, 8, 7, 6, 9]);
        assert_eq!(p.targets, vec![5, 8, 7, END, 6, 9, END, END, END]);
        assert_eq!((p.captions(), p.n_steps(), p.rows()), (4, 3, 9));
        assert_eq!(p.row(2, 1), 8);
        assert_eq!((p.running_after(0), p.running_after(2)), (3, 0));

        let mut again = p.clone();
        again.pack(&[]);
        assert_eq!(again, Packed::default());
    }
}
