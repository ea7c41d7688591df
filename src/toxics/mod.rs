//! Toxics: the faults a pipeline applies to one direction of a connection, one file each.
//!
//! A toxic is a small, synchronous state machine. It never sleeps and never touches a socket:
//! it is handed [`Piece`]s of the stream (bytes stamped with the earliest instant they may be
//! written) and says what passes on, when, and whether the connection must end. The pipeline
//! (`crate::proxy::pipeline`) owns time and I/O and knows nothing of any toxic's specifics.
//! Because delays are expressed as release instants computed from arrival times, a delay never
//! serializes a stream, toxics compose by simple chaining, and every toxic can be unit-tested
//! and benchmarked without a runtime.
//!
//! Each toxic file declares a [`ToxicType`]: its name, its attributes (with defaults and
//! bounds, which the API validates generically), and how to build a [`ToxicSpec`] from them.
//! A spec is immutable and shared; each live connection instantiates its own [`Toxic`] from it.

mod attributes;

pub mod bandwidth;
pub mod blackhole;
pub mod corrupt;
pub mod drop;
pub mod http_abort;
pub mod http_delay;
pub mod http_header;
pub mod http_status;
pub mod latency;
pub mod limit_connections;
pub mod limit_data;
pub mod noop;
pub mod packet_loss;
pub mod refuse;
pub mod reset_peer;
pub mod slicer;
pub mod slow_close;
pub mod slow_open;
pub mod timeout;

pub use attributes::{AttrKind, AttrSpec, AttrValue, Attributes, Unit, MAX_INT};

use bytes::Bytes;
use rand::rngs::SmallRng;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A contiguous run of stream bytes and the earliest instant it may be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub data: Bytes,
    /// When the bytes arrived, advanced by every delay a toxic has added so far.
    pub at: Instant,
    /// The least time between writing the previous piece and this one. Timers are coarse
    /// (1 ms); a toxic that spaces pieces by less (`slicer`) says so here, so a late timer
    /// never lets spaced pieces leave in one burst.
    pub gap: Duration,
}

impl Piece {
    pub fn new(data: impl Into<Bytes>, at: Instant) -> Self {
        Piece {
            data: data.into(),
            at,
            gap: Duration::ZERO,
        }
    }
}

/// How a toxic ends a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Both sockets are closed normally (FIN): peers read end-of-stream.
    Close,
    /// Both sockets are closed with SO_LINGER 0: peers see a connection reset.
    Reset,
}

/// A live toxic: one per connection, direction and toxic.
pub trait Toxic: Send {
    /// A piece reaches this toxic. Push what passes on to `out` (in order, each with its release
    /// instant) and return `Some(cut)` to end the connection once `out` has been written.
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut>;

    /// The source reached end-of-stream at `at`; returns when the end may pass on.
    fn on_end(&mut self, at: Instant) -> Instant {
        at
    }

    /// An instant at which this toxic ends the connection even if no data flows.
    fn deadline(&self) -> Option<(Instant, Cut)> {
        None
    }

    /// How long this toxic holds data before passing it on. The pipeline reads ahead about
    /// twice the arrival rate times this (within per-connection and per-proxy caps), so that a
    /// delay does not throttle throughput, as a network path with latency holds data in flight.
    fn holds(&self) -> Duration {
        Duration::ZERO
    }

    /// The most bytes this toxic takes in one piece: the pipeline feeds it longer runs a part
    /// at a time, so a toxic that multiplies pieces (`slicer`) never floods the queues.
    fn max_input(&self) -> usize {
        usize::MAX
    }

    /// Progress that survives an update of the toxic's attributes (bytes counted so far).
    fn progress(&self) -> u64 {
        0
    }

    /// Takes over the progress of the instance this one replaces.
    fn resume(&mut self, _progress: u64) {}

    /// What removing the toxic from a live connection does to that connection.
    fn on_remove(&self) -> Option<Cut> {
        None
    }
}

