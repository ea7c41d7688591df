//! Data-path hardening over real sockets: what a connection may hold through a long delay,
//! and how cuts are counted.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The base budget of one direction (what it may hold with no read-ahead granted).
const BASE_BUDGET: u64 = 64 * 1024;
/// The read-ahead cap of one direction of one connection.
const READ_AHEAD_PER_CONNECTION: u64 = 16 << 20;

/// A sender pushing as fast as it can through a 1 s latency never makes the proxy hold more
/// than its budget: the base, plus the read-ahead it was granted (itself capped). Past that the
/// sender is slowed by backpressure, and nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_latency_holds_at_most_the_budget() {
    let h = Harness::start().await;
    let (upstream, mut received) = sink_server().await;
    let addr = h.proxy("p", upstream).await;
    h.toxic(
        "p",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}}),
    )
    .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    let mut most_held = 0u64;
    while start.elapsed() < ms(1500) {
        // Backpressure makes a write block; a bounded wait keeps the loop sampling.
        // (`write` is cancel-safe: a write that times out wrote nothing.)
        if let Ok(result) = tokio::time::timeout(ms(20), client.write(&chunk)).await {
            sent += result.unwrap() as u64;
        }
        let stats = h.get("/proxies/p/stats").await.json();
        let up = &stats["upstream"];
        let held = up["received_bytes"].as_u64().unwrap() - up["sent_bytes"].as_u64().unwrap();
        let granted = stats["read_ahead_bytes"].as_u64().unwrap();
        assert!(granted <= READ_AHEAD_PER_CONNECTION, "granted {granted}");
        // Counters move just after the bytes; allow one read's worth of slack.
        assert!(
            held <= BASE_BUDGET + granted + 1024 * 1024,
            "proxy holds {held} bytes with {granted} granted"
        );
        most_held = most_held.max(held);
    }
    assert!(most_held > 0, "nothing went through the proxy");
    drop(client);
    let got = received.recv().await.expect("the upstream saw the client");
    assert_eq!(got.data.len() as u64, sent, "no byte dropped");
    assert!(got.data.iter().all(|b| *b == 7));
}

/// With no toxic, an upstream that stops reading makes the proxy hold at most its base budget
/// (64 KiB) of what the client sent, however long the client keeps pushing: the rest waits in
/// the kernel's buffers and the client is slowed by backpressure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_leaves_at_most_the_base_budget_held() {
    let h = Harness::start().await;
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = stalled.local_addr().unwrap();
    let (keep, mut kept) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Accepts and never reads.
        while let Ok((socket, _)) = stalled.accept().await {
            let _ = keep.send(socket);
        }
    });
    let addr = h.proxy("p", upstream).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let _upstream_side = kept.recv().await.expect("the proxy dialed the upstream");
    let chunk = vec![7u8; 256 * 1024];
    let (mut most_held, mut sent) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < ms(1000) {
        if let Ok(result) = tokio::time::timeout(ms(20), client.write(&chunk)).await {
            sent += result.unwrap() as u64;
        }
        let up = &h.get("/proxies/p/stats").await.json()["upstream"];
        let held = up["received_bytes"].as_u64().unwrap() - up["sent_bytes"].as_u64().unwrap();
        // Counters move just after the bytes; allow one read's worth (64 KiB) of slack.
        assert!(held <= 2 * BASE_BUDGET, "proxy holds {held} bytes");
        most_held = most_held.max(held);
    }
    assert!(sent > 0, "the client sent nothing");
    assert!(most_held > 0, "the proxy never had to hold anything");
}

/// A connection that a toxic closes is counted once, in the stats and in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_cut_counted_once() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "cap", "type": "limit_data", "stream": "downstream", "attributes": {"bytes": 4}}),
    )
    .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"abcdefgh").await.unwrap();
    let (data, end) = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(end.is_ok(), "closed, not reset: {end:?}");
    assert_eq!(data, b"abcd");
    eventually("the connection is gone", || async {
        h.get("/proxies/p/stats").await.json()["connections_active"] == json!(0)
    })
    .await;
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(stats["toxic_closes"], json!(1));
    let metrics = h.get("/metrics").await.body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("faultline_toxic_cuts_total") && l.contains("kind=\"close\""))
        .expect("the cut counter is exported");
    assert!(line.ends_with(" 1"), "{line}");
}

