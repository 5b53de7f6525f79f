//! Pillow's separable resampler (libImaging/Resample.c) with the BICUBIC filter, 8-bit path:
//! per output pixel a window of input pixels with double weights (cubic a = -0.5, support
//! widened by the scale when shrinking), normalised, rounded to 22-bit fixed point; horizontal
//! pass into a uint8 image, then the vertical pass, each rounded and clamped to uint8.

use super::{FilteredRows, RowSource};
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

/// One axis's filter: for each output index the first input index, the count and the weights.
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
            let fixed = raw
                .iter()
                .map(|&w| to_fixed(if ww != 0.0 { w / ww } else { w }))
                .collect();
            start.push(xmin);
            weights.push(fixed);
        }
        Self { start, weights }
    }

    fn taps(&self, out: usize) -> (usize, &[i32]) {
        (self.start[out], &self.weights[out])
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

    /// Resize `src` (which must be `src_size()`), as `ImagingResampleInner` does: a pass is
    /// skipped when its dimension is unchanged.
    pub fn resize(&self, src: &impl RowSource) -> RgbFrame {
        assert_eq!((src.width(), src.height()), self.src, "plan made for another size");
        let (dst_w, dst_h) = self.dst;
        if dst_w == 0 || dst_h == 0 {
            return RgbFrame::new(dst_w, dst_h, Vec::new());
        }
        let need_horizontal = dst_w != self.src.0;
        let need_vertical = dst_h != self.src.1;
        let row_len = if need_horizontal { dst_w } else { self.src.0 } * 3;
        // Only rows the vertical pass reads are filtered (Pillow's ybox_first..ybox_last).
        let rows = if need_vertical {
            let (first, _) = self.vertical.taps(0);
            let (start, taps) = self.vertical.taps(dst_h - 1);
            first..start + taps.len()
        } else {
            0..self.src.1
        };
        let filtered = FilteredRows::new(
            src,
            rows,
            |_| true,
            row_len,
            |row, out: &mut [u8]| {
                if need_horizontal {
                    self.horizontal_row(row, out)
                } else {
                    out.copy_from_slice(row)
                }
            },
        );
        let mut data = vec![0u8; dst_h * row_len];
        let mut sums = vec![0i32; row_len];
        for (yy, out) in data.chunks_exact_mut(row_len).enumerate() {
            if need_vertical {
                self.vertical_row(&filtered, yy, &mut sums, out);
            } else {
                out.copy_from_slice(filtered.row(yy));
            }
        }
        RgbFrame::new(row_len / 3, dst_h, data)
    }

    /// `ImagingResampleHorizontal_8bpc` for one row.
    fn horizontal_row(&self, row: &[u8], out: &mut [u8]) {
        for (xx, px) in out.chunks_exact_mut(3).enumerate() {
            let (start, weights) = self.horizontal.taps(xx);
            let mut sum = [HALF; 3];
            let window = &row[start * 3..(start + weights.len()) * 3];
            for (&w, p) in weights.iter().zip(window.chunks_exact(3)) {
                sum[0] += p[0] as i32 * w;
                sum[1] += p[1] as i32 * w;
                sum[2] += p[2] as i32 * w;
            }
            px.copy_from_slice(&sum.map(clip8));
        }
    }

    /// `ImagingResampleVertical_8bpc` for output row `yy`, summed a whole input row at a time
    /// (integer sums, so the order does not change the result).
    fn vertical_row(&self, rows: &FilteredRows<u8>, yy: usize, sums: &mut [i32], out: &mut [u8]) {
        let (start, weights) = self.vertical.taps(yy);
        sums.fill(HALF);
        for (i, &w) in weights.iter().enumerate() {
            for (s, &p) in sums.iter_mut().zip(rows.row(start + i)) {
                *s += p as i32 * w;
            }
        }
        for (o, &s) in out.iter_mut().zip(sums.iter()) {
            *o = clip8(s);
        }
    }
}
