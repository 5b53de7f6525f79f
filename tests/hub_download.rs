//! `apollo download` and `ask --model` against a local stand-in for the Hugging Face hub (the
//! real one is unreachable here): what is requested, where it lands in the cache, and the
//! token sent.

mod common;

use assert_cmd::Command;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const REPO: &str = "org/tiny";
const COMMIT: &str = "c0ffee0000000000000000000000000000000042";

/// A request the stand-in saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    auth: Option<String>,
    range: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// What the stand-in does wrong with a download's body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Sends this many bytes of the body, then closes the connection.
    CutAfter(usize),
    /// Sends this many bytes, then nothing more for a minute, the connection open.
    StallAfter(usize),
    /// Sends the body in four parts, 0.2 s apart: slow, but never silent for long.
    Trickle,
}

/// Picks the fault for a body request: the file, and how many body requests for it came
/// before (metadata probes not counted).
type Faults = Arc<dyn Fn(&str, usize) -> Fault + Send + Sync>;

/// Serves `files` as the repo at `COMMIT` over HTTP on a free local port, answering the two
/// calls a client makes: the repo info API and ranged `resolve` downloads.
fn serve(files: BTreeMap<String, Vec<u8>>) -> (String, Log) {
    serve_with(files, Arc::new(|_, _| Fault::None))
}

fn serve_with(files: BTreeMap<String, Vec<u8>>, faults: Faults) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (files, seen, faults) = (files.clone(), seen.clone(), faults.clone());
            // A connection each: a stalled one must not hold up the next.
            std::thread::spawn(move || respond(stream, &files, &seen, faults.as_ref()));
        }
    });
    (endpoint, log)
}

/// A hub that accepts connections and never answers.
fn stalled() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().flatten().collect();
        drop(held);
    });
    endpoint
}

fn respond(
    mut stream: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    log: &Log,
    faults: &(dyn Fn(&str, usize) -> Fault + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range_start = 0usize;
    let mut probe = false;
    let mut auth = None;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.trim().split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "range" => {
                range = Some(value.trim().to_string());
                let (from, to) = value
                    .trim()
                    .trim_start_matches("bytes=")
                    .split_once('-')
                    .unwrap();
                range_start = from.parse().unwrap();
                probe = to == "0";
            }
            "authorization" => auth = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let earlier = {
        let mut log = log.lock().unwrap();
        let earlier = log
            .iter()
            .filter(|s| s.path == path && s.range.as_deref() != Some("bytes=0-0"))
            .count();
        log.push(Seen {
            path: path.clone(),
            auth,
            range,
        });
        earlier
    };
    let info = format!("/api/models/{REPO}/revision/main");
    let resolve = format!("/{REPO}/resolve/{COMMIT}/");
    let mut fault = Fault::None;
    let (status, headers, body) = if path == info {
        let siblings: Vec<Value> = files.keys().map(|f| json!({"rfilename": f})).collect();
        let body = json!({"sha": COMMIT, "siblings": siblings}).to_string();
        ("200 OK", String::new(), body.into_bytes())
    } else if let Some((file, data)) = path
        .strip_prefix(&resolve)
        .and_then(|f| files.get_key_value(f))
    {
        let body = if probe {
            data[..1].to_vec() // the metadata probe asks for bytes=0-0
        } else {
            fault = faults(file, earlier);
            data[range_start..].to_vec()
        };
        let headers = format!(
            "etag: \"{:x}\"\r\nx-repo-commit: {COMMIT}\r\ncontent-range: bytes {range_start}-{}/{}\r\n",
            fingerprint(data),
            data.len().max(1) - 1,
            data.len()
        );
        ("206 Partial Content", headers, body)
    } else {
        ("404 Not Found", String::new(), Vec::new())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    match fault {
        Fault::None => {
            let _ = stream.write_all(&body);
        }
        Fault::CutAfter(n) => {
            let _ = stream.write_all(&body[..n.min(body.len())]);
            return; // dropped: the connection closes mid-body
        }
        Fault::StallAfter(n) => {
            let _ = stream.write_all(&body[..n.min(body.len())]);
            let _ = stream.flush();
            std::thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        Fault::Trickle => {
            for part in body.chunks(body.len().div_ceil(4).max(1)) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let _ = stream.write_all(part);
                let _ = stream.flush();
            }
        }
    }
    let mut rest = Vec::new();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.read_to_end(&mut rest);
}

/// A stand-in for the blob hash the hub sends as etag.
fn fingerprint(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The tiny checkpoint's files plus files a published repo has that apollo does not need.
fn repo_files() -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-apollo"),
        "",
        &mut files,
    );
    files.insert("README.md".into(), b"# tiny".to_vec());
    files.insert("modeling_apollo.py".into(), b"pass".to_vec());
    files.insert("training_state.bin".into(), vec![7; 4096]);
    files
}

fn apollo(endpoint: &str, cache: &Path) -> Command {
    let mut cmd = Command::new(common::binary());
    for var in ["HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"] {
        cmd.env_remove(var);
    }
    cmd.env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("APOLLO_NO_CACHE", "1");
    cmd
}

fn downloads(log: &Log) -> Vec<String> {
    let prefix = format!("/{REPO}/resolve/{COMMIT}/");
    let mut files: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| s.path.strip_prefix(&prefix).map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    files
}

#[test]
fn download_fetches_only_what_the_loader_reads_into_the_hub_cache() {
    let files = repo_files();
    let (endpoint, log) = serve(files.clone());
    let cache = tempfile::tempdir().unwrap();
    let out = apollo(&endpoint, cache.path())
        .env("HF_TOKEN", "hf_secret")
        .args(["download", REPO])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let repo_dir = cache.path().join("models--org--tiny");
    let snapshot: PathBuf = repo_dir.join("snapshots").join(COMMIT);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        snapshot.display().to_string()
    );
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );

    // Everything but the tokenizer's other files and the repo's extras, byte for byte.
    let unneeded = [
        "README.md",
        "modeling_apollo.py",
        "training_state.bin",
        "llm/merges.txt",
        "llm/vocab.json",
        "llm/special_tokens_map.json",
        "llm/tokenizer_config.json",
    ];
    let want: Vec<String> = files
        .keys()
        .filter(|f| !unneeded.contains(&f.as_str()))
        .cloned()
        .collect();
    assert_eq!(downloads(&log), want);
    for file in &want {
        assert_eq!(
            &std::fs::read(snapshot.join(file)).unwrap(),
            &files[file],
            "{file}"
        );
    }
    assert!(!snapshot.join("training_state.bin").exists());
    // The token went with every request.
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer hf_secret")));

    // The cached copy answers offline, and a second download fetches nothing again.
    let video = common::real_video("bikes.mp4");
    let out = apollo(&endpoint, cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["ask", "--json", "--model", REPO, "--max-new-tokens", "2"])
        .arg(&video)
        .arg("What is this?")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["model"], REPO);

    log.lock().unwrap().clear();
    let out = apollo(&endpoint, cache.path())
        .args(["download", REPO])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(downloads(&log).is_empty());
}

