//! A real HTTP upstream (axum on 127.0.0.1) for the HTTP-mode tests, and raw-socket helpers.

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every request the upstream received, as `METHOD /path`, with the instant its head arrived.
#[derive(Clone, Default)]
pub struct Hits(Arc<Mutex<Vec<(String, Instant)>>>);

impl Hits {
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// When the upstream first saw `what`, if it did.
    pub fn first_at(&self, what: &str) -> Option<Instant> {
        let hits = self.0.lock().unwrap();
        hits.iter().find(|(h, _)| h == what).map(|(_, at)| *at)
    }

    pub fn count(&self, what: &str) -> usize {
        self.list().iter().filter(|h| *h == what).count()
    }

    fn add(&self, method: &axum::http::Method, path: &str) {
        let hit = (format!("{method} {path}"), Instant::now());
        self.0.lock().unwrap().push(hit);
    }
}

/// The body of `GET /big`: 1000 bytes, `0123456789` repeated.
pub fn big_body() -> Vec<u8> {
    b"0123456789".repeat(100)
}

/// The upstream's routes, shared by the plain and the TLS upstream.
pub fn router(hits: Hits) -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async {
                (
                    [("X-Upstream", "yes"), ("Server", "test-upstream")],
                    "hello",
                )
            }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: Bytes| async move {
                let injected = headers
                    .get("x-injected")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                ([("X-Seen-Injected", injected)], body)
            }),
        )
        .route("/big", get(|| async { big_body() }))
        .route(
            "/n/{id}",
            get(|Path(id): Path<u64>| async move {
                // The first answers last, so order comes from the proxy, not from timing.
                if id == 1 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                id.to_string()
            }),
        )
        .route(
            "/sse",
            get(|| async {
                let events = (0..4).map(|i| {
                    Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: token{i}\n\n")))
                });
                Response::builder()
                    .header("Content-Type", "text/event-stream")
                    .body(Body::from_stream(futures_util::stream::iter(events)))
                    .unwrap()
            }),
        )
        .fallback(any(|| async { (StatusCode::OK, "upstream") }))
        .layer(axum::middleware::from_fn_with_state(hits, record))
}

async fn record(
    State(hits): State<Hits>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> impl IntoResponse {
    hits.add(request.method(), request.uri().path());
    next.run(request).await
}

/// Starts the upstream; returns its address and its record of requests.
pub async fn upstream() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(hits.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// An upstream that accepts any upgrade with 101 and then echoes bytes (a WebSocket server's
/// handshake without the framing, which the proxy never looks at).
pub async fn upgrade_echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
                socket.write_all(reply.as_bytes()).await.unwrap();
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Reads one response head (through the blank line) from a raw socket.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("head arrives")
            .expect("head reads");
        assert!(
            n > 0,
            "closed inside a head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads exactly `n` bytes.
pub async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut data))
        .await
        .expect("bytes arrive")
        .expect("bytes read");
    data
}

/// The Content-Length of a raw head.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a Content-Length")
}

/// A raw-socket upstream: for each request head it reads, it reports the head's exact bytes
/// and when they arrived, then writes `response` in one write. Connections stay open until the
/// client closes them.
pub async fn raw_upstream(
    response: &'static [u8],
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(Vec<u8>, Instant)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let _ = heads.send((head, Instant::now()));
                    if socket.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}
