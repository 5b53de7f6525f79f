//! `apollo inspect` end to end: real and synthetic videos, every kind of bad input, JSON
//! Lines, frame and contact-sheet output, sampling flags and a checkpoint's own values.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn apollo() -> Command {
    Command::new(common::binary())
}

/// Runs `apollo inspect --json` and returns (exit code, parsed lines, stderr).
fn inspect_json(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = apollo()
        .arg("inspect")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap(), lines, stderr)
}

/// Asserts the text-mode failure contract: exit code 3, one stderr line naming the file.
fn assert_input_error(path: &Path, what: &str) {
    let out = apollo().arg("inspect").arg(path).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}: {stderr}", path.display());
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    let prefix = format!("apollo: {path:?}: ");
    assert!(stderr.starts_with(&prefix), "{stderr:?}");
    assert!(stderr.contains(what), "{stderr:?} should say {what:?}");
}

#[test]
fn bad_inputs_get_one_line_errors_and_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_input_error(&d.join("missing.mp4"), "no such file");
    assert_input_error(d, "is a directory");
    std::fs::write(d.join("empty.mp4"), b"").unwrap();
    assert_input_error(&d.join("empty.mp4"), "empty");
    std::fs::write(
        d.join("notes.mp4"),
        "just some text, not a video\n".repeat(100),
    )
    .unwrap();
    assert_input_error(&d.join("notes.mp4"), "not a video");

    // Truncated to half its size: with the index at the end (as bikes.mp4 has it) nothing
    // can be read; with the index first, the missing frames are named.
    let real = std::fs::read(common::real_video("bikes.mp4")).unwrap();
    std::fs::write(d.join("half.mp4"), &real[..real.len() / 2]).unwrap();
    assert_input_error(&d.join("half.mp4"), "not a video");
    let fast = d.join("faststart.mp4");
    let src = common::real_video("bikes.mp4");
    common::ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        fast.to_str().unwrap(),
    ]);
    let full = std::fs::read(&fast).unwrap();
    std::fs::write(d.join("half-faststart.mp4"), &full[..full.len() / 2]).unwrap();
    assert_input_error(&d.join("half-faststart.mp4"), "truncated");

    let audio = d.join("tone.m4a");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        audio.to_str().unwrap(),
    ]);
    assert_input_error(&audio, "no video stream");
}

#[test]
fn odd_but_valid_videos_get_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one-frame.mp4");
    common::synthetic(&one, "64x48", "25", "0.04", &["-c:v", "libx264"]);
    let tiny = dir.path().join("16x16.mp4");
    common::synthetic(&tiny, "16x16", "25", "1", &["-c:v", "libx264"]);
    let wide = dir.path().join("4000x100.mp4");
    common::synthetic(&wide, "4000x100", "25", "1", &["-c:v", "libx264"]);
    let args: Vec<&str> = [&one, &tiny, &wide]
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    let (code, lines, stderr) = inspect_json(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines.len(), 3);
    // One frame: the reference pads the single clip with that frame.
    assert_eq!(lines[0]["total_frames"], 1);
    assert_eq!(
        lines[0]["clips"][0]["frame_indices"],
        serde_json::json!([0, 0, 0, 0])
    );
    assert_eq!(
        (lines[1]["width"].as_u64(), lines[1]["height"].as_u64()),
        (Some(16), Some(16))
    );
    assert_eq!(
        (lines[2]["width"].as_u64(), lines[2]["height"].as_u64()),
        (Some(4000), Some(100))
    );
    for l in &lines {
        assert!(l.get("error").is_none());
    }
    // The frames of each are really decodable and written.
    let frames = dir.path().join("frames");
    apollo()
        .args(["inspect", "--frames", frames.to_str().unwrap()])
        .args(&args)
        .assert()
        .success();
    assert!(frames.join("4000x100_clip001_frame000000.png").is_file());
}

