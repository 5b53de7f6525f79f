//! The video's rows as answers get them (decoding and preprocessing on a thread of their own,
//! overlapped with the encoders, with one decoder or several) are bit for bit those of
//! decoding, preprocessing and encoding every clip one after the other.

mod common;

use apollo::checkpoint::Checkpoint;
use apollo::pipeline::batch::encode_clips;
use apollo::pipeline::{Pipeline, Silent};
use apollo::video::decode::Video;
use apollo::video::extract::for_each_clip;
use candle_core::{DType, Device, Tensor};
use std::path::Path;

fn pipeline() -> Pipeline {
    let checkpoint = Checkpoint::open(Path::new(&common::tiny())).unwrap();
    Pipeline::new(checkpoint, Device::Cpu, DType::F32).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn overlapped_rows_equal_one_stage_after_the_other() {
    let video = common::real_video("bikes.mp4");
    let mut sequential = pipeline();
    let sampling = sequential.checkpoint().clip_sampling();
    let plan = sequential.prepare(&video, &sampling).unwrap().plan;
    // More clips than one encoder batch, so decoding runs ahead of encoding.
    let batch = sequential.model().unwrap().config().encode_batch_size;
    assert!(plan.clips.len() > batch, "{} clips", plan.clips.len());
    let (mut siglip, mut internvideo2) = (Vec::new(), Vec::new());
    let mut decoder = Video::open(&video).unwrap();
    decoder.set_threads(1).unwrap();
    for_each_clip(&mut decoder, &plan, |_, frames| {
        let (s, i) = sequential.preprocessor().preprocess_clip(frames);
        siglip.push(s);
        internvideo2.push(i);
        Ok(())
    })
    .unwrap();
    let expected = encode_clips(sequential.model().unwrap(), &siglip, &internvideo2).unwrap();

    for threads in [1, 3] {
        let mut overlapped = pipeline();
        overlapped.set_decode_threads(threads);
        let mut prepared = overlapped.prepare(&video, &sampling).unwrap();
        let encoded = overlapped.encode(&mut prepared, &mut Silent).unwrap();
        assert_eq!(encoded.rows.rows.dims(), expected.dims());
        assert!(
            bits(&encoded.rows.rows) == bits(&expected),
            "{threads} threads: rows differ"
        );
    }
}
