//! Caption decoders: an LSTM language model conditioned on one image feature vector.
//!
//! Two architectures share the same token conventions, parameter names and decoding code:
//!
//! - [`DecoderKind::Merge`], the tutorial's "merge" model (Tanti et al. 2017, "Where to put the
//!   image in an image caption generator"): the image feature goes through
//!   `Dropout -> Dense(hidden, ReLU)`, the words through `Embedding -> Dropout -> LSTM(hidden)`,
//!   the two are added, then `Dense(hidden, ReLU) -> Dense(vocab)`. At time step `t` the LSTM
//!   output for the prefix `START w1 .. wt` plus the image projection predicts `w(t+1)`.
//! - [`DecoderKind::Inject`], Show and Tell style (Vinyals et al. 2015): the image conditions the
//!   LSTM through its *initial state*: `h0 = tanh(Dense(Dropout(feature)))` and
//!   `c0 = tanh(Dense'(Dropout(feature)))` (two separate Dense layers, `init_h` and `init_c`).
//!   Words go through `Embedding -> Dropout -> LSTM`, the LSTM output through
//!   `Dropout -> Dense(vocab)`. The image is not fed as an input token.
//!
//! Both are built from candle_nn layers (`Linear`, `Embedding`, `rnn::LSTM`); the same network
//! serves step-by-step decoding ([`Decoder::step`]) and teacher-forced training on candle's
//! autograd ([`Decoder::forward_packed`]). Fresh weights come from one initialisation,
//! [`DecoderConfig::init_values`].
//!
//! Tensor names follow PyTorch (`weight` is `[out, in]`; the LSTM has `weight_ih_l0`,
//! `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` with the gates in PyTorch's order i, f, g, o), so
//! a `torch.nn.LSTM` / `torch.nn.Linear` state dict with the same names loads unchanged.
//! [`DecoderConfig::param_specs`] lists every tensor with its shape.
//!
//! Token ids: [`PAD`] = 0, [`START`] = 1, [`END`] = 2, [`UNK`] = 3; words start at 4.

mod cpu;
pub(crate) mod linalg;
mod net;
mod panel;
mod search;

pub use net::DropoutMasks;
pub use search::{
    BatchSearch, Caption, Constraints, DEFAULT_BLOCK_NGRAM, DEFAULT_LENGTH_ALPHA, SearchOptions,
    TokenBias, beam_search, beam_search_biased, beam_search_constrained, beam_search_many,
    beam_search_with_options, blocked_tokens, greedy, greedy_with_options, greedy_with_prefix,
};

use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Padding id (never predicted).
pub const PAD: u32 = 0;
/// Start-of-caption id, the first input of every caption (never predicted).
pub const START: u32 = 1;
/// End-of-caption id, the last target of every caption.
pub const END: u32 = 2;
/// Unknown-word id (rare words in training captions; never emitted by decoding).
pub const UNK: u32 = 3;
/// The words conventionally stored at ids 0..4 of a vocabulary.
pub const SPECIAL_WORDS: [&str; 4] = ["<pad>", "<start>", "<end>", "<unk>"];

/// Errors of the decoder module.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("invalid decoder configuration: {0}")]
    Config(String),
    #[error("invalid decoder input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, DecoderError>;

/// Where an attention decoder looked for each word of a caption: a `rows x cols` grid of
/// cells over the photo (the encoder's last feature map, 7x7 for EfficientNet-Lite0 at
/// 224 px), one map per caption word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionMaps {
    /// Cells from top to bottom.
    pub rows: usize,
    /// Cells from left to right.
    pub cols: usize,
    /// One map per caption word, in word order: `rows * cols` weights, row-major, each map
    /// summing to 1.
    pub words: Vec<Vec<f32>>,
}

/// Which decoder architecture (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    Merge,
    Inject,
    /// Show, Attend and Tell (Xu et al. 2015), soft attention: the decoder reads the
    /// encoder's feature map cell by cell (see [`AttentionConfig`]).
    Attention,
}

impl std::fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecoderKind::Merge => "merge",
            DecoderKind::Inject => "inject",
            DecoderKind::Attention => "attention",
        })
    }
}

