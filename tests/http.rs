//! HTTP mode (`"protocol": "http"`): the HTTP toxics measured with a real HTTP server (axum)
//! and a real HTTP client (reqwest) or raw sockets, on loopback.

mod common;
mod http_support;

use common::*;
use faultline::registry::Options;
use http_support::*;
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Creates an HTTP proxy "web" in front of `upstream`; returns where it listens.
async fn http_proxy(h: &Harness, upstream: SocketAddr) -> SocketAddr {
    let reply = h
        .post(
            "/proxies",
            json!({"name": "web", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
                   "protocol": "http"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["protocol"], "http");
    reply.json()["listen"].as_str().unwrap().parse().unwrap()
}

/// A server, a real upstream and an HTTP proxy in front of it.
async fn setup() -> (Harness, SocketAddr, Hits) {
    let h = Harness::start().await;
    let (upstream, hits) = upstream().await;
    let proxy = http_proxy(&h, upstream).await;
    (h, proxy, hits)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn url(proxy: SocketAddr, path: &str) -> String {
    format!("http://{proxy}{path}")
}

/// With no toxic, responses arrive exactly as the upstream sent them, header case included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_exchange_passes_unchanged() {
    let (_h, proxy, hits) = setup().await;
    let (upstream, _) = upstream().await;
    let raw = b"GET /hello HTTP/1.1\r\nhost: x\r\nX-Odd-CASE: 1\r\n\r\n";
    let mut direct = TcpStream::connect(upstream).await.unwrap();
    direct.write_all(raw).await.unwrap();
    let direct_head = read_head(&mut direct).await;
    let mut proxied = TcpStream::connect(proxy).await.unwrap();
    proxied.write_all(raw).await.unwrap();
    let proxied_head = read_head(&mut proxied).await;
    // Only the Date header may differ between two answers.
    let strip = |h: &str| {
        h.lines()
            .filter(|l| !l.starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&proxied_head), strip(&direct_head));
    assert_eq!(read_n(&mut proxied, 5).await, b"hello");
    assert_eq!(hits.count("GET /hello"), 1);
}

/// `http_status` answers with its status, headers and body; the upstream never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_without_the_upstream() {
    let (h, proxy, hits) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_status", "attributes": {"status": 429,
               "headers": {"Retry-After": "2", "X-Fault": "storm"}, "body": "slow down"}}),
    )
    .await;
    let response = client().get(url(proxy, "/hello")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["x-fault"], "storm");
    assert_eq!(response.text().await.unwrap(), "slow down");
    assert_eq!(hits.count("GET /hello"), 0);
}

/// After a faulted request the same keep-alive connection carries the next one upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_survives_a_faulted_request() {
    let (h, proxy, hits) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_status", "attributes": {"status": 503, "path_prefix": "/fail"}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        read_n(&mut s, content_length(&head)).await;
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(read_n(&mut s, content_length(&head)).await, b"hello");
    }
    assert_eq!(hits.count("GET /hello"), 3);
    assert_eq!(hits.count("GET /fail"), 0);
    let stats = h.get("/proxies/web/stats").await.json();
    assert_eq!(stats["connections_total"], 1, "{stats}");
}

/// Pipelined requests get their responses in request order, synthetic ones included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_stay_in_order() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_status", "attributes": {"status": 418, "path_prefix": "/n/2"}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        b"GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/3 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let head = read_head(&mut s).await;
        let body = read_n(&mut s, content_length(&head)).await;
        let status = head.split(' ').nth(1).unwrap().to_string();
        answers.push((status, String::from_utf8(body).unwrap()));
    }
    let statuses: Vec<&str> = answers.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["200", "418", "200"]);
    assert_eq!((answers[0].1.as_str(), answers[2].1.as_str()), ("1", "3"));
}

