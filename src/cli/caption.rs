//! `apollo caption VIDEO...`: one question (or several) over many videos with one model load.
//! One JSON record per video per question on stdout, in input order, flushed as each
//! finishes; a video or question that fails gets an `{video, error}` record (`question` too
//! when several are asked) and the batch goes on. Each video is encoded once for all its
//! questions. With a shard, only its videos; a summary line at the end, and with
//! --output-dir the shard's manifest.

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, LogprobsArgs, ModelArgs};
use super::check_folder_flag;
use super::printer::{note, report, Printer};
use super::progress::Bars;
use super::shard::ShardArgs;
use crate::atomic_file::write_atomically;
use crate::batch::manifest::Tally;
use crate::batch::shard::Shard;
use crate::error::{Error, ExitStatus, Kind, Result};
use crate::pipeline::{EncodedVideo, Prompt};
use crate::records::answer::{clip_spans, AnswerError, AnswerInputs, AnswerRecord, ClipSpan};
use crate::records::identity;
use crate::records::to_json;
use clap::Args;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_QUESTION: &str = "Describe this video in detail";

#[derive(Debug, Args)]
pub struct CaptionArgs {
    /// Video files.
    #[arg(value_name = "VIDEO")]
    pub videos: Vec<PathBuf>,
    /// Also read video paths from FILE, one a line ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The question asked of every video; given several times, each is asked in order.
    #[arg(long = "question", value_name = "QUESTION", default_value = DEFAULT_QUESTION)]
    pub questions: Vec<String>,
    /// Also write each record to DIR/<video name>.json, or DIR/<video name>.<n>.json for the
    /// n-th of several questions (written whole or not at all).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Skip videos whose record is already in --output-dir (resume a batch).
    #[arg(long, requires = "output_dir")]
    pub skip_existing: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub logprobs: LogprobsArgs,
    #[command(flatten)]
    pub sampling: ClipSamplingArgs,
    #[command(flatten)]
    pub shard: ShardArgs,
}

pub fn run(args: &CaptionArgs, quiet: bool, out: &mut Printer) -> Result<ExitStatus> {
    check_folder_flag("--output-dir", args.output_dir.as_deref())?;
    let (shard, shard_from) = args.shard.resolve()?;
    let listed = inputs(args)?;
    let (videos, outputs) = match &args.output_dir {
        Some(dir) => {
            let (videos, files) = output_files(dir, &listed, shard, args.questions.len())?;
            (videos, Some(files))
        }
        None => (in_shard(&listed, shard), None),
    };
    tracing::debug!("shard {shard}: {} of {} videos", videos.len(), listed.len());
    // A manifest from an earlier run would say this one finished.
    let manifest = args
        .output_dir
        .as_ref()
        .map(|d| d.join(shard.manifest_name()));
    if let Some(file) = &manifest {
        remove_if_there(file)?;
    }
    let mut bars = Bars::new(quiet);
    let mut session = Answering::open(
        &args.model,
        &args.generation,
        args.logprobs.logprobs,
        &args.sampling,
        &mut bars,
    )?;
    let mut status = ExitStatus::Success;
    let several = args.questions.len() > 1;
    let mut tally = Tally::start(videos.len());
    for (n, video) in videos.iter().enumerate() {
        let files = outputs.as_ref().map(|o| o[n].as_slice());
        // The video as it is before it is read.
        let inputs = session.inputs(video, &args.questions);
        let done: Vec<Option<AnswerRecord>> = inputs
            .iter()
            .enumerate()
            .map(|(q, inputs)| {
                files
                    .filter(|_| args.skip_existing)
                    .and_then(|f| reusable(&f[q], inputs))
            })
            .collect();
        // Opened and encoded once, when the first question that needs it comes.
        let mut ready: Option<std::result::Result<Ready, Error>> = None;
        let mut outcome = Outcome::Skipped;
        for (q, (inputs, done)) in inputs.into_iter().zip(done).enumerate() {
            if let Some(done) = done {
                // Named as this run names it: the inputs say it is the same file.
                out.record(&AnswerRecord {
                    video: video.clone(),
                    ..done
                })?;
                continue;
            }
            if matches!(outcome, Outcome::Skipped) {
                outcome = Outcome::Done;
            }
            if ready.is_none() {
                let opened = open(&mut session, video, &args.questions, &mut bars)?;
                if let Err(e) = &opened {
                    report(e);
                }
                ready = Some(opened);
            }
            let question = inputs.question.clone();
            let result = match ready.as_mut().expect("set above") {
                Err(e) => Err(e.clone()),
                Ok(ready) => ready.answer(&mut session, q, video, inputs, &mut bars),
            };
            match result {
                Ok(record) => {
                    if let Some(file) = files.map(|f| &f[q]) {
                        write_atomically(file, format!("{}\n", to_json(&record)?).as_bytes())?;
                        tracing::debug!("{video:?}: record written to {file:?}");
                    }
                    out.record(&record)?;
                }
                Err(e) => {
                    if ready.as_ref().is_some_and(|r| r.is_ok()) {
                        report(&e);
                    }
                    status = status.with_failure(e.status());
                    out.record(&AnswerError {
                        video: video.clone(),
                        question: several.then_some(question),
                        error: e.to_string(),
                    })?;
                    if !matches!(outcome, Outcome::Failed(_)) {
                        outcome = Outcome::Failed(e);
                    }
                }
            }
        }
        match outcome {
            Outcome::Skipped => tally.skipped(video),
            Outcome::Done => tally.done(video),
            Outcome::Failed(e) => tally.failed(video, &e),
        }
    }
    if !quiet {
        note(tally.summary(shard));
    }
    if let Some(file) = &manifest {
        let settings = AnswerInputs::of_run(&args.questions[0], &session.settings());
        let mut settings = serde_json::to_value(settings)
            .map_err(|e| Error::runtime(None, format!("cannot write the manifest: {e}")))?;
        if let Some(fields) = settings.as_object_mut() {
            fields.shift_remove("video");
            if several {
                fields.shift_remove("question");
                fields.insert("questions".into(), args.questions.clone().into());
            }
        }
        let manifest = tally.manifest(shard, shard_from, settings);
        write_atomically(file, format!("{}\n", to_json(&manifest)?).as_bytes())?;
    }
    Ok(status)
}

