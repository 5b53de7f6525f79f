//! `apollo inspect VIDEO...`: metadata, the sampling plan and the video prompt of each video,
//! as text or as JSON Lines; optionally the sampled frames as PNG files and a contact sheet.

use super::args::ClipSamplingArgs;
use super::bounds::{number, Low};
use super::caption::DEFAULT_QUESTION;
use super::printer::{report, Printer};
use super::{check_folder_flag, STDOUT};
use crate::checkpoint;
use crate::error::{Error, ExitStatus, Result};
use crate::model::input::{positions, video_rows};
use crate::prompt::chat::ChatPrompt;
use crate::prompt::tokens::PromptTokenizer;
use crate::prompt::video::{video_prompt, video_prompt_with};
use crate::records::inspect::{InspectClip, InspectError, InspectRecord, PromptTokens};
use crate::render::contact_sheet::{contact_sheet, SheetRow};
use crate::render::png_file::{encode_png, write_png};
use crate::video::clips::{plan_clips, ClipPlan, ClipSampling};
use crate::video::decode::{available_threads, Video, VideoInfo};
use crate::video::extract::for_each_clip;
use crate::video::frame::RgbFrame;
use crate::video::segment;
use clap::Args;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
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
    /// Write one PNG with all sampled frames in a grid, labelled with their times ("-" for
    /// stdout, instead of the report).
    #[arg(long, value_name = "FILE.png")]
    pub contact_sheet: Option<PathBuf>,
    /// Local Apollo checkpoint directory: tokens per clip, clip duration and context length
    /// come from its configs, and its tokenizer counts the prompt's text tokens.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// The question whose chat prompt --model-dir counts, so that the total is what `ask`
    /// and `caption` report as `tokens.prompt`.
    #[arg(long, default_value = DEFAULT_QUESTION, requires = "model_dir")]
    pub question: String,
    #[command(flatten)]
    pub sampling: ClipSamplingArgs,
    /// Video tokens per clip (the connector's num_output_tokens), 1 to 65536, to plan for
    /// another model [default: the model's, 128].
    #[arg(
        long,
        value_name = "N",
        help_heading = "Clip sampling",
        value_parser = number(1usize, Low::Included, 65536)
    )]
    pub tokens_per_clip: Option<usize>,
}

pub fn run(args: &InspectArgs, out: &mut Printer) -> Result<ExitStatus> {
    let (base, layout) = match &args.model_dir {
        Some(dir) => {
            let (clips, layout) = checkpoint::read_clip_sampling(dir)?;
            (clips, Some(layout))
        }
        None => (ClipSampling::default(), None),
    };
    let cfg = args.sampling.resolve(ClipSampling {
        tokens_per_clip: args.tokens_per_clip.unwrap_or(base.tokens_per_clip),
        ..base
    })?;
    check_outputs(args)?;
    // With a checkpoint, its tokenizer counts the prompt's text tokens exactly.
    let tokenizer = match &layout {
        Some(layout) => Some(PromptTokenizer::from_file(&layout.tokenizer())?),
        None => None,
    };
    let mut status = ExitStatus::Success;
    for path in &args.videos {
        match inspect_one(path, &cfg, args, tokenizer.as_ref()) {
            Ok(Report {
                sheet: Some(sheet), ..
            }) => {
                let mut png = Vec::new();
                encode_png(&sheet, &mut png)
                    .map_err(|e| Error::runtime(None, format!("cannot encode the PNG: {e}")))?;
                out.write(&png)?;
            }
            Ok(seen) if args.json => out.record(&seen.record(&cfg))?,
            Ok(seen) => out.text(&seen.to_text(&cfg))?,
            Err(e) => {
                if args.json {
                    let (path, error) = (path.clone(), e.to_string());
                    out.record(&InspectError { path, error })?;
                } else {
                    report(&e);
                }
                status = status.with_failure(e.status());
            }
        }
    }
    Ok(status)
}

/// The picture flags' checks, before any video is read: `--contact-sheet` takes one video and
/// is not that video, `-` sends it to stdout (instead of the report, never to a terminal),
/// and `--frames` is a folder.
fn check_outputs(args: &InspectArgs) -> Result<()> {
    check_folder_flag("--frames", args.frames.as_deref())?;
    let Some(sheet) = args.contact_sheet.as_deref() else {
        return Ok(());
    };
    if args.videos.len() > 1 {
        return Err(Error::usage("--contact-sheet takes one video"));
    }
    if sheet == Path::new(STDOUT) {
        if args.json {
            return Err(Error::usage(
                "--contact-sheet - writes the PNG to stdout, where --json would write too",
            ));
        }
        if std::io::stdout().is_terminal() {
            return Err(Error::usage(
                "--contact-sheet - would write a PNG to the terminal; redirect stdout",
            ));
        }
    } else if same_file(sheet, &args.videos[0]) {
        return Err(Error::usage(format!(
            "--contact-sheet {sheet:?} is the video being inspected; not overwriting it"
        )));
    }
    Ok(())
}

