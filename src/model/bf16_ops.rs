//! Elementwise and row-wise ops of bf16 tensors on the CPU, computed in f32 and rounded as the
//! reference rounds them.
//!
//! candle 0.11 runs a bf16 unary or binary op element by element on one thread (its GELU-tanh
//! even rounds to bf16 between the steps of the formula), and the reference's f32 upcasts (norm
//! statistics, LayerScale, softmax) cost a widened copy of the tensor each way. Here each op
//! widens a row into f32, computes, and rounds to bf16 once per op of the reference (where the
//! reference rounds between two ops, so does the fused kernel), in parallel over rows. Results
//! are candle's f32 computation of the same ops rounded to bf16 where that is exact; exp, erfc
//! and the activations use formulas that vectorise, a few f32 ulp from libm's, so a value
//! within that of a bf16 rounding boundary may round the other way.
//!
//! The gated activation and the attention softmax also take f32 tensors ([`Element`]): candle
//! runs an f32 activation on one thread with libm's exp, and an f32 attention softmax as three
//! passes (scale, causal bias, softmax) over a buffer of every score.

use super::bf16_matmul::reads_views;
use super::bf16_round::round;
use crate::checkpoint::config::Activation;
use candle_core::{bail, CpuStorage, DType, Result, Storage, Tensor};
use half::bf16;
use rayon::prelude::*;

/// The values the kernels that also take f32 read and write: each op's f32 result is rounded
/// to bf16, or kept as it is.
pub trait Element: Copy + Send + Sync + candle_core::WithDType {
    fn widen(self) -> f32;
    fn round(v: f32) -> Self;
    fn slice(storage: &CpuStorage) -> Option<&[Self]>;
}

impl Element for bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        widen(self)
    }
    #[inline(always)]
    fn round(v: f32) -> Self {
        round(v)
    }
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::BF16(data) => Some(data),
            _ => None,
        }
    }
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn round(v: f32) -> Self {
        v
    }
    fn slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F32(data) => Some(data),
            _ => None,
        }
    }
}

/// Whether [`gated`] and [`attention_softmax`] compute ops of `t` (bf16 or f32, on the CPU).
pub fn fuses(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::BF16 | DType::F32)
}

/// Runs `f` on `t`'s elements as the [`Element`] type of its dtype.
macro_rules! by_element {
    ($t:expr, |$e:ident| $body:expr) => {
        match $t.dtype() {
            DType::F32 => {
                type $e = f32;
                $body
            }
            _ => {
                type $e = bf16;
                $body
            }
        }
    };
}

/// Whether these kernels compute ops of `t` (a bf16 tensor on the CPU).
pub fn applies(t: &Tensor) -> bool {
    reads_views(t)
}

/// Rows a parallel task takes at least, so that short rows are not one task each.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// `f` on the contiguous bf16 elements of `t`.
fn with_bf16<R>(t: &Tensor, f: impl FnOnce(&[bf16]) -> Result<R>) -> Result<R> {
    with_elements(t, f)
}

/// `f` on the contiguous elements of `t`, of type `T`.
fn with_elements<T: Element, R>(t: &Tensor, f: impl FnOnce(&[T]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Some(data) = (match &*storage {
        Storage::Cpu(cpu) => T::slice(cpu),
        _ => None,
    }) else {
        bail!("a {:?} CPU tensor was expected", T::DTYPE);
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("a contiguous tensor was expected");
    };
    f(&data[start..end])
}

/// A parameter vector (a norm's weight, a LayerScale gamma) widened to f32.
fn vector(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()
}

/// `out[row] = f(row index, x[row])` for rows of `width` elements, in parallel.
fn map_rows<T: Element>(x: &[T], width: usize, f: impl Fn(usize, &[T], &mut [T]) + Sync) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    if width == 0 {
        return out;
    }
    let rows_per_task = (MIN_TASK_ELEMENTS / width).max(1);
    out.par_chunks_mut(rows_per_task * width)
        .zip(x.par_chunks(rows_per_task * width))
        .enumerate()
        .for_each(|(task, (dst, src))| {
            for (i, (d, s)) in dst.chunks_mut(width).zip(src.chunks(width)).enumerate() {
                f(task * rows_per_task + i, s, d);
            }
        });
    out
}

fn like<T: Element>(t: &Tensor, data: Vec<T>) -> Result<Tensor> {
    Tensor::from_vec(data, t.shape().clone(), t.device())
}

