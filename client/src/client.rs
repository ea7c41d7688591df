//! The HTTP client: one [`Client`] per API server, cheap to clone.

use crate::error::{Error, Result};
use crate::proxy::{Proxy, ProxyConfig, ProxyInfo};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Where Toxiproxy servers listen by default, and the CLI's default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8474";

/// The environment variable holding the API token of a faultline server started with
/// `--api-token`: [`Client::new`] sends it as `Authorization: Bearer <token>`.
pub const TOKEN_ENV: &str = "FAULTLINE_API_TOKEN";

/// A client for one Toxiproxy v2 API server (faultline or `toxiproxy-server`).
///
/// Cheap to clone: clones share the connection pool and the list of pending guard cleanups
/// (see [`settle`](Client::settle)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), faultline_client::Error> {
/// # let server = faultline_client::Server::start().await?;
/// # let url = server.url();
/// use faultline_client::Client;
///
/// let client = Client::new(&url)?; // e.g. "http://127.0.0.1:8474"
/// assert!(client.version().await?.starts_with('2'));
/// assert!(client.proxies().await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// The server's base URL, with a path ending in `/` so segments can be appended.
    base: Url,
    /// Sent as `Authorization: Bearer` on every request, when set.
    token: Option<String>,
    /// Completion signals of cleanups started by dropped guards, awaited before the next
    /// request so that a dropped fault is gone for whatever this client does next.
    pending: Mutex<Vec<oneshot::Receiver<()>>>,
}

impl Client {
    /// A client for the server at `url`, e.g. `http://127.0.0.1:8474`. A missing scheme
    /// means `http://`. Requests time out after 30 s, connection attempts after 5 s.
    ///
    /// When `$FAULTLINE_API_TOKEN` ([`TOKEN_ENV`]) is set and not empty, every request
    /// carries it as `Authorization: Bearer <token>`; [`with_token`](Client::with_token)
    /// sets or clears it explicitly.
    pub fn new(url: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("faultline-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Client::with_http_client(url, http)
    }

    /// A client for the server at `url` using a preconfigured `reqwest::Client`.
    pub fn with_http_client(url: &str, http: reqwest::Client) -> Result<Client> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let text = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let mut base = Url::parse(&text).map_err(|e| invalid(e.to_string()))?;
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if base.scheme() != "http" {
            return Err(invalid(format!(
                "only plain http is supported, not {}",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("no host".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token,
                pending: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The same client with the API token `token` (or none), whatever `$FAULTLINE_API_TOKEN`
    /// says. Clones made before keep their token.
    ///
    /// ```
    /// let client = faultline_client::Client::new("127.0.0.1:8474")?.with_token(Some("s3cret"));
    /// # Ok::<(), faultline_client::Error>(())
    /// ```
    pub fn with_token(self, token: Option<&str>) -> Client {
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                token: token.map(str::to_string),
                pending: Mutex::new(std::mem::take(&mut *self.lock_pending())),
            }),
        }
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
    }

    /// A client for `$TOXIPROXY_URL`, or [`DEFAULT_URL`] when it is not set (the variable
    /// other Toxiproxy tools read).
    pub fn from_env() -> Result<Client> {
        match std::env::var("TOXIPROXY_URL") {
            Ok(url) if !url.trim().is_empty() => Client::new(url.trim()),
            _ => Client::new(DEFAULT_URL),
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// The server's version, e.g. `"2.12.0"` (`/version`; older servers send a bare string).
    pub async fn version(&self) -> Result<String> {
        let body = self.send_text(Method::GET, &["version"], None).await?;
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(map)) => match map.get("version") {
                Some(Value::String(v)) => Ok(v.clone()),
                _ => Err(Error::decode(self.url(), "no version in /version")),
            },
            _ => Ok(body.trim().to_string()),
        }
    }

    /// The running faultline's own version (the `faultline` field of `/version`), or `None`
    /// when the server is not faultline (Toxiproxy sends only `version`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), faultline_client::Error> {
    /// let server = faultline_client::Server::start().await?;
    /// assert!(server.faultline_version().await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn faultline_version(&self) -> Result<Option<String>> {
        let body = self.send_text(Method::GET, &["version"], None).await?;
        Ok(serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("faultline")?.as_str().map(str::to_string)))
    }

    /// Every proxy, sorted by name.
    pub async fn proxies(&self) -> Result<Vec<Proxy>> {
        let map: BTreeMap<String, ProxyInfo> =
            self.request(Method::GET, &["proxies"], None).await?;
        Ok(map
            .into_values()
            .map(|info| Proxy::new(self.clone(), info))
            .collect())
    }

    /// The proxy called `name`; [`Error::Api`] with status 404 if there is none.
    pub async fn proxy(&self, name: &str) -> Result<Proxy> {
        let info = self.request(Method::GET, &["proxies", name], None).await?;
        Ok(Proxy::new(self.clone(), info))
    }

    /// Creates a proxy. With the default listen address `127.0.0.1:0` the server picks a free
    /// port; [`Proxy::listen_addr`] tells which.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), faultline_client::Error> {
    /// # let server = faultline_client::Server::start().await?;
    /// use faultline_client::ProxyConfig;
    ///
    /// let redis = server.create_proxy(ProxyConfig::new("redis", "127.0.0.1:6379")).await?;
    /// let addr = redis.listen_addr()?; // point the code under test here
    /// assert_ne!(addr.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_proxy(&self, config: ProxyConfig) -> Result<Proxy> {
        let body = serde_json::to_value(&config).map_err(|e| Error::decode(self.url(), e))?;
        let info = self.request(Method::POST, &["proxies"], Some(body)).await?;
        Ok(Proxy::new(self.clone(), info))
    }

