//! A service with a retry and circuit-breaker policy, checked against a 429/503 storm from
//! faultline: the kind of test an application team writes before trusting a rate-limited API.
//!
//! ```sh
//! cargo run --example http_storm
//! ```
//!
//! Everything runs in this process on 127.0.0.1: a stand-in "model API" (axum), faultline with
//! an HTTP proxy in front of it (seeded, so every run sees the same storm), and the client
//! policy under test. Two scenarios:
//!
//! 1. **Storm**: 40% of `POST /v1/chat` answered `429 Retry-After: 0`, 20% answered `503`.
//!    The policy retries with exponential backoff (honouring `Retry-After`) and every call
//!    must succeed.
//! 2. **Outage**: every request answered `503`. The breaker must open after
//!    [`Policy::trip_after`] consecutive failures and fail calls fast without sending them,
//!    then close again through a half-open probe once the outage ends.
//!
//! `tests/http_example.rs` runs it and checks the report.

use faultline::registry::{Options, Registry};
use faultline::server::ServerHandle;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The policy under test.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// The first backoff; it doubles after each failed attempt.
    pub backoff: Duration,
    /// Consecutive failed calls that open the breaker.
    pub trip_after: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub cooldown: Duration,
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Every attempt failed; the last status (0 for a transport error).
    Exhausted(u16),
    /// The breaker is open: the call was not sent.
    BreakerOpen,
}

/// A client of the model API with retries and a breaker.
pub struct Service {
    http: reqwest::Client,
    url: String,
    policy: Policy,
    breaker: Breaker,
    /// Attempts sent (retries included).
    pub sent: u32,
    /// Times the breaker opened.
    pub trips: u32,
}

impl Service {
    pub fn new(url: String, policy: Policy) -> Service {
        Service {
            http: reqwest::Client::new(),
            url,
            policy,
            breaker: Breaker::Closed { failures: 0 },
            sent: 0,
            trips: 0,
        }
    }

    /// One call: refused at once while the breaker is open; else up to `attempts` attempts,
    /// waiting `max(Retry-After, backoff)` between them.
    pub async fn chat(&mut self, prompt: &str) -> Result<String, CallError> {
        if let Breaker::Open { until } = self.breaker {
            if Instant::now() < until {
                return Err(CallError::BreakerOpen);
            }
            // Half-open: this call is the probe; one failure opens the breaker again.
            self.breaker = Breaker::Closed {
                failures: self.policy.trip_after - 1,
            };
        }
        let mut backoff = self.policy.backoff;
        let mut last = 0;
        for _ in 0..self.policy.attempts {
            self.sent += 1;
            let answer = self
                .http
                .post(&self.url)
                .body(prompt.to_string())
                .send()
                .await;
            let (status, retry_after) = match answer {
                Ok(response) if response.status().is_success() => {
                    let text = response.text().await.unwrap_or_default();
                    self.breaker = Breaker::Closed { failures: 0 };
                    return Ok(text);
                }
                Ok(response) => {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    (response.status().as_u16(), retry_after)
                }
                Err(_) => (0, None),
            };
            last = status;
            let retryable = matches!(status, 0 | 429 | 502 | 503 | 504);
            if !retryable {
                break;
            }
            tokio::time::sleep(retry_after.unwrap_or_default().max(backoff)).await;
            backoff *= 2;
        }
        self.failed();
        Err(CallError::Exhausted(last))
    }

    fn failed(&mut self) {
        if let Breaker::Closed { failures } = self.breaker {
            if failures + 1 >= self.policy.trip_after {
                self.breaker = Breaker::Open {
                    until: Instant::now() + self.policy.cooldown,
                };
                self.trips += 1;
            } else {
                self.breaker = Breaker::Closed {
                    failures: failures + 1,
                };
            }
        }
    }
}

/// What the two scenarios observed.
#[derive(Debug)]
pub struct Report {
    pub storm_calls: u32,
    pub storm_successes: u32,
    /// Requests faultline answered with 429 or 503 during the storm.
    pub storm_faulted: u64,
    pub storm_attempts: u32,
    /// Outage calls that failed after their retries, before the breaker opened.
    pub outage_exhausted: u32,
    /// Outage calls refused by the open breaker without being sent.
    pub outage_refused: u32,
    /// Requests faultline saw during the outage.
    pub outage_sent: u32,
    pub trips: u32,
    /// Whether the first call after the outage (the half-open probe) succeeded.
    pub recovered: bool,
}

