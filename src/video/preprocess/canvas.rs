//! The padded square as the resizers see it: a picture on a canvas of one colour, never built.

use crate::video::frame::RgbFrame;

/// A frame placed at (top, left) on a `width x height` canvas filled with `pad`: the padded
/// square of `pad_to_center_square`, or the bare frame when nothing is added.
pub struct Canvas<'a> {
    frame: &'a RgbFrame,
    width: usize,
    height: usize,
    top: usize,
    left: usize,
    pad: [u8; 3],
}

impl<'a> Canvas<'a> {
    /// The frame centred on a square of side max(W, H); top = (side - H) / 2 and
    /// left = (side - W) / 2 rounded down, as the reference does.
    pub fn centred_square(frame: &'a RgbFrame, pad: [u8; 3]) -> Self {
        let side = frame.width.max(frame.height);
        Self {
            frame,
            width: side,
            height: side,
            top: (side - frame.height) / 2,
            left: (side - frame.width) / 2,
            pad,
        }
    }

    /// The frame itself, no padding.
    pub fn of_frame(frame: &'a RgbFrame) -> Self {
        Self {
            frame,
            width: frame.width,
            height: frame.height,
            top: 0,
            left: 0,
            pad: [0; 3],
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// (top, left): where the frame's first pixel sits on the canvas.
    pub fn offsets(&self) -> (usize, usize) {
        (self.top, self.left)
    }

    pub fn pad(&self) -> [u8; 3] {
        self.pad
    }

    pub fn picture(&self) -> &RgbFrame {
        self.frame
    }

    /// Row `y` of the picture (picture coordinates).
    pub fn picture_row(&self, y: usize) -> &[u8] {
        let stride = self.frame.width * 3;
        &self.frame.data[y * stride..(y + 1) * stride]
    }

    /// Append canvas row `y` (`width * 3` bytes) to `out`.
    pub fn push_row(&self, y: usize, out: &mut Vec<u8>) {
        let (w, h) = (self.frame.width, self.frame.height);
        if !(self.top..self.top + h).contains(&y) {
            return push_pad(out, self.pad, self.width);
        }
        push_pad(out, self.pad, self.left);
        out.extend_from_slice(self.picture_row(y - self.top));
        push_pad(out, self.pad, self.width - self.left - w);
    }

    /// The whole canvas as a frame.
    pub fn to_frame(&self) -> RgbFrame {
        let mut data = Vec::with_capacity(self.width * self.height * 3);
        for y in 0..self.height {
            self.push_row(y, &mut data);
        }
        RgbFrame::new(self.width, self.height, data)
    }
}

fn push_pad(out: &mut Vec<u8>, pad: [u8; 3], pixels: usize) {
    out.extend(pad.iter().copied().cycle().take(pixels * 3));
}

/// A filter window on one canvas axis split at the picture's edges: the taps on padding
/// summed into `pad_weight`, the rest a window over picture indices.
pub struct Folded<'w> {
    pub pad_weight: i32,
    pub start: usize,
    pub weights: &'w [i32],
}

/// Fold the window of `weights` starting at canvas index `start` onto the picture occupying
/// canvas indices `offset..offset + len`.
pub fn fold(start: usize, weights: &[i32], offset: usize, len: usize) -> Folded<'_> {
    let end = start + weights.len();
    let lo = offset.clamp(start, end);
    let hi = (offset + len).clamp(lo, end);
    let outside = weights[..lo - start].iter().chain(&weights[hi - start..]);
    Folded {
        pad_weight: outside.fold(0i32, |a, &w| a.wrapping_add(w)),
        start: lo.saturating_sub(offset).min(len),
        weights: &weights[lo - start..hi - start],
    }
}
