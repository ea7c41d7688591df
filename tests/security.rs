//! Safe to expose: the API token, DNS-rebinding protection (`Host`), the body size limit, and
//! the startup warning for an exposed API without a token.

mod common;

use common::*;
use faultline::api::ApiOptions;
use faultline::registry::{Options, Registry};
use faultline::server::ServerHandle;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "s3cret-token";

fn with_token() -> ApiOptions {
    ApiOptions {
        token: Some(TOKEN.into()),
        ..ApiOptions::default()
    }
}

/// Sends `request` as raw bytes and returns the status code and body of the answer.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// With a token set, a request without it is a 401 in the usual error body.
#[tokio::test]
async fn token_is_required_when_set() {
    let h = Harness::with_api(with_token()).await;
    for (method, path) in [("GET", "/proxies"), ("POST", "/reset"), ("GET", "/events")] {
        let r = h.send(method, path, None).await;
        assert_eq!(r.status, 401, "{method} {path}");
        let body = r.json();
        assert_eq!(body["status"], json!(401));
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
    let wrong = h
        .http
        .get(h.url("/proxies"))
        .bearer_auth("not-it")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

/// The token is accepted as a bearer token and as either half of Basic credentials.
#[tokio::test]
async fn token_over_bearer_and_basic() {
    let h = Harness::with_api(with_token()).await;
    let requests = [
        h.http.get(h.url("/proxies")).bearer_auth(TOKEN),
        h.http.get(h.url("/proxies")).basic_auth("", Some(TOKEN)),
        h.http
            .get(h.url("/proxies"))
            .basic_auth(TOKEN, None::<&str>),
    ];
    for request in requests {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    }
}

/// `GET /version` stays open, so readiness probes need no token.
#[tokio::test]
async fn version_needs_no_token() {
    let h = Harness::with_api(with_token()).await;
    let r = h.get("/version").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], json!("2.12.0"));
}

