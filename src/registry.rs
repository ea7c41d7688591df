//! The registry: every proxy and its toxics, and every change to them.
//!
//! This is the one shared state of the server. The API calls it; it starts and stops listeners
//! and publishes toxic chains to live connections (`proxy::Chains`). Operations are serialized
//! by one async mutex, which is never touched by the data path, so a busy proxy never slows the
//! API and an API call never observes a half-applied change. Every operation either succeeds or
//! leaves the state as it was (except `/populate` and `/reset`, which stop at the first failure
//! as Toxiproxy's do).

use crate::events::{EventBus, EventData};
use crate::net;
use crate::proxy::listener::{self, ListenerContext};
use crate::proxy::{Chains, Direction, ProxyStats, Seeds, Stage};
use crate::target::Target;
use crate::toxics::{self, Attributes, ToxicSpec, ToxicType};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
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

/// A proxy to create, as `POST /proxies` and `/populate` describe it.
#[derive(Debug, Clone, Default)]
pub struct NewProxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

/// Fields of a proxy to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProxyChange {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

/// An on/off rhythm for a toxic: active for `on`, absent for `off`, repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub on: Duration,
    pub off: Duration,
}

/// A toxic to add, as `POST /proxies/{proxy}/toxics` describes it.
#[derive(Debug, Clone, Default)]
pub struct NewToxic {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub stream: Option<String>,
    pub toxicity: Option<f32>,
    pub attributes: Value,
    /// faultline: the toxic's blast radius.
    pub target: Option<Target>,
    /// faultline: the toxic removes itself after this long.
    pub duration: Option<Duration>,
    /// faultline: the toxic comes and goes on this rhythm.
    pub schedule: Option<Schedule>,
}

/// Changes to a toxic; attributes are merged into the current ones.
#[derive(Debug, Clone, Default)]
pub struct ToxicChange {
    pub toxicity: Option<f32>,
    pub attributes: Value,
    /// `Some(None)` removes the target.
    pub target: Option<Option<Target>>,
    pub duration: Option<Option<Duration>>,
    pub schedule: Option<Option<Schedule>>,
}

/// A proxy as the API shows it.
#[derive(Debug, Clone)]
pub struct ProxyView {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// Upstream toxics first, then downstream, each in chain order.
    pub toxics: Vec<ToxicView>,
    pub stats: Arc<ProxyStats>,
}

/// A toxic as the API shows it.
#[derive(Debug, Clone)]
pub struct ToxicView {
    pub name: String,
    pub kind: &'static str,
    /// As the client sent it (Toxiproxy echoes `"UPSTREAM"` unchanged).
    pub stream: String,
    pub toxicity: f32,
    pub attributes: Value,
    pub target: Option<Value>,
    pub remaining: Option<Duration>,
    pub schedule: Option<Schedule>,
    /// Whether a scheduled toxic is in its active phase.
    pub active: bool,
}

struct Toxic {
    name: String,
    kind: &'static ToxicType,
    stream: String,
    direction: Direction,
    toxicity: f32,
    attributes: Attributes,
    spec: Arc<dyn ToxicSpec>,
    revision: u64,
    target: Option<Arc<Target>>,
    expires_at: Option<Instant>,
    schedule: Option<Schedule>,
    /// False during the off phase of a schedule: listed, but not applied.
    active: bool,
    /// Identifies the timers armed last, so a stale timer never touches a changed toxic.
    timers: u64,
    /// Cancels this toxic's expiry and schedule timers when it is changed or removed.
    _timers: Option<DropGuard>,
}

impl Toxic {
    fn view(&self) -> ToxicView {
        ToxicView {
            name: self.name.clone(),
            kind: self.kind.name,
            stream: self.stream.clone(),
            toxicity: self.toxicity,
            attributes: self.attributes.to_json(),
            target: self.target.as_ref().map(|t| t.to_json()),
            remaining: self
                .expires_at
                .map(|at| at.saturating_duration_since(Instant::now())),
            schedule: self.schedule,
            active: self.active,
        }
    }
}

struct Running {
    shutdown: CancellationToken,
    connections: TaskTracker,
    accept: JoinHandle<()>,
}

