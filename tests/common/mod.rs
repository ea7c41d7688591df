//! Shared test fixtures: a faultline server on an ephemeral port, an HTTP helper that returns
//! status and body, real upstream servers (echo, sink, talker) on 127.0.0.1, waits for the
//! server's events, and (in `process`) the `faultline` binary run as a child process.

#![allow(dead_code)]

pub mod process;

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

    /// A server with the API's security and validation settings.
    pub async fn with_api(api: faultline::api::ApiOptions) -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = ServerHandle::spawn_with(listener, Registry::new(Options::default()), api)
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

/// Waits (at most 10 s) for the next event of type `kind` on a subscription to a server's
/// events (`server.registry().events().subscribe()`, taken before the cause), skipping
/// other events; returns it.
pub async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<faultline::events::Event>,
    kind: &str,
) -> faultline::events::Event {
    let wait = async {
        loop {
            let event = events.recv().await.expect("no event was lost");
            if event.kind == kind {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind} event within 10 s"))
}

/// A subscription to a server's `/events` over HTTP, read one server-sent event at a time;
/// what arrives after the event returned stays buffered for the next call.
pub struct SseEvents {
    response: reqwest::Response,
    pending: String,
}

impl SseEvents {
    pub async fn subscribe(h: &Harness) -> SseEvents {
        let response = h.http.get(h.url("/events")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        SseEvents {
            response,
            pending: String::new(),
        }
    }

    /// The next event `wanted` accepts, skipping the others; each wait for more of the
    /// stream may take up to `within`.
    pub async fn next_where(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            while let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                for line in block.lines() {
                    if let Some(data) = line.strip_prefix("data: ") {
                        let event: Value = serde_json::from_str(data).unwrap();
                        if wanted(&event) {
                            return event;
                        }
                    }
                }
            }
            let chunk = tokio::time::timeout(within, self.response.chunk())
                .await
                .expect("events keep coming")
                .unwrap()
                .expect("stream stays open");
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Polls `probe` until it returns true. Only for what no event marks: a counter, which is
/// updated just after the bytes it counts move (a reader can see the bytes a moment before
/// the counter). Where an event marks the moment, wait for it ([`next_event`]):
/// `connection_closed`, for one, comes once the connection's sockets are closed, its
/// `connections_active` has dropped and its `limit_connections` slot is free.
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

/// An HTTP/1.1 server answering every request with `status` and a two-byte body, closing the
/// connection after it; the request line of each request arrives on the returned channel.
pub async fn http_server(
    status: u16,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_string();
                // Reads the body, so closing does not reset a client still sending it.
                let length: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(head.lines().next().unwrap_or_default().to_string());
                let response = format!(
                    "HTTP/1.1 {status} Status\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
                     Connection: close\r\n\r\nok"
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, rx)
}

/// A Chaos Toolkit experiment: the hypothesis is that `url` answers within 250 ms (p99 of
/// four requests); the method adds 400 ms of latency to proxy `proxy` (toxic `slow`), so the
/// hypothesis deviates after it; the rollback removes the toxic.
pub fn latency_experiment(url: &str, proxy: &str) -> Value {
    serde_json::json!({
        "title": "the service answers within 250 ms under 400 ms of latency",
        "steady-state-hypothesis": {
            "title": "the service is fast",
            "probes": [{
                "type": "probe", "name": "p99-under-250ms",
                "tolerance": {"type": "range", "range": [0, 250], "target": "p99_ms"},
                "provider": {"type": "python", "module": "faultline.probes", "func": "http_load",
                             "arguments": {"url": url, "requests": 4, "concurrency": 1}}
            }]
        },
        "method": [{
            "type": "action", "name": "add-latency",
            "provider": {"type": "python", "module": "faultline.actions", "func": "add_toxic",
                         "arguments": {"proxy": proxy, "type": "latency", "name": "slow",
                                       "attributes": {"latency": 400}}}
        }],
        "rollbacks": [{
            "type": "action", "name": "remove-latency",
            "provider": {"type": "python", "module": "faultline.actions", "func": "remove_toxic",
                         "arguments": {"proxy": proxy, "name": "slow"}}
        }]
    })
}

/// Runs `experiment` in-process against the APIs `apis`, as `faultline experiment run` does.
pub async fn run_experiment(
    experiment: &Value,
    apis: Vec<String>,
) -> faultline_experiment::Journal {
    let loaded = faultline_experiment::parse(
        &experiment.to_string(),
        faultline_experiment::Format::Json,
        "experiment.json",
    )
    .expect("the experiment is valid");
    let settings = faultline_experiment::Settings {
        apis,
        ..faultline_experiment::Settings::default()
    };
    faultline_experiment::run_experiment(&loaded, settings)
        .await
        .expect("the experiment runs")
}