/// Only requests with the targeted method, path prefix and header value are faulted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_target_method_path_and_header() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_status", "attributes": {"status": 503, "method": "POST",
               "path_prefix": "/v1/chat", "header": "X-Tenant: ^blue$"}}),
    )
    .await;
    let c = client();
    // Only a POST under /v1/chat from tenant "blue" (exactly) matches.
    let cases = [
        (reqwest::Method::POST, "/v1/chat/x", "blue", 503),
        (reqwest::Method::GET, "/v1/chat/x", "blue", 200),
        (reqwest::Method::POST, "/v2/chat", "blue", 200),
        (reqwest::Method::POST, "/v1/chat", "green", 200),
        (reqwest::Method::POST, "/v1/chat", "blue-ish", 200),
    ];
    for (method, path, tenant, expected) in cases {
        let response = c
            .request(method.clone(), url(proxy, path))
            .header("X-Tenant", tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{method} {path} from {tenant}"
        );
    }
}

/// `http_header` edits requests (upstream stream) and responses (downstream stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_edits_requests_and_responses() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_header", "stream": "upstream",
               "attributes": {"set": {"X-Injected": "by-faultline"}}}),
    )
    .await;
    h.toxic(
        "web",
        json!({"type": "http_header", "stream": "downstream",
               "attributes": {"set": {"X-Fault": "1"}, "remove": ["server"]}}),
    )
    .await;
    let echo = client()
        .post(url(proxy, "/echo"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.headers()["x-seen-injected"], "by-faultline");
    assert_eq!(echo.headers()["x-fault"], "1");
    assert_eq!(echo.text().await.unwrap(), "payload");
    let hello = client().get(url(proxy, "/hello")).send().await.unwrap();
    assert!(hello.headers().get("server").is_none());
    assert_eq!(hello.headers()["x-upstream"], "yes");
}

/// A delay in the `request` phase holds the request before it reaches the upstream: the
/// upstream sees it no sooner than the delay after it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_request_phase_holds_the_request_before_the_upstream() {
    let (h, proxy, hits) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_delay", "attributes": {"delay": 400, "phase": "request"}}),
    )
    .await;
    let start = Instant::now();
    let response = client().get(url(proxy, "/hello")).send().await.unwrap();
    let first_byte = start.elapsed();
    let seen = hits
        .first_at("GET /hello")
        .expect("the upstream saw the request");
    assert_between(seen - start, ms(400), ms(3000));
    assert_between(first_byte, ms(400), ms(3000));
    assert_eq!(response.text().await.unwrap(), "hello");
}

/// A delay in the `response_headers` phase lets the request reach the upstream at once and
/// holds the response head instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_response_headers_phase_holds_the_response_not_the_request() {
    let (h, proxy, hits) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_delay", "attributes": {"delay": 600, "phase": "response_headers"}}),
    )
    .await;
    let start = Instant::now();
    let response = client().get(url(proxy, "/hello")).send().await.unwrap();
    let first_byte = start.elapsed();
    let seen = hits
        .first_at("GET /hello")
        .expect("the upstream saw the request");
    // Well before the delay has passed (a request-phase delay would put it past 600 ms).
    assert!(
        seen - start < ms(400),
        "upstream saw it after {:?}",
        seen - start
    );
    assert_between(first_byte, ms(600), ms(3000));
    assert_eq!(response.text().await.unwrap(), "hello");
}

/// A delay in the `body` phase spaces SSE events: event i arrives no sooner than i delays
/// after the headers, although the upstream sent them all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_body_phase_spaces_sse_events() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_delay", "attributes": {"delay": 150, "phase": "body"}}),
    )
    .await;
    let mut response = client().get(url(proxy, "/sse")).send().await.unwrap();
    let start = Instant::now();
    let mut text = String::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        arrivals.push((start.elapsed(), text.matches("\n\n").count()));
    }
    assert_eq!(
        text,
        "data: token0\n\ndata: token1\n\ndata: token2\n\ndata: token3\n\n"
    );
    for (at, events) in &arrivals {
        // Once the headers are out, at most one event may already be released.
        assert!(
            *at + ms(150) >= ms(150) * (*events as u32),
            "{events} events by {at:?}: {arrivals:?}"
        );
    }
    assert_between(arrivals.last().unwrap().0, ms(450), ms(5000));
}

