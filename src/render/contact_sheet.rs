//! One image with every sampled frame: a row per clip, the clip's number on the left and each
//! frame's time under it, so a user sees at a glance what the model will see.

use super::font;
use crate::video::frame::RgbFrame;

/// Thumbnail width in pixels; heights keep the frame's aspect ratio.
const THUMB_W: usize = 192;
const GAP: usize = 4;
const LABEL_SCALE: usize = 2;
const LABEL_H: usize = font::GLYPH_H * LABEL_SCALE + 2 * GAP;
const BACKGROUND: [u8; 3] = [24, 24, 24];
const INK: [u8; 3] = [235, 235, 235];

/// One clip's frames with their times in seconds.
pub struct SheetRow<'a> {
    pub frames: Vec<(&'a RgbFrame, f64)>,
}

/// Lays `rows` out on one picture (frames of a video all share one size).
pub fn contact_sheet(rows: &[SheetRow]) -> RgbFrame {
    let first = rows.iter().flat_map(|r| r.frames.first()).next();
    let (fw, fh) = first.map_or((1, 1), |(f, _)| (f.width, f.height));
    let thumb_h = (THUMB_W * fh).div_ceil(fw).clamp(1, 4 * THUMB_W);
    let cols = rows.iter().map(|r| r.frames.len()).max().unwrap_or(0);
    let margin = font::width(&rows.len().to_string(), LABEL_SCALE) + 2 * GAP;
    let cell_w = THUMB_W + GAP;
    let cell_h = thumb_h + LABEL_H;
    let mut sheet = Canvas::new(margin + cols * cell_w + GAP, rows.len() * cell_h + GAP);
    for (r, row) in rows.iter().enumerate() {
        let y0 = GAP + r * cell_h;
        sheet.text(&(r + 1).to_string(), GAP, y0 + thumb_h / 2);
        for (c, (frame, t)) in row.frames.iter().enumerate() {
            let x0 = margin + c * cell_w;
            sheet.blit(&thumbnail(frame, THUMB_W, thumb_h), x0, y0);
            sheet.text(&format!("{t:.2}s"), x0, y0 + thumb_h + GAP);
        }
    }
    sheet.frame
}

struct Canvas {
    frame: RgbFrame,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Self {
            frame: RgbFrame::filled(w, h, BACKGROUND),
        }
    }

    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.frame.width && y < self.frame.height {
            let i = (y * self.frame.width + x) * 3;
            self.frame.data[i..i + 3].copy_from_slice(&rgb);
        }
    }

    fn blit(&mut self, src: &RgbFrame, x0: usize, y0: usize) {
        for y in 0..src.height {
            for x in 0..src.width {
                let i = (y * src.width + x) * 3;
                self.put(
                    x0 + x,
                    y0 + y,
                    [src.data[i], src.data[i + 1], src.data[i + 2]],
                );
            }
        }
    }

    fn text(&mut self, text: &str, x0: usize, y0: usize) {
        font::draw(text, LABEL_SCALE, |x, y| self.put(x0 + x, y0 + y, INK));
    }
}

/// Box-filtered downscale (or nearest upscale) to `w x h`: good enough to recognise a scene.
fn thumbnail(f: &RgbFrame, w: usize, h: usize) -> RgbFrame {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let (sy0, sy1) = span(y, h, f.height);
        for x in 0..w {
            let (sx0, sx1) = span(x, w, f.width);
            let mut sum = [0u64; 3];
            for sy in sy0..sy1 {
                for sx in sx0..sx1 {
                    let i = (sy * f.width + sx) * 3;
                    for (s, v) in sum.iter_mut().zip(&f.data[i..i + 3]) {
                        *s += u64::from(*v);
                    }
                }
            }
            let n = ((sy1 - sy0) * (sx1 - sx0)) as u64;
            data.extend(sum.iter().map(|s| ((s + n / 2) / n) as u8));
        }
    }
    RgbFrame::new(w, h, data)
}

/// Source range covered by output pixel `i` of `out` when scaling from `len` pixels.
fn span(i: usize, out: usize, len: usize) -> (usize, usize) {
    let a = i * len / out;
    let b = ((i + 1) * len / out).max(a + 1).min(len);
    (a.min(len - 1), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_one_row_per_clip() {
        let red = RgbFrame::filled(320, 180, [255, 0, 0]);
        let rows: Vec<SheetRow> = (0..3)
            .map(|c| SheetRow {
                frames: (0..4).map(|i| (&red, (c * 4 + i) as f64 * 0.5)).collect(),
            })
            .collect();
        let sheet = contact_sheet(&rows);
        assert_eq!(sheet.height, 3 * (108 + LABEL_H) + GAP);
        let margin = font::width("3", LABEL_SCALE) + 2 * GAP;
        assert_eq!(sheet.width, margin + 4 * (THUMB_W + GAP) + GAP);
        // The first thumbnail's centre is the frame's colour; the gaps are background.
        let px = |x: usize, y: usize| &sheet.data[(y * sheet.width + x) * 3..][..3];
        assert_eq!(px(margin + 96, GAP + 54), [255, 0, 0]);
        assert_eq!(px(0, 0), BACKGROUND);
    }

    #[test]
    fn thumbnails_average_their_source_pixels() {
        let f = RgbFrame::new(2, 1, vec![0, 0, 0, 200, 100, 50]);
        assert_eq!(thumbnail(&f, 1, 1).data, vec![100, 50, 25]);
    }
}
