//! The data plane: listening for clients, dialing upstreams and moving bytes through toxics.
//!
//! - [`listener`] accepts clients for one proxy until its shutdown token fires;
//! - [`connection`] dials the upstream for one client and runs both directions;
//! - [`descriptors`] refuses clients promptly when the process is out of file descriptors;
//! - [`pipeline`] is one direction of one connection: read, apply the toxic chain, write; it
//!   drives [`flow`], the sans-IO core that decides what is due when (holding its pieces in
//!   [`queue`]s), and [`precise`] sleeps until those instants.
//!
//! The control plane talks to running connections only through [`Chains`] (one watch channel
//! per direction carrying the current toxic chain) and cancellation tokens; nothing here knows
//! about HTTP or about any particular toxic.

pub mod connection;
pub mod descriptors;
pub mod flow;
pub mod listener;
pub mod pipeline;
pub mod precise;
pub mod queue;
pub mod stats;

use crate::hash::fnv1a_str;
use crate::toxics::ToxicSpec;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::sync::futures::Notified;
use tokio::sync::{watch, Notify};

pub use stats::{DirectionStats, ProxyStats};

/// One of the two directions of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Upstream,
    /// Server to client.
    Downstream,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Upstream, Direction::Downstream];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }

    /// Parses a stream name case-insensitively, as Toxiproxy does.
    pub fn parse(s: &str) -> Option<Direction> {
        if s.eq_ignore_ascii_case("upstream") {
            Some(Direction::Upstream)
        } else if s.eq_ignore_ascii_case("downstream") {
            Some(Direction::Downstream)
        } else {
            None
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One toxic as a running connection needs it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: Arc<str>,
    /// Probability that the toxic is active on a given connection direction.
    pub toxicity: f32,
    pub spec: Arc<dyn ToxicSpec>,
    /// Changes whenever the toxic is updated, so connections know to rebuild it.
    pub revision: u64,
    /// Restricts the toxic to some connections (blast radius); `None` means all.
    pub target: Option<Arc<crate::target::Target>>,
}

/// The ordered toxics of one direction.
pub type Chain = Arc<[Stage]>;

/// The current chain of each direction of a proxy, watched by its live connections.
#[derive(Debug)]
pub struct Chains {
    upstream: watch::Sender<Chain>,
    downstream: watch::Sender<Chain>,
    /// Notified after either chain changes: one small waiter per connection wakes it, and its
    /// halves see which chain changed through their receivers.
    changed: Notify,
}

impl Default for Chains {
    fn default() -> Self {
        Chains {
            upstream: watch::Sender::new(Arc::from(Vec::new())),
            downstream: watch::Sender::new(Arc::from(Vec::new())),
            changed: Notify::new(),
        }
    }
}

impl Chains {
    fn sender(&self, direction: Direction) -> &watch::Sender<Chain> {
        match direction {
            Direction::Upstream => &self.upstream,
            Direction::Downstream => &self.downstream,
        }
    }

    /// Publishes a new chain; live connections switch to it without losing a byte.
    pub fn publish(&self, direction: Direction, chain: Vec<Stage>) {
        self.sender(direction).send_replace(Arc::from(chain));
        self.changed.notify_waiters();
    }

    /// Resolves after the next change of either chain. Wait on it before looking at the
    /// receivers, so no change falls between the look and the wait.
    pub fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    pub fn subscribe(&self, direction: Direction) -> watch::Receiver<Chain> {
        self.sender(direction).subscribe()
    }
}

/// Seeds each connection's random source, and each HTTP request's: from `--seed`
/// (reproducible, in accept order and in request order) or from the OS. Requests have their
/// own sequence, so which requests are faulted does not depend on how a client spreads them
/// over connections.
#[derive(Debug)]
pub struct Seeds {
    connections: Mutex<SmallRng>,
    requests: Mutex<SmallRng>,
}

impl Seeds {
    pub fn new(seed: Option<u64>, proxy_name: &str) -> Self {
        let rng = |salt: u64| match seed {
            Some(seed) => SmallRng::seed_from_u64(seed ^ fnv1a_str(proxy_name) ^ salt),
            None => SmallRng::from_os_rng(),
        };
        Seeds {
            connections: Mutex::new(rng(0)),
            requests: Mutex::new(rng(fnv1a_str("http requests"))),
        }
    }

    /// A random source for the next connection.
    pub fn next_rng(&self) -> SmallRng {
        Self::next(&self.connections)
    }

    /// A random source for the next HTTP request the proxy reads.
    pub fn next_request_rng(&self) -> SmallRng {
        Self::next(&self.requests)
    }

    fn next(base: &Mutex<SmallRng>) -> SmallRng {
        let mut base = base.lock().unwrap_or_else(|e| e.into_inner());
        SmallRng::from_rng(&mut *base)
    }
}
