//! The decoders' per-step products `dst += a W` on weights packed once into column panels.
//!
//! Decoding multiplies a few rows (one photo's beam) or a few dozen (many photos' beams at
//! once) by the same weight matrices at every step. [`PackedWeights`] stores `W` (`k x n`)
//! as panels of [`PANEL`] columns, each panel's `k` rows contiguous, so a product streams the
//! weights once, front to back, whatever the number of rows; a block of up to [`BLOCK_ROWS`]
//! rows keeps its sums in registers over the whole panel, so with many rows each weight read
//! from memory feeds several multiply-adds (the product becomes compute-bound, as gemm's
//! kernels are), and with a beam's three rows it is as memory-bound as reading the weights.
//!
//! **Every row's result depends only on that row**: element `(r, j)` is
//! `dst[r, j] + (sum over i, in order, of a[r, i] * W[i, j])`, whatever the number of rows,
//! the row's position in its block, or the number of threads. That is what makes a photo's
//! captions the same when it is decoded alone or among many others (the batched beam search
//! relies on it; `tests/decoder_search.rs` checks it). gemm does not promise this (it picks
//! kernels and blockings by shape), which is why decoding does not use it.

use crate::simd::simd_fn;

/// Columns per panel: two AVX2 vectors (one AVX-512 vector).
pub(crate) const PANEL: usize = 16;

/// Rows whose sums stay in registers together (6 rows x 2 AVX2 vectors: 12 of the 16
/// registers, the rest for the weights and the broadcast input).
pub(crate) const BLOCK_ROWS: usize = 6;

/// Weights (`k * n`) from which a product is split over two threads (by panels).
const SPLIT_WEIGHTS: usize = 256 * 1024;

/// A `k x n` weight matrix packed into panels of [`PANEL`] columns (the last one padded
/// with zeros).
#[derive(Clone, Debug)]
pub(crate) struct PackedWeights {
    k: usize,
    n: usize,
    /// `ceil(n / PANEL)` panels of `k * PANEL` values, row after row.
    panels: Vec<f32>,
}

impl PackedWeights {
    /// Packs a row-major `k x n` matrix (the layout `x W` takes: one row per input).
    ///
    /// # Panics
    /// If `w` holds fewer than `k * n` values (a bug in the caller: shapes are checked when
    /// the weights are loaded).
    pub(crate) fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert!(w.len() >= k * n, "PackedWeights: fewer values than k x n");
        let count = n.div_ceil(PANEL);
        let mut panels = vec![0.0f32; count * k * PANEL];
        for (p, panel) in panels.chunks_exact_mut(k * PANEL).enumerate() {
            let j0 = p * PANEL;
            let width = PANEL.min(n - j0);
            for (i, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
                dst[..width].copy_from_slice(&w[i * n + j0..i * n + j0 + width]);
            }
        }
        PackedWeights { k, n, panels }
    }

    /// Inputs per row.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Outputs per row.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// `dst += a W` for row-major `a` (`m x k`) and `dst` (`m x n`).
    ///
    /// # Panics
    /// If a slice is shorter than its shape says (a bug in the caller).
    pub(crate) fn product(&self, dst: &mut [f32], a: &[f32], m: usize) {
        let (k, n) = (self.k, self.n);
        assert!(
            dst.len() >= m * n && a.len() >= m * k,
            "PackedWeights::product: a slice is shorter than its shape"
        );
        if m == 0 || n == 0 {
            return;
        }
        let count = n.div_ceil(PANEL);
        if k * n < SPLIT_WEIGHTS || count < 2 || rayon::current_num_threads() < 2 {
            panel_product(dst, a, m, k, n, &self.panels, 0, count);
            return;
        }
        // Two threads, each on half of the panels, into buffers of their own (zeroed, so
        // `0 + sum` is exactly the sum), added into `dst` afterwards: the same arithmetic
        // as one thread.
        let half = count / 2;
        let split = half * PANEL;
        let (left_n, right_n) = (split, n - split);
        let mut left = vec![0.0f32; m * left_n];
        let mut right = vec![0.0f32; m * right_n];
        rayon::join(
            || panel_product(&mut left, a, m, k, left_n, &self.panels, 0, half),
            || {
                panel_product(
                    &mut right,
                    a,
                    m,
                    k,
                    right_n,
                    &self.panels[half * k * PANEL..],
                    0,
                    count - half,
                )
            },
        );
        for r in 0..m {
            let row = &mut dst[r * n..(r + 1) * n];
            let (dl, dr) = row.split_at_mut(split);
            for (d, s) in dl.iter_mut().zip(&left[r * left_n..(r + 1) * left_n]) {
                *d += s;
            }
            for (d, s) in dr.iter_mut().zip(&right[r * right_n..(r + 1) * right_n]) {
                *d += s;
            }
        }
    }
}

/// The sums of one block of `R` rows (`rows[r]` the `k` inputs of row `r`) over one panel
/// (`k` rows of [`PANEL`] weights). Written so that the compiler keeps the `R x PANEL` sums
/// in vector registers for the whole panel (6 x 2 AVX2 registers) and broadcasts each row's
/// input: a multiply and an add per weight and row, in the order of `i`.
#[inline(always)]
fn block_sums<const R: usize>(rows: [&[f32]; R], panel: &[[f32; PANEL]]) -> [[f32; PANEL]; R] {
    let k = panel.len();
    let rows: [&[f32]; R] = std::array::from_fn(|r| &rows[r][..k]);
    let mut acc = [[0.0f32; PANEL]; R];
    for (i, w) in panel.iter().enumerate() {
        let xs: [f32; R] = std::array::from_fn(|r| rows[r][i]);
        for r in 0..R {
            for j in 0..PANEL {
                acc[r][j] += xs[r] * w[j];
            }
        }
    }
    acc
}

