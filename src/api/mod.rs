//! The control plane: Toxiproxy's v2 REST API, plus faultline's metrics, events and OpenAPI
//! document.
//!
//! - [`routes`]: one handler per endpoint, each a thin translation to a registry call;
//! - [`models`]: the JSON read and written; [`fields`]: which keys each object may carry;
//! - [`guard`]: who may call (token, `Host`, browsers) and how much they may send;
//! - [`audit`]: every change on record, in the log and in `/events`;
//! - [`experiments`]: an experiment runner's progress, passed on to `/events` and kept for
//!   the recent runs;
//! - [`openapi`]: the API's description, served at `/openapi.json`;
//! - [`error`]: the single mapping from failures to status codes and error bodies.

pub mod audit;
pub mod browser_guard;
pub mod error;
pub mod experiments;
pub mod fields;
pub mod guard;
pub mod listener;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod routes;
pub mod toxic_types;

use crate::registry::Registry;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, post, MethodRouter};
use axum::Router;
use error::ApiError;
use fields::UnknownKeys;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// The largest request body accepted by default (the API's bodies are small JSON documents).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How the API treats its callers, set by the server's flags.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// What to do with unknown JSON keys (`--lenient` ignores them).
    pub unknown_keys: UnknownKeys,
    /// When set, every endpoint but `GET /version` requires it (`--api-token`).
    pub token: Option<String>,
    /// Larger request bodies get a 413 (`--max-body-bytes`).
    pub max_body_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            unknown_keys: UnknownKeys::Reject,
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Fires when the server shuts down, so long-lived responses (event streams) end.
    pub shutdown: CancellationToken,
    pub options: Arc<ApiOptions>,
    /// Whether the API listens on a loopback address only (DNS-rebinding protection applies).
    pub loopback: bool,
    /// The recent experiment runs' events, for `GET /experiments/events`.
    pub experiments: Arc<experiments::History>,
}

/// The API's routes, recorded as they are added so the OpenAPI document can be checked
/// against them.
struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn route(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, methods);
        self.paths.push(path);
        self
    }
}

fn routes() -> Routes {
    Routes {
        router: Router::new(),
        paths: Vec::new(),
    }
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
    // Toxiproxy answers /metrics on any method; the standard ones are enough for every client.
    .route("/metrics", on(metrics::METHODS, metrics::metrics))
    .route("/events", get(routes::events))
    .route(
        "/experiments/events",
        get(experiments::history).post(experiments::publish),
    )
    .route("/toxic-types", get(toxic_types::toxic_types))
    .route("/openapi.json", get(routes::openapi))
}

/// Every path the router serves, in axum's (and OpenAPI's) `{param}` syntax.
pub fn route_paths() -> Vec<&'static str> {
    routes().paths
}

/// The API's routes, behind its guard and audit log.
pub fn router(state: AppState) -> Router {
    routes()
        .router
        .merge(crate::ui::router())
        .method_not_allowed_fallback(wrong_method)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Unknown paths (trailing slashes included) get the usual JSON error body.
pub(crate) async fn not_found(request: Request) -> Response {
    ApiError::NoRoute(request.uri().path().to_string()).into_response()
}

async fn wrong_method(request: Request) -> Response {
    ApiError::WrongMethod {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
    }
    .into_response()
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
