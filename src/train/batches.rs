//! The deterministic order of training batches.

use crate::rng::Rng;

/// Captions per sorting pool, in batches: captions are shuffled, then sorted by length within
/// pools of this many batches, so a batch holds captions of nearly equal length (little
/// recurrent work on short tails) while batch contents still change every epoch.
pub const POOL_BATCHES: usize = 50;

/// Number of batches of an epoch.
pub fn steps_per_epoch(n_captions: usize, batch_size: usize) -> usize {
    n_captions.div_ceil(batch_size.max(1))
}

/// The batches of epoch `epoch` (0-based) as indices into the training captions, a pure
/// function of (`lengths`, `batch_size`, `seed`, `epoch`): a resumed run rebuilds the same
/// order. All batches are full except possibly one.
pub fn epoch_batches(
    lengths: &[usize],
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = Rng::derive(&[seed, epoch as u64, 0xBA7C4]);
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut idx);
    let mut batches = Vec::with_capacity(steps_per_epoch(lengths.len(), batch_size));
    for pool in idx.chunks_mut(batch_size * POOL_BATCHES) {
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_caption_once_and_is_reproducible() {
        let lengths: Vec<usize> = (0..1000).map(|i| 1 + (i * 7919) % 30).collect();
        let a = epoch_batches(&lengths, 64, 7, 3);
        let b = epoch_batches(&lengths, 64, 7, 3);
        let c = epoch_batches(&lengths, 64, 7, 4);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), steps_per_epoch(1000, 64));
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(a.iter().filter(|b| b.len() != 64).count(), 1);
    }
}
