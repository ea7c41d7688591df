//! Seeing what faults do: events arrive in order for a scripted scenario, and counters and
//! metrics move with traffic and toxics.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;

/// Reads server-sent events until `count` events have arrived.
async fn collect_events(mut response: reqwest::Response, count: usize) -> Vec<Value> {
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
                    events.push(serde_json::from_str(data).unwrap());
                }
            }
        }
    }
    events
}

/// A scripted scenario produces its events in order, each with a time and a rising sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order() {
    let h = Harness::start().await;
    let stream = h.http.get(h.url("/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.delete("/proxies/p/toxics/cap").await;
    h.delete("/proxies/p").await;

    let events = collect_events(stream, 6).await;
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
