//! Products of many rows with the CPU's bf16 dot-product instruction (AVX512-BF16's
//! `vdpbf16ps`: each f32 lane adds the products of a pair of bf16s, exactly, as an f32
//! multiply-add chain does), so neither operand is widened: the weights are read at 2 bytes
//! an element, at twice the f32 kernels' arithmetic rate.
//!
//! The operands are packed as the instruction reads them: a's rows as pairs of consecutive
//! elements along k (one u32 each, broadcast to every lane), b's columns in panels of
//! [`NR`], each lane holding one column's pair. A tile of [`MR`] rows by [`NR`] columns is
//! accumulated in registers over [`KC`] pairs at a time (the b panel stays in the first-level
//! cache while every row block of a task passes over it); tasks own blocks of rows.

use super::{Matrices, Size};
use rayon::prelude::*;

/// Rows of a tile.
const MR: usize = 8;
/// Columns of a tile: two vectors of 16 lanes.
const NR: usize = 32;
/// Pairs along k per pass over a tile (a b panel of 32 KiB).
const KC: usize = 256;
/// Rows a task owns.
const ROWS_PER_TASK: usize = 8 * MR;

/// Whether this CPU has the instruction.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
}

/// Writes each batch's (m, n) product into `out`, batch after batch; `available()` must hold.
pub(super) fn product(a: &Matrices, b: &Matrices, size: Size, out: &mut [f32]) {
    let Size { m, k, n } = size;
    let pairs = k.div_ceil(2);
    for (c, (&ao, &bo)) in out.chunks_mut(m * n).zip(a.offsets.iter().zip(&b.offsets)) {
        let panels = pack_b(b, bo, pairs, k, n);
        c.par_chunks_mut(ROWS_PER_TASK * n)
            .enumerate()
            .for_each(|(task, c)| {
                let first = task * ROWS_PER_TASK;
                let rows = c.len() / n;
                let packed = pack_a(a, ao, first, rows, pairs, k);
                rows_times_panels(&packed, rows, &panels, pairs, n, c);
            });
    }
}

/// c (rows, n) = the packed rows times every panel.
fn rows_times_panels(
    a: &[u32],
    rows: usize,
    panels: &[u16],
    pairs: usize,
    n: usize,
    c: &mut [f32],
) {
    let mut tile = [0f32; MR * NR];
    for start in (0..pairs).step_by(KC) {
        let len = KC.min(pairs - start);
        for (p, panel) in panels.chunks_exact(pairs * 2 * NR).enumerate() {
            let b = &panel[start * 2 * NR..(start + len) * 2 * NR];
            let (col, width) = (p * NR, NR.min(n - p * NR));
            for (block, a) in a.chunks_exact(pairs * MR).enumerate() {
                let a = &a[start * MR..(start + len) * MR];
                // SAFETY: available() held for product(); a holds len * MR pairs, b len * 2 * NR.
                unsafe { x86::tile(a, b, len, &mut tile) };
                for r in 0..MR.min(rows - block * MR) {
                    let dst = &mut c[(block * MR + r) * n + col..][..width];
                    let src = &tile[r * NR..r * NR + width];
                    if start == 0 {
                        dst.copy_from_slice(src);
                    } else {
                        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

/// b's (k, n) matrix at `offset` as panels of NR columns, each `pairs` vectors of NR column
/// pairs (b[2p, j], b[2p + 1, j]); columns past n and a last odd row are zeros.
fn pack_b(b: &Matrices, offset: usize, pairs: usize, k: usize, n: usize) -> Vec<u16> {
    let mut packed = vec![0u16; n.div_ceil(NR) * pairs * 2 * NR];
    packed
        .par_chunks_mut(pairs * 2 * NR)
        .enumerate()
        .for_each(|(p, panel)| {
            for j in 0..NR.min(n - p * NR) {
                let column = offset + (p * NR + j) * b.cols;
                for l in 0..k {
                    panel[(l / 2) * 2 * NR + 2 * j + l % 2] = b.data[column + l * b.rows];
                }
            }
        });
    packed
}

/// Rows first..first + rows of a's (m, k) matrix at `offset` as blocks of MR rows, each
/// `pairs` groups of MR pairs (a[i, 2p], a[i, 2p + 1]) in one u32, low half first; rows past
/// the end and a last odd column are zeros.
fn pack_a(
    a: &Matrices,
    offset: usize,
    first: usize,
    rows: usize,
    pairs: usize,
    k: usize,
) -> Vec<u32> {
    let mut packed = vec![0u32; rows.div_ceil(MR) * pairs * MR];
    for (block, chunk) in packed.chunks_exact_mut(pairs * MR).enumerate() {
        for r in 0..MR.min(rows - block * MR) {
            let row = offset + (first + block * MR + r) * a.rows;
            for p in 0..pairs {
                let low = a.data[row + 2 * p * a.cols];
                let high = if 2 * p + 1 < k {
                    a.data[row + (2 * p + 1) * a.cols]
                } else {
                    0
                };
                chunk[p * MR + r] = u32::from(low) | u32::from(high) << 16;
            }
        }
    }
    packed
}

mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// tile (MR, NR) = sum over `pairs` of a's pairs (broadcast) dotted with b's vectors.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile(a: &[u32], b: &[u16], pairs: usize, tile: &mut [f32; MR * NR]) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..pairs {
            let bp = b.as_ptr().add(p * 2 * NR);
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(NR).cast()));
            for (acc, &pair) in acc.iter_mut().zip(&a[p * MR..p * MR + MR]) {
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR), acc[0]);
            _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + 16), acc[1]);
        }
    }
}
