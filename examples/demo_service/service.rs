//! The demo service's logic, shared by `main.rs` and the experiment tests.
//!
//! - An AI-like dependency: `GET /complete?q=` answers `{"answer": ...}` in about 2 ms.
//! - The search service: `GET /search?q=` asks the dependency (through faultline) with a
//!   timeout; a circuit breaker (switchable) stops calling it after consecutive failures, a
//!   fallback (switchable) answers from a local index when the call fails or is skipped, and a
//!   `429` with `Retry-After` pauses calls for that long (switchable). `GET /metrics` exposes
//!   Prometheus metrics, breaker state included.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How the search service behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The dependency's base URL (a faultline proxy in front of it).
    pub ai_url: String,
    /// How long one call to the dependency may take.
    pub timeout: Duration,
    /// Open the breaker after `failure_threshold` consecutive failures.
    pub breaker: bool,
    pub failure_threshold: u32,
    /// How long the breaker stays open before one trial call.
    pub open_for: Duration,
    /// Answer from the local index when the dependency fails (else 502).
    pub fallback: bool,
    /// How long the fallback takes to answer (none by default; a slow fallback for the
    /// circuit-breaker experiment's "fallback p99 under 50 ms").
    pub fallback_delay: Duration,
    /// Stop calling for `Retry-After` seconds after a 429.
    pub honour_retry_after: bool,
}

impl Config {
    pub fn new(ai_url: impl Into<String>) -> Config {
        Config {
            ai_url: ai_url.into(),
            timeout: Duration::from_millis(1000),
            breaker: true,
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
            fallback: true,
            fallback_delay: Duration::ZERO,
            honour_retry_after: true,
        }
    }
}

/// The breaker's decisions, with `now` passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

impl Breaker {
    /// Whether a call may go to the dependency now (an open breaker past its time lets one
    /// trial call through).
    pub fn allow(&mut self, now: Instant) -> bool {
        match *self {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } if now >= until => {
                *self = Breaker::HalfOpen;
                true
            }
            Breaker::Open { .. } => false,
            Breaker::HalfOpen => false,
        }
    }

    /// Records a call's outcome; returns true when this opened the breaker.
    pub fn record(&mut self, ok: bool, now: Instant, threshold: u32, open_for: Duration) -> bool {
        match (*self, ok) {
            (_, true) => {
                *self = Breaker::Closed { failures: 0 };
                false
            }
            (Breaker::Closed { failures }, false) if failures + 1 < threshold => {
                *self = Breaker::Closed {
                    failures: failures + 1,
                };
                false
            }
            (_, false) => {
                *self = Breaker::Open {
                    until: now + open_for,
                };
                true
            }
        }
    }

    /// 0 closed, 1 open, 2 half-open.
    pub fn gauge(&self) -> u8 {
        match self {
            Breaker::Closed { .. } => 0,
            Breaker::Open { .. } => 1,
            Breaker::HalfOpen => 2,
        }
    }
}

struct Service {
    config: Config,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
    /// Since when calls have been failing while the breaker stayed closed.
    failing_since: Mutex<Option<Instant>>,
    /// No calls before this instant (a 429's Retry-After), when honoured.
    paused_until: Mutex<Option<Instant>>,
    /// Until when the dependency last asked for a pause, honoured or not.
    asked_pause_until: Mutex<Option<Instant>>,
    ok: AtomicU64,
    fallback: AtomicU64,
    errors: AtomicU64,
    ai_calls: AtomicU64,
    ai_failures: AtomicU64,
    ai_throttled: AtomicU64,
    /// Calls made while the dependency had asked (Retry-After) for none.
    ai_calls_ignoring_retry_after: AtomicU64,
    opened: AtomicU64,
}

/// Serves the AI-like dependency on `listener` until the task is dropped.
pub async fn serve_ai(listener: TcpListener) {
    let app = Router::new().route(
        "/complete",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let question = q.get("q").cloned().unwrap_or_default();
            Json(json!({"answer": format!("the best results for {question:?}")}))
        }),
    );
    let _ = axum::serve(listener, app).await;
}

