//! One LSTM layer for step-by-step decoding, with PyTorch's tensor names and gate order.

use super::Result;
use candle_core::{D, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub(super) struct LstmCell {
    /// `weight_ih_l0^T`, `[embed, 4 * hidden]`.
    w_ih_t: Tensor,
    /// `weight_hh_l0^T`, `[hidden, 4 * hidden]`.
    w_hh_t: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    /// `b_ih + b_hh`, `[4 * hidden]`.
    bias: Tensor,
    hidden: usize,
}

impl LstmCell {
    pub(super) fn new(vb: VarBuilder, input: usize, hidden: usize) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let w_ih = vb.get_with_hints((4 * hidden, input), "weight_ih_l0", init)?;
        let w_hh = vb.get_with_hints((4 * hidden, hidden), "weight_hh_l0", init)?;
        let b_ih = vb.get_with_hints(4 * hidden, "bias_ih_l0", init)?;
        let b_hh = vb.get_with_hints(4 * hidden, "bias_hh_l0", init)?;
        Ok(Self {
            w_ih_t: w_ih.t()?.contiguous()?,
            w_hh_t: w_hh.t()?.contiguous()?,
            bias: (&b_ih + &b_hh)?,
            b_ih,
            b_hh,
            hidden,
        })
    }

    /// One step for inputs `x` `[B, input]` and state `h`, `c` `[B, hidden]`.
    pub(super) fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let gates = x
            .matmul(&self.w_ih_t)?
            .add(&h.matmul(&self.w_hh_t)?)?
            .broadcast_add(&self.bias)?;
        let hd = self.hidden;
        let i = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 0, hd)?)?;
        let f = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, hd, hd)?)?;
        let g = gates.narrow(D::Minus1, 2 * hd, hd)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 3 * hd, hd)?)?;
        let c = (f.mul(c)? + i.mul(&g)?)?;
        let h = o.mul(&c.tanh()?)?;
        Ok((h, c))
    }

    pub(super) fn export(&self, prefix: &str, out: &mut HashMap<String, Tensor>) -> Result<()> {
        out.insert(
            format!("{prefix}.weight_ih_l0"),
            self.w_ih_t.t()?.contiguous()?,
        );
        out.insert(
            format!("{prefix}.weight_hh_l0"),
            self.w_hh_t.t()?.contiguous()?,
        );
        out.insert(format!("{prefix}.bias_ih_l0"), self.b_ih.clone());
        out.insert(format!("{prefix}.bias_hh_l0"), self.b_hh.clone());
        Ok(())
    }
}
