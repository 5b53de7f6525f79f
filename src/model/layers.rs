//! Building blocks shared by the encoders, the connector and the llm, with the reference's
//! precision: both norms compute their statistics in f32 whatever the model dtype.

use super::{bf16_matmul, bf16_ops};
use crate::checkpoint::config::Activation;
use crate::checkpoint::safetensors::Weights;
use crate::error::Result;
use candle_core::{DType, Tensor, D};

/// `nn.Linear`: `x @ weight^T + bias` over the last dim, the leading dims flattened into one
/// matrix product.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `{name}.weight` (outputs, inputs) and, with `bias`, `{name}.bias`.
    pub fn load(
        w: &Weights,
        name: &str,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) -> Result<Self> {
        let w = w.pp(name);
        Ok(Self {
            weight: w.get("weight", &[outputs, inputs])?,
            bias: if bias {
                Some(w.get("bias", &[outputs])?)
            } else {
                None
            },
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let (last, lead) = dims.split_last().expect("a tensor with dims");
        let rows = lead.iter().product::<usize>();
        let mut y = bf16_matmul::matmul(&x.reshape((rows, *last))?, &self.weight.t()?)?;
        if let Some(bias) = &self.bias {
            y = if bf16_ops::applies(&y) && bf16_ops::applies(bias) {
                bf16_ops::add_bias(&y, bias)?
            } else {
                y.broadcast_add(bias)?
            };
        }
        let mut shape = lead.to_vec();
        shape.push(self.weight.dim(0)?);
        y.reshape(shape)
    }

    /// From a weight (outputs, inputs) already at hand (a reshaped conv kernel, a tied
    /// embedding).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }
}

/// `x * s` for a Python float `s`, as torch computes it: in f32, one rounding to the dtype
/// (candle's own scalar product would round `s` to a bf16 first).
pub fn scale(x: &Tensor, s: f64) -> candle_core::Result<Tensor> {
    if bf16_ops::applies(x) {
        return bf16_ops::scale(x, s);
    }
    match x.dtype() {
        DType::F32 | DType::F64 => x.affine(s, 0.0),
        dtype => x.to_dtype(DType::F32)?.affine(s, 0.0)?.to_dtype(dtype),
    }
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        if bf16_ops::applies(x) {
            return bf16_ops::activation(self, x);
        }
        match self {
            Activation::Silu => x.silu(),
            Activation::Gelu => x.gelu_erf(),
            Activation::GeluTanh => x.gelu(),
        }
    }
}

/// `act(gate) * up`, the gated MLP's product, each op rounded to the dtype.
pub fn gated(act: Activation, gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if bf16_ops::fuses(gate) && bf16_ops::fuses(up) && gate.dtype() == up.dtype() {
        return bf16_ops::gated(act, gate, up);
    }
    act.apply(gate)? * up
}

/// The residual sum `x + y`.
pub fn residual(x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    if bf16_ops::applies(x) && bf16_ops::applies(y) {
        return bf16_ops::add(x, y);
    }
    x + y
}

/// torch's `nn.LayerNorm` (weight and bias): mean and variance over the last dim in f32, the
/// affine part in f32 too, one rounding to the model dtype at the end.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn load(w: &Weights, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.get("weight", &[size])?.to_dtype(DType::F32)?,
            bias: w.get("bias", &[size])?.to_dtype(DType::F32)?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if bf16_ops::applies(x) {
            return bf16_ops::layer_norm(x, &self.weight, &self.bias, self.eps, None);
        }
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?
            .to_dtype(dtype)
    }

    /// `forward(x) * times`, rounded after the norm and after the product.
    pub fn forward_times(&self, x: &Tensor, times: &Tensor) -> candle_core::Result<Tensor> {
        if bf16_ops::applies(x) && bf16_ops::applies(times) {
            return bf16_ops::layer_norm(x, &self.weight, &self.bias, self.eps, Some(times));
        }
        self.forward(x)?.broadcast_mul(times)
    }
}

/// The RMSNorm of Qwen2 and InternVideo2: `weight * (x * rsqrt(mean(x^2) + eps)).to(dtype)`,
/// the statistics in f32 and the weight applied after rounding to the model dtype.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn load(w: &Weights, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.get("weight", &[size])?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if bf16_ops::applies(x) && bf16_ops::applies(&self.weight) {
            return bf16_ops::rms_norm(x, &self.weight, self.eps);
        }
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn layer_norm_matches_hand_values() {
        let ln = LayerNorm {
            weight: Tensor::new(&[1f32, 2.0, 0.5], &Device::Cpu).unwrap(),
            bias: Tensor::new(&[0f32, 1.0, -1.0], &Device::Cpu).unwrap(),
            eps: 0.0,
        };
        // mean 2, variance 2/3.
        let x = Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu).unwrap();
        let y = ln.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let s = (1.5f32).sqrt();
        let want = [-s, 1.0, 0.5 * s - 1.0];
        for (a, b) in y[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn rms_norm_matches_hand_values() {
        let norm = RmsNorm {
            weight: Tensor::new(&[1f32, 3.0], &Device::Cpu).unwrap(),
            eps: 0.0,
        };
        let x = Tensor::new(&[[3f32, 4.0]], &Device::Cpu).unwrap();
        let y = norm.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let r = (12.5f32).sqrt();
        assert!((y[0][0] - 3.0 / r).abs() < 1e-6 && (y[0][1] - 12.0 / r).abs() < 1e-6);
    }

    #[test]
    fn linear_keeps_leading_dims() {
        let layer = Linear {
            weight: Tensor::new(&[[1f32, 1.0], [0.0, 2.0], [1.0, 0.0]], &Device::Cpu).unwrap(),
            bias: Some(Tensor::new(&[0f32, 0.0, 1.0], &Device::Cpu).unwrap()),
        };
        let x = Tensor::ones((2, 2, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let y = layer.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 2, 2, 3]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap()[..3],
            [2.0, 2.0, 2.0]
        );
    }
}
