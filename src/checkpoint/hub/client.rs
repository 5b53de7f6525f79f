//! The hub's HTTP API as huggingface_hub calls it: a repo's info, a file's metadata (a ranged
//! request for its first byte, redirects not followed, as the hub names a file's commit, etag
//! and size in that answer) and a file's bytes. Every request has connect and read timeouts
//! and a few tries with growing pauses, so that a hub or proxy that accepts connections and
//! never answers fails in bounded time, naming the endpoint. A download resumes where the
//! previous try stopped, and is complete only with exactly the announced size.

use super::settings::HubSettings;
use super::DownloadObserver;
use crate::error::{Error, Kind};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// Tries of each request before giving up.
const TRIES: u32 = 3;

/// Why a request failed.
pub enum Failure {
    /// No usable answer: the hub cannot be reached, stalls, or fails (5xx) on every try.
    Unreachable(String),
    /// The hub answered: no such repo or file, access denied, or an answer apollo cannot use.
    Other(Error),
}

pub type Outcome<T> = std::result::Result<T, Failure>;

/// The answer of the repo info API, as far as apollo reads it.
#[derive(Debug, Deserialize)]
pub struct RepoInfo {
    pub sha: String,
    pub siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
}

/// What the hub says of one file before it is downloaded.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    pub commit: String,
    /// The blob's name in the cache (quotes removed).
    pub etag: String,
    pub size: u64,
}

/// One try's failure: worth another try (no answer, a server error, a cut body), or not.
enum TryFailure {
    Again(String),
    Final(Failure),
}

pub struct Client {
    repo: String,
    endpoint: String,
    token: Option<String>,
    timeout: Duration,
    /// Follows redirects (downloads go on to the CDN), sending the token to the hub's own
    /// host only.
    follow: ureq::Agent,
    /// Follows none: the hub's first answer carries a file's metadata.
    probe: ureq::Agent,
}

impl Client {
    pub fn new(repo: &str, settings: &HubSettings) -> Self {
        let agent = |redirects: u32| {
            ureq::AgentBuilder::new()
                .try_proxy_from_env(true)
                .timeout_connect(settings.timeout)
                .timeout_read(settings.timeout)
                .timeout_write(settings.timeout)
                .redirects(redirects)
                .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
                .user_agent(concat!("apollo/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Self {
            repo: repo.to_string(),
            endpoint: settings.endpoint.clone(),
            token: settings.token.clone(),
            timeout: settings.timeout,
            follow: agent(5),
            probe: agent(0),
        }
    }

    /// The repo at `revision`: its commit and its files.
    pub fn info(&self, revision: &str, observer: &mut dyn DownloadObserver) -> Outcome<RepoInfo> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.endpoint,
            self.repo,
            encode(revision)
        );
        self.with_tries("the repo's file list", observer, |_| {
            let response = self.send(self.follow.get(&url))?;
            response.into_json::<RepoInfo>().map_err(|e| {
                TryFailure::Again(format!(
                    "its answer broke off or is not the repo's info ({e})"
                ))
            })
        })
    }

    /// The URL of `file` at `commit`.
    pub fn file_url(&self, commit: &str, file: &str) -> String {
        let path: Vec<String> = file.split('/').map(encode).collect();
        format!(
            "{}/{}/resolve/{commit}/{}",
            self.endpoint,
            self.repo,
            path.join("/")
        )
    }

