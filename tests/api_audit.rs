//! Every change on record: each state-changing request appears in `/events` as an
//! `api_request` event and in the log (info when it changed something, debug when refused),
//! with the remote address, what it asked and the result.

mod common;

use common::*;
use faultline::api::ApiOptions;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Reads server-sent events of type `api_request` until `count` have arrived.
async fn api_events(mut response: reqwest::Response, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut pending = String::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("events keep coming")
            .unwrap()
            .expect("stream stays open");
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    let event: Value = serde_json::from_str(data).unwrap();
                    if event["type"] == "api_request" {
                        events.push(event);
                    }
                }
            }
        }
    }
    events
}

/// Each kind of change (and a refused one) is an `api_request` event naming the action, the
/// proxy and toxic, the client's address and the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_an_event() {
    let h = Harness::start().await;
    let stream = h.http.get(h.url("/events")).send().await.unwrap();
    let upstream = echo_server().await.to_string();
    let proxy = json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream});
    let calls: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "/proxies", Some(proxy.clone())),
        ("PATCH", "/proxies/p", Some(json!({"enabled": false}))),
        (
            "POST",
            "/proxies/p/toxics",
            Some(json!({"name": "t", "type": "latency"})),
        ),
        (
            "PATCH",
            "/proxies/p/toxics/t",
            Some(json!({"attributes": {"latency": 5}})),
        ),
        ("DELETE", "/proxies/p/toxics/t", None),
        (
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "gremlin"})),
        ),
        ("POST", "/populate", Some(json!([proxy]))),
        ("POST", "/reset", None),
        ("DELETE", "/proxies/p", None),
    ];
    for (method, path, body) in &calls {
        let body = body.as_ref().map(Value::to_string);
        h.send(method, path, body.as_deref()).await;
    }
    let events = api_events(stream, calls.len()).await;
    let seen: Vec<(String, String, String, u64)> = events
        .iter()
        .map(|e| {
            let d = &e["detail"];
            (
                d["method"].as_str().unwrap().to_string(),
                d["path"].as_str().unwrap().to_string(),
                d["action"].as_str().unwrap().to_string(),
                d["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("POST", "/proxies", "create proxy", 201),
        ("PATCH", "/proxies/p", "update proxy", 200),
        ("POST", "/proxies/p/toxics", "add toxic", 200),
        ("PATCH", "/proxies/p/toxics/t", "update toxic", 200),
        ("DELETE", "/proxies/p/toxics/t", "remove toxic", 204),
        ("POST", "/proxies/p/toxics", "add toxic", 400),
        ("POST", "/populate", "populate", 201),
        ("POST", "/reset", "reset", 204),
        ("DELETE", "/proxies/p", "delete proxy", 204),
    ];
    let expected: Vec<(String, String, String, u64)> = expected
        .iter()
        .map(|(m, p, a, s)| (m.to_string(), p.to_string(), a.to_string(), *s))
        .collect();
    assert_eq!(seen, expected);
    for event in &events {
        assert!(
            event["client"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{event}"
        );
    }
    assert_eq!(events[3]["proxy"], json!("p"));
    assert_eq!(events[3]["toxic"], json!("t"));
    assert_eq!(
        events[3]["detail"]["request"],
        json!(r#"{"attributes":{"latency":5}}"#)
    );
    assert!(events[5]["detail"]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid toxic type \"gremlin\""));
    assert!(events[0]["detail"].get("error").is_none());
}

/// A running binary whose log lines (JSON) arrive on a channel.
struct Logged {
    child: Child,
    lines: mpsc::Receiver<Value>,
    api: String,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_logged(log_level: Option<&str>, args: &[&str]) -> Logged {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultline"));
    command
        .args(["--port", "0", "--log-format", "json"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env_remove("FAULTLINE_API_TOKEN")
        .env_remove("FAULTLINE_MAX_BODY_BYTES")
        .stdout(Stdio::piped());
    if let Some(level) = log_level {
        command.env("LOG_LEVEL", level);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(value);
            }
        }
    });
    let api = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the server reports its address");
        if let Some(address) = line["fields"]["address"].as_str() {
            break address.to_string();
        }
    };
    Logged { child, lines, api }
}

impl Logged {
    /// Log lines until one whose message contains `needle`, that one included.
    fn until(&self, needle: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no log line with {needle:?} after {seen:#?}"));
            let found = line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle));
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
}

/// At the default level, a change is one info line with the remote address, the action, the
/// request and the status; a refused request is not shown.
#[tokio::test]
async fn changes_are_logged_at_info_and_refusals_are_not() {
    let server = spawn_logged(None, &[]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.api);
    let refused = http
        .post(url("/proxies"))
        .body(r#"{"name": "p", "upstrem": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let created = http
        .post(url("/proxies"))
        .body(r#"{"name": "p", "upstream": "127.0.0.1:1", "enabled": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let lines = server.until("api: create proxy");
    let audit = lines.last().unwrap();
    assert_eq!(audit["level"], json!("INFO"));
    let fields = &audit["fields"];
    assert!(fields["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(
        (&fields["method"], &fields["path"], &fields["status"]),
        (&json!("POST"), &json!("/proxies"), &json!(201))
    );
    assert!(fields["request"].as_str().unwrap().contains("127.0.0.1:1"));
    assert!(
        lines.iter().all(|l| l["level"] != "DEBUG"
            && !l["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("refused")),
        "{lines:#?}"
    );
}

/// At debug level, a refused request is logged with its reason.
#[tokio::test]
async fn refusals_are_logged_at_debug_with_the_reason() {
    let server = spawn_logged(Some("debug"), &[]);
    let refused = reqwest::Client::new()
        .post(format!("http://{}/proxies", server.api))
        .body(r#"{"name": "p", "upstrem": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let lines = server.until("api: create proxy refused");
    let line = lines.last().unwrap();
    assert_eq!(line["level"], json!("DEBUG"));
    assert!(
        line["fields"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unknown field \"upstrem\" in proxy"),
        "{line}"
    );
}

const TOKEN: &str = "s3cret-token";

/// A server requiring [`TOKEN`] and taking bodies of up to 1 KiB.
async fn guarded() -> Harness {
    Harness::with_api(ApiOptions {
        token: Some(TOKEN.into()),
        max_body_bytes: 1024,
        ..ApiOptions::default()
    })
    .await
}

/// `/events` of a server requiring [`TOKEN`].
async fn guarded_events(h: &Harness) -> reqwest::Response {
    let stream = h
        .http
        .get(h.url("/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

/// Changes the guard refuses (no token, a wrong token, a foreign `Host`, a body too large) are
/// `api_request` events like other refusals, with the action, the status, the reason and the
/// caller, and without the token that was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_refusals_are_events() {
    let h = guarded().await;
    let stream = guarded_events(&h).await;
    let big = format!(r#"{{"name": "p", "upstream": "{}"}}"#, "x".repeat(2000));
    let requests = [
        h.http.post(h.url("/proxies")),
        h.http
            .delete(h.url("/proxies/p"))
            .bearer_auth("wrong-guess"),
        h.http
            .post(h.url("/reset"))
            .bearer_auth(TOKEN)
            .header("host", "evil.example"),
        h.http.post(h.url("/proxies")).bearer_auth(TOKEN).body(big),
    ];
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 403, 413]);
    let events = api_events(stream, statuses.len()).await;
    let seen: Vec<(&str, &str, &str, u64)> = events
        .iter()
        .map(|e| {
            let d = &e["detail"];
            (
                d["method"].as_str().unwrap(),
                d["path"].as_str().unwrap(),
                d["action"].as_str().unwrap(),
                d["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/proxies", "create proxy", 401),
            ("DELETE", "/proxies/p", "delete proxy", 401),
            ("POST", "/reset", "reset", 403),
            ("POST", "/proxies", "create proxy", 413),
        ]
    );
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["detail"]["error"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].starts_with("missing or wrong API token"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("missing or wrong API token"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("Host \"evil.example\" is not allowed"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].starts_with("request body larger than 1024 bytes"),
        "{reasons:?}"
    );
    assert_eq!(events[1]["proxy"], json!("p"));
    for event in &events {
        assert!(
            event["client"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{event}"
        );
        let text = event.to_string();
        assert!(
            !text.contains(TOKEN) && !text.contains("wrong-guess"),
            "{text}"
        );
    }
}

/// A read the guard refuses changes nothing and is not an event: the first event after it is
/// the refused change that followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_refused_reads_are_not_events() {
    let h = guarded().await;
    let stream = guarded_events(&h).await;
    assert_eq!(h.get("/proxies").await.status, 401);
    assert_eq!(h.send("POST", "/reset", None).await.status, 401);
    let events = api_events(stream, 1).await;
    assert_eq!(
        (&events[0]["detail"]["method"], &events[0]["detail"]["path"]),
        (&json!("POST"), &json!("/reset"))
    );
}

/// At debug level, each change the guard refuses (401, 403, 413) is a log line with the remote
/// address, method, path, status and reason; no line carries the token sent.
#[tokio::test]
async fn guard_refusals_are_logged_at_debug() {
    let server = spawn_logged(
        Some("debug"),
        &["--api-token", TOKEN, "--max-body-bytes", "1024"],
    );
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.api);
    let cases = [
        (
            http.post(url("/proxies")).bearer_auth("wrong-guess"),
            401,
            "missing or wrong API token",
        ),
        (
            http.post(url("/proxies"))
                .bearer_auth(TOKEN)
                .header("host", "evil.example"),
            403,
            "Host \"evil.example\" is not allowed",
        ),
        (
            http.post(url("/proxies"))
                .bearer_auth(TOKEN)
                .body("x".repeat(2000)),
            413,
            "request body larger than 1024 bytes",
        ),
    ];
    for (request, status, reason) in cases {
        assert_eq!(request.send().await.unwrap().status(), status);
        let lines = server.until("api: create proxy refused");
        let line = lines.last().unwrap();
        assert_eq!(line["level"], json!("DEBUG"));
        let fields = &line["fields"];
        assert!(fields["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(
            (&fields["method"], &fields["path"], &fields["status"]),
            (&json!("POST"), &json!("/proxies"), &json!(status))
        );
        assert!(
            fields["reason"].as_str().unwrap().starts_with(reason),
            "{line}"
        );
        for line in &lines {
            let text = line.to_string();
            assert!(
                !text.contains(TOKEN) && !text.contains("wrong-guess"),
                "{text}"
            );
        }
    }
}

/// Every kind of change (create, update and delete of a proxy, add, update and remove of a
/// toxic, populate, reset) is one info line naming the action, with the remote address, the
/// method, the path, the status and the request body.
#[tokio::test]
async fn every_kind_of_change_is_logged_at_info() {
    let server = spawn_logged(None, &[]);
    let http = reqwest::Client::new();
    let proxy = json!({"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"});
    let calls: [(&str, &str, Option<Value>, &str, u16); 8] = [
        ("POST", "/proxies", Some(proxy.clone()), "create proxy", 201),
        (
            "PATCH",
            "/proxies/p",
            Some(json!({"enabled": false})),
            "update proxy",
            200,
        ),
        (
            "POST",
            "/proxies/p/toxics",
            Some(json!({"name": "t", "type": "latency"})),
            "add toxic",
            200,
        ),
        (
            "PATCH",
            "/proxies/p/toxics/t",
            Some(json!({"attributes": {"latency": 5}})),
            "update toxic",
            200,
        ),
        ("DELETE", "/proxies/p/toxics/t", None, "remove toxic", 204),
        ("POST", "/populate", Some(json!([proxy])), "populate", 201),
        ("POST", "/reset", None, "reset", 204),
        ("DELETE", "/proxies/p", None, "delete proxy", 204),
    ];
    for (method, path, body, action, status) in calls {
        let mut request = http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("http://{}{path}", server.api),
        );
        if let Some(body) = &body {
            request = request.body(body.to_string());
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            status,
            "{method} {path}"
        );
        let lines = server.until(&format!("api: {action}"));
        let line = lines.last().unwrap();
        let fields = &line["fields"];
        assert_eq!(
            (&line["level"], &fields["message"]),
            (&json!("INFO"), &json!(format!("api: {action}"))),
            "{line}"
        );
        assert!(
            fields["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{line}"
        );
        assert_eq!(
            (&fields["method"], &fields["path"], &fields["status"]),
            (&json!(method), &json!(path), &json!(status)),
            "{line}"
        );
        let quoted = body.map(|b| b.to_string()).unwrap_or_default();
        assert_eq!(fields["request"], json!(quoted), "{line}");
    }
}
