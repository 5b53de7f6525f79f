//! `apollo chat VIDEO`: a conversation about one video. The video is encoded once (or read
//! from the encoded-video cache) and each turn prefills only its own block: the previous
//! answer put back as text, the new question, the open assistant turn (see
//! `prompt::blocks`). On a terminal: a line editor with history, answers streaming, Ctrl-C
//! stopping an answer, commands (/reset, /video PATH, /help, /quit). Otherwise one question
//! per line of stdin and one answer per question, so that it can be scripted.

mod input;

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, LogprobsArgs, ModelArgs};
use super::printer::{note, report, Printer};
use super::progress::Bars;
use crate::error::{Error, ExitStatus, Kind, Result};
use crate::generate::run::Finish;
use crate::pipeline::{EncodedVideo, Prepared};
use crate::prompt::chat::Exchange;
use crate::records::answer::{clip_spans, AnswerError, AnswerInputs, AnswerRecord, ClipSpan};
use clap::Args;
use input::{printable, Input, Lines};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The video file.
    #[arg(value_name = "VIDEO")]
    pub video: PathBuf,
    /// One JSON object per answer (a line each) instead of the answer's text.
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

const HELP: &str = "/reset forgets the conversation (the video stays), /video PATH talks about \
                    another video, /quit or Ctrl-D ends; Ctrl-C stops an answer";

/// A line that is a command rather than a question.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Quit,
    Reset,
    Help,
    Video(&'a str),
    Unknown(&'a str),
}

impl<'a> Command<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let rest = line.strip_prefix('/')?;
        let (name, argument) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let argument = argument.trim();
        Some(match name {
            "quit" | "exit" if argument.is_empty() => Command::Quit,
            "reset" if argument.is_empty() => Command::Reset,
            "help" if argument.is_empty() => Command::Help,
            "video" if !argument.is_empty() => Command::Video(argument),
            _ => Command::Unknown(line),
        })
    }
}

