//! `apollo serve` under test: started on a free loopback port (`--port 0`, the port read from
//! its ready line), its stderr collected line by line, stopped when dropped; and the clients
//! the tests talk to it with: curl and the official `openai` Python package (in the virtual
//! environment scripts/setup.sh makes).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `apollo serve --port 0 <args>` with the tiny checkpoint unless `args` name a model,
    /// once ready.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(super::apollo_process(), args)
    }

    /// [`Server::start`] with the encoded-video cache on in `dir`, as `apollo_cached` has it.
    pub fn start_cached(dir: &Path, args: &[&str]) -> Server {
        let mut cmd = super::apollo_process();
        cmd.env_remove("APOLLO_NO_CACHE")
            .env_remove("APOLLO_CACHE_MAX")
            .env("APOLLO_CACHE_DIR", dir);
        Self::start_with(cmd, args)
    }

    fn start_with(mut cmd: Command, args: &[&str]) -> Server {
        cmd.arg("serve").args(["--port", "0"]);
        if !args.contains(&"--model-dir") {
            cmd.args(["--model-dir", &super::tiny()]);
        }
        let mut child = cmd
            .args(args)
            .env_remove("APOLLO_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("apollo serve starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        let ready = server.wait_for_log("the ready line", Duration::from_secs(60), |l| {
            l.starts_with("apollo serve: ready at http://")
        });
        let address = ready
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap();
        assert!(address.starts_with("127.0.0.1:"), "{ready}");
        server.base = format!("http://{address}");
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stderr lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The first stderr line that satisfies `wanted`, waiting up to `limit` for it.
    pub fn wait_for_log(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.log().into_iter().find(|l| wanted(l)) {
                return line;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "apollo serve ended ({status}) before {what}: {:?}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no {what} in {limit:?}: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. "TERM") to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the server to end.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "still running after {limit:?}: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A memory figure of the server's from /proc, in KiB: "VmRSS" (resident now) or
    /// "VmHWM" (the most it was resident).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer as curl got it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

const NO_CURL: &str = "curl is needed: run scripts/setup.sh (or apt-get install curl)";

/// `curl -s -i <args>`: the status, headers and body of the last answer.
pub fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "120"])
        .args(args)
        .output()
        .expect(NO_CURL);
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `curl -sN` posting `body` to `url`, running: its stdout gives the answer as it comes
/// (server-sent events, line by line); killing it is a client going away.
pub fn curl_streaming(url: &str, body: &str) -> Child {
    Command::new("curl")
        .args([
            "-sN",
            "--max-time",
            "300",
            "-H",
            "Content-Type: application/json",
        ])
        .args([url, "-d", body])
        .stdout(Stdio::piped())
        .spawn()
        .expect(NO_CURL)
}

/// The `data:` payloads of server-sent events, `[DONE]` included.
pub fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// The Python with the `openai` package: APOLLO_TEST_PYTHON, else the virtual environment
/// scripts/setup.sh makes in .cache/py. Its absence fails the test, with how to fix it.
pub fn python() -> PathBuf {
    let python = std::env::var_os("APOLLO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/py/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import openai: run scripts/setup.sh (it makes .cache/py with the openai \
         package), or point APOLLO_TEST_PYTHON at a Python that has it",
        python.display()
    );
    python
}
