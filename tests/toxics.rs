//! Each toxic's measured effect on real traffic through a real upstream, in both streams.

mod common;

use common::*;
use faultline::registry::Options;
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server, an echo upstream, and a proxy "p" in front of it.
async fn echo_setup() -> (Harness, TcpStream) {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    (h, stream)
}

/// Downstream latency delays every reply by at least the configured time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_downstream_delays_replies() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 150}}),
    )
    .await;
    for _ in 0..3 {
        assert_between(round_trip(&mut s, b"ping").await, ms(150), ms(600));
    }
}

/// Upstream latency delays requests; both streams add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_upstream_and_both_streams_add_up() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 100}}),
    )
    .await;
    assert_between(round_trip(&mut s, b"a").await, ms(100), ms(500));
    h.toxic(
        "p",
        json!({"type": "latency", "stream": "downstream", "attributes": {"latency": 100}}),
    )
    .await;
    assert_between(round_trip(&mut s, b"b").await, ms(200), ms(700));
}

/// Jitter spreads delays within latency ± jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_jitter_stays_in_range() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 100, "jitter": 50}}),
    )
    .await;
    let mut samples = Vec::new();
    for _ in 0..8 {
        let t = round_trip(&mut s, b"j").await;
        assert_between(t, ms(50), ms(500));
        samples.push(t);
    }
    assert!(samples.iter().any(|t| *t != samples[0]));
}

/// A delay never serializes the stream: 20 writes 10 ms apart through 200 ms of latency all
/// arrive about 200 ms after they were sent, not 20 × 200 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_does_not_serialize_the_stream() {
    let (h, s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 200}}),
    )
    .await;
    let (mut r, mut w) = s.into_split();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..20u8 {
            w.write_all(&[i; 100]).await.unwrap();
            tokio::time::sleep(ms(10)).await;
        }
        w
    });
    let mut buf = vec![0u8; 2000];
    r.read_exact(&mut buf).await.unwrap();
    let elapsed = start.elapsed();
    assert_between(elapsed, ms(390), ms(1500));
    for i in 0..20u8 {
        assert!(buf[i as usize * 100..(i as usize + 1) * 100]
            .iter()
            .all(|b| *b == i));
    }
    drop(writer.await);
}

/// Downstream bandwidth: 100 KB at 200 KB/s takes about half a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_downstream_caps_rate() {
    let h = Harness::start().await;
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let addr = h.proxy("p", talker_server(payload.clone()).await).await;
    h.toxic(
        "p",
        json!({"type": "bandwidth", "attributes": {"rate": 200}}),
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(end.is_ok());
    assert_eq!(data, payload);
    assert_between(start.elapsed(), ms(450), ms(1500));
}

/// Upstream bandwidth: the server receives 100 KB at 200 KB/s over about half a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_upstream_caps_rate() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 200}}),
    )
    .await;
    let payload = vec![7u8; 100_000];
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&payload).await.unwrap();
    s.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.data, payload);
    assert_between(start.elapsed(), ms(450), ms(1500));
}

/// Rate 0 stalls the stream and keeps it open (a partition); removing the toxic lets the
/// held data through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_zero_is_a_partition() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"name": "cut", "type": "bandwidth", "attributes": {"rate": 0}}),
    )
    .await;
    s.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    let stalled = tokio::time::timeout(ms(300), s.read_exact(&mut buf)).await;
    assert!(stalled.is_err(), "nothing passes while partitioned");
    h.delete("/proxies/p/toxics/cut").await;
    tokio::time::timeout(ms(2000), s.read_exact(&mut buf))
        .await
        .expect("released on removal")
        .unwrap();
    assert_eq!(&buf, b"held");
}

/// Downstream slow_close: data arrives at once, the server's close arrives `delay` later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_close_downstream_delays_close() {
    let h = Harness::start().await;
    let addr = h.proxy("p", talker_server(b"bye".to_vec()).await).await;
    h.toxic(
        "p",
        json!({"type": "slow_close", "attributes": {"delay": 300}}),
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).await.unwrap();
    assert!(start.elapsed() < ms(250), "data is not delayed");
    let (rest, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(rest.is_empty() && end.is_ok());
    assert_between(start.elapsed(), ms(300), ms(1500));
}

