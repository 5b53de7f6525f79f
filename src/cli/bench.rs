//! `apollo bench`: speed and memory at a published model size with random weights, as one
//! JSON object on stdout (see README, Speed).

use super::bounds::{frame_size, number, Low};
use super::check_folder_flag;
use super::printer::{note, Printer};
use crate::bench::compare::{self, CompareConfig};
use crate::bench::{inputs, run as run_bench, video, BenchConfig};
use crate::checkpoint::synthetic::{Layers, Preset};
use crate::device::{select_device, select_dtype, DTypeChoice, DeviceChoice};
use crate::error::{Error, ExitStatus, Result};
use crate::video::decode::available_threads;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetArg {
    #[value(name = "1.5b")]
    Apollo1_5B,
    #[value(name = "3b")]
    Apollo3B,
    #[value(name = "7b")]
    Apollo7B,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Instead of timing: run the model on --device/--dtype and on the CPU in f32 with the
    /// same inputs, and report the largest difference at each stage and whether greedy ids
    /// agree (exit 1 when outside bf16's or f32's bounds).
    #[arg(long)]
    pub compare: bool,
    /// Instead of the stage timings: the time to first token of questions about one video,
    /// side by side: the first (encoded-video cache empty), one in a later run (cache hit),
    /// a follow-up in the same process, another question in the same process (a cache of
    /// its own in the work folder).
    #[arg(long, conflicts_with = "compare")]
    pub cache: bool,
    /// Only write the synthetic video into the work folder (unless it is there) and print its
    /// path: for machines whose apollo has no encoder (see scripts/build-portable.sh).
    #[arg(long, conflicts_with_all = ["compare", "cache", "video"])]
    pub video_only: bool,
    /// Instead of the stage timings: only decode the frames of the video's default plan to
    /// RGB (opening included), and report frames, seconds, frames per second, threads, and
    /// the pictures decoded against the fewest those frames need.
    #[arg(long, conflicts_with_all = ["compare", "cache", "video_only"])]
    pub decode_only: bool,
    /// Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups,
    /// the rest shared among their own threads [default: the machine's cores].
    #[arg(long, value_name = "N", value_parser = number(1usize, Low::Included, 1024))]
    pub threads: Option<usize>,
    /// Use this checkpoint (published layout) instead of a generated one.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "layers"])]
    pub model_dir: Option<PathBuf>,
    /// Which published configuration's widths the random checkpoint gets.
    #[arg(long, value_enum, default_value = "3b")]
    pub preset: PresetArg,
    /// Layers each stack runs, 1 to 64 [default: all of the published model].
    #[arg(long, value_name = "N", value_parser = number(1usize, Low::Included, 64))]
    pub layers: Option<usize>,
    /// Where the generated checkpoint, video and plan are kept between runs
    /// [default: <temp dir>/apollo-bench].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Benchmark this video instead of the synthetic one.
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    /// Length of the synthetic video, 1 to 86400 (a day).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        value_parser = number(1u64, Low::Included, 86400)
    )]
    pub video_seconds: u64,
    /// Frame size of the synthetic video, WxH, even sides from 16 to 7680.
    #[arg(long, value_name = "WxH", default_value = "640x360", value_parser = frame_size)]
    pub video_size: (usize, usize),
    /// Frame rate of the synthetic video, 1 to 240.
    #[arg(
        long,
        value_name = "FPS",
        default_value_t = 30,
        value_parser = number(1u32, Low::Included, 240)
    )]
    pub video_fps: u32,
    /// Tokens generated for the decode speed (with --compare: greedy tokens compared), 1 to
    /// 65536 (the model's context ends them sooner).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 128,
        value_parser = number(1usize, Low::Included, 65536)
    )]
    pub new_tokens: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// auto is bf16 on CUDA, f32 on the CPU.
    #[arg(long, value_enum, default_value_t = DTypeChoice::Auto)]
    pub dtype: DTypeChoice,
}

pub fn run(args: &BenchArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    check_folder_flag("--work-dir", args.work_dir.as_deref())?;
    let (width, height) = args.video_size;
    let device = select_device(args.device)?;
    let config = BenchConfig {
        model_dir: args.model_dir.clone(),
        preset: match args.preset {
            PresetArg::Apollo1_5B => Preset::Apollo1_5B,
            PresetArg::Apollo3B => Preset::Apollo3B,
            PresetArg::Apollo7B => Preset::Apollo7B,
        },
        layers: args.layers.map_or(Layers::Published, Layers::Run),
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("apollo-bench")),
        video: args.video.clone(),
        video_seconds: args.video_seconds,
        width,
        height,
        fps: args.video_fps,
        new_tokens: args.new_tokens,
        question: "Describe this video in detail".into(),
        dtype: select_dtype(args.dtype, &device),
        device,
        threads: args.threads.unwrap_or_else(available_threads),
    };
    let log = |step: &str| {
        if !quiet {
            note(format!("apollo bench: {step}"));
        }
    };
    if args.video_only {
        out.line(video::ensure_in(&config)?.display())?;
        return Ok(ExitStatus::Success);
    }
    if args.decode_only {
        let mut log = log;
        let video = inputs_video(&config, &mut log)?;
        out.record(&crate::bench::decode::run(&video, config.threads)?)?;
        return Ok(ExitStatus::Success);
    }
    if args.compare {
        return compare(&config, log, out);
    }
    if args.cache {
        out.record(&crate::bench::questions::run(&config, log)?)?;
        return Ok(ExitStatus::Success);
    }
    out.record(&run_bench(&config, log)?)?;
    Ok(ExitStatus::Success)
}

/// `--compare`: the report on stdout; a failed check is an error after it.
fn compare(
    config: &BenchConfig,
    mut log: impl FnMut(&str),
    out: &mut Printer,
) -> Result<ExitStatus> {
    let files = inputs(config, &mut log)?;
    let report = compare::run(
        &CompareConfig {
            checkpoint: files.checkpoint,
            video: files.video,
            question: config.question.clone(),
            tokens: config.new_tokens,
            device: config.device.clone(),
            dtype: config.dtype,
        },
        log,
    )?;
    out.record(&report)?;
    if !report.pass {
        return Err(Error::runtime(
            None,
            format!(
                "{} {} differs from cpu f32 beyond the bounds (relative tolerance {})",
                report.tested.device, report.tested.dtype, report.tolerance
            ),
        ));
    }
    Ok(ExitStatus::Success)
}

/// `--video`, or the synthetic video (made unless it is in the work folder).
fn inputs_video(config: &BenchConfig, log: &mut impl FnMut(&str)) -> Result<PathBuf> {
    match &config.video {
        Some(v) => Ok(v.clone()),
        None => {
            log("video");
            video::ensure_in(config)
        }
    }
}