/// A body delay on an event stream whose upstream sends four events in one chunk of one write
/// releases them one event at a time, `delay` apart, with the bytes (and valid chunked framing,
/// which the client decodes) unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_body_phase_spaces_sse_events_sent_in_one_chunk() {
    const EVENTS: &str = "data: a\n\nid: 2\r\ndata: b\r\n\r\n: note\n\ndata: d\n\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\ndata: a\n\nid: 2\r\ndata: b\r\n\r\n: note\n\ndata: d\n\n\r\n0\r\n\r\n";
    assert_eq!(EVENTS.len(), 0x2c);
    let h = Harness::start().await;
    let (upstream, _) = raw_upstream(RESPONSE).await;
    let proxy = http_proxy(&h, upstream).await;
    h.toxic(
        "web",
        json!({"type": "http_delay", "attributes": {"delay": 200, "phase": "body"}}),
    )
    .await;
    let mut response = client().get(url(proxy, "/stream")).send().await.unwrap();
    let start = Instant::now();
    let mut text = String::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        // Blank lines: `\n\n`, or `\r\n\r\n` (which holds `\n\r\n`).
        let events = text.matches("\n\n").count() + text.matches("\n\r\n").count();
        while arrivals.len() < events {
            arrivals.push(start.elapsed());
        }
    }
    assert_eq!(text, EVENTS);
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for pair in arrivals.windows(2) {
        // Released 200 ms apart; half of that allows for a late first observation.
        assert_between(pair[1] - pair[0], ms(100), ms(2000));
    }
    assert_between(arrivals[3], ms(600), ms(5000));
}

/// `before_response`: the request reaches the upstream and the client gets no byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_before_response_sends_nothing() {
    let (h, proxy, hits) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_abort", "attributes": {"phase": "before_response"}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty(), "{:?}", String::from_utf8_lossy(&data));
    assert!(end.is_ok(), "a clean close: {end:?}");
    assert_eq!(hits.count("GET /hello"), 1);
}

/// `after_headers`: the client gets the whole head and not one body byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_headers_sends_only_the_head() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_abort", "attributes": {"phase": "after_headers"}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8(data).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert_eq!(content_length(&text), 1000);
    assert!(end.is_ok());
}

/// `mid_body`: the client gets exactly the first `bytes` bytes of the body, then the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_body_cuts_at_the_byte() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_abort", "attributes": {"phase": "mid_body", "bytes": 123}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(content_length(&head), 1000);
    let (body, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert_eq!(body, big_body()[..123].to_vec());
    assert!(end.is_ok());
}

/// `reset: true` ends the exchange with a TCP reset instead of a clean close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_with_reset_resets_the_client() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "http_abort", "attributes": {"phase": "before_response", "reset": true}}),
    )
    .await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
    let stats = h.get("/proxies/web/stats").await.json();
    assert_eq!(stats["toxic_resets"], 1, "{stats}");
}

/// Under a fixed seed, toxicity 0.5 faults the same requests on every run, and a client that
/// honours `Retry-After` with backoff gets every answer through the 429 storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_through_a_seeded_429_storm() {
    async fn run() -> Vec<u16> {
        let h = Harness::with_options(Options { seed: Some(42) }).await;
        let (upstream, hits) = upstream().await;
        let proxy = http_proxy(&h, upstream).await;
        h.toxic(
            "web",
            json!({"type": "http_status", "toxicity": 0.5,
                   "attributes": {"status": 429, "headers": {"Retry-After": "1"}}}),
        )
        .await;
        let client = client();
        let mut seen = Vec::new();
        for i in 0..6 {
            let path = format!("/hello?i={i}");
            let mut backoff = ms(50);
            loop {
                let response = client.get(url(proxy, &path)).send().await.unwrap();
                let status = response.status().as_u16();
                seen.push(status);
                if status != 429 {
                    assert_eq!(response.text().await.unwrap(), "hello");
                    break;
                }
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let pause = Duration::from_secs(wait).max(backoff);
                let start = Instant::now();
                tokio::time::sleep(pause).await;
                assert!(start.elapsed() >= Duration::from_secs(1));
                backoff *= 2;
            }
        }
        assert_eq!(hits.count("GET /hello"), 6);
        seen
    }
    let (first, second) = tokio::join!(run(), run());
    assert_eq!(first, second, "the same requests are faulted on every run");
    assert!(first.contains(&429), "{first:?}");
    assert_eq!(first.iter().filter(|s| **s == 200).count(), 6);
}

