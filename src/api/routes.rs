//! One handler per endpoint. Each parses its input, makes one registry call and writes the
//! result in Toxiproxy's shapes and status codes.

use super::error::ApiError;
use super::models::{self, ProxyJson, ToxicJson};
use super::AppState;
use crate::proxy::ProxyStats;
use crate::{registry, toxics};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The Toxiproxy version whose API faultline speaks (clients such as Ruby's choose PATCH over
/// POST from it).
pub const TOXIPROXY_VERSION: &str = "2.12.0";

type ApiResult = Result<Response, ApiError>;

pub async fn list_proxies(State(state): State<AppState>) -> ApiResult {
    let proxies = state.registry.list().await;
    let map: serde_json::Map<String, Value> = proxies
        .iter()
        .map(|p| (p.name.clone(), json!(ProxyJson::from(p))))
        .collect();
    Ok(Json(map).into_response())
}

pub async fn create_proxy(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let new = models::new_proxy(&models::parse_body(&body)?, state.options.unknown_keys)?;
    let proxy = state.registry.create(new).await?;
    Ok((StatusCode::CREATED, Json(ProxyJson::from(&proxy))).into_response())
}

pub async fn populate(State(state): State<AppState>, body: Bytes) -> Response {
    let policy = state.options.unknown_keys;
    let parsed = models::parse_body(&body).and_then(|value| match value {
        Value::Array(items) => items
            .iter()
            .map(|item| models::new_proxy(item, policy))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(ApiError::BadBody(format!(
            "populate expects a JSON array of proxies, got {}",
            models::json_kind(&other)
        ))),
    });
    let list = match parsed {
        Ok(list) => list,
        Err(e) => return populate_error(e, Vec::new()),
    };
    let (proxies, error) = state.registry.populate(list).await;
    let rendered: Vec<Value> = proxies.iter().map(|p| json!(ProxyJson::from(p))).collect();
    match error {
        None => (StatusCode::CREATED, Json(json!({"proxies": rendered}))).into_response(),
        Some(e) => populate_error(e.into(), rendered),
    }
}

/// Populate's errors also list what was processed before the failure (`[]`, never `null`,
/// which breaks the Ruby, Node and Rust clients).
fn populate_error(error: ApiError, proxies: Vec<Value>) -> Response {
    let mut body = error.body();
    body["proxies"] = Value::Array(proxies);
    error.respond(body)
}

pub async fn get_proxy(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let proxy = state.registry.get(&name).await?;
    Ok(Json(ProxyJson::from(&proxy)).into_response())
}

pub async fn update_proxy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    // Toxiproxy checks the proxy exists before reading the body.
    state.registry.get(&name).await?;
    let change = models::proxy_change(&models::parse_body(&body)?, state.options.unknown_keys)?;
    let proxy = state.registry.update(&name, change).await?;
    Ok(Json(ProxyJson::from(&proxy)).into_response())
}

pub async fn delete_proxy(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    state.registry.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn reset(State(state): State<AppState>) -> ApiResult {
    state.registry.reset().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_toxics(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let toxics = state.registry.toxics(&name).await?;
    let rendered: Vec<ToxicJson<'_>> = toxics.iter().map(ToxicJson::from).collect();
    Ok(Json(rendered).into_response())
}

pub async fn create_toxic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    state.registry.get(&name).await?;
    let new = models::new_toxic(&models::parse_body(&body)?, state.options.unknown_keys)?;
    let kind = new.kind.clone();
    let toxic = state
        .registry
        .add_toxic(&name, new)
        .await
        .map_err(|e| match e {
            registry::Error::InvalidToxicType => ApiError::InvalidToxicType(kind),
            other => other.into(),
        })?;
    Ok(Json(ToxicJson::from(&toxic)).into_response())
}

pub async fn get_toxic(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> ApiResult {
    let toxic = state.registry.toxic(&proxy, &toxic).await?;
    Ok(Json(ToxicJson::from(&toxic)).into_response())
}

pub async fn update_toxic(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let current = state.registry.toxic(&proxy, &toxic).await?;
    let kind = toxics::lookup(current.kind).ok_or(registry::Error::InvalidToxicType)?;
    let change = models::toxic_change(
        &models::parse_body(&body)?,
        kind,
        state.options.unknown_keys,
    )?;
    let toxic = state.registry.update_toxic(&proxy, &toxic, change).await?;
    Ok(Json(ToxicJson::from(&toxic)).into_response())
}

pub async fn delete_toxic(
    State(state): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> ApiResult {
    state.registry.remove_toxic(&proxy, &toxic).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Toxiproxy's body (clients parse `version`, some compare its start byte for byte), plus
/// faultline's own version in a `faultline` field and a header.
pub async fn version() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json;charset=utf-8"),
            (
                header::HeaderName::from_static("x-faultline-version"),
                env!("CARGO_PKG_VERSION"),
            ),
        ],
        format!(
            "{{\"version\": \"{TOXIPROXY_VERSION}\", \"faultline\": \"{}\"}}\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
        .into_response()
}

/// Live counters of one proxy (a faultline extension that Toxiproxy clients never call).
pub async fn proxy_stats(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let proxy = state.registry.get(&name).await?;
    let s = &proxy.stats;
    let direction = |d: &crate::proxy::DirectionStats| {
        json!({
            "received_bytes": ProxyStats::get(&d.received_bytes),
            "sent_bytes": ProxyStats::get(&d.sent_bytes),
            "delayed_chunks": ProxyStats::get(&d.delayed_chunks),
            "dropped_bytes": ProxyStats::get(&d.dropped_bytes),
        })
    };
    Ok(Json(json!({
        "name": proxy.name,
        "connections_active": ProxyStats::get(&s.connections_active),
        "connections_total": ProxyStats::get(&s.connections_total),
        "connect_errors": ProxyStats::get(&s.connect_errors),
        "toxic_closes": ProxyStats::get(&s.toxic_closes),
        "toxic_resets": ProxyStats::get(&s.toxic_resets),
        "connections_refused": s
            .refused
            .counts()
            .into_iter()
            .map(|(by, n)| (by.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "read_ahead_bytes": s.read_ahead.used(),
        "upstream": direction(&s.upstream),
        "downstream": direction(&s.downstream),
        "http_faults": s
            .http_faults()
            .into_iter()
            .map(|(toxic, kind, n)| (toxic, json!({"type": kind, "requests": n})))
            .collect::<serde_json::Map<_, _>>(),
    }))
    .into_response())
}

/// A server-sent event stream of everything that happens. A consumer that falls behind is
/// told how many events it lost (`lagged`) instead of slowing anything down.
pub async fn events(State(state): State<AppState>) -> Response {
    let receiver = state.registry.events().subscribe();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (receiver, shutdown),
        |(mut receiver, shutdown)| async move {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return None,
                next = receiver.recv() => next,
            };
            let event = match next {
                Ok(event) => SseEvent::default()
                    .event(event.kind)
                    .json_data(&event)
                    .unwrap_or_default(),
                Err(RecvError::Lagged(missed)) => SseEvent::default()
                    .event("lagged")
                    .data(json!({"type": "lagged", "missed": missed}).to_string()),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok::<_, Infallible>(event), (receiver, shutdown)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The OpenAPI 3.1 description of this API (also kept in the repository as
/// `docs/openapi.json`).
pub async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}
