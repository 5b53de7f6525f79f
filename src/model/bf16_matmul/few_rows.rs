//! Products of few rows (a decode step, one position's attention) with the second operand
//! read in place as bf16 and widened in registers.
//!
//! Two shapes of second operand are fast: contiguous columns (a transposed weight, transposed
//! keys), where each output is a dot product ([`dot_columns`]), and contiguous rows (values),
//! where each row of b is added into the outputs scaled by a's element ([`add_rows`]). The
//! kernels are plain loops over lanes of 16 that the compiler vectorises, compiled once for
//! AVX-512, once for AVX2 with FMA and once portably, the best the CPU has chosen at run time.

use super::{widen, Matrices, Size};
use rayon::prelude::*;

/// Lanes of the accumulators.
const LANES: usize = 16;
/// Output columns a task computes in the dot-product shape.
const DOT_COLUMNS: usize = 64;
/// Output columns a task computes in the row-sum shape.
const ROW_COLUMNS: usize = 256;

/// Writes each batch's (m, n) product into `out`; false (nothing written) when b's matrices
/// have neither contiguous columns nor contiguous rows.
pub(super) fn product(isa: Isa, a: &Matrices, b: &Matrices, size: Size, out: &mut [f32]) -> bool {
    let Size { m, k, n } = size;
    let by_columns = b.rows == 1;
    if !by_columns && b.cols != 1 {
        return false;
    }
    out.par_chunks_mut(m * n)
        .zip(&a.offsets)
        .zip(&b.offsets)
        .for_each(|((c, &ao), &bo)| {
            let x = rows_f32(a, ao, m, k);
            if by_columns {
                dot_columns(isa, &x, b, bo, size, c);
            } else {
                add_rows(isa, &x, b, bo, size, c);
            }
        });
    true
}

/// a's (m, k) matrix at `offset` as f32, row-major.
fn rows_f32(a: &Matrices, offset: usize, m: usize, k: usize) -> Vec<f32> {
    (0..m)
        .flat_map(|i| (0..k).map(move |j| widen(a.data[offset + i * a.rows + j * a.cols])))
        .collect()
}

/// c[i, j] = x[i, :] . b[:, j], b's columns contiguous.
fn dot_columns(isa: Isa, x: &[f32], b: &Matrices, offset: usize, size: Size, c: &mut [f32]) {
    let Size { m, k, n } = size;
    // Tasks own column ranges; their results, (n, m), are transposed into c after.
    let mut by_column = vec![0f32; n * m];
    by_column
        .par_chunks_mut(DOT_COLUMNS * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = offset + task * DOT_COLUMNS * b.cols;
            let columns = out.len() / m;
            let w = &b.data[first..first + (columns - 1) * b.cols + k];
            isa.dot_columns(x, m, k, w, b.cols, out);
        });
    for (j, column) in by_column.chunks_exact(m).enumerate() {
        for (i, &v) in column.iter().enumerate() {
            c[i * n + j] = v;
        }
    }
}

/// c[i, :] = sum over l of x[i, l] * b[l, :], b's rows contiguous.
fn add_rows(isa: Isa, x: &[f32], b: &Matrices, offset: usize, size: Size, c: &mut [f32]) {
    let Size { m, k, n } = size;
    let parts: Vec<Vec<f32>> = (0..n.div_ceil(ROW_COLUMNS))
        .into_par_iter()
        .map(|task| {
            let first = task * ROW_COLUMNS;
            let width = ROW_COLUMNS.min(n - first);
            let start = offset + first;
            let w = &b.data[start..start + (k - 1) * b.rows + width];
            let mut acc = vec![0f32; m * width];
            isa.add_rows(x, m, k, w, b.rows, &mut acc);
            acc
        })
        .collect();
    for (task, acc) in parts.iter().enumerate() {
        let first = task * ROW_COLUMNS;
        let width = acc.len() / m;
        for (i, row) in acc.chunks_exact(width).enumerate() {
            c[i * n + first..i * n + first + width].copy_from_slice(row);
        }
    }
}

