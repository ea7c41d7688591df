//! Proxies: what to create ([`ProxyConfig`]), what the server reports ([`ProxyInfo`]) and the
//! handle to act on one ([`Proxy`]).

use crate::catalogue::check_attributes;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::guard::{DownGuard, ToxicGuard};
use crate::toxic::{Toxic, ToxicInfo, ToxicUpdate};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::net::SocketAddr;

/// What a proxy speaks (faultline): bytes only, or HTTP/1.1, where HTTP toxics apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Bytes only, as Toxiproxy (the default).
    #[default]
    Tcp,
    /// HTTP/1.1: `http_*` toxics act on requests and responses.
    Http,
}

impl Protocol {
    fn is_tcp(&self) -> bool {
        *self == Protocol::Tcp
    }
}

/// A proxy to create: a name, the address it listens on, and the upstream it forwards to.
///
/// ```
/// use faultline_client::ProxyConfig;
/// let config = ProxyConfig::new("db", "127.0.0.1:5432"); // listens on 127.0.0.1:0
/// assert_eq!(config.listen, "127.0.0.1:0");
/// let fixed = ProxyConfig::new("db", "127.0.0.1:5432").listen("127.0.0.1:25432").disabled();
/// assert!(!fixed.enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    /// Unique name; used in every URL about the proxy.
    pub name: String,
    /// `host:port` to listen on; port 0 lets the server pick a free port.
    pub listen: String,
    /// `host:port` of the real service.
    pub upstream: String,
    /// Whether it accepts connections right away.
    pub enabled: bool,
    /// faultline: what it speaks (sent only when not TCP, so Toxiproxy servers never see it).
    #[serde(default, skip_serializing_if = "Protocol::is_tcp")]
    pub protocol: Protocol,
    /// faultline: TLS to the upstream (HTTP proxies only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upstream_tls: bool,
    /// faultline: the TLS server name, when not the upstream's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_sni: Option<String>,
}

impl ProxyConfig {
    /// A proxy called `name` in front of `upstream` (anything that prints as `host:port`, such
    /// as a `SocketAddr`), listening on a free port of 127.0.0.1, enabled.
    pub fn new(name: impl Into<String>, upstream: impl ToString) -> ProxyConfig {
        ProxyConfig {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            upstream: upstream.to_string(),
            enabled: true,
            protocol: Protocol::Tcp,
            upstream_tls: false,
            upstream_sni: None,
        }
    }

    /// Speaks HTTP/1.1, so HTTP toxics apply (faultline).
    ///
    /// ```
    /// use faultline_client::{Protocol, ProxyConfig};
    /// let api = ProxyConfig::new("api", "127.0.0.1:8080").http();
    /// assert_eq!(api.protocol, Protocol::Http);
    /// ```
    pub fn http(mut self) -> ProxyConfig {
        self.protocol = Protocol::Http;
        self
    }

    /// Speaks TLS to the upstream (an HTTP proxy: implies [`http`](ProxyConfig::http)),
    /// presenting and verifying `sni`, or the upstream's host when `None` (faultline).
    pub fn upstream_tls(mut self, sni: Option<&str>) -> ProxyConfig {
        self.protocol = Protocol::Http;
        self.upstream_tls = true;
        self.upstream_sni = sni.map(str::to_string);
        self
    }

    /// Listens on `addr` instead of a free port of 127.0.0.1.
    pub fn listen(mut self, addr: impl ToString) -> ProxyConfig {
        self.listen = addr.to_string();
        self
    }

    /// Creates it disabled: nothing listens until it is enabled.
    pub fn disabled(mut self) -> ProxyConfig {
        self.enabled = false;
        self
    }
}

/// A proxy as the server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyInfo {
    /// Its name.
    pub name: String,
    /// The address it listens on: the real bound address when enabled (port 0 resolved).
    pub listen: String,
    /// The address it forwards to.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream ones first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub toxics: Vec<ToxicInfo>,
    /// What it speaks (faultline; a Toxiproxy server never says, so TCP).
    #[serde(default)]
    pub protocol: Protocol,
    /// TLS to the upstream (faultline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upstream_tls: bool,
    /// The TLS server name, when set (faultline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_sni: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ToxicInfo>, D::Error> {
    Ok(Option::<Vec<ToxicInfo>>::deserialize(d)?.unwrap_or_default())
}

