//! An experiment's progress on the dashboard's stream: `POST /experiments/events` checks each
//! event and passes it on to `/events` as `experiment_<type>`; a run publishes its plan, its
//! steps, its probe values against their tolerances and its verdict there; and a server
//! without the endpoint, or one that never answers, costs the run nothing. `GET
//! /experiments/events` gives the recent runs' events again, as `/events` carried them.

mod common;

use common::*;
use faultline_experiment::Verdict;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The next event of `events` whose type starts with `prefix`.
async fn next_event_of(events: &mut SseEvents, prefix: &str) -> Value {
    let of_type = |event: &Value| event["type"].as_str().unwrap_or("").starts_with(prefix);
    events.next_where(Duration::from_secs(10), of_type).await
}

/// An accepted event is a 204, and arrives on `/events` as `experiment_<type>` with the event,
/// less its type, as its detail.
#[tokio::test]
async fn accepted_event_is_passed_on_to_events() {
    let h = Harness::start().await;
    let mut events = SseEvents::subscribe(&h).await;
    let probe = json!({"run": "r1", "type": "probe", "phase": "before", "index": 0,
        "name": "p99", "value": 12.5, "tolerance": "p99_ms in [0, 250]", "range": [0, 250],
        "ok": true});
    let reply = h.post("/experiments/events", probe).await;
    assert_eq!((reply.status, reply.body.as_str()), (204, ""));

    let event = next_event_of(&mut events, "experiment_").await;
    assert_eq!(event["type"], "experiment_probe");
    assert_eq!(
        event["detail"],
        json!({"run": "r1", "phase": "before", "index": 0, "name": "p99", "value": 12.5,
               "tolerance": "p99_ms in [0, 250]", "range": [0.0, 250.0], "ok": true})
    );
}