/// Upstream slow_close: the server sees the client's end-of-stream `delay` late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_close_upstream_delays_close() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "slow_close", "stream": "upstream", "attributes": {"delay": 300}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let start = Instant::now();
    s.shutdown().await.unwrap();
    let got = received.recv().await.unwrap();
    assert_eq!(got.data, b"x");
    assert_between(start.elapsed(), ms(300), ms(1500));
}

/// Downstream timeout: replies are swallowed and the connection closes after the idle time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_downstream_swallows_then_closes() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "timeout", "attributes": {"timeout": 300}}),
    )
    .await;
    let start = Instant::now();
    s.write_all(b"anyone?").await.unwrap();
    let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty(), "nothing comes back");
    assert_between(start.elapsed(), ms(300), ms(1500));
}

/// Upstream timeout: the server never receives anything; the client is closed after the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_upstream_swallows_then_closes() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 200}}),
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"lost").await.unwrap();
    let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    assert_between(start.elapsed(), ms(200), ms(1500));
    let got = received.recv().await.unwrap();
    assert!(got.data.is_empty());
}

/// Timeout 0 swallows forever without closing; removing the toxic closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_zero_hangs_until_removed() {
    let (h, mut s) = echo_setup().await;
    h.toxic("p", json!({"name": "hang", "type": "timeout"}))
        .await;
    s.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 1];
    assert!(tokio::time::timeout(ms(400), s.read(&mut buf))
        .await
        .is_err());
    h.delete("/proxies/p/toxics/hang").await;
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty() && end.is_ok(), "closed on removal");
}

async fn expect_reset(s: &mut TcpStream, within: Duration) {
    let (_, end) = read_all(s, within).await;
    let err = end.expect_err("connection is reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// Downstream reset_peer: on the first reply the client sees ECONNRESET after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_downstream_resets() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "reset_peer", "attributes": {"timeout": 200}}),
    )
    .await;
    let start = Instant::now();
    s.write_all(b"x").await.unwrap();
    expect_reset(&mut s, Duration::from_secs(5)).await;
    assert_between(start.elapsed(), ms(200), ms(1500));
}

/// Upstream reset_peer: both the client and the server see a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_upstream_resets_both_sides() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 100}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    s.write_all(b"boom").await.unwrap();
    expect_reset(&mut s, Duration::from_secs(5)).await;
    assert_between(start.elapsed(), ms(100), ms(1500));
    let got = received.recv().await.unwrap();
    assert!(got.data.is_empty(), "the data that triggered it is dropped");
    assert_eq!(got.error, Some(ErrorKind::ConnectionReset));
}

/// reset_peer does nothing while no data flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_waits_for_data() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "reset_peer", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut buf = [0u8; 1];
    assert!(tokio::time::timeout(ms(300), s.read(&mut buf))
        .await
        .is_err());
}

/// Downstream slicer: the client receives the bytes intact, in many small reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slicer_downstream_slices() {
    let h = Harness::start().await;
    let payload: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
    let addr = h.proxy("p", talker_server(payload.clone()).await).await;
    h.toxic(
        "p",
        json!({"type": "slicer", "attributes": {"average_size": 50, "size_variation": 20, "delay": 2000}}),
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut data = Vec::new();
    let mut reads = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        data.extend_from_slice(&buf[..n]);
    }
    assert_eq!(data, payload);
    // At least 5000 / 70 slices, each 2 ms after the previous one.
    assert_between(start.elapsed(), ms(140), Duration::from_secs(5));
    // A busy machine may let a few slices pile up before the client reads; most do not.
    assert!(reads >= 10, "only {reads} reads");
}

/// Upstream slicer: the server receives the bytes intact in many small reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slicer_upstream_slices() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "slicer", "stream": "upstream", "attributes": {"average_size": 10, "delay": 1000}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let payload = b"a message that will arrive in pieces of ten bytes".repeat(4);
    let start = Instant::now();
    s.write_all(&payload).await.unwrap();
    s.shutdown().await.unwrap();
    let got = received.recv().await.unwrap();
    assert_eq!(got.data, payload);
    // 196 bytes make at least 20 slices, each 1 ms after the previous one.
    assert_between(start.elapsed(), ms(19), Duration::from_secs(5));
    assert!(got.reads.len() >= 3, "{} reads", got.reads.len());
}