/// Changes to a proxy; unset fields keep their value. Changing `listen` or `upstream` of an
/// enabled proxy restarts it (open connections are closed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProxyUpdate {
    /// New listen address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// New upstream address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Enable or disable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// faultline: switch between TCP and HTTP (restarts the proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// A proxy on the server, and the handle to change it, its toxics and its state.
///
/// The fields ([`info`](Proxy::info)) are a snapshot from the last time this handle talked to
/// the server about this proxy; [`refresh`](Proxy::refresh) reads them again.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), faultline_client::Error> {
/// use faultline_client::{ProxyConfig, Server, Toxic};
/// use std::time::Duration;
///
/// let server = Server::start().await?;
/// let proxy = server.create_proxy(ProxyConfig::new("api", "127.0.0.1:9")).await?;
///
/// // A fault for as long as the guard lives:
/// let slow = proxy.inject(Toxic::latency(Duration::from_millis(200))).await?;
/// assert_eq!(proxy.toxics().await?.len(), 1);
/// slow.remove().await?;
///
/// // Or for the length of a block:
/// let seen = proxy
///     .with_toxic(Toxic::timeout(Duration::ZERO), async { proxy.toxics().await.unwrap().len() })
///     .await?;
/// assert_eq!(seen, 1);
/// assert!(proxy.toxics().await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Proxy {
    client: Client,
    info: ProxyInfo,
}

impl Proxy {
    pub(crate) fn new(client: Client, info: ProxyInfo) -> Proxy {
        Proxy { client, info }
    }

    /// The fields as last seen.
    pub fn info(&self) -> &ProxyInfo {
        &self.info
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Its listen address as reported by the server.
    pub fn listen(&self) -> &str {
        &self.info.listen
    }

    /// The address to point the code under test at: the real bound address (for a proxy
    /// created on port 0, the port the server picked).
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.info.listen.parse().map_err(|_| Error::ListenAddr {
            proxy: self.info.name.clone(),
            listen: self.info.listen.clone(),
        })
    }

    /// Its upstream address.
    pub fn upstream(&self) -> &str {
        &self.info.upstream
    }

    /// Whether it was enabled when last seen.
    pub fn is_enabled(&self) -> bool {
        self.info.enabled
    }

    /// The client it talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads the proxy's fields again.
    pub async fn refresh(&mut self) -> Result<()> {
        self.info = self
            .client
            .request(Method::GET, &["proxies", &self.info.name], None)
            .await?;
        Ok(())
    }

    /// Changes listen address, upstream and/or enabled state.
    pub async fn update(&mut self, update: ProxyUpdate) -> Result<()> {
        self.info = update_proxy(&self.client, &self.info.name, &update).await?;
        Ok(())
    }

    /// Starts accepting connections again.
    pub async fn enable(&mut self) -> Result<()> {
        self.update(ProxyUpdate {
            enabled: Some(true),
            ..ProxyUpdate::default()
        })
        .await
    }

    /// Stops listening and closes every open connection: the service is "down".
    pub async fn disable(&mut self) -> Result<()> {
        self.update(ProxyUpdate {
            enabled: Some(false),
            ..ProxyUpdate::default()
        })
        .await
    }

    /// Flips enabled to disabled or back, based on the server's current state; returns the
    /// new state.
    pub async fn toggle(&mut self) -> Result<bool> {
        self.refresh().await?;
        let enabled = !self.info.enabled;
        self.update(ProxyUpdate {
            enabled: Some(enabled),
            ..ProxyUpdate::default()
        })
        .await?;
        Ok(enabled)
    }

    /// Deletes the proxy; its listener and connections close.
    pub async fn delete(self) -> Result<()> {
        self.client
            .send_text(Method::DELETE, &["proxies", &self.info.name], None)
            .await?;
        Ok(())
    }