/// The stand-in model API: every chat answers `ok: <prompt>`.
async fn model_api() -> SocketAddr {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat",
        post(|prompt: String| async move { format!("ok: {prompt}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Runs both scenarios with faultline seeded by `seed`.
pub async fn run(seed: u64) -> Report {
    let api = model_api().await;
    let faultline = ServerHandle::start_local(Registry::new(Options { seed: Some(seed) }))
        .await
        .expect("faultline starts");
    let admin = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        admin
            .request(method, format!("{}{path}", faultline.url()))
            .body(body.to_string())
            .send()
    };
    let created: Value = call(
        reqwest::Method::POST,
        "/proxies",
        json!({"name": "model", "listen": "127.0.0.1:0", "upstream": api.to_string(),
               "protocol": "http"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let listen = created["listen"].as_str().unwrap().to_string();
    let policy = Policy {
        attempts: 8,
        backoff: Duration::from_millis(5),
        trip_after: 3,
        cooldown: Duration::from_millis(300),
    };
    let mut service = Service::new(format!("http://{listen}/v1/chat"), policy);

    // 1. The storm.
    for toxic in [
        json!({"name": "rate_limited", "type": "http_status", "toxicity": 0.4,
               "attributes": {"status": 429, "headers": {"Retry-After": "0"},
                              "method": "POST", "path_prefix": "/v1/chat"}}),
        json!({"name": "overloaded", "type": "http_status", "toxicity": 0.2,
               "attributes": {"status": 503, "body": "overloaded"}}),
    ] {
        let reply = call(reqwest::Method::POST, "/proxies/model/toxics", toxic)
            .await
            .unwrap();
        assert!(
            reply.status().is_success(),
            "{}",
            reply.text().await.unwrap()
        );
    }
    let storm_calls = 30;
    let mut storm_successes = 0;
    for i in 0..storm_calls {
        if service.chat(&format!("prompt {i}")).await == Ok(format!("ok: prompt {i}")) {
            storm_successes += 1;
        }
    }
    let storm_attempts = service.sent;
    let stats: Value = call(reqwest::Method::GET, "/proxies/model/stats", Value::Null)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let storm_faulted = ["rate_limited", "overloaded"]
        .iter()
        .map(|t| stats["http_faults"][t]["requests"].as_u64().unwrap_or(0))
        .sum();

    // 2. The outage: every request fails until the toxic is removed.
    for name in ["rate_limited", "overloaded"] {
        call(
            reqwest::Method::DELETE,
            &format!("/proxies/model/toxics/{name}"),
            Value::Null,
        )
        .await
        .unwrap();
    }
    call(
        reqwest::Method::POST,
        "/proxies/model/toxics",
        json!({"name": "outage", "type": "http_status", "attributes": {"status": 503}}),
    )
    .await
    .unwrap();
    let before = service.sent;
    let (mut outage_exhausted, mut outage_refused) = (0, 0);
    for i in 0..10 {
        match service.chat(&format!("outage {i}")).await {
            Err(CallError::Exhausted(_)) => outage_exhausted += 1,
            Err(CallError::BreakerOpen) => outage_refused += 1,
            Ok(_) => {}
        }
    }
    let outage_sent = service.sent - before;
    call(
        reqwest::Method::DELETE,
        "/proxies/model/toxics/outage",
        Value::Null,
    )
    .await
    .unwrap();
    tokio::time::sleep(policy.cooldown).await;
    let recovered = service.chat("after").await.is_ok();
    Report {
        storm_calls,
        storm_successes,
        storm_faulted,
        storm_attempts,
        outage_exhausted,
        outage_refused,
        outage_sent,
        trips: service.trips,
        recovered,
    }
}

#[tokio::main]
async fn main() {
    let report = run(7).await;
    println!(
        "storm:  {}/{} calls succeeded in {} attempts; faultline faulted {} requests",
        report.storm_successes, report.storm_calls, report.storm_attempts, report.storm_faulted
    );
    println!(
        "outage: {} calls failed after retries, {} refused by the open breaker \
              ({} requests sent); breaker opened {} time(s)",
        report.outage_exhausted, report.outage_refused, report.outage_sent, report.trips
    );
    println!(
        "after:  the half-open probe {}",
        if report.recovered {
            "succeeded: breaker closed"
        } else {
            "FAILED"
        }
    );
}
