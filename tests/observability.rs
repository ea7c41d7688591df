//! Seeing what faults do: events arrive in order for a scripted scenario, and counters and
//! metrics move with traffic and toxics.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;

/// Reads the next `count` server-sent events of `stream`, audit events aside; later ones
/// stay buffered for the next call.
async fn next_events(stream: &mut SseEvents, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < count {
        // API calls are on record too; these tests follow proxies and data.
        let not_audit = |event: &Value| event["type"] != "api_request";
        events.push(stream.next_where(Duration::from_secs(5), not_audit).await);
    }
    events
}

/// A scripted scenario produces its events in order, each with a time and a rising sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order() {
    let h = Harness::start().await;
    let mut stream = SseEvents::subscribe(&h).await;
    let upstream = echo_server().await;
    let addr = h.proxy("p", upstream).await;
    h.toxic(
        "p",
        json!({"name": "cap", "type": "limit_data", "attributes": {"bytes": 2}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"abc")
        .await
        .unwrap();
    let _ = read_all(&mut s, Duration::from_secs(5)).await;
    // The proxy reports the close just after the client sees it: wait for the report, so
    // the removals below come after it.
    let mut events = next_events(&mut stream, 4).await;
    h.delete("/proxies/p/toxics/cap").await;
    h.delete("/proxies/p").await;
    events.extend(next_events(&mut stream, 2).await);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "proxy_created",
            "toxic_added",
            "connection_opened",
            "connection_closed",
            "toxic_removed",
            "proxy_deleted",
        ],
        "{events:#?}"
    );
    assert!(events
        .iter()
        .all(|e| e["time"].as_str().unwrap().ends_with('Z')));
    assert!(events
        .windows(2)
        .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));
    let closed = events
        .iter()
        .find(|e| e["type"] == "connection_closed")
        .unwrap();
    assert_eq!(closed["detail"]["how"], json!("cut"), "limit_data cut it");
}

/// Counters and metrics follow traffic, and count what toxics did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_toxics() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, &[1u8; 1000]).await;
    h.toxic(
        "p",
        json!({"name": "slow", "type": "latency", "attributes": {"latency": 10}}),
    )
    .await;
    round_trip(&mut s, &[2u8; 10]).await;
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["downstream"]["delayed_chunks"], json!(1));
    h.delete("/proxies/p/toxics/slow").await;
    eventually("1000 bytes counted each way", || async {
        let stats = h.get("/proxies/p/stats").await.json();
        stats["upstream"]["received_bytes"] == json!(1010)
            && stats["downstream"]["sent_bytes"] == json!(1010)
    })
    .await;

    h.toxic(
        "p",
        json!({"type": "reset_peer", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut s2 = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s2, b"x")
        .await
        .unwrap();
    let _ = read_all(&mut s2, Duration::from_secs(5)).await;
    let metrics = h.get("/metrics").await.body;
    assert!(
        metrics.contains("faultline_toxic_cuts_total{proxy=\"p\",kind=\"reset\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("faultline_toxics{proxy=\"p\"} 1"));
    assert!(
        metrics.contains(
            "faultline_toxic_dropped_bytes_total{proxy=\"p\",direction=\"downstream\"} 1"
        ),
        "reset_peer dropped the reply: {metrics}"
    );
    assert!(metrics.contains("faultline_connections_total{proxy=\"p\"} 2"));
    let sent = format!(
        "toxiproxy_proxy_sent_bytes_total{{direction=\"downstream\",listener=\"{addr}\",proxy=\"p\",upstream="
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(&sent) && l.ends_with(" 1010")),
        "{metrics}"
    );
}

/// Removing a `timeout` toxic closes the connection it was holding, and that one close is
/// counted once (in the stats and in `/metrics`), not once per place that noticed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toxic_cut_is_counted_once() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic("p", json!({"name": "hang", "type": "timeout"}))
        .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"held")
        .await
        .unwrap();
    eventually("the held bytes reach the proxy", || async {
        h.get("/proxies/p/stats").await.json()["downstream"]["received_bytes"] == json!(4)
    })
    .await;
    h.delete("/proxies/p/toxics/hang").await;
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty() && end.is_ok(), "closed on removal");
    eventually("the connection is gone", || async {
        h.get("/proxies/p/stats").await.json()["connections_active"] == json!(0)
    })
    .await;
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["toxic_closes"], json!(1), "{stats}");
    let metrics = h.get("/metrics").await.body;
    assert!(
        metrics.contains("faultline_toxic_cuts_total{proxy=\"p\",kind=\"close\"} 1"),
        "{metrics}"
    );
}

/// Waits for the next `connection_refused` event, and returns what refused the client (`by`).
async fn refused_by(stream: &mut SseEvents) -> String {
    let refused = |event: &Value| event["type"] == "connection_refused";
    let event = stream.next_where(Duration::from_secs(5), refused).await;
    event["detail"]["by"].as_str().unwrap().to_string()
}

/// The `faultline_connections_refused_total` series of proxy `p` for one reason, from `/metrics`.
async fn refused_metric(h: &Harness, by: &str) -> Option<String> {
    let series = format!("faultline_connections_refused_total{{proxy=\"p\",by=\"{by}\"}} ");
    let metrics = h.get("/metrics").await.body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()).map(str::to_string))
}

/// A client held by a `blackhole` toxic is counted as refused by `blackhole` (and not by
/// `refuse`) in the proxy's stats and in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_client_is_counted() {
    let h = Harness::start().await;
    let mut stream = SseEvents::subscribe(&h).await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic("p", json!({"name": "void", "type": "blackhole"}))
        .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut client, b"anyone?")
        .await
        .unwrap();
    // The proxy holds the client until it gives up; the refusal is reported then.
    drop(client);
    assert_eq!(refused_by(&mut stream).await, "blackhole");
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(
        stats["connections_refused"]["blackhole"],
        json!(1),
        "{stats}"
    );
    assert_eq!(stats["connections_refused"]["refuse"], json!(0), "{stats}");
    assert_eq!(refused_metric(&h, "blackhole").await.as_deref(), Some("1"));
    assert_eq!(refused_metric(&h, "refuse").await.as_deref(), Some("0"));
}

/// A client reset by a `refuse` toxic is counted as refused by `refuse` (and not by
/// `blackhole`) in the proxy's stats and in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_is_counted() {
    let h = Harness::start().await;
    let mut stream = SseEvents::subscribe(&h).await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic("p", json!({"name": "gone", "type": "refuse"}))
        .await;
    // On loopback the reset can beat the connect's completion: either way, no bytes.
    match TcpStream::connect(addr).await {
        Ok(mut client) => {
            let (data, _) = read_all(&mut client, Duration::from_secs(5)).await;
            assert!(data.is_empty(), "a refused client gets no bytes");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert_eq!(refused_by(&mut stream).await, "refuse");
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["connections_refused"]["refuse"], json!(1), "{stats}");
    assert_eq!(
        stats["connections_refused"]["blackhole"],
        json!(0),
        "{stats}"
    );
    assert_eq!(refused_metric(&h, "refuse").await.as_deref(), Some("1"));
    assert_eq!(refused_metric(&h, "blackhole").await.as_deref(), Some("0"));
}
