//! Matrix products of bf16 tensors on the CPU.
//!
//! candle 0.11's CPU matmul has no bf16 kernel: it widens both operands' *whole storages* to
//! f32 on every call, so a decode step widens every weight matrix and each layer's whole
//! key/value buffer, and the rows a token needs cost as much as a prefill's. Here only the
//! matrices the product reads are touched:
//!
//! - few rows ([`FEW_ROWS`] or fewer: a decode step, attention of one new position): the
//!   weights stay bf16 and are widened in registers as the dot products read them
//!   ([`few_rows`]), so a step reads each weight once, at 2 bytes an element;
//! - more rows, on CPUs with AVX512-BF16: both operands packed, still bf16, for the
//!   instruction that multiplies pairs of bf16s into f32 lanes ([`paired`]), twice the f32
//!   kernels' rate and what PyTorch's oneDNN uses;
//! - more rows elsewhere: the operands' matrices are widened into f32 buffers and multiplied
//!   by the `gemm` crate, candle's own f32 kernel ([`widened`]), which the conversion costs
//!   little against (it is linear in the operands, the product is not).
//!
//! All accumulate in f32 and round once to bf16, as candle's and PyTorch's bf16 products do;
//! other devices and dtypes go to candle's `matmul` unchanged.

mod few_rows;
#[cfg(target_arch = "x86_64")]
mod paired;
mod widened;

use super::bf16_round::round_into;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use few_rows::Isa;
use half::bf16;
use half::slice::HalfFloatSliceExt as _;
use rayon::prelude::*;

/// Products with at most this many rows per matrix take the path that keeps weights in bf16.
const FEW_ROWS: usize = 8;

/// `a.matmul(b)`, with bf16 CPU tensors of equal batch dims computed here.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let rank = a.rank();
    let ours = reads_views(a)
        && reads_views(b)
        && rank >= 2
        && b.rank() == rank
        && a.dims()[..rank - 2] == b.dims()[..rank - 2]
        && a.dims()[rank - 1] == b.dims()[rank - 2];
    if ours {
        a.apply_op2_no_bwd(b, &Bf16Matmul)
    } else {
        a.matmul(b)
    }
}

/// Whether [`matmul`] computes products of `t` itself, reading any strides.
pub fn reads_views(t: &Tensor) -> bool {
    t.dtype() == DType::BF16 && t.device().is_cpu()
}

/// One operand's matrices: element (i, j) of batch `b` at `offsets[b] + i * rows + j * cols`.
struct Matrices<'a> {
    data: &'a [u16],
    offsets: Vec<usize>,
    rows: usize,
    cols: usize,
}

impl<'a> Matrices<'a> {
    fn new(data: &'a [bf16], layout: &Layout) -> Self {
        let dims = layout.dims();
        let stride = layout.stride();
        let rank = dims.len();
        let mut offsets = vec![layout.start_offset()];
        for (&dim, &step) in dims[..rank - 2].iter().zip(&stride[..rank - 2]) {
            offsets = offsets
                .iter()
                .flat_map(|&o| (0..dim).map(move |i| o + i * step))
                .collect();
        }
        Self {
            data: data.reinterpret_cast(),
            offsets,
            rows: stride[rank - 2],
            cols: stride[rank - 1],
        }
    }
}

struct Bf16Matmul;

impl CustomOp2 for Bf16Matmul {
    fn name(&self) -> &'static str {
        "bf16-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::BF16(a), CpuStorage::BF16(b)) = (s1, s2) else {
            candle_core::bail!("bf16-matmul takes two bf16 tensors");
        };
        let dims = l1.dims();
        let rank = dims.len();
        let (m, k, n) = (dims[rank - 2], dims[rank - 1], l2.dims()[rank - 1]);
        let (a, b) = (Matrices::new(a, l1), Matrices::new(b, l2));
        let size = Size { m, k, n };
        let mut shape = dims[..rank - 2].to_vec();
        shape.extend([m, n]);
        Ok((CpuStorage::BF16(product(&a, &b, size)), shape.into()))
    }
}

/// The batches' products, rounded to bf16.
fn product(a: &Matrices, b: &Matrices, size: Size) -> Vec<bf16> {
    let Size { m, k, n } = size;
    #[cfg(target_arch = "x86_64")]
    if m > FEW_ROWS && k > 0 && paired::available() {
        return paired::product(a, b, size);
    }
    let mut out = vec![0f32; a.offsets.len() * m * n];
    // k = 0: every output is an empty sum.
    if m * n * k > 0 && (m > FEW_ROWS || !few_rows::product(Isa::detect(), a, b, size, &mut out)) {
        widened::product(a, b, size, &mut out);
    }
    narrow(&out)
}

/// The product's sizes: (m, k) times (k, n).
#[derive(Clone, Copy)]
struct Size {
    m: usize,
    k: usize,
    n: usize,
}

/// Elements a parallel task converts at least.
const CONVERT_CHUNK: usize = 1 << 16;

/// f32 to bf16, rounded to nearest even as candle and torch round.
fn narrow(values: &[f32]) -> Vec<bf16> {
    let mut out = vec![bf16::ZERO; values.len()];
    out.par_chunks_mut(CONVERT_CHUNK)
        .zip(values.par_chunks(CONVERT_CHUNK))
        .for_each(|(dst, src)| round_into(src, dst));
    out
}

/// A bf16's bits as the f32 it stands for (exact).
#[inline(always)]
fn widen(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

#[cfg(test)]
mod tests;
