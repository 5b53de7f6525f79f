//! Writing RGB frames as PNG files, as `atomic_file` writes outputs, or as PNG bytes.

use crate::atomic_file::write_with;
use crate::error::{Error, Result};
use crate::video::frame::RgbFrame;
use std::io::Write;
use std::path::Path;

pub fn write_png(path: &Path, frame: &RgbFrame) -> Result<()> {
    write_with(path, |file| {
        encode_png(frame, std::io::BufWriter::new(file))
    })
}

/// `frame` as an 8-bit RGB PNG into `out` (a file, or bytes for stdout).
pub fn encode_png(frame: &RgbFrame, out: impl Write) -> std::io::Result<()> {
    let mut encoder = png::Encoder::new(out, frame.width as u32, frame.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(&frame.data)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}

/// Reads an 8-bit RGB or RGBA PNG (tests and fixtures).
pub fn read_png(path: &Path) -> Result<RgbFrame> {
    let fail = |e: String| Error::input(path, format!("cannot read PNG: {e}"));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| fail(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| fail(e.to_string()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let data = match info.color_type {
        png::ColorType::Rgb => buf[..w * h * 3].to_vec(),
        png::ColorType::Rgba => buf[..w * h * 4]
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => return Err(fail(format!("unsupported colour type {other:?}"))),
    };
    Ok(RgbFrame::new(w, h, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        let frame = RgbFrame::new(3, 2, (0..18).collect());
        write_png(&path, &frame).unwrap();
        assert_eq!(read_png(&path).unwrap(), frame);
    }
}
