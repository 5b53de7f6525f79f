//! Shared by the integration tests: the real test videos and synthetic ones made with the
//! ffmpeg command-line tool (installed by .ci/run), the tiny checkpoint of tests/fixtures, and
//! running the `apollo` binary.
#![allow(dead_code)]

pub mod guarded;
pub mod server;

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

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn tiny() -> String {
    fixtures().join("tiny-apollo").display().to_string()
}

/// A copy of the tiny checkpoint in `dir`, to break.
pub fn copy_of_tiny(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    let status = Command::new("cp")
        .args(["-r", &tiny()])
        .arg(&model)
        .status()
        .unwrap();
    assert!(status.success());
    model
}

/// The binary under test: this build's, or the one `APOLLO_TEST_BIN` names (CI runs the
/// end-to-end tests again against the portable build, scripts/build-portable.sh).
pub fn binary() -> PathBuf {
    match std::env::var_os("APOLLO_TEST_BIN") {
        Some(bin) => std::fs::canonicalize(&bin)
            .unwrap_or_else(|e| panic!("APOLLO_TEST_BIN={}: {e}", Path::new(&bin).display())),
        None => assert_cmd::cargo::cargo_bin("apollo"),
    }
}

/// The environment that would change what a test's apollo does: hub and cache settings, and
/// the task index of a scheduler running the tests (which would make `caption` answer one
/// shard).
pub const MACHINE_ENV: [&str; 13] = [
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "APOLLO_CACHE_DIR",
    "APOLLO_CACHE_MAX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
];

/// `cmd` (and what it starts) with none of the machine's [`MACHINE_ENV`] leaking in, and the
/// encoded-video cache off (tests of the cache turn it on in a folder of their own:
/// [`apollo_cached`]).
pub fn isolated(cmd: &mut Command) -> &mut Command {
    cmd.env("APOLLO_NO_CACHE", "1");
    for var in MACHINE_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The binary under test, [`isolated`], to spawn.
pub fn apollo_process() -> Command {
    let mut cmd = Command::new(binary());
    isolated(&mut cmd);
    cmd
}

/// `apollo`, [`isolated`].
pub fn apollo() -> assert_cmd::Command {
    assert_cmd::Command::from_std(apollo_process())
}

/// `apollo` as [`apollo`] makes it, with the encoded-video cache on in `dir`.
pub fn apollo_cached(dir: &Path) -> assert_cmd::Command {
    let mut cmd = apollo();
    cmd.env_remove("APOLLO_NO_CACHE")
        .env_remove("APOLLO_CACHE_MAX")
        .env("APOLLO_CACHE_DIR", dir);
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "panic: {}", run.stderr);
    run
}

/// The tiny checkpoint made to talk without end: no eos id, the end-of-turn token renamed (so
/// neither it nor its text stops an answer) and a long context, so that an answer is still
/// being written when it is stopped (Ctrl-C in `chat`, a client gone or a signal in `serve`).
pub fn endless_checkpoint(dir: &Path) -> PathBuf {
    let model = copy_of_tiny(dir);
    let edit = |file: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = model.join(file);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
    };
    edit("llm/config.json", &|c| {
        c["max_position_embeddings"] = 1_000_000.into()
    });
    edit("llm/generation_config.json", &|g| {
        g["eos_token_id"] = serde_json::Value::Array(vec![])
    });
    let tokenizer = model.join("llm/tokenizer.json");
    let text = std::fs::read_to_string(&tokenizer).unwrap();
    std::fs::write(&tokenizer, text.replace("<|im_end|>", "<|im_fin|>")).unwrap();
    model
}

/// A text file posing as a video.
pub fn bad_video(dir: &Path) -> PathBuf {
    let bad = dir.join("notes.mp4");
    std::fs::write(&bad, "not a video").unwrap();
    bad
}

/// Runs `apollo <args>` with its stdout closed before it writes anything, as `| head -0`
/// leaves it: returns the exit code and stderr.
pub fn with_closed_stdout(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = apollo_process();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
