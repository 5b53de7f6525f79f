//! `apollo caption VIDEO...`: one question over many videos with one model load. One JSON
//! record per video on stdout, in input order, flushed as each finishes; a video that fails
//! gets an `{video, error}` record and the batch goes on. With a shard, only its videos; a
//! summary line at the end, and with --output-dir the shard's manifest.

use super::args::{Answering, ClipSamplingArgs, GenerationArgs, ModelArgs};
use super::check_folder_flag;
use super::printer::{note, report, Printer};
use super::progress::Bars;
use super::shard::ShardArgs;
use crate::atomic_file::write_atomically;
use crate::batch::manifest::Tally;
use crate::batch::shard::Shard;
use crate::error::{Error, ExitStatus, Kind, Result};
use crate::records::answer::{AnswerError, AnswerInputs, AnswerRecord, VideoSummary};
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
    /// The question asked of every video.
    #[arg(long, default_value = DEFAULT_QUESTION)]
    pub question: String,
    /// Also write each record to DIR/<video name>.json (written whole or not at all).
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
            let (videos, files) = output_files(dir, &listed, shard)?;
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
    let mut session = Answering::open(&args.model, &args.generation, &args.sampling, &mut bars)?;
    let mut status = ExitStatus::Success;
    let mut tally = Tally::start(videos.len());
    for (n, video) in videos.iter().enumerate() {
        let output = outputs.as_ref().map(|o| o[n].as_path());
        // The video as it is before it is read.
        let inputs = AnswerInputs::new(video, &args.question, &session.settings());
        if let Some(done) = output
            .filter(|_| args.skip_existing)
            .and_then(|file| reusable(file, &inputs))
        {
            // Named as this run names it: the inputs say it is the same file.
            out.record(&AnswerRecord {
                video: video.clone(),
                ..done
            })?;
            tally.skipped(video);
            continue;
        }
        let result = match session
            .pipeline
            .prepare(video, &args.question, &session.clips)
        {
            Err(e) => Err(e),
            Ok(prepared) => {
                // A model that cannot load fails every video: stop the batch.
                session.pipeline.load(&mut bars)?;
                let summary = VideoSummary::of(&prepared);
                session
                    .pipeline
                    .answer(prepared, &session.options, &mut bars, |_| Ok(()))
                    .map(|answer| {
                        AnswerRecord::new(video, inputs, &session.settings(), summary, answer)
                    })
            }
        };
        match result {
            Ok(record) => {
                if let Some(file) = output {
                    write_atomically(file, format!("{}\n", to_json(&record)?).as_bytes())?;
                    tracing::debug!("{video:?}: record written to {file:?}");
                }
                out.record(&record)?;
                tally.done(video);
            }
            Err(e) => {
                report(&e);
                status = status.with_failure(e.status());
                out.record(&AnswerError {
                    video: video.clone(),
                    error: e.to_string(),
                })?;
                tally.failed(video, &e);
            }
        }
    }
    if !quiet {
        note(tally.summary(shard));
    }
    if let Some(file) = &manifest {
        let settings = AnswerInputs::of_run(&args.question, &session.settings());
        let mut settings = serde_json::to_value(settings)
            .map_err(|e| Error::runtime(None, format!("cannot write the manifest: {e}")))?;
        if let Some(fields) = settings.as_object_mut() {
            fields.shift_remove("video");
        }
        let manifest = tally.manifest(shard, shard_from, settings);
        write_atomically(file, format!("{}\n", to_json(&manifest)?).as_bytes())?;
    }
    Ok(status)
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

/// The videos of `shard` and DIR/<file stem>.json for each. Before any work, two videos are
/// refused that would share a file: two of the whole list (in any shards), or one of the shard
/// and the record an earlier run left for another video. No record takes a manifest's name.
fn output_files(
    dir: &Path,
    videos: &[PathBuf],
    shard: Shard,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(Some(dir), format!("cannot create directory: {e}")))?;
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    let (mut mine, mut files) = (Vec::new(), Vec::new());
    for video in videos {
        let stem = video.file_stem().unwrap_or(video.as_os_str());
        let file = dir.join(Path::new(stem).with_extension("json"));
        if let Some(other) = seen.insert(file.clone(), video) {
            if other != video.as_path() {
                return Err(Error::usage(format!(
                    "{other:?} and {video:?} would both be written to {file:?}; caption them in \
                     separate runs"
                )));
            }
        }
        if Shard::is_manifest_name(&file.file_name().unwrap_or_default().to_string_lossy()) {
            return Err(Error::usage(format!(
                "{video:?} would be recorded as {file:?}, the name of a shard's manifest; rename \
                 the video"
            )));
        }
        // Only this shard's records are read: every shard checks the whole list's names.
        if shard.holds(video) {
            check_not_another_videos(&file, video)?;
            mine.push(video.clone());
            files.push(file);
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