/// Downstream limit_data: exactly `bytes` bytes arrive, then end-of-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_downstream_cuts() {
    let h = Harness::start().await;
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let addr = h.proxy("p", talker_server(payload.clone()).await).await;
    h.toxic(
        "p",
        json!({"type": "limit_data", "attributes": {"bytes": 100}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(end.is_ok());
    assert_eq!(data, payload[..100]);
}

/// Upstream limit_data: the server receives exactly `bytes` bytes, then the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_upstream_cuts() {
    let h = Harness::start().await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 5}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"abc").await.unwrap();
    tokio::time::sleep(ms(50)).await;
    let _ = s.write_all(b"defgh").await;
    let got = received.recv().await.unwrap();
    assert_eq!(got.data, b"abcde");
    let (_, end) = read_all(&mut s, Duration::from_secs(5)).await;
    let _ = end;
}

/// packet_loss delays data by retransmission timeouts but never loses or reorders it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_delays_but_delivers_everything() {
    let h = Harness::with_options(Options { seed: Some(7) }).await;
    let addr = h.proxy("p", echo_server().await).await;
    for stream in ["upstream", "downstream"] {
        h.toxic(
            "p",
            json!({"type": "packet_loss", "stream": stream,
                   "attributes": {"probability": 0.3, "rto": 100}}),
        )
        .await;
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    let payload: Vec<u8> = (0..60_000u32).map(|i| (i % 253) as u8).collect();
    let start = Instant::now();
    let (mut r, mut w) = s.split();
    let (_, back) = tokio::join!(w.write_all(&payload), async {
        let mut back = vec![0u8; payload.len()];
        r.read_exact(&mut back).await.unwrap();
        back
    });
    assert_eq!(back, payload);
    assert_between(start.elapsed(), ms(100), Duration::from_secs(20));
}

/// drop with probability 1 discards everything but keeps the connection open; the
/// connection carries data again once the toxic is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_discards_chunks() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"name": "d", "type": "drop", "stream": "upstream", "attributes": {"probability": 1.0}}),
    )
    .await;
    s.write_all(b"gone").await.unwrap();
    let mut buf = [0u8; 4];
    assert!(tokio::time::timeout(ms(300), s.read(&mut buf))
        .await
        .is_err());
    h.delete("/proxies/p/toxics/d").await;
    round_trip(&mut s, b"back").await;
}

/// corrupt with probability 1 changes every byte by one bit, in both streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_flips_bits() {
    let (h, mut s) = echo_setup().await;
    h.toxic(
        "p",
        json!({"type": "corrupt", "stream": "upstream", "attributes": {"probability": 1.0}}),
    )
    .await;
    s.write_all(&[0u8; 32]).await.unwrap();
    let mut buf = [0u8; 32];
    s.read_exact(&mut buf).await.unwrap();
    assert!(buf.iter().all(|b| b.count_ones() == 1), "{buf:?}");
    h.toxic(
        "p",
        json!({"type": "corrupt", "stream": "downstream", "attributes": {"probability": 1.0}}),
    )
    .await;
    s.write_all(&[0u8; 32]).await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert!(buf.iter().all(|b| b.count_ones() <= 2), "{buf:?}");
}

/// noop passes data unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_passes_data() {
    let (h, mut s) = echo_setup().await;
    h.toxic("p", json!({"type": "noop"})).await;
    round_trip(&mut s, b"same").await;
}

/// Toxicity 0 never applies; toxicity 0.5 applies to some connections and not others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxicity_is_per_connection() {
    let h = Harness::with_options(Options { seed: Some(42) }).await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "never", "type": "timeout", "toxicity": 0, "attributes": {"timeout": 10}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"fine").await;
    h.delete("/proxies/p/toxics/never").await;
    h.toxic(
        "p",
        json!({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 300}}),
    )
    .await;
    let mut slow = 0;
    for _ in 0..24 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if round_trip(&mut s, b"?").await >= ms(300) {
            slow += 1;
        }
    }
    assert!((4..=20).contains(&slow), "{slow} of 24 delayed");
}