struct Proxy {
    name: String,
    /// The bound address while enabled (Go form); what was asked for while disabled.
    listen: String,
    upstream: String,
    toxics: Vec<Toxic>,
    chains: Arc<Chains>,
    stats: Arc<ProxyStats>,
    seeds: Arc<Seeds>,
    events: Arc<EventBus>,
    /// The data-plane runtime its listener and connections run on.
    runtime: Handle,
    running: Option<Running>,
}

impl Proxy {
    fn view(&self) -> ProxyView {
        let toxics = Direction::BOTH
            .iter()
            .flat_map(|d| self.toxics.iter().filter(move |t| t.direction == *d))
            .map(Toxic::view)
            .collect();
        ProxyView {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.running.is_some(),
            toxics,
            stats: self.stats.clone(),
        }
    }

    fn publish(&self, direction: Direction) {
        let chain = self
            .toxics
            .iter()
            .filter(|t| t.direction == direction && t.active)
            .map(|t| Stage {
                name: Arc::from(t.name.as_str()),
                toxicity: t.toxicity,
                spec: t.spec.clone(),
                revision: t.revision,
                target: t.target.clone(),
            })
            .collect();
        self.chains.publish(direction, chain);
    }

    fn toxic_index(&self, name: &str) -> Result<usize, Error> {
        self.toxics
            .iter()
            .position(|t| t.name == name)
            .ok_or(Error::ToxicNotFound)
    }
}

/// Every proxy of the server.
pub struct Registry {
    proxies: Mutex<BTreeMap<String, Proxy>>,
    options: Options,
    revisions: AtomicU64,
    events: Arc<EventBus>,
    /// The runtime that carries the data plane (listeners, connections, toxic timers). The
    /// API may run elsewhere, so that a data plane busy with thousands of connections never
    /// delays it.
    runtime: Handle,
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

impl Registry {
    /// A registry whose proxies run on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn new(options: Options) -> Arc<Registry> {
        Arc::new_cyclic(|this| Registry {
            proxies: Mutex::new(BTreeMap::new()),
            options,
            revisions: AtomicU64::new(0),
            events: Arc::new(EventBus::default()),
            runtime: Handle::current(),
            this: this.clone(),
        })
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// All proxies, sorted by name.
    pub async fn list(&self) -> Vec<ProxyView> {
        self.proxies
            .lock()
            .await
            .values()
            .map(Proxy::view)
            .collect()
    }

    pub async fn get(&self, name: &str) -> Result<ProxyView, Error> {
        let proxies = self.proxies.lock().await;
        proxies
            .get(name)
            .map(Proxy::view)
            .ok_or(Error::ProxyNotFound)
    }

    /// Creates a proxy, listening at once if enabled. Nothing is added if binding fails.
    pub async fn create(&self, new: NewProxy) -> Result<ProxyView, Error> {
        validate(&new, None)?;
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&new.name) {
            return Err(Error::ProxyExists);
        }
        let proxy = self.new_proxy(new).await?;
        let view = proxy.view();
        proxies.insert(proxy.name.clone(), proxy);
        self.emit_proxy("proxy_created", &view);
        Ok(view)
    }

