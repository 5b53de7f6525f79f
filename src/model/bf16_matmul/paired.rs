//! Products of many rows with the CPU's bf16 dot-product instruction (AVX512-BF16's
//! `vdpbf16ps`: each f32 lane adds the products of a pair of bf16s, exactly, as an f32
//! multiply-add chain does), so neither operand is widened: the weights are read at 2 bytes
//! an element, at twice the f32 kernels' arithmetic rate.
//!
//! The operands are packed as the instruction reads them: a's rows as pairs of consecutive
//! elements along k (one u32 each, broadcast to every lane), b's columns in panels of
//! [`NR`], each lane holding one column's pair. A tile of [`MR`] rows by [`NR`] columns is
//! accumulated in registers over [`KC`] pairs at a time, so that a panel's slice stays in the
//! first-level cache while the task's row blocks pass over it.
//!
//! Tasks own blocks of [`MC`] rows by [`NC`] columns, numbered column group first: a task
//! sums its block over all of k in a buffer that stays in the second-level cache and rounds
//! it into the output once, and tasks that run one after another read the same b panels,
//! which the third-level cache then serves. (Splitting by rows alone streamed all of b from
//! memory once per row block, and kept an f32 copy of the whole output in memory.)

use super::{Matrices, Size};
use crate::model::bf16_round::round_into;
use half::bf16;
use rayon::prelude::*;

/// Rows of a tile.
const MR: usize = 8;
/// Columns of a tile: two vectors of 16 lanes.
const NR: usize = 32;
/// Pairs along k per pass over a tile (a 16 KiB slice of a b panel).
const KC: usize = 128;
/// Rows of a task's block.
const MC: usize = 16 * MR;
/// Columns of a task's block.
const NC: usize = 8 * NR;
/// Pairs of a b panel packed at a time: 64 bytes of a contiguous column.
const PACK_PAIRS: usize = 16;

/// Whether this CPU has the instruction.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
}

/// Each batch's (m, n) product rounded to bf16, batch after batch; `available()` must hold.
pub(super) fn product(a: &Matrices, b: &Matrices, size: Size) -> Vec<bf16> {
    let Size { m, k, n } = size;
    let pairs = k.div_ceil(2);
    let mut out = vec![bf16::ZERO; a.offsets.len() * m * n];
    for (c, (&ao, &bo)) in out.chunks_mut(m * n).zip(a.offsets.iter().zip(&b.offsets)) {
        let (rows, panels) = (pack_a(a, ao, m, pairs, k), pack_b(b, bo, pairs, k, n));

        let (row_blocks, column_groups) = (m.div_ceil(MC), n.div_ceil(NC));
        let c = Output {
            c: c.as_mut_ptr(),
            m,
            n,
        };
        (0..row_blocks * column_groups)
            .into_par_iter()
            .for_each_init(
                || vec![0f32; MC * NC],
                |sums, task| {
                    let block = Block {
                        row: (task % row_blocks) * MC,
                        col: (task / row_blocks) * NC,
                    };
                    // SAFETY: available() held; tasks' blocks are disjoint and within (m, n).
                    unsafe { block_product(&rows, &panels, pairs, block, sums, &c) }
                },
            );
    }
    out
}

/// An (m, n) row-major output that tasks write disjoint blocks of.
struct Output {
    c: *mut bf16,
    m: usize,
    n: usize,
}

// SAFETY: tasks only write the disjoint blocks they own.
unsafe impl Sync for Output {}

/// The top-left corner of a task's block of the output.
#[derive(Clone, Copy)]
struct Block {
    row: usize,
    col: usize,
}

/// The task's block of c: its rows of a (packed) times its panels, summed over all of k in
/// `sums` (MC by NC), then rounded into c.
///
/// # Safety
/// The CPU has AVX512-BF16; no other thread touches the block's elements of `c`.
unsafe fn block_product(
    a: &[u32],
    panels: &[u32],
    pairs: usize,
    block: Block,
    sums: &mut [f32],
    c: &Output,
) {
    let rows = MC.min(c.m - block.row);
    let width = NC.min(c.n - block.col);
    // Whole tiles: packed a has zero rows up to a multiple of MR, b zero columns up to NR.
    let (tile_rows, tile_cols) = (rows.div_ceil(MR) * MR, width.div_ceil(NR) * NR);
    for start in (0..pairs).step_by(KC) {
        let len = KC.min(pairs - start);
        for col in (0..tile_cols).step_by(NR) {
            let panel = (block.col + col) / NR * pairs * NR;
            let b = &panels[panel + start * NR..][..len * NR];
            for row in (0..tile_rows).step_by(MR) {
                let a = &a[(block.row + row) / MR * pairs * MR + start * MR..][..len * MR];
                x86::tile(a, b, len, &mut sums[row * NC + col..], NC, start == 0);
            }
        }
    }
    for (r, sums) in sums.chunks_exact(NC).take(rows).enumerate() {
        let dst = c.c.add((block.row + r) * c.n + block.col);
        round_into(&sums[..width], std::slice::from_raw_parts_mut(dst, width));
    }
}

