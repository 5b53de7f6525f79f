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
        .starts_with(&bad.display().to_string()));
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
    // The failure is also on stderr, one line.
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r
        .stderr
        .starts_with(&format!("apollo: {}: ", bad.display())));
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
    // Nothing but the records is left in the folder (no temporary files).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);

    // Resume: a finished record is kept as it is; a missing one is made again.
    let mut kept = first[0].clone();
    kept["answer"] = "written before".into();
    std::fs::write(&files[0], format!("{kept}\n")).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let second = caption(&["--skip-existing"]);
    assert_eq!(second[0], kept);
    assert!(files[1].is_file());
    assert_eq!(second[1]["video"], videos[1].display().to_string());
    assert!(second[1]["answer"].is_string());

    // Without --skip-existing every video is answered again.
    let third = caption(&[]);
    assert_ne!(third[0]["answer"], "written before");
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
    let mut child = std::process::Command::new(common::binary())
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
