//! The `faultline` binary: flags (Toxiproxy's spellings too), the config file, clear failures
//! and clean shutdown on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `faultline` process and the API address it reported.
struct Process {
    child: Child,
    api: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("address=").nth(1) {
                if line.contains("API listening") {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        }
    });
    let api = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server reports its API address");
    Process { child, api }
}

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
    let p = spawn(&[
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

/// SIGTERM shuts the server down cleanly with exit status 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() {
    let mut p = spawn(&["--port", "0"]);
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        std::thread::sleep(ms(20));
    }
}

/// A missing or invalid config file is a clear error naming the file, and exit status 1.
#[test]
fn bad_config_fails_clearly() {
    let (code, err) = run_to_exit(&["--port", "0", "--config", "/nonexistent/faultline.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/faultline.json"), "{err}");
    let bad = std::env::temp_dir().join(format!("faultline-bad-{}.json", std::process::id()));
    std::fs::write(&bad, "{not json").unwrap();
    let (code, err) = run_to_exit(&["--port", "0", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid config file"), "{err}");
}

/// A taken API port is a clear error naming the address, and exit status 1.
#[test]
fn taken_port_fails_clearly() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let (code, err) = run_to_exit(&["--port", &port]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
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
