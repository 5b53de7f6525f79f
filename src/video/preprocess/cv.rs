//! OpenCV's `cv::resize` with INTER_LINEAR on CV_8UC3 (imgproc/src/resize.cpp,
//! `resizeGeneric_` with `HResizeLinear` / `VResizeLinear`): per output index a source index
//! and two 11-bit weights rounded from f32; a horizontal pass into int32 rows (weights sum to
//! about 2048), then a vertical pass rounded as the SIMD `VResizeLinearVec_32s8u` does it:
//! `(((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2`, saturated to uint8.
//! OpenCV 5.0.0 (the fixtures' version) rounds every pixel that way, including the last ones
//! of a row; the textbook `(r0 * b0 + r1 * b1 + 2^21) >> 22` differs by 1 on 4-10% of them.
//! (For 224 wide output, 672 bytes a row, whole SIMD blocks cover the row in older versions
//! too.)
//! An exact 2:1 shrink may take OpenCV's INTER_AREA fast path instead, whose
//! `(a + b + c + d + 2) >> 2` these weights (1024, 1024) reproduce exactly.
//!
//! Only the picture rows the vertical pass reads are filtered, and all padding rows share one
//! filtered row.

use super::canvas::Canvas;
use crate::video::frame::RgbFrame;

const COEF_SCALE: f32 = 2048.0; // INTER_RESIZE_COEF_SCALE = 1 << 11

/// One axis: per output index the two source indices (clamped to the image) and weights.
struct Axis {
    index: Vec<[usize; 2]>,
    weight: Vec<[i32; 2]>,
}

impl Axis {
    /// `clamp_x`: the horizontal pass moves an out-of-range source position onto the edge
    /// pixel with weights (2048, 0); the vertical pass only clamps the row indices and keeps
    /// the fractional weights.
    fn new(in_size: usize, out_size: usize, clamp_x: bool) -> Self {
        // resize() derives scale as 1 / (dsize / ssize), both in double.
        let scale = 1.0 / (out_size as f64 / in_size as f64);
        let last = in_size as i64 - 1;
        let (mut index, mut weight) = (Vec::new(), Vec::new());
        for d in 0..out_size {
            let pos = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = pos.floor() as i64;
            let mut f = pos - s as f32;
            if clamp_x && (s < 0 || s >= last) {
                (s, f) = (s.clamp(0, last), 0.0);
            }
            // saturate_cast<short>(float) rounds half to even (cvRound).
            let w0 = ((1.0 - f) * COEF_SCALE).round_ties_even() as i32;
            let w1 = (f * COEF_SCALE).round_ties_even() as i32;
            index.push([s.clamp(0, last) as usize, (s + 1).clamp(0, last) as usize]);
            weight.push([w0, w1]);
        }
        Self { index, weight }
    }
}

/// An INTER_LINEAR resize plan from one input size to one output size.
pub struct CvLinear {
    src: (usize, usize),
    dst: (usize, usize),
    horizontal: Axis,
    vertical: Axis,
}

impl CvLinear {
    pub fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        Self {
            src: (src_w, src_h),
            dst: (dst_w, dst_h),
            horizontal: Axis::new(src_w, dst_w, true),
            vertical: Axis::new(src_h, dst_h, false),
        }
    }

    /// (width, height) of the input this plan is for.
    pub fn src_size(&self) -> (usize, usize) {
        self.src
    }

    /// Resize `canvas` (which must be `src_size()`); an unchanged size is a copy, as in OpenCV.
    pub fn resize(&self, canvas: &Canvas) -> RgbFrame {
        let size = (canvas.width(), canvas.height());
        assert_eq!(size, self.src, "plan made for another size");
        let (dst_w, dst_h) = self.dst;
        if self.dst == self.src {
            return canvas.to_frame();
        }
        if dst_w == 0 || dst_h == 0 {
            return RgbFrame::new(dst_w, dst_h, Vec::new());
        }
        let rows = FilteredRows::new(self, canvas);
        let row_len = dst_w * 3;
        let mut data = vec![0u8; dst_h * row_len];
        for (dy, out) in data.chunks_exact_mut(row_len).enumerate() {
            let [r0, r1] = self.vertical.index[dy];
            let [b0, b1] = self.vertical.weight[dy];
            vertical_row(rows.row(r0), rows.row(r1), b0, b1, out);
        }
        RgbFrame::new(dst_w, dst_h, data)
    }

    /// `HResizeLinear<uchar, int, short, 2048>` for canvas row `y` (a picture row or padding).
    fn horizontal_row(&self, canvas: &Canvas, y: Option<usize>, out: &mut [i32]) {
        let (_, left) = canvas.offsets();
        let width = canvas.picture().width;
        let pad = canvas.pad();
        let row = y.map(|y| canvas.picture_row(y));
        let pixel = |x: usize, c: usize| match (row, x.checked_sub(left)) {
            (Some(row), Some(px)) if px < width => row[px * 3 + c] as i32,
            _ => pad[c] as i32,
        };
        let taps = self.horizontal.index.iter().zip(&self.horizontal.weight);
        for (px, (&[x0, x1], &[a0, a1])) in out.chunks_exact_mut(3).zip(taps) {
            for (c, v) in px.iter_mut().enumerate() {
                *v = pixel(x0, c) * a0 + pixel(x1, c) * a1;
            }
        }
    }
}

/// The vertical pass for one output row, rounded as `VResizeLinearVec_32s8u` does.
fn vertical_row(s0: &[i32], s1: &[i32], b0: i32, b1: i32, out: &mut [u8]) {
    for ((o, &r0), &r1) in out.iter_mut().zip(s0).zip(s1) {
        let v = ((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16);
        *o = ((v + 2) >> 2).clamp(0, 255) as u8;
    }
}

/// Horizontally filtered canvas rows: the picture rows the vertical pass reads, and one row
/// standing for every padding row.
struct FilteredRows {
    top: usize,
    picture_height: usize,
    /// Slot in `data` of each picture row (usize::MAX: not read).
    slot: Vec<usize>,
    row_len: usize,
    data: Vec<i32>,
}

impl FilteredRows {
    fn new(plan: &CvLinear, canvas: &Canvas) -> Self {
        let (top, _) = canvas.offsets();
        let picture_height = canvas.picture().height;
        let row_len = plan.dst.0 * 3;
        let mut slot = vec![usize::MAX; picture_height];
        let mut data = vec![0i32; row_len]; // slot 0: the padding row
        plan.horizontal_row(canvas, None, &mut data);
        for y in plan.vertical.index.iter().flatten().copied() {
            let Some(py) = y.checked_sub(top).filter(|&py| py < picture_height) else {
                continue;
            };
            if slot[py] == usize::MAX {
                slot[py] = data.len() / row_len;
                data.resize(data.len() + row_len, 0);
                let at = data.len() - row_len;
                plan.horizontal_row(canvas, Some(py), &mut data[at..]);
            }
        }
        Self {
            top,
            picture_height,
            slot,
            row_len,
            data,
        }
    }

    /// Filtered canvas row `y`.
    fn row(&self, y: usize) -> &[i32] {
        let s = match y.checked_sub(self.top) {
            Some(py) if py < self.picture_height => self.slot[py],
            _ => 0,
        };
        &self.data[s * self.row_len..(s + 1) * self.row_len]
    }
}
