//! The proxies under test, all driven through the Toxiproxy v2 HTTP API: faultline (the
//! library, embedded in a child process of this benchmark) and any server given with
//! `--server NAME=URL`.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// Names of the proxies this benchmark creates (and deletes) on every server.
pub const PROXY_PREFIX: &str = "flbench_";

/// A Toxiproxy-API server under test.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    pub api: String,
    /// The server's process, for RSS; found from the API port when not our own child.
    pub pid: Option<u32>,
    /// Our own faultline child, stopped when this is dropped.
    child: Option<(Child, ChildStdin)>,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            // Closing its stdin tells the child to stop; it is killed if it does not.
            drop(stdin);
            for _ in 0..50 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4)
        .build()?)
}

impl Server {
    /// Starts faultline in a child process (this executable, `--serve-faultline`), so its RSS
    /// is its own and it has its own runtime, as the `faultline` binary would.
    pub fn spawn_faultline() -> Result<Server> {
        let exe = std::env::current_exe().context("locating the benchmark executable")?;
        let mut child = Command::new(exe)
            .arg("--serve-faultline")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the faultline child process")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("child stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("child stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let api = line.trim().to_string();
        if !api.starts_with("http://") {
            let _ = child.kill();
            bail!("faultline child did not report its API address (got {line:?})");
        }
        Ok(Server {
            name: "faultline".into(),
            api,
            pid: Some(child.id()),
            child: Some((child, stdin)),
            http: client()?,
        })
    }

    /// A server someone else runs (`--server NAME=http://host:port`).
    pub fn external(name: &str, api: &str) -> Result<Server> {
        let api = api.trim_end_matches('/').to_string();
        let pid = api
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .and_then(crate::sys::pid_listening_on);
        Ok(Server {
            name: name.to_string(),
            api,
            pid,
            child: None,
            http: client()?,
        })
    }

    /// A handle on the same API with a client of its own, for use on another runtime.
    pub fn api_only(name: &str, api: &str) -> Result<Server> {
        Ok(Server {
            name: name.to_string(),
            api: api.to_string(),
            pid: None,
            child: None,
            http: client()?,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let response = request.send().await.with_context(|| what.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: {} answered {status}: {text}", self.name);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Checks the API answers (`GET /version`).
    pub async fn version(&self) -> Result<String> {
        let v = self
            .send(
                self.http.get(format!("{}/version", self.api)),
                "GET /version",
            )
            .await?;
        Ok(v.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()))
    }

    /// Creates `flbench_<name>` in front of `upstream` on a free port; returns where it listens.
    pub async fn create_proxy(&self, name: &str, upstream: SocketAddr) -> Result<SocketAddr> {
        let name = format!("{PROXY_PREFIX}{name}");
        // A leftover from an interrupted run would keep its name: replace it.
        let _ = self
            .http
            .delete(format!("{}/proxies/{name}", self.api))
            .send()
            .await;
        let body = json!({"name": name, "listen": "127.0.0.1:0",
            "upstream": upstream.to_string(), "enabled": true});
        let created = self
            .send(
                self.http.post(format!("{}/proxies", self.api)).json(&body),
                "POST /proxies",
            )
            .await?;
        let listen = created
            .get("listen")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("POST /proxies: no listen address in {created}"))?;
        listen
            .parse()
            .with_context(|| format!("{}: listen address {listen:?}", self.name))
    }

    pub async fn delete_proxy(&self, name: &str) -> Result<()> {
        let url = format!("{}/proxies/{PROXY_PREFIX}{name}", self.api);
        self.send(self.http.delete(url), "DELETE /proxies").await?;
        Ok(())
    }

    /// Adds a toxic (toxicity 1) to proxy `flbench_<proxy>`.
    pub async fn add_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        kind: &str,
        stream: &str,
        attributes: Value,
    ) -> Result<()> {
        let body = json!({"name": toxic, "type": kind, "stream": stream, "toxicity": 1.0,
            "attributes": attributes});
        let url = format!("{}/proxies/{PROXY_PREFIX}{proxy}/toxics", self.api);
        self.send(self.http.post(url).json(&body), "POST /toxics")
            .await?;
        Ok(())
    }

    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<()> {
        let url = format!("{}/proxies/{PROXY_PREFIX}{proxy}/toxics/{toxic}", self.api);
        self.send(self.http.delete(url), "DELETE /toxics").await?;
        Ok(())
    }
}

/// The child side of [`Server::spawn_faultline`]: runs faultline's API (default options, a
/// multi-threaded runtime with one worker per core, as the binary's `#[tokio::main]`), prints its
/// URL, and stops when its stdin closes (the benchmark ended, however it ended).
pub fn serve_faultline_child() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let registry = faultline::registry::Registry::new(faultline::registry::Options::default());
        let handle = faultline::server::ServerHandle::start_local(registry).await?;
        println!("{}", handle.url());
        // Waits for the parent to close our stdin (or to die).
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        })
        .await?;
        handle.stop().await?;
        Ok(())
    })
}