#[test]
fn json_lines_report_the_plan_and_failures_without_stopping() {
    let bikes = common::real_video("bikes.mp4");
    let (code, lines, stderr) = inspect_json(&[
        bikes.to_str().unwrap(),
        "/nonexistent.mp4",
        bikes.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "a failed video makes the exit code non-zero");
    assert!(
        stderr.is_empty(),
        "with --json the error is in the record: {stderr}"
    );
    assert_eq!(lines.len(), 3);
    let v = &lines[0];
    assert_eq!(v["path"], bikes.to_str().unwrap());
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(272))
    );
    assert_eq!(v["fps"], 25.0);
    assert_eq!(v["total_frames"], 250);
    assert_eq!(v["duration_s"], 10.0);
    assert_eq!(v["effective_ratio"], 1.0);
    let clips = v["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 5);
    assert_eq!(
        clips[0]["frame_indices"],
        serde_json::json!([1, 13, 25, 37])
    );
    assert_eq!(clips[0]["start_s"], 0.04);
    assert_eq!(clips[4]["end_s"], 9.48);
    assert_eq!(v["video_tokens"], 5 * 128);
    let prompt = v["video_prompt"].as_str().unwrap();
    assert!(prompt.starts_with(
        "You are provided the following series of five, 2 second clips from a 0:00:10 [H:MM:SS] video.\n0.0-1.5 seconds: <|video_token|>"
    ));
    assert_eq!(prompt.matches("<|video_token|>").count(), 5 * 128);
    assert_eq!(lines[1]["path"], "/nonexistent.mp4");
    assert_eq!(lines[1]["error"], r#""/nonexistent.mp4": no such file"#);
    assert_eq!(lines[2], lines[0]);
}

#[test]
fn text_mode_shows_metadata_plan_and_prompt() {
    let path = common::real_video("carphone_pristine.mp4");
    let out = apollo().arg("inspect").arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("176x144, 29.97003 fps, 120 frames, 4.004 s, h264"),
        "{text}"
    );
    assert!(text.contains("3 clips of 4 frames"), "{text}");
    assert!(text.contains("frames 32 46 60 74"), "{text}");
    assert!(text.contains("384 video tokens (3 clips x 128)"), "{text}");
    assert!(
        text.contains("2 second clips from a 0:00:04.004000 [H:MM:SS] video."),
        "{text}"
    );
}

#[test]
fn sampling_flags_and_checkpoint_values_change_the_plan() {
    let path = common::real_video("bikes.mp4");
    let p = path.to_str().unwrap();
    let (_, lines, _) = inspect_json(&["--tokens-per-clip", "32", "--model-max-length", "64", p]);
    // 64 * 0.65 / (10 s * 32 / 2) = 0.26 -> ceil(5 * 0.26) = 2 clips.
    assert_eq!(lines[0]["effective_ratio"], 0.26);
    assert_eq!(lines[0]["clips"].as_array().unwrap().len(), 2);
    assert_eq!(lines[0]["video_tokens"], 64);

    // A checkpoint directory supplies tokens per clip and the context length; flags win.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mm_connector")).unwrap();
    std::fs::write(
        dir.path().join("mm_connector/config.json"),
        r#"{"num_output_tokens": 32}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"clip_duration": 2, "llm_cfg": {"model_max_length": 128}}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("llm")).unwrap();
    let m = dir.path().to_str().unwrap();
    let out = apollo()
        .args(["inspect", "--model-dir", m, p])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "a checkpoint without its tokenizer is a model problem"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("llm/tokenizer.json"));
    let tokenizer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tokenizer.json");
    std::fs::copy(tokenizer, dir.path().join("llm/tokenizer.json")).unwrap();
    let (code, lines, stderr) = inspect_json(&["--model-dir", m, p]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["effective_ratio"], 0.52);
    assert_eq!(lines[0]["video_tokens"], 3 * 32);
    // The checkpoint's tokenizer counts the prompt's text exactly (tokenisation itself is
    // checked against Hugging Face tokenizers in prompt::tokens).
    let tokens = &lines[0]["prompt_tokens"];
    assert_eq!(tokens["video"], 3 * 32);
    let text = tokens["text"].as_u64().unwrap();
    assert!(text > 20, "three clip lines and a header: {text}");
    assert_eq!(tokens["total"].as_u64(), Some(text + 96));
    let (_, lines, _) = inspect_json(&["--model-dir", m, "--tokens-per-clip", "16", p]);
    assert_eq!(lines[0]["video_tokens"], 5 * 16);

    let out = apollo()
        .args(["inspect", "--model-dir", "/nonexistent", p])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "a broken checkpoint is a model problem"
    );
    let out = apollo()
        .args(["inspect", "--clip-sampling-ratio", "0", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad setting is a usage error");
    let out = apollo()
        .args(["inspect", "--no-such-flag", p])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn frames_and_contact_sheet_show_what_the_model_sees() {
    let path = common::real_video("bikes.mp4");
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    let sheet = dir.path().join("sheet.png");
    apollo()
        .arg("inspect")
        .arg(&path)
        .args([
            "--frames",
            frames.to_str().unwrap(),
            "--contact-sheet",
            sheet.to_str().unwrap(),
        ])
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 20);
    assert_eq!(names[0], "bikes_clip001_frame000001.png");
    assert_eq!(names[19], "bikes_clip005_frame000237.png");
    let frame = apollo::render::png_file::read_png(&frames.join(&names[0])).unwrap();
    assert_eq!((frame.width, frame.height), (640, 272));
    let sheet = apollo::render::png_file::read_png(&sheet).unwrap();
    assert!(
        sheet.width > 4 * 192 && sheet.height > 5 * 82,
        "{}x{}",
        sheet.width,
        sheet.height
    );
}
