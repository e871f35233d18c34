//! CPU kernels for the NHWC fast path of the EfficientNet-Lite encoder.
//!
//! candle's grouped `conv2d` is far too slow for depthwise convolutions on the CPU, so the fast
//! path keeps activations in NHWC layout (`[N, H, W, C]`, contiguous) and runs every convolution
//! through one of three candle custom ops, each with the folded batch-norm bias, the optional
//! ReLU6 and (for 1x1 convolutions) the residual addition fused in:
//!
//! * [`PointwiseConv`]: 1x1 convolution as one GEMM `[N*H*W, Cin] x [Cin, Cout]` (the `gemm`
//!   crate, which candle's own matmul uses) followed by a single epilogue pass for bias, residual
//!   and ReLU6; `CustomOp1`, or `CustomOp2` with the residual as second argument;
//! * [`DepthwiseConv`]: depthwise (`groups == channels`) convolution with TF "SAME" padding folded
//!   in, channels innermost, accumulators in registers;
//! * [`DenseConv`]: small dense convolution (the 3-channel stem), same scheme.
//!
//! The depthwise and stem loops have an AVX2+FMA implementation (`std::arch` intrinsics, picked
//! at run time from [`crate::simd::level`], the crate's one CPU-feature check) and a portable
//! one. Work is spread over rayon's pool,
//! unless the calling thread runs inside [`with_sequential_kernels`] (the encoder does that to
//! run several images in parallel, one per thread).

use std::cell::Cell;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, bail};
use rayon::prelude::*;

/// TF "SAME" padding for one spatial dimension: returns `(output_size, pad_before, pad_after)`.
///
/// The output size is `ceil(input / stride)`; the total padding is
/// `max((out - 1) * stride + kernel - input, 0)`, with the smaller half before and the larger
/// half after (so a stride-2 3x3 conv on an even input pads 0 before and 1 after).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let stride = stride.max(1);
    let out = input.div_ceil(stride);
    let needed = (out.saturating_sub(1)) * stride + kernel;
    let total = needed.saturating_sub(input);
    let before = total / 2;
    (out, before, total - before)
}

thread_local! {
    static SEQUENTIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the kernels of this module single-threaded on the calling thread. Used to
/// process several images in parallel (one per thread) without nested parallelism.
pub fn with_sequential_kernels<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SEQUENTIAL.with(|s| s.set(self.0));
        }
    }
    let _reset = Reset(SEQUENTIAL.with(|s| s.replace(true)));
    f()
}

fn sequential() -> bool {
    SEQUENTIAL.with(Cell::get)
}

/// Name of the kernel variant in use ("avx2" or "portable"), for logs and benches.
pub fn kernel_variant() -> &'static str {
    if use_avx2() { "avx2" } else { "portable" }
}

/// Whether the AVX2 + FMA kernels run: when the CPU's [`crate::simd::level`] has them and
/// `ENCODER_PORTABLE_KERNELS` is not set.
#[cfg(target_arch = "x86_64")]
fn use_avx2() -> bool {
    use std::sync::OnceLock;
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        std::env::var_os("ENCODER_PORTABLE_KERNELS").is_none() && crate::simd::level().avx2_fma()
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn use_avx2() -> bool {
    false
}

fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expected an f32 tensor")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: the input tensor must be contiguous")
    };
    Ok(&data[start..end])
}

/// An output buffer of `len` floats made of `chunk`-sized pieces, each computed in place by
/// `fill(index, piece)`; pieces run in parallel unless in sequential mode.
///
/// (Writing the pieces into per-thread scratch buffers and moving them into an uninitialised
/// allocation, to save the zero-fill, measured no faster: the copy costs what the fill did.)
fn build_output(len: usize, chunk: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let chunk = chunk.max(1);
    let mut out = vec![0f32; len];
    if sequential() {
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, piece)| fill(i, piece));
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, piece)| fill(i, piece));
    }
    out
}

