//! Live counters of a proxy, updated by the data plane with relaxed atomics (one add per read or
//! write, never a lock) and read by the API and `/metrics`.

use super::Direction;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Counters of one direction of a proxy.
#[derive(Debug, Default)]
pub struct DirectionStats {
    /// Bytes read from the source socket.
    pub received_bytes: AtomicU64,
    /// Bytes written to the destination socket.
    pub sent_bytes: AtomicU64,
    /// Chunks that toxics held back (latency, bandwidth, loss, slicing...).
    pub delayed_chunks: AtomicU64,
    /// Bytes that toxics discarded (timeout, drop, limit_data, reset_peer...).
    pub dropped_bytes: AtomicU64,
}

/// Counters of one proxy, kept across restarts (disable/enable) for its lifetime.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub upstream: DirectionStats,
    pub downstream: DirectionStats,
    pub connections_total: AtomicU64,
    pub connections_active: AtomicU64,
    /// Upstream dials that failed (refused, unreachable, unresolvable).
    pub connect_errors: AtomicU64,
    /// Connections ended by a toxic closing them.
    pub toxic_closes: AtomicU64,
    /// Connections ended by a toxic resetting them.
    pub toxic_resets: AtomicU64,
    /// HTTP requests each HTTP toxic applied to, by toxic name (with its type). Locked once
    /// per faulted request only; requests no toxic touches never take it.
    pub http_faults: Mutex<BTreeMap<String, (&'static str, u64)>>,
    /// Read-ahead shared by the proxy's connections (bounds memory through long delays).
    pub read_ahead: super::flow::ReadAheadPool,
    /// Clients turned away before the upstream was dialed.
    pub refused: Refusals,
    /// Failed upstream dials, by how they failed (their sum is `connect_errors`).
    pub connect_failures: ConnectFailures,
}

/// Failed upstream dials, by how they failed.
#[derive(Debug, Default)]
pub struct ConnectFailures {
    /// Nothing listens there (the upstream answered with a reset to the SYN).
    pub refused: AtomicU64,
    /// No answer within the proxy's connect timeout.
    pub timeout: AtomicU64,
    /// The connection was reset while being set up.
    pub reset: AtomicU64,
    /// The TLS handshake with the upstream failed (HTTP proxies with `upstream_tls`).
    pub tls: AtomicU64,
    /// Anything else: unresolvable host, unreachable network, ...
    pub other: AtomicU64,
}

impl ConnectFailures {
    /// The counter for a failure reason, as `upstream_error` events name it.
    pub fn by(&self, reason: &str) -> &AtomicU64 {
        match reason {
            "refused" => &self.refused,
            "timeout" => &self.timeout,
            "reset" => &self.reset,
            "tls" => &self.tls,
            _ => &self.other,
        }
    }

    /// Every reason and its count, in a stable order.
    pub fn counts(&self) -> [(&'static str, u64); 5] {
        [
            ("refused", self.refused.load(Relaxed)),
            ("timeout", self.timeout.load(Relaxed)),
            ("reset", self.reset.load(Relaxed)),
            ("tls", self.tls.load(Relaxed)),
            ("other", self.other.load(Relaxed)),
        ]
    }
}

/// Clients turned away before the upstream was dialed, by what turned them away.
#[derive(Debug, Default)]
pub struct Refusals {
    /// A `refuse` toxic reset them.
    pub refuse: AtomicU64,
    /// A `blackhole` toxic held them without an answer.
    pub blackhole: AtomicU64,
    /// A `limit_connections` toxic had no slot for them.
    pub limit_connections: AtomicU64,
    /// The process was out of file descriptors.
    pub no_descriptors: AtomicU64,
}

impl Refusals {
    /// The counter for a refusal reason, as `connection_refused` events name it (`by`).
    pub fn by(&self, reason: &str) -> Option<&AtomicU64> {
        match reason {
            "refuse" => Some(&self.refuse),
            "blackhole" => Some(&self.blackhole),
            "limit_connections" => Some(&self.limit_connections),
            "no_descriptors" => Some(&self.no_descriptors),
            _ => None,
        }
    }

    /// Every reason and its count, in a stable order.
    pub fn counts(&self) -> [(&'static str, u64); 4] {
        [
            ("refuse", self.refuse.load(Relaxed)),
            ("blackhole", self.blackhole.load(Relaxed)),
            ("limit_connections", self.limit_connections.load(Relaxed)),
            ("no_descriptors", self.no_descriptors.load(Relaxed)),
        ]
    }
}

impl ProxyStats {
    pub fn direction(&self, direction: Direction) -> &DirectionStats {
        match direction {
            Direction::Upstream => &self.upstream,
            Direction::Downstream => &self.downstream,
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Counts one request faulted by the toxic `name` of type `kind`.
    pub(crate) fn count_http_fault(&self, name: &str, kind: &'static str) {
        let mut faults = self.http_faults.lock().unwrap_or_else(|e| e.into_inner());
        match faults.get_mut(name) {
            Some(entry) => entry.1 += 1,
            None => {
                faults.insert(name.to_string(), (kind, 1));
            }
        }
    }

    /// Requests faulted so far, per HTTP toxic: `(name, type, count)`.
    pub fn http_faults(&self) -> Vec<(String, &'static str, u64)> {
        let faults = self.http_faults.lock().unwrap_or_else(|e| e.into_inner());
        faults
            .iter()
            .map(|(name, (kind, n))| (name.clone(), *kind, *n))
            .collect()
    }
}

/// Marks a connection active for as long as it lives.
pub(crate) struct ActiveGuard<'a>(&'a ProxyStats);

impl<'a> ActiveGuard<'a> {
    pub(crate) fn new(stats: &'a ProxyStats) -> Self {
        ProxyStats::add(&stats.connections_total, 1);
        ProxyStats::add(&stats.connections_active, 1);
        ActiveGuard(stats)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_active.fetch_sub(1, Relaxed);
    }
}
