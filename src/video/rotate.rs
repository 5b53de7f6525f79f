//! The container's display rotation (the display matrix side data of the video stream),
//! applied to decoded frames the way ffmpeg's own tools auto-rotate.

use super::frame::RgbFrame;
use video_rs::ffmpeg::{
    self, codec::packet::side_data::Type as SideDataType, format::stream::Stream,
};

/// Clockwise quarter turns to apply to each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    Cw90,
    Cw180,
    Cw270,
}

/// The display rotation of a stream in degrees clockwise, 0 when it declares none.
pub fn rotation_degrees(stream: &Stream) -> f64 {
    for side in stream.side_data() {
        if side.kind() == SideDataType::DisplayMatrix && side.data().len() >= 36 {
            // SAFETY: a display matrix is nine 32-bit integers (checked length above);
            // av_display_rotation_get only reads them.
            let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(side.data().as_ptr().cast()) };
            if ccw.is_finite() {
                return -ccw;
            }
        }
    }
    0.0
}

impl Rotation {
    pub fn from_degrees(clockwise: f64) -> Self {
        match (clockwise.round() as i64).rem_euclid(360) {
            45..=134 => Rotation::Cw90,
            135..=224 => Rotation::Cw180,
            225..=314 => Rotation::Cw270,
            _ => Rotation::None,
        }
    }

    pub fn degrees(self) -> u32 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }

    /// The displayed size of a `width x height` picture.
    pub fn size(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Rotation::Cw90 | Rotation::Cw270 => (height, width),
            _ => (width, height),
        }
    }

    pub fn apply(self, f: RgbFrame) -> RgbFrame {
        if self == Rotation::None {
            return f;
        }
        let (w, h) = (f.width, f.height);
        let (nw, nh) = self.size(w, h);
        let mut out = vec![0u8; f.data.len()];
        for r in 0..nh {
            for c in 0..nw {
                // Source pixel shown at row r, column c of the rotated picture.
                let (sr, sc) = match self {
                    Rotation::Cw90 => (h - 1 - c, r),
                    Rotation::Cw180 => (h - 1 - r, w - 1 - c),
                    Rotation::Cw270 => (c, w - 1 - r),
                    Rotation::None => unreachable!(),
                };
                let s = (sr * w + sc) * 3;
                let d = (r * nw + c) * 3;
                out[d..d + 3].copy_from_slice(&f.data[s..s + 3]);
            }
        }
        RgbFrame::new(nw, nh, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 frame whose red channel numbers the pixels 0..6 row by row.
    fn numbered() -> RgbFrame {
        RgbFrame::new(3, 2, (0..6u8).flat_map(|i| [i, 0, 0]).collect())
    }

    fn reds(f: &RgbFrame) -> Vec<u8> {
        f.data.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn quarter_turns_move_pixels_clockwise() {
        // 0 1 2      cw90:  3 0     cw180: 5 4 3     cw270: 2 5
        // 3 4 5             4 1            2 1 0            1 4
        //                   5 2                             0 3
        let f = numbered();
        let r = Rotation::Cw90.apply(f.clone());
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(reds(&r), [3, 0, 4, 1, 5, 2]);
        assert_eq!(reds(&Rotation::Cw180.apply(f.clone())), [5, 4, 3, 2, 1, 0]);
        assert_eq!(reds(&Rotation::Cw270.apply(f.clone())), [2, 5, 1, 4, 0, 3]);
        assert_eq!(Rotation::None.apply(f.clone()), f);
    }

    #[test]
    fn degrees_snap_to_quarter_turns() {
        assert_eq!(Rotation::from_degrees(90.0), Rotation::Cw90);
        assert_eq!(Rotation::from_degrees(-90.0), Rotation::Cw270);
        assert_eq!(Rotation::from_degrees(180.0), Rotation::Cw180);
        assert_eq!(Rotation::from_degrees(0.0), Rotation::None);
    }
}
