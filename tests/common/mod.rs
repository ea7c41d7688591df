//! Shared test fixtures: a faultline server on an ephemeral port, an HTTP helper that returns
//! status and body, and real upstream servers (echo, sink, talker) on 127.0.0.1.

#![allow(dead_code)]

use faultline::registry::{Options, Registry};
use faultline::server::ServerHandle;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running server and a client for its API.
pub struct Harness {
    pub server: ServerHandle,
    pub http: reqwest::Client,
}

/// A response: status code and body text.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with_options(Options::default()).await
    }

    pub async fn with_options(options: Options) -> Harness {
        let server = ServerHandle::start_local(Registry::new(options))
            .await
            .expect("server starts");
        Harness {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("API answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Reply {
            status,
            body: response.text().await.unwrap(),
            content_type,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(&body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }

    /// Creates an enabled proxy on an ephemeral port in front of `upstream`; returns where it
    /// listens.
    pub async fn proxy(&self, name: &str, upstream: SocketAddr) -> SocketAddr {
        let reply = self
            .post(
                "/proxies",
                serde_json::json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream.to_string()}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["listen"].as_str().unwrap().parse().unwrap()
    }

    /// Adds a toxic and asserts it was accepted.
    pub async fn toxic(&self, proxy: &str, toxic: Value) -> Value {
        let reply = self.post(&format!("/proxies/{proxy}/toxics"), toxic).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }
}

/// An echo server: writes back what it reads; when the client half-closes, it half-closes too.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that sends `payload` to each client as soon as it connects, then closes.
pub async fn talker_server(payload: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = socket.write_all(&payload).await;
                let _ = socket.shutdown().await;
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
            });
        }
    });
    addr
}

/// A server that reads everything each client sends and reports it (bytes, when each read
/// arrived) on the returned channel when the client closes.
pub async fn sink_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut received = Received::default();
                let mut buf = vec![0u8; 65536];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            received.data.extend_from_slice(&buf[..n]);
                            received.reads.push((Instant::now(), n));
                        }
                        Err(e) => {
                            received.error = Some(e.kind());
                            break;
                        }
                    }
                }
                let _ = tx.send(received);
            });
        }
    });
    (addr, rx)
}

/// What a sink server saw from one client.
#[derive(Debug, Default)]
pub struct Received {
    pub data: Vec<u8>,
    pub reads: Vec<(Instant, usize)>,
    pub error: Option<std::io::ErrorKind>,
}

/// Sends `msg` through `stream` and reads the same number of bytes back; returns the time.
pub async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut back))
        .await
        .expect("echo arrives")
        .expect("echo reads");
    assert_eq!(back, msg);
    start.elapsed()
}

/// Reads until end-of-stream or error; returns the bytes and how it ended.
pub async fn read_all(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, std::io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 65536];
    let result = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("stream ends in time");
    (data, result)
}

/// Asserts `actual` is at least `min` and at most `max` (a generous bound for busy machines).
#[track_caller]
pub fn assert_between(actual: Duration, min: Duration, max: Duration) {
    assert!(
        actual >= min && actual <= max,
        "{actual:?} is not within {min:?}..={max:?}"
    );
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `probe` until it returns true (counters are updated just after the bytes move, so a
/// reader can see the bytes a moment before the counter).
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !probe().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
