//! Live counters of a proxy, updated by the data plane with relaxed atomics (one add per read or
//! write, never a lock) and read by the API and `/metrics`.

use super::Direction;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
