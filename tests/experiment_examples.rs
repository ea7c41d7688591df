//! Each example experiment in `examples/experiments/`, run by the real binary against the demo
//! service behind a real faultline: the verdict both ways, and nothing left behind.

mod experiment_support;

use experiment_support::{example, flags, run, Demo};
use serde_json::json;
use std::time::Duration;

/// With its circuit breaker, the search service holds the hypothesis under 5 s of AI latency:
/// the breaker opens (read from its metrics) and the fallback keeps p99 under 50 ms (checked
/// by the hypothesis after the method); the toxic is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_holds_with_the_breaker() {
    let demo = Demo::start(|_| {}).await;
    let mut vars = demo.vars();
    vars.push("load_seconds=1".into());
    vars.push("breaker_deadline_s=20".into());
    let out = run(
        &example("circuit-breaker.json"),
        &flags(&demo.api.url(), &vars),
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.journal["status"], "completed", "{out}");
    assert_eq!(out.journal["deviated"], false);
    let opened = &out.journal["run"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["activity"]["name"] == "seconds-until-breaker-opens")
        .unwrap()["output"];
    assert!(
        opened.as_f64().is_some_and(|s| s < 20.0),
        "breaker opened after {opened}"
    );
    let fallback = &out.journal["steady_states"]["after"]["probes"][3];
    assert_eq!(fallback["activity"]["name"], "search-p99-under-50ms");
    assert_eq!(fallback["tolerance_met"], true, "{fallback}");
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// The breaker opens, but the fallback takes 100 ms: every other probe holds after the
/// method, and `search-p99-under-50ms` (the fallback's target) alone makes the run deviate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_deviates_when_the_fallback_is_slow() {
    let demo = Demo::start(|c| c.fallback_delay = Duration::from_millis(100)).await;
    let mut vars = demo.vars();
    vars.push("load_seconds=1".into());
    vars.push("breaker_deadline_s=20".into());
    let out = run(
        &example("circuit-breaker.json"),
        &flags(&demo.api.url(), &vars),
    )
    .await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        out.journal["steady_states"]["before"]["steady_state_met"], true,
        "{out}"
    );
    let after = &out.journal["steady_states"]["after"];
    assert_eq!(after["steady_state_met"], false);
    let probes = after["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 4, "{after}");
    for held in &probes[..3] {
        assert_eq!(held["tolerance_met"], true, "{held}");
    }
    assert_eq!(probes[3]["activity"]["name"], "search-p99-under-50ms");
    let p99 = probes[3]["output"]["p99_ms"].as_f64().unwrap();
    assert!(
        p99 >= 100.0,
        "p99 {p99} ms should include the 100 ms fallback"
    );
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// Without the breaker every search waits for the dependency's timeout, so p99 goes far
/// beyond 300 ms: the hypothesis deviates (exit 2), and rollback still removes the toxic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_deviates_without_the_breaker() {
    let demo = Demo::start(|c| {
        c.breaker = false;
        c.timeout = Duration::from_millis(500);
    })
    .await;
    let mut vars = demo.vars();
    vars.push("load_seconds=1".into());
    vars.push("breaker_deadline_s=1".into());
    let out = run(
        &example("circuit-breaker.json"),
        &flags(&demo.api.url(), &vars),
    )
    .await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.journal["deviated"], true, "{out}");
    let after = &out.journal["steady_states"]["after"];
    assert_eq!(after["steady_state_met"], false);
    let p99 = after["probes"][0]["output"]["p99_ms"].as_f64().unwrap();
    assert!(
        p99 >= 450.0,
        "p99 {p99} ms should be about the 500 ms timeout"
    );
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// A flapping dependency (reset every other half second, by `schedule`) costs no errors when
/// the service falls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_dependency_holds_with_fallback() {
    let demo = Demo::start(|_| {}).await;
    let mut vars = demo.vars();
    vars.push("load_seconds=2".into());
    let out = run(
        &example("flapping-dependency.yaml"),
        &flags(&demo.api.url(), &vars),
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// Without a fallback the same flapping shows as errors: deviated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_dependency_deviates_without_fallback() {
    let demo = Demo::start(|c| {
        c.fallback = false;
        c.breaker = false;
    })
    .await;
    let mut vars = demo.vars();
    vars.push("load_seconds=2".into());
    let out = run(
        &example("flapping-dependency.yaml"),
        &flags(&demo.api.url(), &vars),
    )
    .await;
    assert_eq!(out.code, 2, "{out}");
    let errors = out.journal["steady_states"]["after"]["probes"][0]["output"]["error_percent"]
        .as_f64()
        .unwrap();
    assert!(errors > 0.5, "error rate {errors}%");
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// A 429 storm with Retry-After (the `http_status` toxic on an HTTP-mode proxy): a service
/// that honours Retry-After keeps answering and makes no call while asked to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_holds_when_retry_after_is_honoured() {
    let demo = Demo::start_with("http", |_| {}).await;
    let out = run(
        &example("ai-429-storm.json"),
        &flags(&demo.api.url(), &demo.vars()),
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.journal["run"][0]["status"], "succeeded");
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}

/// The same storm against a service that ignores Retry-After deviates: it keeps calling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_deviates_when_retry_after_is_ignored() {
    let demo = Demo::start_with("http", |c| c.honour_retry_after = false).await;
    let out = run(
        &example("ai-429-storm.json"),
        &flags(&demo.api.url(), &demo.vars()),
    )
    .await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.journal["run"][0]["status"], "succeeded");
    let ignored = out.journal["steady_states"]["after"]["probes"][1]["output"]
        .as_f64()
        .unwrap();
    assert!(ignored > 0.0, "{ignored} calls during Retry-After");
    assert_eq!(demo.ai_proxy().await["toxics"], json!([]));
}