    /// The commit, etag and size of the file at `url`.
    pub fn metadata(&self, url: &str, observer: &mut dyn DownloadObserver) -> Outcome<FileMeta> {
        self.with_tries("a file's size and hash", observer, |_| {
            let mut url = url.to_string();
            let mut response = self.send(self.probe.get(&url).set("Range", "bytes=0-0"))?;
            // A renamed repo answers with a redirect on the hub itself: follow those.
            for _ in 0..5 {
                match response.header("location").filter(|l| l.starts_with('/')) {
                    Some(path) if (300..400).contains(&response.status()) => {
                        url = format!("{}{path}", self.endpoint);
                        response = self.send(self.probe.get(&url).set("Range", "bytes=0-0"))?;
                    }
                    _ => break,
                }
            }
            let header = |name: &str| response.header(name).map(str::to_string);
            let broken = |what: &str| {
                TryFailure::Final(Failure::Other(
                    self.error(format!("the hub's answer for {url} lacks {what}")),
                ))
            };
            let commit = header("x-repo-commit").ok_or_else(|| broken("x-repo-commit"))?;
            let etag = header("x-linked-etag")
                .or_else(|| header("etag"))
                .ok_or_else(|| broken("an etag"))?
                .replace('"', "");
            let size = match (header("x-linked-size"), header("location")) {
                (Some(size), _) => size.parse().ok(),
                // Elsewhere (the CDN): its own answer to the same range gives the size.
                (None, Some(cdn)) if (300..400).contains(&response.status()) => {
                    let cdn = self.send(self.follow.get(&cdn).set("Range", "bytes=0-0"))?;
                    total_size(&cdn)
                }
                _ => total_size(&response),
            }
            .ok_or_else(|| broken("the file's size"))?;
            Ok(FileMeta { commit, etag, size })
        })
    }

    /// Downloads `url` into `partial` until it holds exactly `size` bytes, resuming what an
    /// earlier try or run left there; bytes beyond `size`, or a server that ignores the
    /// range, start it over.
    pub fn download(
        &self,
        url: &str,
        partial: &Path,
        size: u64,
        label: &str,
        observer: &mut dyn DownloadObserver,
    ) -> Outcome<()> {
        let local = |e: std::io::Error| {
            TryFailure::Final(Failure::Other(Error::runtime(
                Some(partial),
                format!("cannot write the download: {e}"),
            )))
        };
        self.with_tries(label, observer, |observer| {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(partial)
                .map_err(local)?;
            let mut have = file.metadata().map_err(local)?.len();
            if have > size {
                file.set_len(0).map_err(local)?;
                have = 0;
            }
            if have < size {
                let response =
                    self.send(self.follow.get(url).set("Range", &format!("bytes={have}-")))?;
                if response.status() != 206 || range_start(&response) != Some(have) {
                    // The whole file came: what is there is no prefix of it.
                    file.set_len(0).map_err(local)?;
                    have = 0;
                }
                file.seek(SeekFrom::End(0)).map_err(local)?;
                observer.start(label, size);
                observer.advance(have);
                let copied = copy_body(response.into_reader(), &mut file, size - have, observer);
                observer.done();
                have = file.metadata().map_err(local)?.len();
                match copied {
                    Err(Copy::Read(e)) => {
                        return Err(TryFailure::Again(format!(
                            "broke off after {have} of {size} bytes ({e})"
                        )))
                    }
                    Err(Copy::Write(e)) => return Err(local(e)),
                    Ok(()) => {}
                }
            }
            match have.cmp(&size) {
                std::cmp::Ordering::Equal => Ok(()),
                std::cmp::Ordering::Less => Err(TryFailure::Again(format!(
                    "broke off after {have} of {size} bytes"
                ))),
                std::cmp::Ordering::Greater => {
                    file.set_len(0).map_err(local)?;
                    Err(TryFailure::Again(format!(
                        "sent more than the {size} bytes it announced"
                    )))
                }
            }
        })
    }

