//! The seeded random number generator (training and the decoder's random initialisation): initial weights, batch order, dropout
//! masks. Every stream is derived from the run's seed and a purpose ([`Rng::derive`]), so a
//! run is reproducible and a resumed run draws what an uninterrupted one would.

/// SplitMix64: a small, fast, seedable generator (dropout masks, shuffles, initialisation).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A generator for one purpose derived from several numbers (seed, epoch, step, ...).
    pub fn derive(parts: &[u64]) -> Self {
        let mut r = Rng::new(0x5EED);
        for &p in parts {
            r.0 ^= p;
            r.next_u64();
        }
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, n) (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }

    /// Fills `mask` with inverted-dropout factors: 0 with probability `p`, else `1 / (1 - p)`.
    pub(crate) fn dropout_mask(&mut self, mask: &mut [f32], p: f32) {
        let keep = 1.0 / (1.0 - p);
        for m in mask {
            *m = if self.next_f32() < p { 0.0 } else { keep };
        }
    }
}
