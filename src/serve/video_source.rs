//! Where a request's video comes from, and what may be read: a local path (`file:///abs` or
//! `/abs`) only inside an `--allowed-dir`, judged after symlinks and `..` are resolved; a
//! `data:video/...;base64,` URL, decoded into a private temporary file; an http(s) URL only
//! with `--allow-remote`, fetched with timeouts into a temporary file. Both temporary kinds
//! are size-capped and removed once the request is answered.

use super::errors::ApiError;
use crate::records::identity::VideoIdentity;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::{NamedTempFile, TempPath};

/// What may be read, and how much.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Canonical directories; none: no local path is read.
    pub allowed_dirs: Vec<PathBuf>,
    pub allow_remote: bool,
    /// The most bytes a data URL's or a remote URL's video may have.
    pub max_video_bytes: u64,
    pub timeouts: Timeouts,
}

/// How long a remote fetch may take: to connect, for each read, and in all (checked between
/// reads, so at most `total + read`), so that a server that trickles bytes cannot hold the
/// request (and its place in the queue) for long. (ureq's own overall timeout would replace
/// the other two.)
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

/// A video file ready to decode.
#[derive(Debug)]
pub struct VideoFile {
    pub path: PathBuf,
    /// Equal for the same content at the same place: a later request about the same video
    /// finds the encoded video (and the keys and values of its prompt) still in the worker.
    pub key: String,
    /// How messages name it: the path, the URL, or "the data: URL's video".
    pub label: String,
    /// A temporary copy, removed when dropped.
    _temporary: Option<TempPath>,
}

/// The video `url` names, if `policy` lets it be read. Blocking: reads files and the network.
pub fn open(url: &str, policy: &Policy) -> Result<VideoFile, ApiError> {
    if let Some(data) = url.strip_prefix("data:") {
        return from_data(data, policy);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return fetch(url, policy);
    }
    let path = match url.strip_prefix("file://") {
        Some(rest) if rest.starts_with('/') => PathBuf::from(percent_decoded(rest)?),
        Some(_) => {
            return Err(invalid_url(
                "a file URL names no host: file:///absolute/path",
            ))
        }
        None if url.starts_with('/') => PathBuf::from(url),
        None => {
            return Err(invalid_url(
                "expected file:///absolute/path, an absolute path, data:video/...;base64,... \
                 or an http(s) URL",
            ))
        }
    };
    local(&path, policy)
}

fn invalid_url(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("video_url: {message}")).code("invalid_video_url")
}

fn local(path: &Path, policy: &Policy) -> Result<VideoFile, ApiError> {
    if policy.allowed_dirs.is_empty() {
        return Err(ApiError::forbidden(
            "local paths are not served: the server allows them only inside the directories \
             its --allowed-dir names",
        ));
    }
    let real = resolved(path);
    if !policy.allowed_dirs.iter().any(|dir| real.starts_with(dir)) {
        // Said alike whether or not the file exists, so that nothing outside can be probed.
        return Err(ApiError::forbidden(format!(
            "{path:?} is outside the directories the server allows (--allowed-dir)"
        )));
    }
    let identity = VideoIdentity::of(&real)
        .ok_or_else(|| invalid_url(format!("{path:?} is no regular file")))?;
    Ok(VideoFile {
        key: format!(
            "file:{}:{}:{}:{}",
            identity.path, identity.size, identity.modified_ns, identity.sample_hash
        ),
        path: real,
        label: format!("{path:?}"),
        _temporary: None,
    })
}

/// `path` with every link and `..` resolved, component by component as the kernel resolves
/// them; a component that does not exist is taken as it is (nothing after it can exist, so
/// it only decides between "outside" and "not found").
fn resolved(path: &Path) -> PathBuf {
    let mut real = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => {
                let next = real.join(name);
                real = std::fs::canonicalize(&next).unwrap_or(next);
            }
            Component::ParentDir => {
                real.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    real
}

/// `%XX` escapes of a file URL's path.
fn percent_decoded(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text
                .get(at + 1..at + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid_url("a % in a file URL must start an escape like %20"))?;
            out.push(hex);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid_url("a file URL's path must be UTF-8"))
}

fn too_large(what: &str, policy: &Policy) -> ApiError {
    ApiError::too_large(format!(
        "{what} is larger than the server takes ({} bytes, --max-video-size)",
        policy.max_video_bytes
    ))
}

