//! Models from the Hugging Face cache without the network: `ask --model` and `download` on a
//! cache laid out as huggingface_hub writes it, offline or with the hub unreachable.

mod common;

use common::{apollo, fixtures, run};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[test]
fn offline_without_a_cached_model_names_the_repo_and_the_way_out() {
    let home = tempfile::tempdir().unwrap();
    let r = run(apollo()
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .arg("ask")
        .arg(common::real_video("bikes.mp4"))
        .arg("What is this?"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r
        .stderr
        .starts_with("apollo: model GoodiesHere/Apollo-LMMs-Apollo-3B-t32: "));
    assert!(r.stderr.contains("HF_HUB_OFFLINE"), "{}", r.stderr);
    assert!(r.stderr.contains("--model-dir"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

/// A Hugging Face cache holding the tiny checkpoint as `test/tiny-apollo`, laid out as
/// huggingface_hub writes it: blobs, a snapshot of symlinks, refs/main.
fn hub_cache(root: &Path) -> PathBuf {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = root.join("models--test--tiny-apollo");
    let snapshot = repo.join("snapshots").join(commit);
    let blobs = repo.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    fn copy(src: &Path, dst: &Path, blobs: &Path, n: &mut usize) {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let target = dst.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target, blobs, n);
            } else {
                *n += 1;
                let blob = blobs.join(format!("blob{n}"));
                std::fs::copy(entry.path(), &blob).unwrap();
                std::os::unix::fs::symlink(&blob, &target).unwrap();
            }
        }
    }
    copy(&fixtures().join("tiny-apollo"), &snapshot, &blobs, &mut 0);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    snapshot
}

#[test]
fn a_model_in_the_hugging_face_cache_is_used_without_network() {
    let video = common::real_video("bikes.mp4");
    let root = tempfile::tempdir().unwrap();
    let snapshot = hub_cache(&root.path().join("hub"));
    let ask = |env: &[(&str, &Path)], offline: bool| {
        let mut cmd = apollo();
        for (k, v) in env {
            cmd.env(k, v);
        }
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        } else {
            // Online but the hub unreachable: the complete cached copy serves.
            cmd.env("HF_ENDPOINT", "http://127.0.0.1:9");
        }
        let r = run(cmd
            .args([
                "ask",
                "--json",
                "--model",
                "test/tiny-apollo",
                "--max-new-tokens",
                "2",
            ])
            .arg(&video)
            .arg("What is this?"));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let record: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(record["model"], "test/tiny-apollo");
    };
    let hub = root.path().join("hub");
    ask(&[("HF_HUB_CACHE", &hub)], true);
    ask(&[("HF_HOME", root.path())], true);
    ask(
        &[
            ("HF_HOME", Path::new("/nonexistent")),
            ("HF_HUB_CACHE", &hub),
        ],
        false,
    );

    let r = run(apollo()
        .env("HF_HUB_CACHE", &hub)
        .env("HF_HUB_OFFLINE", "1")
        .args(["download", "test/tiny-apollo"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim_end(), snapshot.display().to_string());
    // With nobody reading, download ends quietly, as every command does.
    let offline = [
        ("HF_HUB_CACHE", hub.to_str().unwrap()),
        ("HF_HUB_OFFLINE", "1"),
    ];
    let (code, stderr) = common::with_closed_stdout(&["download", "test/tiny-apollo"], &offline);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));

    // A snapshot missing a weight shard is not used.
    std::fs::remove_file(snapshot.join("llm/model-00002-of-00002.safetensors")).unwrap();
    let r = run(apollo()
        .env("HF_HUB_CACHE", &hub)
        .env("HF_HUB_OFFLINE", "1")
        .args(["download", "test/tiny-apollo"]));
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("llm/model-00002-of-00002.safetensors"),
        "{}",
        r.stderr
    );
}
