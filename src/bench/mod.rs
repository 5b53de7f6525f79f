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
pub mod decode;
pub mod memory;
pub mod questions;
pub mod video;

use crate::checkpoint::synthetic::{write_checkpoint, Layers, Preset};
use crate::checkpoint::Checkpoint;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::generate::run::GenerateOptions;
use crate::pipeline::batch::{batches, stack_clips};
use crate::pipeline::{millis, Answer, Pipeline, Silent};
use crate::prompt::tokens::{reference_ids, VIDEO_SLOT};
use crate::records::answer::StagesMs;
use crate::records::bench::{
    AnswerTimingsMs, BenchModel, BenchPlan, BenchReport, BenchVideo, LayersRecord,
};
use crate::records::to_json;
use crate::video::clips::ClipPlan;
use crate::video::decode::Video;
use crate::video::extract::for_each_clip;
use crate::video::preprocess::ClipTensor;
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// Threads for decoding video.
    pub threads: usize,
}

/// Runs the benchmark, reporting progress through `log`.
pub fn run(cfg: &BenchConfig, mut log: impl FnMut(&str)) -> Result<BenchReport> {
    // Sampling starts first, so that the peak covers the whole run.
    let gpu = match device_name(&cfg.device).strip_prefix("cuda:") {
        Some(n) => memory::GpuSampler::start(n.parse().unwrap_or(0)),
        None => None,
    };
    let files = inputs(cfg, &mut log)?;
    let checkpoint = Checkpoint::open(&files.checkpoint)?;
    let mut pipeline = Pipeline::new(checkpoint, cfg.device.clone(), cfg.dtype)?;
    pipeline.set_decode_threads(cfg.threads);
    let planned = plan(&pipeline, cfg, &files)?;
    log(&format!(
        "{} clips, {} prompt positions",
        planned.plan.clips.len(),
        planned.prompt_tokens
    ));
    let start = Instant::now();
    pipeline.model()?;
    let load_s = start.elapsed().as_secs_f64();
    log("decode + preprocess");
    let (siglip, internvideo2, decode_s) =
        decode_and_preprocess(&pipeline, &files.video, &planned.plan)?;
    log("encoders and connector");
    let stages = encode_stages(&mut pipeline, &siglip, &internvideo2)?;
    drop((siglip, internvideo2));
    log("one whole answer");
    let answer = whole_answer(&mut pipeline, cfg, &files.video)?;
    let measured = Measured {
        load_s,
        decode_s,
        stages,
        answer,
        peak_gpu_memory_mib: gpu.as_ref().map(memory::GpuSampler::peak_mib),
    };
    Ok(report(cfg, &files, &planned, measured))
}

/// The checkpoint and the video a run uses.
pub struct Files {
    pub checkpoint: PathBuf,
    pub video: PathBuf,
}

/// The checkpoint and the video given, else a generated checkpoint and the synthetic video,
/// made in the work folder unless they are there from an earlier run.
pub fn inputs(cfg: &BenchConfig, log: &mut impl FnMut(&str)) -> Result<Files> {
    create_work_dir(cfg)?;
    let checkpoint = match &cfg.model_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = cfg.work_dir.join(format!(
                "checkpoint-{}-{}",
                preset_name(cfg.preset),
                layers_name(cfg.layers)
            ));
            log(&format!("checkpoint {dir:?}"));
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
    Ok(Files { checkpoint, video })
}

fn create_work_dir(cfg: &BenchConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.work_dir)
        .map_err(|e| Error::runtime(Some(&cfg.work_dir), format!("cannot create: {e}")))
}

/// The video planned as a user's question would plan it.
struct Planned {
    plan: ClipPlan,
    duration_s: f64,
    prompt_tokens: usize,
    video_tokens: usize,
    /// Opening, planning and tokenising: part of the time to first token.
    prepare: Duration,
}

/// Plans the video and writes the plan for the baseline.
fn plan(pipeline: &Pipeline, cfg: &BenchConfig, files: &Files) -> Result<Planned> {
    let start = Instant::now();
    let sampling = pipeline.checkpoint().clip_sampling();
    let prepared = pipeline.prepare(&files.video, &sampling)?;
    let prompt = pipeline.question_prompt(&prepared, &cfg.question, &sampling)?;
    let prepare = start.elapsed();
    let (prompt_tokens, video_tokens) = (prompt.positions(), prompt.video_tokens());
    let plan = BenchPlan {
        checkpoint: files.checkpoint.clone(),
        video: files.video.clone(),
        question: cfg.question.clone(),
        clip_frame_indices: prepared
            .plan
            .clips
            .iter()
            .map(|c| c.frame_indices.clone())
            .collect(),
        input_ids: reference_ids(&prompt.chunks),
        prompt: prompt.text,
        video_slot: VIDEO_SLOT,
    };
    let file = cfg.work_dir.join("plan.json");
    crate::atomic_file::write_atomically(&file, format!("{}\n", to_json(&plan)?).as_bytes())?;
    Ok(Planned {
        prompt_tokens,
        video_tokens,
        duration_s: prepared.info.duration_s,
        plan: prepared.plan,
        prepare,
    })
}