/// The attention decoder's grid and attention size.
///
/// The network (parameter names in brackets): the image is the encoder's feature map,
/// `cells = rows * cols` vectors `a_i` of `feature_dim` values. `h0 = init_h(mean a)`,
/// `c0 = init_c(mean a)` (linear). At each step, with the previous state `h`:
/// `e_i = att_full(tanh(att_enc(a_i) + att_dec(h)))`, `alpha = softmax(e)` over the cells,
/// `z = sigmoid(f_beta(h)) * sum_i alpha_i a_i` (the gating scalar of the paper, one per
/// feature), then one LSTM step on `[Dropout(embed(word)), z]` and
/// `logits = output(Dropout(h'))`. Training adds the doubly stochastic regularisation
/// `ATTENTION_REG * mean over captions and cells of (1 - sum_t alpha_ti)^2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionConfig {
    /// Cells from top to bottom (7 for EfficientNet-Lite0 at 224 px).
    pub rows: usize,
    /// Cells from left to right.
    pub cols: usize,
    /// Size of the additive attention's hidden layer.
    pub attention_dim: usize,
}

/// Weight of the doubly stochastic attention regularisation in the training loss.
pub const ATTENTION_REG: f32 = 1.0;

/// Sizes of a decoder. `Default` is the tutorial's merge model for a 1280-d EfficientNet-Lite0
/// feature with a placeholder vocabulary size (set `vocab_size` from the real vocabulary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderConfig {
    pub kind: DecoderKind,
    /// Length of the image feature vector (1280 for EfficientNet-Lite0).
    pub feature_dim: usize,
    /// Word embedding size.
    pub embed_dim: usize,
    /// LSTM state size; also the size of the merge model's image projection and hidden Dense.
    pub hidden_dim: usize,
    /// Number of token ids, specials included.
    pub vocab_size: usize,
    /// Dropout probability used in training (inverted dropout; decoding never drops).
    pub dropout: f32,
    /// The grid and attention size of [`DecoderKind::Attention`] (`None` for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionConfig>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self::merge(2531)
    }
}

/// One named parameter tensor and its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