/// Geometry of one NHWC convolution with TF "SAME" padding.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    pad_top: usize,
    pad_left: usize,
    kernel: usize,
    stride: usize,
}

impl Geometry {
    fn new(in_h: usize, in_w: usize, kernel: usize, stride: usize) -> Self {
        let (out_h, pad_top, _) = same_padding(in_h, kernel, stride);
        let (out_w, pad_left, _) = same_padding(in_w, kernel, stride);
        Self {
            in_h,
            in_w,
            out_h,
            out_w,
            pad_top,
            pad_left,
            kernel,
            stride,
        }
    }

    /// Valid kernel taps `[lo, hi)` along one axis for output position `o`, and the input index
    /// of tap `lo`.
    #[inline(always)]
    fn taps(
        o: usize,
        stride: usize,
        pad: usize,
        kernel: usize,
        input: usize,
    ) -> (usize, usize, usize) {
        // input index of tap t is o * stride + t - pad
        let base = o * stride;
        let lo = pad.saturating_sub(base);
        let hi = (input + pad).saturating_sub(base).min(kernel);
        // lo >= pad - base, so base + lo - pad cannot underflow.
        (lo, hi.max(lo), base + lo - pad)
    }

    /// Image index, its input slice, and the vertical window for output row `row` (of all
    /// images stacked).
    #[inline(always)]
    fn row_setup<'a>(
        &self,
        x: &'a [f32],
        channels: usize,
        row: usize,
    ) -> (&'a [f32], (usize, usize, usize)) {
        let n = row / self.out_h;
        let oy = row % self.out_h;
        let size = self.in_h * self.in_w * channels;
        (
            &x[n * size..(n + 1) * size],
            Self::taps(oy, self.stride, self.pad_top, self.kernel, self.in_h),
        )
    }

    #[inline(always)]
    fn window(&self, ox: usize, vertical: (usize, usize, usize)) -> Window {
        let (ky0, ky1, iy0) = vertical;
        let (kx0, kx1, ix0) = Self::taps(ox, self.stride, self.pad_left, self.kernel, self.in_w);
        Window {
            ky0,
            ky1,
            iy0,
            kx0,
            kx1,
            ix0,
        }
    }
}

/// The valid part of a kernel window for one output pixel.
#[derive(Debug, Clone, Copy)]
struct Window {
    ky0: usize,
    ky1: usize,
    iy0: usize,
    kx0: usize,
    kx1: usize,
    ix0: usize,
}

impl Window {
    /// `(ky, kx, input pixel index within the image)` of every valid tap.
    #[inline(always)]
    fn for_each_tap(&self, in_w: usize, mut f: impl FnMut(usize, usize, usize)) {
        for ky in self.ky0..self.ky1 {
            let iy = self.iy0 + (ky - self.ky0);
            for kx in self.kx0..self.kx1 {
                f(ky, kx, iy * in_w + self.ix0 + (kx - self.kx0));
            }
        }
    }
}

