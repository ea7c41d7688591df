//! Clients caught in a proxy's lifecycle: queued by `limit_connections` while the toxic
//! changes or the proxy stops, and upstreams that refuse, reset or never answer.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A proxy with `limit_connections` (queue, limit 1), one client `a` holding the only slot,
/// and a second client that has sent a byte and is queued (checked: no reply while waiting).
async fn queued_client() -> (Harness, TcpStream, TcpStream) {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "pool", "type": "limit_connections",
               "attributes": {"limit": 1, "mode": "queue"}}),
    )
    .await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut a, b"a").await;
    let mut b = TcpStream::connect(addr).await.unwrap();
    b.write_all(b"b").await.unwrap();
    let mut reply = [0u8; 1];
    // Waiting is the scenario: no reply may come while `a` holds the only slot.
    let held = tokio::time::timeout(ms(300), b.read(&mut reply)).await;
    assert!(held.is_err(), "the second client waits for a slot");
    (h, a, b)
}

async fn expect_echo(b: &mut TcpStream) {
    let mut reply = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut reply))
        .await
        .expect("the queued client is admitted")
        .unwrap();
    assert_eq!(&reply, b"b");
}

/// Removing the `limit_connections` toxic admits the queued client at once, while the client
/// holding the slot is still connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_limit_admits_queued_clients() {
    let (h, mut a, mut b) = queued_client().await;
    assert_eq!(h.delete("/proxies/p/toxics/pool").await.status, 204);
    expect_echo(&mut b).await;
    round_trip(&mut a, b"a still flows").await;
}

/// Raising the limit admits the queued client without waiting for the old slot to free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_limit_admits_queued_clients() {
    let (h, mut a, mut b) = queued_client().await;
    let r = h
        .post(
            "/proxies/p/toxics/pool",
            json!({"attributes": {"limit": 5}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect_echo(&mut b).await;
    round_trip(&mut a, b"a").await;
}

/// Switching the toxic to `refuse` with no free slot rejects the queued client at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_refuse_rejects_queued_clients() {
    let (h, _a, mut b) = queued_client().await;
    let r = h
        .post(
            "/proxies/p/toxics/pool",
            json!({"attributes": {"limit": 0, "mode": "refuse"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (data, end) = read_all(&mut b, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    assert_eq!(
        end.expect_err("the queued client is reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let stats = h.get("/proxies/p/stats").await.json();
    assert_eq!(
        stats["connections_refused"]["limit_connections"],
        json!(1),
        "{stats}"
    );
}

/// Disabling the proxy closes the queued client at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_the_proxy_closes_queued_clients() {
    let (h, _a, mut b) = queued_client().await;
    let r = h.post("/proxies/p", json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (data, _) = read_all(&mut b, Duration::from_secs(5)).await;
    assert!(data.is_empty());
}

/// An echo server on a runtime of its own, so the test's runtime holds only faultline's tasks.
fn echo_server_elsewhere() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tx.send(echo_server().await).unwrap();
            std::future::pending::<()>().await
        });
    });
    rx.recv().unwrap()
}

/// After shutdown no faultline task is left on the runtime: not the accept loops, not the
/// connections (one still open, one queued), not the toxic timers (an expiry and a schedule).
#[tokio::test]
async fn no_task_outlives_shutdown() {
    use faultline::registry::{NewProxy, NewToxic, Options, Registry, Schedule};
    let registry = Registry::new(Options::default());
    let server = faultline::server::ServerHandle::start_local(registry.clone())
        .await
        .unwrap();
    let view = registry
        .create(NewProxy {
            name: "p".into(),
            listen: "127.0.0.1:0".into(),
            upstream: echo_server_elsewhere().to_string(),
            enabled: true,
            ..NewProxy::default()
        })
        .await
        .unwrap();
    let toxic = |name: &str, kind: &str, attributes| NewToxic {
        name: Some(name.into()),
        kind: Some(kind.into()),
        attributes,
        ..NewToxic::default()
    };
    registry
        .add_toxic(
            "p",
            NewToxic {
                duration: Some(Duration::from_secs(3600)),
                ..toxic("timed", "latency", json!({"latency": 1}))
            },
        )
        .await
        .unwrap();
    registry
        .add_toxic(
            "p",
            NewToxic {
                schedule: Some(Schedule {
                    on: Duration::from_secs(60),
                    off: Duration::from_secs(60),
                }),
                ..toxic("flapping", "noop", json!({}))
            },
        )
        .await
        .unwrap();
    registry
        .add_toxic(
            "p",
            toxic(
                "pool",
                "limit_connections",
                json!({"limit": 1, "mode": "queue"}),
            ),
        )
        .await
        .unwrap();
    let addr: std::net::SocketAddr = view.listen.parse().unwrap();
    let mut open = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut open, b"open").await;
    let _queued = TcpStream::connect(addr).await.unwrap();
    assert!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            > 0
    );

    server.stop().await.unwrap();
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0,
        "tasks outlived shutdown"
    );
    let (_, end) = read_all(&mut open, Duration::from_secs(5)).await;
    let _ = end;
}