pub fn run(args: &ChatArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    if args.logprobs.logprobs.is_some() && !args.json {
        return Err(Error::usage("--logprobs needs --json"));
    }
    let terminal = std::io::stdin().is_terminal();
    let mut bars = Bars::new(quiet);
    let mut session = Answering::open(
        &args.model,
        &args.generation,
        args.logprobs.logprobs,
        &args.sampling,
        &mut bars,
    )?;
    let interrupt = Arc::new(AtomicBool::new(false));
    if terminal {
        // Ctrl-C sets the flag, which stops the answer; a second one before the flag is
        // cleared (while a video is encoding, say) ends apollo as Ctrl-C does elsewhere.
        let sigint = signal_hook::consts::SIGINT;
        signal_hook::flag::register_conditional_default(sigint, Arc::clone(&interrupt))
            .and_then(|_| signal_hook::flag::register(sigint, Arc::clone(&interrupt)))
            .map_err(|e| Error::runtime(None, format!("cannot handle Ctrl-C: {e}")))?;
        session.pipeline.set_interrupt(Arc::clone(&interrupt));
    }
    let say = |line: &str| {
        if terminal && !quiet {
            note(line);
        }
    };
    let mut chat = Conversation::open(&mut session, &args.video, &mut bars)?;
    if interrupt.swap(false, Ordering::Relaxed) {
        return Ok(ExitStatus::Success);
    }
    say(&format!(
        "{:?}: {} clips. Ask away; /help for commands.",
        args.video,
        chat.clips.len()
    ));
    let mut lines = Lines::new(terminal)?;
    let mut status = ExitStatus::Success;
    let mut answered = 0;
    loop {
        let line = match lines.next()? {
            Input::End => break,
            Input::Cancelled => continue,
            Input::Line(line) => line,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let failure = match Command::parse(line) {
            Some(Command::Quit) => break,
            Some(Command::Help) => {
                note(HELP);
                None
            }
            Some(Command::Reset) => {
                chat.earlier.clear();
                say("The conversation starts over.");
                None
            }
            Some(Command::Video(path)) => {
                match Conversation::open(&mut session, Path::new(path), &mut bars) {
                    Ok(other) => {
                        chat = other;
                        say(&format!("{path:?}: {} clips.", chat.clips.len()));
                        None
                    }
                    Err(e) => Some(e),
                }
            }
            Some(Command::Unknown(line)) => {
                Some(Error::usage(format!("{line:?} is no command: {HELP}")))
            }
            None => {
                interrupt.store(false, Ordering::Relaxed);
                let mode = Mode {
                    json: args.json,
                    terminal,
                    first: answered == 0,
                };
                let turn = chat.turn(&mut session, line, &mut bars, out, mode);
                // A Ctrl-C from now on is no second one: it does not end apollo.
                interrupt.store(false, Ordering::Relaxed);
                match turn {
                    Ok(finish) => {
                        answered += 1;
                        if finish == Finish::Interrupted {
                            say("(stopped)");
                        }
                        None
                    }
                    Err(e) if e.kind == Kind::OutputClosed => return Err(e),
                    Err(e) => {
                        if args.json {
                            out.record(&AnswerError {
                                video: chat.path.clone(),
                                question: Some(line.to_string()),
                                error: e.to_string(),
                            })?;
                        }
                        Some(e)
                    }
                }
            }
        };
        if let Some(e) = failure {
            report(&e);
            status = status.with_failure(e.status());
        }
    }
    Ok(status)
}

/// How answers are shown.
#[derive(Clone, Copy)]
struct Mode {
    json: bool,
    terminal: bool,
    /// No answer shown yet (piped text puts a blank line between answers).
    first: bool,
}

/// A video being talked about, and the exchanges so far.
struct Conversation {
    path: PathBuf,
    prepared: Prepared,
    video: EncodedVideo,
    clips: Vec<ClipSpan>,
    /// The records' inputs without their question and history.
    inputs: AnswerInputs,
    earlier: Vec<Exchange>,
}

impl Conversation {
    /// Opens and encodes `path`; fails when not even its video prompt fits the context.
    fn open(session: &mut Answering, path: &Path, bars: &mut Bars) -> Result<Self> {
        let inputs = session.inputs(path, &[String::new()]).remove(0);
        let mut prepared = session.pipeline.prepare(path, &session.clips)?;
        session
            .pipeline
            .question_prompt(&prepared, "", &session.clips)?;
        let clips = clip_spans(&prepared);
        let video = session.pipeline.encode(&mut prepared, bars)?;
        Ok(Self {
            path: path.to_path_buf(),
            prepared,
            video,
            clips,
            inputs,
            earlier: Vec::new(),
        })
    }

    /// Answers `question` after the exchanges so far, and adds it to them.
    fn turn(
        &mut self,
        session: &mut Answering,
        question: &str,
        bars: &mut Bars,
        out: &mut Printer,
        mode: Mode,
    ) -> Result<Finish> {
        let pipeline = &session.pipeline;
        let prompt = if self.earlier.is_empty() {
            pipeline.question_prompt(&self.prepared, question, &session.clips)?
        } else {
            let prompt = pipeline.prompt(&self.prepared, &self.earlier, question)?;
            if !pipeline.fits(&prompt) {
                return Err(Error::new(
                    Kind::Usage,
                    Some(&self.path),
                    format!(
                        "with this question the conversation needs {} tokens but the model's \
                         context holds {}: /reset starts it over",
                        prompt.positions(),
                        pipeline.context_length()
                    ),
                ));
            }
            prompt
        };
        if !mode.json && !mode.terminal && !mode.first {
            out.line("")?;
        }
        let answer = session.pipeline.answer(
            &mut self.video,
            &prompt,
            &session.options,
            bars,
            |text| match (mode.json, mode.terminal) {
                (true, _) => Ok(()),
                (false, true) => out.text(&printable(text)),
                (false, false) => out.text(text),
            },
        )?;
        let text = answer.generation.text.clone();
        let finish = answer.generation.finish;
        if mode.json {
            let inputs = AnswerInputs {
                question: question.to_string(),
                history: self.earlier.clone(),
                ..self.inputs.clone()
            };
            let mut record = AnswerRecord::new(
                &self.path,
                inputs,
                &session.settings(),
                self.clips.clone(),
                &prompt,
                answer,
            );
            record.turn = Some(self.earlier.len() + 1);
            out.record(&record)?;
        } else {
            out.line("")?;
            if mode.terminal {
                out.line("")?;
            }
        }
        self.earlier.push(Exchange {
            question: question.to_string(),
            answer: text,
        });
        Ok(finish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_told_from_questions() {
        assert_eq!(Command::parse("What now?"), None);
        assert_eq!(Command::parse("/quit"), Some(Command::Quit));
        assert_eq!(Command::parse("/reset"), Some(Command::Reset));
        assert_eq!(Command::parse("/help"), Some(Command::Help));
        assert_eq!(
            Command::parse("/video  my clip.mp4 "),
            Some(Command::Video("my clip.mp4"))
        );
        assert_eq!(Command::parse("/video"), Some(Command::Unknown("/video")));
        assert_eq!(
            Command::parse("/reset now"),
            Some(Command::Unknown("/reset now"))
        );
        assert_eq!(Command::parse("/rest"), Some(Command::Unknown("/rest")));
    }
}
