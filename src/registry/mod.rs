//! The registry: every proxy and its toxics, and every change to them.
//!
//! This is the one shared state of the server. The API calls it; it starts and stops listeners
//! and publishes toxic chains to live connections (`proxy::Chains`). Operations are serialized
//! by one async mutex, which is never touched by the data path, so a busy proxy never slows the
//! API and an API call never observes a half-applied change. Every operation either succeeds or
//! leaves the state as it was: `/populate` validates every entry first and restores what it had
//! created or replaced when a later entry fails to start. `/reset` alone stops at the first
//! failure, as Toxiproxy's does.

mod http;
mod lifecycle;
mod model;
mod timers;

pub use http::{HttpChange, HttpSettings};
pub use model::{
    NewProxy, NewToxic, ProxyChange, ProxyView, Schedule, ToxicChange, ToxicView,
    DEFAULT_CONNECT_TIMEOUT,
};

use crate::events::{EventBus, EventData};
use crate::http::Protocol;
use crate::net;
use crate::proxy::{Chains, Direction, ProxyStats, Seeds};
use crate::toxics::{self, Attributes};
use lifecycle::{halt, restart, start, start_with, stop_accepting, Stopping};
use model::{validate, validate_connect_timeout, validate_timing, validate_toxicity, Proxy, Toxic};
use serde_json::json;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{watch, Mutex, MutexGuard};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What can go wrong when changing the registry. Messages are Toxiproxy's, word for word.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("missing required field: name")]
    MissingName,
    #[error("missing required field: upstream")]
    MissingUpstream,
    #[error("missing required field: {field} at proxy {index}")]
    MissingInPopulate { field: &'static str, index: usize },
    #[error("proxy not found")]
    ProxyNotFound,
    #[error("proxy already exists")]
    ProxyExists,
    #[error("stream was invalid, can be either upstream or downstream")]
    InvalidStream,
    #[error("invalid toxic type")]
    InvalidToxicType,
    #[error("toxic already exists")]
    ToxicExists,
    #[error("toxic not found")]
    ToxicNotFound,
    /// An HTTP toxic added to a proxy that does not speak HTTP.
    #[error("{kind} is an HTTP toxic: proxy {proxy} must have \"protocol\": \"http\" (it is tcp)")]
    HttpToxicOnTcpProxy { kind: &'static str, proxy: String },
    /// A request field has an unusable value (an attribute out of range, a bad target...).
    #[error("bad request body: {0}")]
    Invalid(String),
    /// Binding or resolving a listen address failed (Toxiproxy answers these with a 500).
    #[error("{0}")]
    Listen(String),
}

/// Server-wide settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seed for every random choice (toxicity, jitter, slicing, loss), for reproducible runs.
    pub seed: Option<u64>,
}

/// Every proxy of the server.
pub struct Registry {
    /// Serializes changes. Held only for quick work: never across DNS lookups (listen
    /// addresses are resolved before it is taken) nor across the drain of a stopped proxy's
    /// connections (which happens after it is released).
    proxies: Mutex<BTreeMap<String, Proxy>>,
    /// What reads see: a view of every proxy, republished whenever the lock is released, so
    /// reads never wait for a change in progress. A change is published before the events
    /// that announce it: a read made in answer to an event sees the change.
    snapshot: watch::Sender<Arc<BTreeMap<String, ProxyView>>>,
    options: Options,
    revisions: AtomicU64,
    events: Arc<EventBus>,
    tls: Arc<http::UpstreamTls>,
    /// The runtime that carries the data plane (listeners, connections, toxic timers). The
    /// API may run elsewhere, so that a data plane busy with thousands of connections never
    /// delays it.
    runtime: Handle,
    /// Toxic timer tasks, awaited at shutdown so none outlives the server.
    timers: TaskTracker,
    /// Ends every toxic timer at shutdown (the parent of each timer's token).
    timers_token: CancellationToken,
    /// Lets toxic timers reach the registry without keeping it alive.
    this: Weak<Registry>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish()
    }
}