/// A loopback API refuses a request whose Host is a foreign name (DNS rebinding) with a 403,
/// and answers loopback names and addresses.
#[tokio::test]
async fn foreign_host_is_refused_on_loopback() {
    let h = Harness::start().await;
    let addr = h.server.addr();
    let (status, body) = raw(
        addr,
        b"GET /proxies HTTP/1.1\r\nHost: rebind.example.com:8474\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], json!(403));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("rebind.example.com"),
        "{body}"
    );
    for host in ["localhost:8474", "127.0.0.1", "[::1]:8474"] {
        let request = format!("GET /proxies HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (status, body) = raw(addr, request.as_bytes()).await;
        assert_eq!((status, body.as_str()), (200, "{}"), "{host}");
    }
}

/// An HTTP/1.1 request without Host is a 400 (RFC 9112); HTTP/1.0 may omit it.
#[tokio::test]
async fn missing_host_is_400_on_http11() {
    let h = Harness::start().await;
    let addr = h.server.addr();
    let (status, body) = raw(addr, b"GET /proxies HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "missing Host header (required by HTTP/1.1)", "status": 400})
    );
    let (status, _) = raw(addr, b"GET /proxies HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200);
}

/// An API listening on every interface answers any Host (it is reached by many names).
#[tokio::test]
async fn any_host_is_accepted_off_loopback() {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = ServerHandle::spawn_with(
        listener,
        Registry::new(Options::default()),
        ApiOptions::default(),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (status, _) = raw(
        addr,
        b"GET /proxies HTTP/1.1\r\nHost: faultline.internal:8474\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

/// A body over the limit is a 413, whether its length is announced or it arrives chunked;
/// nothing is created.
#[tokio::test]
async fn oversized_body_is_413() {
    let h = Harness::with_api(ApiOptions {
        max_body_bytes: 1024,
        ..ApiOptions::default()
    })
    .await;
    let big = json!({"name": "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0",
                     "padding": "x".repeat(2000)})
    .to_string();
    let r = h.send("POST", "/proxies", Some(&big)).await;
    assert_eq!(
        (r.status, r.json()),
        (
            413,
            json!({"error": "request body larger than 1024 bytes (the limit set by --max-body-bytes)",
                   "status": 413})
        )
    );
    let mut chunked = Vec::new();
    chunked.extend_from_slice(
        b"POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\n",
    );
    for _ in 0..2 {
        chunked.extend_from_slice(format!("{:x}\r\n{big}\r\n", big.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw(h.server.addr(), &chunked).await;
    assert_eq!(status, 413);
    assert_eq!(h.get("/proxies").await.json(), json!({}));
    // Just under the limit is read as usual.
    let small = json!({"name": "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"});
    assert_eq!(h.post("/proxies", small).await.status, 201);
}

/// Lines the binary logs up to and including "API listening", with the given flags.
fn startup_log(args: &[&str]) -> String {
    let mut command = Command::new(common::process::BINARY);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("FAULTLINE_API_TOKEN");
    let process = common::process::Process::spawn(command);
    let log = process.log();
    let end = log
        .iter()
        .position(|l| l.contains("API listening"))
        .expect("the API line was logged");
    log[..=end].iter().map(|l| format!("{l}\n")).collect()
}

/// At start, an API listening on a non-loopback address without a token is warned about;
/// with a token, or on loopback, it is not.
#[test]
fn exposed_api_without_token_is_warned_about() {
    let exposed = startup_log(&["--host", "0.0.0.0", "--port", "0"]);
    assert!(
        exposed.contains("WARN") && exposed.contains("--api-token"),
        "{exposed}"
    );
    let with_token = startup_log(&["--host", "0.0.0.0", "--port", "0", "--api-token", "t"]);
    assert!(!with_token.contains("WARN"), "{with_token}");
    let loopback = startup_log(&["--port", "0"]);
    assert!(!loopback.contains("WARN"), "{loopback}");
}

/// The usual error body of a request without the token.
fn unauthorized_body() -> Value {
    json!({"error": "missing or wrong API token: send it as \"Authorization: Bearer TOKEN\" or as HTTP Basic credentials",
           "status": 401})
}

/// With a token set, every path the router has, on every method, is a 401 in the usual error
/// body without it, except `GET /version`.
#[tokio::test]
async fn every_route_needs_the_token() {
    let h = Harness::with_api(with_token()).await;
    let paths = faultline::api::route_paths();
    assert!(paths.len() > 10, "{paths:?}");
    for path in paths {
        let concrete = path.replace("{proxy}", "p").replace("{toxic}", "t");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
            let r = h.send(method, &concrete, None).await;
            if (method, path) == ("GET", "/version") {
                assert_eq!(r.status, 200, "GET /version");
                continue;
            }
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
            if method != "HEAD" {
                assert_eq!(r.json(), unauthorized_body(), "{method} {path}");
            }
        }
    }
}

/// With a token set, the dashboard's static files (which the README exempts) load without it,
/// and anything but reading them is a 401.
#[tokio::test]
async fn dashboard_files_need_no_token_but_only_to_read() {
    let h = Harness::with_api(with_token()).await;
    for path in ["/ui", "/ui/app.js", "/ui/app.css"] {
        assert_eq!(h.get(path).await.status, 200, "GET {path}");
        let r = h.send("POST", path, None).await;
        assert_eq!(
            (r.status, r.json()),
            (401, unauthorized_body()),
            "POST {path}"
        );
    }
}

/// The binary takes its token from `FAULTLINE_API_TOKEN`: without it a request is a 401, with
/// it a 200.
#[tokio::test]
async fn binary_reads_the_token_from_the_environment() {
    let mut command = Command::new(common::process::BINARY);
    command
        .args(["--port", "0", "--log-format", "json"])
        .env("FAULTLINE_API_TOKEN", TOKEN)
        .env_remove("RUST_LOG");
    let process = common::process::Process::spawn(command);
    let url = process.url("/proxies");
    let http = reqwest::Client::new();
    let without = http.get(&url).send().await.unwrap().status();
    let with = http
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    let result = (without, with);
    assert_eq!((result.0.as_u16(), result.1.as_u16()), (401, 200));
}

/// The default body limit is 1 MiB: a body of 1 MiB + 1 byte is a 413, one of exactly 1 MiB is
/// read (and refused for what it says, not for its size). The oversized one announces itself
/// with `Expect: 100-continue`, so the 413 arrives before any of it is sent.
/// A client that sends its whole too-large body before reading (no `Expect: 100-continue`,
/// as most HTTP libraries do) reads the 413, rather than a reset of the unread connection.
#[tokio::test]
async fn oversized_body_sent_at_once_still_reads_the_413() {
    let h = Harness::with_api(ApiOptions {
        max_body_bytes: 1024,
        ..ApiOptions::default()
    })
    .await;
    for framing in ["Content-Length: 40000000", "Transfer-Encoding: chunked"] {
        let mut request = format!(
            "POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        if framing.starts_with("Content") {
            request.resize(request.len() + 40_000_000, b' ');
        } else {
            for _ in 0..400 {
                request.extend_from_slice(format!("{:x}\r\n", 100_000).as_bytes());
                request.resize(request.len() + 100_000, b' ');
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
        }
        let (status, _) = raw(h.server.addr(), &request).await;
        assert_eq!(status, 413, "{framing}");
    }
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    let h = Harness::with_api(ApiOptions::default()).await;
    let over = format!(
        "POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        (1 << 20) + 1
    );
    let (status, body) = raw(h.server.addr(), over.as_bytes()).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            413,
            json!({"error": "request body larger than 1048576 bytes (the limit set by --max-body-bytes)",
                   "status": 413})
        )
    );
    let mut at_limit = format!(
        "POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        1 << 20
    )
    .into_bytes();
    at_limit.resize(at_limit.len() + (1 << 20), b' ');
    let (status, body) = raw(h.server.addr(), &at_limit).await;
    assert_eq!(status, 400, "{body}");
}
