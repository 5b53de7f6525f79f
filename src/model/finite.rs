//! The check that a stage's output holds only finite numbers. NaN or infinite weights, or an
//! overflow in half precision, would otherwise flow through the network into an empty or
//! garbage answer with success. One reduction per stage output keeps it cheap.

use crate::error::{Error, Kind, Result};
use candle_core::{DType, Tensor};

/// Fails when `output` of `stage` holds a NaN or an infinity. The sum in f32 of any tensor
/// with one is not finite, and no finite output of these sizes sums past f32's range.
pub fn check_tensor(output: &Tensor, stage: &str, dtype: DType) -> Result<()> {
    let sum: f32 = output.to_dtype(DType::F32)?.sum_all()?.to_scalar()?;
    if sum.is_finite() {
        Ok(())
    } else {
        Err(non_finite(stage, dtype))
    }
}

/// [`check_tensor`] for values already on the host (each step's logits).
pub fn check_values(values: &[f32], stage: &str, dtype: DType) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(non_finite(stage, dtype))
    }
}

fn non_finite(stage: &str, dtype: DType) -> Error {
    let overflow = match dtype {
        DType::BF16 | DType::F16 => format!(", or {} overflows (try --dtype f32)", dtype.as_str()),
        _ => String::new(),
    };
    Error::new(
        Kind::NonFinite,
        None,
        format!(
            "the model's {stage} hold NaN or infinite values: its weights are broken{overflow}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitStatus;
    use candle_core::Device;

    #[test]
    fn one_nan_or_infinity_anywhere_fails_naming_the_stage() {
        let ok = Tensor::new(&[[1.0f32, -3e38], [3e38, 0.5]], &Device::Cpu).unwrap();
        assert!(check_tensor(&ok, "x", DType::F32).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for dtype in [DType::F32, DType::BF16, DType::F16] {
                let t = Tensor::new(&[[1.0f32, 2.0], [bad, 4.0]], &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let e = check_tensor(&t, "SigLIP features", dtype).unwrap_err();
                assert_eq!(e.status(), ExitStatus::NonFinite);
                assert!(e.message.contains("SigLIP features hold NaN"), "{e}");
                assert_eq!(e.message.contains("try --dtype f32"), dtype != DType::F32);
            }
            assert!(check_values(&[0.0, bad], "prefill logits", DType::F32).is_err());
        }
        assert!(check_values(&[0.0, -1e30], "prefill logits", DType::F32).is_ok());
    }
}
