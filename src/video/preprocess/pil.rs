//! Pillow's separable resampler (libImaging/Resample.c) with the BICUBIC filter, 8-bit path:
//! per output pixel a window of input pixels with double weights (cubic a = -0.5, support
//! widened by the scale when shrinking), normalised, rounded to 22-bit fixed point; horizontal
//! pass into a uint8 image, then the vertical pass, each rounded and clamped to uint8.
//!
//! The sums are Pillow's int32 sums regrouped: the taps on padding are one term (padding rows
//! are filtered once), and the vertical pass adds whole weighted rows, which vectorises.
//! Partial sums use wrapping arithmetic: the final sums are Pillow's and fit in i32, so the
//! result is exact whatever the order (and no overflow check blocks vectorising).

use super::canvas::{fold, Canvas};
use crate::video::frame::RgbFrame;

/// 32 - 8 - 2: 8 bits for the pixel, 2 spare for the sums of negative and positive lobes.
const PRECISION_BITS: u32 = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Pillow's `bicubic_filter`.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// `clip8`: a fixed-point sum to uint8.
fn clip8(sum: i32) -> u8 {
    if sum >= 1 << (PRECISION_BITS + 8) {
        255
    } else if sum <= 0 {
        0
    } else {
        (sum >> PRECISION_BITS) as u8
    }
}

/// One axis's filter: for each output index the first input index and the weights.
struct Axis {
    start: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

impl Axis {
    /// `precompute_coeffs` (box = the whole input) then `normalize_coeffs_8bpc`, with the same
    /// double arithmetic in the same order.
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f32 as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = 2.0 * filterscale;
        let ss = 1.0 / filterscale;
        let (mut start, mut weights) = (Vec::new(), Vec::new());
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; negatives are clamped to 0 anyway.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (xmin..xmax.max(xmin))
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let ww: f64 = raw.iter().sum();
            let normalised = raw.iter().map(|&w| if ww != 0.0 { w / ww } else { w });
            start.push(xmin);
            weights.push(normalised.map(to_fixed).collect());
        }
        Self { start, weights }
    }

    fn taps(&self, out: usize) -> (usize, &[i32]) {
        (self.start[out], &self.weights[out])
    }

    fn total_weight(&self, out: usize) -> i32 {
        self.weights[out].iter().fold(0, |a, &w| a.wrapping_add(w))
    }
}

/// `normalize_coeffs_8bpc`: round half away from zero by truncating w * 2^22 +- 0.5.
fn to_fixed(w: f64) -> i32 {
    let scaled = w * (1u32 << PRECISION_BITS) as f64;
    if w < 0.0 {
        (-0.5 + scaled) as i32
    } else {
        (0.5 + scaled) as i32
    }
}

/// The horizontal pass's result: the picture's rows filtered, and the one row every padding
/// row of the canvas becomes.
struct Intermediate {
    width: usize,
    rows: Vec<u8>,
    pad_row: Vec<u8>,
}

impl Intermediate {
    fn row(&self, y: usize) -> &[u8] {
        let stride = self.width * 3;
        &self.rows[y * stride..(y + 1) * stride]
    }
}

/// A BICUBIC resize plan from one input size to one output size (coefficients computed once).
pub struct PilBicubic {
    src: (usize, usize),
    dst: (usize, usize),
    horizontal: Axis,
    vertical: Axis,
}

