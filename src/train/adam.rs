//! Adam (Kingma & Ba 2015) with exportable state, and global gradient-norm clipping.
//!
//! The update is PyTorch's `torch.optim.Adam` (no weight decay):
//! `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use crate::simd::simd_fn;
use rayon::prelude::*;

/// Elements per parallel chunk: fixed, so sums are reduced in the same order on every run.
const CHUNK: usize = 1 << 15;

/// Optimizer state: moments, step count and learning rate. Everything needed to continue
/// exactly is public or exported through [`Adam::moments`].
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Updates applied so far.
    pub step: u64,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    /// Fresh state for `n` parameters (PyTorch's defaults: betas 0.9, 0.999, eps 1e-8).
    pub fn new(n: usize, lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// Restores a saved state. `None` when the moments' lengths differ.
    pub fn from_parts(lr: f32, step: u64, m: Vec<f32>, v: Vec<f32>) -> Option<Self> {
        if m.len() != v.len() {
            return None;
        }
        Some(Self {
            m,
            v,
            step,
            ..Self::new(0, lr)
        })
    }

    /// First and second moments.
    pub fn moments(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    pub fn len(&self) -> usize {
        self.m.len()
    }

    pub fn is_empty(&self) -> bool {
        self.m.is_empty()
    }

    /// The global L2 norm of a gradient (summed in f64, in a fixed order).
    pub fn grad_norm(grads: &[f32]) -> f64 {
        let partial: Vec<f64> = grads
            .par_chunks(CHUNK)
            .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
            .collect();
        partial.iter().sum::<f64>().sqrt()
    }

    /// The factor that brings a gradient of norm `norm` down to `clip_norm` (1 when it is
    /// already within, or when `clip_norm <= 0` disables clipping).
    pub fn clip_factor(norm: f64, clip_norm: f32) -> f32 {
        if clip_norm > 0.0 && norm > f64::from(clip_norm) {
            (f64::from(clip_norm) / (norm + 1e-6)) as f32
        } else {
            1.0
        }
    }

    /// One update with the gradient multiplied by `grad_scale` (the clipping factor).
    ///
    /// # Panics
    /// If `params`, `grads` and the state differ in length (a caller bug).
    pub fn update(&mut self, params: &mut [f32], grads: &[f32], grad_scale: f32) {
        assert!(
            params.len() == self.m.len() && grads.len() == self.m.len(),
            "Adam: parameter count changed"
        );
        self.step += 1;
        let t = self.step as f64;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let bc1 = 1.0 - f64::from(b1).powf(t);
        let bc2 = 1.0 - f64::from(b2).powf(t);
        let step_size = (f64::from(self.lr) / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let coefs = AdamCoefs {
            grad_scale,
            beta1: b1,
            beta2: b2,
            eps,
            step_size,
            inv_sqrt_bc2,
        };
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| adam_chunk(p, g, m, v, coefs));
    }
}

/// Adam's per-step coefficients.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamCoefs {
    grad_scale: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
}

simd_fn! {
    /// One Adam update of a chunk of parameters.
    fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: AdamCoefs) {
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for j in 0..n {
            let gj = g[j] * k.grad_scale;
            let mj = k.beta1 * m[j] + (1.0 - k.beta1) * gj;
            let vj = k.beta2 * v[j] + (1.0 - k.beta2) * gj * gj;
            m[j] = mj;
            v[j] = vj;
            p[j] -= k.step_size * mj / (vj.sqrt() * k.inv_sqrt_bc2 + k.eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr() {
        let mut adam = Adam::new(3, 0.1);
        let mut p = vec![1.0, 1.0, 1.0];
        adam.update(&mut p, &[2.0, -3.0, 0.0], 1.0);
        // Bias-corrected first step: m_hat / sqrt(v_hat) = sign(g).
        assert!((p[0] - 0.9).abs() < 1e-5);
        assert!((p[1] - 1.1).abs() < 1e-5);
        assert_eq!(p[2], 1.0);
        assert_eq!(adam.step, 1);
    }

    #[test]
    fn clipping_factor() {
        let g = [3.0f32, 4.0];
        let n = Adam::grad_norm(&g);
        assert!((n - 5.0).abs() < 1e-9);
        assert!((Adam::clip_factor(n, 1.0) - 0.2).abs() < 1e-6);
        assert_eq!(Adam::clip_factor(n, 10.0), 1.0);
        assert_eq!(Adam::clip_factor(n, 0.0), 1.0);
    }
}
