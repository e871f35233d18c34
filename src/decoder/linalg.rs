//! Small numeric kernels for the training engine: a checked wrapper over the `gemm` crate
//! (the matrix multiply candle itself uses on the CPU) and vectorisable `exp`/`sigmoid`/`tanh`.

use crate::simd::simd_fn;

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix stored at the start of `data`.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// A general strided view (`data` starts at element (0, 0)).
    pub(crate) fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
        last < self.data.len()
    }
}

fn parallelism() -> gemm::Parallelism {
    let n = rayon::current_num_threads();
    if n > 1 {
        gemm::Parallelism::Rayon(n)
    } else {
        gemm::Parallelism::None
    }
}

/// Dot product with eight accumulators (so that the compiler vectorises it).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `dst = a * b` (or `dst += a * b` when `accumulate`), `dst` row-major `a.rows x b.cols`.
///
/// # Panics
/// If the shapes do not agree or a view does not fit its slice (a bug in the caller: every
/// shape here is derived from already validated sizes). The checks make the `unsafe` call
/// sound.
pub(crate) fn matmul(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    matmul_with(dst, a, b, accumulate, parallelism());
}

fn matmul_with(
    dst: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner dimensions differ");
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(a.fits() && b.fits(), "matmul: view does not fit its slice");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: `dst` holds at least m*n elements written with row stride n and column stride
    // 1; `a` and `b` were checked to address only elements inside their slices; `dst` is a
    // unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// `sum_k x[k] y[k]` in sixteen independent lanes (so it vectorises), then the tail.
#[inline(always)]
fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..16 {
            lanes[l] += a[l] * b[l];
        }
    }
    lanes.iter().sum::<f32>() + xr.iter().zip(yr).map(|(a, b)| a * b).sum::<f32>()
}

simd_fn! {
    /// The attention decoder's forward step for one caption (training): `u = tanh(att1 + a2)`
    /// per cell (`[cells, A]`, kept for the backward pass), the softmax weights `alpha` of the
    /// scores `bias + w . u_c`, the context `ctx = sum_c alpha_c map_c`, the gate
    /// `sigmoid(gate)` (in place) and the gated context `z`.
    #[allow(clippy::too_many_arguments)]
    fn attention_row_forward(
        u: &mut [f32],
        alpha: &mut [f32],
        ctx: &mut [f32],
        gate: &mut [f32],
        z: &mut [f32],
        att1: &[f32],
        a2: &[f32],
        w: &[f32],
        bias: f32,
        map: &[f32],
    ) {
        let (a, f) = (a2.len(), ctx.len());
        for ((uc, a1), score) in u.chunks_exact_mut(a).zip(att1.chunks_exact(a)).zip(alpha.iter_mut()) {
            for ((y, &x1), &x2) in uc.iter_mut().zip(a1).zip(a2) {
                *y = tanh(x1 + x2);
            }
            *score = bias + dot_lanes(uc, w);
        }
        let mx = max_of(alpha);
        let sum = exp_shifted_sum(alpha, mx);
        scale_in_place(alpha, 1.0 / sum);
        ctx.fill(0.0);
        for (&wgt, cell) in alpha.iter().zip(map.chunks_exact(f)) {
            for (d, &x) in ctx.iter_mut().zip(cell) {
                *d += wgt * x;
            }
        }
        for ((g, zk), &c) in gate.iter_mut().zip(z.iter_mut()).zip(ctx.iter()) {
            let s = sigmoid(*g);
            *g = s;
            *zk = s * c;
        }
    }
}

