//! `apollo inspect VIDEO...`: metadata, the sampling plan and the video prompt of each video,
//! as text or as JSON Lines; optionally the sampled frames as PNG files and a contact sheet.

use super::args::SamplingArgs;
use crate::error::{Error, Kind, Result};
use crate::model::config::read_json;
use crate::prompt::tokens::{PromptTokenizer, VIDEO_SLOT};
use crate::prompt::video::{video_prompt, video_prompt_with};
use crate::render::contact_sheet::{contact_sheet, SheetRow};
use crate::render::png_file::write_png;
use crate::video::decode::{Video, VideoInfo};
use crate::video::extract::for_each_clip;
use crate::video::frame::RgbFrame;
use crate::video::sample::{plan, SamplingConfig, SamplingPlan};
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Video files to inspect.
    #[arg(required = true, value_name = "VIDEO")]
    pub videos: Vec<PathBuf>,
    /// One JSON object per video, one per line.
    #[arg(long)]
    pub json: bool,
    /// Write every sampled frame as PNG into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub frames: Option<PathBuf>,
    /// Write one PNG with all sampled frames in a grid, labelled with their times.
    #[arg(long, value_name = "FILE.png")]
    pub contact_sheet: Option<PathBuf>,
    /// Local Apollo checkpoint directory: tokens per clip, clip duration and context length
    /// come from its configs, and its tokenizer counts the prompt's text tokens.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    let mut base = SamplingConfig::default();
    if let Some(dir) = &args.model_dir {
        apply_checkpoint(&mut base, dir)?;
    }
    let cfg = args.sampling.resolve(base)?;
    if args.contact_sheet.is_some() && args.videos.len() > 1 {
        return Err(Error::usage("--contact-sheet takes one video"));
    }
    // With a checkpoint, its tokenizer counts the prompt's text tokens exactly.
    let tokenizer = match &args.model_dir {
        Some(dir) => Some(PromptTokenizer::from_file(&dir.join("llm/tokenizer.json"))?),
        None => None,
    };
    let mut first_error: Option<Error> = None;
    let stdout = std::io::stdout();
    for path in &args.videos {
        let result = inspect_one(path, &cfg, args, tokenizer.as_ref());
        let mut out = stdout.lock();
        let written = match &result {
            Ok(report) if args.json => writeln!(out, "{}", report.to_json(&cfg)),
            Ok(report) => write!(out, "{}", report.to_text(&cfg)),
            Err(e) if args.json => {
                writeln!(out, "{}", json!({"path": path, "error": e.to_string()}))
            }
            Err(_) => Ok(()),
        };
        match written {
            // The reader went away (`apollo inspect ... | head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Error::runtime(None, format!("cannot write to stdout: {e}"))),
            Ok(()) => {}
        }
        if let Err(e) = result {
            if !args.json {
                eprintln!("apollo: {e}");
            }
            first_error.get_or_insert(e);
        }
    }
    // Each failure was reported as it happened; the exit code is the first one's.
    first_error.map_or(Ok(()), |e| Err(e.reported()))
}

/// What `inspect` learns of one video.
struct Report {
    info: VideoInfo,
    plan: SamplingPlan,
    /// Text tokens of the video prompt, when a tokenizer was given.
    text_tokens: Option<usize>,
}

fn inspect_one(
    path: &Path,
    cfg: &SamplingConfig,
    args: &InspectArgs,
    tokenizer: Option<&PromptTokenizer>,
) -> Result<Report> {
    let mut video = Video::open(path)?;
    let info = video.info().clone();
    let plan =
        plan(info.total_frames, info.fps, cfg).map_err(|e| Error::input(path, e.to_string()))?;
    let text_tokens = match tokenizer {
        Some(t) => {
            let prompt = video_prompt(
                &plan,
                info.duration_s,
                cfg.clip_duration,
                cfg.num_output_tokens,
            );
            Some(
                t.tokenize(&prompt)?
                    .iter()
                    .filter(|&&id| id != VIDEO_SLOT)
                    .count(),
            )
        }
        None => None,
    };
    if args.frames.is_some() || args.contact_sheet.is_some() {
        write_pictures(&mut video, &plan, args)?;
    }
    Ok(Report {
        info,
        plan,
        text_tokens,
    })
}

