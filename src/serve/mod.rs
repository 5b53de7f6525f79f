//! `apollo serve`: an OpenAI-compatible HTTP server for questions about videos (the chat
//! completions API with vLLM's `video_url` parts), on tokio and axum.
//!
//! One model on one device: a single worker thread owns it ([`worker`]) and answers requests
//! one at a time, in the order they came; they wait in a bounded queue, and a request that
//! finds it full is refused with 429 at once. The HTTP side ([`routes`]) checks each request
//! ([`request`], [`auth`]), reads its video within what the server allows
//! ([`video_source`]), queues it and turns the worker's answer into OpenAI's objects
//! ([`api`]); every failure is an OpenAI-shaped error ([`errors`]). SIGTERM or SIGINT stops
//! taking connections, lets the requests in hand finish, and ends with status 0.

pub mod api;
pub mod auth;
pub mod errors;
pub mod request;
pub mod routes;
pub mod video_source;
pub mod worker;

use crate::cli::args::Answering;
use crate::cli::printer::note;
use crate::error::{Error, ExitStatus, Result};
use crate::generate::run::GenerateOptions;
use auth::ApiKey;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot, Notify};
use video_source::Policy;
use worker::{Job, Worker};

/// How the server runs, from `apollo serve`'s flags.
pub struct Config {
    pub host: String,
    pub port: u16,
    pub api_key: Option<String>,
    pub policy: Policy,
    /// Requests that may wait while one is answered.
    pub max_queue: usize,
    pub max_request_bytes: usize,
    pub quiet: bool,
}

/// The server's log: a line per request and per event on stderr, none with `-q`.
pub struct Log {
    pub quiet: bool,
}

impl Log {
    pub fn line(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            note(format!("apollo serve: {line}"));
        }
    }
}

/// What every request handler shares.
pub struct AppState {
    /// The model's name, as `/v1/models` lists it and requests name it.
    pub model: String,
    /// When the server started, in Unix seconds.
    pub started: u64,
    pub defaults: GenerateOptions,
    /// `--seed`, for requests without a seed.
    pub seed: Option<u64>,
    pub vocab_size: usize,
    pub api_key: Option<ApiKey>,
    pub policy: Policy,
    pub max_request_bytes: usize,
    pub jobs: mpsc::Sender<Job>,
    /// The model is loaded.
    pub ready: AtomicBool,
    /// A signal came: no new work.
    pub closing: AtomicBool,
    /// A recent request's time in the worker (a moving average, ms), for `Retry-After`.
    job_ms: AtomicU64,
    max_queue: usize,
    /// Told when the worker thread ends before the server does (a panic).
    worker_gone: Notify,
    pub log: Log,
}

impl AppState {
    /// The worker answered a request in `took`.
    pub fn finished(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        let old = self.job_ms.load(Ordering::Relaxed);
        self.job_ms.store((old * 3 + ms) / 4, Ordering::Relaxed);
    }

    /// Seconds until a place in the full queue is likely free: the queue's worth of requests
    /// at the recent pace, 1 to 60.
    pub fn retry_after(&self) -> u64 {
        let queued_ms = self.job_ms.load(Ordering::Relaxed) * (self.max_queue as u64 + 1);
        queued_ms.div_ceil(1000).clamp(1, 60)
    }
}

/// Unix time in seconds, as OpenAI's `created`.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves `session`'s model until a signal stops it.
pub fn run(session: Answering, config: Config) -> Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(None, format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(serve(session, config))
}

async fn serve(session: Answering, config: Config) -> Result<ExitStatus> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| {
            Error::usage(format!(
                "cannot listen on {}:{}: {e}",
                config.host, config.port
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::runtime(None, format!("cannot read the listening address: {e}")))?;
    let cannot_handle =
        |e: std::io::Error| Error::runtime(None, format!("cannot handle signals: {e}"));
    let signals = [
        signal(SignalKind::terminate()).map_err(cannot_handle)?,
        signal(SignalKind::interrupt()).map_err(cannot_handle)?,
    ];
    let (jobs, queue) = mpsc::channel(config.max_queue);
    let pipeline = &session.pipeline;
    let state = Arc::new(AppState {
        model: session.run.model.clone(),
        started: now(),
        defaults: session.options.clone(),
        seed: session.settings().seed_asked,
        vocab_size: pipeline.checkpoint().config.llm.vocab_size,
        api_key: config.api_key.as_deref().map(ApiKey::new),
        policy: config.policy,
        max_request_bytes: config.max_request_bytes,
        jobs,
        ready: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        job_ms: AtomicU64::new(0),
        max_queue: config.max_queue,
        worker_gone: Notify::new(),
        log: Log {
            quiet: config.quiet,
        },
    });
    let described = format!(
        "{} on {} ({})",
        session.run.model, session.run.device, session.run.dtype
    );
    let (loaded, load) = oneshot::channel();
    let watched = Arc::clone(&state);
    let thread = std::thread::Builder::new()
        .name("apollo-model".into())
        .spawn(move || {
            let _gone = TellWhenGone(Arc::clone(&watched));
            // Made here: what it holds of a video (ffmpeg's decoder) stays on this thread.
            Worker::new(session, watched).run(queue, loaded);
        })
        .map_err(|e| Error::runtime(None, format!("cannot start the model's thread: {e}")))?;
    let app = routes::router(Arc::clone(&state));
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stopping(Arc::clone(&state), signals))
        .into_future();
    let mut server = tokio::spawn(server);
    tokio::select! {
        // First: a load that failed ends the thread, which stops the server too.
        biased;
        loaded = load => match loaded {
            // Even with -q: with --port 0 it is the only place the port is told.
            Ok(Ok(())) => note(format!("apollo serve: ready at http://{address}, serving {described}")),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::runtime(None, "the model's thread stopped while loading")),
        },
        // A signal while the model loads: nothing is in hand.
        _ = &mut server => {
            state.log.line("stopped before the model was loaded");
            return Ok(ExitStatus::Success);
        }
    }
    server
        .await
        .map_err(|e| Error::runtime(None, format!("the server failed: {e}")))?
        .map_err(|e| Error::runtime(None, format!("the server failed: {e}")))?;
    if thread.is_finished() && !state.closing.load(Ordering::Relaxed) {
        return Err(Error::runtime(None, "the model's thread stopped"));
    }
    state.log.line("stopped");
    Ok(ExitStatus::Success)
}

/// Wakes the server when the worker thread ends, as it does only when it panics while the
/// server runs: the server then stops rather than answer every request with an error.
struct TellWhenGone(Arc<AppState>);

impl Drop for TellWhenGone {
    fn drop(&mut self) {
        self.0.ready.store(false, Ordering::Relaxed);
        self.0.worker_gone.notify_one();
    }
}

/// Completes on the first SIGTERM or SIGINT (or the worker's end), after which the server
/// takes no new connection and finishes those in hand; a second signal ends it at once.
async fn stopping(state: Arc<AppState>, [mut term, mut int]: [Signal; 2]) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = state.worker_gone.notified() => {
            state.log.line("the model's thread stopped: shutting down");
            return;
        }
    }
    state.closing.store(true, Ordering::Relaxed);
    state
        .log
        .line("shutting down: finishing the requests in hand (a second signal stops at once)");
    let log = Arc::clone(&state);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        log.log.line("stopped at once");
        std::process::exit(ExitStatus::Failure.code().into());
    });
}
