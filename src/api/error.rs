//! The one place where failures become HTTP responses, in Toxiproxy's error shape:
//! `{"error": "<message>", "status": <code>}`.

use crate::registry;
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
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use registry::Error::*;
        match self {
            ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Registry(e) => match e {
                ProxyNotFound | ToxicNotFound => StatusCode::NOT_FOUND,
                ProxyExists | ToxicExists => StatusCode::CONFLICT,
                MissingName
                | MissingUpstream
                | MissingInPopulate { .. }
                | InvalidStream
                | InvalidToxicType
                | Invalid(_) => StatusCode::BAD_REQUEST,
                Listen(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The error body, with extra fields (populate adds the proxies it processed).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.to_string(), "status": self.status().as_u16()})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}
