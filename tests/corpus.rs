//! A corpus of bad and unusual videos, made at test time with the ffmpeg command and a few
//! bytes of Rust (no committed binaries), run through the real binary's `inspect` (text,
//! with a contact sheet, so frames are decoded; and JSON) and `ask` (the tiny checkpoint).
//! Each case either works, with the frame count ffmpeg gives it, or is refused as bad input
//! (exit 3) with one line naming the file and saying why; nothing panics, hangs or dies of a
//! signal.

mod common;

use common::guarded::{check_all, run_apollo, Outcome};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a case must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Works, with this many frames.
    Frames(u64),
    /// Refused (exit 3) with a message that says this.
    Refused(&'static str),
}

struct Case {
    /// The name as given to apollo, relative to the corpus folder (or absolute).
    name: PathBuf,
    expect: Expect,
}

/// The frames ffmpeg's decoder gives `path` (as `ffprobe -count_frames` counts them).
fn ffmpeg_count(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The count, then side data (a rotation's display matrix) on lines of their own.
    text.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{path:?}: {text:?}"))
}

/// ffmpeg's test pattern as an input: `testsrc2` options, e.g. `s=96x64:r=10:d=3`.
fn pattern(options: &str) -> Vec<String> {
    let source = format!("testsrc2={options}");
    ["-f", "lavfi", "-i", &source].map(String::from).to_vec()
}

/// The cases, made in one folder.
struct Corpus<'a> {
    dir: &'a Path,
    cases: Vec<Case>,
}

impl Corpus<'_> {
    /// `ffmpeg <input> <options> <dir>/<name>`, the options split at spaces.
    fn encode(&self, name: &str, input: &[String], options: &str) -> PathBuf {
        let path = self.dir.join(name);
        let mut args: Vec<&str> = input.iter().map(String::as_str).collect();
        args.extend(options.split_whitespace());
        args.push(path.to_str().unwrap());
        common::ffmpeg(&args);
        path
    }

    fn write(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> PathBuf {
        std::fs::write(self.dir.join(name.as_ref()), bytes).unwrap();
        name.as_ref().into()
    }

    /// A case that works, with as many frames as ffmpeg decodes from it.
    fn works(&mut self, path: &Path) {
        let frames = ffmpeg_count(path);
        self.works_with(path.file_name().unwrap(), frames);
    }

    fn works_with(&mut self, name: impl AsRef<OsStr>, frames: u64) {
        let name = name.as_ref().into();
        self.cases.push(Case {
            name,
            expect: Expect::Frames(frames),
        });
    }

    fn refused(&mut self, name: impl AsRef<OsStr>, reason: &'static str) {
        let name = name.as_ref().into();
        self.cases.push(Case {
            name,
            expect: Expect::Refused(reason),
        });
    }
}