/// The registry lock; releasing it republishes the snapshot, so every change shows.
struct Locked<'a> {
    proxies: MutexGuard<'a, BTreeMap<String, Proxy>>,
    snapshot: &'a watch::Sender<Arc<BTreeMap<String, ProxyView>>>,
    /// Whether the snapshot may be behind: set when the lock is taken and on every mutable
    /// access, cleared by [`Locked::publish_snapshot`].
    changed: bool,
}

impl Deref for Locked<'_> {
    type Target = BTreeMap<String, Proxy>;
    fn deref(&self) -> &Self::Target {
        &self.proxies
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.changed = true;
        &mut self.proxies
    }
}

impl Locked<'_> {
    /// Publishes the snapshot now. Called before the events that announce a change, so that
    /// whoever reads in answer to an event already reads the change.
    fn publish_snapshot(&mut self) {
        if !self.changed {
            return;
        }
        let views = self
            .proxies
            .iter()
            .map(|(name, proxy)| (name.clone(), proxy.view()))
            .collect();
        self.snapshot.send_replace(Arc::new(views));
        self.changed = false;
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.publish_snapshot();
    }
}

impl Registry {
    /// A registry whose proxies run on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn new(options: Options) -> Arc<Registry> {
        Self::with_upstream_ca(options, None)
    }

    /// A registry whose `upstream_tls` proxies also trust the CA certificates of the PEM file
    /// `upstream_ca` (`--upstream-ca`), besides the platform's.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn with_upstream_ca(
        options: Options,
        upstream_ca: Option<std::path::PathBuf>,
    ) -> Arc<Registry> {
        let tls = Arc::new(http::UpstreamTls::new(upstream_ca));
        Arc::new_cyclic(|this| Registry {
            proxies: Mutex::new(BTreeMap::new()),
            tls,
            snapshot: watch::Sender::new(Arc::new(BTreeMap::new())),
            options,
            revisions: AtomicU64::new(0),
            events: Arc::new(EventBus::default()),
            runtime: Handle::current(),
            timers: TaskTracker::new(),
            timers_token: CancellationToken::new(),
            this: this.clone(),
        })
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    async fn lock(&self) -> Locked<'_> {
        Locked {
            proxies: self.proxies.lock().await,
            snapshot: &self.snapshot,
            changed: true,
        }
    }

    /// The latest published views; never waits for a change in progress.
    fn read(&self) -> Arc<BTreeMap<String, ProxyView>> {
        self.snapshot.borrow().clone()
    }

    /// All proxies, sorted by name.
    /// Tasks alive on the data-plane runtime: accept loops, connections (including those of
    /// stopped proxies still draining) and toxic timers. A number that only grows is a leak.
    pub fn data_plane_tasks(&self) -> usize {
        self.runtime.metrics().num_alive_tasks()
    }

    pub async fn list(&self) -> Vec<ProxyView> {
        self.read().values().map(ProxyView::now).collect()
    }

    pub async fn get(&self, name: &str) -> Result<ProxyView, Error> {
        self.read()
            .get(name)
            .map(ProxyView::now)
            .ok_or(Error::ProxyNotFound)
    }

    /// Creates a proxy, listening at once if enabled. Nothing is added if binding fails.
    pub async fn create(&self, new: NewProxy) -> Result<ProxyView, Error> {
        validate(&new, None)?;
        let addr = match new.enabled {
            true => Some(resolve_to_start(&new.listen).await),
            false => None,
        };
        let mut proxies = self.lock().await;
        if proxies.contains_key(&new.name) {
            return Err(Error::ProxyExists);
        }
        let proxy = self.new_proxy(new, addr.transpose()?)?;
        let view = proxy.view();
        proxies.insert(proxy.name.clone(), proxy);
        proxies.publish_snapshot();
        self.emit_proxy("proxy_created", &view);
        Ok(view)
    }

    /// Creates or replaces many proxies, as `POST /populate` does: an existing proxy with the
    /// same listen address and upstream is kept untouched (toxics and all); a different one is
    /// replaced. All or nothing: every entry is checked (and its address resolved) before
    /// anything changes, and if one cannot start, the proxies this call created are removed
    /// and those it replaced come back as they were. Returns what was processed (nothing on
    /// failure) and the error, if any.
    pub async fn populate(&self, list: Vec<NewProxy>) -> (Vec<ProxyView>, Option<Error>) {
        match self.populate_all(list).await {
            Ok(done) => (done, None),
            Err(error) => (Vec::new(), Some(error)),
        }
    }

    async fn populate_all(&self, list: Vec<NewProxy>) -> Result<Vec<ProxyView>, Error> {
        for (i, new) in list.iter().enumerate() {
            validate(new, Some(i + 1))?;
        }
        let resolved = Resolved::of(list.iter().map(|new| new.listen.clone()).collect()).await;
        let mut proxies = self.lock().await;
        // Every entry that would fail to resolve fails the whole request before any change.
        for new in &list {
            let existing = proxies.get(&new.name);
            if let Some(existing) = existing {
                existing.matches(new, resolved.get(&new.listen).await)?;
            } else if new.enabled {
                resolved.to_start(&new.listen).await?;
            }
        }
        let mut created: Vec<String> = Vec::new();
        let mut replaced: Vec<(Proxy, bool)> = Vec::new();
        let mut draining = Vec::new();
        let mut failure = None;
        let mut order = Vec::new();
        let mut retimed = Vec::new();
        for new in list {
            order.push(new.name.clone());
            if let Some(existing) = proxies.get(&new.name) {
                if existing.matches(&new, resolved.get(&new.listen).await)? {
                    // Kept as it is, but a connect timeout applies without a restart.
                    if let Some(timeout) = new.connect_timeout {
                        let ms = timeout.as_millis() as u64;
                        let was = existing.connect_timeout_ms.swap(ms, Ordering::Relaxed);
                        retimed.push((existing.connect_timeout_ms.clone(), was));
                    }
                    continue;
                }
            }
            // The proxy being replaced stops first (its replacement may want its port).
            if let Some(mut old) = proxies.remove(&new.name) {
                let was_running = old.running.is_some();
                draining.extend(halt(&mut old).await);
                // One this call created earlier is simply dropped: undoing it means removing.
                if !created.contains(&old.name) {
                    replaced.push((old, was_running));
                }
            }
            let addr = match new.enabled {
                true => Some(resolved.to_start(&new.listen).await),
                false => None,
            };
            match addr.transpose().and_then(|addr| self.new_proxy(new, addr)) {
                Ok(proxy) => {
                    created.push(proxy.name.clone());
                    proxies.insert(proxy.name.clone(), proxy);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            // Undo in reverse: what this call created goes, what it replaced comes back.
            for (timeout, was) in retimed.into_iter().rev() {
                timeout.store(was, Ordering::Relaxed);
            }
            for name in created.iter().rev() {
                if let Some(mut proxy) = proxies.remove(name) {
                    draining.extend(halt(&mut proxy).await);
                }
            }
            for (mut old, was_running) in replaced.into_iter().rev() {
                if was_running {
                    if let Err(restart) = restart(&mut old) {
                        tracing::warn!(name = %old.name, error = %restart,
                            "could not restart a proxy that a failed populate replaced");
                    }
                }
                proxies.insert(old.name.clone(), old);
            }
            drop(proxies);
            drain(draining).await;
            return Err(error);
        }
        proxies.publish_snapshot();
        for (old, _) in &replaced {
            self.emit_proxy("proxy_deleted", &old.view());
        }
        created.dedup();
        for name in &created {
            self.emit_proxy("proxy_created", &proxies[name].view());
        }
        // The answer lists every entry, kept or created, in request order.
        let done = order
            .iter()
            .filter_map(|name| proxies.get(name).map(Proxy::view))
            .collect();
        drop(proxies);
        drop(replaced);
        drain(draining).await;
        Ok(done)
    }

    /// Changes a proxy's listen address, upstream or enabled state. A new listen address or
    /// upstream restarts an enabled proxy (its connections are closed), as in Toxiproxy.
    pub async fn update(&self, name: &str, change: ProxyChange) -> Result<ProxyView, Error> {
        let current = self.get(name).await?;
        let listen = change.listen.clone().unwrap_or(current.listen);
        let resolved = Resolved::of(vec![listen]).await;
        let mut proxies = self.lock().await;
        let proxy = proxies.get_mut(name).ok_or(Error::ProxyNotFound)?;
        let listen = change.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = change.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enable = change.enabled.unwrap_or(proxy.running.is_some());
        if upstream.is_empty() {
            return Err(Error::MissingUpstream);
        }
        let connect_timeout = change
            .connect_timeout
            .map(validate_connect_timeout)
            .transpose()?;
        let http = proxy.http.changed(change.http);
        http.validate(&upstream)?;
        if http.protocol != Protocol::Http {
            if let Some(t) = proxy.toxics.iter().find(|t| toxics::is_http(t.kind)) {
                return Err(Error::Invalid(format!(
                    "proxy has the HTTP toxic {}: remove its HTTP toxics before setting protocol to tcp",
                    t.name
                )));
            }
        }
        let wanted = resolved.get(&listen).await.map_err(Error::Listen)?;
        let same_address = proxy.listens_at(wanted);
        let mut stopping = None;
        // A new protocol or TLS setting restarts the proxy, as a new upstream does.
        if !same_address || upstream != proxy.upstream || http != proxy.http {
            // A new address is bound before anything is let go, so a failure changes nothing.
            let fresh = match enable && !same_address {
                true => Some(net::bind(wanted).map_err(Error::Listen)?),
                false => None,
            };
            stopping = halt(proxy).await;
            proxy.listen = listen;
            proxy.upstream = upstream;
            proxy.http = http;
            if let Some(listener) = fresh {
                start_with(proxy, listener)?;
            } else if enable {
                start(proxy, wanted)?;
            }
        } else if enable && proxy.running.is_none() {
            start(proxy, wanted)?;
        } else if !enable && proxy.running.is_some() {
            stopping = halt(proxy).await;
        }
        if let Some(ms) = connect_timeout {
            proxy.connect_timeout_ms.store(ms, Ordering::Relaxed);
        }
        let view = proxy.view();
        proxies.publish_snapshot();
        self.emit_proxy("proxy_updated", &view);
        drop(proxies);
        drain(stopping).await;
        Ok(view)
    }

    /// Deletes a proxy: its listener and connections are closed, its toxics discarded.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let mut proxies = self.lock().await;
        let mut proxy = proxies.remove(name).ok_or(Error::ProxyNotFound)?;
        let stopping = halt(&mut proxy).await;
        proxies.publish_snapshot();
        self.emit_proxy("proxy_deleted", &proxy.view());
        drop(proxies);
        drain(stopping).await;
        Ok(())
    }

    /// Enables every proxy and removes every toxic; live connections stay open (except those a
    /// removed `timeout` toxic was holding). Stops at the first proxy that cannot listen.
    pub async fn reset(&self) -> Result<(), Error> {
        let disabled = self
            .read()
            .values()
            .filter(|p| !p.enabled)
            .map(|p| p.listen.clone())
            .collect();
        let resolved = Resolved::of(disabled).await;
        let mut proxies = self.lock().await;
        let mut removed = Vec::new();
        let mut failure = None;
        for proxy in proxies.values_mut() {
            if proxy.running.is_none() {
                let started = resolved.to_start(&proxy.listen).await;
                if let Err(error) = started.and_then(|addr| start(proxy, addr)) {
                    failure = Some(error);
                    break;
                }
            }
            let toxics: Vec<String> = proxy.toxics.drain(..).map(|t| t.name).collect();
            for direction in Direction::BOTH {
                proxy.publish(direction);
            }
            removed.push((proxy.name.clone(), toxics));
        }
        proxies.publish_snapshot();
        for (proxy, toxics) in &removed {
            for toxic in toxics {
                self.emit_toxic("toxic_removed", proxy, toxic, None);
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        self.events.publish("reset", EventData::default());
        Ok(())
    }

    /// Closes every listener and connection at once (server shutdown without a drain).
    pub async fn shutdown(&self) {
        self.shutdown_draining(Duration::ZERO).await;
    }

    /// Server shutdown: every listener closes at once; open connections may finish on their
    /// own for `drain_timeout` (zero: closed at once), then the rest are closed. Returns when
    /// every connection and toxic timer task has ended.
    pub async fn shutdown_draining(&self, drain_timeout: Duration) {
        let mut proxies = self.lock().await;
        let mut stopping = Vec::new();
        for proxy in proxies.values_mut() {
            stopping.extend(stop_accepting(proxy).await);
        }
        drop(proxies);
        futures_util::future::join_all(
            stopping.into_iter().map(|s| s.finish_within(drain_timeout)),
        )
        .await;
        self.timers_token.cancel();
        self.timers.close();
        self.timers.wait().await;
    }

    pub async fn toxics(&self, proxy: &str) -> Result<Vec<ToxicView>, Error> {
        Ok(self.get(proxy).await?.toxics)
    }

    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<ToxicView, Error> {
        self.get(proxy)
            .await?
            .toxics
            .into_iter()
            .find(|t| t.name == toxic)
            .ok_or(Error::ToxicNotFound)
    }

    /// Adds a toxic at the end of its direction's chain; live connections apply it at once.
    pub async fn add_toxic(&self, proxy_name: &str, new: NewToxic) -> Result<ToxicView, Error> {
        let mut proxies = self.lock().await;
        let proxy = proxies.get_mut(proxy_name).ok_or(Error::ProxyNotFound)?;
        let stream = new.stream.unwrap_or_else(|| "downstream".to_string());
        let direction = Direction::parse(&stream).ok_or(Error::InvalidStream)?;
        let kind_name = new.kind.unwrap_or_default();
        let name = match new.name {
            Some(name) if !name.is_empty() => name,
            _ => format!("{kind_name}_{stream}"),
        };
        let kind = toxics::lookup(&kind_name).ok_or(Error::InvalidToxicType)?;
        if toxics::is_http(kind) && proxy.http.protocol != Protocol::Http {
            return Err(Error::HttpToxicOnTcpProxy {
                kind: kind.name,
                proxy: proxy.name.clone(),
            });
        }
        if proxy.toxics.iter().any(|t| t.name == name) {
            return Err(Error::ToxicExists);
        }
        let mut attributes = Attributes::defaults(kind);
        attributes
            .merge_json(&new.attributes)
            .map_err(Error::Invalid)?;
        let spec = (kind.build)(&attributes).map_err(Error::Invalid)?;
        let toxicity = validate_toxicity(new.toxicity.unwrap_or(1.0))?;
        validate_timing(new.duration, new.schedule)?;
        let mut toxic = Toxic {
            name,
            kind,
            stream,
            direction,
            toxicity,
            attributes,
            spec,
            revision: self.next_revision(),
            target: new.target.map(Arc::new),
            expires_at: None,
            schedule: new.schedule,
            active: true,
            timers: 0,
            _timers: None,
        };
        self.arm_timers(proxy_name, &mut toxic, new.duration);
        let view = toxic.view();
        proxy.toxics.push(toxic);
        proxy.publish(direction);
        proxies.publish_snapshot();
        self.emit_toxic("toxic_added", proxy_name, &view.name, Some(&view));
        Ok(view)
    }

    /// Updates a toxic's toxicity and attributes (merged), keeping its place in the chain.
    pub async fn update_toxic(
        &self,
        proxy_name: &str,
        toxic_name: &str,
        change: ToxicChange,
    ) -> Result<ToxicView, Error> {
        let mut proxies = self.lock().await;
        let proxy = proxies.get_mut(proxy_name).ok_or(Error::ProxyNotFound)?;
        let index = proxy.toxic_index(toxic_name)?;
        let toxic = &proxy.toxics[index];
        let mut attributes = toxic.attributes.clone();
        attributes
            .merge_json(&change.attributes)
            .map_err(Error::Invalid)?;
        let spec = (toxic.kind.build)(&attributes).map_err(Error::Invalid)?;
        let toxicity = validate_toxicity(change.toxicity.unwrap_or(toxic.toxicity))?;
        // Only what the request sets is validated: a toxic about to expire may still be
        // updated.
        validate_timing(change.duration.flatten(), change.schedule.flatten())?;
        let schedule = change.schedule.unwrap_or(toxic.schedule);
        let timing_changed = change.duration.is_some() || change.schedule.is_some();
        let duration = match change.duration {
            Some(duration) => duration,
            None => toxic.expires_at.map(|at| {
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            }),
        };
        let revision = self.next_revision();

        let toxic = &mut proxy.toxics[index];
        toxic.attributes = attributes;
        toxic.spec = spec;
        toxic.toxicity = toxicity;
        toxic.revision = revision;
        if let Some(target) = change.target {
            toxic.target = target.map(Arc::new);
        }
        if timing_changed {
            toxic.schedule = schedule;
            toxic.active = true;
            self.arm_timers(proxy_name, toxic, duration);
        }
        let view = toxic.view();
        let direction = toxic.direction;
        proxy.publish(direction);
        proxies.publish_snapshot();
        self.emit_toxic("toxic_updated", proxy_name, toxic_name, Some(&view));
        Ok(view)
    }

    /// Removes a toxic; what it was holding on live connections is released at once.
    pub async fn remove_toxic(&self, proxy_name: &str, toxic_name: &str) -> Result<(), Error> {
        self.remove_toxic_as(proxy_name, toxic_name, "toxic_removed", None)
            .await
    }

    pub(super) async fn remove_toxic_as(
        &self,
        proxy_name: &str,
        toxic_name: &str,
        event: &'static str,
        timers: Option<u64>,
    ) -> Result<(), Error> {
        let mut proxies = self.lock().await;
        let proxy = proxies.get_mut(proxy_name).ok_or(Error::ProxyNotFound)?;
        let index = proxy.toxic_index(toxic_name)?;
        if timers.is_some_and(|t| t != proxy.toxics[index].timers) {
            // The toxic was changed since this timer was armed; its new timers decide.
            return Ok(());
        }
        let toxic = proxy.toxics.remove(index);
        proxy.publish(toxic.direction);
        proxies.publish_snapshot();
        self.emit_toxic(event, proxy_name, toxic_name, None);
        Ok(())
    }

    fn new_proxy(&self, new: NewProxy, addr: Option<SocketAddr>) -> Result<Proxy, Error> {
        let mut proxy = Proxy {
            seeds: Arc::new(Seeds::new(self.options.seed, &new.name)),
            name: new.name,
            listen: new.listen,
            upstream: new.upstream,
            connect_timeout_ms: Arc::new(AtomicU64::new(
                new.connect_timeout
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                    .as_millis() as u64,
            )),
            http: new.http,
            toxics: Vec::new(),
            chains: Arc::new(Chains::default()),
            stats: Arc::new(ProxyStats::default()),
            events: self.events.clone(),
            runtime: self.runtime.clone(),
            tls: self.tls.clone(),
            running: None,
        };
        if let Some(addr) = addr {
            start(&mut proxy, addr)?;
        }
        Ok(proxy)
    }

    fn next_revision(&self) -> u64 {
        self.revisions.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn emit_proxy(&self, kind: &'static str, view: &ProxyView) {
        self.events.publish(
            kind,
            EventData {
                proxy: Some(&view.name),
                detail: Some(json!({
                    "listen": view.listen,
                    "upstream": view.upstream,
                    "enabled": view.enabled,
                    "protocol": view.http.protocol.as_str(),
                })),
                ..EventData::default()
            },
        );
    }

    fn emit_toxic(&self, kind: &'static str, proxy: &str, toxic: &str, view: Option<&ToxicView>) {
        self.events.publish(
            kind,
            EventData {
                proxy: Some(proxy),
                toxic: Some(toxic),
                detail: view.map(|v| {
                    json!({"type": v.kind, "stream": v.stream, "toxicity": v.toxicity,
                           "attributes": v.attributes})
                }),
                ..EventData::default()
            },
        );
    }
}

/// Waits for stopped proxies' connections to end; called with the registry lock released.
async fn drain(stopping: impl IntoIterator<Item = Stopping>) {
    futures_util::future::join_all(stopping.into_iter().map(Stopping::drained)).await;
}

/// Resolves `listen` for starting a proxy there (the error reads as Go's `listen tcp: ...`).
async fn resolve_to_start(listen: &str) -> Result<SocketAddr, Error> {
    net::resolve_listen(listen)
        .await
        .map_err(|e| Error::Listen(format!("listen tcp: {e}")))
}

/// Listen addresses resolved before the registry lock is taken, so a slow DNS answer holds up
/// only the request that needs it. An address not resolved beforehand (the state changed in
/// between) is resolved when asked for.
struct Resolved(HashMap<String, Result<SocketAddr, String>>);

impl Resolved {
    async fn of(listens: Vec<String>) -> Resolved {
        let mut map = HashMap::new();
        for listen in listens {
            if let Entry::Vacant(slot) = map.entry(listen) {
                let resolved = net::resolve_listen(slot.key()).await;
                slot.insert(resolved);
            }
        }
        Resolved(map)
    }

    async fn get(&self, listen: &str) -> Result<SocketAddr, String> {
        match self.0.get(listen) {
            Some(resolved) => resolved.clone(),
            None => net::resolve_listen(listen).await,
        }
    }

    async fn to_start(&self, listen: &str) -> Result<SocketAddr, Error> {
        self.get(listen)
            .await
            .map_err(|e| Error::Listen(format!("listen tcp: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read made as soon as an event arrives sees the change that the event announces: the
    /// snapshot is published before the event is sent. (With many proxies, building the
    /// snapshot takes long enough that a reader woken before it would see the old one.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_follows_the_change_it_announces() {
        let registry = Registry::new(Options::default());
        let disabled = |name: String| NewProxy {
            name,
            listen: "127.0.0.1:0".into(),
            upstream: "127.0.0.1:1".into(),
            enabled: false,
            ..NewProxy::default()
        };
        let many = (0..2000).map(|i| disabled(format!("p{i}"))).collect();
        let (_, error) = registry.populate(many).await;
        assert_eq!(error, None);
        let mut events = registry.events().subscribe();
        let (seen, saw) = tokio::sync::oneshot::channel();
        std::thread::spawn({
            let registry = registry.clone();
            move || {
                let event = events.blocking_recv().unwrap();
                let _ = seen.send((event.kind, registry.read().contains_key("new")));
            }
        });
        registry.create(disabled("new".into())).await.unwrap();
        let (kind, visible) = saw.await.unwrap();
        assert_eq!(kind, "proxy_created");
        assert!(
            visible,
            "the event arrived before reads could see the new proxy"
        );
    }

    /// While a deleted proxy's connections are still draining, reads and other changes go on:
    /// the registry lock is released before the drain.
    #[tokio::test(start_paused = true)]
    async fn the_api_is_not_held_up_by_a_drain() {
        let registry = Registry::new(Options::default());
        for name in ["slow", "other"] {
            registry
                .create(NewProxy {
                    name: name.into(),
                    listen: "127.0.0.1:0".into(),
                    upstream: "127.0.0.1:1".into(),
                    enabled: true,
                    ..NewProxy::default()
                })
                .await
                .unwrap();
        }
        let (release, released) = tokio::sync::oneshot::channel();
        registry.lock().await["slow"].spawn_slow_connection(released);
        let mut events = registry.events().subscribe();
        let deleting = tokio::spawn({
            let registry = registry.clone();
            async move { registry.delete("slow").await }
        });
        while events.recv().await.unwrap().kind != "proxy_deleted" {}
        // Time stands still while tasks have work, and jumps when all are idle: a call stuck
        // behind the drain (5 s) would see this 1 s bound expire first.
        let bound = Duration::from_secs(1);
        let list = tokio::time::timeout(bound, registry.list()).await;
        assert_eq!(list.expect("a read does not wait").len(), 1);
        tokio::time::timeout(bound, registry.delete("other"))
            .await
            .expect("a change does not wait")
            .unwrap();
        assert!(!deleting.is_finished(), "the drain is still in progress");
        release.send(()).unwrap();
        deleting.await.unwrap().unwrap();
    }
}