/// TCP toxics keep acting on the bytes of an HTTP proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_latency_works_on_an_http_proxy() {
    let (h, proxy, _) = setup().await;
    h.toxic(
        "web",
        json!({"type": "latency", "attributes": {"latency": 250}}),
    )
    .await;
    let start = Instant::now();
    let response = client().get(url(proxy, "/hello")).send().await.unwrap();
    assert_between(start.elapsed(), ms(250), ms(3000));
    assert_eq!(response.text().await.unwrap(), "hello");
}

/// A WebSocket upgrade accepted by the upstream turns the connection into a byte tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    let h = Harness::start().await;
    let proxy = http_proxy(&h, upgrade_echo_upstream().await).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // Not HTTP any more: arbitrary bytes go both ways.
    let frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58 GET / HTTP/1.1\r\n\r\n";
    s.write_all(frame).await.unwrap();
    assert_eq!(read_n(&mut s, frame.len()).await, frame.to_vec());
}

/// `Expect: 100-continue` gets the upstream's interim answer before the body is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_and_chunked_bodies_pass() {
    let (_h, proxy, _) = setup().await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = read_head(&mut s).await;
    assert!(interim.starts_with("HTTP/1.1 100 "), "{interim}");
    s.write_all(b"hello").await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut s, content_length(&head)).await, b"hello");
    // A chunked request body on the same connection.
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(read_n(&mut s, content_length(&head)).await, b"abcde");
}