fn write_pictures(video: &mut Video, plan: &SamplingPlan, args: &InspectArgs) -> Result<()> {
    if let Some(dir) = &args.frames {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::runtime(Some(dir), format!("cannot create directory: {e}")))?;
    }
    let stem = video
        .info()
        .path
        .file_stem()
        .map_or("video".into(), |s| s.to_string_lossy().into_owned());
    let fps = video.info().fps;
    let mut kept: Vec<Vec<(Arc<RgbFrame>, f64)>> = Vec::new();
    for_each_clip(video, plan, |c, frames| {
        let indices = &plan.clips[c].frame_indices;
        if let Some(dir) = &args.frames {
            for (i, frame) in indices.iter().zip(frames) {
                write_png(
                    &dir.join(format!("{stem}_clip{:03}_frame{i:06}.png", c + 1)),
                    frame,
                )?;
            }
        }
        if args.contact_sheet.is_some() {
            kept.push(
                indices
                    .iter()
                    .zip(frames)
                    .map(|(&i, f)| (f.clone(), i as f64 / fps))
                    .collect(),
            );
        }
        Ok(())
    })?;
    if let Some(file) = &args.contact_sheet {
        let rows: Vec<SheetRow> = kept
            .iter()
            .map(|clip| SheetRow {
                frames: clip.iter().map(|(f, t)| (f.as_ref(), *t)).collect(),
            })
            .collect();
        write_png(file, &contact_sheet(&rows))?;
    }
    Ok(())
}

impl Report {
    fn video_tokens(&self, cfg: &SamplingConfig) -> usize {
        self.plan.clips.len() * cfg.num_output_tokens
    }

    fn to_json(&self, cfg: &SamplingConfig) -> serde_json::Value {
        let i = &self.info;
        let video_tokens = self.video_tokens(cfg);
        let mut record = json!({
            "path": i.path,
            "width": i.width,
            "height": i.height,
            "fps": i.fps,
            "total_frames": i.total_frames,
            "duration_s": i.duration_s,
            "rotation": i.rotation,
            "codec": i.codec,
            "effective_ratio": self.plan.effective_ratio,
            "clips": self.plan.clips,
            "frames_to_decode": self.plan.frames_to_decode().len(),
            "video_tokens": video_tokens,
        });
        if let Some(text) = self.text_tokens {
            record["prompt_tokens"] =
                json!({"text": text, "video": video_tokens, "total": text + video_tokens});
        }
        record["video_prompt"] = video_prompt(
            &self.plan,
            i.duration_s,
            cfg.clip_duration,
            cfg.num_output_tokens,
        )
        .into();
        record
    }

    fn to_text(&self, cfg: &SamplingConfig) -> String {
        let i = &self.info;
        let rotation = if i.rotation == 0 {
            String::new()
        } else {
            format!(", rotated {}°", i.rotation)
        };
        let mut s = format!(
            "{}\n  video     {}x{}{rotation}, {} fps, {} frames, {:.3} s, {}\n",
            i.path.display(),
            i.width,
            i.height,
            trim_float(i.fps),
            i.total_frames,
            i.duration_s,
            i.codec,
        );
        s += &format!(
            "  plan      {} clips of {} frames, {} s each (effective ratio {}), {} distinct frames to decode\n",
            self.plan.clips.len(),
            cfg.frames_per_clip,
            trim_float(cfg.clip_duration),
            trim_float(self.plan.effective_ratio),
            self.plan.frames_to_decode().len(),
        );
        for (n, c) in self.plan.clips.iter().enumerate() {
            let frames: Vec<String> = c.frame_indices.iter().map(u64::to_string).collect();
            let span = format!("{:.2}-{:.2} s", c.start_s, c.end_s);
            s += &format!(
                "  clip {:<4} {span:<20} frames {}\n",
                n + 1,
                frames.join(" ")
            );
        }
        let tokens = format!("<{} video tokens>", cfg.num_output_tokens);
        let video_tokens = format!(
            "{} video tokens ({} clips x {})",
            self.video_tokens(cfg),
            self.plan.clips.len(),
            cfg.num_output_tokens
        );
        s += &match self.text_tokens {
            Some(t) => format!(
                "  prompt    {} tokens: {video_tokens} + {t} text tokens, in:\n",
                self.video_tokens(cfg) + t
            ),
            None => {
                format!("  prompt    {video_tokens} + text tokens (--model-dir counts them), in:\n")
            }
        };
        for line in video_prompt_with(&self.plan, i.duration_s, cfg.clip_duration, &tokens).lines()
        {
            s += &format!("    {line}\n");
        }
        s
    }
}

/// A float without trailing zeros: 25, 29.97, 0.65.
fn trim_float(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Reads the sampling-relevant values of a checkpoint; only the files they are in need exist,
/// so a partial download can be planned for.
fn apply_checkpoint(cfg: &mut SamplingConfig, dir: &Path) -> Result<()> {
    let connector_path = dir.join("mm_connector/config.json");
    let connector: Value = read_json(&connector_path)?;
    cfg.num_output_tokens = connector["num_output_tokens"]
        .as_u64()
        .ok_or_else(|| Error::new(Kind::Model, Some(&connector_path), "no num_output_tokens"))?
        as usize;
    let top: Value = read_json(&dir.join("config.json"))?;
    if let Some(d) = top["clip_duration"].as_f64() {
        cfg.clip_duration = d;
    }
    let max_len = top["llm_cfg"]["model_max_length"]
        .as_u64()
        .or(top["model_max_length"].as_u64());
    if let Some(m) = max_len {
        cfg.model_max_length = m as usize;
    }
    Ok(())
}
