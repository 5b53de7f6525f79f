//! `apollo caption` end to end with the tiny checkpoint of tests/fixtures: batches, failures
//! within them, resumable output folders, and a reader that goes away.

mod common;

use common::{apollo, bad_video, run, tiny};
use serde_json::Value;
use std::path::PathBuf;

#[test]
fn caption_reports_each_video_in_order_and_survives_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_video(dir.path());
    let good: Vec<PathBuf> = common::REAL_VIDEOS
        .iter()
        .map(|n| common::real_video(n))
        .collect();
    let r = run(apollo()
        .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "4"])
        .arg(&good[0])
        .arg(&bad)
        .args(&good[1..]));
    assert_eq!(r.code, 3, "a bad input makes the batch fail: {}", r.stderr);
    let records: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    let order = [&good[0], &bad, &good[1], &good[2]];
    for (record, video) in records.iter().zip(order) {
        assert_eq!(record["video"], video.display().to_string());
    }
    assert!(records[1]["error"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{bad:?}: ")));
    assert!(records[1].get("answer").is_none());
    for record in [&records[0], &records[2], &records[3]] {
        assert_eq!(record["question"], "Describe this video in detail");
        assert!(record["answer"].is_string());
        assert!(record.get("error").is_none());
    }
    // The model loaded once: only the first answer paid for it.
    let loads: Vec<f64> = [&records[0], &records[2], &records[3]]
        .iter()
        .map(|r| r["timings_ms"]["load"].as_f64().unwrap())
        .collect();
    assert!(loads[0] > 0.0);
    assert_eq!(&loads[1..], &[0.0, 0.0]);
    // The failure is also on stderr, one line; then the summary.
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(lines[0].starts_with(&format!("apollo: {bad:?}: ")));
    assert!(
        lines[1].starts_with("apollo caption: 4 videos: 3 done, 0 skipped, 1 failed in "),
        "{}",
        lines[1]
    );
}

#[test]
fn caption_output_dir_resumes_with_skip_existing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("captions");
    let videos = [
        common::real_video("bikes.mp4"),
        common::real_video("carphone_pristine.mp4"),
    ];
    let list = videos
        .iter()
        .map(|v| v.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let caption = |extra: &[&str]| {
        let r = run(apollo()
            .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "3"])
            .args(["--question", "What moves?", "--from", "-", "--output-dir"])
            .arg(&out)
            .args(extra)
            .write_stdin(list.clone()));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<Value>>()
    };
    let first = caption(&[]);
    assert_eq!(first.len(), 2);
    let files = [out.join("bikes.json"), out.join("carphone_pristine.json")];
    for (file, record) in files.iter().zip(&first) {
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(&saved, record);
        assert_eq!(saved["question"], "What moves?");
    }
    // Nothing but the records and the run's manifest is left in the folder (no temporary
    // files).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);
    let counts = || {
        let manifest = std::fs::read(out.join("_shard-0-of-1.json")).unwrap();
        serde_json::from_slice::<Value>(&manifest).unwrap()["counts"].clone()
    };
    let tally = |done: u64, skipped: u64| serde_json::json!({"videos": 2, "done": done, "skipped": skipped, "failed": 0});
    assert_eq!(counts(), tally(2, 0));

    // Resume: a finished record is kept as it is; a missing one is made again.
    let mut kept = first[0].clone();
    kept["answer"] = "written before".into();
    std::fs::write(&files[0], format!("{kept}\n")).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let second = caption(&["--skip-existing"]);
    assert_eq!(second[0], kept);
    assert_eq!(counts(), tally(1, 1));
    assert!(files[1].is_file());
    assert_eq!(second[1]["video"], videos[1].display().to_string());
    assert!(second[1]["answer"].is_string());

    // Without --skip-existing every video is answered again.
    let third = caption(&[]);
    assert_ne!(third[0]["answer"], "written before");
}

/// A kept record marked so that a reuse shows; `caption` of one video with `--skip-existing`
/// and `extra` flags; whether the marked record came back (else it was redone and replaced).
struct Resume {
    dir: tempfile::TempDir,
    video: PathBuf,
}

