//! A real headless Chromium for the dashboard's end-to-end tests, driven over the DevTools
//! protocol (CDP) with a small client: one browser per test binary, one tab per test.
//!
//! The browser is started once, through `sh`, which kills it and removes its profile when
//! the test binary exits (its stdin, a pipe from the test process, closes then): no test
//! leaves a browser behind, whichever way it ends.
//!
//! Without chromium the tests skip loudly; with `CI=true` they fail instead, unless
//! `FAULTLINE_BROWSER_SKIP` gives the reason (`.ci/run` sets it when apt is unreachable).

#![allow(dead_code)]

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long a single DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The browser shared by every test of this binary.
struct Browser {
    /// `http://127.0.0.1:<port>`, the DevTools HTTP endpoint.
    devtools: String,
    /// The `sh` watchdog; kept so its stdin stays open while tests run.
    _watchdog: Mutex<Child>,
}

static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();

/// The chromium binary: `$CHROMIUM`, else the first of the usual names on `PATH`.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn launch() -> Result<Browser, String> {
    let chromium = find_chromium().ok_or("chromium is not installed (apt-get install chromium)")?;
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let profile = std::env::temp_dir().join(format!(
        "faultline-chromium-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    // `read` returns when the test process exits and the pipe closes; then the browser goes.
    let script = r#"
        "$0" "$@" &
        browser=$!
        read -r _
        kill "$browser" 2>/dev/null
        wait "$browser" 2>/dev/null
        rm -rf "$PROFILE"
    "#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-background-timer-throttling",
            "--disable-backgrounding-occluded-windows",
            "--disable-renderer-backgrounding",
            "--hide-scrollbars",
            "--window-size=1280,860",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            // A name that resolves to this machine, as a rebound DNS name would.
            "--host-resolver-rules=MAP rebound.test 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .env("PROFILE", &profile)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the DevTools address, then keeps draining so the browser never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                let authority = rest.split('/').next().unwrap_or_default().to_string();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(authority);
                }
            }
        }
    });
    let authority = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "chromium did not report its DevTools address within 60 s".to_string())?;
    Ok(Browser {
        devtools: format!("http://{authority}"),
        _watchdog: Mutex::new(child),
    })
}

