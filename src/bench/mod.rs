//! `apollo bench`: the pipeline's speed and memory at real model sizes with random weights.
//!
//! A checkpoint with a published configuration's widths (all its layers, or fewer for a quick
//! run on a CPU) is generated into a work folder, with a synthetic video (by default one hour,
//! so that Apollo's clip budget applies in full: 84 clips, ~10,700 video tokens). Both are
//! kept for later runs and for `benches/pytorch_baseline.py`, which reads the same files and the
//! plan written beside them. Each stage is timed on its own (decode + preprocess, each
//! encoder, the connector), then one whole answer as a user runs it (time to first token,
//! prefill and decode speed).

pub mod compare;
pub mod memory;
pub mod video;

use crate::error::{Error, Result};
use crate::generate::logits::SamplingParams;
use crate::generate::run::GenerateOptions;
use crate::model::device::device_name;
use crate::model::synthetic::{write_checkpoint, Layers, Preset};
use crate::pipeline::{millis, Pipeline, Silent};
use crate::prompt::tokens::VIDEO_SLOT;
use crate::video::decode::Video;
use crate::video::extract::for_each_clip;
use crate::video::preprocess::ClipTensor;
use candle_core::{DType, Device};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct BenchConfig {
    /// A checkpoint to use instead of a generated one.
    pub model_dir: Option<PathBuf>,
    pub preset: Preset,
    pub layers: Layers,
    /// Where the checkpoint, the video and the plan are kept.
    pub work_dir: PathBuf,
    /// A video to use instead of the synthetic one.
    pub video: Option<PathBuf>,
    pub video_seconds: u64,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub new_tokens: usize,
    pub question: String,
    pub device: Device,
    pub dtype: DType,
}

/// The checkpoint and the video a run uses: the ones given, else a generated checkpoint and
/// the synthetic video, made in the work folder unless they are there from an earlier run.
pub fn inputs(cfg: &BenchConfig, log: &mut impl FnMut(&str)) -> Result<(PathBuf, PathBuf)> {
    create_work_dir(cfg)?;
    let checkpoint = match &cfg.model_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = cfg.work_dir.join(format!(
                "checkpoint-{}-{}",
                preset_name(cfg.preset),
                layers_name(cfg.layers)
            ));
            log(&format!("checkpoint {}", dir.display()));
            ensure_checkpoint(&dir, cfg.preset, cfg.layers)?;
            dir
        }
    };
    let video = match &cfg.video {
        Some(v) => v.clone(),
        None => {
            log("video");
            video::ensure_in(cfg)?
        }
    };
    Ok((checkpoint, video))
}

/// Runs the benchmark, reporting progress through `log`; returns the JSON report.
pub fn run(cfg: &BenchConfig, mut log: impl FnMut(&str)) -> Result<Value> {
    let gpu = match device_name(&cfg.device).strip_prefix("cuda:") {
        Some(n) => memory::GpuSampler::start(n.parse().unwrap_or(0)),
        None => None,
    };
    let (checkpoint, video_path) = inputs(cfg, &mut log)?;

    let mut pipeline = Pipeline::open(&checkpoint, cfg.device.clone(), cfg.dtype)?;
    let sampling = pipeline.sampling_defaults();
    let start = Instant::now();
    let prepared = pipeline.prepare(&video_path, &cfg.question, &sampling)?;
    let prepare = start.elapsed();
    write_plan(
        &cfg.work_dir.join("plan.json"),
        &checkpoint,
        &video_path,
        &prepared.plan.clips,
        &prepared.prompt,
        &prepared.ids,
        &cfg.question,
    )?;
    let clips = prepared.plan.clips.len();
    let frames = clips * sampling.frames_per_clip;
    let duration_s = prepared.info.duration_s;
    log(&format!(
        "{clips} clips, {} prompt positions",
        prepared.ids.len()
    ));

    let start = Instant::now();
    pipeline.model()?;
    let load_s = start.elapsed().as_secs_f64();

    log("decode + preprocess");
    let (siglip, internvideo2, decode_s) =
        decode_and_preprocess(&pipeline, &video_path, &prepared.plan)?;
    log("encoders and connector");
    let stages = encode_stages(&mut pipeline, &siglip, &internvideo2)?;
    drop((siglip, internvideo2));

    log("one whole answer");
    let prepared = pipeline.prepare(&video_path, &cfg.question, &sampling)?;
    let prompt_tokens = prepared.ids.len();
    let video_tokens = prepared.video_tokens;
    let options = GenerateOptions {
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
        },
        seed: 0,
        max_new_tokens: cfg.new_tokens,
        logprobs: None,
        // Random weights: generate the full length rather than stop at a chance eos.
        eos_token_ids: Vec::new(),
        context_length: pipeline.context_length(),
    };
    let answer = pipeline.answer(prepared, &options, &mut Silent, |_| Ok(()))?;
    let t = answer.timings;
    let generated = answer.generation.ids.len();
    let ttft = (prepare + t.decode + t.preprocess + t.encode + t.prefill).as_secs_f64();
    Ok(json!({
        "device": device_name(&cfg.device),
        "dtype": cfg.dtype.as_str(),
        "model": {
            // A given checkpoint has its own sizes.
            "preset": cfg.model_dir.is_none().then(|| preset_name(cfg.preset)),
            "layers": match (&cfg.model_dir, cfg.layers) {
                (Some(_), _) => Value::Null,
                (None, Layers::Published) => json!("published"),
                (None, Layers::Run(n)) => json!(n),
            },
            "checkpoint": checkpoint,
        },
        "video": {
            "path": video_path,
            "duration_s": duration_s,
            "clips": clips,
            "frames": frames,
        },
        "load_s": load_s,
        "decode_preprocess_frames_per_s": frames as f64 / decode_s,
        "siglip_frames_per_s": frames as f64 / stages.siglip_s,
        "internvideo2_frames_per_s": frames as f64 / stages.internvideo2_s,
        "connector_clips_per_s": clips as f64 / stages.connector_s,
        "prompt_tokens": prompt_tokens,
        "video_tokens": video_tokens,
        "prefill_tokens_per_s": prompt_tokens as f64 / t.prefill.as_secs_f64(),
        "generated_tokens": generated,
        "decode_tokens_per_s": generated.saturating_sub(1) as f64 / t.generate.as_secs_f64(),
        "time_to_first_token_s": ttft,
        "answer_timings_ms": {
            "prepare": millis(prepare),
            "decode": millis(t.decode),
            "preprocess": millis(t.preprocess),
            "encode": millis(t.encode),
            "prefill": millis(t.prefill),
            "generate": millis(t.generate),
        },
        "peak_gpu_memory_mib": gpu.as_ref().map(memory::GpuSampler::peak_mib),
        "peak_host_memory_mib": memory::host_peak_mib(),
    }))
}