impl Resume {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("clip.mp4");
        std::fs::copy(common::real_video("bikes.mp4"), &video).unwrap();
        let resume = Self { dir, video };
        resume.caption(&[]);
        resume
    }

    fn record_file(&self) -> PathBuf {
        self.dir.path().join("out/clip.json")
    }

    /// `caption --skip-existing` with `extra` flags, the others at their usual values.
    fn caption(&self, extra: &[&str]) -> Value {
        let tiny = tiny();
        let usual = [
            ("--model-dir", tiny.as_str()),
            ("--max-new-tokens", "2"),
            ("--seed", "1"),
        ];
        let mut cmd = apollo();
        cmd.args(["caption", "--skip-existing", "--output-dir"])
            .arg(self.dir.path().join("out"))
            .args(extra);
        for (flag, value) in usual.iter().filter(|(f, _)| !extra.contains(f)) {
            cmd.args([flag, value]);
        }
        let r = run(cmd.arg(&self.video));
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// Marks the kept record, runs, and tells whether the marked record came back.
    fn reused(&self, extra: &[&str]) -> bool {
        let file = self.record_file();
        let mut record: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        record["answer"] = "kept".into();
        std::fs::write(&file, record.to_string()).unwrap();
        let out = self.caption(extra);
        let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            saved["answer"], out["answer"],
            "the file holds what was printed"
        );
        out["answer"] == "kept"
    }
}

#[test]
fn skip_existing_reuses_a_record_only_for_the_same_inputs() {
    let resume = Resume::new();
    assert!(resume.reused(&[]));
    // Another question, token sampling, seed, clip sampling or model: redone.
    for extra in [
        &["--question", "What else?"][..],
        &["--max-new-tokens", "3"],
        &["--temperature", "0.5"],
        &["--seed", "2"],
        &["--logprobs", "1"],
        &["--clip-sampling-ratio", "0.5"],
        &["--start", "1"],
        &["--end", "9"],
    ] {
        assert!(!resume.reused(extra), "{extra:?}");
        // The record now holds those inputs; the usual ones redo it again.
        resume.caption(&[]);
    }
    let other_model = resume.dir.path().join("model");
    std::os::unix::fs::symlink(tiny(), &other_model).unwrap();
    assert!(
        resume.reused(&["--model-dir", other_model.to_str().unwrap()]),
        "the same checkpoint by another path is the same model"
    );

    // Another file at the same path: another size, or the same size with other bytes.
    std::fs::copy(common::real_video("carphone_pristine.mp4"), &resume.video).unwrap();
    assert!(!resume.reused(&[]));
    let mut bytes = std::fs::read(&resume.video).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let time = resume.dir.path().join("time");
    let touch = |args: &[&std::ffi::OsStr]| {
        assert!(std::process::Command::new("touch")
            .args(args)
            .status()
            .unwrap()
            .success())
    };
    touch(&["-r".as_ref(), resume.video.as_os_str(), time.as_os_str()]);
    std::fs::write(&resume.video, &bytes).unwrap();
    // Its modification time put back: only the content tells it apart.
    touch(&["-r".as_ref(), time.as_os_str(), resume.video.as_os_str()]);
    assert!(!resume.reused(&[]));
    assert!(resume.reused(&[]));

    // A record file that is not a whole record is redone, never trusted.
    let file = resume.record_file();
    for broken in [
        "{\"answer\": \"forged\"}".to_string(),
        std::fs::read_to_string(&file).unwrap()[..100].to_string(),
        "not json".to_string(),
    ] {
        std::fs::write(&file, &broken).unwrap();
        let out = resume.caption(&[]);
        assert!(out["answer"].is_string() && out["answer"] != "forged");
        assert!(out["inputs"]["video"]["sample_hash"].is_string());
    }
}