/// `data:video/<type>;base64,<data>` (after "data:").
fn from_data(data: &str, policy: &Policy) -> Result<VideoFile, ApiError> {
    let (header, payload) = data
        .split_once(',')
        .ok_or_else(|| invalid_url("a data URL needs a comma before its data"))?;
    let media = header.strip_suffix(";base64").ok_or_else(|| {
        invalid_url("a data URL's video must be base64: data:video/mp4;base64,...")
    })?;
    if !media.starts_with("video/") {
        return Err(invalid_url(format!(
            "a data URL of type {media:?}: expected a video/ type"
        )));
    }
    if payload.len() as u64 / 4 * 3 > policy.max_video_bytes {
        return Err(too_large("the data URL's video", policy));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|e| invalid_url(format!("the data URL's base64 does not decode: {e}")))?;
    let mut file = temporary()?;
    file.write_all(&bytes).map_err(write_failed)?;
    Ok(VideoFile {
        key: format!("sha256:{:x}", Sha256::digest(&bytes)),
        label: "the data: URL's video".into(),
        ..kept(file)
    })
}

/// An http(s) URL, fetched into a temporary file.
fn fetch(url: &str, policy: &Policy) -> Result<VideoFile, ApiError> {
    if !policy.allow_remote {
        return Err(ApiError::forbidden(
            "remote video URLs are not fetched: the server does so only with --allow-remote",
        ));
    }
    let agent = ureq::AgentBuilder::new()
        .try_proxy_from_env(true)
        .timeout_connect(policy.timeouts.connect)
        .timeout_read(policy.timeouts.read)
        .user_agent(concat!("apollo/", env!("CARGO_PKG_VERSION")))
        .build();
    let response = agent.get(url).call().map_err(|e| {
        invalid_url(match e {
            ureq::Error::Status(code, _) => format!("{url} answered HTTP {code}"),
            other => format!("cannot fetch {url}: {other}"),
        })
    })?;
    let announced = response
        .header("content-length")
        .and_then(|n| n.parse::<u64>().ok());
    if announced.is_some_and(|n| n > policy.max_video_bytes) {
        return Err(too_large(url, policy));
    }
    let mut file = temporary()?;
    let mut hash = Sha256::new();
    let mut body = response.into_reader().take(policy.max_video_bytes + 1);
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let start = Instant::now();
    loop {
        if start.elapsed() > policy.timeouts.total {
            return Err(invalid_url(format!(
                "{url} took longer than {} s to send",
                policy.timeouts.total.as_secs_f64()
            )));
        }
        let n = body
            .read(&mut buffer)
            .map_err(|e| invalid_url(format!("{url} broke off: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > policy.max_video_bytes {
            return Err(too_large(url, policy));
        }
        hash.update(&buffer[..n]);
        file.write_all(&buffer[..n]).map_err(write_failed)?;
    }
    Ok(VideoFile {
        key: format!("sha256:{:x}", hash.finalize()),
        label: url.to_string(),
        ..kept(file)
    })
}

/// A temporary file only this user can read (tempfile's default mode, 0600).
fn temporary() -> Result<NamedTempFile, ApiError> {
    NamedTempFile::new().map_err(write_failed)
}

fn write_failed(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot write the video to a temporary file: {e}"))
}

/// `file` as a video to decode, removed when the video is dropped.
fn kept(file: NamedTempFile) -> VideoFile {
    let path = file.into_temp_path();
    VideoFile {
        path: path.to_path_buf(),
        key: String::new(),
        label: String::new(),
        _temporary: Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn policy(dirs: &[&Path]) -> Policy {
        Policy {
            allowed_dirs: dirs.iter().map(|d| d.canonicalize().unwrap()).collect(),
            allow_remote: false,
            max_video_bytes: 100,
            timeouts: Timeouts::default(),
        }
    }

    fn status(result: Result<VideoFile, ApiError>) -> u16 {
        result.map_or_else(|e| e.status.as_u16(), |_| 200)
    }

    #[test]
    fn local_paths_are_read_only_inside_the_allowed_directories() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("videos");
        let outside = root.path().join("private");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("sub/a b.mp4"), b"video").unwrap();
        std::fs::write(outside.join("secret.mp4"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.mp4"), allowed.join("s.mp4")).unwrap();
        let p = policy(&[&allowed]);
        let url = |rel: &str| format!("{}/{rel}", allowed.display());
        let inside = open(&url("sub/a b.mp4"), &p).unwrap();
        assert_eq!(
            inside.path,
            allowed.canonicalize().unwrap().join("sub/a b.mp4")
        );
        let as_file_url = open(&format!("file://{}", url("sub/a%20b.mp4")), &p).unwrap();
        assert_eq!(as_file_url.key, inside.key);
        assert_eq!(status(open(&url("sub/../sub/./a b.mp4"), &p)), 200);
        for escape in [
            "../private/secret.mp4",
            "link/secret.mp4",
            "s.mp4",
            "sub/../../private/secret.mp4",
            "missing/../../private/secret.mp4",
            "link/missing.mp4",
            "../private/missing.mp4",
            "missing/../link/secret.mp4",
        ] {
            assert_eq!(status(open(&url(escape), &p)), 403, "{escape}");
        }
        assert_eq!(status(open("/etc/passwd", &p)), 403);
        // Missing or not a file, inside: the request's fault.
        assert_eq!(status(open(&url("missing.mp4"), &p)), 400);
        assert_eq!(status(open(&url("sub"), &p)), 400);
        // No directory allowed: no local path at all.
        assert_eq!(status(open(&url("sub/a b.mp4"), &policy(&[]))), 403);
        for bad in [
            "videos/a.mp4",
            "file://host/a.mp4",
            "ftp://x/a.mp4",
            "file:///a%zz",
        ] {
            assert_eq!(status(open(bad, &p)), 400, "{bad}");
        }
    }

    #[test]
    fn data_urls_are_decoded_into_a_private_file_that_goes_away() {
        let p = policy(&[]);
        let url = format!(
            "data:video/mp4;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(b"frames")
        );
        let video = open(&url, &p).unwrap();
        assert_eq!(std::fs::read(&video.path).unwrap(), b"frames");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&video.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(open(&url, &p).unwrap().key, video.key);
        let path = video.path.clone();
        drop(video);
        assert!(!path.exists());
        let big = format!("data:video/mp4;base64,{}", "A".repeat(200));
        assert_eq!(
            open(&big, &p).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        for bad in [
            "data:video/mp4,abc",
            "data:image/png;base64,AAAA",
            "data:video/mp4;base64,@@",
            "data:video/mp4",
        ] {
            assert_eq!(status(open(bad, &p)), 400, "{bad}");
        }
    }

    /// A one-connection HTTP server on loopback that answers with `head` and then `body`,
    /// sending nothing more but keeping the connection open for a while; its URL.
    fn stalling_server(head: &'static str, body: &'static [u8]) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v.mp4", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(head.as_bytes());
            let _ = socket.write_all(body);
            std::thread::sleep(Duration::from_secs(5));
        });
        url
    }

    /// A one-connection HTTP server that sends a byte of its body every 50 ms, 50 in all.
    fn trickling_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v.mp4", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
            for _ in 0..50 {
                if socket.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        url
    }

    fn remote(timeouts: Timeouts) -> Policy {
        Policy {
            allow_remote: true,
            timeouts,
            ..policy(&[])
        }
    }

    #[test]
    fn remote_fetches_are_timed_out_and_size_capped() {
        let quick = Timeouts {
            connect: Duration::from_millis(500),
            read: Duration::from_millis(300),
            total: Duration::from_secs(3),
        };
        // Headers, part of the body, then silence: the read timeout ends it.
        let url = stalling_server("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", b"12345");
        let start = std::time::Instant::now();
        let e = open(&url, &remote(quick)).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{e:?}");
        assert!(
            e.message.contains("broke off") || e.message.contains("cannot fetch"),
            "{}",
            e.message
        );
        // The total holds even when every read is quick enough: a server that trickles.
        let url = trickling_server();
        let start = std::time::Instant::now();
        let e = open(
            &url,
            &remote(Timeouts {
                total: Duration::from_millis(400),
                ..quick
            }),
        )
        .unwrap_err();
        assert!(
            e.message.contains("took longer than 0.4 s"),
            "{}",
            e.message
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        // Larger than the cap: said by its Content-Length, or found while reading.
        let url = stalling_server("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", b"");
        assert_eq!(status(open(&url, &remote(quick))), 413);
        let url = stalling_server("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", &[7u8; 101]);
        assert_eq!(status(open(&url, &remote(quick))), 413);
        // A whole body within the cap is kept, named by its content.
        let url = stalling_server("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", b"frames");
        let video = open(&url, &remote(quick)).unwrap();
        assert_eq!(std::fs::read(&video.path).unwrap(), b"frames");
        assert!(video.key.starts_with("sha256:"), "{}", video.key);
        let url = stalling_server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b"");
        let e = open(&url, &remote(quick)).unwrap_err();
        assert!(e.message.contains("HTTP 404"), "{}", e.message);
    }

    #[test]
    fn remote_urls_are_refused_without_allow_remote() {
        let e = open("https://example.com/v.mp4", &policy(&[])).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("--allow-remote"), "{}", e.message);
    }
}
