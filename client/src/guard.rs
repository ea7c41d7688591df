//! Scoped faults: guards that undo a fault when they go away.
//!
//! # Why both `Drop` and an explicit `async` undo
//!
//! Undoing a fault is an HTTP request, and `Drop` cannot `.await`. A guard therefore offers:
//!
//! - **`.remove().await` / `.restore().await`**: the fault is gone when the call returns, and
//!   errors are reported. Prefer this at the end of a test.
//! - **Dropping the guard** (end of scope, early `return`, `?`, or a panic): the undo request
//!   is started on a short-lived background thread with its own small runtime, so `Drop`
//!   never blocks and never needs a particular runtime; it even works when the dropping
//!   runtime is shutting down (the end of a `#[tokio::test]`), which a task spawned on that
//!   runtime would not survive. The cost: the fault is gone *shortly after* the drop, not at
//!   it, and a failure can only be ignored. To close that gap, the [`Client`] the guard came
//!   from (and its clones) waits for these background undos before its next request, and
//!   [`Client::settle`] waits for them explicitly, so traffic sent after `settle` never meets
//!   the fault.
//!
//! A fault that must not outlive even a crashed test process can also carry a server-side
//! expiry with [`Toxic::for_duration`](crate::Toxic::for_duration) (faultline only).

use crate::catalogue::check_attributes;
use crate::client::{send, Client};
use crate::error::Result;
use crate::proxy::enable_body;
use crate::toxic::{ToxicInfo, ToxicUpdate};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a background undo may take before it gives up.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// An undo request, sent once: explicitly, or from `Drop`.
#[derive(Debug)]
struct Undo {
    client: Client,
    method: Method,
    segments: Vec<String>,
    body: Option<Value>,
    armed: bool,
}

impl Undo {
    async fn run(mut self) -> Result<()> {
        let segments: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let result = self
            .client
            .send_text(self.method.clone(), &segments, self.body.clone())
            .await;
        // Disarmed only now: if this future is dropped mid-request, `Drop` still undoes.
        self.armed = false;
        match result {
            // Already undone: removed by hand, by /reset, by its expiry, or proxy deleted.
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let segments: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let url = self.client.endpoint(&segments);
        let method = self.method.clone();
        let body = self.body.take();
        let token = self.client.token().map(str::to_string);
        let (done, wait) = oneshot::channel();
        self.client.track_cleanup(wait);
        let spawned = std::thread::Builder::new()
            .name("faultline-guard-undo".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async move {
                        // A fresh HTTP client: pooled connections belong to the caller's runtime.
                        if let Ok(http) =
                            reqwest::Client::builder().timeout(CLEANUP_TIMEOUT).build()
                        {
                            let _ = send(&http, token.as_deref(), method, url, body).await;
                        }
                    });
                }
                let _ = done.send(());
            });
        // If no thread can be spawned the sender is dropped and `settle` stops waiting.
        drop(spawned);
    }
}

/// A toxic that is removed when the guard is dropped or [`remove`](ToxicGuard::remove)d.
/// Made by [`Proxy::inject`](crate::Proxy::inject). See the [module docs](self) for how the
/// removal on drop works.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), faultline_client::Error> {
/// use faultline_client::{ProxyConfig, Server, Toxic};
/// use std::time::Duration;
///
/// let server = Server::start().await?;
/// let proxy = server.create_proxy(ProxyConfig::new("db", "127.0.0.1:9")).await?;
/// {
///     let _partition = proxy.inject(Toxic::bandwidth(0)).await?;
///     assert_eq!(proxy.toxics().await?.len(), 1);
/// } // dropped: removal starts in the background
/// server.settle().await; // and is finished here (any request through `server` waits too)
/// assert!(proxy.toxics().await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard removes the toxic at once"]
pub struct ToxicGuard {
    info: ToxicInfo,
    undo: Undo,
}

impl ToxicGuard {
    pub(crate) fn new(client: Client, proxy: &str, info: ToxicInfo) -> ToxicGuard {
        ToxicGuard {
            undo: Undo {
                client,
                method: Method::DELETE,
                segments: vec![
                    "proxies".into(),
                    proxy.into(),
                    "toxics".into(),
                    info.name.clone(),
                ],
                body: None,
                armed: true,
            },
            info,
        }
    }

    /// The toxic as the server reported it when it was added.
    pub fn info(&self) -> &ToxicInfo {
        &self.info
    }

    /// The toxic's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Changes the live toxic (attributes merge into the current ones) and keeps guarding
    /// it; [`info`](ToxicGuard::info) then shows the new state. Attribute names are checked
    /// against the toxic's type before sending ([`Error::UnknownAttribute`](crate::Error)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), faultline_client::Error> {
    /// use faultline_client::{ProxyConfig, Server, Toxic, ToxicUpdate};
    /// use std::time::Duration;
    ///
    /// let server = Server::start().await?;
    /// let proxy = server.create_proxy(ProxyConfig::new("db", "127.0.0.1:9")).await?;
    /// let mut slow = proxy.inject(Toxic::latency(Duration::from_millis(100))).await?;
    /// // Worse for the second half of the test:
    /// slow.update(ToxicUpdate::new().attribute("latency", 2000)).await?;
    /// assert_eq!(slow.info().attributes["latency"], 2000);
    /// // A whole new set of attributes of the same type works too:
    /// slow.update(Toxic::latency(Duration::from_millis(50))).await?;
    /// assert_eq!(slow.info().attributes["latency"], 50);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update(&mut self, update: impl Into<ToxicUpdate>) -> Result<&ToxicInfo> {
        let body = update.into().to_json();
        if let Some(Value::Object(attributes)) = body.get("attributes") {
            check_attributes(&self.info.type_name, attributes.keys().map(String::as_str))?;
        }
        let segments: Vec<&str> = self.undo.segments.iter().map(String::as_str).collect();
        self.info = self
            .undo
            .client
            .request(Method::POST, &segments, Some(body))
            .await?;
        Ok(&self.info)
    }

    /// Removes the toxic now and reports errors. A toxic that is already gone (removed by
    /// hand, by `/reset` or by its own expiry) counts as removed.
    pub async fn remove(self) -> Result<()> {
        self.undo.run().await
    }

    /// Keeps the toxic in place for good: the guard no longer removes it.
    pub fn keep(mut self) -> ToxicInfo {
        self.undo.armed = false;
        self.info.clone()
    }
}

/// A disabled proxy that is enabled again when the guard is dropped or
/// [`restore`](DownGuard::restore)d. Made by [`Proxy::down`](crate::Proxy::down). See the
/// [module docs](self) for how the restore on drop works.
#[derive(Debug)]
#[must_use = "dropping the guard enables the proxy again at once"]
pub struct DownGuard {
    proxy: String,
    undo: Undo,
}

impl DownGuard {
    pub(crate) fn new(client: Client, proxy: &str) -> DownGuard {
        DownGuard {
            proxy: proxy.to_string(),
            undo: Undo {
                client,
                method: Method::POST,
                segments: vec!["proxies".into(), proxy.into()],
                body: Some(enable_body()),
                armed: true,
            },
        }
    }

    /// The proxy's name.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// Enables the proxy now and reports errors. A proxy deleted meanwhile counts as restored.
    pub async fn restore(self) -> Result<()> {
        self.undo.run().await
    }

    /// Leaves the proxy disabled for good.
    pub fn keep(mut self) {
        self.undo.armed = false;
    }
}