/// Removing a toxic whose removal ends connections (`timeout`) closes a live connection and
/// counts that once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_cut_counted_once() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "stall", "type": "timeout", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    eventually("the upstream answered into the timeout", || async {
        h.get("/proxies/p/stats").await.json()["downstream"]["received_bytes"] == json!(4)
    })
    .await;
    h.delete("/proxies/p/toxics/stall").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("closed in time")
        .expect("a close, not a reset");
    assert_eq!(n, 0, "the swallowed bytes stay swallowed");
    eventually("the connection is gone", || async {
        h.get("/proxies/p/stats").await.json()["connections_active"] == json!(0)
    })
    .await;
    assert_eq!(
        h.get("/proxies/p/stats").await.json()["toxic_closes"],
        json!(1)
    );
}

/// A faultline server alone on a runtime of its own (one thread), so that runtime's task
/// count is faultline's alone: the test's echo server and client live on the test's runtime.
struct Isolated {
    addr: std::net::SocketAddr,
    registry: std::sync::Arc<faultline::registry::Registry>,
    /// Stops the server when dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn server_on_a_runtime_of_its_own() -> Isolated {
    use faultline::registry::{Options, Registry};
    let (started, server) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let registry = Registry::new(Options::default());
            let server = faultline::server::ServerHandle::start_local(registry.clone())
                .await
                .unwrap();
            started.send((server.addr(), registry)).unwrap();
            let _ = stopped.await;
            server.stop().await.unwrap();
        });
    });
    let (addr, registry) = server.recv().unwrap();
    Isolated {
        addr,
        registry,
        _stop: stop,
    }
}

/// One keep-alive HTTP/1.1 connection to the API: the server holds exactly one connection
/// task for all of the test's calls (a pooling client may open another at any time).
struct ApiConnection(tokio::io::BufReader<TcpStream>);

impl ApiConnection {
    async fn open(addr: std::net::SocketAddr) -> ApiConnection {
        ApiConnection(tokio::io::BufReader::new(
            TcpStream::connect(addr).await.unwrap(),
        ))
    }

    /// Sends a request and reads the reply's status and body.
    async fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        use tokio::io::AsyncBufReadExt;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let exchange = async {
            self.0
                .get_mut()
                .write_all(request.as_bytes())
                .await
                .unwrap();
            let mut status = String::new();
            self.0.read_line(&mut status).await.unwrap();
            let status = status
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("not an HTTP status line: {status:?}"));
            let mut length = None;
            loop {
                let mut header = String::new();
                self.0.read_line(&mut header).await.unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = Some(value.trim().parse().unwrap());
                    }
                }
            }
            let mut body = vec![0u8; length.expect("the reply has a Content-Length")];
            self.0.read_exact(&mut body).await.unwrap();
            (status, String::from_utf8(body).unwrap())
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("the API answers")
    }

    /// The `faultline_runtime_tasks` gauge of `/metrics`.
    async fn tasks(&mut self) -> i64 {
        let (status, page) = self.call("GET", "/metrics", "").await;
        assert_eq!(status, 200, "{page}");
        page.lines()
            .find_map(|l| l.strip_prefix("faultline_runtime_tasks "))
            .expect("the gauge is exported")
            .trim()
            .parse()
            .unwrap()
    }
}

/// `/metrics` counts the data plane's live tasks: a connection adds one while it lives, and
/// its task is gone once it has closed (a leak would keep the count up).
#[tokio::test]
async fn metrics_count_live_tasks() {
    let server = server_on_a_runtime_of_its_own();
    let mut api = ApiConnection::open(server.addr).await;
    let upstream = echo_server().await;
    let proxy = json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.to_string()});
    let (status, body) = api.call("POST", "/proxies", &proxy.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let addr: std::net::SocketAddr = serde_json::from_str::<serde_json::Value>(&body).unwrap()
        ["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut events = server.registry.events().subscribe();
    let before = api.tasks().await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut client, b"x").await;
    assert_eq!(
        api.tasks().await,
        before + 1,
        "an open connection is one live task"
    );
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.kind == "connection_closed" {
                break;
            }
        }
    })
    .await
    .expect("the connection closes");
    // The event is the connection task's last act, and the server's runtime has one thread:
    // it answers the next request only after that task has ended.
    assert_eq!(
        api.tasks().await,
        before,
        "the closed connection's task is gone"
    );
}