/// Makes the corpus in `dir`.
fn corpus(dir: &Path) -> Vec<Case> {
    let mut c = Corpus {
        dir,
        cases: Vec::new(),
    };
    // B-frames and a keyframe every 12 frames: cuts fall mid-GOP.
    let h264 = "-c:v libx264 -g 12 -bf 3";
    let plain = c.encode("plain.mp4", &pattern("s=96x64:r=10:d=3"), h264);
    let n_plain = ffmpeg_count(&plain);
    c.works(&plain);
    let from_plain = |at: &str| {
        let input = ["-ss", at, "-i", plain.to_str().unwrap()];
        input.map(String::from).to_vec()
    };
    // Bursts of frames with gaps between: timestamps far from a constant rate.
    let vfr = "-vf select='lt(mod(n\\,10)\\,3)' -fps_mode vfr -c:v libx264";
    let unusual = [
        ("cut mid-GOP.mp4", from_plain("0.75"), "-t 1.5 -c copy"),
        (
            "cut faststart.mov",
            from_plain("1.35"),
            "-t 1 -c copy -movflags +faststart",
        ),
        (
            "rotated.mp4",
            from_plain("0"),
            "-c copy -metadata:s:v:0 rotate=90",
        ),
        ("1x1.mkv", pattern("s=64x64:d=1"), "-vf scale=1:1 -c:v ffv1"),
        (
            "33x17.mp4",
            pattern("s=64x64:d=1"),
            "-vf scale=33:17 -c:v libx264 -pix_fmt yuv444p",
        ),
        ("vfr.mkv", pattern("s=64x48:r=30:d=3"), vfr),
        ("anim.gif", pattern("s=48x32:r=10:d=1"), ""),
        ("one frame.mp4", pattern("s=64x48:d=1"), "-frames:v 1"),
    ];
    for (name, input, options) in unusual {
        let path = c.encode(name, &input, options);
        c.works(&path);
    }
    std::os::unix::fs::symlink("plain.mp4", dir.join("link.mp4")).unwrap();
    c.works_with("link.mp4", n_plain);
    // The sample entry claims 65535x65535 pixels; the stream itself says 96x64.
    let plain_bytes = std::fs::read(&plain).unwrap();
    let mut huge = plain_bytes.clone();
    let avc1 = huge.windows(4).position(|w| w == b"avc1").unwrap();
    huge[avc1 + 28..avc1 + 32].copy_from_slice(&[0xff; 4]);
    let huge = c.write("huge sample entry.mp4", &huge);
    c.works_with(huge, n_plain);

    // Names that are not UTF-8, or that ffmpeg would read as a protocol or a pattern.
    let name = c.write(OsStr::from_bytes(b"not utf-8 \xff\xfe.mp4"), &plain_bytes);
    c.works_with(name, n_plain);
    let name = c.write("12:30 meeting.mp4", &plain_bytes);
    c.works_with(name, n_plain);
    // As a protocol: plain.mp4 and plain.mp4 joined, read as plain.mp4's frames.
    let short = c.encode("short.mp4", &pattern("s=96x64:r=10:d=1.5"), h264);
    let name = c.write(
        "concat:plain.mp4|plain.mp4",
        &std::fs::read(&short).unwrap(),
    );
    c.works_with(name, ffmpeg_count(&short));
    // As a pattern: img001.png to img003.png, 3 frames.
    c.encode("img%03d.png", &pattern("s=32x32:r=1:d=3"), "");
    let single = c.encode("single.png", &pattern("s=32x32:d=1"), "-frames:v 1");
    std::fs::rename(single, dir.join("img%03d.png")).unwrap();
    c.works_with("img%03d.png", 1);

    // Not videos, or not whole ones.
    c.refused(c.write("empty.mp4", b""), "the file is empty");
    let random = apollo::rng::SeededRng::new(12).bytes(4096);
    c.refused(c.write("random.mp4", &random), "not a video");
    let text = b"just some notes\n".repeat(50);
    c.refused(c.write("notes.mp4", &text), "not a video");
    let sine = ["-f", "lavfi", "-i", "sine=d=1"].map(String::from);
    c.encode("tone.m4a", &sine, "");
    c.refused("tone.m4a", "no video stream");
    // Half of each: with the index at the end nothing is left; with it first, frames are.
    let first_half = |b: &[u8]| b[..b.len() / 2].to_vec();
    c.refused(
        c.write("half.mp4", &first_half(&plain_bytes)),
        "not a video",
    );
    let fast = c.encode(
        "faststart.mp4",
        &from_plain("0"),
        "-c copy -movflags +faststart",
    );
    let fast = first_half(&std::fs::read(fast).unwrap());
    c.refused(c.write("half faststart.mp4", &fast), "truncated");
    let header = b"YUV4MPEG2 W16000 H16000 F25:1 C420jpeg\nFRAME\n";
    let y4m = c.write("huge.y4m", &[&header[..], &[0; 999]].concat());
    c.refused(y4m, "no frames");

    // Not files with a video in them.
    c.refused(OsStr::from_bytes(b"missing \xff.mp4"), "no such file");
    std::os::unix::fs::symlink("nowhere.mp4", dir.join("dangling.mp4")).unwrap();
    c.refused("dangling.mp4", "no such file");
    std::fs::create_dir(dir.join("folder.mp4")).unwrap();
    c.refused("folder.mp4", "is a directory");
    let fifo = dir.join("fifo.mp4");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    c.refused("fifo.mp4", "is a pipe, not a regular file");
    let socket = UnixListener::bind(dir.join("socket.mp4")).unwrap();
    std::mem::forget(socket); // bound until the test ends
    c.refused("socket.mp4", "is a socket, not a regular file");
    c.refused("/dev/null", "is a device, not a regular file");
    c.cases
}

/// The runs of every case.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// Text, with a contact sheet: the sampled frames are decoded.
    Inspect,
    /// A record, even for a failure.
    InspectJson,
    /// The whole pipeline with the tiny checkpoint.
    Ask,
}

impl Run {
    const ALL: [Run; 3] = [Run::Inspect, Run::InspectJson, Run::Ask];

    fn args(self, name: &Path, sheet: &str) -> Vec<OsString> {
        let words = |w: &str| w.split(' ').map(OsString::from).collect::<Vec<_>>();
        let (before, after) = match self {
            Run::Inspect => (words("inspect"), words(&format!("--contact-sheet {sheet}"))),
            Run::InspectJson => (words("inspect --json"), vec![]),
            Run::Ask => {
                let model = format!("--model-dir {} --max-new-tokens 2", common::tiny());
                (
                    words("ask"),
                    [vec!["What is here?".into()], words(&model)].concat(),
                )
            }
        };
        [before, vec![name.into()], after].concat()
    }
}

