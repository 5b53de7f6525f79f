//! The encoded-video cache end to end: a hit answers bit for bit as a miss does, damaged
//! entries are recomputed and replaced, processes share the cache, the least recently used
//! entries go under a small cap, `--no-cache` writes nothing, and `apollo cache` shows and
//! clears it.

mod common;

use common::{apollo_cached, run, tiny};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A synthetic video of 6 s (3 clips) whose content its frame size sets.
fn video(dir: &Path, name: &str, size: &str) -> PathBuf {
    let path = dir.join(name);
    common::synthetic(&path, size, "10", "6", &[]);
    path
}

const ASK: [&str; 8] = [
    "--json",
    "--temperature",
    "0",
    "--max-new-tokens",
    "6",
    "--logprobs",
    "5",
    "What moves?",
];

/// `apollo ask` with the cache in `cache`; the record.
fn ask(cache: &Path, video: &Path, extra: &[&str]) -> (Value, String) {
    let r = run(apollo_cached(cache)
        .args(["ask", "--model-dir", &tiny()])
        .arg(video)
        .args(ASK)
        .args(extra));
    assert_eq!(r.code, 0, "{}", r.stderr);
    (serde_json::from_str(&r.stdout).unwrap(), r.stderr)
}

/// What a record says of the answer itself: ids, log-probabilities (to the f32's last bit,
/// as printed), text and prompt.
fn answer(record: &Value) -> Value {
    serde_json::json!([
        record["answer"],
        record["logprobs"],
        record["tokens"],
        record["inputs"]
    ])
}

