//! Numerics against tests/fixtures/preprocess (Pillow 13.0.0, OpenCV 5.0.0, numpy; see
//! tests/reference/make_preprocess_fixtures.py). Tolerance everywhere: exact (max abs diff 0
//! on uint8, identical f32 bits after normalisation).

use super::*;
use crate::render::png_file::read_png;
use crate::rng::SeededRng;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn load_png(path: &Path) -> RgbFrame {
    read_png(path).unwrap_or_else(|e| panic!("{e}"))
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn case_names(doc: &Value) -> Vec<String> {
    let cases = doc["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn max_abs_diff(a: &RgbFrame, b: &RgbFrame) -> u8 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Pad + resize of every fixture frame equals Pillow / OpenCV byte for byte.
#[test]
fn resized_fixtures_match_pillow_and_opencv_exactly() {
    let doc = expected();
    let mut report = Vec::new();
    for name in case_names(&doc) {
        let input = load_png(&fixture_dir().join(format!("{name}.png")));
        for (encoder, spec) in [
            ("siglip", EncoderSpec::siglip()),
            ("internvideo2", EncoderSpec::internvideo2()),
        ] {
            let want = load_png(&fixture_dir().join(format!("{name}.{encoder}.png")));
            let got = spec.resize_frame(&input);
            report.push((name.clone(), encoder, max_abs_diff(&got, &want)));
        }
    }
    eprintln!("max abs diff per fixture: {report:?}");
    assert!(report.len() >= 10, "too few fixtures: {report:?}");
    assert!(report.iter().all(|r| r.2 == 0), "{report:?}");
}

/// The public resize functions on the materialised square agree with the padded-row path.
#[test]
fn public_resizers_match_the_clip_path() {
    let doc = expected();
    for name in case_names(&doc) {
        let input = load_png(&fixture_dir().join(format!("{name}.png")));
        let sig = EncoderSpec::siglip();
        let square = pad_to_square(&input, sig.pad_colour());
        assert_eq!(
            resize_bicubic_pil(&square, 384, 384),
            sig.resize_frame(&input)
        );
        let ivd = EncoderSpec::internvideo2();
        let square = pad_to_square(&input, ivd.pad_colour());
        assert_eq!(
            resize_linear_cv(&square, 224, 224),
            ivd.resize_frame(&input)
        );
    }
}

fn json_f32(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

#[test]
fn normalisation_tables_match_the_reference() {
    let doc = expected();
    for (key, spec) in [
        ("siglip", EncoderSpec::siglip()),
        ("internvideo2", EncoderSpec::internvideo2()),
    ] {
        let want = doc[key]["table"].as_array().unwrap();
        let got = spec.normalisation_table();
        for c in 0..3 {
            let want: Vec<f32> = want[c].as_array().unwrap().iter().map(json_f32).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got[c]), bits(&want), "{key} channel {c}");
        }
        let pad: Vec<u8> = doc[key]["pad"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(spec.pad_colour().to_vec(), pad, "{key}");
    }
}

/// Whole pipeline (one-frame clips): sampled tensor values equal the reference's f32 values.
#[test]
fn clip_tensors_match_sampled_reference_values() {
    let doc = expected();
    let pre = Preprocessor::default();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let input = load_png(&fixture_dir().join(format!("{name}.png")));
        let (sig, ivd) = pre.preprocess_clip(std::slice::from_ref(&input));
        assert_eq!(sig.shape, [1, 3, 384, 384]);
        assert_eq!(ivd.shape, [3, 1, 224, 224]);
        for (key, tensor, frames_first) in [
            ("siglip_samples", &sig, true),
            ("internvideo2_samples", &ivd, false),
        ] {
            for s in case[key].as_array().unwrap() {
                let [c, y, x] = ["c", "y", "x"].map(|k| s[k].as_u64().unwrap() as usize);
                let index = if frames_first {
                    [0, c, y, x]
                } else {
                    [c, 0, y, x]
                };
                let got = tensor.at(index);
                let want = json_f32(&s["value"]);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} {key} {s}: {got} vs {want}"
                );
            }
        }
    }
}

fn noise(width: usize, height: usize, seed: u64) -> RgbFrame {
    RgbFrame::new(
        width,
        height,
        SeededRng::new(seed).bytes(width * height * 3),
    )
}

fn pixel(frame: &RgbFrame, x: usize, y: usize) -> [u8; 3] {
    let i = (y * frame.width + x) * 3;
    [frame.data[i], frame.data[i + 1], frame.data[i + 2]]
}

#[test]
fn padding_centres_the_frame_with_floor_offsets() {
    let pad = [123, 116, 103];
    // (width, height, top, left): landscape odd, portrait odd, square, 1x1, 2x1.
    for (w, h, top, left) in [
        (5, 2, 1, 0),
        (3, 6, 0, 1),
        (4, 4, 0, 0),
        (1, 1, 0, 0),
        (2, 1, 0, 0),
    ] {
        let frame = noise(w, h, 7);
        let square = pad_to_square(&frame, pad);
        let side = w.max(h);
        assert_eq!((square.width, square.height), (side, side));
        assert_eq!(Canvas::centred_square(&frame, pad).offsets(), (top, left));
        for y in 0..side {
            for x in 0..side {
                let inside = (top..top + h).contains(&y) && (left..left + w).contains(&x);
                let want = if inside {
                    pixel(&frame, x - left, y - top)
                } else {
                    pad
                };
                assert_eq!(pixel(&square, x, y), want, "{w}x{h} at ({x}, {y})");
            }
        }
    }
}

