//! A Keras-style `model.summary()` of a decoder.

use crate::decoder::{DecoderConfig, DecoderKind};
use serde::{Deserialize, Serialize};

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Tensor-name prefix of the layer (empty for layers without weights).
    pub name: String,
    /// Layer type, e.g. "Dense (ReLU)".
    pub kind: String,
    /// Output shape, `B` = batch, `T` = time steps.
    pub output_shape: String,
    /// What feeds it.
    pub input: String,
    pub params: usize,
}

/// The layers of a decoder with their parameter counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub kind: DecoderKind,
    pub layers: Vec<LayerSummary>,
    pub total_params: usize,
}

fn layer(name: &str, kind: &str, shape: String, input: &str, params: usize) -> LayerSummary {
    LayerSummary {
        name: name.to_string(),
        kind: kind.to_string(),
        output_shape: shape,
        input: input.to_string(),
        params,
    }
}

/// Lists the layers of the decoder `cfg` describes (all parameters are trainable).
pub fn model_summary(cfg: &DecoderConfig) -> ModelSummary {
    let (f, e, h, v) = (
        cfg.feature_dim,
        cfg.embed_dim,
        cfg.hidden_dim,
        cfg.vocab_size,
    );
    let p = cfg.dropout;
    let lstm_in = if cfg.kind == DecoderKind::Attention {
        e + f
    } else {
        e
    };
    let lstm = 4 * h * (lstm_in + h) + 8 * h;
    let mut layers = if cfg.kind == DecoderKind::Attention {
        let (c, a) = (cfg.cells(), cfg.attention_dim());
        vec![
            layer("", "Input (feature map)", format!("[B, {c}, {f}]"), "", 0),
            layer("", "Input (words)", "[B, T]".into(), "", 0),
            layer("", "Mean over cells", format!("[B, {f}]"), "feature map", 0),
            layer(
                "init_h",
                "Dense -> LSTM h0",
                format!("[B, {h}]"),
                "mean",
                h * f + h,
            ),
            layer(
                "init_c",
                "Dense -> LSTM c0",
                format!("[B, {h}]"),
                "mean",
                h * f + h,
            ),
            layer(
                "att_enc",
                "Dense",
                format!("[B, {c}, {a}]"),
                "feature map",
                a * f + a,
            ),
            layer(
                "att_dec",
                "Dense",
                format!("[B, T, {a}]"),
                "lstm h(t-1)",
                a * h + a,
            ),
            layer(
                "att_full",
                "Dense (tanh in, softmax over cells)",
                format!("[B, T, {c}]"),
                "att_enc + att_dec",
                a + 1,
            ),
            layer(
                "f_beta",
                "Dense (sigmoid gate)",
                format!("[B, T, {f}]"),
                "lstm h(t-1)",
                f * h + f,
            ),
        ]
    } else {
        vec![
            layer("", "Input (image feature)", format!("[B, {f}]"), "", 0),
            layer("", "Input (words)", "[B, T]".into(), "", 0),
        ]
    };
    match cfg.kind {
        DecoderKind::Attention => {}
        DecoderKind::Merge => {
            layers.push(layer(
                "",
                &format!("Dropout({p})"),
                format!("[B, {f}]"),
                "image feature",
                0,
            ));
            layers.push(layer(
                "image",
                "Dense (ReLU)",
                format!("[B, {h}]"),
                "dropout",
                h * f + h,
            ));
        }
        DecoderKind::Inject => {
            layers.push(layer(
                "",
                &format!("Dropout({p})"),
                format!("[B, {f}]"),
                "image feature",
                0,
            ));
            layers.push(layer(
                "init_h",
                "Dense (tanh) -> LSTM h0",
                format!("[B, {h}]"),
                "dropout",
                h * f + h,
            ));
            layers.push(layer(
                "init_c",
                "Dense (tanh) -> LSTM c0",
                format!("[B, {h}]"),
                "dropout",
                h * f + h,
            ));
        }
    }
    layers.push(layer(
        "embed",
        "Embedding",
        format!("[B, T, {e}]"),
        "words",
        v * e,
    ));
    layers.push(layer(
        "",
        &format!("Dropout({p})"),
        format!("[B, T, {e}]"),
        "embed",
        0,
    ));
    layers.push(layer(
        "lstm",
        "LSTM",
        format!("[B, T, {h}]"),
        "dropout",
        lstm,
    ));
    match cfg.kind {
        DecoderKind::Merge => {
            layers.push(layer("", "Add", format!("[B, T, {h}]"), "image + lstm", 0));
            layers.push(layer(
                "hidden",
                "Dense (ReLU)",
                format!("[B, T, {h}]"),
                "add",
                h * h + h,
            ));
            layers.push(layer(
                "output",
                "Dense (softmax)",
                format!("[B, T, {v}]"),
                "hidden",
                v * h + v,
            ));
        }
        DecoderKind::Inject | DecoderKind::Attention => {
            layers.push(layer(
                "",
                &format!("Dropout({p})"),
                format!("[B, T, {h}]"),
                "lstm",
                0,
            ));
            layers.push(layer(
                "output",
                "Dense (softmax)",
                format!("[B, T, {v}]"),
                "dropout",
                v * h + v,
            ));
        }
    }
    let total_params = layers.iter().map(|l| l.params).sum();
    ModelSummary {
        kind: cfg.kind,
        layers,
        total_params,
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Model: {} decoder", self.kind)?;
        let rule = "-".repeat(86);
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<32} {:<18} {:>12}   Input",
            "Layer (type)", "Output shape", "Param #"
        )?;
        writeln!(f, "{}", "=".repeat(86))?;
        for l in &self.layers {
            let name = if l.name.is_empty() {
                l.kind.clone()
            } else {
                format!("{} ({})", l.name, l.kind)
            };
            writeln!(
                f,
                "{:<32} {:<18} {:>12}   {}",
                name,
                l.output_shape,
                thousands(l.params),
                l.input
            )?;
        }
        writeln!(f, "{}", "=".repeat(86))?;
        writeln!(f, "Total params: {}", thousands(self.total_params))?;
        writeln!(f, "Trainable params: {}", thousands(self.total_params))?;
        write!(f, "Non-trainable params: 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_param_specs() {
        for cfg in [
            DecoderConfig::merge(2531),
            DecoderConfig::inject(100),
            DecoderConfig::attention(2535, 7, 7),
        ] {
            let s = model_summary(&cfg);
            assert_eq!(s.total_params, cfg.num_params());
            assert!(s.to_string().contains("Total params"));
        }
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
