//! `apollo ask VIDEO QUESTION`: the answer streams to stdout, or one JSON record with --json.

use super::args::{GenerationArgs, ModelArgs, SamplingArgs};
use super::progress::Bars;
use super::record::{answer_record, RunInfo, VideoSummary};
use crate::error::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The video file.
    #[arg(value_name = "VIDEO")]
    pub video: PathBuf,
    /// The question about it.
    #[arg(value_name = "QUESTION")]
    pub question: String,
    /// Print one JSON object after generation instead of streaming the answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: &AskArgs, quiet: bool) -> Result<()> {
    if args.generation.logprobs.is_some() && !args.json {
        return Err(Error::usage("--logprobs needs --json"));
    }
    let mut bars = Bars::new(quiet);
    let mut opened = args.model.open(&mut bars)?;
    let pipeline = &mut opened.pipeline;
    let cfg = args.sampling.resolve(pipeline.sampling_defaults())?;
    let options = args.generation.options(pipeline)?;
    let prepared = pipeline.prepare(&args.video, &args.question, &cfg)?;
    let summary = VideoSummary::of(&prepared);
    let mut stdout = std::io::stdout().lock();
    let stream = !args.json;
    // The reader went away (`apollo ask ... | head -c 100`): stop generating, quietly.
    let mut closed = false;
    let answer = pipeline.answer(prepared, &options, &mut bars, |text| {
        if stream {
            if let Err(e) = write!(stdout, "{text}").and_then(|()| stdout.flush()) {
                closed = e.kind() == std::io::ErrorKind::BrokenPipe;
                return Err(write_error(e));
            }
        }
        Ok(())
    });
    if closed {
        return Ok(());
    }
    let answer = answer?;
    let out = if args.json {
        let run = RunInfo {
            model: &opened.name,
            device: &opened.device,
            dtype: opened.pipeline.dtype().as_str().to_string(),
        };
        let record = answer_record(
            &args.video,
            &args.question,
            &run,
            &summary,
            &answer,
            &options,
        );
        writeln!(stdout, "{record}")
    } else {
        writeln!(stdout)
    };
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(write_error),
    }
}

pub fn write_error(e: std::io::Error) -> Error {
    Error::runtime(None, format!("cannot write to stdout: {e}"))
}
