//! What the registry holds and shows: proxies and toxics as stored (with their live handles),
//! the requests that create and change them, the views the API renders, and the validation of
//! request values.

use super::http::{HttpChange, HttpSettings, UpstreamTls};
use super::lifecycle::Running;
use super::Error;
use crate::events::EventBus;
use crate::proxy::{Chains, Direction, ProxyStats, Seeds, Stage};
use crate::target::Target;
use crate::toxics::{Attributes, ToxicSpec, ToxicType};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::DropGuard;

/// A proxy to create, as `POST /proxies` and `/populate` describe it.
#[derive(Debug, Clone, Default)]
pub struct NewProxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// faultline: how long dialing the upstream may take; `None` is [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    pub http: HttpSettings,
}

/// How long dialing the upstream may take unless a proxy says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Fields of a proxy to change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProxyChange {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
    pub connect_timeout: Option<Duration>,
    pub http: HttpChange,
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
    /// How long dialing the upstream may take.
    pub connect_timeout: Duration,
    pub http: HttpSettings,
    /// Upstream toxics first, then downstream, each in chain order.
    pub toxics: Vec<ToxicView>,
    pub stats: Arc<ProxyStats>,
}

impl ProxyView {
    /// This view with each toxic's time left counted from now (views are kept in a snapshot).
    pub(super) fn now(&self) -> ProxyView {
        let mut view = self.clone();
        let now = Instant::now();
        for toxic in &mut view.toxics {
            toxic.remaining = toxic.expires_at.map(|at| at.saturating_duration_since(now));
        }
        view
    }
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
    /// Time left before the toxic removes itself (`duration_ms`), as of when the view was
    /// taken.
    pub remaining: Option<Duration>,
    /// When the toxic removes itself.
    pub expires_at: Option<Instant>,
    pub schedule: Option<Schedule>,
    /// Whether a scheduled toxic is in its active phase.
    pub active: bool,
}

pub(super) struct Toxic {
    pub(super) name: String,
    pub(super) kind: &'static ToxicType,
    pub(super) stream: String,
    pub(super) direction: Direction,
    pub(super) toxicity: f32,
    pub(super) attributes: Attributes,
    pub(super) spec: Arc<dyn ToxicSpec>,
    pub(super) revision: u64,
    pub(super) target: Option<Arc<Target>>,
    pub(super) expires_at: Option<Instant>,
    pub(super) schedule: Option<Schedule>,
    /// False during the off phase of a schedule: listed, but not applied.
    pub(super) active: bool,
    /// Identifies the timers armed last, so a stale timer never touches a changed toxic.
    pub(super) timers: u64,
    /// Cancels this toxic's expiry and schedule timers when it is changed or removed.
    pub(super) _timers: Option<DropGuard>,
}

impl Toxic {
    pub(super) fn view(&self) -> ToxicView {
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
            expires_at: self.expires_at,
            schedule: self.schedule,
            active: self.active,
        }
    }
}

pub(super) struct Proxy {
    pub(super) name: String,
    /// The bound address while enabled (Go form); what was asked for while disabled.
    pub(super) listen: String,
    pub(super) upstream: String,
    /// Milliseconds a dial to the upstream may take; shared with the running listener, so a
    /// change applies to the next dial without a restart.
    pub(super) connect_timeout_ms: Arc<AtomicU64>,
    pub(super) http: HttpSettings,
    pub(super) toxics: Vec<Toxic>,
    pub(super) chains: Arc<Chains>,
    pub(super) stats: Arc<ProxyStats>,
    pub(super) seeds: Arc<Seeds>,
    pub(super) events: Arc<EventBus>,
    /// The data-plane runtime its listener and connections run on.
    pub(super) runtime: Handle,
    /// The TLS client for `upstream_tls`, shared by every proxy of the registry.
    pub(super) tls: Arc<UpstreamTls>,
    pub(super) running: Option<Running>,
}

impl Proxy {
    pub(super) fn view(&self) -> ProxyView {
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
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.load(Relaxed)),
            http: self.http.clone(),
            toxics,
            stats: self.stats.clone(),
        }
    }

    pub(super) fn publish(&self, direction: Direction) {
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

    pub(super) fn toxic_index(&self, name: &str) -> Result<usize, Error> {
        self.toxics
            .iter()
            .position(|t| t.name == name)
            .ok_or(Error::ToxicNotFound)
    }
}

/// The longest connect timeout a proxy may ask for.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3600);

/// A connect timeout as milliseconds, if it is within 1 ms and an hour.
pub(super) fn validate_connect_timeout(timeout: Duration) -> Result<u64, Error> {
    if timeout.is_zero() || timeout > MAX_CONNECT_TIMEOUT {
        return Err(Error::Invalid(format!(
            "connect_timeout_ms must be between 1 and {}",
            MAX_CONNECT_TIMEOUT.as_millis()
        )));
    }
    Ok(timeout.as_millis() as u64)
}

pub(super) fn validate(new: &NewProxy, index: Option<usize>) -> Result<(), Error> {
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
    if let Some(timeout) = new.connect_timeout {
        validate_connect_timeout(timeout)?;
    }
    new.http.validate(&new.upstream)
}

pub(super) fn validate_toxicity(toxicity: f32) -> Result<f32, Error> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(toxicity)
    } else {
        Err(Error::Invalid(format!(
            "toxicity must be between 0 and 1, got {toxicity}"
        )))
    }
}

pub(super) fn validate_timing(
    duration: Option<Duration>,
    schedule: Option<Schedule>,
) -> Result<(), Error> {
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