/// What a toxic does to a connection being opened, before the upstream is dialed. Only new
/// connections are affected; live ones keep going.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Dial the upstream at once.
    Proceed,
    /// Dial the upstream only after this delay (the client's connect already succeeded).
    Delay(Duration),
    /// Reset the client before any byte is exchanged.
    Refuse,
    /// Keep the client connected, but never dial the upstream nor answer.
    Blackhole,
    /// Hold a slot of `pool` for the connection's life; when none is free, wait for one
    /// (`wait`) or refuse.
    Slot {
        pool: Arc<tokio::sync::Semaphore>,
        wait: bool,
    },
}

/// The validated, immutable form of a toxic's attributes, shared by every live connection.
pub trait ToxicSpec: Send + Sync + fmt::Debug {
    /// A fresh toxic for one connection direction; `rng` is that connection's (seeded) source.
    fn instantiate(&self, rng: &mut SmallRng) -> Box<dyn Toxic>;

    /// What the toxic does when a client connects (most toxics act on data only).
    fn admission(&self) -> Admission {
        Admission::Proceed
    }

    /// The HTTP rule this toxic is, for HTTP toxics: the HTTP engine applies it per request and
    /// the byte pipeline passes it by.
    fn http_rule(&self) -> Option<&crate::http::rules::Rule> {
        None
    }
}

/// Builds a spec from validated attributes, or says which attribute is unusable.
pub type BuildFn = fn(&Attributes) -> Result<Arc<dyn ToxicSpec>, String>;

/// A kind of toxic, as the API knows it.
pub struct ToxicType {
    pub name: &'static str,
    pub attributes: &'static [AttrSpec],
    pub build: BuildFn,
}

impl fmt::Debug for ToxicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Every toxic type the server accepts.
pub static TYPES: &[&ToxicType] = &[
    &latency::TYPE,
    &bandwidth::TYPE,
    &slow_close::TYPE,
    &timeout::TYPE,
    &reset_peer::TYPE,
    &slicer::TYPE,
    &limit_data::TYPE,
    &noop::TYPE,
    &packet_loss::TYPE,
    &drop::TYPE,
    &corrupt::TYPE,
    &slow_open::TYPE,
    &refuse::TYPE,
    &blackhole::TYPE,
    &limit_connections::TYPE,
    &http_status::TYPE,
    &http_delay::TYPE,
    &http_abort::TYPE,
    &http_header::TYPE,
];

/// The toxic types that act on HTTP requests, accepted only on `http` proxies.
pub static HTTP_TYPES: &[&ToxicType] = &[
    &http_status::TYPE,
    &http_delay::TYPE,
    &http_abort::TYPE,
    &http_header::TYPE,
];

/// Whether `kind` is an HTTP toxic.
pub fn is_http(kind: &ToxicType) -> bool {
    HTTP_TYPES.iter().any(|t| std::ptr::eq(*t, kind))
}

/// The toxic type registered under `name`.
pub fn lookup(name: &str) -> Option<&'static ToxicType> {
    TYPES.iter().copied().find(|t| t.name == name)
}

/// Milliseconds from a validated, non-negative attribute.
pub(crate) fn millis(value: i64) -> Duration {
    Duration::from_millis(value.max(0) as u64)
}

/// An instant so far ahead that it stands for "never" (tokio caps sleeps near this too).
pub(crate) fn far_future(from: Instant) -> Instant {
    from + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use rand::SeedableRng;

    /// Instantiates `type_name` with the given attributes over defaults.
    pub fn toxic(type_name: &str, attrs: &[(&str, AttrValue)]) -> Box<dyn Toxic> {
        let kind = lookup(type_name).expect("known type");
        let mut attributes = Attributes::defaults(kind);
        for (name, value) in attrs {
            attributes.set(name, value.clone());
        }
        let spec = (kind.build)(&attributes).expect("valid attributes");
        spec.instantiate(&mut SmallRng::seed_from_u64(7))
    }

    pub fn int(v: i64) -> AttrValue {
        AttrValue::Int(v)
    }

    pub fn float(v: f64) -> AttrValue {
        AttrValue::Float(v)
    }

    /// Feeds one piece and returns what came out.
    pub fn feed(toxic: &mut dyn Toxic, data: &[u8], at: Instant) -> (Vec<Piece>, Option<Cut>) {
        let mut out = Vec::new();
        let cut = toxic.on_piece(Piece::new(Bytes::copy_from_slice(data), at), &mut out);
        (out, cut)
    }
}