/// Serves the search service on `listener` until the task is dropped.
pub async fn serve_search(listener: TcpListener, config: Config) {
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .build()
        .expect("HTTP client");
    let service = Arc::new(Service {
        config,
        http,
        breaker: Mutex::new(Breaker::Closed { failures: 0 }),
        failing_since: Mutex::new(None),
        paused_until: Mutex::new(None),
        asked_pause_until: Mutex::new(None),
        ok: AtomicU64::new(0),
        fallback: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        ai_calls: AtomicU64::new(0),
        ai_failures: AtomicU64::new(0),
        ai_throttled: AtomicU64::new(0),
        ai_calls_ignoring_retry_after: AtomicU64::new(0),
        opened: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/search", get(search))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .with_state(service);
    let _ = axum::serve(listener, app).await;
}

/// Why the dependency gave no answer.
enum Miss {
    Skipped,
    Failed,
    Throttled(Option<Duration>),
}

async fn search(
    State(s): State<Arc<Service>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let question = q.get("q").cloned().unwrap_or_default();
    let answer = ask(&s, &question).await;
    match answer {
        Ok(answer) => {
            s.ok.fetch_add(1, Ordering::Relaxed);
            Json(json!({"q": question, "source": "ai", "answer": answer})).into_response()
        }
        Err(_) if s.config.fallback => {
            if !s.config.fallback_delay.is_zero() {
                tokio::time::sleep(s.config.fallback_delay).await;
            }
            s.fallback.fetch_add(1, Ordering::Relaxed);
            let answer = format!("cached results for {question:?}");
            Json(json!({"q": question, "source": "fallback", "answer": answer})).into_response()
        }
        Err(_) => {
            s.errors.fetch_add(1, Ordering::Relaxed);
            (StatusCode::BAD_GATEWAY, "the AI dependency failed\n").into_response()
        }
    }
}

async fn ask(s: &Service, question: &str) -> Result<String, Miss> {
    let now = Instant::now();
    if s.paused_until.lock().unwrap().is_some_and(|t| now < t) {
        return Err(Miss::Skipped);
    }
    if s.config.breaker && !s.breaker.lock().unwrap().allow(now) {
        return Err(Miss::Skipped);
    }
    s.ai_calls.fetch_add(1, Ordering::Relaxed);
    if s.asked_pause_until.lock().unwrap().is_some_and(|t| now < t) {
        s.ai_calls_ignoring_retry_after
            .fetch_add(1, Ordering::Relaxed);
    }
    let url = format!("{}/complete", s.config.ai_url);
    let result = match s.http.get(&url).query(&[("q", question)]).send().await {
        Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
            Err(Miss::Throttled(wait))
        }
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(body) => Ok(body["answer"].as_str().unwrap_or("").to_string()),
            Err(_) => Err(Miss::Failed),
        },
        _ => Err(Miss::Failed),
    };
    let now = Instant::now();
    match &result {
        Err(Miss::Throttled(wait)) => {
            s.ai_throttled.fetch_add(1, Ordering::Relaxed);
            if let Some(wait) = wait {
                *s.asked_pause_until.lock().unwrap() = Some(now + *wait);
                if s.config.honour_retry_after {
                    *s.paused_until.lock().unwrap() = Some(now + *wait);
                }
            }
        }
        Err(_) => {
            s.ai_failures.fetch_add(1, Ordering::Relaxed);
        }
        Ok(_) => {}
    }
    let ok = result.is_ok();
    if !ok {
        s.failing_since.lock().unwrap().get_or_insert(now);
    }
    if s.config.breaker {
        let opened = s.breaker.lock().unwrap().record(
            ok,
            now,
            s.config.failure_threshold,
            s.config.open_for,
        );
        if opened {
            s.opened.fetch_add(1, Ordering::Relaxed);
        }
    }
    let closed = s.breaker.lock().unwrap().gauge() == 0 || !s.config.breaker;
    if ok || !closed {
        *s.failing_since.lock().unwrap() = None;
    }
    result
}

async fn metrics(State(s): State<Arc<Service>>) -> impl IntoResponse {
    let breaker = if s.config.breaker {
        s.breaker.lock().unwrap().gauge()
    } else {
        0
    };
    let failing_closed = s
        .failing_since
        .lock()
        .unwrap()
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let text = format!(
        "# HELP demo_breaker_state Circuit breaker on the AI dependency: 0 closed, 1 open, 2 half-open.\n\
         # TYPE demo_breaker_state gauge\n\
         demo_breaker_state{{dependency=\"ai\"}} {breaker}\n\
         # HELP demo_breaker_failing_closed_seconds How long calls have been failing while the breaker stayed closed.\n\
         # TYPE demo_breaker_failing_closed_seconds gauge\n\
         demo_breaker_failing_closed_seconds{{dependency=\"ai\"}} {failing_closed:.3}\n\
         # TYPE demo_breaker_opened_total counter\n\
         demo_breaker_opened_total{{dependency=\"ai\"}} {}\n\
         # TYPE demo_requests_total counter\n\
         demo_requests_total{{route=\"/search\",outcome=\"ok\"}} {}\n\
         demo_requests_total{{route=\"/search\",outcome=\"fallback\"}} {}\n\
         demo_requests_total{{route=\"/search\",outcome=\"error\"}} {}\n\
         # TYPE demo_ai_calls_total counter\n\
         demo_ai_calls_total {}\n\
         # TYPE demo_ai_failures_total counter\n\
         demo_ai_failures_total {}\n\
         # TYPE demo_ai_throttled_total counter\n\
         demo_ai_throttled_total {}\n\
         # HELP demo_ai_calls_ignoring_retry_after_total Calls made while the dependency had asked (Retry-After) for none.\n\
         # TYPE demo_ai_calls_ignoring_retry_after_total counter\n\
         demo_ai_calls_ignoring_retry_after_total {}\n",
        c(&s.opened),
        c(&s.ok),
        c(&s.fallback),
        c(&s.errors),
        c(&s.ai_calls),
        c(&s.ai_failures),
        c(&s.ai_throttled),
        c(&s.ai_calls_ignoring_retry_after),
    );
    ([("content-type", "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod breaker_tests {
    use super::*;

    /// The breaker opens on the threshold-th consecutive failure and lets one trial call
    /// through once its time is up; a success closes it.
    #[test]
    fn opens_then_half_opens_then_closes() {
        let t0 = Instant::now();
        let open_for = Duration::from_secs(10);
        let mut b = Breaker::Closed { failures: 0 };
        for _ in 0..4 {
            assert!(!b.record(false, t0, 5, open_for));
        }
        assert!(b.record(false, t0, 5, open_for));
        assert!(!b.allow(t0 + Duration::from_secs(9)));
        assert!(b.allow(t0 + Duration::from_secs(10)));
        assert_eq!(b, Breaker::HalfOpen);
        assert!(
            !b.allow(t0 + Duration::from_secs(10)),
            "one trial at a time"
        );
        b.record(true, t0, 5, open_for);
        assert_eq!(b, Breaker::Closed { failures: 0 });
    }
}