/// How a video's questions went, for the manifest: all reused, some answered, or one failed.
enum Outcome {
    Skipped,
    Done,
    Failed(Error),
}

/// A video opened, its questions' prompts made (each may fail on its own: too long), and its
/// rows, unless no prompt could be made.
struct Ready {
    prompts: Vec<Result<Prompt>>,
    video: Option<EncodedVideo>,
    clips: Vec<ClipSpan>,
}

/// Opens and encodes `video` for `questions`: the inner error is the video's (its records
/// say so and the batch goes on), the outer one a model that cannot load, which ends the
/// batch.
fn open(
    session: &mut Answering,
    video: &Path,
    questions: &[String],
    bars: &mut Bars,
) -> Result<Result<Ready>> {
    let mut prepared = match session.pipeline.prepare(video, &session.clips) {
        Ok(prepared) => prepared,
        Err(e) => return Ok(Err(e)),
    };
    let prompts: Vec<Result<Prompt>> = questions
        .iter()
        .map(|q| {
            session
                .pipeline
                .question_prompt(&prepared, q, &session.clips)
        })
        .collect();
    let clips = clip_spans(&prepared);
    if prompts.iter().all(|p| p.is_err()) {
        return Ok(Ok(Ready {
            prompts,
            video: None,
            clips,
        }));
    }
    session.pipeline.load(bars)?;
    Ok(session
        .pipeline
        .encode(&mut prepared, bars)
        .map(|video| Ready {
            prompts,
            video: Some(video),
            clips,
        }))
}

impl Ready {
    /// The record of question `q`.
    fn answer(
        &mut self,
        session: &mut Answering,
        q: usize,
        video: &Path,
        inputs: AnswerInputs,
        bars: &mut Bars,
    ) -> Result<AnswerRecord> {
        let prompt = match &self.prompts[q] {
            Ok(prompt) => prompt,
            Err(e) => return Err(e.clone()),
        };
        let encoded = self.video.as_mut().expect("encoded when a prompt was made");
        let answer =
            session
                .pipeline
                .answer(encoded, prompt, &session.options, bars, |_| Ok(()))?;
        Ok(AnswerRecord::new(
            video,
            inputs,
            &session.settings(),
            self.clips.clone(),
            prompt,
            answer,
        ))
    }
}

/// The videos of `shard`, in list order.
fn in_shard(videos: &[PathBuf], shard: Shard) -> Vec<PathBuf> {
    videos.iter().filter(|v| shard.holds(v)).cloned().collect()
}

/// Removes `file`; nothing there is fine.
fn remove_if_there(file: &Path) -> Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::runtime(
            Some(file),
            format!("cannot remove the manifest of an earlier run: {e}"),
        )),
        _ => Ok(()),
    }
}

