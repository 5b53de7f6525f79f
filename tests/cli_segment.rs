//! `--start`/`--end`: the model sees a segment exactly as it sees the same frames cut out into
//! a file of their own (re-encoded losslessly, so the pixels are equal): the same plan, prompt,
//! frames and greedy answer; the clips also say where they lie in the whole video.

mod common;

use common::{apollo, run, tiny};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Frames `first..=last` of `video` as a file of their own: FFV1 (lossless) in Matroska, the
/// timestamps counted again from 0 at the video's rate.
fn cut(video: &Path, first: u64, last: u64, dir: &Path) -> PathBuf {
    let out = dir.join("cut.mkv");
    let select = format!("select='between(n,{first},{last})',setpts=N/FRAME_RATE/TB");
    common::ffmpeg(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        &select,
        "-c:v",
        "ffv1",
        "-an",
        out.to_str().unwrap(),
    ]);
    out
}

fn json(args: &[&str], video: &Path) -> Value {
    let r = run(apollo().args(args).arg(video));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The PNG files of `inspect --frames DIR`, in name order (names differ with the video's).
fn frames(video: &Path, segment: &[&str], dir: &Path) -> Vec<Vec<u8>> {
    let r = run(apollo()
        .arg("inspect")
        .arg(video)
        .args(segment)
        .arg("--frames")
        .arg(dir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn a_segment_is_seen_as_its_frames_cut_out_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    // 25 fps, B-frames: frames 63 (2.52 s) to 182 (7.28 s), starting mid-GOP.
    let video = common::real_video("bikes.mp4");
    let segment = ["--start", "0:00:02.500", "--end", "7.3"];
    let cut = cut(&video, 63, 182, dir.path());

    let inspect = |v: &Path, extra: &[&str]| {
        json(
            &[&["inspect", "--json", "--model-dir", &tiny()][..], extra].concat(),
            v,
        )
    };
    let (seg, whole) = (inspect(&video, &segment), inspect(&cut, &[]));
    for key in [
        "fps",
        "total_frames",
        "duration_s",
        "effective_ratio",
        "frames_to_decode",
        "prompt_tokens",
        "video_prompt",
    ] {
        assert_eq!(seg[key], whole[key], "{key}");
    }
    assert_eq!(seg["total_frames"], 120);
    let (seg_clips, cut_clips) = (
        seg["clips"].as_array().unwrap(),
        whole["clips"].as_array().unwrap(),
    );
    assert_eq!(seg_clips.len(), cut_clips.len());
    for (s, c) in seg_clips.iter().zip(cut_clips) {
        for key in ["start_s", "end_s", "frame_indices"] {
            assert_eq!(s[key], c[key], "{key}");
        }
        // Where the clip lies in bikes.mp4: 63 frames later.
        let first = s["frame_indices"][0].as_u64().unwrap();
        assert_eq!(s["absolute_start_s"], (63 + first) as f64 / 25.0);
        assert_eq!(
            c["absolute_start_s"], c["start_s"],
            "a whole video is its own"
        );
    }
    assert_eq!(seg["segment"]["first_frame"], 63);
    assert_eq!(seg["segment"]["video_frames"], 250);
    assert!(whole.get("segment").is_none());

    // The same pixels.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (seg_frames, cut_frames) = (frames(&video, &segment, &a), frames(&cut, &[], &b));
    assert_eq!(seg_frames.len(), 12, "3 clips of 4 frames");
    assert!(
        seg_frames == cut_frames,
        "the segment's frames are the cut's"
    );

    // The same greedy answer, token for token.
    let ask = |v: &Path, extra: &[&str]| {
        let r = run(apollo()
            .arg("ask")
            .arg(v)
            .args([
                "What happens?",
                "--json",
                "--model-dir",
                &tiny(),
                "--temperature",
                "0",
            ])
            .args(["--max-new-tokens", "8", "--logprobs", "0"])
            .args(extra));
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).unwrap()
    };
    let (seg, whole) = (ask(&video, &segment), ask(&cut, &[]));
    let ids = |r: &Value| -> Vec<u64> {
        r["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&seg).len(), 8);
    assert_eq!(ids(&seg), ids(&whole));
    assert_eq!(
        (&seg["answer"], &seg["tokens"]),
        (&whole["answer"], &whole["tokens"])
    );
    assert_eq!(
        seg["inputs"]["clip_sampling"]["segment"],
        serde_json::json!({"start_s": 2.5, "end_s": 7.3})
    );
    assert_eq!(whole["inputs"]["clip_sampling"]["segment"], Value::Null);
}

#[test]
fn at_29_97_fps_a_time_to_the_millisecond_names_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    // Frame 30 is shown at 1.001 s (30 / (30000/1001), 1.000999... in floating point).
    let video = common::real_video("carphone_pristine.mp4");
    let seg = json(
        &["inspect", "--json", "--start", "1.001", "--end", "3.003"],
        &video,
    );
    let whole = json(&["inspect", "--json"], &cut(&video, 30, 89, dir.path()));
    assert_eq!(seg["segment"]["first_frame"], 30);
    for key in ["fps", "total_frames", "duration_s", "clips", "video_prompt"] {
        let strip = |v: &Value| {
            let mut v = v.clone();
            for clip in v.as_array_mut().into_iter().flatten() {
                clip.as_object_mut()
                    .unwrap()
                    .retain(|k, _| !k.starts_with("absolute"));
            }
            v
        };
        assert_eq!(strip(&seg[key]), strip(&whole[key]), "{key}");
    }
}

#[test]
fn a_segment_outside_the_video_or_empty_is_a_usage_error() {
    let video = common::real_video("carphone_pristine.mp4"); // 4.004 s
    let video = video.to_str().unwrap();
    for (args, says) in [
        (
            &["inspect", video, "--start", "5"][..],
            "at or after the end of the video",
        ),
        (
            &["inspect", video, "--start", "5", "--end", "3"],
            "not before --end",
        ),
        (
            &["inspect", video, "--start", "1.01", "--end", "1.02"],
            "holds no frame",
        ),
        (
            &["inspect", video, "--end", "1:75"],
            "expected seconds (90, 12.5) or [H:]MM:SS[.fff]",
        ),
        (
            &["ask", video, "q", "--start=-1"],
            "expected seconds (90, 12.5) or [H:]MM:SS[.fff]",
        ),
    ] {
        let r = run(apollo().args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        if r.stderr.starts_with("apollo: ") {
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        }
    }
    // In a batch, the video it does not fit fails and the others go on.
    let bikes = common::real_video("bikes.mp4");
    let r = run(apollo()
        .args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "1"])
        .args(["--start", "6", video])
        .arg(&bikes));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let records: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records[0]["error"]
        .as_str()
        .unwrap()
        .contains("carphone_pristine.mp4"));
    assert_eq!(
        records[1]["clips"][0]["absolute_start_s"]
            .as_f64()
            .map(|s| s >= 6.0),
        Some(true)
    );
}