simd_fn! {
    /// The backward pass of [`attention_row_forward`] for one caption, from `dz` (the gradient
    /// of the gated context) and `reg` (the regularisation's gradient per cell): writes the
    /// gradient of the gate's input `d_gate`, of `a2` `d_a2`, adds that of `att1` into `d_att1`
    /// and that of the score weights into `d_w`, and returns that of the score bias. `dctx`
    /// (`F`) and `dalpha` (cells) are scratch.
    #[allow(clippy::too_many_arguments)]
    fn attention_row_backward(
        d_gate: &mut [f32],
        d_a2: &mut [f32],
        d_att1: &mut [f32],
        d_w: &mut [f64],
        dctx: &mut [f32],
        dalpha: &mut [f32],
        dz: &[f32],
        ctx: &[f32],
        gate: &[f32],
        alpha: &[f32],
        map: &[f32],
        reg: &[f32],
        u: &[f32],
        w: &[f32],
    ) -> f64 {
        let (a, f) = (d_a2.len(), ctx.len());
        for ((((dg, dc), &d), &c), &g) in d_gate.iter_mut().zip(dctx.iter_mut()).zip(dz).zip(ctx).zip(gate) {
            *dg = d * c * g * (1.0 - g);
            *dc = d * g;
        }
        for ((da, cell), &r) in dalpha.iter_mut().zip(map.chunks_exact(f)).zip(reg) {
            *da = dot_lanes(cell, dctx) + r;
        }
        let dot: f32 = alpha.iter().zip(dalpha.iter()).map(|(x, y)| x * y).sum();
        d_a2.fill(0.0);
        let mut d_bias = 0.0f64;
        for (((&al, &da), uc), d1) in alpha
            .iter()
            .zip(dalpha.iter())
            .zip(u.chunks_exact(a))
            .zip(d_att1.chunks_exact_mut(a))
        {
            let de = al * (da - dot);
            d_bias += f64::from(de);
            for ((((dw, &uk), &wk), d1k), d2k) in
                d_w.iter_mut().zip(uc).zip(w).zip(d1.iter_mut()).zip(d_a2.iter_mut())
            {
                *dw += f64::from(de * uk);
                let dp = de * wk * (1.0 - uk * uk);
                *d1k += dp;
                *d2k += dp;
            }
        }
        d_bias
    }
}

/// `dst = a w^T` (or `dst += a w^T` when `accumulate`) for `a` `m x k` and `w` `n x k` (a
/// layer's weights as stored, one row per output; any strides), `dst` row-major `m x n`.
/// Computed as `w a^T` into `scratch` and transposed into `dst`: gemm runs that orientation
/// two to three times faster when `m` is a few dozen rows (a time step of a batch): 213 vs 81
/// GFLOP/s for 64 x 1280 x 2048 on the development machine.
pub(crate) fn matmul_by_rows_of(
    dst: &mut [f32],
    a: MatRef<'_>,
    w: MatRef<'_>,
    accumulate: bool,
    scratch: &mut Vec<f32>,
) {
    let (m, n) = (a.rows, w.rows);
    scratch.clear();
    scratch.resize(n * m, 0.0);
    matmul(scratch, w, a.t(), false);
    let dst = &mut dst[..m * n];
    const BLOCK: usize = 32;
    for j0 in (0..n).step_by(BLOCK) {
        let j1 = (j0 + BLOCK).min(n);
        for i in 0..m {
            let row = &mut dst[i * n + j0..i * n + j1];
            for (jj, d) in row.iter_mut().enumerate() {
                let v = scratch[(j0 + jj) * m + i];
                *d = if accumulate { *d + v } else { v };
            }
        }
    }
}

/// `dst[j] = sum_i a[i, j]` for a row-major `rows x cols` matrix (as a 1 x rows by rows x cols
/// product, so it runs in the matrix-multiply kernel). `ones` must hold at least `rows` ones.
pub(crate) fn column_sums(dst: &mut [f32], a: &[f32], rows: usize, cols: usize, ones: &[f32]) {
    matmul(
        &mut dst[..cols],
        MatRef::new(ones, 1, rows),
        MatRef::new(a, rows, cols),
        false,
    );
}

/// `dst = src^T` for a row-major `rows x cols` `src` (`dst` is `cols x rows`), in cache
/// blocks.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const BLOCK: usize = 32;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        for c0 in (0..cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(cols);
            for r in r0..r1 {
                for c in c0..c1 {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// Copies `bias` into every row of a row-major matrix with `bias.len()` columns.
pub(crate) fn fill_rows(dst: &mut [f32], bias: &[f32]) {
    for row in dst.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding and subtracting it rounds to the nearest integer with plain arithmetic.
const ROUND_MAGIC: f32 = 12_582_912.0;
const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// `e^x` to within about 2 ulp for x in [-87, 88] (clamped outside), written without branches
/// or library calls so loops over slices vectorise (Cephes' `expf` polynomial).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Plain selects (not `clamp`, whose NaN rules block vectorisation); NaN gives NaN.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    // t = 1.5 * 2^23 + k exactly, so k sits in the low bits of t (no float-to-int cast,
    // whose saturation rules would keep the loop scalar).
    let t = x * LOG2E + ROUND_MAGIC;
    let kf = t - ROUND_MAGIC;
    let k = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC_BITS);
    let r = x - kf * LN2_HI - kf * LN2_LO;
    let r2 = r * r;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r2 + r + 1.0;
    // 2^k through the exponent bits (k in [-126, 127] after the clamp).
    let scale = f32::from_bits((k.wrapping_add(127) as u32) << 23);
    y * scale
}

simd_fn! {
    /// Largest element (-inf for an empty slice), in sixteen independent lanes so it vectorises.
    fn max_of(xs: &[f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; 16];
        let chunks = xs.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                *l = if x > *l { x } else { *l };
            }
        }
        let mut m = lanes
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        for &x in rest {
            m = if x > m { x } else { m };
        }
        m
    }
}

