//! Preprocessing cost per frame: `cargo bench --bench preprocess`. Pads and resizes a noise
//! frame of each common size for both encoders (one thread), and a clip of 4 frames for both
//! encoders together (rayon), 20 runs each after one warm-up.

use apollo::rng::SeededRng;
use apollo::video::frame::RgbFrame;
use apollo::video::preprocess::{EncoderSpec, Preprocessor};
use std::time::Instant;

/// Deterministic noise: no flat areas to flatter the filters.
fn noise(width: usize, height: usize) -> RgbFrame {
    RgbFrame::new(width, height, SeededRng::new(1).bytes(width * height * 3))
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