fn create_work_dir(cfg: &BenchConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.work_dir)
        .map_err(|e| Error::runtime(Some(&cfg.work_dir), format!("cannot create: {e}")))
}

pub fn preset_name(preset: Preset) -> &'static str {
    match preset {
        Preset::Apollo1_5B => "1.5b",
        Preset::Apollo3B => "3b",
        Preset::Apollo7B => "7b",
    }
}

/// The checkpoint folder's suffix: `published` or `<n>-layers`.
fn layers_name(layers: Layers) -> String {
    match layers {
        Layers::Published => "published".into(),
        Layers::Run(n) => format!("{n}-layers"),
    }
}

/// Generates the checkpoint unless a finished one is there (written aside, then renamed).
fn ensure_checkpoint(dir: &Path, preset: Preset, layers: Layers) -> Result<()> {
    if dir.join("config.json").is_file() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::tempdir_in(parent)
        .map_err(|e| Error::runtime(Some(parent), format!("cannot create: {e}")))?;
    write_checkpoint(tmp.path(), preset, layers)?;
    std::fs::rename(tmp.path(), dir)
        .map_err(|e| Error::runtime(Some(dir), format!("cannot rename: {e}")))?;
    Ok(())
}

/// What the baseline script needs to run the same work: the checkpoint, the video, each
/// clip's frame indices, the prompt and its ids (`VIDEO_SLOT` for video rows).
fn write_plan(
    file: &Path,
    checkpoint: &Path,
    video: &Path,
    clips: &[crate::video::sample::Clip],
    prompt: &str,
    ids: &[i64],
    question: &str,
) -> Result<()> {
    let plan = json!({
        "checkpoint": checkpoint,
        "video": video,
        "question": question,
        "clip_frame_indices": clips.iter().map(|c| &c.frame_indices).collect::<Vec<_>>(),
        "prompt": prompt,
        "input_ids": ids,
        "video_slot": VIDEO_SLOT,
    });
    crate::atomic_file::write_atomically(file, format!("{plan}\n").as_bytes())
}

/// Every clip decoded and preprocessed for both encoders; seconds taken. The video is opened
/// afresh because opening (the packet scan) is part of decoding, as it is in the baseline.
fn decode_and_preprocess(
    pipeline: &Pipeline,
    path: &Path,
    plan: &crate::video::sample::SamplingPlan,
) -> Result<(Vec<ClipTensor>, Vec<ClipTensor>, f64)> {
    let start = Instant::now();
    let mut video = Video::open(path)?;
    let (mut siglip, mut internvideo2) = (Vec::new(), Vec::new());
    for_each_clip(&mut video, plan, |_, frames| {
        let (s, i) = pipeline.preprocessor().preprocess_clip(frames);
        siglip.push(s);
        internvideo2.push(i);
        Ok(())
    })?;
    Ok((siglip, internvideo2, start.elapsed().as_secs_f64()))
}

struct StageSeconds {
    siglip_s: f64,
    internvideo2_s: f64,
    connector_s: f64,
}

/// Each encoder and the grid + connector over every clip, in the checkpoint's batches. The
/// first batch runs once untimed first (kernel loading, allocator warm-up).
fn encode_stages(
    pipeline: &mut Pipeline,
    siglip: &[ClipTensor],
    internvideo2: &[ClipTensor],
) -> Result<StageSeconds> {
    let batch = pipeline.config().encode_batch_size;
    let device = pipeline.device().clone();
    let model = pipeline.model()?;
    let sync = || {
        device
            .synchronize()
            .map_err(|e| Error::runtime(None, format!("model: {e}")))
    };
    let run = |s: &[ClipTensor], i: &[ClipTensor], times: &mut [f64; 3]| -> Result<()> {
        let (s, i) = (model.stack_clips(s)?, model.stack_clips(i)?);
        sync()?;
        let t = Instant::now();
        let fs = model.siglip_features(&s)?;
        sync()?;
        times[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let fi = model.internvideo2_features(&i)?;
        sync()?;
        times[1] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        model.connect(&model.token_grid(&fs, &fi)?)?;
        sync()?;
        times[2] += t.elapsed().as_secs_f64();
        Ok(())
    };
    let first = batch.min(siglip.len());
    run(&siglip[..first], &internvideo2[..first], &mut [0.0; 3])?;
    let mut times = [0.0; 3];
    for (s, i) in siglip.chunks(batch).zip(internvideo2.chunks(batch)) {
        run(s, i, &mut times)?;
    }
    Ok(StageSeconds {
        siglip_s: times[0],
        internvideo2_s: times[1],
        connector_s: times[2],
    })
}
