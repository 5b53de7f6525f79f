//! Running the `apollo` binary as a hostile user's input would: under a time limit, with
//! whatever bytes come back, judged against the failure contract (a documented exit code,
//! one stderr line naming the file, nothing on stdout) and never a panic, hang or signal.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one run may take before it counts as a hang.
pub const LIMIT: Duration = Duration::from_secs(20);

/// How one run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` when a signal ended it or it was killed for taking too long.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Lossy where it is not UTF-8, which `utf8` then says.
    pub stdout: String,
    pub stderr: String,
    utf8: bool,
}

/// Runs `apollo <args>` in `dir`, killing it after [`LIMIT`].
pub fn run_apollo<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Outcome {
    let mut child = Command::new(super::binary())
        .args(args)
        .current_dir(dir)
        // Never the network, whatever the machine running the tests has set.
        .env("HF_HUB_OFFLINE", "1")
        .env("APOLLO_NO_CACHE", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the apollo binary runs");
    // Read both pipes while waiting, so that a full pipe never passes for a hang.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)
                .map(|_| bytes)
                .unwrap_or_default()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status, false);
        }
        if start.elapsed() > LIMIT {
            child.kill().unwrap();
            break (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    Outcome {
        code: status.code().filter(|_| !timed_out),
        signal: status.signal().filter(|_| !timed_out),
        timed_out,
        utf8: std::str::from_utf8(&stdout).is_ok() && std::str::from_utf8(&stderr).is_ok(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Outcome {
    /// What is wrong with how the run ended, if anything: a hang, a signal, a panic, an
    /// exit code other than 0 (success) or 3 (bad input), or output that is not UTF-8.
    pub fn crash(&self) -> Option<String> {
        if self.timed_out {
            return Some(format!("no answer within {LIMIT:?}"));
        }
        if let Some(signal) = self.signal {
            return Some(format!("killed by signal {signal}"));
        }
        if self.code == Some(101) || self.stderr.contains("panicked") {
            return Some(format!("panicked: {}", self.stderr.trim()));
        }
        match self.code {
            _ if !self.utf8 => Some(format!("output that is not UTF-8: {self}")),
            Some(0 | 3) => None,
            code => Some(format!("exit {code:?}: {}", self.stderr.trim())),
        }
    }

    /// What is wrong with a refusal of `name`: exit 3, nothing on stdout, and exactly one
    /// stderr line, `apollo: <name>: <reason>`, whose reason contains `reason`.
    pub fn refusal_problem(&self, name: &Path, reason: &str) -> Option<String> {
        if let Some(crash) = self.crash() {
            return Some(crash);
        }
        // Messages quote the file as Rust writes strings.
        let prefix = format!("apollo: {name:?}: ");
        if self.code != Some(3) {
            Some(format!("not refused: {self}"))
        } else if !self.stdout.is_empty() {
            Some(format!("stdout is not empty: {self}"))
        } else if self.stderr.lines().count() != 1 || !self.stderr.starts_with(&prefix) {
            Some(format!("not one line naming the file: {:?}", self.stderr))
        } else if !self.stderr.contains(reason) {
            Some(format!("{:?} does not say {reason:?}", self.stderr.trim()))
        } else {
            None
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (out, err) = (&self.stdout, &self.stderr);
        write!(f, "exit {:?}, stdout {out:?}, stderr {err:?}", self.code)
    }
}

/// Runs `check` on every item on two threads (the tests' machine has two cores), and
/// returns what it found wrong, item by item.
pub fn check_all<T: Sync>(items: &[T], check: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Some(problem) = check(item) {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    problems.into_inner().unwrap()
}