    /// Creates or replaces many proxies at once (`/populate`); a proxy that already exists
    /// with the same listen address and upstream is kept as it is, toxics included.
    pub async fn populate(&self, configs: Vec<ProxyConfig>) -> Result<Vec<Proxy>> {
        #[derive(serde::Deserialize)]
        struct Populated {
            #[serde(default)]
            proxies: Option<Vec<ProxyInfo>>,
        }
        let body = serde_json::to_value(&configs).map_err(|e| Error::decode(self.url(), e))?;
        let populated: Populated = self
            .request(Method::POST, &["populate"], Some(body))
            .await?;
        Ok(populated
            .proxies
            .unwrap_or_default()
            .into_iter()
            .map(|info| Proxy::new(self.clone(), info))
            .collect())
    }

    /// Enables every proxy and removes every toxic (`/reset`). Open connections stay open.
    pub async fn reset(&self) -> Result<()> {
        self.send_text(Method::POST, &["reset"], None).await?;
        Ok(())
    }

    /// Waits until the cleanups started by dropped guards ([`ToxicGuard`](crate::ToxicGuard),
    /// [`DownGuard`](crate::DownGuard)) of this client and its clones have finished. Every
    /// request through this client does this first, so after a guard is dropped the next API
    /// call never sees its fault; call it directly before sending traffic that must not meet
    /// the fault.
    pub async fn settle(&self) {
        loop {
            let pending = std::mem::take(&mut *self.lock_pending());
            if pending.is_empty() {
                return;
            }
            for done in pending {
                // An error means the cleanup gave up (its own timeout); nothing more to wait for.
                let _ = done.await;
            }
        }
    }

    pub(crate) fn track_cleanup(&self, done: oneshot::Receiver<()>) {
        self.lock_pending().push(done);
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<oneshot::Receiver<()>>> {
        // A poisoned list is still a valid list of receivers.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The URL of `segments` under the base, each segment percent-encoded (names may hold
    /// spaces).
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request and decodes a JSON success body.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<T> {
        let url = self.endpoint(segments);
        let text = self.send_text(method, segments, body).await?;
        serde_json::from_str(&text).map_err(|e| Error::decode(&url, e))
    }

    /// Sends a request and returns the success body as text; error statuses become
    /// [`Error::Api`].
    pub(crate) async fn send_text(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<String> {
        self.settle().await;
        let url = self.endpoint(segments);
        send(&self.inner.http, self.token(), method, url, body).await
    }
}

/// One request, outside any `Client` (guard cleanups use it from their own thread).
pub(crate) async fn send(
    http: &reqwest::Client,
    token: Option<&str>,
    method: Method,
    url: Url,
    body: Option<Value>,
) -> Result<String> {
    let transport = |source| Error::transport(&url, source);
    let mut request = http.request(method, url.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(api_error(status, &text))
    }
}

/// The server's `{"error": "...", "status": N}`, or whatever it sent instead.
fn api_error(status: StatusCode, body: &str) -> Error {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_string()
            } else {
                trimmed.to_string()
            }
        });
    Error::Api {
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are percent-encoded as one path segment each.
    #[test]
    fn endpoints_encode_names() {
        let c = Client::new("127.0.0.1:8474").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8474");
        assert_eq!(
            c.endpoint(&["proxies", "my proxy", "toxics"]).as_str(),
            "http://127.0.0.1:8474/proxies/my%20proxy/toxics"
        );
        let prefixed = Client::new("http://host:1/toxiproxy").unwrap();
        assert_eq!(
            prefixed.endpoint(&["version"]).as_str(),
            "http://host:1/toxiproxy/version"
        );
    }

    /// TLS is not compiled in, so https is refused up front with a clear reason.
    #[test]
    fn https_is_refused() {
        let err = Client::new("https://example.com").unwrap_err();
        assert!(err.to_string().contains("only plain http"), "{err}");
    }

    /// Error bodies keep the server's message and status.
    #[test]
    fn api_errors_keep_message() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            "{\"error\":\"proxy not found\",\"status\":404}\n",
        );
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "proxy not found (HTTP 404)");
        let plain = api_error(StatusCode::NOT_FOUND, "404 page not found\n");
        assert_eq!(plain.to_string(), "404 page not found (HTTP 404)");
    }
}
