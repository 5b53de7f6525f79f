//! Preprocessing cost per frame: `cargo bench --bench preprocess`. Pads and resizes a noise
//! frame of each common size for both encoders (one thread), and a clip of 4 frames for both
//! encoders together (rayon), 20 runs each after one warm-up.

use apollo::video::frame::RgbFrame;
use apollo::video::preprocess::{EncoderSpec, Preprocessor};
use std::time::Instant;

/// Deterministic noise (a linear congruential generator): no flat areas to flatter the filters.
fn noise(width: usize, height: usize) -> RgbFrame {
    let mut state = 0x2545_f491_u32;
    let data = (0..width * height * 3)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    RgbFrame::new(width, height, data)
}

fn millis(f: &dyn Fn()) -> f64 {
    f();
    let n = 20;
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    let (siglip, internvideo2) = (EncoderSpec::siglip(), EncoderSpec::internvideo2());
    let pre = Preprocessor::default();
    println!(
        "{:<10} {:>12} {:>16} {:>20}",
        "frame", "siglip ms", "internvideo2 ms", "clip of 4, both ms"
    );
    for (w, h) in [(640, 360), (1280, 720), (1920, 1080)] {
        let frame = noise(w, h);
        let one = std::slice::from_ref(&frame);
        let four = vec![frame.clone(); 4];
        println!(
            "{:<10} {:>12.2} {:>16.2} {:>20.2}",
            format!("{w}x{h}"),
            millis(&|| drop(siglip.preprocess_clip(one))),
            millis(&|| drop(internvideo2.preprocess_clip(one))),
            millis(&|| drop(pre.preprocess_clip(&four))),
        );
    }
}