    /// Runs `attempt` up to [`TRIES`] times, pausing 1 s, then 2 s (never longer than the
    /// timeout) between tries and telling the observer why.
    fn with_tries<T>(
        &self,
        what: &str,
        observer: &mut dyn DownloadObserver,
        mut attempt: impl FnMut(&mut dyn DownloadObserver) -> std::result::Result<T, TryFailure>,
    ) -> Outcome<T> {
        let mut pause = Duration::from_secs(1).min(self.timeout);
        for tried in 1..=TRIES {
            match attempt(observer) {
                Ok(value) => return Ok(value),
                Err(TryFailure::Final(failure)) => return Err(failure),
                Err(TryFailure::Again(reason)) if tried == TRIES => {
                    return Err(Failure::Unreachable(format!(
                        "the hub at {} gave no usable answer for {what} in {TRIES} tries (last: \
                         {reason})",
                        self.endpoint
                    )));
                }
                Err(TryFailure::Again(reason)) => {
                    observer.note(&format!(
                        "the hub at {} {reason}; trying again in {} s",
                        self.endpoint,
                        pause.as_secs_f64()
                    ));
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(self.timeout);
                }
            }
        }
        unreachable!("the last try returns")
    }

    /// Sends a request with the token; sorts out the failures.
    fn send(&self, request: ureq::Request) -> std::result::Result<ureq::Response, TryFailure> {
        let request = match &self.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        };
        tracing::debug!("GET {}", request.url());
        match request.call() {
            Ok(response) => Ok(response),
            // Nothing listens there, or the name does not resolve: no try would do better.
            Err(ureq::Error::Transport(t)) if refused(&t) => {
                Err(TryFailure::Final(Failure::Unreachable(format!(
                    "the hub at {} could not be reached ({t})",
                    self.endpoint
                ))))
            }
            Err(ureq::Error::Transport(t)) => Err(TryFailure::Again(no_answer(&t, self.timeout))),
            Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 => {
                Err(TryFailure::Again(format!("answered {code}")))
            }
            Err(ureq::Error::Status(code, response)) => {
                Err(TryFailure::Final(Failure::Other(self.error(match code {
                    401 | 403 => "access denied: set HF_TOKEN for a gated or private repo".into(),
                    404 => "no such repo, revision or file on the hub".into(),
                    _ => format!("the hub answered {code} for {}", response.get_url()),
                }))))
            }
        }
    }

    fn error(&self, message: String) -> Error {
        Error::new(Kind::Model, None, format!("model {}: {message}", self.repo))
    }
}

/// Whether a request failed for good: the name does not resolve or the connection is refused.
fn refused(t: &ureq::Transport) -> bool {
    t.kind() == ureq::ErrorKind::Dns
        || std::error::Error::source(t)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Why a request got no answer, in words.
fn no_answer(t: &ureq::Transport, timeout: Duration) -> String {
    let timed_out = std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        });
    if timed_out {
        format!("did not answer within {} s", timeout.as_secs_f64())
    } else {
        format!("could not be reached ({t})")
    }
}

/// Which side of a copy failed.
enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies at most `limit` bytes of a body into `file`; what came before a read timed out or
/// broke off stays, for the next try to resume.
fn copy_body(
    body: impl Read,
    file: &mut File,
    limit: u64,
    observer: &mut dyn DownloadObserver,
) -> std::result::Result<(), Copy> {
    let mut body = body.take(limit);
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        file.write_all(&buffer[..n]).map_err(Copy::Write)?;
        observer.advance(n as u64);
    }
}

/// The total size a `Content-Range: bytes a-b/total` header gives, else the body's length.
fn total_size(response: &ureq::Response) -> Option<u64> {
    match response.header("content-range") {
        Some(range) => range.rsplit('/').next()?.trim().parse().ok(),
        None => response.header("content-length")?.trim().parse().ok(),
    }
}

/// Where a 206 answer's `Content-Range: bytes a-b/total` starts.
fn range_start(response: &ureq::Response) -> Option<u64> {
    let range = response.header("content-range")?.trim();
    let (start, _) = range.strip_prefix("bytes ")?.split_once('-')?;
    start.trim().parse().ok()
}

/// A URL path segment: unreserved characters as they are, every other byte as %XX.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode("model-0.safetensors"), "model-0.safetensors");
        assert_eq!(encode("a b"), "a%20b");
    }
}