    /// Creates or replaces many proxies, as `POST /populate` does: an existing proxy with the
    /// same listen address and upstream is kept untouched (toxics and all); a different one is
    /// replaced. Stops at the first failure; returns what was processed and the error, if any.
    pub async fn populate(&self, list: Vec<NewProxy>) -> (Vec<ProxyView>, Option<Error>) {
        for (i, new) in list.iter().enumerate() {
            if let Err(e) = validate(new, Some(i + 1)) {
                return (Vec::new(), Some(e));
            }
        }
        let mut proxies = self.proxies.lock().await;
        let mut done = Vec::new();
        for new in list {
            if let Some(existing) = proxies.get(&new.name) {
                match existing.matches(&new).await {
                    Ok(true) => {
                        done.push(existing.view());
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => return (done, Some(e)),
                }
            }
            // The proxy being replaced stops first (its replacement may want its port), and
            // comes back as it was if the replacement cannot start: a failed populate never
            // loses a proxy.
            let mut replaced = proxies.remove(&new.name);
            let was_running = replaced.as_ref().is_some_and(|p| p.running.is_some());
            if let Some(old) = replaced.as_mut() {
                stop(old).await;
            }
            match self.new_proxy(new).await {
                Ok(proxy) => {
                    if let Some(old) = replaced {
                        self.emit_proxy("proxy_deleted", &old.view());
                    }
                    let view = proxy.view();
                    self.emit_proxy("proxy_created", &view);
                    done.push(view);
                    proxies.insert(proxy.name.clone(), proxy);
                }
                Err(e) => {
                    if let Some(mut old) = replaced {
                        if was_running {
                            if let Err(restart) = start(&mut old).await {
                                tracing::warn!(name = %old.name, error = %restart,
                                    "could not restart the proxy a failed populate replaced");
                            }
                        }
                        proxies.insert(old.name.clone(), old);
                    }
                    return (done, Some(e));
                }
            }
        }
        (done, None)
    }

    /// Changes a proxy's listen address, upstream or enabled state. A new listen address or
    /// upstream restarts an enabled proxy (its connections are closed), as in Toxiproxy.
    pub async fn update(&self, name: &str, change: ProxyChange) -> Result<ProxyView, Error> {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies.get_mut(name).ok_or(Error::ProxyNotFound)?;
        let listen = change.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = change.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enable = change.enabled.unwrap_or(proxy.running.is_some());
        if upstream.is_empty() {
            return Err(Error::MissingUpstream);
        }
        let wanted = net::resolve_listen(&listen).await.map_err(Error::Listen)?;
        let same_address = proxy.listens_at(wanted);
        if !same_address || upstream != proxy.upstream {
            // A new address is bound before anything is let go, so a failure changes nothing.
            let fresh = match enable && !same_address {
                true => Some(net::bind(wanted).map_err(Error::Listen)?),
                false => None,
            };
            stop(proxy).await;
            proxy.listen = listen;
            proxy.upstream = upstream;
            if let Some(listener) = fresh {
                start_with(proxy, listener)?;
            } else if enable {
                start(proxy).await?;
            }
        } else if enable && proxy.running.is_none() {
            start(proxy).await?;
        } else if !enable && proxy.running.is_some() {
            stop(proxy).await;
        }
        let view = proxy.view();
        self.emit_proxy("proxy_updated", &view);
        Ok(view)
    }

    /// Deletes a proxy: its listener and connections are closed, its toxics discarded.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let mut proxies = self.proxies.lock().await;
        let mut proxy = proxies.remove(name).ok_or(Error::ProxyNotFound)?;
        stop(&mut proxy).await;
        self.emit_proxy("proxy_deleted", &proxy.view());
        Ok(())
    }