impl ParamSpec {
    fn new(name: &str, shape: &[usize]) -> Self {
        Self {
            name: name.to_string(),
            shape: shape.to_vec(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DecoderConfig {
    /// The tutorial's merge model (feature 1280, embedding 256, LSTM 256, dropout 0.5).
    pub fn merge(vocab_size: usize) -> Self {
        Self {
            kind: DecoderKind::Merge,
            feature_dim: 1280,
            embed_dim: 256,
            hidden_dim: 256,
            vocab_size,
            dropout: 0.5,
            attention: None,
        }
    }

    /// The attention decoder of the PyTorch baseline for a `rows x cols` grid of
    /// 1280-d cells: embedding 256, LSTM 512, attention 256, dropout 0.5.
    pub fn attention(vocab_size: usize, rows: usize, cols: usize) -> Self {
        Self {
            kind: DecoderKind::Attention,
            feature_dim: 1280,
            embed_dim: 256,
            hidden_dim: 512,
            vocab_size,
            dropout: 0.5,
            attention: Some(AttentionConfig {
                rows,
                cols,
                attention_dim: 256,
            }),
        }
    }

    /// Number of cells of the image grid (1 for the pooled-feature decoders).
    pub fn cells(&self) -> usize {
        match (self.kind, self.attention) {
            (DecoderKind::Attention, Some(a)) => a.rows * a.cols,
            _ => 1,
        }
    }

    /// Values of one image's input: `feature_dim` for merge and inject (the pooled
    /// feature), `cells * feature_dim` for attention (the feature map, row-major
    /// `[rows, cols, feature_dim]`).
    pub fn input_dim(&self) -> usize {
        self.cells() * self.feature_dim
    }

    /// The attention size (0 for the pooled-feature decoders).
    pub fn attention_dim(&self) -> usize {
        match (self.kind, self.attention) {
            (DecoderKind::Attention, Some(a)) => a.attention_dim,
            _ => 0,
        }
    }

    /// The inject model with the same sizes as [`DecoderConfig::merge`].
    pub fn inject(vocab_size: usize) -> Self {
        Self {
            kind: DecoderKind::Inject,
            ..Self::merge(vocab_size)
        }
    }

    /// Checks sizes and dropout.
    pub fn validate(&self) -> Result<()> {
        let dims = [
            ("feature_dim", self.feature_dim),
            ("embed_dim", self.embed_dim),
            ("hidden_dim", self.hidden_dim),
        ];
        for (name, v) in dims {
            if v == 0 || v > 1 << 16 {
                return Err(DecoderError::Config(format!(
                    "{name} = {v} (must be between 1 and 65536)"
                )));
            }
        }
        if self.vocab_size <= UNK as usize + 1 || self.vocab_size > 1 << 24 {
            return Err(DecoderError::Config(format!(
                "vocab_size = {} (must hold the 4 special tokens and at least one word)",
                self.vocab_size
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(DecoderError::Config(format!(
                "dropout = {} (must be in [0, 1))",
                self.dropout
            )));
        }
        match (self.kind, self.attention) {
            (DecoderKind::Attention, None) => {
                return Err(DecoderError::Config(
                    "an attention decoder needs its grid (`attention` in config.json)".into(),
                ));
            }
            (DecoderKind::Attention, Some(a)) => {
                if a.rows == 0 || a.cols == 0 || a.rows * a.cols > 4096 {
                    return Err(DecoderError::Config(format!(
                        "attention grid {}x{} (must have 1 to 4096 cells)",
                        a.rows, a.cols
                    )));
                }
                if a.attention_dim == 0 || a.attention_dim > 1 << 16 {
                    return Err(DecoderError::Config(format!(
                        "attention_dim = {} (must be between 1 and 65536)",
                        a.attention_dim
                    )));
                }
            }
            (_, Some(_)) => {
                return Err(DecoderError::Config(format!(
                    "a {} decoder has no attention grid",
                    self.kind
                )));
            }
            (_, None) => {}
        }
        Ok(())
    }

    /// Every parameter tensor, in a fixed order (the order of the training buffers).
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let (f, e, h, v) = (
            self.feature_dim,
            self.embed_dim,
            self.hidden_dim,
            self.vocab_size,
        );
        let mut specs = Vec::new();
        match self.kind {
            DecoderKind::Merge => {
                specs.push(ParamSpec::new("image.weight", &[h, f]));
                specs.push(ParamSpec::new("image.bias", &[h]));
            }
            DecoderKind::Inject | DecoderKind::Attention => {
                specs.push(ParamSpec::new("init_h.weight", &[h, f]));
                specs.push(ParamSpec::new("init_h.bias", &[h]));
                specs.push(ParamSpec::new("init_c.weight", &[h, f]));
                specs.push(ParamSpec::new("init_c.bias", &[h]));
            }
        }
        if self.kind == DecoderKind::Attention {
            let a = self.attention_dim();
            specs.push(ParamSpec::new("att_enc.weight", &[a, f]));
            specs.push(ParamSpec::new("att_enc.bias", &[a]));
            specs.push(ParamSpec::new("att_dec.weight", &[a, h]));
            specs.push(ParamSpec::new("att_dec.bias", &[a]));
            specs.push(ParamSpec::new("att_full.weight", &[1, a]));
            specs.push(ParamSpec::new("att_full.bias", &[1]));
            specs.push(ParamSpec::new("f_beta.weight", &[f, h]));
            specs.push(ParamSpec::new("f_beta.bias", &[f]));
        }
        // The attention LSTM reads the word and the attended image features.
        let lstm_in = if self.kind == DecoderKind::Attention {
            e + f
        } else {
            e
        };
        specs.push(ParamSpec::new("embed.weight", &[v, e]));
        specs.push(ParamSpec::new("lstm.weight_ih_l0", &[4 * h, lstm_in]));
        specs.push(ParamSpec::new("lstm.weight_hh_l0", &[4 * h, h]));
        specs.push(ParamSpec::new("lstm.bias_ih_l0", &[4 * h]));
        specs.push(ParamSpec::new("lstm.bias_hh_l0", &[4 * h]));
        if self.kind == DecoderKind::Merge {
            specs.push(ParamSpec::new("hidden.weight", &[h, h]));
            specs.push(ParamSpec::new("hidden.bias", &[h]));
        }
        specs.push(ParamSpec::new("output.weight", &[v, h]));
        specs.push(ParamSpec::new("output.bias", &[v]));
        specs
    }

    /// Total number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.param_specs().iter().map(ParamSpec::len).sum()
    }

    /// The one initialisation of every decoder (CPU engine, candle training, [`Decoder::init`]):
    /// all parameters in [`DecoderConfig::param_specs`] order, reproducible from `seed`.
    /// Glorot-uniform Dense and input kernels, uniform(±1/sqrt(hidden)) recurrent kernel,
    /// uniform(±0.05) embeddings, zero biases except the LSTM forget gate (1, as Keras'
    /// `unit_forget_bias`).
    pub fn init_values(&self, seed: u64) -> Result<Vec<f32>> {
        self.validate()?;
        let specs = self.param_specs();
        let mut out = vec![0.0f32; self.num_params()];
        let mut rng = Rng::derive(&[seed, 0x1417]);
        let h = self.hidden_dim;
        let mut offset = 0;
        for spec in &specs {
            let slice = &mut out[offset..offset + spec.len()];
            offset += spec.len();
            let bound = match spec.name.as_str() {
                "embed.weight" => 0.05,
                "lstm.weight_hh_l0" => 1.0 / (h as f32).sqrt(),
                "lstm.bias_ih_l0" => {
                    slice[h..2 * h].fill(1.0);
                    continue;
                }
                _ if spec.shape.len() == 1 => continue,
                _ => (6.0 / (spec.shape[0] + spec.shape[1]) as f32).sqrt(),
            };
            for x in slice.iter_mut() {
                *x = (rng.next_f32() * 2.0 - 1.0) * bound;
            }
        }
        Ok(out)
    }

    /// [`DecoderConfig::init_values`] as named tensors on `device`.
    pub fn init_tensors(&self, seed: u64, device: &Device) -> Result<HashMap<String, Tensor>> {
        let values = self.init_values(seed)?;
        let mut out = HashMap::new();
        let mut offset = 0;
        for spec in self.param_specs() {
            let t = Tensor::from_slice(
                &values[offset..offset + spec.len()],
                spec.shape.as_slice(),
                device,
            )?;
            offset += spec.len();
            out.insert(spec.name, t);
        }
        Ok(out)
    }
}

/// The recurrent state of a batch of captions being decoded (one row per caption).
#[derive(Clone, Debug)]
pub struct DecodeState {
    h: Tensor,
    c: Tensor,
    /// The merge model's image projection (`ReLU(Dense(feature))`), computed once.
    image: Option<Tensor>,
    /// Attention: the feature map `[B, cells, feature_dim]` and its projection
    /// `att_enc(a)` `[B, cells, attention_dim]`, computed once.
    cells: Option<(Tensor, Tensor)>,
}

impl DecodeState {
    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.h.dims().first().copied().unwrap_or(0)
    }

    /// Keeps (and repeats or reorders) the given rows, e.g. the parents of a beam's survivors.
    pub fn select(&self, rows: &[u32]) -> Result<Self> {
        let n = self.batch_size();
        if let Some(bad) = rows.iter().find(|&&r| r as usize >= n) {
            return Err(DecoderError::Input(format!(
                "row {bad} selected from a state of {n} rows"
            )));
        }
        let idx = Tensor::new(rows, self.h.device())?;
        Ok(Self {
            h: self.h.index_select(&idx, 0)?,
            c: self.c.index_select(&idx, 0)?,
            image: match &self.image {
                Some(t) => Some(t.index_select(&idx, 0)?),
                None => None,
            },
            cells: match &self.cells {
                Some((a, p)) => Some((a.index_select(&idx, 0)?, p.index_select(&idx, 0)?)),
                None => None,
            },
        })
    }

    /// Appends the rows of `other` (a state of the same decoder) after this state's rows.
    pub fn append(&mut self, other: &DecodeState) -> Result<()> {
        let cat = |a: &Tensor, b: &Tensor| Tensor::cat(&[a, b], 0);
        let image = match (&self.image, &other.image) {
            (Some(a), Some(b)) => Some(cat(a, b)?),
            (None, None) => None,
            _ => {
                return Err(DecoderError::Input(
                    "cannot join decode states of different decoders".into(),
                ));
            }
        };
        let cells = match (&self.cells, &other.cells) {
            (Some((a, p)), Some((b, q))) => Some((cat(a, b)?, cat(p, q)?)),
            (None, None) => None,
            _ => {
                return Err(DecoderError::Input(
                    "cannot join decode states of different decoders".into(),
                ));
            }
        };
        *self = DecodeState {
            h: cat(&self.h, &other.h)?,
            c: cat(&self.c, &other.c)?,
            image,
            cells,
        };
        Ok(())
    }
}

/// A decoder of either kind, built from candle_nn layers (`Linear`, `Embedding`,
/// `rnn::LSTM`), ready for decoding (no dropout) and, through [`Decoder::forward_packed`], for
/// teacher-forced training on candle's autograd.
///
/// On the CPU, [`greedy`] and [`beam_search`] run a copy of the weights laid out for
/// step-by-step decoding (see `cpu.rs`) instead of candle ops: same network, same results up
/// to float rounding, several times faster for a beam's few rows. [`Decoder::step`] always
/// uses the candle network.
#[derive(Clone, Debug)]
pub struct Decoder {
    net: net::Net,
    cpu: Option<Arc<cpu::CpuDecoder>>,
}

impl Decoder {
    /// Builds the decoder named by `cfg.kind` from `vb`, which must hold every tensor of
    /// [`DecoderConfig::param_specs`] (fresh weights come from [`Decoder::init`], the one
    /// initialisation scheme).
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let mut tensors = HashMap::new();
        for spec in cfg.param_specs() {
            if !vb.contains_tensor(&spec.name) {
                return Err(DecoderError::Input(format!(
                    "tensor {} is missing",
                    spec.name
                )));
            }
            let t = vb.get(spec.shape.as_slice(), &spec.name)?;
            tensors.insert(spec.name, t);
        }
        let net = net::Net::new(cfg, tensors, vb.device())?;
        let mut d = Self { net, cpu: None };
        if d.device().is_cpu() {
            d.cpu = Some(Arc::new(cpu::CpuDecoder::new(cfg, d.net.tensors())?));
        }
        Ok(d)
    }

    /// A freshly initialised decoder ([`DecoderConfig::init_values`]), reproducible from `seed`.
    pub fn init(cfg: &DecoderConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_tensors(cfg, cfg.init_tensors(seed, device)?, device)
    }

    /// Builds a decoder from named tensors (for instance the training buffers or a
    /// safetensors file), checking every name and shape first.
    pub fn from_tensors(
        cfg: &DecoderConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        for spec in cfg.param_specs() {
            match tensors.get(&spec.name) {
                None => {
                    return Err(DecoderError::Input(format!(
                        "tensor {} is missing",
                        spec.name
                    )));
                }
                Some(t) if t.dims() != spec.shape.as_slice() => {
                    return Err(DecoderError::Input(format!(
                        "tensor {} has shape {:?}, expected {:?}",
                        spec.name,
                        t.dims(),
                        spec.shape
                    )));
                }
                Some(_) => {}
            }
        }
        Self::new(cfg, VarBuilder::from_tensors(tensors, DType::F32, device))
    }

    /// The same decoder decoding through candle ops even on the CPU (for cross-checks and
    /// for training, where the fast path's copy of the weights would go stale).
    pub fn without_cpu_fast_path(mut self) -> Self {
        self.cpu = None;
        self
    }

    /// Whether [`greedy`] and [`beam_search`] use the CPU fast path.
    pub fn has_cpu_fast_path(&self) -> bool {
        self.cpu.is_some()
    }

    fn cpu(&self) -> Option<&cpu::CpuDecoder> {
        self.cpu.as_deref()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &DecoderConfig {
        self.net.config()
    }

    /// The device its weights live on.
    pub fn device(&self) -> &Device {
        self.net.device()
    }

    /// The initial state for image features `[B, input_dim]` (or `[input_dim]`; see
    /// [`DecoderConfig::input_dim`]).
    pub fn start(&self, features: &Tensor) -> Result<DecodeState> {
        let features = check_features(features, self.config().input_dim())?
            .to_device(self.device())?
            .to_dtype(DType::F32)?;
        self.net.start(&features)
    }

    /// Feeds one token per row; returns log-probabilities of the next token `[B, vocab]`
    /// (log-softmax over the whole vocabulary) and the new state.
    pub fn step(&self, state: &DecodeState, tokens: &[u32]) -> Result<(Tensor, DecodeState)> {
        if tokens.len() != state.batch_size() {
            return Err(DecoderError::Input(format!(
                "{} tokens for a state of {} rows",
                tokens.len(),
                state.batch_size()
            )));
        }
        check_tokens(tokens, self.config().vocab_size)?;
        let (log_probs, _, next) = self.net.step(state, tokens)?;
        Ok((log_probs, next))
    }

    /// [`Decoder::step`] that also returns where an attention decoder looked:
    /// `[B, cells]`, each row summing to 1 (`None` for the other kinds).
    pub fn step_with_attention(
        &self,
        state: &DecodeState,
        tokens: &[u32],
    ) -> Result<(Tensor, Option<Tensor>, DecodeState)> {
        if tokens.len() != state.batch_size() {
            return Err(DecoderError::Input(format!(
                "{} tokens for a state of {} rows",
                tokens.len(),
                state.batch_size()
            )));
        }
        check_tokens(tokens, self.config().vocab_size)?;
        self.net.step(state, tokens)
    }

    /// Teacher-forced logits of a *packed* batch (like PyTorch's `PackedSequence`): the
    /// captions are sorted longest first, and time step `t` holds `steps[t]` rows, the
    /// captions still running (a prefix of the batch). `features` is `[B, feature_dim]` in
    /// that order, `tokens` the input ids of every packed row (`sum(steps)`, time-major).
    /// Returns the logits `[sum(steps), vocab]` in the same row order. `masks` applies
    /// inverted dropout (drawn by the caller, so that runs are reproducible on any device).
    pub fn forward_packed(
        &self,
        features: &Tensor,
        tokens: &Tensor,
        steps: &[usize],
        masks: Option<&DropoutMasks>,
    ) -> Result<Tensor> {
        Ok(self.net.forward_packed(features, tokens, steps, masks)?.0)
    }

    /// [`Decoder::forward_packed`] that also returns the attention weights of every packed
    /// row, `[sum(steps), cells]` (`None` for the pooled-feature decoders).
    pub fn forward_packed_with_attention(
        &self,
        features: &Tensor,
        tokens: &Tensor,
        steps: &[usize],
        masks: Option<&DropoutMasks>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        self.net.forward_packed(features, tokens, steps, masks)
    }

    /// Every parameter under its [`ParamSpec`] name and shape (for saving).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        Ok(self.net.tensors().clone())
    }
}

fn check_tokens(tokens: &[u32], vocab: usize) -> Result<()> {
    if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(DecoderError::Input(format!(
            "token id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    Ok(())
}

/// Accepts `[B, F]` or `[F]` (one image) and returns `[B, F]`.
fn check_features(features: &Tensor, feature_dim: usize) -> Result<Tensor> {
    let f = match features.dims() {
        [f] if *f == feature_dim => features.unsqueeze(0)?,
        [b, f] if *f == feature_dim && *b > 0 => features.clone(),
        dims => {
            return Err(DecoderError::Input(format!(
                "image features have shape {dims:?}, expected [batch, {feature_dim}] or [{feature_dim}]"
            )));
        }
    };
    Ok(f)
}

/// The geometric mean of word probabilities (0 for an empty caption): how sure the decoder was
/// of its words, not a calibrated probability that the caption is right.
pub fn geometric_mean_probability(probabilities: impl ExactSizeIterator<Item = f32>) -> f32 {
    let n = probabilities.len();
    if n == 0 {
        return 0.0;
    }
    let mean_log = probabilities
        .map(|p| f64::from(p.max(1e-12)).ln())
        .sum::<f64>()
        / n as f64;
    mean_log.exp() as f32
}
