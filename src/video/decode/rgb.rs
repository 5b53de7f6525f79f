//! Decoded pictures to packed RGB8 (swscale, as the ffmpeg tool converts), the container's
//! rotation applied.

use super::Video;
use crate::error::{Error, Result};
use crate::video::frame::RgbFrame;
use video_rs::ffmpeg::{format, frame, software::scaling};

/// An RGB converter for one source format and size.
pub(super) struct Scaler {
    context: scaling::Context,
    source: (format::Pixel, u32, u32),
}

// SAFETY: a swscale context holds no thread-bound state; it is only ever used by the one
// thread that owns the video it belongs to.
unsafe impl Send for Scaler {}

impl Video {
    /// Converts a decoded picture to packed RGB8 and applies the container's rotation.
    pub(super) fn convert_rgb(&mut self, picture: &frame::Video) -> Result<RgbFrame> {
        let source = (picture.format(), picture.width(), picture.height());
        if self.scaler.as_ref().map(|s| s.source) != Some(source) {
            let context = scaling::Context::get(
                source.0,
                source.1,
                source.2,
                format::Pixel::RGB24,
                source.1,
                source.2,
                scaling::Flags::BICUBIC,
            )
            .map_err(|e| {
                Error::input(
                    &self.info.path,
                    format!("cannot convert frames to RGB ({e})"),
                )
            })?;
            self.scaler = Some(Scaler { context, source });
        }
        let scaler = self.scaler.as_mut().expect("set above");
        let mut rgb = frame::Video::empty();
        scaler.context.run(picture, &mut rgb).map_err(|e| {
            Error::input(
                &self.info.path,
                format!("cannot convert frames to RGB ({e})"),
            )
        })?;
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let stride = rgb.stride(0);
        let plane = rgb.data(0);
        let mut data = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            data.extend_from_slice(&plane[row * stride..row * stride + w * 3]);
        }
        Ok(self.rotation.apply(RgbFrame::new(w, h, data)))
    }
}