#[test]
fn pad_colours_are_int_of_mean_times_255() {
    assert_eq!(EncoderSpec::siglip().pad_colour(), [127, 127, 127]);
    assert_eq!(EncoderSpec::internvideo2().pad_colour(), [123, 116, 103]);
}

/// (frames, 3, H, W) vs (3, frames, H, W): every element comes from the right frame/channel.
#[test]
fn clip_layouts_index_frames_and_channels() {
    let frames: Vec<RgbFrame> = (0..4).map(|t| noise(9, 6, 100 + t)).collect();
    for mut spec in [EncoderSpec::siglip(), EncoderSpec::internvideo2()] {
        spec.size = 5;
        let tensor = spec.preprocess_clip(&frames);
        let resized: Vec<RgbFrame> = frames.iter().map(|f| spec.resize_frame(f)).collect();
        let table = spec.normalisation_table();
        let expected_shape = match spec.layout {
            ClipLayout::FramesChannels => [4, 3, 5, 5],
            ClipLayout::ChannelsFrames => [3, 4, 5, 5],
        };
        assert_eq!(tensor.shape, expected_shape);
        assert_eq!(tensor.data.len(), 4 * 3 * 5 * 5);
        for t in 0..4 {
            for c in 0..3 {
                for y in 0..5 {
                    for x in 0..5 {
                        let index = match spec.layout {
                            ClipLayout::FramesChannels => [t, c, y, x],
                            ClipLayout::ChannelsFrames => [c, t, y, x],
                        };
                        let flat = ((index[0] * tensor.shape[1] + index[1]) * 5 + y) * 5 + x;
                        let want = table[c][pixel(&resized[t], x, y)[c] as usize];
                        assert_eq!(tensor.data[flat], want);
                        assert_eq!(tensor.at(index), want);
                    }
                }
            }
        }
    }
}

#[test]
fn extreme_shapes_do_not_panic() {
    let pre = Preprocessor::default();
    for (w, h) in [
        (1, 1),
        (4000, 100),
        (100, 4000),
        (2, 1),
        (1, 3),
        (224, 10),
        (384, 7),
    ] {
        let frame = noise(w, h, 3);
        let (sig, ivd) = pre.preprocess_clip(&[frame.clone(), frame]);
        assert_eq!(sig.shape, [2, 3, 384, 384], "{w}x{h}");
        assert_eq!(ivd.shape, [3, 2, 224, 224], "{w}x{h}");
        assert!(sig.data.iter().chain(&ivd.data).all(|v| v.is_finite()));
    }
    // A constant 1x1 frame stays that colour.
    let one = RgbFrame::filled(1, 1, [200, 10, 77]);
    assert_eq!(
        resize_bicubic_pil(&one, 384, 384),
        RgbFrame::filled(384, 384, [200, 10, 77])
    );
    assert_eq!(
        resize_linear_cv(&one, 224, 224),
        RgbFrame::filled(224, 224, [200, 10, 77])
    );
    assert_eq!(resize_bicubic_pil(&one, 0, 3).data.len(), 0);
    assert_eq!(resize_linear_cv(&one, 3, 0).data.len(), 0);
}

#[test]
fn a_square_already_at_the_size_is_untouched() {
    let sig = noise(384, 384, 11);
    assert_eq!(EncoderSpec::siglip().resize_frame(&sig), sig);
    let ivd = noise(224, 224, 12);
    assert_eq!(EncoderSpec::internvideo2().resize_frame(&ivd), ivd);
    // Non-square frames whose padded side is the size: only the padding is added.
    let tall = noise(50, 224, 13);
    let spec = EncoderSpec::internvideo2();
    assert_eq!(
        spec.resize_frame(&tall),
        pad_to_square(&tall, spec.pad_colour())
    );
}

#[test]
fn mixed_frame_sizes_in_one_clip_each_get_their_own_plan() {
    let frames = [noise(30, 20, 1), noise(17, 40, 2), noise(30, 20, 3)];
    for spec in [EncoderSpec::siglip(), EncoderSpec::internvideo2()] {
        let clip = spec.preprocess_clip(&frames);
        for (t, frame) in frames.iter().enumerate() {
            let single = spec.preprocess_clip(std::slice::from_ref(frame));
            let plane = 3 * spec.size * spec.size;
            if spec.layout == ClipLayout::FramesChannels {
                assert_eq!(clip.data[t * plane..(t + 1) * plane], single.data[..]);
            } else {
                assert_eq!(clip.at([2, t, 7, 9]), single.at([2, 0, 7, 9]));
            }
        }
    }
}

#[test]
fn whole_clips_only() {
    let frames: Vec<RgbFrame> = (0..9).map(|t| noise(8, 8, t + 1)).collect();
    let clips = Preprocessor::default().preprocess_frames(&frames, 4);
    assert_eq!(clips.len(), 2);
    assert_eq!(clips[1].0.shape, [4, 3, 384, 384]);
    assert_eq!(clips[1].1.shape, [3, 4, 224, 224]);
    // Shared frames (as the extractor hands them out) give the same tensors.
    let shared: Vec<std::sync::Arc<RgbFrame>> =
        frames[4..8].iter().cloned().map(Into::into).collect();
    assert_eq!(Preprocessor::default().preprocess_clip(&shared), clips[1]);
}
