//! From sampled RGB frames to the pixel tensors of Apollo's two vision encoders, bit-exact with
//! the Python reference (`mm_utils.process_video`):
//!
//! 1. pad each frame to a centred square of side max(H, W) filled with int(mean * 255);
//! 2. resize the square on uint8: SigLIP with Pillow's BICUBIC ([`resize_bicubic_pil`]),
//!    InternVideo2 with OpenCV's INTER_LINEAR ([`resize_linear_cv`]);
//! 3. x / 255 in f32, then (x - mean) / std in f32;
//! 4. stack a clip as (frames, 3, H, W) for SigLIP and (3, frames, H, W) for InternVideo2.
//!
//! The padded square is never materialised ([`Canvas`]): both resizers filter the padding rows
//! once, and Pillow's integer sums are regrouped so that the taps on padding are one term
//! (exact: integer addition is associative). tests/fixtures/preprocess (made by
//! tests/reference/make_preprocess_fixtures.py with Pillow and OpenCV) pins the numerics.

mod canvas;
mod cv;
mod pil;
#[cfg(test)]
mod tests;

use crate::video::frame::RgbFrame;
use rayon::prelude::*;
use std::borrow::Borrow;

pub use canvas::Canvas;
pub use cv::CvLinear;
pub use pil::PilBicubic;

/// Which reference resampler an encoder's processor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeFilter {
    /// Pillow `Image.resize(size, BICUBIC)` (transformers' image processors).
    PilBicubic,
    /// OpenCV `cv2.resize(..., INTER_LINEAR)`; a frame already at the size is left untouched.
    CvLinear,
}

/// Axis order of one clip's tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipLayout {
    /// (frames, channels, height, width): SigLIP, one image per frame.
    FramesChannels,
    /// (channels, frames, height, width): InternVideo2's video layout.
    ChannelsFrames,
}

impl ClipLayout {
    fn shape(self, frames: usize, size: usize) -> [usize; 4] {
        match self {
            ClipLayout::FramesChannels => [frames, 3, size, size],
            ClipLayout::ChannelsFrames => [3, frames, size, size],
        }
    }

    /// (frame, channel) of the `plane`-th H x W plane of the tensor.
    fn plane(self, plane: usize, frames: usize) -> (usize, usize) {
        match self {
            ClipLayout::FramesChannels => (plane / 3, plane % 3),
            ClipLayout::ChannelsFrames => (plane % frames, plane / frames),
        }
    }
}

/// What one encoder's processor does to a frame. `mean`/`std` are kept in f64 as the
/// processors' configs hold them: the pad colour is int(mean * 255) in f64, the normalisation
/// uses them cast to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSpec {
    /// Output side (square).
    pub size: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub filter: ResizeFilter,
    pub layout: ClipLayout,
}

impl EncoderSpec {
    /// siglip-so400m-patch14-384: Pillow bicubic to 384, mean = std = 0.5, pad (127, 127, 127).
    pub fn siglip() -> Self {
        Self {
            size: 384,
            mean: [0.5; 3],
            std: [0.5; 3],
            filter: ResizeFilter::PilBicubic,
            layout: ClipLayout::FramesChannels,
        }
    }

    /// InternVideo2 (img_size 224): OpenCV bilinear, ImageNet mean/std, pad (123, 116, 103).
    pub fn internvideo2() -> Self {
        Self {
            size: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            filter: ResizeFilter::CvLinear,
            layout: ClipLayout::ChannelsFrames,
        }
    }

    /// `tuple(int(x * 255) for x in image_mean)`, the reference's padding colour.
    pub fn pad_colour(&self) -> [u8; 3] {
        self.mean.map(|m| (m * 255.0) as u8)
    }

    /// Pad and resize one frame: the uint8 picture the normalisation starts from.
    pub fn resize_frame(&self, frame: &RgbFrame) -> RgbFrame {
        let square = Canvas::centred_square(frame, self.pad_colour());
        Resizer::new(self, square.width()).run(&square)
    }

    /// One clip's tensor: every frame padded, resized, normalised, in this encoder's layout.
    /// Frames may be owned or shared (`&[RgbFrame]`, `&[Arc<RgbFrame>]`).
    pub fn preprocess_clip<F: Borrow<RgbFrame> + Sync>(&self, frames: &[F]) -> ClipTensor {
        let pad = self.pad_colour();
        // Frames of one video share a size, so one plan (coefficients) serves the whole clip.
        let side = |f: &RgbFrame| f.width.max(f.height);
        let plan = frames.first().map(|f| Resizer::new(self, side(f.borrow())));
        let resized: Vec<RgbFrame> = frames
            .par_iter()
            .map(|frame| {
                let square = Canvas::centred_square(frame.borrow(), pad);
                match &plan {
                    Some(plan) if plan.side() == square.width() => plan.run(&square),
                    _ => Resizer::new(self, square.width()).run(&square),
                }
            })
            .collect();
        self.to_tensor(&resized)
    }