/// The instruction set the kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// This CPU's, and every one below it down to the portable kernels.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::detect() == Isa::Avx512 {
                all.push(Isa::Avx512);
            }
            if Isa::detect() != Isa::Portable {
                all.push(Isa::Avx2);
            }
        }
        all
    }

    /// out[j * m + i] = x[i, :] . w[j * stride ..][..k] for the columns in `out`.
    fn dot_columns(self, x: &[f32], m: usize, k: usize, w: &[u16], stride: usize, out: &mut [f32]) {
        match self {
            // SAFETY: detect() chose these only where the CPU has their features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { x86::dot_columns_avx512(x, m, k, w, stride, out) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86::dot_columns_avx2(x, m, k, w, stride, out) },
            Isa::Portable => dot_columns_kernel::<false>(x, m, k, w, stride, out),
        }
    }

    /// acc[i, :] += x[i, l] * w[l * stride ..][..width] for l < k, width = acc.len() / m.
    fn add_rows(self, x: &[f32], m: usize, k: usize, w: &[u16], stride: usize, acc: &mut [f32]) {
        match self {
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { x86::add_rows_avx512(x, m, k, w, stride, acc) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86::add_rows_avx2(x, m, k, w, stride, acc) },
            Isa::Portable => add_rows_kernel::<false>(x, m, k, w, stride, acc),
        }
    }
}

/// The kernels compiled with the x86 extensions enabled.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{add_rows_kernel, dot_columns_kernel};

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn dot_columns_avx512(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[u16],
        s: usize,
        out: &mut [f32],
    ) {
        dot_columns_kernel::<true>(x, m, k, w, s, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_columns_avx2(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[u16],
        s: usize,
        out: &mut [f32],
    ) {
        dot_columns_kernel::<true>(x, m, k, w, s, out)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn add_rows_avx512(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[u16],
        s: usize,
        acc: &mut [f32],
    ) {
        add_rows_kernel::<true>(x, m, k, w, s, acc)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn add_rows_avx2(
        x: &[f32],
        m: usize,
        k: usize,
        w: &[u16],
        s: usize,
        acc: &mut [f32],
    ) {
        add_rows_kernel::<true>(x, m, k, w, s, acc)
    }
}

/// `a * b + c`, fused where the instruction exists (a call into libm elsewhere would be slow).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn dot_columns_kernel<const FMA: bool>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[u16],
    stride: usize,
    out: &mut [f32],
) {
    for (j, out) in out.chunks_exact_mut(m).enumerate() {
        let column = &w[j * stride..j * stride + k];
        let mut i = 0;
        while m - i >= 4 {
            dot_rows::<4, FMA>(&x[i * k..], k, column, &mut out[i..i + 4]);
            i += 4;
        }
        if m - i >= 2 {
            dot_rows::<2, FMA>(&x[i * k..], k, column, &mut out[i..i + 2]);
            i += 2;
        }
        if m - i == 1 {
            dot_rows::<1, FMA>(&x[i * k..], k, column, &mut out[i..i + 1]);
        }
    }
}

/// out[r] = x[r, :] . w for R rows of x (row length k), each chunk of w widened once.
#[inline(always)]
fn dot_rows<const R: usize, const FMA: bool>(x: &[f32], k: usize, w: &[u16], out: &mut [f32]) {
    let mut acc = [[0f32; LANES]; R];
    let body = k - k % LANES;
    for (chunk, wc) in w[..body].chunks_exact(LANES).enumerate() {
        let wf: [f32; LANES] = std::array::from_fn(|l| widen(wc[l]));
        for (r, acc) in acc.iter_mut().enumerate() {
            let start = r * k + chunk * LANES;
            let xr: &[f32; LANES] = x[start..start + LANES].try_into().expect("a lane's width");
            for l in 0..LANES {
                acc[l] = madd::<FMA>(xr[l], wf[l], acc[l]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut sum = acc.iter().sum::<f32>();
        for j in body..k {
            sum = madd::<FMA>(x[r * k + j], widen(w[j]), sum);
        }
        out[r] = sum;
    }
}

#[inline(always)]
fn add_rows_kernel<const FMA: bool>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[u16],
    stride: usize,
    acc: &mut [f32],
) {
    let width = acc.len() / m;
    let mut wf = vec![0f32; width];
    for l in 0..k {
        let row = &w[l * stride..l * stride + width];
        wf.iter_mut().zip(row).for_each(|(f, &b)| *f = widen(b));
        for (i, acc) in acc.chunks_exact_mut(width).enumerate() {
            let s = x[i * k + l];
            acc.iter_mut()
                .zip(&wf)
                .for_each(|(a, &f)| *a = madd::<FMA>(s, f, *a));
        }
    }
}
