//! The live web dashboard: `GET /ui` and its two static files, written for faultline and
//! compiled into the binary (no CDN, works offline), and `GET /` sending browsers there.
//!
//! The page itself holds no data: it reads and changes everything through the REST API and
//! `/events`, with the same token and the same guards as any other client (see
//! `crate::api::browser_guard` for how its requests pass Toxiproxy's browser rule).

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Scripts and styles only from this server, no framing by other sites (clickjacking), and
/// connections only back to this API.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// The dashboard's routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/ui/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/ui/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The files change only with the binary; revalidating each load costs nothing locally.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Browsers asking for `/` get the dashboard; other clients get the API's usual 404.
async fn root(request: Request) -> Response {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"Mozilla/"));
    if from_browser {
        Redirect::to("/ui").into_response()
    } else {
        crate::api::not_found(request).await
    }
}