/// Whether two paths name one existing file (links followed).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// What `inspect` learns of one video.
struct Report {
    info: VideoInfo,
    plan: ClipPlan,
    /// Text tokens of the video prompt, when a tokenizer was given.
    text_tokens: Option<usize>,
    /// The contact sheet, when it goes to stdout.
    sheet: Option<RgbFrame>,
}

fn inspect_one(
    path: &Path,
    cfg: &ClipSampling,
    args: &InspectArgs,
    tokenizer: Option<&PromptTokenizer>,
) -> Result<Report> {
    let mut video = segment::open(path, cfg.segment.as_ref(), available_threads())?;
    let info = video.info().clone();
    let plan = plan_clips(info.total_frames, info.fps, cfg)
        .map_err(|e| Error::input(path, e.to_string()))?;
    let text_tokens = match tokenizer {
        Some(t) => {
            let prompt = video_prompt(
                &plan,
                info.duration_s,
                cfg.clip_duration,
                cfg.tokens_per_clip,
            );
            let chunks = t.tokenize_chat(&ChatPrompt::new(&prompt, &args.question))?;
            Some(positions(&chunks) - video_rows(&chunks))
        }
        None => None,
    };
    let mut sheet = None;
    if args.frames.is_some() || args.contact_sheet.is_some() {
        sheet = write_pictures(&mut video, &plan, args)?;
    }
    Ok(Report {
        sheet,
        info,
        plan,
        text_tokens,
    })
}

/// Writes the sampled frames and the contact sheet that were asked for; returns the sheet
/// when it goes to stdout.
fn write_pictures(
    video: &mut Video,
    plan: &ClipPlan,
    args: &InspectArgs,
) -> Result<Option<RgbFrame>> {
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
        let sheet = contact_sheet(&rows);
        if file == Path::new(STDOUT) {
            return Ok(Some(sheet));
        }
        write_png(file, &sheet)?;
    }
    Ok(None)
}

impl Report {
    fn video_tokens(&self, cfg: &ClipSampling) -> usize {
        self.plan.clips.len() * cfg.tokens_per_clip
    }

    fn record(&self, cfg: &ClipSampling) -> InspectRecord {
        let i = &self.info;
        let video_tokens = self.video_tokens(cfg);
        InspectRecord {
            video: i.clone(),
            effective_ratio: self.plan.effective_ratio,
            clips: self
                .plan
                .clips
                .iter()
                .map(|c| InspectClip::of(i, c))
                .collect(),
            frames_to_decode: self.plan.frames_to_decode().len(),
            video_tokens,
            prompt_tokens: self.text_tokens.map(|text| PromptTokens {
                text,
                video: video_tokens,
                total: text + video_tokens,
            }),
            video_prompt: video_prompt(
                &self.plan,
                i.duration_s,
                cfg.clip_duration,
                cfg.tokens_per_clip,
            ),
        }
    }

    fn to_text(&self, cfg: &ClipSampling) -> String {
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
        if let Some(seg) = &i.segment {
            s += &format!(
                "  segment   frames {}-{} of {}, {:.3}-{:.3} s of {:.3} s\n",
                seg.first_frame,
                seg.first_frame + i.total_frames - 1,
                seg.video_frames,
                seg.start_s,
                seg.end_s,
                seg.video_duration_s
            );
        }
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
            let mut span = format!("{:.2}-{:.2} s", c.start_s, c.end_s);
            if i.segment.is_some() {
                let (start, end) = segment::absolute_span(i, c);
                span += &format!(" (at {start:.2}-{end:.2} s)");
            }
            s += &format!(
                "  clip {:<4} {span:<20} frames {}\n",
                n + 1,
                frames.join(" ")
            );
        }
        let tokens = format!("<{} video tokens>", cfg.tokens_per_clip);
        let video_tokens = format!(
            "{} video tokens ({} clips x {})",
            self.video_tokens(cfg),
            self.plan.clips.len(),
            cfg.tokens_per_clip
        );
        s += &match self.text_tokens {
            Some(t) => format!(
                "  prompt    {} tokens: {video_tokens} + {t} text tokens (the chat template and \
                 --question), in:\n",
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