#[inline(always)]
fn relu6_slice(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = x.clamp(0.0, 6.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Pointwise (1x1) convolution
// ---------------------------------------------------------------------------------------------

/// 1x1 convolution on NHWC data, i.e. `[P, Cin] x [Cin, Cout] + bias` over the `P = N*H*W`
/// pixels (any leading dimensions), with an optional residual (`CustomOp2`) and ReLU6.
#[derive(Debug, Clone)]
pub struct PointwiseConv {
    /// Weights laid out `[ci][co]` (row-major `Cin x Cout`).
    weight: Arc<[f32]>,
    bias: Arc<[f32]>,
    in_channels: usize,
    out_channels: usize,
    relu6: bool,
}

impl PointwiseConv {
    /// `weight_oi` is the PyTorch layout `[Cout, Cin(, 1, 1)]`, flattened.
    pub fn new(
        weight_oi: &[f32],
        bias: Vec<f32>,
        in_channels: usize,
        out_channels: usize,
        relu6: bool,
    ) -> candle_core::Result<Self> {
        if weight_oi.len() != out_channels * in_channels
            || bias.len() != out_channels
            || in_channels == 0
        {
            bail!(
                "pointwise conv: weight has {} values and bias {}, expected {} and {out_channels}",
                weight_oi.len(),
                bias.len(),
                out_channels * in_channels
            )
        }
        let mut weight = vec![0f32; weight_oi.len()];
        for co in 0..out_channels {
            for ci in 0..in_channels {
                weight[ci * out_channels + co] = weight_oi[co * in_channels + ci];
            }
        }
        Ok(Self {
            weight: weight.into(),
            bias: bias.into(),
            in_channels,
            out_channels,
            relu6,
        })
    }

    fn forward(
        &self,
        x: &[f32],
        shape: &Shape,
        res: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (k, n) = (self.in_channels, self.out_channels);
        let dims = shape.dims();
        let Some((&c, lead)) = dims.split_last() else {
            bail!("pointwise conv: scalar input")
        };
        if c != k {
            bail!("pointwise conv: input has {c} channels, weights expect {k}")
        }
        let m: usize = lead.iter().product();
        if x.len() != m * k {
            bail!(
                "pointwise conv: input has {} values, expected {}",
                x.len(),
                m * k
            )
        }
        if let Some(res) = res
            && res.len() != m * n
        {
            bail!(
                "pointwise conv: residual has {} values, output {}",
                res.len(),
                m * n
            )
        }
        if m == 0 || n == 0 {
            return Ok((CpuStorage::F32(Vec::new()), shape_with_last(lead, n)));
        }
        let out = if m >= 2 * PW_ROWS {
            // Many pixels: independent row blocks, each one GEMM plus its epilogue while the
            // block is still in cache; blocks are spread over the threads.
            build_output(m * n, PW_ROWS * n, |i, block| {
                let rows = block.len() / n;
                let x = &x[i * PW_ROWS * k..(i * PW_ROWS + rows) * k];
                let res = res.map(|r| &r[i * PW_ROWS * n..i * PW_ROWS * n + block.len()]);
                self.gemm(x, block, rows, gemm::Parallelism::None);
                self.epilogue(block, res);
            })
        } else {
            // Few pixels (the 14x14 and 7x7 layers): one GEMM split by gemm itself.
            let parallelism = if sequential() || m * n * k < 32 * 1024 {
                gemm::Parallelism::None
            } else {
                gemm::Parallelism::Rayon(rayon::current_num_threads())
            };
            let mut out = vec![0f32; m * n];
            self.gemm(x, &mut out, m, parallelism);
            self.epilogue(&mut out, res);
            out
        };
        Ok((CpuStorage::F32(out), shape_with_last(lead, n)))
    }

    /// `out = x @ weight` for `rows` pixels (`x`: rows x Cin, `out`: rows x Cout, row-major).
    fn gemm(&self, x: &[f32], out: &mut [f32], rows: usize, parallelism: gemm::Parallelism) {
        let (k, n) = (self.in_channels, self.out_channels);
        if x.len() != rows * k || out.len() != rows * n || self.weight.len() != k * n {
            // Unreachable: the callers slice exactly these lengths. Never let gemm go out of
            // bounds even so.
            return;
        }
        // SAFETY: `out` is rows x n row-major (column stride 1, row stride n), `x` rows x k and
        // `self.weight` k x n, both row-major; the lengths were checked just above, so every
        // element gemm reads or writes is in bounds, and `out` does not alias the inputs.
        // With `read_dst == false` gemm computes out = x @ weight.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                self.weight.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    }

    /// In place: `out = act(out + bias (+ res))`, row by row.
    fn epilogue(&self, out: &mut [f32], res: Option<&[f32]>) {
        let n = self.out_channels;
        for (p, o) in out.chunks_exact_mut(n).enumerate() {
            for (v, &b) in o.iter_mut().zip(self.bias.iter()) {
                *v += b;
            }
            if let Some(res) = res {
                for (v, &r) in o.iter_mut().zip(&res[p * n..(p + 1) * n]) {
                    *v += r;
                }
            }
            if self.relu6 {
                relu6_slice(o);
            }
        }
    }
}

fn shape_with_last(lead: &[usize], last: usize) -> Shape {
    let mut dims = lead.to_vec();
    dims.push(last);
    Shape::from(dims)
}

/// Pixels per row block of [`PointwiseConv`] when there are many.
const PW_ROWS: usize = 128;

impl CustomOp1 for PointwiseConv {
    fn name(&self) -> &'static str {
        "efficientnet-pointwise-conv-nhwc"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, CustomOp1::name(self))?;
        self.forward(x, layout.shape(), None)
    }
}

/// With a residual: `out = x * W + bias + residual` (then ReLU6 if enabled).
impl CustomOp2 for PointwiseConv {
    fn name(&self) -> &'static str {
        "efficientnet-pointwise-conv-residual-nhwc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, CustomOp2::name(self))?;
        let res = contiguous_f32(s2, l2, CustomOp2::name(self))?;
        let (storage, shape) = self.forward(x, l1.shape(), Some(res))?;
        if &shape != l2.shape() {
            bail!(
                "pointwise conv: residual shape {:?} differs from the output shape {shape:?}",
                l2.shape()
            )
        }
        Ok((storage, shape))
    }
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution
// ---------------------------------------------------------------------------------------------

/// Depthwise convolution (one filter per channel) on an NHWC tensor, TF "SAME" padding, with the
/// folded batch-norm bias and an optional ReLU6 fused.
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    /// Weights laid out `[ky][kx][c]`.
    weight: Arc<[f32]>,
    bias: Arc<[f32]>,
    channels: usize,
    kernel: usize,
    stride: usize,
    relu6: bool,
}