simd_fn! {
    /// `x = e^(x - shift)` for every element; returns their sum (16 lanes, fixed order).
    fn exp_shifted_sum(xs: &mut [f32], shift: f32) -> f32 {
        for x in xs.iter_mut() {
            *x = exp(*x - shift);
        }
        let mut lanes = [0.0f32; 16];
        let chunks = xs.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                *l += x;
            }
        }
        lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
    }
}

/// Logistic sigmoid.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent as `1 - 2 / (e^(2x) + 1)` (absolute error about 1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

simd_fn! {
    fn tanh_in_place(xs: &mut [f32]) {
        for x in xs {
            *x = tanh(*x);
        }
    }
}

simd_fn! {
    /// `x = x - log(sum(e^x))` over the slice (log-softmax), in place.
    fn log_softmax_in_place(xs: &mut [f32]) {
        let max = {
            let mut lanes = [f32::NEG_INFINITY; 16];
            let chunks = xs.chunks_exact(16);
            let rest = chunks.remainder();
            for c in chunks {
                for (l, &x) in lanes.iter_mut().zip(c) {
                    *l = if x > *l { x } else { *l };
                }
            }
            let mut m = lanes
                .iter()
                .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
            for &x in rest {
                m = if x > m { x } else { m };
            }
            m
        };
        let mut lanes = [0.0f32; 16];
        let chunks = xs.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                *l += exp(x - max);
            }
        }
        let sum = lanes.iter().sum::<f32>() + rest.iter().map(|&x| exp(x - max)).sum::<f32>();
        let lse = max + sum.ln();
        for x in xs.iter_mut() {
            *x -= lse;
        }
    }
}

simd_fn! {
    /// Multiplies every element by `k`.
    fn scale_in_place(xs: &mut [f32], k: f32) {
        for x in xs {
            *x *= k;
        }
    }
}

simd_fn! {
    /// One LSTM cell for one row: activates `gates` (`[i f g o]`, 4 x h, pre-activations) in
    /// place and writes the cell `c`, `tanh(c)` and the output `h` (`c_prev`: previous cell).
    fn lstm_forward_row(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        let n = c.len();
        let (gi, rest) = gates.split_at_mut(n);
        let (gf, rest) = rest.split_at_mut(n);
        let (gg, go) = rest.split_at_mut(n);
        let (gi, gf, gg, go) = (&mut gi[..n], &mut gf[..n], &mut gg[..n], &mut go[..n]);
        let (cp, tc, h) = (&c_prev[..n], &mut tc[..n], &mut h[..n]);
        for j in 0..n {
            let i = sigmoid(gi[j]);
            let f = sigmoid(gf[j]);
            let g = tanh(gg[j]);
            let o = sigmoid(go[j]);
            gi[j] = i;
            gf[j] = f;
            gg[j] = g;
            go[j] = o;
            let cj = f * cp[j] + i * g;
            c[j] = cj;
            let t = tanh(cj);
            tc[j] = t;
            h[j] = o * t;
        }
    }
}

