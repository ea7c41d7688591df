//! Each toxic's measured effect on real traffic through a real upstream, in both streams.

mod common;

use common::*;
use faultline::registry::Options;
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Jitter spreads delays within latency ± jitter: some replies come back sooner than the
/// latency alone allows (a busy machine only ever adds time, so this cannot happen by chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_jitter_stays_in_range() {
    let h = Harness::with_options(Options { seed: Some(11) }).await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
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
    // Each draw is under 95 ms with probability 0.45, so all eight miss one time in 120;
    // the seed makes the draws the same on every run.
    assert!(samples.iter().any(|t| *t < ms(95)), "{samples:?}");
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
            // The spacing is the scenario: separate writes, each delayed on its own.
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

/// A timeout toxic does not hold a connection after the upstream closes it: the client sees
/// the close at once, long before the toxic's own 5 s would have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_closes_at_once_when_the_upstream_closes() {
    let h = Harness::start().await;
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = h.proxy("p", upstream.local_addr().unwrap()).await;
    h.toxic(
        "p",
        json!({"type": "timeout", "attributes": {"timeout": 5000}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = upstream.accept().await.unwrap();
    let start = Instant::now();
    drop(accepted);
    let (data, _) = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(data.is_empty());
    assert!(
        start.elapsed() < ms(2500),
        "closed after {:?}, as if waiting for the timeout",
        start.elapsed()
    );
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

/// Upstream limit_data: the server receives exactly `bytes` bytes (the limit falls inside the
/// second write), then end-of-stream; the client reads end-of-stream too. Both are a close
/// (FIN), not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_upstream_cuts() {
    let h = Harness::start().await;
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = h.proxy("p", upstream.local_addr().unwrap()).await;
    h.toxic(
        "p",
        json!({"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 5}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut server, _) = upstream.accept().await.unwrap();
    s.write_all(b"abc").await.unwrap();
    let mut first = [0u8; 3];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"abc");
    // The first write has gone through, so the limit is crossed inside this one.
    s.write_all(b"defgh").await.unwrap();
    let (rest, server_end) = read_all(&mut server, Duration::from_secs(5)).await;
    assert_eq!(rest, b"de");
    server_end.expect("the server reads end-of-stream, not a reset");
    let (back, client_end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(back.is_empty(), "{back:?}");
    client_end.expect("the client reads end-of-stream, not a reset");
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

/// Upstream corrupt with probability 1: the server receives every byte with exactly one bit
/// flipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_upstream_flips_one_bit_per_byte() {
    let h = Harness::with_options(Options { seed: Some(5) }).await;
    let (sink, mut received) = sink_server().await;
    let addr = h.proxy("p", sink).await;
    h.toxic(
        "p",
        json!({"type": "corrupt", "stream": "upstream", "attributes": {"probability": 1.0}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0u8; 32]).await.unwrap();
    s.shutdown().await.unwrap();
    let got = received.recv().await.unwrap();
    assert_eq!(got.data.len(), 32);
    assert!(
        got.data.iter().all(|b| b.count_ones() == 1),
        "{:?}",
        got.data
    );
}

/// Downstream corrupt with probability 1: the client receives every byte of the server's
/// reply with exactly one bit flipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_downstream_flips_one_bit_per_byte() {
    let h = Harness::with_options(Options { seed: Some(5) }).await;
    let addr = h.proxy("p", talker_server(vec![0u8; 32]).await).await;
    h.toxic(
        "p",
        json!({"type": "corrupt", "attributes": {"probability": 1.0}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(end.is_ok());
    assert_eq!(data.len(), 32);
    assert!(data.iter().all(|b| b.count_ones() == 1), "{data:?}");
}

/// corrupt in both streams of an echo: each byte comes back flipped once on the way up and
/// once on the way down, so it differs from what was sent by an even number of bits (zero
/// only when both flips hit the same bit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_in_both_streams_flips_twice() {
    let h = Harness::with_options(Options { seed: Some(5) }).await;
    let addr = h.proxy("p", echo_server().await).await;
    for stream in ["upstream", "downstream"] {
        h.toxic(
            "p",
            json!({"type": "corrupt", "stream": stream, "attributes": {"probability": 1.0}}),
        )
        .await;
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0u8; 32]).await.unwrap();
    let mut buf = [0u8; 32];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo arrives")
        .unwrap();
    assert!(buf.iter().all(|b| b.count_ones() % 2 == 0), "{buf:?}");
    let twice = buf.iter().filter(|b| b.count_ones() == 2).count();
    // Two independent flips hit the same bit one time in eight.
    assert!(
        twice >= 16,
        "only {twice} of 32 bytes show two flips: {buf:?}"
    );
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