#[test]
fn a_record_of_another_video_with_the_same_name_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        std::fs::copy(common::real_video("bikes.mp4"), d.join("clip.mp4")).unwrap();
    }
    let caption = |video: &PathBuf, extra: &[&str]| {
        run(apollo()
            .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "2"])
            .arg("--output-dir")
            .arg(&out)
            .args(extra)
            .arg(video))
    };
    assert_eq!(caption(&a.join("clip.mp4"), &[]).code, 0);
    let kept = std::fs::read(out.join("clip.json")).unwrap();
    for extra in [&[][..], &["--skip-existing"]] {
        let r = caption(&b.join("clip.mp4"), extra);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stdout.is_empty());
        assert!(
            r.stderr.contains("holds the record of") && r.stderr.contains("/a/clip.mp4"),
            "{}",
            r.stderr
        );
        assert_eq!(std::fs::read(out.join("clip.json")).unwrap(), kept);
    }
    // The same video by another path (a link) is the same video.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    assert_eq!(caption(&link.join("clip.mp4"), &[]).code, 0);
}

#[test]
fn caption_refuses_two_videos_that_would_share_an_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        std::fs::copy(common::real_video("bikes.mp4"), d.join("clip.mp4")).unwrap();
    }
    let r = run(apollo()
        .args(["caption", "--model-dir", &tiny(), "--output-dir"])
        .arg(dir.path().join("out"))
        .arg(a.join("clip.mp4"))
        .arg(b.join("clip.mp4")));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("clip.json"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn caption_stops_quietly_when_the_reader_goes_away() {
    use std::io::BufRead;
    let videos: Vec<PathBuf> = common::REAL_VIDEOS
        .iter()
        .map(|n| common::real_video(n))
        .collect();
    let mut child = common::apollo_process()
        .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "2"])
        .args(&videos)
        .args(&videos)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one record, then close the pipe as `| head -1` does.
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let record: Value = serde_json::from_str(&first).unwrap();
    assert!(record["answer"].is_string());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// `--question` given several times: one record per video per question, in order, each video
/// encoded once; `--output-dir` keeps `<stem>.<n>.json` per question and `--skip-existing`
/// redoes only the missing ones; a failing video fails each of its questions, and a question
/// too long for the context fails alone.
#[test]
fn several_questions_give_a_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bad = bad_video(dir.path());
    let good = common::real_video("bikes.mp4");
    let long = "Why? ".repeat(400);
    let caption = |extra: &[&str]| {
        let r = run(apollo()
            .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "3"])
            .args([
                "--temperature",
                "0",
                "--question",
                "What moves?",
                "--question",
            ])
            .arg(&long)
            .args(["--question", "Who rides?", "--output-dir"])
            .arg(&out)
            .args(extra)
            .arg(&good)
            .arg(&bad));
        let records: Vec<Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (r, records)
    };
    let (r, records) = caption(&[]);
    assert_eq!(
        r.code, 2,
        "the first failure's, a usage error: {}",
        r.stderr
    );
    assert_eq!(records.len(), 6);
    assert_eq!(records[0]["question"], "What moves?");
    assert!(records[1]["error"]
        .as_str()
        .unwrap()
        .contains("shorten the question"));
    assert_eq!(records[1]["question"], long.as_str());
    assert_eq!(records[2]["question"], "Who rides?");
    assert!(records[2]["tokens"]["reused"].as_u64().unwrap() > 0);
    for record in &records[3..] {
        assert_eq!(record["video"], bad.display().to_string());
        assert!(record["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{bad:?}: ")));
    }
    assert_eq!(records[5]["question"], "Who rides?");
    // The too-long question and the bad video, each once; then the summary.
    let errors = r.stderr.lines().filter(|l| l.starts_with("apollo: "));
    assert_eq!(errors.count(), 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 videos: 0 done, 0 skipped, 2 failed"),
        "{}",
        r.stderr
    );
    let files = [out.join("bikes.1.json"), out.join("bikes.3.json")];
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["_shard-0-of-1.json", "bikes.1.json", "bikes.3.json"]
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_shard-0-of-1.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["settings"]["questions"][1], long.as_str());
    assert!(manifest["settings"].get("question").is_none());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    assert_eq!(saved, records[2]);

    // Resume: the kept record comes back as it is, the removed one is made again.
    let mut kept = records[0].clone();
    kept["answer"] = "written before".into();
    std::fs::write(&files[0], format!("{kept}\n")).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let (_, again) = caption(&["--skip-existing"]);
    assert_eq!(again[0], kept);
    assert_eq!(again[2]["answer"], records[2]["answer"]);
    assert!(files[1].is_file());
}
