//! Products of many rows: the matrices widened to f32, multiplied by the `gemm` crate.

use super::{widen, Matrices, Size, CONVERT_CHUNK};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Writes each batch's (m, n) product into `out`, batch after batch.
pub(super) fn product(a: &Matrices, b: &Matrices, size: Size, out: &mut [f32]) {
    let Size { m, n, .. } = size;
    let threads = rayon::current_num_threads();
    // Many small matrices (attention heads): one per task; few large ones: each parallel.
    if a.offsets.len() >= threads {
        out.par_chunks_mut(m * n)
            .zip(&a.offsets)
            .zip(&b.offsets)
            .for_each(|((c, &ao), &bo)| one(a, ao, b, bo, size, c, Parallelism::None));
    } else {
        let parallelism = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        let batches = out.chunks_mut(m * n).zip(a.offsets.iter().zip(&b.offsets));
        for (c, (&ao, &bo)) in batches {
            one(a, ao, b, bo, size, c, parallelism);
        }
    }
}

/// An (m, k) by (k, n) product into `c` (m, n), row-major.
fn one(
    a: &Matrices,
    a_offset: usize,
    b: &Matrices,
    b_offset: usize,
    Size { m, k, n }: Size,
    c: &mut [f32],
    parallelism: Parallelism,
) {
    // Each operand is copied in the order its memory runs, so the copy reads contiguously:
    // rows of a, and b's columns when they are contiguous (a transposed weight), else its rows.
    let lhs = gather(a, a_offset, m, k, false);
    let b_by_columns = b.rows == 1 && b.cols != 1;
    let rhs = gather(b, b_offset, k, n, b_by_columns);
    let (rhs_cs, rhs_rs) = if b_by_columns { (k, 1) } else { (1, n) };
    // SAFETY: c holds m * n values written at row stride n; lhs holds m rows of k values;
    // rhs holds k * n values, element (i, j) at i * rhs_rs + j * rhs_cs; all three outlive
    // the call, and c is not aliased (read_dst is false, so its contents are not read).
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Matrix (rows, cols) at `offset` as f32, row-major, or column-major with `by_columns`.
fn gather(x: &Matrices, offset: usize, rows: usize, cols: usize, by_columns: bool) -> Vec<f32> {
    let (lines, len, line_step, step) = if by_columns {
        (cols, rows, x.cols, x.rows)
    } else {
        (rows, cols, x.rows, x.cols)
    };
    let mut out = vec![0f32; lines * len];
    let lines_per_task = (CONVERT_CHUNK / len.max(1)).max(1);
    out.par_chunks_mut(lines_per_task * len)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, dst) in chunk.chunks_mut(len).enumerate() {
                let start = offset + (task * lines_per_task + i) * line_step;
                if step == 1 {
                    let src = &x.data[start..start + len];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = widen(s));
                } else {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = widen(x.data[start + j * step]);
                    }
                }
            }
        });
    out
}