impl DepthwiseConv {
    /// `weight_oihw` is the PyTorch layout `[C, 1, k, k]`, flattened.
    pub fn new(
        weight_oihw: &[f32],
        bias: Vec<f32>,
        channels: usize,
        kernel: usize,
        stride: usize,
        relu6: bool,
    ) -> candle_core::Result<Self> {
        let kk = kernel * kernel;
        if weight_oihw.len() != channels * kk || bias.len() != channels || kernel == 0 {
            bail!(
                "depthwise conv: weight has {} values and bias {}, expected {} and {channels}",
                weight_oihw.len(),
                bias.len(),
                channels * kk
            )
        }
        let mut weight = vec![0f32; channels * kk];
        for c in 0..channels {
            for t in 0..kk {
                weight[t * channels + c] = weight_oihw[c * kk + t];
            }
        }
        Ok(Self {
            weight: weight.into(),
            bias: bias.into(),
            channels,
            kernel,
            stride: stride.max(1),
            relu6,
        })
    }

    /// Portable implementation of one output row (all `out_w` pixels, all channels).
    fn row_portable(&self, g: &Geometry, x: &[f32], out_row: &mut [f32], row: usize) {
        let c = self.channels;
        let (image, vertical) = g.row_setup(x, c, row);
        for (ox, out_px) in out_row.chunks_exact_mut(c).enumerate() {
            out_px.copy_from_slice(&self.bias);
            g.window(ox, vertical)
                .for_each_tap(g.in_w, |ky, kx, pixel| {
                    let xs = &image[pixel * c..(pixel + 1) * c];
                    let ws = &self.weight[(ky * g.kernel + kx) * c..(ky * g.kernel + kx + 1) * c];
                    for ((o, &xv), &wv) in out_px.iter_mut().zip(xs).zip(ws) {
                        *o += xv * wv;
                    }
                });
            if self.relu6 {
                relu6_slice(out_px);
            }
        }
    }

