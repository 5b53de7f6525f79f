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

/// Requests seen: (path, Authorization header).
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `files` as the repo at `COMMIT` over HTTP on a free local port, answering the two
/// calls hf-hub makes: the repo info API and ranged `resolve` downloads.
fn serve(files: BTreeMap<String, Vec<u8>>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            respond(stream, &files, &seen);
        }
    });
    (endpoint, log)
}

fn respond(mut stream: TcpStream, files: &BTreeMap<String, Vec<u8>>, log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    reader.read_line(&mut request).unwrap();
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range_start = 0usize;
    let mut probe = false;
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.trim().split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "range" => {
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
    log.lock().unwrap().push((path.clone(), auth));
    let info = format!("/api/models/{REPO}/revision/main");
    let resolve = format!("/{REPO}/resolve/{COMMIT}/");
    let (status, headers, body) = if path == info {
        let siblings: Vec<Value> = files.keys().map(|f| json!({"rfilename": f})).collect();
        let body = json!({"sha": COMMIT, "siblings": siblings}).to_string();
        ("200 OK", String::new(), body.into_bytes())
    } else if let Some(data) = path.strip_prefix(&resolve).and_then(|f| files.get(f)) {
        let body = if probe {
            data[..1].to_vec() // the metadata probe asks for bytes=0-0
        } else {
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
    let _ = stream.write_all(&body);
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
    cmd.env("HF_ENDPOINT", endpoint).env("HF_HUB_CACHE", cache);
    cmd
}

fn downloads(log: &Log) -> Vec<String> {
    let prefix = format!("/{REPO}/resolve/{COMMIT}/");
    let mut files: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&prefix).map(str::to_string))
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
        .all(|(_, auth)| auth.as_deref() == Some("Bearer hf_secret")));

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
