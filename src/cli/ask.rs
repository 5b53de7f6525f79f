//! `apollo ask VIDEO QUESTION`: the answer streams to stdout, or one JSON record with --json.

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, ModelArgs};
use super::printer::Printer;
use super::progress::Bars;
use crate::error::{Error, ExitStatus, Result};
use crate::records::answer::{AnswerInputs, AnswerRecord, VideoSummary};
use clap::Args;
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
    pub sampling: ClipSamplingArgs,
}

pub fn run(args: &AskArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    if args.generation.logprobs.is_some() && !args.json {
        return Err(Error::usage("--logprobs needs --json"));
    }
    let mut bars = Bars::new(quiet);
    let mut session = Answering::open(&args.model, &args.generation, &args.sampling, &mut bars)?;
    // The video as it is before it is read.
    let inputs = AnswerInputs::new(&args.video, &args.question, &session.settings());
    let prepared = session
        .pipeline
        .prepare(&args.video, &args.question, &session.clips)?;
    let summary = VideoSummary::of(&prepared);
    // A closed stdout stops generating at once (`apollo ask ... | head -c 100`).
    let answer = session
        .pipeline
        .answer(prepared, &session.options, &mut bars, |text| {
            if args.json {
                Ok(())
            } else {
                out.text(text)
            }
        })?;
    if args.json {
        out.record(&AnswerRecord::new(
            &args.video,
            inputs,
            &session.settings(),
            summary,
            answer,
        ))?;
    } else {
        out.line("")?;
    }
    Ok(ExitStatus::Success)
}
