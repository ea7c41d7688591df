//! The one place where failures become HTTP responses, in Toxiproxy's error shape:
//! `{"error": "<message>", "status": <code>}`.
//!
//! Toxiproxy's exact messages are kept where published clients or their tests compare them
//! (`proxy not found`, `missing required field: name`, the bind errors...); elsewhere the
//! message says, in faultline's words, what was wrong and what is valid.

use crate::registry;
use crate::toxics;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// The body is not JSON, or a field has the wrong type.
    #[error("bad request body: {0}")]
    BadBody(String),
    /// A key that no object of its kind has (strict mode).
    #[error("{0}")]
    UnknownKey(String),
    /// A toxic type that does not exist, or none at all. The message starts with Toxiproxy's
    /// `invalid toxic type`, which clients match on.
    #[error("invalid toxic type {}; expected one of: {}", received_type(.0), type_names())]
    InvalidToxicType(Option<String>),
    /// A token is required and the request has none, or the wrong one.
    #[error("missing or wrong API token: send it as \"Authorization: Bearer TOKEN\" or as HTTP Basic credentials")]
    Unauthorized,
    /// DNS-rebinding protection: a loopback API answers only to loopback host names.
    #[error("Host {0:?} is not allowed: this API listens on a loopback address and answers only to localhost, 127.0.0.1 or [::1]")]
    ForeignHost(String),
    /// The dashboard reached through a host name, with no token to tell it from a page that
    /// rebound its own name to this server.
    #[error("the dashboard needs an API token (--api-token) when opened through a host name, against DNS rebinding; open it at an IP address or localhost, or set a token")]
    DashboardNeedsToken,
    /// RFC 9112 requires `Host` on every HTTP/1.1 request.
    #[error("missing Host header (required by HTTP/1.1)")]
    MissingHost,
    #[error("request body larger than {0} bytes (the limit set by --max-body-bytes)")]
    BodyTooLarge(usize),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("method {method} not allowed on {path}")]
    WrongMethod { method: String, path: String },
}

fn received_type(received: &Option<String>) -> String {
    match received {
        Some(kind) if !kind.is_empty() => format!("\"{kind}\""),
        _ => "(none given)".to_string(),
    }
}

fn type_names() -> String {
    toxics::TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reason a request was refused, attached to its response for the audit log.
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use registry::Error::*;
        match self {
            ApiError::BadBody(_) | ApiError::UnknownKey(_) | ApiError::InvalidToxicType(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MissingHost => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ForeignHost(_) | ApiError::DashboardNeedsToken => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::WrongMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Registry(e) => match e {
                ProxyNotFound | ToxicNotFound => StatusCode::NOT_FOUND,
                ProxyExists | ToxicExists => StatusCode::CONFLICT,
                MissingName
                | MissingUpstream
                | MissingInPopulate { .. }
                | InvalidStream
                | InvalidToxicType
                | HttpToxicOnTcpProxy { .. }
                | Invalid(_) => StatusCode::BAD_REQUEST,
                Listen(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The error body, with extra fields (populate adds the proxies it processed).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.to_string(), "status": self.status().as_u16()})
    }

    /// The response, with an explicit body (populate's carries more fields).
    pub fn respond(&self, body: serde_json::Value) -> Response {
        let message = self.to_string();
        tracing::debug!(status = self.status().as_u16(), reason = %message, "request refused");
        let mut response = (self.status(), Json(body)).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer, Basic realm=\"faultline\""),
            );
        }
        response.extensions_mut().insert(Refusal(message));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown type is named, with every valid type listed after Toxiproxy's words.
    #[test]
    fn invalid_type_names_received_and_valid() {
        let message = ApiError::InvalidToxicType(Some("gremlin".into())).to_string();
        assert!(
            message.starts_with("invalid toxic type \"gremlin\"; expected one of: latency, "),
            "{message}"
        );
        assert!(message.contains("noop"), "{message}");
        let message = ApiError::InvalidToxicType(None).to_string();
        assert!(message.starts_with("invalid toxic type (none given); expected"));
    }
}