/// The videos named on the command line, then those of --from.
fn inputs(args: &CaptionArgs) -> Result<Vec<PathBuf>> {
    let mut videos = args.videos.clone();
    if let Some(from) = &args.from {
        let list = if from.as_os_str() == "-" {
            let mut list = Vec::new();
            std::io::stdin().lock().read_to_end(&mut list).map(|_| list)
        } else {
            std::fs::read(from)
        }
        .map_err(|e| {
            Error::new(
                Kind::Usage,
                Some(from),
                format!("cannot read the list: {e}"),
            )
        })?;
        videos.extend(list_paths(&list));
    }
    if videos.is_empty() {
        return Err(Error::usage(
            "no videos given (name them, or use --from FILE)",
        ));
    }
    Ok(videos)
}

/// The paths of a --from list, one a line, taken as bytes: Linux names need not be UTF-8.
/// Line ends may be CRLF; blank lines are skipped.
fn list_paths(list: &[u8]) -> impl Iterator<Item = PathBuf> + '_ {
    list.split(|&b| b == b'\n')
        .map(|line| {
            let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
            &line[..end]
        })
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| PathBuf::from(OsStr::from_bytes(line)))
}

/// The videos of `shard` and, for each, DIR/<file stem>.json, or DIR/<file stem>.<n>.json for
/// its n-th of several questions. Before any work, two videos are refused that would share a
/// file: two of the whole list (in any shards), or one of the shard and the record an earlier
/// run left for another video. No record takes a manifest's name.
fn output_files(
    dir: &Path,
    videos: &[PathBuf],
    shard: Shard,
    questions: usize,
) -> Result<(Vec<PathBuf>, Vec<Vec<PathBuf>>)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(Some(dir), format!("cannot create directory: {e}")))?;
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    let (mut mine, mut files) = (Vec::new(), Vec::new());
    for video in videos {
        let stem = video.file_stem().unwrap_or(video.as_os_str());
        let names: Vec<PathBuf> = match questions {
            1 => vec![dir.join(Path::new(stem).with_extension("json"))],
            _ => (1..=questions)
                .map(|n| {
                    let mut name = stem.to_os_string();
                    name.push(format!(".{n}.json"));
                    dir.join(name)
                })
                .collect(),
        };
        for file in &names {
            if let Some(other) = seen.insert(file.clone(), video) {
                if other != video.as_path() {
                    return Err(Error::usage(format!(
                        "{other:?} and {video:?} would both be written to {file:?}; caption \
                         them in separate runs"
                    )));
                }
            }
            if Shard::is_manifest_name(&file.file_name().unwrap_or_default().to_string_lossy()) {
                return Err(Error::usage(format!(
                    "{video:?} would be recorded as {file:?}, the name of a shard's manifest; \
                     rename the video"
                )));
            }
        }
        // Only this shard's records are read: every shard checks the whole list's names.
        if shard.holds(video) {
            for file in &names {
                check_not_another_videos(file, video)?;
            }
            mine.push(video.clone());
            files.push(names);
        }
    }
    Ok((mine, files))
}

/// Refuses to write over a record of another video file: with the same name in another
/// folder, it would be lost. A file that is no whole record is no one's and is redone.
fn check_not_another_videos(file: &Path, video: &Path) -> Result<()> {
    let Some(theirs) = read_record(file).and_then(|r| r.inputs.video) else {
        return Ok(());
    };
    match identity::absolute(video) {
        Some(ours) if ours != theirs.path => Err(Error::usage(format!(
            "{file:?} holds the record of {:?}, another video of the same name; use another \
             --output-dir, or remove that record",
            theirs.path
        ))),
        _ => Ok(()),
    }
}

/// The record in `file` if it answers exactly `inputs`: the same video file, question, model
/// and settings. Anything else is redone.
fn reusable(file: &Path, inputs: &AnswerInputs) -> Option<AnswerRecord> {
    let record = read_record(file)?;
    if inputs.video.is_some() && record.inputs == *inputs {
        return Some(record);
    }
    tracing::debug!("{file:?} was made from other inputs: redone");
    None
}

/// Records are a few kilobytes, up to about a megabyte with logprobs.
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// The record in `file` if it is a whole answer record (a failed, partial, foreign or
/// unreadable file is none).
fn read_record(file: &Path) -> Option<AnswerRecord> {
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() || meta.len() > MAX_RECORD_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text)
        .map_err(|e| tracing::debug!("{file:?} is not a whole record ({e})"))
        .ok()
}