impl PilBicubic {
    pub fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        Self {
            src: (src_w, src_h),
            dst: (dst_w, dst_h),
            horizontal: Axis::new(src_w, dst_w),
            vertical: Axis::new(src_h, dst_h),
        }
    }

    /// (width, height) of the input this plan is for.
    pub fn src_size(&self) -> (usize, usize) {
        self.src
    }

    /// Resize `canvas` (which must be `src_size()`), as `ImagingResampleInner` does: a pass is
    /// skipped when its dimension is unchanged.
    pub fn resize(&self, canvas: &Canvas) -> RgbFrame {
        let size = (canvas.width(), canvas.height());
        assert_eq!(size, self.src, "plan made for another size");
        let (dst_w, dst_h) = self.dst;
        if dst_w == 0 || dst_h == 0 {
            return RgbFrame::new(dst_w, dst_h, Vec::new());
        }
        let inter = if dst_w != self.src.0 {
            self.horizontal_pass(canvas)
        } else {
            unfiltered(canvas)
        };
        if dst_h != self.src.1 {
            self.vertical_pass(canvas, &inter)
        } else {
            stack_rows(canvas, &inter)
        }
    }

    /// `ImagingResampleHorizontal_8bpc` over the picture rows, plus the one row every
    /// padding row of the canvas becomes.
    fn horizontal_pass(&self, canvas: &Canvas) -> Intermediate {
        let picture = canvas.picture();
        let (_, left) = canvas.offsets();
        let pad = canvas.pad();
        let dst_w = self.dst.0;
        // Per output pixel: the padding colour's share (with the rounding constant) and the
        // taps on the picture; the same for every row.
        let taps: Vec<_> = (0..dst_w)
            .map(|xx| {
                let (start, weights) = self.horizontal.taps(xx);
                let folded = fold(start, weights, left, picture.width);
                let base = pad.map(|p| pad_sum(p, folded.pad_weight));
                (base, folded.start, folded.weights)
            })
            .collect();
        let mut rows = vec![0u8; picture.height * dst_w * 3];
        for (y, out) in rows.chunks_exact_mut(dst_w * 3).enumerate() {
            let row = canvas.picture_row(y);
            for (px, &(base, start, weights)) in out.chunks_exact_mut(3).zip(&taps) {
                px.copy_from_slice(&weighted_pixel(base, &row[start * 3..], weights));
            }
        }
        let pad_row = (0..dst_w)
            .flat_map(|xx| pad.map(|p| clip8(pad_sum(p, self.horizontal.total_weight(xx)))))
            .collect();
        Intermediate {
            width: dst_w,
            rows,
            pad_row,
        }
    }

    /// `ImagingResampleVertical_8bpc`; the padding rows all equal `inter.pad_row`.
    fn vertical_pass(&self, canvas: &Canvas, inter: &Intermediate) -> RgbFrame {
        let (top, _) = canvas.offsets();
        let h = canvas.picture().height;
        let row_len = inter.width * 3;
        let mut data = vec![0u8; self.dst.1 * row_len];
        let mut sums = vec![0i32; row_len];
        for (yy, out) in data.chunks_exact_mut(row_len).enumerate() {
            let (start, weights) = self.vertical.taps(yy);
            let taps = fold(start, weights, top, h);
            sums.fill(HALF);
            accumulate(&mut sums, &inter.pad_row, taps.pad_weight);
            for (i, &weight) in taps.weights.iter().enumerate() {
                accumulate(&mut sums, inter.row(taps.start + i), weight);
            }
            finish(&sums, out);
        }
        RgbFrame::new(inter.width, self.dst.1, data)
    }
}

/// The canvas rows as they are, for a plan that keeps the width.
fn unfiltered(canvas: &Canvas) -> Intermediate {
    let picture = canvas.picture();
    let (top, _) = canvas.offsets();
    let mut rows = Vec::with_capacity(canvas.width() * picture.height * 3);
    for y in 0..picture.height {
        canvas.push_row(top + y, &mut rows);
    }
    let pad_row = canvas.pad().repeat(canvas.width());
    Intermediate {
        width: canvas.width(),
        rows,
        pad_row,
    }
}

/// The output when the height is kept: each canvas row's filtered row.
fn stack_rows(canvas: &Canvas, inter: &Intermediate) -> RgbFrame {
    let (top, _) = canvas.offsets();
    let h = canvas.picture().height;
    let mut data = Vec::with_capacity(inter.width * canvas.height() * 3);
    for y in 0..canvas.height() {
        let row = if (top..top + h).contains(&y) {
            inter.row(y - top)
        } else {
            &inter.pad_row
        };
        data.extend_from_slice(row);
    }
    RgbFrame::new(inter.width, canvas.height(), data)
}

/// One output pixel of the horizontal pass: `base` plus the weighted RGB pixels from `pixels`.
fn weighted_pixel(base: [i32; 3], pixels: &[u8], weights: &[i32]) -> [u8; 3] {
    let mut sum = base;
    for (&w, p) in weights.iter().zip(pixels.chunks_exact(3)) {
        for c in 0..3 {
            sum[c] = sum[c].wrapping_add((p[c] as i32).wrapping_mul(w));
        }
    }
    sum.map(clip8)
}

fn pad_sum(pad: u8, weight: i32) -> i32 {
    HALF.wrapping_add((pad as i32).wrapping_mul(weight))
}

fn finish(sums: &[i32], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(sums) {
        *o = clip8(s);
    }
}

/// sums[i] += row[i] * weight, with AVX2 when the CPU has it (the default x86-64 target has
/// only SSE2, which lacks a 32-bit vector multiply; AVX2 is about twice as fast here).
fn accumulate(sums: &mut [i32], row: &[u8], weight: i32) {
    if weight == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { accumulate_avx2(sums, row, weight) };
    }
    accumulate_portable(sums, row, weight)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(sums: &mut [i32], row: &[u8], weight: i32) {
    accumulate_portable(sums, row, weight)
}

#[inline(always)]
fn accumulate_portable(sums: &mut [i32], row: &[u8], weight: i32) {
    for (s, &p) in sums.iter_mut().zip(row) {
        *s = s.wrapping_add((p as i32).wrapping_mul(weight));
    }
}