#[test]
fn an_unknown_repo_is_a_model_error_naming_it() {
    let (endpoint, _) = serve(BTreeMap::new());
    let cache = tempfile::tempdir().unwrap();
    let out = apollo(&endpoint, cache.path())
        .args(["download", "org/missing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("apollo: model org/missing: "),
        "{stderr}"
    );
}

/// `apollo` against `endpoint` with short timeouts, so that each stalled request costs 0.3 s.
fn impatient(endpoint: &str, cache: &Path) -> Command {
    let mut cmd = apollo(endpoint, cache);
    cmd.env("APOLLO_HUB_TIMEOUT", "0.3");
    cmd
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_hub_that_never_answers_fails_in_bounded_time_naming_it() {
    let endpoint = stalled();
    let cache = tempfile::tempdir().unwrap();
    let video = common::real_video("bikes.mp4");
    for args in [
        vec!["download", REPO],
        vec![
            "ask",
            "--model",
            REPO,
            video.to_str().unwrap(),
            "What is this?",
        ],
    ] {
        let start = std::time::Instant::now();
        let out = impatient(&endpoint, cache.path())
            .args(&args)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 3, "two notes of retries, one error: {stderr}");
        for note in &lines[..2] {
            assert!(
                note.starts_with(&format!(
                    "apollo: the hub at {endpoint} did not answer within 0.3 s; trying again"
                )),
                "{note}"
            );
        }
        let error = lines[2];
        assert!(
            error.starts_with(&format!("apollo: model {REPO}: ")),
            "{error}"
        );
        assert!(
            error.contains(&format!("the hub at {endpoint} gave no usable answer")),
            "{error}"
        );
        assert!(error.contains("--model-dir"), "{error}");
    }
}

#[test]
fn a_stalled_hub_falls_back_to_a_complete_cached_copy() {
    let (endpoint, _) = serve(repo_files());
    let cache = tempfile::tempdir().unwrap();
    let out = apollo(&endpoint, cache.path())
        .args(["download", REPO])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = impatient(&stalled(), cache.path())
        .args(["ask", "--json", "--max-new-tokens", "2", "--model", REPO])
        .arg(common::real_video("bikes.mp4"))
        .arg("What is this?")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with(&format!("using the cached copy of {REPO}")),
        "{stderr}"
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["inputs"]["model"]["hub"]["commit"], COMMIT);
}