fn info(cache: &Path) -> Value {
    let r = run(apollo_cached(cache).args(["cache", "info", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cache.join("rows"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_hit_answers_bit_for_bit_as_a_miss_does() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let video = video(dir.path(), "v.mp4", "64x48");
    let (miss, stderr) = ask(&cache, &video, &[]);
    assert_eq!(
        (miss["cache"].as_str(), stderr.as_str()),
        (Some("miss"), "")
    );
    assert!(miss["timings_ms"]["encode"].as_f64().unwrap() > 0.0);
    let (hit, _) = ask(&cache, &video, &[]);
    assert_eq!(hit["cache"], "hit");
    for stage in ["decode", "preprocess", "encode"] {
        assert_eq!(hit["timings_ms"][stage], 0.0, "{stage}");
    }
    assert_eq!(answer(&hit), answer(&miss));
    // Without the cache: computed again, the same answer, and the same record inputs.
    let (off, _) = ask(&cache, &video, &["--no-cache"]);
    assert_eq!(off["cache"], "off");
    assert_eq!(answer(&off), answer(&miss));

    // A changed file is another key, whatever its name.
    common::synthetic(&video, "64x32", "10", "6", &[]);
    let (changed, _) = ask(&cache, &video, &[]);
    assert_eq!(changed["cache"], "miss");
    assert_eq!(entries(&cache).len(), 2);
}

#[test]
fn damaged_entries_are_recomputed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b) = (
        video(dir.path(), "a.mp4", "64x48"),
        video(dir.path(), "b.mp4", "48x48"),
    );
    let (want, _) = ask(&cache, &a, &[]);
    let entry_a = entries(&cache).remove(0);
    ask(&cache, &b, &[]);
    let entry_b = entries(&cache).into_iter().find(|f| *f != entry_a).unwrap();
    let whole = std::fs::read(&entry_a).unwrap();
    let damages: [(&str, Vec<u8>); 4] = [
        ("a flipped bit", {
            let mut d = whole.clone();
            let last = d.len() - 1;
            d[last] ^= 0x80;
            d
        }),
        ("truncated", whole[..whole.len() / 2].to_vec()),
        ("another video's entry", std::fs::read(&entry_b).unwrap()),
        ("not an entry", b"not a cache entry".to_vec()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&entry_a, bytes).unwrap();
        let (record, stderr) = ask(&cache, &a, &[]);
        assert_eq!(record["cache"], "miss", "{what}");
        assert_eq!(answer(&record), answer(&want), "{what}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        assert!(stderr.contains("is damaged"), "{what}: {stderr}");
        // Replaced by a whole entry.
        assert_eq!(std::fs::read(&entry_a).unwrap(), whole, "{what}");
        assert_eq!(ask(&cache, &a, &[]).0["cache"], "hit", "{what}");
    }
}

#[test]
fn processes_share_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let video = video(dir.path(), "v.mp4", "64x48");
    let children: Vec<_> = (0..3)
        .map(|_| {
            common::apollo_process()
                .env_remove("APOLLO_NO_CACHE")
                .env("APOLLO_CACHE_DIR", &cache)
                .args(["ask", "--model-dir", &tiny()])
                .arg(&video)
                .args(ASK)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let records: Vec<Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!((out.status.code(), stderr.as_ref()), (Some(0), ""));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    for r in &records[1..] {
        assert_eq!(answer(r), answer(&records[0]));
    }
    // One whole entry, no temporary file left, and the next process reads it.
    assert_eq!(entries(&cache).len(), 1);
    assert_eq!(ask(&cache, &video, &[]).0["cache"], "hit");
    assert_eq!(entries(&cache).len(), 1);
}

#[test]
fn the_least_recently_used_entries_go_under_a_small_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let videos = [
        video(dir.path(), "a.mp4", "64x48"),
        video(dir.path(), "b.mp4", "48x48"),
        video(dir.path(), "c.mp4", "32x48"),
    ];
    ask(&cache, &videos[0], &[]);
    let first = info(&cache)["bytes"].as_u64().unwrap();
    let entry = std::fs::metadata(&entries(&cache)[0]).unwrap().len();
    // Room for two entries and the memos of the files' hashes, not for three.
    let cap = (first + entry + 500).to_string();
    let ask_capped = |video: &Path| {
        let r = run(apollo_cached(&cache)
            .env("APOLLO_CACHE_MAX", &cap)
            .args(["ask", "--model-dir", &tiny()])
            .arg(video)
            .args(ASK));
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).unwrap()["cache"].clone()
    };
    assert_eq!(ask_capped(&videos[1]), "miss");
    // Reading a makes it the more recently used of the two.
    assert_eq!(ask_capped(&videos[0]), "hit");
    assert_eq!(ask_capped(&videos[2]), "miss");
    assert_eq!(ask_capped(&videos[0]), "hit");
    assert_eq!(ask_capped(&videos[2]), "hit");
    assert_eq!(ask_capped(&videos[1]), "miss", "b went first");
    let held = info(&cache);
    assert_eq!(held["entries"], 2);
    assert!(held["bytes"].as_u64().unwrap() <= cap.parse::<u64>().unwrap());
}

#[test]
fn no_cache_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let video = video(dir.path(), "v.mp4", "64x48");
    let (record, _) = ask(&cache, &video, &["--no-cache"]);
    assert_eq!(record["cache"], "off");
    let r = run(apollo_cached(&cache)
        .env("APOLLO_NO_CACHE", "1")
        .args(["ask", "--model-dir", &tiny()])
        .arg(&video)
        .args(ASK));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!cache.exists(), "nothing written");
    // The flag does not change what the record's inputs say the answer was made from.
    let (cached, _) = ask(&cache, &video, &[]);
    assert_eq!(cached["inputs"], record["inputs"]);
}

#[test]
fn cache_info_shows_and_clear_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let empty = info(&cache);
    assert_eq!(empty["location"], cache.display().to_string());
    assert_eq!(
        (empty["entries"].as_u64(), empty["bytes"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(empty["max_bytes"], 20u64 << 30);
    ask(&cache, &video(dir.path(), "v.mp4", "64x48"), &[]);
    let r = run(apollo_cached(&cache)
        .env("APOLLO_CACHE_MAX", "500M")
        .args(["cache", "info"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("location  {}", cache.display()));
    assert_eq!(lines[1], "entries   1 encoded videos");
    assert!(
        lines[2].ends_with("of at most 500 MiB (APOLLO_CACHE_MAX)"),
        "{}",
        lines[2]
    );
    let r = run(apollo_cached(&cache).args(["cache", "clear"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("removed 1 encoded videos ("),
        "{}",
        r.stdout
    );
    assert_eq!(info(&cache)["bytes"], 0);
    // A limit that is no size is a usage error, one line.
    let r = run(apollo_cached(&cache)
        .env("APOLLO_CACHE_MAX", "lots")
        .args(["cache", "info"]));
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "apollo: APOLLO_CACHE_MAX: \"lots\" is not a size: expected bytes, or a number with K, \
         M, G or T (binary), e.g. 500M or 2G\n"
    );
}
