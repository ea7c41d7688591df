//! Every change on record: each state-changing request (create, update or delete of a proxy or
//! toxic, populate, reset, an experiment's progress) is logged with who asked, what they asked
//! for and what came of it, and published as an `api_request` event on `/events`.
//!
//! Levels follow what a person following a test run needs: changes made at info, failures of
//! the server's own (a port in use) at warn, requests refused at debug: for bad input by a
//! handler, or by the guard (token, `Host`, browser, size) before any handler runs.

use super::error::Refusal;
use super::AppState;
use crate::events::EventData;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The longest request body quoted in a log line or event.
const QUOTED_BODY: usize = 512;

/// What the audit needs of a request, taken before its body is read.
pub struct Seen {
    method: Method,
    path: String,
    remote: Option<String>,
    params: HashMap<String, String>,
}

impl Seen {
    pub async fn of(parts: &mut Parts) -> Seen {
        Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            remote: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.to_string()),
            params: path_params(parts).await,
        }
    }
}

/// Records the state-changing requests that reach a handler.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(action) = action(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let seen = Seen::of(&mut parts).await;
    // The guard has already buffered the body, so reading it again costs a copy at most.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let quoted = quote(&bytes);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    report(&state, action, &seen, quoted, &response);
    response
}

/// Records a request the guard refused (wrong or missing token, foreign or missing `Host`,
/// browser, body too large) like any other refusal: a debug line with the caller, the request
/// and the reason, and, unless it was a read, an `api_request` event. Its body is not quoted:
/// it was never read, or was too large. Nothing of its headers (the token) is recorded.
pub fn guard_refused(state: &AppState, seen: &Seen, response: Response) -> Response {
    let read_only = matches!(seen.method, Method::GET | Method::HEAD | Method::OPTIONS);
    match action(&seen.method, &seen.path) {
        Some(action) => report(state, action, seen, String::new(), &response),
        None if !read_only => report(state, "request", seen, String::new(), &response),
        None => {
            let reason = response.extensions().get::<Refusal>().map(|r| r.0.as_str());
            tracing::debug!(
                remote = %seen.remote.as_deref().unwrap_or("-"), method = %seen.method,
                path = %seen.path, status = response.status().as_u16(),
                reason = reason.unwrap_or(""), "api: request refused"
            );
        }
    }
    response
}

/// The log line and the `api_request` event for one state-changing request and its answer.
fn report(state: &AppState, action: &str, seen: &Seen, quoted: String, response: &Response) {
    let Seen {
        method,
        path,
        remote,
        params,
    } = seen;
    let status = response.status().as_u16();
    let reason = response.extensions().get::<Refusal>().map(|r| r.0.clone());
    let remote_shown = remote.as_deref().unwrap_or("-");
    match status {
        200..=299 => tracing::info!(
            remote = %remote_shown, %method, %path, status, request = %quoted,
            "api: {action}"
        ),
        500.. => tracing::warn!(
            remote = %remote_shown, %method, %path, status, request = %quoted,
            error = reason.as_deref().unwrap_or(""), "api: {action} failed"
        ),
        _ => tracing::debug!(
            remote = %remote_shown, %method, %path, status, request = %quoted,
            reason = reason.as_deref().unwrap_or(""), "api: {action} refused"
        ),
    }
    let mut detail = json!({
        "method": method.as_str(),
        "path": path,
        "action": action,
        "status": status,
    });
    if !quoted.is_empty() {
        detail["request"] = Value::String(quoted);
    }
    if let Some(reason) = reason {
        detail["error"] = Value::String(reason);
    }
    state.registry.events().publish(
        "api_request",
        EventData {
            proxy: params.get("proxy").map(String::as_str),
            toxic: params.get("toxic").map(String::as_str),
            client: remote.clone(),
            detail: Some(detail),
        },
    );
}

/// The path's `{proxy}` and `{toxic}`, percent-decoded.
async fn path_params(parts: &mut Parts) -> HashMap<String, String> {
    match <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(parts, &())
        .await
    {
        Ok(params) => params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => Default::default(),
    }
}

/// What a request changes, in words; `None` for requests that change nothing.
pub fn action(method: &Method, path: &str) -> Option<&'static str> {
    let changes = matches!(*method, Method::POST | Method::PATCH | Method::DELETE);
    if !changes {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let delete = *method == Method::DELETE;
    Some(match segments.as_slice() {
        ["proxies"] if !delete => "create proxy",
        ["proxies", _] if delete => "delete proxy",
        ["proxies", _] => "update proxy",
        ["proxies", _, "toxics"] if !delete => "add toxic",
        ["proxies", _, "toxics", _] if delete => "remove toxic",
        ["proxies", _, "toxics", _] => "update toxic",
        ["populate"] if !delete => "populate",
        ["reset"] if !delete => "reset",
        ["experiments", "events"] if !delete => "experiment event",
        _ => return None,
    })
}

/// The request body as one line, shortened.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() <= QUOTED_BODY {
        return line;
    }
    let mut end = QUOTED_BODY;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state-changing endpoint is named; reads are not.
    #[test]
    fn actions() {
        let cases = [
            (Method::POST, "/proxies", Some("create proxy")),
            (Method::POST, "/proxies/a", Some("update proxy")),
            (Method::PATCH, "/proxies/a", Some("update proxy")),
            (Method::DELETE, "/proxies/a", Some("delete proxy")),
            (Method::POST, "/proxies/a/toxics", Some("add toxic")),
            (Method::PATCH, "/proxies/a/toxics/t", Some("update toxic")),
            (Method::DELETE, "/proxies/a/toxics/t", Some("remove toxic")),
            (Method::POST, "/populate", Some("populate")),
            (Method::POST, "/reset", Some("reset")),
            (
                Method::POST,
                "/experiments/events",
                Some("experiment event"),
            ),
            (Method::GET, "/proxies", None),
            (Method::POST, "/metrics", None),
            (Method::POST, "/version", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(action(&method, path), expected, "{method} {path}");
        }
    }

    /// Long bodies are shortened on a character boundary; whitespace runs become one space.
    #[test]
    fn quoting() {
        assert_eq!(quote(b"{\n  \"a\": 1\n}"), "{ \"a\": 1 }");
        let long = "é".repeat(400);
        let quoted = quote(long.as_bytes());
        assert!(quoted.ends_with("...") && quoted.len() <= QUOTED_BODY + 3);
    }
}
