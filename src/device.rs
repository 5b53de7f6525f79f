//! Where the model runs and in which precision: CUDA when the binary has it and a GPU is
//! there, else the CPU; bf16 on CUDA (what the checkpoints were trained in), f32 on the CPU
//! (where bf16 arithmetic is slow and gains nothing).

use crate::error::without_backtrace;
use crate::error::{Error, Result};
use candle_core::{DType, Device};
use std::str::FromStr;

/// The `--device` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("{s:?} is not auto, cpu, cuda or cuda:N")),
        }
    }
}

/// The `--dtype` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DTypeChoice {
    Auto,
    Bf16,
    F16,
    F32,
}

/// Opens the chosen device.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto if !candle_core::utils::cuda_is_available() => Ok(Device::Cpu),
        DeviceChoice::Auto => Device::new_cuda(0).or_else(|e| {
            let e = without_backtrace(e);
            tracing::debug!("no usable CUDA device ({e}); running on the CPU");
            Ok(Device::Cpu)
        }),
        DeviceChoice::Cuda(_) if !candle_core::utils::cuda_is_available() => Err(Error::usage(
            "this apollo binary was built without CUDA: use --device cpu, or build with \
             `cargo build --release --features cuda` (see README)",
        )),
        DeviceChoice::Cuda(n) => Device::new_cuda(n).map_err(|e| {
            Error::runtime(
                None,
                format!("cannot open CUDA device {n}: {}", without_backtrace(e)),
            )
        }),
    }
}

/// The precision for `device`.
pub fn select_dtype(choice: DTypeChoice, device: &Device) -> DType {
    match choice {
        DTypeChoice::Auto if device.is_cuda() => DType::BF16,
        DTypeChoice::Auto | DTypeChoice::F32 => DType::F32,
        DTypeChoice::Bf16 => DType::BF16,
        DTypeChoice::F16 => DType::F16,
    }
}

/// "cpu" or "cuda:N", as `--device` takes it.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        candle_core::DeviceLocation::Cpu => "cpu".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_defaults_to_f32() {
        let cpu = select_device(DeviceChoice::Cpu).unwrap();
        assert_eq!(select_dtype(DTypeChoice::Auto, &cpu), DType::F32);
        assert_eq!(select_dtype(DTypeChoice::Bf16, &cpu), DType::BF16);
        assert_eq!(device_name(&cpu), "cpu");
    }

    #[test]
    fn cuda_without_cuda_support_is_a_usage_error() {
        if candle_core::utils::cuda_is_available() {
            return;
        }
        let e = select_device(DeviceChoice::Cuda(0)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--features cuda"), "{e}");
        assert!(select_device(DeviceChoice::Auto).unwrap().is_cpu());
    }
}
