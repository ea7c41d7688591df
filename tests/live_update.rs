//! Changing toxics on live connections never loses, duplicates or reorders a byte.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A deterministic, non-repeating byte stream (xorshift), so any lost, duplicated or
/// reordered chunk shows up.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Streams 24 MB through an echo proxy while toxics are added, updated and removed in both
/// directions, over and over; every byte comes back, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_survives_toxic_churn() {
    let h = Arc::new(Harness::start().await);
    let addr = h.proxy("p", echo_server().await).await;
    let sent = Arc::new(pattern(24 << 20));
    let done = Arc::new(AtomicBool::new(false));

    let churn = {
        let (h, done) = (h.clone(), done.clone());
        tokio::spawn(async move {
            let mut changes = 0u32;
            while !done.load(Ordering::Relaxed) {
                for stream in ["upstream", "downstream"] {
                    let lat = format!("lat_{stream}");
                    h.toxic(
                        "p",
                        json!({"name": lat, "type": "latency", "stream": stream,
                                        "attributes": {"latency": 3, "jitter": 2}}),
                    )
                    .await;
                    h.toxic(
                        "p",
                        json!({"name": format!("bw_{stream}"), "type": "bandwidth",
                                        "stream": stream, "attributes": {"rate": 100_000}}),
                    )
                    .await;
                    h.toxic("p", json!({"name": format!("sl_{stream}"), "type": "slicer",
                                        "stream": stream,
                                        "attributes": {"average_size": 4096, "size_variation": 1024}}))
                        .await;
                    h.toxic(
                        "p",
                        json!({"name": format!("pl_{stream}"), "type": "packet_loss",
                                        "stream": stream,
                                        "attributes": {"probability": 0.001, "rto": 5}}),
                    )
                    .await;
                    // Let the full chain act on the stream for a moment before changing it.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let r = h
                        .post(
                            &format!("/proxies/p/toxics/{lat}"),
                            json!({"attributes": {"latency": 1}, "toxicity": 0.5}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.body);
                    for name in ["lat", "bw", "sl", "pl"] {
                        let r = h
                            .delete(&format!("/proxies/p/toxics/{name}_{stream}"))
                            .await;
                        assert_eq!(r.status, 204);
                    }
                    changes += 9;
                }
                h.toxic("p", json!({"name": "n", "type": "noop"})).await;
                h.send("POST", "/reset", None).await;
                changes += 2;
            }
            changes
        })
    };

    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.split();
    let to_send = sent.clone();
    let (_, received) = tokio::join!(
        async {
            for chunk in to_send.chunks(64 * 1024) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        },
        async {
            let mut received = Vec::with_capacity(sent.len());
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = tokio::time::timeout(Duration::from_secs(20), r.read(&mut buf))
                    .await
                    .expect("stream keeps moving")
                    .unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
            received
        }
    );
    done.store(true, Ordering::Relaxed);
    let changes = churn.await.unwrap();
    assert_eq!(received.len(), sent.len(), "length after {changes} changes");
    let first_difference = received.iter().zip(sent.iter()).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "bytes differ after {changes} changes"
    );
    assert!(
        changes >= 20,
        "only {changes} changes happened during the transfer"
    );
}

/// Toxiproxy's TestNoDataDropped: 65,535 sequential 2-byte values while a 1 s latency toxic
/// is added and removed in a tight loop; every value arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_values_survive_add_remove() {
    let h = Arc::new(Harness::start().await);
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    let done = Arc::new(AtomicBool::new(false));
    let churn = {
        let (h, done) = (h.clone(), done.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !done.load(Ordering::Relaxed) {
                h.toxic(
                    "p",
                    json!({"name": "l", "type": "latency", "stream": "upstream",
                                    "attributes": {"latency": 1000}}),
                )
                .await;
                h.delete("/proxies/p/toxics/l").await;
                rounds += 1;
            }
            rounds
        })
    };
    let mut s = TcpStream::connect(addr).await.unwrap();
    for i in 0..=u16::MAX {
        s.write_all(&i.to_be_bytes()).await.unwrap();
        if i % 4096 == 0 {
            tokio::task::yield_now().await;
        }
    }
    s.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .unwrap()
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let rounds = churn.await.unwrap();
    assert_eq!(got.data.len(), 2 * 65_536);
    for (i, pair) in got.data.chunks(2).enumerate() {
        assert_eq!(
            u16::from_be_bytes([pair[0], pair[1]]) as usize,
            i,
            "after {rounds} rounds"
        );
    }
    assert!(rounds >= 1);
}