/// Greedy generation of `new_tokens` for the question, from a freshly opened video.
fn whole_answer(pipeline: &mut Pipeline, cfg: &BenchConfig, video: &Path) -> Result<Answer> {
    let sampling = pipeline.checkpoint().clip_sampling();
    let mut prepared = pipeline.prepare(video, &sampling)?;
    let prompt = pipeline.question_prompt(&prepared, &cfg.question, &sampling)?;
    let options = GenerateOptions::greedy(cfg.new_tokens, pipeline.context_length());
    let mut encoded = pipeline.encode(&mut prepared, &mut Silent)?;
    pipeline.answer(&mut encoded, &prompt, &options, &mut Silent, |_| Ok(()))
}

/// The checkpoint as reports name it.
fn bench_model(cfg: &BenchConfig, files: &Files) -> BenchModel {
    BenchModel {
        // A given checkpoint has its own sizes.
        preset: cfg.model_dir.is_none().then(|| preset_name(cfg.preset)),
        layers: match (&cfg.model_dir, cfg.layers) {
            (Some(_), _) => None,
            (None, Layers::Published) => Some(LayersRecord::Published("published")),
            (None, Layers::Run(n)) => Some(LayersRecord::Run(n)),
        },
        checkpoint: files.checkpoint.clone(),
    }
}

/// The video as reports describe it.
fn bench_video(files: &Files, duration_s: f64, plan: &ClipPlan) -> BenchVideo {
    BenchVideo {
        path: files.video.clone(),
        duration_s,
        clips: plan.clips.len(),
        frames: plan.clips.iter().map(|c| c.frame_indices.len()).sum(),
    }
}

/// What a run measured.
struct Measured {
    load_s: f64,
    decode_s: f64,
    stages: StageSeconds,
    answer: Answer,
    peak_gpu_memory_mib: Option<u64>,
}

fn report(cfg: &BenchConfig, files: &Files, planned: &Planned, m: Measured) -> BenchReport {
    let video = bench_video(files, planned.duration_s, &planned.plan);
    let (clips, frames) = (video.clips, video.frames);
    let t = m.answer.timings;
    let prompt_tokens = planned.prompt_tokens;
    let generated = m.answer.generation.ids.len();
    BenchReport {
        device: device_name(&cfg.device),
        dtype: cfg.dtype.as_str().to_string(),
        model: bench_model(cfg, files),
        video,
        load_s: m.load_s,
        decode_preprocess_frames_per_s: frames as f64 / m.decode_s,
        siglip_frames_per_s: frames as f64 / m.stages.siglip_s,
        internvideo2_frames_per_s: frames as f64 / m.stages.internvideo2_s,
        connector_clips_per_s: clips as f64 / m.stages.connector_s,
        prompt_tokens,
        video_tokens: planned.video_tokens,
        prefill_tokens_per_s: prompt_tokens as f64 / t.prefill.as_secs_f64(),
        generated_tokens: generated,
        decode_tokens_per_s: generated.saturating_sub(1) as f64 / t.generate.as_secs_f64(),
        time_to_first_token_s: (planned.prepare + t.decode + t.preprocess + t.encode + t.prefill)
            .as_secs_f64(),
        answer_timings_ms: AnswerTimingsMs {
            prepare: millis(planned.prepare),
            stages: StagesMs::of(&t),
        },
        peak_gpu_memory_mib: m.peak_gpu_memory_mib,
        peak_host_memory_mib: memory::host_peak_mib(),
    }
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

/// Every clip decoded and preprocessed for both encoders; seconds taken. The video is opened
/// afresh because opening (the packet scan) is part of decoding, as it is in the baseline.
fn decode_and_preprocess(
    pipeline: &Pipeline,
    path: &Path,
    plan: &ClipPlan,
) -> Result<(Vec<ClipTensor>, Vec<ClipTensor>, f64)> {
    let start = Instant::now();
    let mut video = Video::open_with_threads(path, pipeline.decode_threads())?;
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
    let device = pipeline.device().clone();
    let model = pipeline.model()?;
    let timed = |times: &mut f64, f: &mut dyn FnMut() -> Result<candle_core::Tensor>| {
        let t = Instant::now();
        let out = f()?;
        device.synchronize()?;
        *times += t.elapsed().as_secs_f64();
        Ok::<_, Error>(out)
    };
    let run = |s: &[ClipTensor], i: &[ClipTensor], times: &mut [f64; 3]| -> Result<()> {
        let (s, i) = (stack_clips(model, s)?, stack_clips(model, i)?);
        device.synchronize()?;
        let fs = timed(&mut times[0], &mut || model.siglip_features(&s))?;
        let fi = timed(&mut times[1], &mut || model.internvideo2_features(&i))?;
        timed(&mut times[2], &mut || {
            model.connect(&model.token_grid(&fs, &fi)?)
        })?;
        Ok(())
    };
    if let Some((s, i)) = batches(model, siglip, internvideo2).next() {
        run(s, i, &mut [0.0; 3])?;
    }
    let mut times = [0.0; 3];
    for (s, i) in batches(model, siglip, internvideo2) {
        run(s, i, &mut times)?;
    }
    Ok(StageSeconds {
        siglip_s: times[0],
        internvideo2_s: times[1],
        connector_s: times[2],
    })
}