    /// Its toxics, upstream ones first, fresh from the server.
    pub async fn toxics(&self) -> Result<Vec<ToxicInfo>> {
        self.client
            .request(Method::GET, &["proxies", &self.info.name, "toxics"], None)
            .await
    }

    /// The toxic called `name`.
    pub async fn toxic(&self, name: &str) -> Result<ToxicInfo> {
        self.client
            .request(
                Method::GET,
                &["proxies", &self.info.name, "toxics", name],
                None,
            )
            .await
    }

    /// Adds a toxic until it is removed (see [`inject`](Proxy::inject) for a scoped one).
    pub async fn add_toxic(&self, toxic: Toxic) -> Result<ToxicInfo> {
        let body = toxic.to_json();
        if let Some(Value::Object(attributes)) = body.get("attributes") {
            check_attributes(
                toxic.kind().type_name(),
                attributes.keys().map(String::as_str),
            )?;
        }
        self.client
            .request(
                Method::POST,
                &["proxies", &self.info.name, "toxics"],
                Some(body),
            )
            .await
    }

    /// Changes the toxic called `name`; attributes merge into the current ones. Pass a
    /// [`Toxic`] to set all its attributes, or a [`ToxicUpdate`] to set some.
    pub async fn update_toxic(
        &self,
        name: &str,
        update: impl Into<ToxicUpdate>,
    ) -> Result<ToxicInfo> {
        let body = update.into().to_json();
        if let Some(Value::Object(attributes)) = body.get("attributes") {
            // The keys are checked against the toxic's type, which only the server knows.
            let current = self.toxic(name).await?;
            check_attributes(&current.type_name, attributes.keys().map(String::as_str))?;
        }
        self.client
            .request(
                Method::POST,
                &["proxies", &self.info.name, "toxics", name],
                Some(body),
            )
            .await
    }

    /// Removes the toxic called `name`.
    pub async fn remove_toxic(&self, name: &str) -> Result<()> {
        self.client
            .send_text(
                Method::DELETE,
                &["proxies", &self.info.name, "toxics", name],
                None,
            )
            .await?;
        Ok(())
    }

    /// Adds a toxic and returns a guard that removes it when dropped (or, better, when
    /// [`ToxicGuard::remove`] is awaited). See [`ToxicGuard`] for the trade-offs.
    pub async fn inject(&self, toxic: Toxic) -> Result<ToxicGuard> {
        let info = self.add_toxic(toxic).await?;
        Ok(ToxicGuard::new(self.client.clone(), self.name(), info))
    }

    /// Disables the proxy and returns a guard that enables it again when dropped (or when
    /// [`DownGuard::restore`] is awaited).
    pub async fn down(&self) -> Result<DownGuard> {
        update_proxy(
            &self.client,
            &self.info.name,
            &ProxyUpdate {
                enabled: Some(false),
                ..ProxyUpdate::default()
            },
        )
        .await?;
        Ok(DownGuard::new(self.client.clone(), self.name()))
    }

    /// Runs `body` with `toxic` in place, then removes it, and returns what `body` returned.
    /// If `body` panics, the toxic is still removed (in the background, see [`ToxicGuard`]).
    pub async fn with_toxic<F: Future>(&self, toxic: Toxic, body: F) -> Result<F::Output> {
        let guard = self.inject(toxic).await?;
        let output = body.await;
        guard.remove().await?;
        Ok(output)
    }

    /// Runs `body` with the proxy disabled (the service "down"), then enables it again, and
    /// returns what `body` returned.
    pub async fn with_down<F: Future>(&self, body: F) -> Result<F::Output> {
        let guard = self.down().await?;
        let output = body.await;
        guard.restore().await?;
        Ok(output)
    }
}

async fn update_proxy(client: &Client, name: &str, update: &ProxyUpdate) -> Result<ProxyInfo> {
    let body = match serde_json::to_value(update) {
        Ok(body) => body,
        Err(_) => Value::Object(Map::new()),
    };
    client
        .request(Method::POST, &["proxies", name], Some(body))
        .await
}

/// The JSON body that re-enables a proxy (used by guards).
pub(crate) fn enable_body() -> Value {
    json!({"enabled": true})
}