    fn row(&self, g: &Geometry, x: &[f32], out_row: &mut [f32], row: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if use_avx2() {
                // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                unsafe { avx2::depthwise_row(self, g, x, out_row, row) };
                return;
            }
        }
        self.row_portable(g, x, out_row, row)
    }
}

impl CustomOp1 for DepthwiseConv {
    fn name(&self) -> &'static str {
        "efficientnet-depthwise-conv-nhwc"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let (n, h, w, c) = layout.shape().dims4()?;
        if c != self.channels {
            bail!(
                "depthwise conv: input has {c} channels, weights expect {}",
                self.channels
            )
        }
        let g = Geometry::new(h, w, self.kernel, self.stride);
        let out = build_output(n * g.out_h * g.out_w * c, g.out_w * c, |row, out_row| {
            self.row(&g, x, out_row, row)
        });
        Ok((CpuStorage::F32(out), Shape::from((n, g.out_h, g.out_w, c))))
    }
}

// ---------------------------------------------------------------------------------------------
// Dense convolution (the stem)
// ---------------------------------------------------------------------------------------------

/// Dense (groups = 1) convolution on an NHWC tensor, TF "SAME" padding, folded bias and optional
/// ReLU6 fused. Meant for layers with few input channels such as the 3-channel stem.
#[derive(Debug, Clone)]
pub struct DenseConv {
    /// Weights laid out `[ky][kx][ci][co]`.
    weight: Arc<[f32]>,
    bias: Arc<[f32]>,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    relu6: bool,
}

impl DenseConv {
    /// `weight_oihw` is the PyTorch layout `[Cout, Cin, k, k]`, flattened.
    pub fn new(
        weight_oihw: &[f32],
        bias: Vec<f32>,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        relu6: bool,
    ) -> candle_core::Result<Self> {
        let kk = kernel * kernel;
        if weight_oihw.len() != out_channels * in_channels * kk
            || bias.len() != out_channels
            || kernel == 0
        {
            bail!(
                "dense conv: weight has {} values and bias {}, expected {} and {out_channels}",
                weight_oihw.len(),
                bias.len(),
                out_channels * in_channels * kk
            )
        }
        let mut weight = vec![0f32; weight_oihw.len()];
        for co in 0..out_channels {
            for ci in 0..in_channels {
                for t in 0..kk {
                    weight[(t * in_channels + ci) * out_channels + co] =
                        weight_oihw[(co * in_channels + ci) * kk + t];
                }
            }
        }
        Ok(Self {
            weight: weight.into(),
            bias: bias.into(),
            in_channels,
            out_channels,
            kernel,
            stride: stride.max(1),
            relu6,
        })
    }

    fn row_portable(&self, g: &Geometry, x: &[f32], out_row: &mut [f32], row: usize) {
        let (ci_n, co_n) = (self.in_channels, self.out_channels);
        let (image, vertical) = g.row_setup(x, ci_n, row);
        for (ox, out_px) in out_row.chunks_exact_mut(co_n).enumerate() {
            out_px.copy_from_slice(&self.bias);
            g.window(ox, vertical)
                .for_each_tap(g.in_w, |ky, kx, pixel| {
                    let tap = (ky * g.kernel + kx) * ci_n;
                    for (ci, &v) in image[pixel * ci_n..(pixel + 1) * ci_n].iter().enumerate() {
                        let w = &self.weight[(tap + ci) * co_n..(tap + ci + 1) * co_n];
                        for (o, &wv) in out_px.iter_mut().zip(w) {
                            *o += v * wv;
                        }
                    }
                });
            if self.relu6 {
                relu6_slice(out_px);
            }
        }
    }

    fn row(&self, g: &Geometry, x: &[f32], out_row: &mut [f32], row: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if use_avx2() {
                // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                unsafe { avx2::dense_row(self, g, x, out_row, row) };
                return;
            }
        }
        self.row_portable(g, x, out_row, row)
    }
}

