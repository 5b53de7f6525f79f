//! The HTTP routes: `POST /v1/chat/completions` (a JSON completion, or server-sent events
//! with `stream: true`), `GET /v1/models`, `GET /health`; anything else is an OpenAI-shaped
//! 404 or 405. A completion takes a place in the queue, then is read and checked, its video
//! opened, and queued for the worker; a request that finds the queue full is answered 429
//! before its body is read.

use super::api::{Answered, Delta, Head, ModelCard, ModelList};
use super::auth::require_key;
use super::errors::ApiError;
use super::request::{check, Checked, Limits};
use super::video_source;
use super::worker::{Event, Job};
use super::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tower_http::catch_panic::CatchPanicLayer;

pub const HEALTH: &str = "/health";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route(HEALTH, get(health))
        .fallback(|| async {
            ApiError::not_found("no such route: the API is under /v1").into_response()
        })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_key,
        ))
        .layer(DefaultBodyLimit::max(state.max_request_bytes))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// A handler that panics is answered 500 in OpenAI's shape rather than with a dropped
/// connection; the panic's message goes to the log (stderr), not to the client.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!("a request's handler panicked: {what}");
    ApiError::internal("the server failed while answering this request").into_response()
}

/// 200 once the model is loaded; 503 while it loads and once the server is shutting down,
/// so that a load balancer sends requests elsewhere.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.availability() {
        Ok(()) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: [ModelCard {
            id: state.model.clone(),
            object: "model",
            created: state.started,
            owned_by: "apollo",
        }],
    })
}

/// Sets the job's cancel flag when dropped: when the handler's future is dropped (its client
/// went away) or the stream's body is (the same, mid-stream).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn chat_completions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match completion(state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn completion(state: Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    state.availability()?;
    // A place in the queue before the body is read: a busy server refuses at once, and the
    // bodies in memory are at most the queue's (each within --max-request-size).
    let permit = state.jobs.try_reserve().map_err(|e| match e {
        TrySendError::Full(()) => ApiError::queue_full(state.retry_after()),
        TrySendError::Closed(()) => shutting_down(),
    })?;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(format!(
                "the request is larger than the server takes ({} bytes, --max-request-size)",
                state.max_request_bytes
            )),
            _ => ApiError::bad_request(format!("cannot read the request: {}", e.body_text())),
        })?;
    let limits = Limits {
        defaults: &state.defaults,
        seed: state.seed,
        model: &state.model,
        vocab_size: state.vocab_size,
    };
    let Checked {
        conversation,
        options,
        seed_asked,
        stream,
        include_usage,
    } = check(&body, &limits)?;
    drop(body);
    let policy = state.policy.clone();
    let url = conversation.video_url.clone();
    let video = tokio::task::spawn_blocking(move || video_source::open(&url, &policy))
        .await
        .map_err(|e| ApiError::internal(format!("reading the video failed: {e}")))??;
    let head = Head {
        id: format!("chatcmpl-{:024x}", rand::random::<u128>() >> 32),
        created: super::now(),
        model: state.model.clone(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(Arc::clone(&cancel));
    let (events, mut received) = mpsc::unbounded_channel();
    permit.send(Job {
        id: head.id.clone(),
        video,
        conversation,
        options,
        seed_asked,
        stream,
        events,
        cancel,
    });
    if !stream {
        return loop {
            match received.recv().await {
                Some(Event::Started | Event::Text(_)) => continue,
                Some(Event::Done(record)) => {
                    break Ok(Json(head.completion(Answered::from(*record))).into_response())
                }
                Some(Event::Failed(e)) => break Err(e),
                None => break Err(worker_gone()),
            }
        };
    }
    // The status is decided once the video is encoded and the prompt known to fit: a request
    // that fails before then gets its error as a status, as without streaming.
    match received.recv().await {
        Some(Event::Started) => {}
        Some(Event::Failed(e)) => return Err(e),
        _ => return Err(worker_gone()),
    }
    let events = chunks(head, received, guard, include_usage);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The stream's events: the role, each piece of text, the finish (and the usage), then
/// `[DONE]`; an error after the first event is an `{"error": ...}` event, as OpenAI sends it.
fn chunks(
    head: Head,
    received: mpsc::UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    include_usage: bool,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    let role = Delta {
        role: Some("assistant"),
        content: Some(String::new()),
    };
    let first = json(&head.chunk(role, None));
    let rest = stream::unfold(Some((received, guard)), move |open| {
        let head = head.clone();
        async move {
            let (mut received, guard) = open?;
            let (events, next) = match received.recv().await {
                Some(Event::Text(text)) => {
                    let delta = Delta {
                        role: None,
                        content: Some(text),
                    };
                    (
                        vec![json(&head.chunk(delta, None))],
                        Some((received, guard)),
                    )
                }
                Some(Event::Started) => (Vec::new(), Some((received, guard))),
                Some(Event::Done(record)) => {
                    let last = head.last_chunks(Answered::from(*record), include_usage);
                    (last.iter().map(json).chain([done()]).collect(), None)
                }
                Some(Event::Failed(e)) => (vec![json(&e.body()), done()], None),
                None => (vec![json(&worker_gone().body()), done()], None),
            };
            Some((stream::iter(events), next))
        }
    });
    stream::once(async move { first })
        .chain(rest.flatten())
        .map(Ok)
}

fn json(value: &impl serde::Serialize) -> sse::Event {
    sse::Event::default().data(serde_json::to_string(value).expect("plain fields serialise"))
}

fn done() -> sse::Event {
    sse::Event::default().data("[DONE]")
}

fn shutting_down() -> ApiError {
    ApiError::unavailable("the server is shutting down", "shutting_down")
}

fn worker_gone() -> ApiError {
    ApiError::internal("the model's worker stopped before answering")
}

impl AppState {
    /// Whether requests are taken now.
    fn availability(&self) -> Result<(), ApiError> {
        if self.closing.load(Ordering::Relaxed) {
            Err(shutting_down())
        } else if !self.ready.load(Ordering::Relaxed) {
            Err(ApiError::unavailable(
                "the model is loading",
                "model_loading",
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_in_openais_shape() {
        let app: Router = Router::new()
            .route("/boom", get(|| async { panic!("boom") as &'static str }))
            .layer(CatchPanicLayer::custom(panicked));
        let request = Request::builder()
            .uri("/boom")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "server_error");
        assert!(!body["error"]["message"].as_str().unwrap().contains("boom"));
    }
}
