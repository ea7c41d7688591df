//! Bad input gets a clear 4xx in Toxiproxy's error shape, changes nothing, and never takes
//! the server down.

mod common;

use common::*;
use serde_json::{json, Value};

/// A proxy "p" with one toxic, and a snapshot of the whole state to compare against.
async fn setup() -> (Harness, Value) {
    let h = Harness::start().await;
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
fn assert_error(r: &Reply, status: u16, starts_with: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let body = r.json();
    assert_eq!(body["status"], json!(status));
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with(starts_with),
        "{message:?} should start with {starts_with:?}"
    );
}

/// Malformed or empty bodies are 400 "bad request body" on every endpoint that reads one.
#[tokio::test]
async fn malformed_json_is_400() {
    let (h, state) = setup().await;
    for path in [
        "/proxies",
        "/proxies/p",
        "/proxies/p/toxics",
        "/proxies/p/toxics/t",
        "/populate",
    ] {
        for body in ["", "{", "{\"name\": }", "nonsense", "[1,"] {
            let r = h.send("POST", path, Some(body)).await;
            assert_error(&r, 400, "bad request body: ");
        }
    }
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// Wrong JSON types name the field, as Go's decoder does.
#[tokio::test]
async fn wrong_types_are_400() {
    let (h, state) = setup().await;
    let cases = [
        ("/proxies", json!({"name": 1, "upstream": "x:1"})),
        (
            "/proxies",
            json!({"name": "q", "upstream": "x:1", "enabled": "yes"}),
        ),
        ("/proxies", json!(["not", "an", "object"])),
        ("/proxies/p", json!({"enabled": 1})),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "toxicity": "high"}),
        ),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "attributes": {"latency": "slow"}}),
        ),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "attributes": {"latency": 1.5}}),
        ),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "attributes": [1, 2]}),
        ),
        (
            "/proxies/p/toxics/t",
            json!({"attributes": {"jitter": true}}),
        ),
        ("/populate", json!({"name": "not a list"})),
    ];
    for (path, body) in cases {
        let r = h.post(path, body.clone()).await;
        assert_error(&r, 400, "bad request body: ");
    }
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// An unknown or missing toxic type is a 400 that starts with Toxiproxy's "invalid toxic
/// type", names what was received and lists every valid type.
#[tokio::test]
async fn unknown_toxic_type_is_400() {
    let (h, state) = setup().await;
    let valid: Vec<&str> = faultline::toxics::TYPES.iter().map(|t| t.name).collect();
    let valid = valid.join(", ");
    for (body, received) in [
        (json!({"type": "gremlin"}), "\"gremlin\""),
        (json!({}), "(none given)"),
        (json!({"type": ""}), "(none given)"),
    ] {
        let r = h.post("/proxies/p/toxics", body).await;
        let message = format!("invalid toxic type {received}; expected one of: {valid}");
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"error": message, "status": 400}))
        );
    }
    assert!(valid.contains("latency, bandwidth"), "{valid}");
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// A stream other than upstream/downstream (any case) is refused; "" too.
#[tokio::test]
async fn bad_stream_is_400() {
    let (h, state) = setup().await;
    for stream in ["walrustream", ""] {
        let r = h
            .post(
                "/proxies/p/toxics",
                json!({"type": "latency", "stream": stream}),
            )
            .await;
        assert_eq!(
            (r.status, r.json()),
            (
                400,
                json!({"error": "stream was invalid, can be either upstream or downstream", "status": 400})
            )
        );
    }
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// Values Toxiproxy would crash on (negative rate, slicer size 0) or silently misuse
/// (negative delays, toxicity outside 0..1, probabilities above 1) are refused clearly.
#[tokio::test]
async fn out_of_range_values_are_400() {
    let (h, state) = setup().await;
    let cases = [
        json!({"type": "bandwidth", "attributes": {"rate": -1}}),
        json!({"type": "slicer", "attributes": {"average_size": 0}}),
        json!({"type": "slicer"}),
        json!({"type": "slicer", "attributes": {"average_size": 10, "size_variation": -1}}),
        json!({"type": "latency", "attributes": {"latency": -100}}),
        json!({"type": "timeout", "attributes": {"timeout": -1}}),
        json!({"type": "latency", "toxicity": 2.5}),
        json!({"type": "latency", "toxicity": -1}),
        json!({"type": "drop", "attributes": {"probability": 1.5}}),
        json!({"type": "packet_loss", "attributes": {"rto": 0}}),
        json!({"type": "latency", "attributes": {"distribution": "zipf"}}),
        json!({"type": "latency", "duration_ms": 0}),
        json!({"type": "latency", "duration_ms": u64::MAX}),
        json!({"type": "latency", "attributes": {"latency": i64::MAX}}),
        json!({"type": "slicer", "attributes": {"average_size": 1, "delay": i64::MAX}}),
        json!({"type": "latency", "schedule": {"on_ms": 1, "off_ms": u64::MAX}}),
        json!({"type": "latency", "schedule": {"on_ms": 100}}),
        json!({"type": "latency", "target": {"cidrs": ["300.1.1.1/8"]}}),
        json!({"type": "latency", "target": {"fraction": 2}}),
    ];
    for body in cases {
        let r = h.post("/proxies/p/toxics", body.clone()).await;
        assert_error(&r, 400, "bad request body: ");
    }
    let r = h
        .post(
            "/proxies/p/toxics/t",
            json!({"attributes": {"latency": -5}}),
        )
        .await;
    assert_error(&r, 400, "bad request body: ");
    assert_eq!(h.get("/proxies").await.json(), state);
}

/// A storm of odd requests leaves the server answering and its state unchanged.
#[tokio::test]
async fn odd_requests_never_take_the_server_down() {
    let (h, state) = setup().await;
    let bodies = [
        "null",
        "true",
        "0",
        "\"s\"",
        "[]",
        "{}",
        "[[[[[]]]]]",
        "{\"a\":{\"b\":{\"c\":[]}}}",
        "{\"attributes\":null}",
        "{\"toxicity\":1e400}",
        "{\"name\":\"\\u0000\"}",
        "{\"listen\":\"[::1\"}",
        "{\"upstream\":\"\"}",
        "{\"enabled\":null}",
    ];
    for body in bodies {
        for path in ["/proxies/p", "/proxies/p/toxics/t", "/populate"] {
            let r = h.send("POST", path, Some(body)).await;
            assert!(r.status < 600, "{path} {body}");
        }
        let r = h.send("POST", "/proxies/p/toxics", Some(body)).await;
        assert!(r.status >= 400 && r.status < 500, "{body}: {}", r.status);
    }
    let mut now = h.get("/proxies").await.json();
    // `{"upstream":""}` and friends are refused; `{}`-like bodies are no-ops.
    now["p"]["listen"] = state["p"]["listen"].clone();
    assert_eq!(now, state);
    assert_eq!(h.get("/version").await.status, 200);
}

/// A wrong JSON type is refused with a message naming the field, the object and the type
/// expected, in faultline's words rather than Go's.
#[tokio::test]
async fn wrong_type_names_the_field() {
    let (h, state) = setup().await;
    let cases = [
        (
            "/proxies",
            json!({"name": 1, "upstream": "x:1"}),
            "bad request body: field \"name\" of proxy must be a string, got a number",
        ),
        (
            "/proxies/p",
            json!({"enabled": "yes"}),
            "bad request body: field \"enabled\" of proxy must be true or false, got a string",
        ),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "toxicity": "high"}),
            "bad request body: field \"toxicity\" of toxic must be a number, got a string",
        ),
        (
            "/proxies/p/toxics",
            json!({"type": "latency", "attributes": {"latency": "slow"}}),
            "bad request body: attribute latency of latency toxic must be an integer, got a string",
        ),
        (
            "/populate",
            json!({"name": "not a list"}),
            "bad request body: populate expects a JSON array of proxies, got an object",
        ),
        (
            "/proxies",
            json!(["not", "an", "object"]),
            "bad request body: a proxy must be a JSON object, got an array",
        ),
    ];
    for (path, body, message) in cases {
        let r = h.post(path, body).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"], json!(message), "{path}");
    }
    assert_eq!(h.get("/proxies").await.json(), state);
}