impl CustomOp1 for DenseConv {
    fn name(&self) -> &'static str {
        "efficientnet-dense-conv-nhwc"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let (n, h, w, c) = layout.shape().dims4()?;
        if c != self.in_channels {
            bail!(
                "dense conv: input has {c} channels, weights expect {}",
                self.in_channels
            )
        }
        let g = Geometry::new(h, w, self.kernel, self.stride);
        let out = build_output(
            n * g.out_h * g.out_w * self.out_channels,
            g.out_w * self.out_channels,
            |row, out_row| self.row(&g, x, out_row, row),
        );
        Ok((
            CpuStorage::F32(out),
            Shape::from((n, g.out_h, g.out_w, self.out_channels)),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA implementations
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_set1_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::{DenseConv, DepthwiseConv, Geometry};

    /// Loads 8 floats from `s[i..i + 8]` (bounds-checked).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(s: &[f32], i: usize) -> __m256 {
        let s = &s[i..i + 8];
        // SAFETY: `s` holds exactly 8 floats; unaligned loads are allowed.
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    }

    /// Stores 8 floats to `s[i..i + 8]` (bounds-checked).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn store(s: &mut [f32], i: usize, v: __m256) {
        let s = &mut s[i..i + 8];
        // SAFETY: `s` holds exactly 8 floats; unaligned stores are allowed.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn clamp6(v: __m256, on: bool) -> __m256 {
        if on {
            _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0))
        } else {
            v
        }
    }

    /// Depthwise conv, one output row: channels in blocks of 32 (4 accumulators), then 8, then
    /// single channels.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn depthwise_row(
        op: &DepthwiseConv,
        g: &Geometry,
        x: &[f32],
        out_row: &mut [f32],
        row: usize,
    ) {
        let c = op.channels;
        let k = g.kernel;
        let (image, vertical) = g.row_setup(x, c, row);
        for (ox, out_px) in out_row.chunks_exact_mut(c).enumerate() {
            let win = g.window(ox, vertical);
            let mut cb = 0;
            while cb + 32 <= c {
                let b = &op.bias[cb..cb + 32];
                let (mut a0, mut a1, mut a2, mut a3) =
                    (load(b, 0), load(b, 8), load(b, 16), load(b, 24));
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    let xs = &image[pixel * c + cb..pixel * c + cb + 32];
                    let wo = (ky * k + kx) * c + cb;
                    let ws = &op.weight[wo..wo + 32];
                    a0 = _mm256_fmadd_ps(load(xs, 0), load(ws, 0), a0);
                    a1 = _mm256_fmadd_ps(load(xs, 8), load(ws, 8), a1);
                    a2 = _mm256_fmadd_ps(load(xs, 16), load(ws, 16), a2);
                    a3 = _mm256_fmadd_ps(load(xs, 24), load(ws, 24), a3);
                });
                let o = &mut out_px[cb..cb + 32];
                store(o, 0, clamp6(a0, op.relu6));
                store(o, 8, clamp6(a1, op.relu6));
                store(o, 16, clamp6(a2, op.relu6));
                store(o, 24, clamp6(a3, op.relu6));
                cb += 32;
            }
            while cb + 8 <= c {
                let mut a0 = load(&op.bias, cb);
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    a0 = _mm256_fmadd_ps(
                        load(image, pixel * c + cb),
                        load(&op.weight, (ky * k + kx) * c + cb),
                        a0,
                    );
                });
                store(out_px, cb, clamp6(a0, op.relu6));
                cb += 8;
            }
            while cb < c {
                let mut acc = op.bias[cb];
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    acc += image[pixel * c + cb] * op.weight[(ky * k + kx) * c + cb];
                });
                out_px[cb] = if op.relu6 { acc.clamp(0.0, 6.0) } else { acc };
                cb += 1;
            }
        }
    }

    /// Dense conv (stem), one output row: output channels in blocks of 32, then 8, then 1.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dense_row(
        op: &DenseConv,
        g: &Geometry,
        x: &[f32],
        out_row: &mut [f32],
        row: usize,
    ) {
        let (ci_n, co_n) = (op.in_channels, op.out_channels);
        let k = g.kernel;
        let (image, vertical) = g.row_setup(x, ci_n, row);
        for (ox, out_px) in out_row.chunks_exact_mut(co_n).enumerate() {
            let win = g.window(ox, vertical);
            let mut cb = 0;
            while cb + 32 <= co_n {
                let b = &op.bias[cb..cb + 32];
                let (mut a0, mut a1, mut a2, mut a3) =
                    (load(b, 0), load(b, 8), load(b, 16), load(b, 24));
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    let tap = (ky * k + kx) * ci_n;
                    for (ci, &v) in image[pixel * ci_n..(pixel + 1) * ci_n].iter().enumerate() {
                        let v = _mm256_set1_ps(v);
                        let wo = (tap + ci) * co_n + cb;
                        let ws = &op.weight[wo..wo + 32];
                        a0 = _mm256_fmadd_ps(v, load(ws, 0), a0);
                        a1 = _mm256_fmadd_ps(v, load(ws, 8), a1);
                        a2 = _mm256_fmadd_ps(v, load(ws, 16), a2);
                        a3 = _mm256_fmadd_ps(v, load(ws, 24), a3);
                    }
                });
                let o = &mut out_px[cb..cb + 32];
                store(o, 0, clamp6(a0, op.relu6));
                store(o, 8, clamp6(a1, op.relu6));
                store(o, 16, clamp6(a2, op.relu6));
                store(o, 24, clamp6(a3, op.relu6));
                cb += 32;
            }
            while cb + 8 <= co_n {
                let mut a0 = load(&op.bias, cb);
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    let tap = (ky * k + kx) * ci_n;
                    for (ci, &v) in image[pixel * ci_n..(pixel + 1) * ci_n].iter().enumerate() {
                        a0 = _mm256_fmadd_ps(
                            _mm256_set1_ps(v),
                            load(&op.weight, (tap + ci) * co_n + cb),
                            a0,
                        );
                    }
                });
                store(out_px, cb, clamp6(a0, op.relu6));
                cb += 8;
            }
            while cb < co_n {
                let mut acc = op.bias[cb];
                win.for_each_tap(g.in_w, |ky, kx, pixel| {
                    let tap = (ky * k + kx) * ci_n;
                    for (ci, &v) in image[pixel * ci_n..(pixel + 1) * ci_n].iter().enumerate() {
                        acc += v * op.weight[(tap + ci) * co_n + cb];
                    }
                });
                out_px[cb] = if op.relu6 { acc.clamp(0.0, 6.0) } else { acc };
                cb += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tf() {
        // stride 1: k/2 on both sides
        assert_eq!(same_padding(112, 3, 1), (112, 1, 1));
        assert_eq!(same_padding(14, 5, 1), (14, 2, 2));
        // stride 2 on even input: 3x3 pads 0/1, 5x5 pads 1/2
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        assert_eq!(same_padding(56, 5, 2), (28, 1, 2));
        // stride 2 on odd input
        assert_eq!(same_padding(15, 3, 2), (8, 1, 1));
        // 1x1 never pads
        assert_eq!(same_padding(7, 1, 1), (7, 0, 0));
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The dispatched (AVX2 when available) kernels against the portable ones, for channel
    /// counts that exercise every block width and odd spatial sizes.
    #[test]
    fn simd_kernels_match_portable_kernels() {
        for (i, &(c, k, stride, h, w)) in [
            (32, 3, 1, 9, 7),
            (96, 3, 2, 12, 13),
            (13, 5, 2, 7, 9),
            (72, 5, 1, 6, 5),
            (8, 3, 2, 1, 1),
        ]
        .iter()
        .enumerate()
        {
            let seed = i as u32 + 1;
            let op = DepthwiseConv::new(
                &pseudo_random(c * k * k, seed),
                pseudo_random(c, seed + 7),
                c,
                k,
                stride,
                i % 2 == 0,
            )
            .unwrap();
            let g = Geometry::new(h, w, k, stride);
            let x = pseudo_random(2 * h * w * c, seed + 3);
            for row in 0..2 * g.out_h {
                let mut a = vec![0f32; g.out_w * c];
                let mut b = vec![0f32; g.out_w * c];
                op.row(&g, &x, &mut a, row);
                op.row_portable(&g, &x, &mut b, row);
                for (p, q) in a.iter().zip(&b) {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "depthwise c={c} k={k}: {p} vs {q}"
                    );
                }
            }

            let cout = [32, 40, 16, 9, 64][i];
            let cin = [3, 5, 1, 2, 3][i];
            let op = DenseConv::new(
                &pseudo_random(cout * cin * k * k, seed + 11),
                pseudo_random(cout, seed),
                cin,
                cout,
                k,
                stride,
                true,
            )
            .unwrap();
            let x = pseudo_random(h * w * cin, seed + 5);
            for row in 0..g.out_h {
                let mut a = vec![0f32; g.out_w * cout];
                let mut b = vec![0f32; g.out_w * cout];
                op.row(&g, &x, &mut a, row);
                op.row_portable(&g, &x, &mut b, row);
                for (p, q) in a.iter().zip(&b) {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "dense cout={cout}: {p} vs {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn pointwise_matches_a_naive_matmul() {
        for &(m, cin, cout, relu6, residual) in &[
            (7, 16, 24, true, false),
            (100, 40, 80, false, true),
            (1, 1280, 1000, false, false),
        ] {
            let w = pseudo_random(cout * cin, 3);
            let bias = pseudo_random(cout, 4);
            let x = pseudo_random(m * cin, 5);
            let res = pseudo_random(m * cout, 6);
            let op = PointwiseConv::new(&w, bias.clone(), cin, cout, relu6).unwrap();
            let (out, shape) = op
                .forward(&x, &Shape::from((m, cin)), residual.then_some(&res[..]))
                .unwrap();
            assert_eq!(shape.dims(), &[m, cout]);
            let CpuStorage::F32(out) = out else {
                panic!("not f32")
            };
            for p in 0..m {
                for co in 0..cout {
                    let mut v = bias[co] as f64;
                    for ci in 0..cin {
                        v += x[p * cin + ci] as f64 * w[co * cin + ci] as f64;
                    }
                    if residual {
                        v += res[p * cout + co] as f64;
                    }
                    if relu6 {
                        v = v.clamp(0.0, 6.0);
                    }
                    let got = out[p * cout + co] as f64;
                    assert!(
                        (got - v).abs() <= 1e-4 * (1.0 + v.abs()),
                        "{m}x{cin}x{cout}: {got} vs {v}"
                    );
                }
            }
        }
    }

    #[test]
    fn sequential_mode_is_scoped() {
        assert!(!sequential());
        let inside =
            with_sequential_kernels(|| with_sequential_kernels(sequential) && sequential());
        assert!(inside);
        assert!(!sequential());
    }

    #[test]
    fn taps_clip_to_the_image() {
        // output 0 of a stride-1 3x3 conv with pad 1: taps 1..3, starting at input 0
        assert_eq!(Geometry::taps(0, 1, 1, 3, 5), (1, 3, 0));
        // last output of the same conv: taps 0..2, starting at input 3
        assert_eq!(Geometry::taps(4, 1, 1, 3, 5), (0, 2, 3));
        // interior
        assert_eq!(Geometry::taps(2, 1, 1, 3, 5), (0, 3, 1));
        // stride 2, pad 0, even input 4 -> outputs 0,1; output 1 reads 2,3 and the pad at 4
        assert_eq!(Geometry::taps(1, 2, 0, 3, 4), (0, 2, 2));
    }
}
