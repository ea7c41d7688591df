//! Who may call the API, and how much they may send: one middleware, run before any handler.
//!
//! In order: the `Host` check (DNS rebinding: a web page whose name resolves to 127.0.0.1
//! must not reach a loopback API), Toxiproxy's browser guard (CSRF from a web page), the
//! token (when one is set), then the body size limit. Every refusal is the usual JSON error
//! body except the browser guard's, which keeps Toxiproxy's exact response.

use super::audit;
use super::browser_guard;
use super::error::{ApiError, Refusal};
use super::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Refuses what may not reach a handler, on record ([`audit::guard_refused`]); buffers the
/// body of what may.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let seen = audit::Seen::of(&mut parts).await;
    match screen(&state, Request::from_parts(parts, body)).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => audit::guard_refused(&state, &seen, refusal),
    }
}

/// The checks, in order; the request with its body buffered, or the refusal.
async fn screen(state: &AppState, request: Request) -> Result<Request, Response> {
    if let Err(refusal) = check_host(request.version(), request.headers(), state.loopback) {
        return Err(refusal.into_response());
    }
    if let Some(refusal) = refuse_browsers(&request, state.options.token.is_some()) {
        return Err(refusal);
    }
    // The dashboard's static files hold no data; the page asks for the token itself.
    let exempt = (request.method() == Method::GET && request.uri().path() == "/version")
        || browser_guard::is_dashboard_file(request.method(), request.uri().path());
    if let Some(token) = &state.options.token {
        if !exempt && !authorized(request.headers(), token) {
            return Err(ApiError::Unauthorized.into_response());
        }
    }
    limit_body(request, state.options.max_body_bytes)
        .await
        .map_err(IntoResponse::into_response)
}

/// Toxiproxy refuses browsers, so a web page cannot drive the API of a developer's machine
/// through their browser (CSRF); other clients send their own user agents. The dashboard's
/// own requests are exempt ([`browser_guard::verdict`]).
fn refuse_browsers(request: &Request, token_set: bool) -> Option<Response> {
    let (method, path, headers) = (request.method(), request.uri().path(), request.headers());
    match browser_guard::verdict(method, path, headers, token_set) {
        browser_guard::Verdict::Pass => return None,
        browser_guard::Verdict::NeedsToken => {
            return Some(ApiError::DashboardNeedsToken.into_response())
        }
        browser_guard::Verdict::Refuse => {}
    }
    let mut response = (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "User agent not allowed\n",
    )
        .into_response();
    response.extensions_mut().insert(Refusal(
        "browser user agent (Toxiproxy's browser guard refuses User-Agent Mozilla/...)".into(),
    ));
    Some(response)
}

/// HTTP/1.1 requires `Host`; a loopback API answers only to loopback names.
fn check_host(version: Version, headers: &HeaderMap, loopback: bool) -> Result<(), ApiError> {
    let Some(host) = headers.get(header::HOST) else {
        return match version {
            Version::HTTP_09 | Version::HTTP_10 => Ok(()),
            _ => Err(ApiError::MissingHost),
        };
    };
    if !loopback {
        return Ok(());
    }
    let text = String::from_utf8_lossy(host.as_bytes());
    if is_loopback_host(&text) {
        Ok(())
    } else {
        Err(ApiError::ForeignHost(text.into_owned()))
    }
}

/// `localhost`, `*.localhost` (RFC 6761), or a loopback address, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8474`
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The token as `Authorization: Bearer TOKEN`, or as either half of HTTP Basic credentials
/// (what clients send for `http://:TOKEN@host:8474`).
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    let same = |given: &[u8]| bool::from(given.ct_eq(token.as_bytes()));
    if scheme.eq_ignore_ascii_case("bearer") {
        return same(credentials.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
            return false;
        };
        let (user, password) = match decoded.iter().position(|&b| b == b':') {
            Some(i) => (&decoded[..i], &decoded[i + 1..]),
            None => (&decoded[..], &[][..]),
        };
        // Both halves are compared, so which one matched is not told by the timing.
        let user_ok = same(user);
        let password_ok = same(password);
        return user_ok | password_ok;
    }
    false
}

/// How much of a too-large body is read and discarded before the 413, and for how long: a
/// client that sends its whole body before reading the answer then gets the 413 rather than a
/// reset (closing a socket with unread data resets it). Past either bound the connection is
/// simply closed. Nothing discarded is kept, so memory stays bounded.
const DRAIN_BYTES: u64 = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the body up to `limit` bytes; more is a 413.
async fn limit_body(request: Request, limit: usize) -> Result<Request, ApiError> {
    use http_body_util::BodyExt;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client waiting for "100 Continue" has sent nothing yet: refuse it unread, so the body
    // is never sent.
    let waits_to_send = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, mut body) = request.into_parts();
    if announced.is_some_and(|n| n > limit as u64) {
        if !waits_to_send && announced.is_some_and(|n| n <= DRAIN_BYTES) {
            discard(body).await;
        }
        return Err(ApiError::BodyTooLarge(limit));
    }
    let mut read = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::BadBody(format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if read.len() + data.len() > limit {
            discard(body).await;
            return Err(ApiError::BodyTooLarge(limit));
        }
        read.extend_from_slice(&data);
    }
    Ok(Request::from_parts(parts, Body::from(read.freeze())))
}

/// Reads and drops the rest of a refused body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn discard(mut body: Body) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > DRAIN_BYTES {
                return;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// Loopback names and addresses pass, with or without a port; others do not.
    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8474",
            "LOCALHOST.",
            "api.localhost:1",
            "127.0.0.1",
            "127.0.0.1:8474",
            "127.9.9.9:1",
            "[::1]:8474",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "evil.com:8474",
            "localhost.evil.com",
            "10.0.0.1:8474",
            "[::2]:1",
            "0.0.0.0:8474",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    /// The token is accepted as a bearer token or as either half of Basic credentials.
    #[test]
    fn token_forms() {
        assert!(authorized(&with_auth("Bearer s3cret"), "s3cret"));
        assert!(authorized(&with_auth("bearer s3cret"), "s3cret"));
        assert!(authorized(&with_auth(&basic(":s3cret")), "s3cret"));
        assert!(authorized(&with_auth(&basic("s3cret:")), "s3cret"));
        assert!(authorized(&with_auth(&basic("s3cret:x")), "s3cret"));
        assert!(!authorized(&with_auth("Bearer wrong"), "s3cret"));
        assert!(!authorized(&with_auth("Bearer s3cret2"), "s3cret"));
        assert!(!authorized(&with_auth(&basic("a:b")), "s3cret"));
        assert!(!authorized(&with_auth("Basic !!!"), "s3cret"));
        assert!(!authorized(&with_auth("Digest s3cret"), "s3cret"));
        assert!(!authorized(&HeaderMap::new(), "s3cret"));
    }
}