    /// Enables every proxy and removes every toxic; live connections stay open (except those a
    /// removed `timeout` toxic was holding). Stops at the first proxy that cannot listen.
    pub async fn reset(&self) -> Result<(), Error> {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            if proxy.running.is_none() {
                start(proxy).await?;
            }
            let removed: Vec<String> = proxy.toxics.drain(..).map(|t| t.name).collect();
            for direction in Direction::BOTH {
                proxy.publish(direction);
            }
            for toxic in &removed {
                self.emit_toxic("toxic_removed", &proxy.name, toxic, None);
            }
        }
        self.events.publish("reset", EventData::default());
        Ok(())
    }

    /// Closes every listener and connection (server shutdown).
    pub async fn shutdown(&self) {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            stop(proxy).await;
        }
    }

    pub async fn toxics(&self, proxy: &str) -> Result<Vec<ToxicView>, Error> {
        Ok(self.get(proxy).await?.toxics)
    }

    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<ToxicView, Error> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(proxy).ok_or(Error::ProxyNotFound)?;
        Ok(proxy.toxics[proxy.toxic_index(toxic)?].view())
    }

    /// Adds a toxic at the end of its direction's chain; live connections apply it at once.
    pub async fn add_toxic(&self, proxy_name: &str, new: NewToxic) -> Result<ToxicView, Error> {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies.get_mut(proxy_name).ok_or(Error::ProxyNotFound)?;
        let stream = new.stream.unwrap_or_else(|| "downstream".to_string());
        let direction = Direction::parse(&stream).ok_or(Error::InvalidStream)?;
        let kind_name = new.kind.unwrap_or_default();
        let name = match new.name {
            Some(name) if !name.is_empty() => name,
            _ => format!("{kind_name}_{stream}"),
        };
        let kind = toxics::lookup(&kind_name).ok_or(Error::InvalidToxicType)?;
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
        let mut proxies = self.proxies.lock().await;
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
        self.emit_toxic("toxic_updated", proxy_name, toxic_name, Some(&view));
        Ok(view)
    }

    /// Removes a toxic; what it was holding on live connections is released at once.
    pub async fn remove_toxic(&self, proxy_name: &str, toxic_name: &str) -> Result<(), Error> {
        self.remove_toxic_as(proxy_name, toxic_name, "toxic_removed", None)
            .await
    }

    async fn remove_toxic_as(
        &self,
        proxy_name: &str,
        toxic_name: &str,
        event: &'static str,
        timers: Option<u64>,
    ) -> Result<(), Error> {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies.get_mut(proxy_name).ok_or(Error::ProxyNotFound)?;
        let index = proxy.toxic_index(toxic_name)?;
        if timers.is_some_and(|t| t != proxy.toxics[index].timers) {
            // The toxic was changed since this timer was armed; its new timers decide.
            return Ok(());
        }
        let toxic = proxy.toxics.remove(index);
        proxy.publish(toxic.direction);
        self.emit_toxic(event, proxy_name, toxic_name, None);
        Ok(())
    }

    /// Starts the expiry and schedule timers of a toxic, replacing any it had.
    fn arm_timers(&self, proxy: &str, toxic: &mut Toxic, duration: Option<Duration>) {
        toxic.expires_at = duration.map(|d| Instant::now() + d);
        if duration.is_none() && toxic.schedule.is_none() {
            toxic._timers = None;
            return;
        }
        toxic.timers = self.next_revision();
        let token = CancellationToken::new();
        let registry = self.this.clone();
        let (proxy, name, timers) = (proxy.to_string(), toxic.name.clone(), toxic.timers);
        let (expires_at, schedule) = (toxic.expires_at, toxic.schedule);
        let cancelled = token.clone();
        self.runtime.spawn(async move {
            tokio::select! {
                _ = cancelled.cancelled() => {}
                _ = run_timers(registry, proxy, name, timers, expires_at, schedule) => {}
            }
        });
        toxic._timers = Some(token.drop_guard());
    }

    /// Switches a scheduled toxic on or off without changing anything else about it.
    async fn set_phase(&self, proxy_name: &str, toxic_name: &str, timers: u64, on: bool) {
        let mut proxies = self.proxies.lock().await;
        let Some(proxy) = proxies.get_mut(proxy_name) else {
            return;
        };
        let Ok(index) = proxy.toxic_index(toxic_name) else {
            return;
        };
        let toxic = &mut proxy.toxics[index];
        if toxic.timers != timers || toxic.active == on {
            return;
        }
        toxic.active = on;
        let direction = toxic.direction;
        proxy.publish(direction);
        let kind = if on {
            "toxic_activated"
        } else {
            "toxic_deactivated"
        };
        self.emit_toxic(kind, proxy_name, toxic_name, None);
    }

    async fn new_proxy(&self, new: NewProxy) -> Result<Proxy, Error> {
        let mut proxy = Proxy {
            seeds: Arc::new(Seeds::new(self.options.seed, &new.name)),
            name: new.name,
            listen: new.listen,
            upstream: new.upstream,
            toxics: Vec::new(),
            chains: Arc::new(Chains::default()),
            stats: Arc::new(ProxyStats::default()),
            events: self.events.clone(),
            runtime: self.runtime.clone(),
            running: None,
        };
        if new.enabled {
            start(&mut proxy).await?;
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

/// Runs a toxic's schedule until it expires; then removes it.
async fn run_timers(
    registry: Weak<Registry>,
    proxy: String,
    name: String,
    timers: u64,
    expires_at: Option<Instant>,
    schedule: Option<Schedule>,
) {
    let rhythm = async {
        let Some(schedule) = schedule else {
            return std::future::pending::<()>().await;
        };
        let mut phase_end = Instant::now();
        loop {
            for (length, on) in [(schedule.on, false), (schedule.off, true)] {
                phase_end += length;
                tokio::time::sleep_until(phase_end.into()).await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                registry.set_phase(&proxy, &name, timers, on).await;
            }
        }
    };
    let expiry = async {
        match expires_at {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = rhythm => return,
        _ = expiry => {}
    }
    if let Some(registry) = registry.upgrade() {
        let _ = registry
            .remove_toxic_as(&proxy, &name, "toxic_expired", Some(timers))
            .await;
    }
}

async fn start(proxy: &mut Proxy) -> Result<(), Error> {
    let addr = net::resolve_listen(&proxy.listen)
        .await
        .map_err(|e| Error::Listen(format!("listen tcp: {e}")))?;
    let listener = net::bind(addr).map_err(Error::Listen)?;
    start_with(proxy, listener)
}

fn start_with(proxy: &mut Proxy, listener: std::net::TcpListener) -> Result<(), Error> {
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Listen(e.to_string()))?;
    // Listeners and connections live on the data-plane runtime, whichever thread asks.
    let _runtime = proxy.runtime.enter();
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Listen(e.to_string()))?;
    proxy.listen = net::go_format(bound);
    let context = Arc::new(ListenerContext {
        name: Arc::from(proxy.name.as_str()),
        upstream: Arc::from(proxy.upstream.as_str()),
        chains: proxy.chains.clone(),
        stats: proxy.stats.clone(),
        seeds: proxy.seeds.clone(),
        events: proxy.events.clone(),
    });
    let shutdown = CancellationToken::new();
    let connections = TaskTracker::new();
    let accept = proxy.runtime.spawn(listener::run(
        listener,
        context,
        shutdown.clone(),
        connections.clone(),
    ));
    tracing::info!(name = %proxy.name, listen = %proxy.listen, upstream = %proxy.upstream,
        "started proxy");
    proxy.running = Some(Running {
        shutdown,
        connections,
        accept,
    });
    Ok(())
}

/// Closes the listener and every connection, and waits until they are gone (bounded, so an
/// API call never hangs on a stuck socket), so the port is free when this returns.
async fn stop(proxy: &mut Proxy) {
    let Some(running) = proxy.running.take() else {
        return;
    };
    running.shutdown.cancel();
    running.connections.close();
    let _ = running.accept.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), running.connections.wait()).await;
    tracing::info!(name = %proxy.name, listen = %proxy.listen, "stopped proxy");
}

