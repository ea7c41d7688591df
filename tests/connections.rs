//! What happens to live connections: half-close, failures on either side, and proxy lifecycle
//! changes (disable, delete, new upstream, reset) while clients are connected.

mod common;

use common::*;
use serde_json::json;
use socket2::SockRef;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A client that half-closes still receives the whole reply, then end-of-stream (Toxiproxy
/// would tear the connection down and lose the reply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_propagates_one_direction_only() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = vec![9u8; 200_000];
    s.write_all(&request).await.unwrap();
    s.shutdown().await.unwrap();
    let (reply, end) = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(end.is_ok());
    assert_eq!(reply, request);
}

/// Bytes arrive intact and in order for small, large and multi-part messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_intact() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"hello world").await;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7) as u8).collect();
    let (mut r, mut w) = s.split();
    let (_, back) = tokio::join!(w.write_all(&big), async {
        let mut back = vec![0u8; big.len()];
        r.read_exact(&mut back).await.unwrap();
        back
    });
    assert_eq!(back, big);
}

/// An upstream that refuses connections: the client sees end-of-stream at once and the proxy
/// keeps serving (and counts the failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upstream_closes_client() {
    let h = Harness::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let addr = h.proxy("p", dead).await;
    for _ in 0..2 {
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
        assert!(data.is_empty());
        assert!(start.elapsed() < ms(500));
    }
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["connect_errors"], json!(2));
}

/// An upstream that resets the connection makes the client see a reset too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_reaches_client() {
    let h = Harness::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = socket;
        let mut buf = [0u8; 4];
        socket.read_exact(&mut buf).await.unwrap();
        SockRef::from(&socket)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(socket);
    });
    let addr = h.proxy("p", upstream).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let (_, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

/// A client that vanishes with a reset makes the upstream see a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reset_reaches_upstream() {
    let h = Harness::start().await;
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = h.proxy("p", upstream.local_addr().unwrap()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut server, _) = upstream.accept().await.unwrap();
    s.write_all(b"abc").await.unwrap();
    let mut got = [0u8; 3];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"abc");
    SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
    let (rest, end) = read_all(&mut server, Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

/// Disabling a proxy closes its live connections; enabling lets new clients in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_closes_live_connections() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"up").await;
    h.post("/proxies/p", json!({"enabled": false})).await;
    let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    h.post("/proxies/p", json!({"enabled": true})).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"again").await;
}

/// Deleting a proxy closes its live connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_closes_live_connections() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"up").await;
    h.delete("/proxies/p").await;
    let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(data.is_empty());
}

/// A new upstream closes existing connections and sends new ones to the new upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_change_moves_new_connections() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut old = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut old, b"old").await;
    let talker = talker_server(b"new upstream".to_vec()).await;
    let r = h
        .post("/proxies/p", json!({"upstream": talker.to_string()}))
        .await;
    assert_eq!(r.json()["listen"], json!(addr.to_string()), "same port");
    let (data, _) = read_all(&mut old, Duration::from_secs(5)).await;
    assert!(data.is_empty(), "the old connection was closed");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (data, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert_eq!(data, b"new upstream");
}

/// `/reset` removes toxics without closing live connections, which lose their delay at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_keeps_live_connections() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 300}}),
    )
    .await;
    assert!(round_trip(&mut s, b"slow").await >= ms(300));
    h.send("POST", "/reset", None).await;
    assert!(round_trip(&mut s, b"fast").await < ms(250));
}

/// A toxic added while a connection is open applies to its next bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_added_to_live_connection_applies() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut s, b"before").await < ms(250));
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 250}}),
    )
    .await;
    assert!(round_trip(&mut s, b"after").await >= ms(250));
}

/// Updating a toxic on a live connection takes effect at once (latency 1000 → 50).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_update_applies_to_live_connection() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 1000}}),
    )
    .await;
    h.post(
        "/proxies/p/toxics/latency_downstream",
        json!({"attributes": {"latency": 50}}),
    )
    .await;
    assert_between(round_trip(&mut s, b"x").await, ms(50), ms(700));
}

/// Removing a toxic releases the data it was holding right away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_latency_releases_held_data() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    h.toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 3000}}),
    )
    .await;
    let start = Instant::now();
    s.write_all(b"held").await.unwrap();
    eventually("the echo is read by the proxy and held", || async {
        let stats = h.get("/proxies/p/stats").await.json();
        stats["downstream"]["received_bytes"] == json!(4)
    })
    .await;
    let mut buf = [0u8; 4];
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "nothing has passed the latency yet"
    );
    h.delete("/proxies/p/toxics/latency_downstream").await;
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("released on removal")
        .unwrap();
    assert_eq!(&buf, b"held");
    assert!(start.elapsed() < ms(1500), "held for {:?}", start.elapsed());
}

/// Raising limit_data on a live connection lets more bytes through: the count is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_count_survives_update() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    h.toxic(
        "p",
        json!({"name": "cap", "type": "limit_data", "attributes": {"bytes": 10}}),
    )
    .await;
    round_trip(&mut s, b"12345678").await;
    h.post(
        "/proxies/p/toxics/cap",
        json!({"attributes": {"bytes": 12}}),
    )
    .await;
    s.write_all(b"abcdef").await.unwrap();
    let (data, end) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(end.is_ok());
    assert_eq!(data, b"abcd", "8 counted before, 4 more allowed");
}

/// Connections are counted while open and forgotten when closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_tracked() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut a, b"a").await;
    round_trip(&mut b, b"b").await;
    eventually("2 connections and 2 bytes counted", || async {
        let stats = h.get("/proxies/p/stats").await.json();
        stats["connections_active"] == json!(2) && stats["upstream"]["received_bytes"] == json!(2)
    })
    .await;
    drop((a, b));
    eventually("both connections closed", || async {
        h.get("/proxies/p/stats").await.json()["connections_active"] == json!(0)
    })
    .await;
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["connections_total"], json!(2), "{stats}");
}