/// A listener whose accept queue is full, so further connects get no answer (Linux drops
/// the SYN): an upstream that never answers a connect.
fn unanswering_upstream() -> (
    socket2::Socket,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue: connects succeed until it is full, then hang.
    loop {
        match std::net::TcpStream::connect_timeout(&addr, ms(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    (socket, fillers, addr)
}

/// An upstream that never answers the connect: the client is closed after the proxy's
/// `connect_timeout_ms`, and the timeout is counted in metrics and events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_connect_times_out() {
    let (_upstream, _fillers, upstream) = unanswering_upstream();
    let h = Harness::start().await;
    let r = h
        .post(
            "/proxies",
            json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
                   "connect_timeout_ms": 300}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["connect_timeout_ms"], json!(300));
    let addr: std::net::SocketAddr = r.json()["listen"].as_str().unwrap().parse().unwrap();
    let mut events = h.server.registry().events().subscribe();
    let started = std::time::Instant::now();
    let mut client = TcpStream::connect(addr).await.unwrap();
    let (data, _) = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    assert_between(started.elapsed(), ms(290), ms(3000));
    let error = loop {
        let event = events.recv().await.unwrap();
        if event.kind == "upstream_error" {
            break event;
        }
    };
    assert_eq!(error.detail.unwrap()["reason"], json!("timeout"));
    let metrics = h.get("/metrics").await.body;
    assert!(
        metrics
            .contains("faultline_upstream_connect_errors_total{proxy=\"p\",reason=\"timeout\"} 1"),
        "{metrics}"
    );
}

/// An upstream that refuses the connect: the client is closed at once, and the refusal is
/// counted in metrics and events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_closes_the_client() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = closed.local_addr().unwrap();
    drop(closed);
    let h = Harness::start().await;
    let addr = h.proxy("p", upstream).await;
    let mut events = h.server.registry().events().subscribe();
    let mut client = TcpStream::connect(addr).await.unwrap();
    let (data, _) = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(data.is_empty());
    let error = loop {
        let event = events.recv().await.unwrap();
        if event.kind == "upstream_error" {
            break event;
        }
    };
    assert_eq!(error.detail.unwrap()["reason"], json!("refused"));
    let metrics = h.get("/metrics").await.body;
    assert!(
        metrics
            .contains("faultline_upstream_connect_errors_total{proxy=\"p\",reason=\"refused\"} 1"),
        "{metrics}"
    );
}

/// An upstream that accepts and resets at once: the client's connection ends promptly (reset
/// or closed, never left open), and the connection's task is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_ends_the_client_promptly() {
    let resetting = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = resetting.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = resetting.accept().await {
            let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
            drop(socket);
        }
    });
    let h = Harness::start().await;
    let addr = h.proxy("p", upstream).await;
    let started = Instant::now();
    // The reset can reach the client before its connect has even returned.
    match TcpStream::connect(addr).await {
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
        Ok(mut client) => {
            let _ = client.write_all(b"hello").await;
            let (data, _) = read_all(&mut client, Duration::from_secs(5)).await;
            assert!(data.is_empty());
        }
    }
    assert!(started.elapsed() < Duration::from_secs(4), "left open");
    eventually("the connection is gone", || async {
        h.get("/proxies/p/stats").await.json()["connections_active"] == json!(0)
    })
    .await;
}

/// The connect timeout is validated, changed by an update without a restart, and absent from
/// the proxy object while it is the default (Toxiproxy's objects stay field for field).
#[tokio::test]
async fn connect_timeout_is_a_proxy_field() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/proxies",
            json!({"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}),
        )
        .await;
    assert!(r.json().get("connect_timeout_ms").is_none(), "{}", r.body);
    let r = h.post("/proxies/p", json!({"connect_timeout_ms": 0})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("connect_timeout_ms must be between 1 and 3600000"),
        "{}",
        r.body
    );
    let r = h
        .post("/proxies/p", json!({"connect_timeout_ms": 2500}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["connect_timeout_ms"], json!(2500));
    assert_eq!(
        h.get("/proxies/p").await.json()["connect_timeout_ms"],
        json!(2500)
    );
}
