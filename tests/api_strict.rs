//! Strict validation: a misspelt key is a 400 that names it and lists the valid ones, and
//! changes nothing; `--lenient` ignores unknown keys as Toxiproxy does; what published clients
//! send is always accepted.

mod common;

use common::*;
use faultline::api::fields::UnknownKeys;
use faultline::api::ApiOptions;
use serde_json::{json, Value};

/// A server with proxy "p" (one latency toxic "t"), and a snapshot of its state.
async fn setup(api: ApiOptions) -> (Harness, Value) {
    let h = Harness::with_api(api).await;
    h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "t", "type": "latency", "attributes": {"latency": 10}}),
    )
    .await;
    let state = h.get("/proxies").await.json();
    (h, state)
}

#[track_caller]
fn assert_refused(r: &Reply, message: &str) {
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"error": message, "status": 400}))
    );
}

const TOXIC_FIELDS: &str =
    "name, type, stream, toxicity, attributes, target, duration_ms, schedule";
const PROXY_FIELDS: &str =
    "name, listen, upstream, enabled, protocol, upstream_tls, upstream_sni, connect_timeout_ms";

/// `rate_kb` for a bandwidth toxic is refused with the type's attribute names, on create and
/// on update.
#[tokio::test]
async fn unknown_attribute_is_refused_with_the_valid_names() {
    let (h, state) = setup(ApiOptions::default()).await;
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"type": "bandwidth", "attributes": {"rate_kb": 10}}),
        )
        .await;
    assert_refused(
        &r,
        "unknown attribute \"rate_kb\" for bandwidth; expected one of: rate",
    );
    let r = h
        .post(
            "/proxies/p/toxics/t",
            json!({"attributes": {"latencyy": 100}}),
        )
        .await;
    assert_refused(
        &r,
        "unknown attribute \"latencyy\" for latency; expected one of: latency, jitter, distribution",
    );
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// Misspelt top-level toxic fields (`toxicty`, `steam`, `latencyy`) are refused by name.
#[tokio::test]
async fn unknown_toxic_field_is_refused() {
    let (h, state) = setup(ApiOptions::default()).await;
    for key in ["toxicty", "steam", "latencyy"] {
        let r = h
            .post("/proxies/p/toxics", json!({"type": "latency", key: 1}))
            .await;
        assert_refused(
            &r,
            &format!("unknown field \"{key}\" in toxic; expected one of: {TOXIC_FIELDS}"),
        );
        let r = h.post("/proxies/p/toxics/t", json!({key: 1})).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"type": "latency", "schedule": {"on_ms": 10, "of_ms": 10}}),
        )
        .await;
    assert_refused(
        &r,
        "unknown field \"of_ms\" in schedule; expected one of: on_ms, off_ms",
    );
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// Unknown proxy fields are refused on create, update and populate; populate creates nothing.
#[tokio::test]
async fn unknown_proxy_field_is_refused() {
    let (h, state) = setup(ApiOptions::default()).await;
    let expected = format!("unknown field \"upstrem\" in proxy; expected one of: {PROXY_FIELDS}");
    let r = h
        .post(
            "/proxies",
            json!({"name": "q", "upstream": "127.0.0.1:1", "upstrem": "x"}),
        )
        .await;
    assert_refused(&r, &expected);
    let r = h.post("/proxies/p", json!({"upstrem": "x"})).await;
    assert_refused(&r, &expected);
    let r = h
        .post(
            "/populate",
            json!([{"name": "q", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
                   {"name": "r", "upstream": "127.0.0.1:1", "upstrem": "x"}]),
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": expected, "status": 400, "proxies": []})
        )
    );
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// With `--lenient`, unknown keys are ignored as Toxiproxy ignores them.
#[tokio::test]
async fn lenient_mode_ignores_unknown_keys() {
    let lenient = ApiOptions {
        unknown_keys: UnknownKeys::Ignore,
        ..ApiOptions::default()
    };
    let (h, _) = setup(lenient).await;
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"name": "bw", "type": "bandwidth", "steam": "upstream",
                   "attributes": {"rate_kb": 10}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let created = r.json();
    assert_eq!(
        (&created["attributes"], &created["stream"]),
        (&json!({"rate": 0}), &json!("downstream"))
    );
    let r = h
        .post(
            "/proxies/p/toxics/t",
            json!({"attributes": {"latencyy": 5}}),
        )
        .await;
    assert_eq!(r.json()["attributes"]["latency"], json!(10));
    let r = h
        .post(
            "/proxies",
            json!({"name": "q", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0",
                   "upstrem": "x"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// What published clients send is accepted: the Go client's proxies carry `toxics`, objects
/// echoed back carry Toxiproxy's `Logger` and faultline's read-only toxic fields, and keys
/// match case-insensitively as Go's decoder matches them.
#[tokio::test]
async fn fields_published_clients_send_are_accepted() {
    let (h, _) = setup(ApiOptions::default()).await;
    let r = h
        .post(
            "/proxies",
            json!({"name": "go", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1",
                   "enabled": false, "toxics": [], "Logger": {}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = h
        .post(
            "/populate",
            json!([{"name": "go", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1",
                    "enabled": false, "toxics": null}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // A toxic object as GET returns it, extensions included, posted back as an update.
    let timed = h
        .toxic(
            "p",
            json!({"name": "timed", "type": "latency", "duration_ms": 60000,
                   "schedule": {"on_ms": 1000, "off_ms": 1000}}),
        )
        .await;
    assert!(timed.get("remaining_ms").is_some() && timed.get("active").is_some());
    let r = h.post("/proxies/p/toxics/timed", timed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"Name": "caps", "Type": "latency", "Attributes": {"Latency": 5}}),
        )
        .await;
    assert_eq!(
        (r.status, &r.json()["attributes"]["latency"]),
        (200, &json!(5))
    );
}

/// The binary's `--lenient` flag and `FAULTLINE_LENIENT=1` both turn lenient mode on, and an
/// ignored key is logged as a warning.
#[tokio::test]
async fn lenient_flag_and_environment_variable() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for (args, env) in [(&["--lenient"][..], None), (&[][..], Some("1"))] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_faultline"));
        command
            .args(["--port", "0"])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("FAULTLINE_LENIENT")
            .stdout(Stdio::piped());
        if let Some(value) = env {
            command.env("FAULTLINE_LENIENT", value);
        }
        let mut child = KillOnDrop(command.spawn().unwrap());
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        let api = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("address=").nth(1).map(str::to_string))
            .expect("the server reports its address");
        let r = reqwest::Client::new()
            .post(format!("http://{api}/proxies"))
            .body(r#"{"name": "p", "upstream": "127.0.0.1:1", "enabled": false, "upstrem": "x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{args:?} {env:?}");
        let warning = lines
            .map_while(Result::ok)
            .find(|l| l.contains("WARN"))
            .expect("a warning");
        assert!(warning.contains("unknown field \"upstrem\""), "{warning}");
    }
}

/// A child process that is killed when the test ends, even by a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A misspelt key inside a toxic's `target` is refused like any other unknown field, naming it
/// and listing the valid ones, on create and on update; nothing changes.
#[tokio::test]
async fn unknown_target_field_is_refused() {
    let (h, state) = setup(ApiOptions::default()).await;
    let expected = "unknown field \"fractoin\" in target; expected one of: cidrs, fraction";
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"type": "latency", "target": {"fractoin": 0.5}}),
        )
        .await;
    assert_refused(&r, expected);
    let r = h
        .post("/proxies/p/toxics/t", json!({"target": {"fractoin": 0.5}}))
        .await;
    assert_refused(&r, expected);
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// With `--lenient`, an unknown key inside `target` is ignored and the known ones still apply.
#[tokio::test]
async fn lenient_mode_ignores_unknown_target_fields() {
    let lenient = ApiOptions {
        unknown_keys: UnknownKeys::Ignore,
        ..ApiOptions::default()
    };
    let (h, _) = setup(lenient).await;
    let r = h
        .post(
            "/proxies/p/toxics",
            json!({"name": "half", "type": "latency",
                   "target": {"fractoin": 0.1, "fraction": 0.5}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["target"]["fraction"], json!(0.5));
}

/// A misspelt field of an experiment event (and of a step in its plan) is refused by name,
/// with the fields of that type of event listed.
#[tokio::test]
async fn unknown_experiment_event_field_is_refused() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/experiments/events",
            json!({"run": "r", "type": "probe", "phase": "after", "index": 0, "name": "p99",
                   "ok": true, "tolerence": "in [0, 1]"}),
        )
        .await;
    assert_refused(
        &r,
        "unknown field \"tolerence\" in experiment event \"probe\"; expected one of: run, \
         type, phase, index, name, value, tolerance, range, ok",
    );
    let r = h
        .post(
            "/experiments/events",
            json!({"run": "r", "type": "started", "title": "t",
                   "steps": [{"phase": "method", "name": "inject", "knd": "action"}]}),
        )
        .await;
    assert_refused(
        &r,
        "unknown field \"knd\" in experiment step; expected one of: phase, name, kind",
    );
}

/// With `--lenient`, an unknown field of an experiment event is ignored and the event
/// accepted.
#[tokio::test]
async fn lenient_mode_ignores_unknown_experiment_event_fields() {
    let h = Harness::with_api(ApiOptions {
        unknown_keys: UnknownKeys::Ignore,
        ..ApiOptions::default()
    })
    .await;
    let r = h
        .post(
            "/experiments/events",
            json!({"run": "r", "type": "ended", "status": "completed", "deviated": false,
                   "verdict": "held", "exit_code": 0}),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
}
