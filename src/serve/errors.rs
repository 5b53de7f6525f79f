//! Every failure as OpenAI's API answers it: a status and
//! `{"error": {"message", "type", "param", "code"}}`, never a dropped connection.

use crate::error::{Error, Kind};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: invalid_request_error, authentication_error, ...
    pub kind: &'static str,
    /// The request field at fault, when there is one.
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// A field of the request out of range or of the wrong form.
    pub fn invalid(param: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            param: Some(param),
            ..Self::bad_request(format!("{param}: {message}"))
        }
        .code("invalid_value")
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "a valid API key is needed: send it as the header Authorization: Bearer KEY",
        )
        .code("invalid_api_key")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "this route does not take that method",
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            message,
        )
        .code("request_too_large")
    }

    pub fn queue_full(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "the server is busy: every place in its queue is taken; try again later",
            )
        }
        .code("queue_full")
    }

    pub fn unavailable(message: impl Into<String>, code: &'static str) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
        }
        .code(code)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// A failure of apollo's own while answering about the video that `label` names: the
    /// request's fault (a video that cannot be read, a conversation too long) or the server's.
    pub fn answering(e: &Error, label: &str) -> Self {
        let message = Error {
            path: None,
            ..e.clone()
        }
        .to_string();
        match e.kind {
            Kind::Usage => Self::bad_request(message),
            Kind::Input => Self::bad_request(format!("{label}: {message}")).code("invalid_video"),
            Kind::Runtime | Kind::Model | Kind::NonFinite | Kind::OutputClosed => {
                Self::internal(message)
            }
        }
    }

    /// The error object alone, as a stream's error event carries it.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Detail {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        })
        .expect("plain fields serialise")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn errors_have_openais_shape_and_headers() {
        let response = ApiError::queue_full(3).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let e = ApiError::invalid("top_p", "expected a number above 0 and at most 1");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {
                "message": "top_p: expected a number above 0 and at most 1",
                "type": "invalid_request_error",
                "param": "top_p",
                "code": "invalid_value"
            }})
        );
        let response = ApiError::unauthorized().into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn apollos_errors_map_to_the_requests_fault_or_the_servers() {
        let input = Error::input(Path::new("/tmp/.tmpX"), "no video stream");
        let e = ApiError::answering(&input, "the data: URL's video");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "the data: URL's video: no video stream");
        let e = ApiError::answering(&Error::runtime(None, "model: shapes"), "v.mp4");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