/// A malformed event is a 400 that names what was wrong and what is valid, and nothing of it
/// reaches `/events`.
#[tokio::test]
async fn malformed_event_is_refused_and_not_passed_on() {
    let h = Harness::start().await;
    let mut events = SseEvents::subscribe(&h).await;
    let reply = h
        .post(
            "/experiments/events",
            json!({"run": "r1", "type": "ended", "status": "done", "deviated": false,
                   "verdict": "held"}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.json()["error"],
        "bad request body: field \"status\" of experiment event \"ended\" must be one of: \
         completed, failed, aborted, interrupted; got \"done\""
    );

    let fine = json!({"run": "r1", "type": "ended", "status": "completed", "deviated": false,
                      "verdict": "held"});
    assert_eq!(h.post("/experiments/events", fine).await.status, 204);
    let event = next_event_of(&mut events, "experiment_").await;
    assert_eq!(event["detail"]["status"], "completed", "{event}");
}

/// Each event is on the audit record, as an `experiment event` request.
#[tokio::test]
async fn event_is_on_the_audit_record() {
    let h = Harness::start().await;
    let mut events = SseEvents::subscribe(&h).await;
    let started = json!({"run": "r1", "type": "started", "title": "t", "steps": []});
    assert_eq!(h.post("/experiments/events", started).await.status, 204);
    let audit = next_event_of(&mut events, "api_request").await;
    assert_eq!(audit["detail"]["action"], "experiment event", "{audit}");
    assert_eq!(audit["detail"]["status"], 204, "{audit}");
}

/// A real run publishes its plan, each step running then succeeded, its probe values against
/// the tolerance, and its verdict, in that order, all under one run id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_publishes_plan_steps_probe_values_and_verdict() {
    let h = Harness::start().await;
    let (service, _requests) = http_server(200).await;
    let listen = h.proxy("checkout", service).await;
    let mut events = SseEvents::subscribe(&h).await;
    let experiment = latency_experiment(&format!("http://{listen}/"), "checkout");
    let journal = run_experiment(&experiment, vec![h.server.url()]).await;
    assert_eq!(journal.verdict(), Verdict::Deviated);

    let mut seen = Vec::new();
    loop {
        let event = next_event_of(&mut events, "experiment_").await;
        let end = event["type"] == "experiment_ended";
        seen.push(event);
        if end {
            break;
        }
    }
    let run = seen[0]["detail"]["run"].clone();
    assert!(seen.iter().all(|e| e["detail"]["run"] == run), "{seen:?}");
    assert_eq!(seen[0]["type"], "experiment_started");
    assert_eq!(
        seen[0]["detail"]["steps"],
        json!([
            {"phase": "before", "name": "p99-under-250ms", "kind": "probe"},
            {"phase": "method", "name": "add-latency", "kind": "action"},
            {"phase": "after", "name": "p99-under-250ms", "kind": "probe"},
            {"phase": "rollbacks", "name": "remove-latency", "kind": "action"},
        ])
    );
    let steps: Vec<String> = seen
        .iter()
        .filter(|e| e["type"] == "experiment_activity")
        .map(|e| {
            let d = &e["detail"];
            format!(
                "{}:{} {}",
                d["phase"].as_str().unwrap(),
                d["index"],
                d["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "before:0 running",
            "before:0 succeeded",
            "method:0 running",
            "method:0 succeeded",
            "after:0 running",
            "after:0 succeeded",
            "rollbacks:0 running",
            "rollbacks:0 succeeded",
        ]
    );
    let probes: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "experiment_probe")
        .map(|e| &e["detail"])
        .collect();
    assert_eq!(probes.len(), 2, "{probes:?}");
    let (before, after) = (probes[0], probes[1]);
    assert_eq!(
        (&before["phase"], &before["ok"], &before["range"]),
        (&json!("before"), &json!(true), &json!([0.0, 250.0]))
    );
    assert!(before["value"].as_f64().unwrap() < 250.0, "{before}");
    assert_eq!(
        (&after["phase"], &after["ok"]),
        (&json!("after"), &json!(false))
    );
    assert!(after["value"].as_f64().unwrap() >= 400.0, "{after}");
    assert_eq!(after["tolerance"], "p99_ms in [0, 250]");
    let ended = &seen.last().unwrap()["detail"];
    assert_eq!(
        (&ended["status"], &ended["deviated"], &ended["verdict"]),
        (&json!("completed"), &json!(true), &json!("deviated"))
    );
}

/// The four events of a short run: `started`, then `activity`, `probe` and `ended`.
fn run_events(run: &str) -> Vec<Value> {
    vec![
        json!({"run": run, "type": "started", "title": format!("run {run}"),
               "steps": [{"phase": "before", "name": "p99", "kind": "probe"}]}),
        json!({"run": run, "type": "activity", "phase": "before", "index": 0, "name": "p99",
               "kind": "probe", "status": "running"}),
        json!({"run": run, "type": "probe", "phase": "before", "index": 0, "name": "p99",
               "value": 12.5, "ok": true}),
        json!({"run": run, "type": "ended", "status": "completed", "deviated": false,
               "verdict": "held"}),
    ]
}

/// `GET /experiments/events`, checked to be a 200 with a JSON array.
async fn history(h: &Harness) -> Vec<Value> {
    let reply = h.get("/experiments/events").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json().as_array().expect("an array").clone()
}

/// The history gives a run's events in order, each as `/events` carried it: the same `seq`,
/// type and detail.
#[tokio::test]
async fn history_gives_a_runs_events_in_order_as_events_carried_them() {
    let h = Harness::start().await;
    let mut events = SseEvents::subscribe(&h).await;
    for event in run_events("r1") {
        assert_eq!(h.post("/experiments/events", event).await.status, 204);
    }
    let mut live = Vec::new();
    while live.len() < 4 {
        live.push(next_event_of(&mut events, "experiment_").await);
    }
    let kept = history(&h).await;
    assert_eq!(kept, live);
    let types: Vec<&str> = kept.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "experiment_started",
            "experiment_activity",
            "experiment_probe",
            "experiment_ended"
        ]
    );
    let seqs: Vec<u64> = kept.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(kept[0]["detail"]["title"], "run r1");
}

/// Events published while nobody follows `/events` are kept too, numbered like any other.
#[tokio::test]
async fn history_keeps_events_nobody_was_watching() {
    let h = Harness::start().await;
    for event in run_events("r1").into_iter().take(2) {
        assert_eq!(h.post("/experiments/events", event).await.status, 204);
    }
    let kept = history(&h).await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[0]["seq"].as_u64().unwrap() < kept[1]["seq"].as_u64().unwrap());
    assert_eq!(kept[1]["detail"]["status"], "running");
}