/// b's (k, n) matrix at `offset` as panels of NR columns, each `pairs` groups of NR column
/// pairs (b[2p, j], b[2p + 1, j]) in one u32, low half first; columns past n and a last odd
/// row are zeros.
fn pack_b(b: &Matrices, offset: usize, pairs: usize, k: usize, n: usize) -> Vec<u32> {
    let mut packed = vec![0u32; n.div_ceil(NR) * pairs * NR];
    packed
        .par_chunks_mut(pairs * NR)
        .enumerate()
        .for_each(|(p, panel)| {
            // PACK_PAIRS pairs at a time, column by column, so that each column is read in
            // runs: the columns of a transposed weight lie k apart (4 KiB at k = 2048), and
            // reading a pair from each in turn kept evicting the lines the next pair needed.
            for (block, panel) in panel.chunks_mut(PACK_PAIRS * NR).enumerate() {
                let first = 2 * PACK_PAIRS * block;
                let len = k.min(first + 2 * PACK_PAIRS) - first;
                for j in 0..NR.min(n - p * NR) {
                    let column = offset + (p * NR + j) * b.cols + first * b.rows;
                    put_pairs(b.data, column, b.rows, len, &mut panel[j..], NR);
                }
            }
        });
    packed
}

/// a's (m, k) matrix at `offset` as blocks of MR rows, each `pairs` groups of MR pairs
/// (a[i, 2p], a[i, 2p + 1]) in one u32, low half first; rows past m and a last odd column
/// are zeros.
fn pack_a(a: &Matrices, offset: usize, m: usize, pairs: usize, k: usize) -> Vec<u32> {
    let mut packed = vec![0u32; m.div_ceil(MR) * pairs * MR];
    packed
        .par_chunks_exact_mut(pairs * MR)
        .enumerate()
        .for_each(|(block, chunk)| {
            for r in 0..MR.min(m - block * MR) {
                let row = offset + (block * MR + r) * a.rows;
                put_pairs(a.data, row, a.cols, k, &mut chunk[r..], MR);
            }
        });
    packed
}

/// Writes the `len` values from `start`, `step` apart, as pairs in u32s (low half first, a
/// last odd value paired with zero) to every `every`-th element of `dst`.
fn put_pairs(data: &[u16], start: usize, step: usize, len: usize, dst: &mut [u32], every: usize) {
    let pair = |low: u16, high: u16| u32::from(low) | u32::from(high) << 16;
    let (whole, values) = (len / 2, &data[start..]);
    assert!(len == 0 || values.len() > (len - 1) * step);
    assert!(len == 0 || dst.len() > (len.div_ceil(2) - 1) * every);
    // Plain index loops over checked lengths: the iterator adapters this replaced (chunks,
    // step_by, chain) did not compile to straight loads and stores, and packing showed.
    if step == 1 {
        // Adjacent values (a row of a, a column of a transposed weight): one run.
        for p in 0..whole {
            dst[p * every] = pair(values[2 * p], values[2 * p + 1]);
        }
    } else {
        for p in 0..whole {
            dst[p * every] = pair(values[2 * p * step], values[(2 * p + 1) * step]);
        }
    }
    if len % 2 == 1 {
        dst[whole * every] = pair(values[(len - 1) * step], 0);
    }
}

mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// The (MR, NR) tile at the start of `c` (row stride `ldc`) = (`first` ? 0 : itself) +
    /// the sum over `pairs` of a's pairs (broadcast) dotted with b's vectors.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile(
        a: &[u32],
        b: &[u32],
        pairs: usize,
        c: &mut [f32],
        ldc: usize,
        first: bool,
    ) {
        assert!(a.len() >= pairs * MR && b.len() >= pairs * NR);
        assert!(c.len() >= (MR - 1) * ldc + NR);
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if !first {
            for (r, acc) in acc.iter_mut().enumerate() {
                acc[0] = _mm512_loadu_ps(c.add(r * ldc));
                acc[1] = _mm512_loadu_ps(c.add(r * ldc + 16));
            }
        }
        for p in 0..pairs {
            let bp = b.add(p * NR);
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(p * MR + r) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * ldc), acc[0]);
            _mm512_storeu_ps(c.add(r * ldc + 16), acc[1]);
        }
    }
}