simd_fn! {
    /// Backward of [`lstm_forward_row`] for one row. `gates` holds the activated gates and
    /// becomes the gradient of the pre-activations; `dh` is the whole gradient reaching `h`;
    /// `dc` holds the gradient reaching `c` from the next step (0 if none) and returns the
    /// gradient for the previous cell.
    fn lstm_backward_row(gates: &mut [f32], tc: &[f32], dh: &[f32], dc: &mut [f32], c_prev: &[f32]) {
        let n = dc.len();
        let (gi, rest) = gates.split_at_mut(n);
        let (gf, rest) = rest.split_at_mut(n);
        let (gg, go) = rest.split_at_mut(n);
        let (gi, gf, gg, go) = (&mut gi[..n], &mut gf[..n], &mut gg[..n], &mut go[..n]);
        let (tc, dh, cp) = (&tc[..n], &dh[..n], &c_prev[..n]);
        for j in 0..n {
            let (i, f, g, o, t) = (gi[j], gf[j], gg[j], go[j], tc[j]);
            let dcj = dh[j] * o * (1.0 - t * t) + dc[j];
            gi[j] = dcj * g * i * (1.0 - i);
            gf[j] = dcj * cp[j] * f * (1.0 - f);
            gg[j] = dcj * i * (1.0 - g * g);
            go[j] = dh[j] * t * o * (1.0 - o);
            dc[j] = dcj * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn matmul_by_rows_of_agrees_with_matmul() {
        let mut rng = Rng::new(9);
        for &(m, k, n) in &[(1, 3, 5), (7, 40, 70), (33, 17, 64)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.next_f32() - 0.5).collect();
            // Weights with a padded row stride, as the LSTM input weights' feature columns.
            let w: Vec<f32> = (0..n * (k + 2)).map(|_| rng.next_f32() - 0.5).collect();
            let wv = MatRef::strided(&w, n, k, k + 2, 1);
            for accumulate in [false, true] {
                let init: Vec<f32> = (0..m * n).map(|_| rng.next_f32()).collect();
                let mut want = init.clone();
                matmul(&mut want, MatRef::new(&a, m, k), wv.t(), accumulate);
                let mut got = init.clone();
                let mut scratch = Vec::new();
                matmul_by_rows_of(
                    &mut got,
                    MatRef::new(&a, m, k),
                    wv,
                    accumulate,
                    &mut scratch,
                );
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{m}x{k}x{n}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn attention_row_forward_matches_its_definition() {
        let mut rng = Rng::new(5);
        let (cells, a, f) = (5, 37, 21);
        let att1: Vec<f32> = (0..cells * a).map(|_| rng.next_f32() - 0.5).collect();
        let att2: Vec<f32> = (0..a).map(|_| rng.next_f32() - 0.5).collect();
        let w: Vec<f32> = (0..a).map(|_| rng.next_f32() - 0.5).collect();
        let maps: Vec<f32> = (0..cells * f).map(|_| rng.next_f32() - 0.5).collect();
        let gate_in: Vec<f32> = (0..f).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
        let (mut u, mut alpha, mut ctx) = (vec![0.0; cells * a], vec![0.0; cells], vec![9.0; f]);
        let (mut gate, mut z) = (gate_in.clone(), vec![9.0; f]);
        attention_row_forward(
            &mut u, &mut alpha, &mut ctx, &mut gate, &mut z, &att1, &att2, &w, 0.25, &maps,
        );
        let scores: Vec<f32> = (0..cells)
            .map(|c| {
                0.25 + (0..a)
                    .map(|k| (att1[c * a + k] + att2[k]).tanh() * w[k])
                    .sum::<f32>()
            })
            .collect();
        let total: f32 = scores.iter().map(|s| s.exp()).sum();
        for (c, (al, s)) in alpha.iter().zip(&scores).enumerate() {
            let want = s.exp() / total;
            assert!((al - want).abs() < 1e-5, "cell {c}: {al} vs {want}");
        }
        for j in 0..f {
            let want_ctx: f32 = (0..cells).map(|c| alpha[c] * maps[c * f + j]).sum();
            let g = 1.0 / (1.0 + (-gate_in[j]).exp());
            assert!((ctx[j] - want_ctx).abs() < 1e-5);
            assert!((gate[j] - g).abs() < 1e-5);
            assert!(
                (z[j] - g * want_ctx).abs() < 1e-5,
                "{j}: {} vs {}",
                z[j],
                g * want_ctx
            );
        }
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
        for &x in &[-20.0f32, -3.0, -0.5, 0.0, 1e-4, 0.7, 4.0, 30.0] {
            assert!((sigmoid(x) as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs() < 1e-6);
            assert!((tanh(x) as f64 - (x as f64).tanh()).abs() < 1e-6);
        }
    }

    #[test]
    fn matmul_matches_naive() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![1.0; m * n];
        matmul(&mut c, MatRef::new(&a, m, k), MatRef::new(&b, k, n), true);
        // b^T stored as n x k: use the transpose view of a transposed copy.
        let mut bt = vec![0.0; n * k];
        for i in 0..k {
            for j in 0..n {
                bt[j * k + i] = b[i * n + j];
            }
        }
        let mut c2 = vec![0.0; m * n];
        matmul(
            &mut c2,
            MatRef::new(&a, m, k),
            MatRef::new(&bt, n, k).t(),
            false,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert!((c[i * n + j] - 1.0 - want).abs() < 1e-5);
                assert!((c2[i * n + j] - want).abs() < 1e-5);
            }
        }
    }
}
