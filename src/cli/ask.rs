//! `apollo ask VIDEO QUESTION...`: each answer streams to stdout (answers apart by a blank
//! line), or one JSON record per question with --json. The video is decoded and encoded once
//! (or read from the encoded-video cache) and its prefill shared by every question.

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, LogprobsArgs, ModelArgs};
use super::printer::Printer;
use super::progress::Bars;
use crate::error::{Error, ExitStatus, Result};
use crate::records::answer::{clip_spans, AnswerRecord};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The video file.
    #[arg(value_name = "VIDEO")]
    pub video: PathBuf,
    /// The question about it; several are answered in order, each as if asked alone.
    #[arg(value_name = "QUESTION", required = true)]
    pub questions: Vec<String>,
    /// Print one JSON object per question after generation instead of streaming the answers.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub logprobs: LogprobsArgs,
    #[command(flatten)]
    pub sampling: ClipSamplingArgs,
}

pub fn run(args: &AskArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    if args.logprobs.logprobs.is_some() && !args.json {
        return Err(Error::usage("--logprobs needs --json"));
    }
    let mut bars = Bars::new(quiet);
    let mut session = Answering::open(
        &args.model,
        &args.generation,
        args.logprobs.logprobs,
        &args.sampling,
        &mut bars,
    )?;
    // The video as it is before it is read.
    let inputs = session.inputs(&args.video, &args.questions);
    let mut prepared = session.pipeline.prepare(&args.video, &session.clips)?;
    // Every question must fit before any heavy work.
    let prompts = args
        .questions
        .iter()
        .map(|q| {
            session
                .pipeline
                .question_prompt(&prepared, q, &session.clips)
        })
        .collect::<Result<Vec<_>>>()?;
    let clips = clip_spans(&prepared);
    let mut video = session.pipeline.encode(&mut prepared, &mut bars)?;
    for (n, (prompt, inputs)) in prompts.iter().zip(inputs).enumerate() {
        if n > 0 && !args.json {
            out.line("")?;
        }
        // A closed stdout stops generating at once (`apollo ask ... | head -c 100`).
        let answer =
            session
                .pipeline
                .answer(&mut video, prompt, &session.options, &mut bars, |text| {
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
                clips.clone(),
                prompt,
                answer,
            ))?;
        } else {
            out.line("")?;
        }
    }
    Ok(ExitStatus::Success)
}
