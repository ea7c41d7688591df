//! The `faultline` binary: flags (Toxiproxy's spellings too), the config file, clear failures
//! and clean shutdown on SIGTERM.

mod common;
mod http_support;

use common::process::{logging, Process, BINARY};
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn run_to_exit(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Toxiproxy's single-dash flags start the server; a config file's proxies and toxics are in
/// place before the API answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_with_toxics_and_go_flags() {
    let upstream = echo_server().await;
    let dir = std::env::temp_dir().join(format!("faultline-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxies.json");
    std::fs::write(
        &config,
        serde_json::json!([{
            "name": "echo", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
            "toxics": [{"type": "latency", "attributes": {"latency": 200}}]
        }])
        .to_string(),
    )
    .unwrap();
    let p = Process::start(&[
        "-host=127.0.0.1",
        "-port",
        "0",
        "-config",
        config.to_str().unwrap(),
    ]);
    let proxy: serde_json::Value = reqwest::get(format!("http://{}/proxies/echo", p.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(proxy["toxics"][0]["type"], "latency");
    let listen = proxy["listen"].as_str().unwrap();
    let mut s = tokio::net::TcpStream::connect(listen).await.unwrap();
    assert!(round_trip(&mut s, b"hi").await >= ms(200));
}

/// A config file's `http` proxy comes up in HTTP mode with its HTTP toxic: a matching request
/// gets the toxic's status without reaching the upstream, another request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_with_an_http_proxy_and_an_http_toxic() {
    let (upstream, hits) = http_support::upstream().await;
    let config = config_file(
        "http-proxy",
        &serde_json::json!([{
            "name": "web", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
            "protocol": "http",
            "toxics": [{"type": "http_status",
                        "attributes": {"status": 503, "path_prefix": "/fail",
                                       "headers": {"Retry-After": "7"}}}]
        }])
        .to_string(),
    );
    let p = Process::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let proxy: serde_json::Value = reqwest::get(format!("http://{}/proxies/web", p.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(proxy["protocol"], "http", "{proxy}");
    let listen = proxy["listen"].as_str().unwrap();
    let fail = reqwest::get(format!("http://{listen}/fail")).await.unwrap();
    assert_eq!(fail.status().as_u16(), 503);
    assert_eq!(fail.headers()["retry-after"], "7");
    let hello = reqwest::get(format!("http://{listen}/hello"))
        .await
        .unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello");
    assert_eq!(hits.list(), ["GET /hello"]);
}

/// SIGTERM shuts the server down cleanly with exit status 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() {
    let mut p = Process::start(&["--port", "0"]);
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = p.wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to a fresh file for one test and returns its path.
fn config_file(test: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("faultline-{test}-{}.json", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Asserts an expected failure: exit status 1 and exactly one line on stderr, without a
/// backtrace or a repeated cause.
fn one_error_line(code: i32, err: &str) -> &str {
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected:\n{err}"
    );
    assert!(
        !err.contains("backtrace") && !err.contains("Caused by"),
        "{err}"
    );
    assert!(err.starts_with("faultline: error: "), "{err}");
    err.trim_end()
}

/// A missing config file: one line naming the file and saying it does not exist.
#[test]
fn missing_config_names_the_file() {
    let (code, err) = run_to_exit(&["--port", "0", "--config", "/nonexistent/faultline.json"]);
    let line = one_error_line(code, &err);
    assert_eq!(
        line,
        "faultline: error: cannot read config file /nonexistent/faultline.json: no such file"
    );
}

/// A config file that is not valid JSON: the file, line and column of the mistake, in the
/// file's words rather than the HTTP API's ("bad request body").
#[test]
fn broken_config_names_file_line_and_column() {
    let path = config_file(
        "broken",
        "[\n  {\"name\": \"a\",\n   \"upstream\" \"b:1\"}\n]",
    );
    let (code, err) = run_to_exit(&["--port", "0", "--config", path.to_str().unwrap()]);
    let line = one_error_line(code, &err);
    let expected = format!(
        "config file {}, line 3, column 15: expected `:`",
        path.display()
    );
    assert!(line.contains(&expected), "{line}");
    assert!(!line.contains("bad request body"), "{line}");
}

/// A wrongly typed field: the entry is named by its proxy name and position.
#[test]
fn invalid_entry_is_named() {
    let path = config_file(
        "badentry",
        r#"[{"name": "ok", "upstream": "a:1"}, {"name": "redis", "upstream": 6379}]"#,
    );
    let (code, err) = run_to_exit(&["--port", "0", "--config", path.to_str().unwrap()]);
    let line = one_error_line(code, &err);
    assert!(line.contains("proxy \"redis\" (entry 2)"), "{line}");
    assert!(
        line.contains("\"upstream\"") && line.ends_with("must be a string, got a number"),
        "{line}"
    );
    assert!(!line.contains("bad request body"), "{line}");
}

/// Two entries with the same name are an error naming both, not "the last one wins".
#[test]
fn duplicate_proxy_names_are_refused() {
    let path = config_file(
        "dup",
        r#"[{"name": "db", "listen": "127.0.0.1:0", "upstream": "a:1"},
            {"name": "db", "listen": "127.0.0.1:0", "upstream": "b:2"}]"#,
    );
    let (code, err) = run_to_exit(&["--port", "0", "--config", path.to_str().unwrap()]);
    let line = one_error_line(code, &err);
    assert!(
        line.ends_with(
            "proxy \"db\" (entry 2): the name is already used by entry 1; proxy names must be unique"
        ),
        "{line}"
    );
}

/// A config proxy whose listen port is taken: one line naming the entry and the address.
#[test]
fn taken_proxy_port_names_the_entry() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let path = config_file(
        "takenport",
        &format!(
            r#"[{{"name": "free", "listen": "127.0.0.1:0", "upstream": "a:1"}},
                {{"name": "cache", "listen": "{taken}", "upstream": "b:2"}}]"#
        ),
    );
    let (code, err) = run_to_exit(&["--port", "0", "--config", path.to_str().unwrap()]);
    let line = one_error_line(code, &err);
    assert!(
        line.ends_with(&format!(
            "proxy \"cache\" (entry 2): listen tcp {taken}: bind: address already in use"
        )),
        "{line}"
    );
}

/// A taken API port: one line naming the address and saying what to do, even with
/// RUST_BACKTRACE=1 (the failure is expected, not a crash).
#[test]
fn taken_port_fails_clearly() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let (code, err) = run_with_env(&["--port", &port], &[("RUST_BACKTRACE", "1")]);
    let line = one_error_line(code, &err);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("already in use"), "{line}");
    assert!(
        line.contains("--port") && line.contains("toxiproxy"),
        "{line}"
    );
}

