//! The proxies under test that speak the Toxiproxy v2 HTTP API: faultline (its release
//! binary, started by this benchmark) and any server given with `--server NAME=URL`.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Names of the proxies this benchmark creates (and deletes) on every server.
pub const PROXY_PREFIX: &str = "flbench_";

/// A Toxiproxy-API server under test.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    pub api: String,
    /// The server's process, for RSS and CPU; found from the API port when not our own child.
    pub pid: Option<u32>,
    /// Our own faultline process, stopped when this is dropped.
    child: Option<Child>,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::sys::stop_child(child);
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
    /// Starts the `faultline` binary at `exe` with its API on a free port, and waits until
    /// the API answers. Its log lines go to our stderr (warnings and errors only). `workers`
    /// sets its runtime's worker threads (tokio's `TOKIO_WORKER_THREADS`).
    pub async fn spawn_faultline(exe: &Path, workers: Option<usize>) -> Result<Server> {
        let port = crate::sys::free_port()?;
        let mut command = Command::new(exe);
        if let Some(n) = workers {
            command.env("TOKIO_WORKER_THREADS", n.to_string());
        }
        let mut child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("child stdout"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("  faultline: {line}");
            }
        });
        let server = Server {
            name: "faultline".into(),
            api: format!("http://127.0.0.1:{port}"),
            pid: Some(child.id()),
            child: Some(child),
            http: client()?,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match server.version().await {
                Ok(_) => return Ok(server),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("{} did not answer within 15 s", exe.display())))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
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
        self.create_proxy_with(name, upstream, json!({})).await
    }

    /// [`create_proxy`](Server::create_proxy), with more proxy fields (`{"protocol": "http"}`).
    pub async fn create_proxy_with(
        &self,
        name: &str,
        upstream: SocketAddr,
        fields: Value,
    ) -> Result<SocketAddr> {
        let name = format!("{PROXY_PREFIX}{name}");
        // A leftover from an interrupted run would keep its name: replace it.
        let _ = self
            .http
            .delete(format!("{}/proxies/{name}", self.api))
            .send()
            .await;
        let mut body = json!({"name": name, "listen": "127.0.0.1:0",
            "upstream": upstream.to_string(), "enabled": true});
        if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
            body.extend(fields.clone());
        }
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

impl Server {
    /// Enables or disables proxy `flbench_<proxy>` (disabling closes its connections).
    pub async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<()> {
        let url = format!("{}/proxies/{PROXY_PREFIX}{proxy}", self.api);
        let body = json!({ "enabled": enabled });
        self.send(self.http.post(url).json(&body), "POST /proxies/{name}")
            .await?;
        Ok(())
    }

    /// `GET /proxies`.
    pub async fn list_proxies(&self) -> Result<Value> {
        self.send(
            self.http.get(format!("{}/proxies", self.api)),
            "GET /proxies",
        )
        .await
    }

    /// The `/metrics` page, as text.
    pub async fn metrics(&self) -> Result<String> {
        let response = self
            .http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .context("GET /metrics")?;
        Ok(response.error_for_status()?.text().await?)
    }
}

/// The sum of every sample of the series `name` on a Prometheus text page, if there is one.
pub fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}
