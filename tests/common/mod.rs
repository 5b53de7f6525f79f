//! Shared by the integration tests: the real test videos and synthetic ones made with the
//! ffmpeg command-line tool (installed by .ci/run).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real videos fetched by scripts/fetch-test-videos.sh (or $APOLLO_TEST_VIDEOS).
pub fn real_video(name: &str) -> PathBuf {
    let dir = std::env::var_os("APOLLO_TEST_VIDEOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-videos"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-videos.sh",
        path.display()
    );
    path
}

pub const REAL_VIDEOS: [&str; 3] = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"];

/// Runs `ffmpeg -y <args>` quietly and panics with its stderr when it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("the ffmpeg command-line tool is needed to make test videos");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A synthetic video of `seconds` from ffmpeg's moving test pattern.
pub fn synthetic(path: &Path, size: &str, rate: &str, seconds: &str, extra: &[&str]) {
    let src = format!("testsrc2=size={size}:rate={rate}");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-t", seconds];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}