    /// Normalise resized frames (size x size) into this encoder's layout.
    fn to_tensor(&self, frames: &[RgbFrame]) -> ClipTensor {
        let table = self.normalisation_table();
        let plane_len = self.size * self.size;
        let shape = self.layout.shape(frames.len(), self.size);
        let mut data = vec![0f32; frames.len() * 3 * plane_len];
        if plane_len > 0 {
            data.par_chunks_mut(plane_len)
                .enumerate()
                .for_each(|(p, plane)| {
                    let (t, c) = self.layout.plane(p, frames.len());
                    let lut = &table[c];
                    for (out, px) in plane.iter_mut().zip(frames[t].data.chunks_exact(3)) {
                        *out = lut[px[c] as usize];
                    }
                });
        }
        ClipTensor { shape, data }
    }

    /// normalised[c][v] for every uint8 v: (v / 255 - mean) / std, all in f32 as the reference.
    /// transformers' SigLIP rescale (v * (1/255) in f64, cast to f32) gives the same f32 as
    /// the f32 division for every uint8; multiplying by an f32 1/255 would not.
    pub fn normalisation_table(&self) -> [[f32; 256]; 3] {
        std::array::from_fn(|c| {
            let (mean, std) = (self.mean[c] as f32, self.std[c] as f32);
            std::array::from_fn(|v| (v as f32 / 255.0 - mean) / std)
        })
    }
}

/// A clip's pixels for one encoder, row-major over `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipTensor {
    pub shape: [usize; 4],
    pub data: Vec<f32>,
}

impl ClipTensor {
    /// The element at a 4-d index (in `shape`'s axis order).
    pub fn at(&self, index: [usize; 4]) -> f32 {
        let [_, d1, d2, d3] = self.shape;
        self.data[((index[0] * d1 + index[1]) * d2 + index[2]) * d3 + index[3]]
    }
}

/// Both encoders' preprocessing, applied to the same sampled frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    pub siglip: EncoderSpec,
    pub internvideo2: EncoderSpec,
}

impl Default for Preprocessor {
    fn default() -> Self {
        Self {
            siglip: EncoderSpec::siglip(),
            internvideo2: EncoderSpec::internvideo2(),
        }
    }
}

impl Preprocessor {
    pub fn new(siglip: EncoderSpec, internvideo2: EncoderSpec) -> Self {
        Self {
            siglip,
            internvideo2,
        }
    }

    /// (SigLIP (frames, 3, 384, 384), InternVideo2 (3, frames, 224, 224)) for one clip.
    pub fn preprocess_clip<F: Borrow<RgbFrame> + Sync>(
        &self,
        frames: &[F],
    ) -> (ClipTensor, ClipTensor) {
        rayon::join(
            || self.siglip.preprocess_clip(frames),
            || self.internvideo2.preprocess_clip(frames),
        )
    }

    /// Every whole clip of `frames_per_clip` consecutive frames, as `split_into_clips` does
    /// (a trailing partial clip is dropped).
    pub fn preprocess_frames<F: Borrow<RgbFrame> + Sync>(
        &self,
        frames: &[F],
        frames_per_clip: usize,
    ) -> Vec<(ClipTensor, ClipTensor)> {
        frames
            .chunks_exact(frames_per_clip.max(1))
            .map(|clip| self.preprocess_clip(clip))
            .collect()
    }
}

/// `pad_to_center_square`: the frame centred on a square of side max(W, H) filled with `pad`,
/// offsets top = (side - H) / 2, left = (side - W) / 2 (floor).
pub fn pad_to_square(frame: &RgbFrame, pad: [u8; 3]) -> RgbFrame {
    Canvas::centred_square(frame, pad).to_frame()
}

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` on an RGB8 frame (at least 1x1),
/// bit for bit. Horizontal pass first, as libImaging/Resample.c does up to Pillow 12; the
/// Pillow 13.0.0 used for the fixtures runs the vertical pass first when the width grows and
/// the height shrinks (then some pixels differ by 1), which never happens for the
/// square-to-square resizes of the encoders.
pub fn resize_bicubic_pil(frame: &RgbFrame, width: usize, height: usize) -> RgbFrame {
    PilBicubic::new(frame.width, frame.height, width, height).resize(&Canvas::of_frame(frame))
}

/// OpenCV's `cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)` on an RGB8
/// frame (at least 1x1), bit for bit (as OpenCV's SIMD code rounds).
pub fn resize_linear_cv(frame: &RgbFrame, width: usize, height: usize) -> RgbFrame {
    CvLinear::new(frame.width, frame.height, width, height).resize(&Canvas::of_frame(frame))
}

/// The plan (precomputed coefficients) for resizing a square of one side to an encoder's size.
enum Resizer {
    Pil(PilBicubic),
    Cv(CvLinear),
}

impl Resizer {
    fn new(spec: &EncoderSpec, side: usize) -> Self {
        let size = spec.size;
        match spec.filter {
            ResizeFilter::PilBicubic => Resizer::Pil(PilBicubic::new(side, side, size, size)),
            ResizeFilter::CvLinear => Resizer::Cv(CvLinear::new(side, side, size, size)),
        }
    }

    fn side(&self) -> usize {
        match self {
            Resizer::Pil(p) => p.src_size().0,
            Resizer::Cv(c) => c.src_size().0,
        }
    }

    fn run(&self, square: &Canvas) -> RgbFrame {
        match self {
            Resizer::Pil(p) => p.resize(square),
            Resizer::Cv(c) => c.resize(square),
        }
    }
}