/// Each faulted request is counted per toxic (stats and /metrics) and published as an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulted_requests_are_counted_and_published() {
    let (h, proxy, _) = setup().await;
    let events = h.http.get(h.url("/events")).send().await.unwrap();
    h.toxic(
        "web",
        json!({"name": "storm", "type": "http_status",
               "attributes": {"status": 503, "path_prefix": "/fail"}}),
    )
    .await;
    let c = client();
    for _ in 0..2 {
        c.get(url(proxy, "/fail"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    c.get(url(proxy, "/hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats = h.get("/proxies/web/stats").await.json();
    assert_eq!(
        stats["http_faults"]["storm"],
        json!({"type": "http_status", "requests": 2}),
        "{stats}"
    );
    let metrics = h.get("/metrics").await.body;
    assert!(
        metrics.contains(r#"faultline_http_requests_faulted_total{proxy="web",toxic="storm",kind="http_status"} 2"#),
        "{metrics}"
    );
    let mut events = events;
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.matches("event: http_request_faulted").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline.into(), events.chunk())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains("http_request_faulted"))
        .unwrap();
    let event: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(event["toxic"], "storm");
    assert_eq!(event["detail"]["path"], "/fail");
    assert_eq!(event["detail"]["status"], 503);
}

/// HTTP toxics are refused on TCP proxies, and bad HTTP attributes get a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_input_is_refused_clearly() {
    let h = Harness::start().await;
    let (upstream, _) = upstream().await;
    h.proxy("plain", upstream).await;
    let reply = h
        .post(
            "/proxies/plain/toxics",
            json!({"type": "http_status", "attributes": {"status": 503}}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("\"protocol\": \"http\""),
        "{}",
        reply.body
    );
    http_proxy(&h, upstream).await;
    let cases = [
        (
            json!({"type": "http_status", "attributes": {"status": 700}}),
            "between 100 and 599",
        ),
        (json!({"type": "http_status", "attributes": {}}), "status"),
        (
            json!({"type": "http_delay", "attributes": {"delay": 1, "phase": "later"}}),
            "request, response_headers, body",
        ),
        (
            json!({"type": "http_abort", "attributes": {"phase": "sometime"}}),
            "before_response, after_headers, mid_body",
        ),
        (
            json!({"type": "http_status", "attributes": {"status": 503, "header": "NoColon"}}),
            "Name: regex",
        ),
        (
            json!({"type": "http_status", "attributes": {"status": 503, "header": "X-A: ("}}),
            "invalid regex",
        ),
        (
            json!({"type": "http_header", "attributes": {"set": {"X-A": "a\nb"}}}),
            "invalid header value",
        ),
    ];
    for (toxic, expected) in cases {
        let reply = h.post("/proxies/web/toxics", toxic.clone()).await;
        assert_eq!(reply.status, 400, "{toxic}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(expected), "{toxic}: {error}");
    }
    assert_eq!(h.get("/proxies/web/toxics").await.json(), json!([]));
    let reply = h
        .post("/proxies", json!({"name": "x", "listen": "127.0.0.1:0", "upstream": upstream.to_string(), "protocol": "udp"}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("tcp or http"), "{}", reply.body);
    let reply = h
        .post("/proxies", json!({"name": "y", "listen": "127.0.0.1:0", "upstream": upstream.to_string(), "upstream_tls": true}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("protocol"), "{}", reply.body);
}

/// A TCP proxy can become an HTTP proxy (and back, once its HTTP toxics are gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_can_be_changed() {
    let h = Harness::start().await;
    let (upstream, _) = upstream().await;
    h.proxy("p", upstream).await;
    assert_eq!(h.get("/proxies/p").await.json()["protocol"], "tcp");
    let reply = h.post("/proxies/p", json!({"protocol": "http"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["protocol"], "http");
    h.toxic(
        "p",
        json!({"name": "s", "type": "http_status", "attributes": {"status": 503}}),
    )
    .await;
    let reply = h.post("/proxies/p", json!({"protocol": "tcp"})).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("HTTP toxic s"), "{}", reply.body);
    let listen: SocketAddr = h.get("/proxies/p").await.json()["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let response = client().get(url(listen, "/hello")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
}

/// `PATCH /proxies/{name}` with `protocol` turns a TCP proxy into an HTTP one: its listener
/// then answers with an HTTP toxic's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_the_protocol() {
    let h = Harness::start().await;
    let (upstream, hits) = upstream().await;
    let listen = h.proxy("p", upstream).await;
    let reply = h
        .send("PATCH", "/proxies/p", Some(r#"{"protocol": "http"}"#))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["protocol"], "http");
    assert_eq!(h.get("/proxies/p").await.json()["protocol"], "http");
    h.toxic(
        "p",
        json!({"type": "http_status", "attributes": {"status": 418, "path_prefix": "/tea"}}),
    )
    .await;
    let c = client();
    let tea = c.get(url(listen, "/tea")).send().await.unwrap();
    assert_eq!(tea.status().as_u16(), 418);
    let hello = c.get(url(listen, "/hello")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello");
    assert_eq!(hits.list(), ["GET /hello"]);
}

/// Header names keep their case and order both ways: the upstream receives the client's
/// request head byte for byte, and the client the upstream's response head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_case_and_order_pass_unchanged_both_ways() {
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nx-LOWER-upper: 1\r\nCONTENT-length: 2\r\nzz-Last-First: a\r\nAa-second: b\r\n\r\nok";
    const REQUEST: &[u8] =
        b"GET /case HTTP/1.1\r\nhOST: x\r\nZ-First: 1\r\nx-MiXeD: two\r\nA-last: 3\r\n\r\n";
    let h = Harness::start().await;
    let (upstream, mut heads) = raw_upstream(RESPONSE).await;
    let proxy = http_proxy(&h, upstream).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let head = read_head(&mut s).await;
    let body = read_n(&mut s, 2).await;
    let mut received = head.into_bytes();
    received.extend(body);
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(RESPONSE)
    );
    let (seen, _) = tokio::time::timeout(Duration::from_secs(5), heads.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&seen),
        String::from_utf8_lossy(REQUEST)
    );
}

/// `/populate` takes the protocol too, and an unchanged HTTP proxy is kept as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_creates_http_proxies() {
    let h = Harness::start().await;
    let (upstream, _) = upstream().await;
    let list = json!([{"name": "web", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
                       "protocol": "http"}]);
    let reply = h.post("/populate", list.clone()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["proxies"][0]["protocol"], "http");
    h.toxic(
        "web",
        json!({"type": "http_status", "attributes": {"status": 503}}),
    )
    .await;
    let listen = reply.json()["proxies"][0]["listen"].clone();
    let again = json!([{"name": "web", "listen": listen, "upstream": upstream.to_string(),
                        "protocol": "http"}]);
    let reply = h.post("/populate", again).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.json()["proxies"][0]["toxics"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
