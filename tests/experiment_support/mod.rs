//! Fixtures for the experiment tests: faultline servers, the demo service (from
//! `examples/demo_service`) behind a proxy, and `faultline experiment run` as a real process.

#![allow(dead_code)]

#[path = "../../examples/demo_service/service.rs"]
pub mod service;

use faultline::registry::{Options, Registry};
use faultline::server::ServerHandle;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::net::TcpListener;

/// A faultline server on an ephemeral port.
pub async fn faultline() -> ServerHandle {
    ServerHandle::start_local(Registry::new(Options::default()))
        .await
        .expect("faultline starts")
}

/// `GET path` on an API, as JSON.
pub async fn api_get(api: &str, path: &str) -> Value {
    reqwest::get(format!("{api}{path}"))
        .await
        .expect("API answers")
        .json()
        .await
        .expect("JSON")
}

/// Creates a proxy on `api` from 127.0.0.1:0 to `upstream`; returns its listen address.
pub async fn proxy(api: &str, name: &str, upstream: &str) -> String {
    proxy_with(api, json!({"name": name, "upstream": upstream})).await
}

/// Creates a proxy from `body` (listening on 127.0.0.1:0); returns its listen address.
pub async fn proxy_with(api: &str, mut body: Value) -> String {
    body["listen"] = json!("127.0.0.1:0");
    let created: Value = reqwest::Client::new()
        .post(format!("{api}/proxies"))
        .json(&body)
        .send()
        .await
        .expect("API answers")
        .json()
        .await
        .expect("JSON");
    created["listen"].as_str().expect("listen").to_string()
}

/// Serves the AI-like dependency on an ephemeral port; returns its address.
pub async fn ai() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(service::serve_ai(listener));
    addr
}

/// The demo stack: faultline, the dependency behind proxy `ai`, and the search service.
pub struct Demo {
    pub api: ServerHandle,
    pub search_url: String,
    pub metrics_url: String,
}

impl Demo {
    pub async fn start(configure: impl FnOnce(&mut service::Config)) -> Demo {
        Demo::start_with("tcp", configure).await
    }

    /// The same, with the proxy `ai` in `protocol` mode (`tcp` or `http`).
    pub async fn start_with(protocol: &str, configure: impl FnOnce(&mut service::Config)) -> Demo {
        let api = faultline().await;
        let ai = ai().await;
        let mut body = json!({"name": "ai", "upstream": ai});
        if protocol != "tcp" {
            body["protocol"] = json!(protocol);
        }
        let listen = proxy_with(&api.url(), body).await;
        let mut config = service::Config::new(format!("http://{listen}"));
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(service::serve_search(listener, config));
        Demo {
            api,
            search_url: format!("http://{addr}/search?q=rust"),
            metrics_url: format!("http://{addr}/metrics"),
        }
    }

    /// The `--var`s that point an example at this stack.
    pub fn vars(&self) -> Vec<String> {
        vec![
            format!("search_url={}", self.search_url),
            format!("metrics_url={}", self.metrics_url),
            // Two clients measure the service without the load generator starving it of CPU.
            "concurrency=2".into(),
        ]
    }

    /// The proxy `ai` as the API shows it now.
    pub async fn ai_proxy(&self) -> Value {
        api_get(&self.api.url(), "/proxies/ai").await
    }
}

/// What a `faultline experiment run` printed and wrote.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub journal: Value,
}

impl std::fmt::Display for Outcome {
    /// What a failed assertion shows: the exit code and everything the run printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

/// An example file's path.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/experiments")
        .join(name)
}

/// A fresh journal path in the system's temp directory.
pub fn journal_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "faultline-journal-{tag}-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// One experiment at a time per test binary: they measure latency, and two load generators
/// on a 2-core machine would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `faultline experiment run FILE --journal J ARGS...` as a process.
pub async fn run(file: &Path, args: &[String]) -> Outcome {
    let _turn = ONE_AT_A_TIME.lock().await;
    let journal = journal_path(file.file_stem().unwrap().to_str().unwrap());
    let _ = std::fs::remove_file(&journal);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("experiment")
        .arg("run")
        .arg(file)
        .arg("--journal")
        .arg(&journal)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("faultline runs");
    let journal_value = std::fs::read_to_string(&journal)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&journal);
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        journal: journal_value,
    }
}

/// `--var` flags from `name=value` strings, with `--api` first.
pub fn flags(api: &str, vars: &[String]) -> Vec<String> {
    let mut out = vec!["--api".to_string(), api.to_string()];
    for v in vars {
        out.push("--var".into());
        out.push(v.clone());
    }
    out
}
