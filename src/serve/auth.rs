//! The API key: with `--api-key` (or APOLLO_API_KEY) every request but `GET /health` (which
//! load balancers probe without credentials, and which tells nothing but readiness) needs
//! `Authorization: Bearer KEY`. Keys are compared as SHA-256 digests in constant time, so
//! that neither the key's bytes nor its length can be timed.

use super::errors::ApiError;
use super::routes::HEALTH;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub struct ApiKey([u8; 32]);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Whether `headers` carry this key as a bearer token.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let Some((scheme, token)) = value.as_bytes().split_first_chunk::<7>() else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token).into();
        scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(digest.ct_eq(&self.0))
    }
}

/// Middleware: 401 for a request without the key, when there is one.
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match &state.api_key {
        Some(key) if request.uri().path() != HEALTH && !key.admits(request.headers()) => {
            ApiError::unauthorized().into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_bearer_key_is_admitted() {
        let key = ApiKey::new("s3cret");
        assert!(key.admits(&with("Bearer s3cret")));
        assert!(key.admits(&with("bearer s3cret")));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret ",
            "Basic s3cret",
            "s3cret",
            "Bearer",
        ] {
            assert!(!key.admits(&with(wrong)), "{wrong}");
        }
        assert!(!key.admits(&HeaderMap::new()));
    }
}