impl Proxy {
    /// Whether the proxy already listens where `wanted` asks (or, disabled, would).
    fn listens_at(&self, wanted: SocketAddr) -> bool {
        match self.listen.parse::<SocketAddr>() {
            Ok(bound) if self.running.is_some() => net::same_listen(bound, wanted),
            Ok(stored) => stored == wanted,
            Err(_) => false,
        }
    }

    /// Whether `/populate` may keep this proxy as it is for `new`.
    async fn matches(&self, new: &NewProxy) -> Result<bool, Error> {
        if self.upstream != new.upstream {
            return Ok(false);
        }
        if self.running.is_none() {
            return Ok(self.listen == new.listen);
        }
        let wanted = net::resolve_listen(&new.listen)
            .await
            .map_err(Error::Listen)?;
        Ok(self.listens_at(wanted))
    }
}

fn validate(new: &NewProxy, index: Option<usize>) -> Result<(), Error> {
    let missing = |field| match index {
        Some(index) => Error::MissingInPopulate { field, index },
        None if field == "name" => Error::MissingName,
        None => Error::MissingUpstream,
    };
    if new.name.is_empty() {
        return Err(missing("name"));
    }
    if new.upstream.is_empty() {
        return Err(missing("upstream"));
    }
    Ok(())
}

fn validate_toxicity(toxicity: f32) -> Result<f32, Error> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(toxicity)
    } else {
        Err(Error::Invalid(format!(
            "toxicity must be between 0 and 1, got {toxicity}"
        )))
    }
}

fn validate_timing(duration: Option<Duration>, schedule: Option<Schedule>) -> Result<(), Error> {
    // Ten years: longer bounds mean nothing and would overflow time arithmetic.
    let valid = |d: Duration| !d.is_zero() && d <= Duration::from_secs(10 * 365 * 86_400);
    if duration.is_some_and(|d| !valid(d)) {
        return Err(Error::Invalid(
            "duration_ms must be between 1 and 315360000000".into(),
        ));
    }
    if let Some(s) = schedule {
        if !valid(s.on) || !valid(s.off) {
            return Err(Error::Invalid(
                "schedule on_ms and off_ms must each be between 1 and 315360000000".into(),
            ));
        }
    }
    Ok(())
}