/// What is wrong with `run` of `case`, if anything.
fn check(dir: &Path, case: &Case, run: Run, n: usize) -> Option<String> {
    let sheet = format!("sheet{n}.png");
    let out = run_apollo(dir, &run.args(&case.name, &sheet));
    let problem = match case.expect {
        Expect::Frames(frames) => works_problem(&out, run, &case.name, frames, &dir.join(sheet)),
        Expect::Refused(reason) => match run {
            Run::InspectJson => refused_record_problem(&out, &case.name, reason),
            _ => out.refusal_problem(&case.name, reason),
        },
    };
    problem.map(|p| format!("{} ({run:?}): {p}", case.name.display()))
}

/// What is wrong with a run that should have worked.
fn works_problem(
    out: &Outcome,
    run: Run,
    name: &Path,
    frames: u64,
    sheet: &Path,
) -> Option<String> {
    // Records show a name that is not UTF-8 with U+FFFD (messages escape the byte).
    let shown = name.display().to_string();
    let right = match run {
        _ if out.code != Some(0) || !out.stderr.is_empty() => false,
        Run::Inspect => {
            out.stdout.starts_with(&format!("{shown}\n"))
                && out.stdout.contains(&format!(" {frames} frames,"))
                && sheet.is_file()
        }
        Run::InspectJson => {
            let record: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
            record["path"] == shown && record["total_frames"] == frames
        }
        Run::Ask => true,
    };
    out.crash()
        .or_else(|| (!right).then(|| format!("expected {frames} frames: {out}")))
}

/// What is wrong with the `{path, error}` record of a refused video.
fn refused_record_problem(out: &Outcome, name: &Path, reason: &str) -> Option<String> {
    let shown = name.display().to_string();
    let record: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    let error = record["error"].as_str().unwrap_or("");
    let right = out.code == Some(3)
        && out.stderr.is_empty()
        && record["path"] == shown
        && error.starts_with(&format!("{name:?}: "))
        && error.contains(reason);
    out.crash()
        .or_else(|| (!right).then(|| format!("not a {reason:?} record: {out}")))
}

#[test]
fn every_case_of_the_corpus_works_or_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = corpus(dir.path());
    let jobs: Vec<(usize, Run)> = (0..cases.len())
        .flat_map(|c| Run::ALL.map(|run| (c, run)))
        .collect();
    let problems = check_all(&jobs, |&(c, run)| {
        check(
            dir.path(),
            &cases[c],
            run,
            c * Run::ALL.len() + run as usize,
        )
    });
    let works = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Frames(_)))
        .count();
    println!(
        "corpus: {} cases ({works} work, {} refused) x {} runs = {} runs, {} problems",
        cases.len(),
        cases.len() - works,
        Run::ALL.len(),
        jobs.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_caption_batch_over_the_corpus_records_every_case_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cases = corpus(dir.path());
    // The list as bytes, one name a line, some lines ending in CRLF, a blank line.
    let mut list = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        list.extend_from_slice(case.name.as_os_str().as_bytes());
        list.extend_from_slice(if n % 2 == 0 { b"\r\n" } else { b"\n\n" });
    }
    std::fs::write(dir.path().join("list"), list).unwrap();
    let model = ["--model-dir", &common::tiny(), "--max-new-tokens", "2"];
    let out = run_apollo(
        dir.path(),
        &[&["caption", "--from", "list"][..], &model].concat(),
    );
    assert!(out.crash().is_none(), "{out}");
    assert_eq!(out.code, Some(3), "{out}");
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), cases.len(), "{out}");
    let mut refusals = out.stderr.lines();
    for (case, record) in cases.iter().zip(&records) {
        let shown = case.name.display().to_string();
        assert_eq!(record["video"], shown);
        match case.expect {
            Expect::Frames(_) => assert!(record["answer"].is_string(), "{record}"),
            Expect::Refused(reason) => {
                let error = record["error"].as_str().unwrap();
                assert!(
                    error.starts_with(&format!("{:?}: ", case.name)) && error.contains(reason),
                    "{error}"
                );
                assert_eq!(refusals.next(), Some(format!("apollo: {error}").as_str()));
            }
        }
    }
    let summary = refusals.next().unwrap_or_default();
    assert!(summary.starts_with("apollo caption: "), "{summary}");
    assert_eq!(
        refusals.next(),
        None,
        "one stderr line per refused video, then the summary"
    );
}