/// A new tab in the shared browser, or `None` (after saying so loudly) when chromium is not
/// installed and this is not CI.
pub async fn new_page() -> Option<Page> {
    let browser = BROWSER.get_or_init(launch);
    let browser = match browser {
        Ok(browser) => browser,
        Err(why) => {
            // .ci/run sets FAULTLINE_BROWSER_SKIP only when apt could not be reached.
            let excused = std::env::var("FAULTLINE_BROWSER_SKIP").ok();
            if std::env::var("CI").is_ok_and(|v| v == "true") && excused.is_none() {
                panic!("browser tests must run in CI: {why}");
            }
            let why = excused.unwrap_or(why.clone());
            eprintln!("\n*** SKIP: dashboard browser test not run: {why} ***\n");
            return None;
        }
    };
    let http = reqwest::Client::new();
    let target: Value = http
        .put(format!("{}/json/new?about:blank", browser.devtools))
        .send()
        .await
        .expect("DevTools answers")
        .json()
        .await
        .expect("DevTools returns the new target");
    let ws = target["webSocketDebuggerUrl"]
        .as_str()
        .expect("target has a websocket URL");
    let page = Page::connect(ws, browser.devtools.clone(), target["id"].as_str().unwrap()).await;
    page.call("Page.enable", json!({})).await;
    page.call("Runtime.enable", json!({})).await;
    page.call("Log.enable", json!({})).await;
    Some(page)
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One tab, with what its console reported.
pub struct Page {
    commands: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
    errors: Arc<Mutex<Vec<String>>>,
    devtools: String,
    target: String,
}

impl Page {
    async fn connect(ws: &str, devtools: String, target: &str) -> Page {
        let (socket, _) = tokio_tungstenite::connect_async(ws)
            .await
            .expect("DevTools websocket connects");
        let (mut write, mut read) = socket.split();
        let (commands, mut outbox) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        tokio::spawn(async move {
            while let Some(text) = outbox.recv().await {
                if write.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let (replies, console) = (pending.clone(), errors.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(id) = value["id"].as_u64() {
                    if let Some(reply) = replies.lock().unwrap().remove(&id) {
                        let _ = reply.send(value);
                    }
                } else if let Some(error) = console_error(&value) {
                    console.lock().unwrap().push(error);
                }
            }
        });
        Page {
            commands,
            pending,
            next_id: AtomicU64::new(1),
            errors,
            devtools,
            target: target.to_string(),
        }
    }

    /// Sends one DevTools command and returns its result (panics on a protocol error).
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Sends one DevTools command; a protocol error (such as "Inspected target navigated or
    /// closed" when the page reloads meanwhile) is an `Err`.
    pub async fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.commands
            .send(message)
            .expect("DevTools connection open");
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("{method} got no answer in {COMMAND_TIMEOUT:?}"))
            .expect("DevTools connection open");
        if let Some(error) = reply.get("error") {
            return Err(format!("{method} failed: {error}"));
        }
        Ok(reply["result"].clone())
    }

    /// Evaluates a JavaScript expression (awaiting a promise) and returns its JSON value, or
    /// the exception's description (or the protocol's error, when the page went away).
    pub async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let result = self
            .try_call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            let text = exception["exception"]["description"]
                .as_str()
                .or(exception["text"].as_str())
                .unwrap_or("exception");
            return Err(text.to_string());
        }
        Ok(result["result"]["value"].clone())
    }

    pub async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Waits, in the page, until `condition` is truthy; returns its value.
    pub async fn wait_for(&self, condition: &str, limit: Duration) -> Value {
        let script = format!(
            r#"new Promise((resolve, reject) => {{
                const start = performance.now();
                (function check() {{
                    let value;
                    try {{ value = ({condition}); }} catch (_) {{ value = undefined; }}
                    if (value) resolve(value);
                    else if (performance.now() - start > {ms}) reject(new Error('timed out'));
                    else setTimeout(check, 20);
                }})();
            }})"#,
            ms = limit.as_millis()
        );
        match self.try_eval(&script).await {
            Ok(value) => value,
            Err(e) => panic!("waiting {limit:?} for `{condition}`: {e}"),
        }
    }

    /// Waits until `condition` is true, across page loads (which end any in-page wait).
    pub async fn wait_across_reload(&self, condition: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.try_eval(condition).await == Ok(Value::Bool(true)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waiting {limit:?} for `{condition}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn goto(&self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url})).await;
        assert!(
            result.get("errorText").is_none(),
            "navigating to {url}: {result}"
        );
        self.wait_for(
            &format!(
                "document.readyState === 'complete' && location.href.startsWith({})",
                json!(url.split('#').next().unwrap_or(url))
            ),
            Duration::from_secs(10),
        )
        .await;
    }

    /// Errors the page reported so far: console errors, uncaught exceptions, failed loads.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Saves a PNG of the viewport to `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let result = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // Closes the tab (synchronously: the test's runtime may be gone) to free its renderer.
        use std::io::{Read, Write};
        let authority = self.devtools.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(authority) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = format!(
                "GET /json/close/{} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
                self.target
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
    }
}

/// `target/ui-screenshots`, next to the `target/tmp` cargo gives integration tests.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .join("ui-screenshots")
}

/// The text of a DevTools event that reports an error in the page, if it is one.
fn console_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.consoleAPICalled"
            if matches!(params["type"].as_str(), Some("error" | "assert")) =>
        {
            Some(format!("console.error: {}", params["args"]))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            params["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or(params["exceptionDetails"]["text"].as_str())
                .unwrap_or_default()
        )),
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(format!(
            "{}: {} ({})",
            params["entry"]["source"].as_str().unwrap_or_default(),
            params["entry"]["text"].as_str().unwrap_or_default(),
            params["entry"]["url"].as_str().unwrap_or_default()
        )),
        _ => None,
    }
}