/// `--help` lists the environment variables and points at the README's sections.
#[test]
fn help_lists_environment_and_docs() {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "RUST_LOG",
        "LOG_LEVEL",
        "FAULTLINE_PORT",
        "FAULTLINE_CONFIG",
        "#docker",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

/// Unknown flags are refused with usage help (exit status 2).
#[test]
fn unknown_flag_is_refused() {
    let (code, err) = run_to_exit(&["--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("--bogus"), "{err}");
}

/// `--log-format json` writes one JSON object per line, for log pipelines.
#[test]
fn json_logs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["--port", "0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let record: serde_json::Value = serde_json::from_str(&first).expect("a JSON log line");
    assert_eq!(record["level"], "INFO");
    assert_eq!(record["fields"]["message"], "starting faultline");
}

/// SIGTERM with `--drain-timeout 1s`: new clients are refused at once, an open connection
/// keeps flowing until the drain time is up and is then closed, and the process exits 0
/// although that client never closes.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_connections_then_exits() {
    let mut p = Process::start(&["--port", "0", "--drain-timeout", "1s"]);
    let upstream = echo_server().await;
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("http://{}/proxies", p.api))
        .body(
            serde_json::json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.to_string()})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let addr: std::net::SocketAddr = created["listen"].as_str().unwrap().parse().unwrap();
    let mut open = tokio::net::TcpStream::connect(addr).await.unwrap();
    round_trip(&mut open, b"before").await;

    let signalled = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Logged once the proxy's listener is closed.
    p.wait_for_line("stopped proxy", Duration::from_secs(10));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new clients are refused"
    );
    round_trip(&mut open, b"during the drain").await;
    let (_, end) = read_all(&mut open, Duration::from_secs(10)).await;
    let _ = end;
    assert_between(signalled.elapsed(), ms(900), ms(8000));

    let status = p.wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// Sends a byte through `addr` and waits for the echo: `Ok(stream)` if served, `Err(how)`