/// Adds the sums of a block into its rows of `dst` (`width` valid columns from `j0`).
#[inline(always)]
fn add_block<const R: usize>(
    dst: &mut [f32],
    n: usize,
    r0: usize,
    j0: usize,
    width: usize,
    acc: &[[f32; PANEL]; R],
) {
    for (r, sums) in acc.iter().enumerate() {
        let row = &mut dst[(r0 + r) * n + j0..(r0 + r) * n + j0 + width];
        for (d, s) in row.iter_mut().zip(sums) {
            *d += s;
        }
    }
}

/// Row blocks of `R` rows starting at `r0` over one panel.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_over_panel<const R: usize>(
    dst: &mut [f32],
    a: &[f32],
    k: usize,
    n: usize,
    r0: usize,
    j0: usize,
    width: usize,
    panel: &[[f32; PANEL]],
) {
    let rows: [&[f32]; R] = std::array::from_fn(|r| &a[(r0 + r) * k..(r0 + r + 1) * k]);
    let acc = block_sums::<R>(rows, panel);
    add_block::<R>(dst, n, r0, j0, width, &acc);
}

simd_fn! {
    /// `dst += a W[:, panels p0..p1]` where `dst` is row-major `m x n` and its column 0 is
    /// panel `p0`'s first column; `panels` starts at panel 0 of that range.
    #[allow(clippy::too_many_arguments)]
    fn panel_product(
        dst: &mut [f32],
        a: &[f32],
        m: usize,
        k: usize,
        n: usize,
        panels: &[f32],
        p0: usize,
        p1: usize,
    ) {
        for p in p0..p1 {
            let j0 = (p - p0) * PANEL;
            let width = PANEL.min(n - j0);
            let panel = panels[p * k * PANEL..(p + 1) * k * PANEL].as_chunks::<PANEL>().0;
            let mut r0 = 0;
            while r0 + BLOCK_ROWS <= m {
                rows_over_panel::<BLOCK_ROWS>(dst, a, k, n, r0, j0, width, panel);
                r0 += BLOCK_ROWS;
            }
            match m - r0 {
                0 => {}
                1 => rows_over_panel::<1>(dst, a, k, n, r0, j0, width, panel),
                2 => rows_over_panel::<2>(dst, a, k, n, r0, j0, width, panel),
                3 => rows_over_panel::<3>(dst, a, k, n, r0, j0, width, panel),
                4 => rows_over_panel::<4>(dst, a, k, n, r0, j0, width, panel),
                _ => rows_over_panel::<5>(dst, a, k, n, r0, j0, width, panel),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn reference(a: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for r in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for i in 0..k {
                    s += f64::from(a[r * k + i]) * f64::from(w[i * n + j]);
                }
                out[r * n + j] = s as f32;
            }
        }
        out
    }

    fn random(rng: &mut Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    #[test]
    fn product_agrees_with_the_definition() {
        let mut rng = Rng::new(5);
        for &(m, k, n) in &[
            (1, 7, 5),
            (3, 40, 70),
            (7, 16, 64),
            (13, 33, 97),
            (48, 600, 700),
        ] {
            let a = random(&mut rng, m * k);
            let w = random(&mut rng, k * n);
            let packed = PackedWeights::new(&w, k, n);
            let mut dst = vec![0.5f32; m * n];
            packed.product(&mut dst, &a, m);
            for (d, r) in dst.iter().zip(reference(&a, &w, m, k, n)) {
                assert!(
                    (d - 0.5 - r).abs() < 1e-4 * (1.0 + r.abs()),
                    "{m}x{k}x{n}: {d} vs {r}"
                );
            }
        }
    }

    #[test]
    fn each_row_is_computed_the_same_whatever_the_other_rows() {
        // Big enough to be split over two threads.
        let (k, n) = (700, 600);
        let mut rng = Rng::new(9);
        let w = random(&mut rng, k * n);
        let packed = PackedWeights::new(&w, k, n);
        let a = random(&mut rng, 20 * k);
        let mut all = vec![0.25f32; 20 * n];
        packed.product(&mut all, &a, 20);
        for r in [0, 5, 6, 11, 19] {
            let mut one = vec![0.25f32; n];
            packed.product(&mut one, &a[r * k..(r + 1) * k], 1);
            assert_eq!(one, all[r * n..(r + 1) * n], "row {r}");
            // And inside a block of three rows starting at it.
            let end = (r + 3).min(20);
            let mut some = vec![0.25f32; (end - r) * n];
            packed.product(&mut some, &a[r * k..end * k], end - r);
            assert_eq!(some[..n], all[r * n..(r + 1) * n], "row {r} of {}", end - r);
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore = "a measurement: cargo test --release --lib panel_speed -- --ignored --nocapture"]
    fn panel_speed() {
        let (k, n) = (1536, 2048);
        let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.01).collect();
        let p = PackedWeights::new(&w, k, n);
        for m in [3, 12, 48, 96] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.1).collect();
            let mut dst = vec![0.0f32; m * n];
            let reps = 2000 / m;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                p.product(&mut dst, &a, m);
            }
            let s = t.elapsed().as_secs_f64();
            let gflops = 2.0 * (m * k * n * reps) as f64 / s / 1e9;
            let mut single = vec![0.0f32; m * n];
            let t = std::time::Instant::now();
            for _ in 0..reps {
                panel_product(&mut single, &a, m, k, n, &p.panels, 0, n.div_ceil(PANEL));
            }
            let s1 = t.elapsed().as_secs_f64();
            let g1 = 2.0 * (m * k * n * reps) as f64 / s1 / 1e9;
            println!("m={m}: {gflops:.1} GFLOP/s (two threads), {g1:.1} GFLOP/s (one)");
        }
    }
}