/// Only the most recent runs by start are kept: the oldest run goes first.
#[tokio::test]
async fn history_keeps_only_the_most_recent_runs() {
    let h = Harness::start().await;
    let runs = faultline::api::experiments::HISTORY_RUNS + 1;
    for i in 0..runs {
        for event in run_events(&format!("r{i}")) {
            assert_eq!(h.post("/experiments/events", event).await.status, 204);
        }
    }
    let kept = history(&h).await;
    let mut ids: Vec<String> = kept
        .iter()
        .map(|e| e["detail"]["run"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    let expected: Vec<String> = (1..runs).map(|i| format!("r{i}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(kept.len(), 4 * (runs - 1));
}

/// A run's events are bounded: past the limit the oldest go, its `started` stays.
#[tokio::test]
async fn history_of_a_long_run_keeps_its_start_and_newest_events() {
    let h = Harness::start().await;
    let limit = faultline::api::experiments::HISTORY_EVENTS_PER_RUN;
    let started = run_events("long").remove(0);
    assert_eq!(h.post("/experiments/events", started).await.status, 204);
    for i in 0..limit + 10 {
        let probe = json!({"run": "long", "type": "probe", "phase": "method", "index": 0,
                           "name": "p99", "value": i, "ok": true});
        assert_eq!(h.post("/experiments/events", probe).await.status, 204);
    }
    let kept = history(&h).await;
    assert_eq!(kept.len(), limit);
    assert_eq!(kept[0]["type"], "experiment_started");
    assert_eq!(kept[1]["detail"]["value"], json!(11));
    assert_eq!(kept[limit - 1]["detail"]["value"], json!(limit + 9));
}

/// With a token set, the history is a 401 without it and a 200 with it.
#[tokio::test]
async fn history_requires_the_token_when_one_is_set() {
    let h = Harness::with_api(faultline::api::ApiOptions {
        token: Some("s3cret".into()),
        ..faultline::api::ApiOptions::default()
    })
    .await;
    assert_eq!(h.get("/experiments/events").await.status, 401);
    let reply = h
        .http
        .get(h.url("/experiments/events"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.json::<Value>().await.unwrap(), json!([]));
}

/// Unknown query parameters are ignored, as by the other `GET` endpoints.
#[tokio::test]
async fn history_ignores_unknown_query_parameters() {
    let h = Harness::start().await;
    let reply = h.get("/experiments/events?since=3&x").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "[]"));
}

/// An experiment that needs no API: an HTTP probe around a process that does nothing.
fn probe_only_experiment(url: &str) -> Value {
    json!({
        "title": "the service answers",
        "steady-state-hypothesis": {"title": "up", "probes": [{
            "type": "probe", "name": "answers", "tolerance": 200,
            "provider": {"type": "http", "url": url, "timeout": 5}
        }]},
        "method": [{"type": "action", "name": "nothing",
                    "provider": {"type": "process", "path": "true"}}]
    })
}

/// A server without the endpoint (Toxiproxy answers 404) is asked once, then left alone, and
/// the run goes as it would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_the_endpoint_is_asked_once_and_the_run_is_unaffected() {
    let (service, _requests) = http_server(200).await;
    let (old_server, mut asked) = http_server(404).await;
    let journal = run_experiment(
        &probe_only_experiment(&format!("http://{service}/")),
        vec![format!("http://{old_server}")],
    )
    .await;
    assert_eq!(journal.verdict(), Verdict::Held);
    assert_eq!(
        asked.recv().await.as_deref(),
        Some("POST /experiments/events HTTP/1.1")
    );
    assert!(asked.try_recv().is_err(), "asked again after a 404");
}

/// A server that accepts connections and never answers delays the end of the run by no more
/// than the publishing timeouts, and the run's verdict stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_that_never_answers_does_not_hold_up_the_run() {
    let (service, _requests) = http_server(200).await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(());
        }
    });

    let started = Instant::now();
    let journal = run_experiment(
        &probe_only_experiment(&format!("http://{service}/")),
        vec![format!("http://{silent_addr}")],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(journal.verdict(), Verdict::Held);
    assert!(
        accepted.try_recv().is_ok(),
        "the runner never tried to publish"
    );
    let bound = faultline_experiment::progress::FLUSH_TIMEOUT + Duration::from_millis(900);
    assert!(took < bound, "the run took {took:?}");
}