/// if the proxy turned the client away (reset or closed), panicking if it left it hanging.
async fn try_through(addr: std::net::SocketAddr) -> Result<tokio::net::TcpStream, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = s.write_all(b"x").await;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte)).await {
        Ok(Ok(1)) => Ok(s),
        Ok(Ok(_)) => Err("closed".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => panic!("a client was left hanging instead of refused"),
    }
}

/// With a low descriptor limit (`prlimit --nofile`), clients beyond it are refused promptly
/// with one log line for the whole burst; the API and open connections keep working; and the
/// proxy serves again as soon as descriptors are free. Run at two limits of different parity,
/// so the shortage begins once at an accept and once at a dial: each connection takes two
/// descriptors, and which one runs out depends on how many the process holds at start.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIP running_out_of_descriptors: prlimit (util-linux) is not installed");
        return;
    }
    for limit in [64, 65] {
        descriptor_shortage(limit).await;
    }
}

#[cfg(target_os = "linux")]
async fn descriptor_shortage(limit: u32) {
    let mut prlimit = Command::new("prlimit");
    prlimit.args([
        &format!("--nofile={limit}:{limit}"),
        "--",
        BINARY,
        "--port",
        "0",
    ]);
    logging(&mut prlimit);
    let p = Process::spawn(prlimit);
    let upstream = echo_server().await;
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("http://{}/proxies", p.api))
        .body(
            serde_json::json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.to_string()})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let addr: std::net::SocketAddr = created["listen"].as_str().unwrap().parse().unwrap();

    let mut served = Vec::new();
    let mut refused = 0;
    while refused < 5 {
        match try_through(addr).await {
            Ok(s) if refused == 0 => served.push(s),
            Ok(_) => panic!("a client got through in the middle of the shortage"),
            Err(_) => refused += 1,
        }
        assert!(
            served.len() < limit as usize,
            "the descriptor limit was never reached"
        );
    }
    assert!(served.len() >= 5, "only {} clients served", served.len());
    eprintln!(
        "limit {limit}: {} clients served, then {refused} refused",
        served.len()
    );

    // A client new to the API, whose connection needs a descriptor the process does not have.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let version = fresh
        .get(format!("http://{}/version", p.api))
        .send()
        .await
        .expect("a new API client is answered during the shortage");
    assert!(version.status().is_success());
    drop(fresh);
    let api = http
        .get(format!("http://{}/proxies/p/stats", p.api))
        .send()
        .await
        .expect("the API keeps answering");
    let stats: serde_json::Value = api.json().await.unwrap();
    assert!(
        stats["connections_refused"]["no_descriptors"].as_u64() >= Some(5),
        "{stats}"
    );
    round_trip(&mut served[0], b"still flowing").await;
    assert_eq!(
        p.lines_with("out of file descriptors"),
        1,
        "one line per burst"
    );

    served.truncate(1);
    // Tried until it works: the closed clients' descriptors are freed as the proxy sees them
    // close, and a client that finds none yet is refused (the behaviour under test), so
    // trying is the only way to see the moment they are free.
    eventually(
        "the proxy serves again once descriptors are free",
        || async { try_through(addr).await.is_ok() },
    )
    .await;
    // Logged by the first client served again, before its echo came back.
    p.wait_for_line("file descriptors available again", Duration::from_secs(10));
    assert_eq!(p.lines_with("file descriptors available again"), 1);
}