/// `act(src)` into `dst` in f32, with formulas that vectorise (libm's erff, tanhf and expf
/// are a call per element), each within a few f32 ulp of the exact value:
/// SiLU `v / (1 + e^-v)`; GELU `v * erfc(-v / sqrt 2) / 2`; GELU-tanh
/// `v / 2 * (1 + tanh(u)) = v / (1 + e^(-2u))`, u = sqrt(2/pi) (v + 0.044715 v^3).
fn activate<T: Element>(act: Activation, src: &[T], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { activate_avx512(act, src, dst) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { activate_avx2(act, src, dst) };
        }
    }
    activate_portable(act, src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn activate_avx512<T: Element>(act: Activation, src: &[T], dst: &mut [f32]) {
    activate_portable(act, src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn activate_avx2<T: Element>(act: Activation, src: &[T], dst: &mut [f32]) {
    activate_portable(act, src, dst)
}

#[inline(always)]
fn activate_portable<T: Element>(act: Activation, src: &[T], dst: &mut [f32]) {
    #[allow(clippy::excessive_precision)]
    const SQRT_TWO_OVER_PI: f32 = 0.79788456080286535587989211986876373;
    let pairs = dst.iter_mut().zip(src);
    match act {
        Activation::Silu => pairs.for_each(|(d, s)| {
            let v = s.widen();
            *d = v / (1.0 + exp(-v));
        }),
        Activation::Gelu => pairs.for_each(|(d, s)| {
            let v = s.widen();
            *d = 0.5 * v * erfc(-v * std::f32::consts::FRAC_1_SQRT_2);
        }),
        Activation::GeluTanh => pairs.for_each(|(d, s)| {
            let v = s.widen();
            let u = SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v);
            *d = v / (1.0 + exp(-2.0 * u));
        }),
    }
}

/// erfc in f32 by Numerical Recipes' Chebyshev fit (relative error under 1.2e-7 everywhere,
/// so the far tail of GELU keeps its digits).
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn erfc(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77;
    for c in [
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_68,
        -1.265_512_23,
    ] {
        p = p * t + c;
    }
    let r = t * exp(-z * z + p);
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Elements activated at once through an f32 buffer on the stack.
const BLOCK: usize = 256;

/// `act(x)`, one rounding.
pub fn activation(act: Activation, x: &Tensor) -> Result<Tensor> {
    let out = with_bf16(x, |x| {
        Ok(map_rows(x, x.len().min(MIN_TASK_ELEMENTS), |_, s, d| {
            let mut buf = [0f32; BLOCK];
            for (d, s) in d.chunks_mut(BLOCK).zip(s.chunks(BLOCK)) {
                activate(act, s, &mut buf);
                for (d, v) in d.iter_mut().zip(&buf) {
                    *d = round(*v);
                }
            }
        }))
    })?;
    like(x, out)
}

/// `act(gate) * up` of a gated MLP, rounded after the activation and after the product as the
/// reference's two ops are (bf16 or f32 tensors).
pub fn gated(act: Activation, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.dims() != up.dims() || gate.dtype() != up.dtype() {
        bail!("gate {:?} and up {:?} differ", gate, up);
    }
    by_element!(gate, |T| gated_of::<T>(act, gate, up))
}

fn gated_of<T: Element>(act: Activation, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let out = with_elements::<T, _>(gate, |g| {
        with_elements::<T, _>(up, |u| {
            let mut out = vec![T::zero(); g.len()];
            out.par_chunks_mut(MIN_TASK_ELEMENTS)
                .zip(g.par_chunks(MIN_TASK_ELEMENTS))
                .zip(u.par_chunks(MIN_TASK_ELEMENTS))
                .for_each(|((d, g), u)| {
                    let mut buf = [0f32; BLOCK];
                    for ((d, g), u) in d
                        .chunks_mut(BLOCK)
                        .zip(g.chunks(BLOCK))
                        .zip(u.chunks(BLOCK))
                    {
                        activate(act, g, &mut buf);
                        for ((d, a), u) in d.iter_mut().zip(&buf).zip(u) {
                            *d = T::round(T::round(*a).widen() * u.widen());
                        }
                    }
                });
            Ok(out)
        })
    })?;
    like(gate, out)
}

/// `x + (y.float() * gamma).to(bf16)`: InternVideo2's LayerScale (f32) on the branch `y` and
/// the residual sum, each rounded once.
pub fn residual_layer_scale(x: &Tensor, y: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    let width = *x.dims().last().unwrap_or(&0);
    let gamma = vector(gamma)?;
    if x.dims() != y.dims() || gamma.len() != width {
        bail!(
            "layer scale of {:?}, {:?}, gamma {}",
            x.dims(),
            y.dims(),
            gamma.len()
        );
    }
    let out = with_bf16(x, |xs| {
        with_bf16(y, |ys| {
            let mut out = vec![bf16::ZERO; xs.len()];
            let chunk = (MIN_TASK_ELEMENTS / width.max(1)).max(1) * width.max(1);
            out.par_chunks_mut(chunk)
                .zip(xs.par_chunks(chunk))
                .zip(ys.par_chunks(chunk))
                .for_each(|((d, xs), ys)| {
                    for ((d, xs), ys) in d
                        .chunks_mut(width)
                        .zip(xs.chunks(width))
                        .zip(ys.chunks(width))
                    {
                        for (((d, x), y), g) in d.iter_mut().zip(xs).zip(ys).zip(&gamma) {
                            let scaled = round(widen(*y) * g);
                            *d = round(widen(*x) + widen(scaled));
                        }
                    }
                });
            Ok(out)
        })
    })?;
    like(x, out)
}

/// Softmax over the last dim of attention scores (rows, keys), with the reference's steps:
/// the scores times `scale` in f32 rounded to bf16 (skipped for a scale of 1), keys past
/// `first + (row % queries)` masked when `causal_first` is given, the softmax in f32, the
/// weights rounded to bf16 (f32 scores: the same steps, nothing rounded).
pub fn attention_softmax(
    scores: &Tensor,
    scale: f64,
    causal_first: Option<usize>,
    queries: usize,
) -> Result<Tensor> {
    by_element!(scores, |T| softmax_of::<T>(
        scores,
        scale,
        causal_first,
        queries
    ))
}

fn softmax_of<T: Element>(
    scores: &Tensor,
    scale: f64,
    causal_first: Option<usize>,
    queries: usize,
) -> Result<Tensor> {
    let keys = *scores.dims().last().unwrap_or(&0);
    let scale = scale as f32;
    let out = with_elements::<T, _>(scores, |s| {
        Ok(map_rows(s, keys, |row, src, dst| {
            let visible = causal_first.map_or(keys, |first| (first + row % queries + 1).min(keys));
            softmax_row(&src[..visible], scale, &mut dst[..visible]);
            // Masked keys: exp(min - max) is 0, as the additive mask gives.
            for d in &mut dst[visible..] {
                *d = T::zero();
            }
        }))
    })?;
    like(scores, out)
}

fn softmax_row<T: Element>(src: &[T], scale: f32, dst: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { softmax_row_avx512(src, scale, dst) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { softmax_row_avx2(src, scale, dst) };
        }
    }
    softmax_row_portable(src, scale, dst)
}

/// The same code compiled for AVX-512 or AVX2 (Rust does not fuse a multiply and an add on
/// its own, so the roundings stay those of the portable code).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_row_avx512<T: Element>(src: &[T], scale: f32, dst: &mut [T]) {
    softmax_row_portable(src, scale, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softmax_row_avx2<T: Element>(src: &[T], scale: f32, dst: &mut [T]) {
    softmax_row_portable(src, scale, dst)
}

/// Lanes of the softmax's sum: one running sum in order would be a chain of dependent adds
/// as long as the row; 16 interleaved ones vectorise (and are no less accurate).
const SUM_LANES: usize = 16;

#[inline(always)]
fn softmax_row_portable<T: Element>(src: &[T], scale: f32, dst: &mut [T]) {
    let mut row: Vec<f32> = src.iter().map(|v| v.widen()).collect();
    if scale != 1.0 {
        for v in &mut row {
            *v = T::round(*v * scale).widen();
        }
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in &mut row {
        *v = exp(*v - max);
    }
    let mut lanes = [0f32; SUM_LANES];
    for chunk in row.chunks(SUM_LANES) {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    let sum: f32 = lanes.iter().sum();
    for (d, v) in dst.iter_mut().zip(&row) {
        *d = T::round(v / sum);
    }
}

/// A bf16 as the f32 it stands for (exact), in a form that vectorises.
#[inline(always)]
fn widen(v: bf16) -> f32 {
    f32::from_bits(u32::from(v.to_bits()) << 16)
}

/// `e^x` in f32 within 2 ulp, in straight-line
/// arithmetic that vectorises (libm's expf is a call per element): x = n ln2 + r with
/// |r| <= ln2/2, Cephes' polynomial for e^r, and 2^n put in the exponent bits.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn exp(x: f32) -> f32 {
    // Below this e^x is under f32's normal range (softmax weights there round to 0 anyway),
    // above it over f32's range.
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by the 1.5 * 2^23 trick (no SSE4.1 round instruction needed).
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_150_0e-4;
    p = p * r + 1.398_199_950_7e-3;
    p = p * r + 8.333_451_907_3e-3;
    p = p * r + 4.166_579_589_4e-2;
    p = p * r + 1.666_666_545_9e-1;
    p = p * r + 5.000_000_120_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// RMSNorm over the last dim: `(x * rsqrt(mean(x^2) + eps))` in f32 rounded to bf16, then
/// times the bf16 `weight`, rounded again (Qwen2's and InternVideo2's order).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let width = *x.dims().last().unwrap_or(&0);
    let weight = vector(weight)?;
    if weight.len() != width {
        bail!(
            "rms norm of width {width} with a weight of {}",
            weight.len()
        );
    }
    let eps = eps as f32;
    let out = with_bf16(x, |xs| {
        Ok(map_rows(xs, width, |_, src, dst| {
            let mut sum = 0f32;
            for v in src {
                let v = widen(*v);
                sum += v * v;
            }
            let denom = (sum * (1.0 / width as f64) as f32 + eps).sqrt();
            for ((d, v), w) in dst.iter_mut().zip(src).zip(&weight) {
                let normed = round(widen(*v) / denom);
                *d = round(widen(normed) * w);
            }
        }))
    })?;
    like(x, out)
}

/// LayerNorm over the last dim with f32 `weight` and `bias`, rounded to bf16 once; with
/// `times`, the result is then multiplied by that bf16 vector and rounded again (the
/// connector's WeightedNorm).
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    times: Option<&Tensor>,
) -> Result<Tensor> {
    let width = *x.dims().last().unwrap_or(&0);
    let (weight, bias) = (vector(weight)?, vector(bias)?);
    let times = times.map(vector).transpose()?;
    if weight.len() != width
        || bias.len() != width
        || times.as_ref().is_some_and(|t| t.len() != width)
    {
        bail!("layer norm of width {width} with parameters of other widths");
    }
    let eps = eps as f32;
    let out = with_bf16(x, |xs| {
        Ok(map_rows(xs, width, |_, src, dst| {
            // candle's mean: the sum times 1/n.
            let inv_n = (1.0 / width as f64) as f32;
            let mean = src.iter().map(|v| widen(*v)).sum::<f32>() * inv_n;
            let var = src
                .iter()
                .map(|v| {
                    let c = widen(*v) - mean;
                    c * c
                })
                .sum::<f32>()
                * inv_n;
            let denom = (var + eps).sqrt();
            for (i, (d, v)) in dst.iter_mut().zip(src).enumerate() {
                let y = round((widen(*v) - mean) / denom * weight[i] + bias[i]);
                *d = match &times {
                    Some(t) => round(widen(y) * t[i]),
                    None => y,
                };
            }
        }))
    })?;
    like(x, out)
}

/// `x * s` with `s` in f32, one rounding.
pub fn scale(x: &Tensor, s: f64) -> Result<Tensor> {
    let s = s as f32;
    let out = with_bf16(x, |x| {
        Ok(map_rows(
            x,
            x.len().min(MIN_TASK_ELEMENTS),
            |_, src, dst| {
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = round(widen(*v) * s);
                }
            },
        ))
    })?;
    like(x, out)
}

/// `x + bias` over the last dim (a linear layer's bias), one rounding.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let width = *x.dims().last().unwrap_or(&0);
    let bias = vector(bias)?;
    if bias.len() != width {
        bail!("a bias of {} for rows of {width}", bias.len());
    }
    let out = with_bf16(x, |xs| {
        Ok(map_rows(xs, width, |_, src, dst| {
            for ((d, v), b) in dst.iter_mut().zip(src).zip(&bias) {
                *d = round(widen(*v) + b);
            }
        }))
    })?;
    like(x, out)
}

/// `x + y`, one rounding.
pub fn add(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if x.dims() != y.dims() {
        bail!("sum of {:?} and {:?}", x.dims(), y.dims());
    }
    let out = with_bf16(x, |xs| {
        with_bf16(y, |ys| {
            let mut out = vec![bf16::ZERO; xs.len()];
            out.par_chunks_mut(MIN_TASK_ELEMENTS)
                .zip(xs.par_chunks(MIN_TASK_ELEMENTS))
                .zip(ys.par_chunks(MIN_TASK_ELEMENTS))
                .for_each(|((d, xs), ys)| {
                    for ((d, x), y) in d.iter_mut().zip(xs).zip(ys) {
                        *d = round(widen(*x) + widen(*y));
                    }
                });
            Ok(out)
        })
    })?;
    like(x, out)
}

#[cfg(test)]
mod tests;