/// `download` from a stand-in serving `files` without faults, into `cache`: its requests.
fn download_from_a_sound_hub(files: &BTreeMap<String, Vec<u8>>, cache: &Path) -> Log {
    let (endpoint, log) = serve(files.clone());
    let out = apollo(&endpoint, cache)
        .args(["download", REPO])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    log
}

const SHARD: &str = "llm/model-00001-of-00002.safetensors";
const SLOW: &str = "llm/model-00002-of-00002.safetensors";

/// The `Range` headers of the body requests for `file`, in order.
fn body_ranges(log: &Log, file: &str) -> Vec<String> {
    let path = format!("/{REPO}/resolve/{COMMIT}/{file}");
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.path == path && s.range.as_deref() != Some("bytes=0-0"))
        .filter_map(|s| s.range.clone())
        .collect()
}

#[test]
fn a_body_cut_or_stalled_midway_is_resumed_where_it_stopped() {
    let files = repo_files();
    let faults: Faults = Arc::new(|file, earlier| match (file, earlier) {
        (SHARD, 0) => Fault::CutAfter(1000),
        (SHARD, 1) => Fault::StallAfter(2000),
        (SLOW, _) => Fault::Trickle,
        _ => Fault::None,
    });
    let (endpoint, log) = serve_with(files.clone(), faults);
    let cache = tempfile::tempdir().unwrap();
    let out = impatient(&endpoint, cache.path())
        .args(["download", REPO])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "a note per retry: {stderr}");
    assert_eq!(
        body_ranges(&log, SHARD),
        ["bytes=0-", "bytes=1000-", "bytes=3000-"]
    );
    let snapshot = cache
        .path()
        .join("models--org--tiny/snapshots")
        .join(COMMIT);
    assert_eq!(std::fs::read(snapshot.join(SHARD)).unwrap(), files[SHARD]);
    // A slow body that never pauses past the timeout needs no second try.
    assert_eq!(body_ranges(&log, SLOW), ["bytes=0-"]);
    assert_eq!(std::fs::read(snapshot.join(SLOW)).unwrap(), files[SLOW]);
}

#[test]
fn a_partial_download_is_never_used_and_is_resumed_by_the_next_run() {
    let files = repo_files();
    let always_cut: Faults = Arc::new(|file, _| match file {
        SHARD => Fault::CutAfter(500),
        _ => Fault::None,
    });
    let (endpoint, _) = serve_with(files.clone(), always_cut);
    let cache = tempfile::tempdir().unwrap();
    // Default timeouts: a cut is no stall, and 0.3 s ones could expire on a busy machine.
    let out = apollo(&endpoint, cache.path())
        .args(["download", REPO])
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "broke off after 1500 of {} bytes",
            files[SHARD].len()
        )),
        "{stderr}"
    );
    let repo_dir = cache.path().join("models--org--tiny");
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    assert!(!snapshot.join(SHARD).exists(), "no link to a partial blob");
    let partial = repo_dir
        .join("blobs")
        .join(format!("{:x}.incomplete", fingerprint(&files[SHARD])));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 1500);
    // Offline, the partial copy is not a copy (asked by commit: the failed run wrote no ref).
    let out = apollo(&endpoint, cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["download", REPO, "--revision", COMMIT])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr_of(&out).contains(&format!("lacks {SHARD}")));

    // The next run resumes from the 1500 bytes it has; a leftover longer than the file (not
    // a prefix of it) is started over.
    let log = download_from_a_sound_hub(&files, cache.path());
    assert_eq!(body_ranges(&log, SHARD), ["bytes=1500-"]);
    assert_eq!(std::fs::read(snapshot.join(SHARD)).unwrap(), files[SHARD]);

    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("models--org--tiny/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{:x}.incomplete", fingerprint(&files[SHARD])));
    std::fs::write(&partial, vec![0xEE; files[SHARD].len() + 10]).unwrap();
    let log = download_from_a_sound_hub(&files, cache.path());
    assert_eq!(body_ranges(&log, SHARD), ["bytes=0-"]);
    let snapshot = cache
        .path()
        .join("models--org--tiny/snapshots")
        .join(COMMIT);
    assert_eq!(std::fs::read(snapshot.join(SHARD)).unwrap(), files[SHARD]);
}

#[test]
fn repo_ids_and_revisions_are_checked_before_any_request() {
    let (endpoint, log) = serve(BTreeMap::new());
    let cache = tempfile::tempdir().unwrap();
    for args in [
        vec!["download", "../../etc"],
        vec!["download", "org/name with space"],
        vec!["download", REPO, "--revision", "../main"],
        vec!["ask", "--model", "a/b/c", "v.mp4", "q"],
    ] {
        let out = apollo(&endpoint, cache.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains("expected a"),
            "{}",
            stderr_of(&out)
        );
    }
    assert!(log.lock().unwrap().is_empty());
}
