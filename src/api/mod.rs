//! The control plane: Toxiproxy's v2 REST API, plus faultline's metrics and events.
//!
//! - [`routes`]: one handler per endpoint, each a thin translation to a registry call;
//! - [`models`]: the JSON read and written, with Go's decoding leniency;
//! - [`error`]: the single mapping from failures to status codes and error bodies.

pub mod error;
pub mod metrics;
pub mod models;
pub mod routes;

use crate::registry::Registry;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Fires when the server shuts down, so long-lived responses (event streams) end.
    pub shutdown: CancellationToken,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/proxies",
            get(routes::list_proxies).post(routes::create_proxy),
        )
        .route(
            "/proxies/{proxy}",
            get(routes::get_proxy)
                .post(routes::update_proxy)
                .patch(routes::update_proxy)
                .delete(routes::delete_proxy),
        )
        .route("/proxies/{proxy}/stats", get(routes::proxy_stats))
        .route(
            "/proxies/{proxy}/toxics",
            get(routes::list_toxics).post(routes::create_toxic),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(routes::get_toxic)
                .post(routes::update_toxic)
                .patch(routes::update_toxic)
                .delete(routes::delete_toxic),
        )
        .route("/populate", post(routes::populate))
        .route("/reset", post(routes::reset))
        .route("/version", get(routes::version))
        .route("/metrics", any(metrics::metrics))
        .route("/events", get(routes::events))
        .fallback(not_found)
        .layer(middleware::from_fn(block_browsers))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Go's plain-text 404, which clients see for unknown paths (including trailing slashes).
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// Toxiproxy refuses browsers, so a web page cannot drive the API of a developer's machine
/// through their browser (CSRF); other clients send their own user agents.
async fn block_browsers(request: Request, next: Next) -> Response {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"Mozilla/"));
    if from_browser {
        return (
            StatusCode::FORBIDDEN,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            "User agent not allowed\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Tags every response with an `X-Toxiproxy-Request-Id`, as Toxiproxy does, for log matching.
async fn request_id(request: Request, next: Next) -> Response {
    let id = new_request_id();
    tracing::debug!(request_id = %id, method = %request.method(), uri = %request.uri(), "request");
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert("x-toxiproxy-request-id", value);
    }
    response
}

/// A 20-character id in the style of the xid ids Toxiproxy uses: time, randomness, counter.
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let noise: u64 = rand::random();
    let mut bits = (u128::from(secs as u32) << 68)
        | (u128::from(noise & 0xf_ffff_ffff) << 32)
        | u128::from(count as u32);
    let mut id = [0u8; 20];
    for slot in id.iter_mut().rev() {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    String::from_utf8_lossy(&id).into_owned()
}
