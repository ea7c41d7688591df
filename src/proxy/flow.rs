//! The sans-IO core of one direction of a connection: what has been read, what the toxic chain
//! made of it, what may be written when, how much may be read ahead, and what a chain change
//! does. It never touches a socket or a clock: every call takes `now`, so each rule has a
//! deterministic unit test. The async driver (`super::pipeline`) does the reads and writes.
//!
//! Rules it keeps:
//! - a piece enters the chain only once everything before it has been written (lazy chain), so
//!   a chain change applies to every byte not yet processed, and nothing is lost, duplicated or
//!   reordered when toxics come and go;
//! - when the chain changes, what the old chain holds is released at once, toxics that did not
//!   change keep their state, and a removed toxic may end the connection (`on_remove`);
//! - what is held (read but not yet written) stays under a budget: a small base, plus a
//!   read-ahead sized from what the toxics hold data for, times the measured arrival rate, and
//!   granted from the proxy's [`ReadAheadPool`]. Past it, reading stops: the sender is slowed by
//!   backpressure, nothing is dropped;
//! - the chain is fed at most [`Toxic::max_input`] bytes at a time, so a 1-byte slicer turns a
//!   1 MiB read into a few dozen queued slices at a time, not a million.

use super::queue::Queue;
use super::{Direction, Stage as StageSpec};
use crate::toxics::{Cut, Piece, Toxic};
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::Rng;
use std::mem;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a direction may hold without asking the proxy's pool for read-ahead. With no toxic,
/// reads are written on at once and only what the destination does not take is held, up to
/// this; an idle connection holds nothing. While a toxic holds data for a while (a latency),
/// everything beyond it is read-ahead granted from the pool, so the pool's limit bounds what
/// all the delayed connections of a proxy hold together, give or take this floor each, which
/// keeps every connection moving however many share the pool.
pub const BASE_BUDGET: usize = 64 * 1024;
/// The most read-ahead one direction of one connection may hold beyond the base.
pub const READ_AHEAD_PER_CONNECTION: usize = 16 << 20;
/// The most read-ahead all the connections of one proxy may hold together beyond their bases
/// (each keeps its [`BASE_BUDGET`]).
pub const READ_AHEAD_PER_PROXY: usize = 256 << 20;
/// Queues keep at most this much spare capacity once a spike has passed.
const SPARE_PIECES: usize = 64;

/// Read-ahead shared by all the connections of one proxy, so that many connections through a
/// long delay cannot together hold more than a fixed amount of memory.
#[derive(Debug)]
pub struct ReadAheadPool {
    limit: usize,
    used: AtomicUsize,
}

impl Default for ReadAheadPool {
    fn default() -> Self {
        ReadAheadPool::new(READ_AHEAD_PER_PROXY)
    }
}

impl ReadAheadPool {
    pub fn new(limit: usize) -> Self {
        ReadAheadPool {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes up to `want` bytes; returns how many were granted.
    pub fn take(&self, want: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                granted = want.min(self.limit.saturating_sub(used));
                Some(used + granted)
            });
        granted
    }

    pub fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes granted to connections right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Who a connection is, for toxics that target some connections only.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: IpAddr,
    /// Drawn once per connection, so fraction targeting is stable for its whole life.
    pub draw: u64,
}

/// What the driver must do next, once the flow has caught up with `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep moving bytes.
    Continue,
    /// Pass end-of-stream on to the destination: this direction is done.
    Finish,
    /// A toxic ended the connection (counted once, here).
    Cut(Cut),
}

/// What toxics did, for the live counters; the driver drains it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub delayed_chunks: u64,
    pub dropped_bytes: u64,
}

struct Stage {
    name: std::sync::Arc<str>,
    revision: u64,
    toxic: Box<dyn Toxic>,
    /// Toxicity and targeting, decided when the toxic attached or was last updated.
    active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The source is still open.
    Open,
    /// The source ended at this instant; the end has not been through the chain yet.
    Read(Instant),
    /// The end passes on to the destination at this instant.
    Due(Instant),
}

/// Whether a toxic applies to a connection: its target must select it, then a roll against
/// its toxicity.
pub fn applies(stage: &StageSpec, peer: Peer, rng: &mut SmallRng) -> bool {
    if let Some(target) = &stage.target {
        if !target.selects(peer.ip, peer.draw, &stage.name) {
            return false;
        }
    }
    rng.random::<f32>() < stage.toxicity
}

/// Measures how fast bytes arrive and sizes the read-ahead from it: twice the rate times how
/// long the toxics hold data. While the budget is what limits reading, the measured rate is
/// the budget over the hold time, so the wanted read-ahead doubles each window until the sender
/// or a cap is what limits; when the sender slows, it shrinks back.
#[derive(Debug)]
struct ReadAhead {
    hold: Duration,
    window_start: Instant,
    window_bytes: usize,
    /// Bytes per second in the last complete window.
    last_rate: f64,
    /// Read-ahead granted beyond the base.
    granted: usize,
}

impl ReadAhead {
    fn window(&self) -> Duration {
        self.hold
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The read-ahead wanted now (beyond the base), updated at the end of each window.
    fn wanted(&mut self, now: Instant) -> Option<usize> {
        if self.hold.is_zero() {
            return Some(0).filter(|_| self.granted > 0);
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < self.window() {
            return None;
        }
        let rate = self.window_bytes as f64 / elapsed.as_secs_f64();
        let recent = rate.max(self.last_rate);
        self.last_rate = rate;
        self.window_start = now;
        self.window_bytes = 0;
        let wanted = (2.0 * recent * self.hold.as_secs_f64()).min(READ_AHEAD_PER_CONNECTION as f64);
        Some(wanted as usize)
    }
}

/// One direction's queues, stages and decisions.
pub struct Flow {
    direction: Direction,
    stages: Vec<Stage>,
    rng: SmallRng,
    peer: Peer,
    /// Bytes read but not yet through the chain.
    input: Queue,
    input_bytes: usize,
    /// Pieces through the chain, waiting for their release instant.
    output: Queue,
    output_bytes: usize,
    /// When the last whole piece was written, for pieces that keep a gap after it.
    last_write: Option<Instant>,
    end: End,
    /// A toxic decided to end the connection once `output` is written.
    cut_after_output: Option<Cut>,
    /// Reused buffers for running pieces through the chain.
    /// Boxed on first use: a direction with no toxic never runs a chain, and every byte of
    /// a `Flow` is held by every connection for its whole life.
    scratch: Option<Box<(Vec<Piece>, Vec<Piece>)>>,
    read_ahead: ReadAhead,
    /// The most bytes the chain takes in one piece (set by slicing toxics).
    max_input: usize,
    tally: Tally,
}

impl Flow {
    pub fn new(
        direction: Direction,
        chain: &[StageSpec],
        rng: SmallRng,
        peer: Peer,
        now: Instant,
    ) -> Self {
        let mut flow = Flow {
            direction,
            stages: Vec::new(),
            rng,
            peer,
            input: Queue::default(),
            input_bytes: 0,
            output: Queue::default(),
            output_bytes: 0,
            last_write: None,
            end: End::Open,
            cut_after_output: None,
            scratch: None,
            read_ahead: ReadAhead {
                hold: Duration::ZERO,
                window_start: now,
                window_bytes: 0,
                last_rate: 0.0,
                granted: 0,
            },
            max_input: usize::MAX,
            tally: Tally::default(),
        };
        // A fresh connection has nothing to lose: a cut from `on_remove` cannot arise.
        let _ = flow.rebuild(chain);
        flow
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Bytes read from the source at `now`.
    pub fn on_read(&mut self, data: Bytes, now: Instant) {
        if data.is_empty() {
            return;
        }
        self.input_bytes += data.len();
        self.read_ahead.window_bytes += data.len();
        self.input.push_back(Piece::new(data, now));
    }

    /// The source reached end-of-stream at `now`.
    pub fn on_eof(&mut self, now: Instant) {
        if self.end == End::Open {
            self.end = End::Read(now);
        }
    }

    /// How many bytes may be read now (0: do not read).
    pub fn read_allowance(&self) -> usize {
        if self.end != End::Open || self.cut_after_output.is_some() {
            return 0;
        }
        self.budget()
            .saturating_sub(self.input_bytes + self.output_bytes)
    }

    /// The most this direction may hold right now.
    pub fn budget(&self) -> usize {
        BASE_BUDGET + self.read_ahead.granted
    }

    /// Whether bytes read now could go straight to the destination: no toxic is active,
    /// nothing is held ahead of them, and the stream is open. The driver may then write a
    /// read on at once and hand the flow only what the destination did not take.
    pub fn passes_through(&self) -> bool {
        self.held() == 0
            && self.end == End::Open
            && self.cut_after_output.is_none()
            && self.stages.iter().all(|s| !s.active)
    }

    /// Whether the flow has nothing to decide at any instant: it passes bytes through and
    /// holds no read-ahead to give back.
    pub fn is_transparent(&self) -> bool {
        self.passes_through() && self.read_ahead.granted == 0
    }

    /// Bytes held: read and not yet written.
    pub fn held(&self) -> usize {
        self.input_bytes + self.output_bytes
    }

    /// Pieces waiting in the queues (input and output).
    pub fn queued_pieces(&self) -> usize {
        self.input.len() + self.output.len()
    }

    /// How much read-ahead beyond the base this direction wants, when that changed: the
    /// driver asks the proxy's pool and reports back with [`Flow::set_read_ahead`].
    pub fn wanted_read_ahead(&mut self, now: Instant) -> Option<usize> {
        self.read_ahead
            .wanted(now)
            .filter(|wanted| *wanted != self.read_ahead.granted)
    }

    /// The read-ahead granted beyond the base.
    pub fn read_ahead(&self) -> usize {
        self.read_ahead.granted
    }

    pub fn set_read_ahead(&mut self, granted: usize) {
        self.read_ahead.granted = granted;
    }

    /// Catches up with `now`: runs what the chain may take, applies expired deadlines, and
    /// says whether the direction goes on, is finished, or the connection is cut.
    pub fn step(&mut self, now: Instant) -> Next {
        if let Some(cut) = self.expired_deadline(now) {
            return Next::Cut(cut);
        }
        self.advance(now);
        if self.output.is_empty() {
            if let Some(cut) = self.cut_after_output {
                return Next::Cut(cut);
            }
            if let End::Due(at) = self.end {
                if at <= now {
                    return Next::Finish;
                }
            }
            self.shrink();
        }
        Next::Continue
    }

    /// The bytes to write now, if the head piece is due.
    pub fn due(&self, now: Instant) -> Option<&Bytes> {
        let at = self.head_due_at()?;
        (at <= now).then(|| &self.output.front().expect("a head is due").data)
    }

    /// `n` bytes of the head piece were written at `now`.
    pub fn wrote(&mut self, n: usize, now: Instant) {
        let Some(head) = self.output.front_mut() else {
            return;
        };
        self.output_bytes -= n;
        if n >= head.data.len() {
            self.output.pop_front();
            self.last_write = Some(now);
            if self.output.is_empty() {
                self.advance(now);
            }
        } else {
            let _ = head.data.split_to(n);
            head.gap = Duration::ZERO;
        }
    }

    /// When something will next be due with no I/O happening: a piece, the end, a deadline,
    /// or the end of the read-ahead window.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let head = self.head_due_at().filter(|at| *at > now);
        let end = match self.end {
            End::Due(at) if at > now && self.output.is_empty() => Some(at),
            _ => None,
        };
        let deadline = self
            .stages
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| s.toxic.deadline())
            .map(|(at, _)| at)
            .min();
        // A stalled direction (budget full, nothing due) must still re-measure its rate.
        let window = (!self.read_ahead.hold.is_zero() && !self.output.is_empty())
            .then(|| self.read_ahead.window_start + self.read_ahead.window());
        [head, end, deadline, window].into_iter().flatten().min()
    }

    /// Counters since the last call.
    pub fn take_tally(&mut self) -> Tally {
        mem::take(&mut self.tally)
    }

    /// The chain changed at `now`: what the old chain holds goes out now, ahead of anything the
    /// new chain will see; unchanged toxics keep their state. Returns the cut that removing a
    /// toxic causes, if any (it ends the connection once what is held has been discarded).
    pub fn change_chain(&mut self, chain: &[StageSpec], now: Instant) {
        for piece in self.output.iter_mut() {
            piece.at = piece.at.min(now);
        }
        if let End::Due(_) = self.end {
            self.end = End::Read(now);
        }
        if let Some(cut) = self.rebuild(chain) {
            self.cut_after_output = Some(cut);
            self.output.clear();
            self.output_bytes = 0;
        }
    }

    fn head_due_at(&self) -> Option<Instant> {
        let head = self.output.front()?;
        Some(match self.last_write {
            Some(last) if !head.gap.is_zero() => head.at.max(last + head.gap),
            _ => head.at,
        })
    }

    /// Runs input through the chain while nothing is waiting to be written.
    fn advance(&mut self, now: Instant) {
        while self.output.is_empty() && self.cut_after_output.is_none() {
            if let Some(mut piece) = self.input.pop_front() {
                if piece.data.len() > self.max_input {
                    let rest = Piece {
                        data: piece.data.split_off(self.max_input),
                        at: piece.at,
                        gap: Duration::ZERO,
                    };
                    self.input.push_front(rest);
                }
                self.input_bytes -= piece.data.len();
                self.run_chain(piece);
                continue;
            }
            if let End::Read(at) = self.end {
                let at = self
                    .stages
                    .iter_mut()
                    .filter(|s| s.active)
                    .fold(at.max(now), |at, s| s.toxic.on_end(at));
                self.end = End::Due(at);
            }
            break;
        }
    }

    fn run_chain(&mut self, piece: Piece) {
        if self.stages.is_empty() {
            self.output_bytes += piece.data.len();
            self.output.push_back(piece);
            return;
        }
        let (arrived, bytes_in) = (piece.at, piece.data.len());
        let (current, next) = &mut **self.scratch.get_or_insert_with(Default::default);
        current.clear();
        current.push(piece);
        for stage in self.stages.iter_mut().filter(|s| s.active) {
            next.clear();
            for piece in current.drain(..) {
                if let Some(cut) = stage.toxic.on_piece(piece, next) {
                    self.cut_after_output = Some(match self.cut_after_output {
                        Some(Cut::Reset) => Cut::Reset,
                        _ => cut,
                    });
                }
            }
            mem::swap(current, next);
        }
        let mut bytes_out = 0;
        let mut delayed = false;
        for piece in current.drain(..) {
            bytes_out += piece.data.len();
            delayed |= piece.at > arrived;
            self.output.push_back(piece);
        }
        self.output_bytes += bytes_out;
        if delayed {
            self.tally.delayed_chunks += 1;
        }
        if bytes_out < bytes_in {
            self.tally.dropped_bytes += (bytes_in - bytes_out) as u64;
        }
    }

    /// Gives back what a spike left behind, once the queues are empty.
    fn shrink(&mut self) {
        self.output.shrink_to(SPARE_PIECES);
        if self.input.is_empty() {
            self.input.shrink_to(SPARE_PIECES);
        }
        for scratch in self.scratch.iter_mut().flat_map(|s| [&mut s.0, &mut s.1]) {
            if scratch.capacity() > SPARE_PIECES {
                scratch.shrink_to(SPARE_PIECES);
            }
        }
    }

    /// The earliest toxic deadline that has passed, if any.
    fn expired_deadline(&self, now: Instant) -> Option<Cut> {
        self.stages
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| s.toxic.deadline())
            .filter(|(at, _)| *at <= now)
            .map(|(_, cut)| cut)
            .max_by_key(|cut| *cut == Cut::Reset)
    }

    /// Builds the stages for `chain`, keeping unchanged toxics (and their state) as they are.
    /// Returns a cut if removing a toxic ends the connection.
    fn rebuild(&mut self, chain: &[StageSpec]) -> Option<Cut> {
        let mut old = mem::take(&mut self.stages);
        let mut stages = Vec::with_capacity(chain.len());
        for spec in chain {
            let previous = old
                .iter()
                .position(|s| s.name == spec.name)
                .map(|i| old.swap_remove(i));
            match previous {
                Some(stage) if stage.revision == spec.revision => stages.push(stage),
                previous => {
                    let mut toxic = spec.spec.instantiate(&mut self.rng);
                    if let Some(previous) = previous {
                        toxic.resume(previous.toxic.progress());
                    }
                    let active = applies(spec, self.peer, &mut self.rng);
                    stages.push(Stage {
                        name: spec.name.clone(),
                        revision: spec.revision,
                        toxic,
                        active,
                    });
                }
            }
        }
        self.stages = stages;
        let active = || self.stages.iter().filter(|s| s.active);
        self.read_ahead.hold = active().map(|s| s.toxic.holds()).max().unwrap_or_default();
        self.max_input = active()
            .map(|s| s.toxic.max_input())
            .min()
            .unwrap_or(usize::MAX)
            .max(1);
        old.iter()
            .filter(|s| s.active)
            .filter_map(|s| s.toxic.on_remove())
            .max_by_key(|cut| *cut == Cut::Reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxics::{self, AttrValue, Attributes};
    use rand::SeedableRng;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    const MS: Duration = Duration::from_millis(1);

    fn stage(name: &str, kind: &str, attrs: &[(&str, i64)], revision: u64) -> StageSpec {
        let kind = toxics::lookup(kind).expect("known type");
        let mut attributes = Attributes::defaults(kind);
        for (key, value) in attrs {
            attributes.set(key, AttrValue::Int(*value));
        }
        StageSpec {
            name: Arc::from(name),
            toxicity: 1.0,
            spec: (kind.build)(&attributes).expect("valid attributes"),
            revision,
            target: None,
        }
    }

    fn flow(chain: &[StageSpec], now: Instant) -> Flow {
        let peer = Peer {
            ip: Ipv4Addr::LOCALHOST.into(),
            draw: 0,
        };
        Flow::new(
            Direction::Downstream,
            chain,
            SmallRng::seed_from_u64(1),
            peer,
            now,
        )
    }

    /// Writes everything due at `now` (a destination that always accepts), returning it.
    fn drain(flow: &mut Flow, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            if flow.step(now) != Next::Continue {
                return out;
            }
            let Some(head) = flow.due(now).cloned() else {
                return out;
            };
            out.extend_from_slice(&head);
            flow.wrote(head.len(), now);
        }
    }

    /// With no toxic, bytes pass through at once and in order.
    #[test]
    fn no_toxic_passes_bytes_at_once() {
        let t0 = Instant::now();
        let mut f = flow(&[], t0);
        f.on_read(Bytes::from_static(b"hello "), t0);
        f.on_read(Bytes::from_static(b"world"), t0);
        assert_eq!(drain(&mut f, t0), b"hello world");
        assert_eq!(f.held(), 0);
    }

    /// A latency toxic holds bytes until their release instant, counted from arrival.
    #[test]
    fn latency_releases_at_the_instant() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 100)], 1)], t0);
        f.on_read(Bytes::from_static(b"abc"), t0);
        assert!(drain(&mut f, t0 + 99 * MS).is_empty());
        assert_eq!(f.next_wake(t0 + 99 * MS), Some(t0 + 100 * MS));
        assert_eq!(drain(&mut f, t0 + 100 * MS), b"abc");
    }

    /// Removing a toxic releases what it holds at once, and what was not yet processed goes
    /// through the new chain: nothing lost, duplicated or reordered.
    #[test]
    fn chain_change_releases_held_bytes_in_order() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 1000)], 1)], t0);
        f.on_read(Bytes::from_static(b"first "), t0);
        f.on_read(Bytes::from_static(b"second "), t0);
        assert!(drain(&mut f, t0).is_empty());
        f.change_chain(&[], t0 + MS);
        f.on_read(Bytes::from_static(b"third"), t0 + MS);
        assert_eq!(drain(&mut f, t0 + MS), b"first second third");
    }

    /// An unchanged toxic keeps its state across a chain change: limit_data keeps counting.
    #[test]
    fn unchanged_toxic_keeps_its_state() {
        let t0 = Instant::now();
        let limit = stage("cap", "limit_data", &[("bytes", 10)], 1);
        let mut f = flow(std::slice::from_ref(&limit), t0);
        f.on_read(Bytes::from_static(b"12345678"), t0);
        assert_eq!(drain(&mut f, t0), b"12345678");
        f.change_chain(&[limit, stage("n", "noop", &[], 1)], t0);
        f.on_read(Bytes::from_static(b"abcdef"), t0);
        assert_eq!(f.step(t0), Next::Continue);
        let head = f.due(t0).cloned().expect("two bytes due");
        assert_eq!(&head[..], b"ab");
        f.wrote(head.len(), t0);
        assert_eq!(f.step(t0), Next::Cut(Cut::Close));
    }

    /// Reading stops at the budget, and the allowance never exceeds what is left of it.
    #[test]
    fn reads_stop_at_the_budget() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 1000)], 1)], t0);
        assert_eq!(f.read_allowance(), BASE_BUDGET);
        f.on_read(Bytes::from(vec![0u8; BASE_BUDGET - 100]), t0);
        assert_eq!(f.step(t0), Next::Continue);
        assert_eq!(f.read_allowance(), 100);
        f.on_read(Bytes::from(vec![0u8; 100]), t0);
        assert_eq!(f.read_allowance(), 0);
    }

    /// Under a long delay, a fast sender's read-ahead grows window by window (about twice the
    /// rate times the delay) up to the per-connection cap, and shrinks back when it slows.
    #[test]
    fn read_ahead_follows_the_rate_within_the_cap() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 100)], 1)], t0);
        let mut now = t0;
        let mut grants = Vec::new();
        for _ in 0..20 {
            // The sender fills whatever the budget allows, every window.
            let room = f.read_allowance();
            f.on_read(Bytes::from(vec![0u8; room]), now);
            now += 100 * MS;
            drain(&mut f, now);
            if let Some(wanted) = f.wanted_read_ahead(now) {
                f.set_read_ahead(wanted);
            }
            grants.push(f.read_ahead());
        }
        assert!(grants.windows(2).all(|w| w[1] >= w[0]), "{grants:?}");
        assert!(grants[5] >= 4 << 20, "grows: {grants:?}");
        assert_eq!(*grants.last().unwrap(), READ_AHEAD_PER_CONNECTION);
        // The sender goes quiet: two windows later nothing is wanted any more.
        for _ in 0..2 {
            now += 100 * MS;
            if let Some(wanted) = f.wanted_read_ahead(now) {
                f.set_read_ahead(wanted);
            }
        }
        assert_eq!(f.read_ahead(), 0);
    }

    /// With no delaying toxic, nothing beyond the base is ever wanted.
    #[test]
    fn no_read_ahead_without_a_delay() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 0)], 1)], t0);
        f.on_read(Bytes::from(vec![0u8; BASE_BUDGET]), t0);
        drain(&mut f, t0 + Duration::from_secs(2));
        assert_eq!(f.wanted_read_ahead(t0 + Duration::from_secs(2)), None);
        assert_eq!(f.budget(), BASE_BUDGET);
    }

    /// Many delayed connections sharing one pool together hold no more than the pool's limit
    /// plus a small floor each, however hard their senders push; each still moves.
    #[test]
    fn delayed_connections_together_stay_within_the_pool() {
        let t0 = Instant::now();
        let pool = ReadAheadPool::new(8 << 20);
        let mut flows: Vec<Flow> = (0..100)
            .map(|_| flow(&[stage("l", "latency", &[("latency", 1000)], 1)], t0))
            .collect();
        let mut now = t0;
        let mut peak = 0;
        for _ in 0..20 {
            for f in &mut flows {
                let room = f.read_allowance();
                assert!(room > 0 || f.held() > 0, "a connection is starved");
                f.on_read(Bytes::from(vec![0u8; room]), now);
            }
            peak = peak.max(flows.iter().map(Flow::held).sum::<usize>());
            now += 1000 * MS;
            for f in &mut flows {
                drain(f, now);
                if let Some(wanted) = f.wanted_read_ahead(now) {
                    let granted = f.read_ahead();
                    if wanted > granted {
                        let more = pool.take(wanted - granted);
                        f.set_read_ahead(granted + more);
                    } else {
                        pool.give_back(granted - wanted);
                        f.set_read_ahead(wanted);
                    }
                }
            }
        }
        assert_eq!(pool.used(), 8 << 20, "the pool is what limits");
        // The README's figure, written out so that a larger floor fails here.
        let bound = (8 << 20) + flows.len() * 64 * 1024;
        assert!(peak <= bound, "held {peak} bytes, bound {bound}");
        assert!(peak > bound / 2, "held only {peak} bytes");
    }

    /// The proxy's pool never grants more than its limit, whatever the connections want.
    #[test]
    fn pool_grants_within_its_limit() {
        let pool = ReadAheadPool::new(1000);
        assert_eq!(pool.take(600), 600);
        assert_eq!(pool.take(600), 400);
        assert_eq!(pool.take(1), 0);
        pool.give_back(600);
        assert_eq!(pool.take(700), 600);
        assert_eq!(pool.used(), 1000);
    }

    /// A 1-byte slicer on a 1 MiB read never queues more than a few dozen slices at a time,
    /// and every byte comes out in order.
    #[test]
    fn slicer_does_not_flood_the_queues() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("s", "slicer", &[("average_size", 1)], 1)], t0);
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        f.on_read(Bytes::from(data.clone()), t0);
        let mut out = Vec::with_capacity(data.len());
        let mut most_queued = 0;
        loop {
            assert_eq!(f.step(t0), Next::Continue);
            most_queued = most_queued.max(f.queued_pieces());
            let Some(head) = f.due(t0).cloned() else {
                break;
            };
            out.extend_from_slice(&head);
            f.wrote(head.len(), t0);
        }
        assert!(most_queued <= 40, "{most_queued} pieces queued at once");
        assert!(out == data, "bytes lost or reordered");
    }

    /// After a spike of many small pieces, the queues give their memory back.
    #[test]
    fn queues_shrink_after_a_spike() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 10)], 1)], t0);
        for _ in 0..10_000 {
            f.on_read(Bytes::from_static(b"x"), t0);
        }
        assert!(f.input.capacity() >= 10_000);
        drain(&mut f, t0 + Duration::from_secs(1));
        assert_eq!(f.step(t0 + Duration::from_secs(1)), Next::Continue);
        // The inline slot, plus the spare spill.
        assert!(
            f.input.capacity() <= 1 + SPARE_PIECES,
            "{}",
            f.input.capacity()
        );
        assert!(
            f.output.capacity() <= 1 + SPARE_PIECES,
            "{}",
            f.output.capacity()
        );
    }

    /// Bytes may skip the flow only when no toxic acts on them and nothing is ahead of them.
    #[test]
    fn passes_through_only_with_nothing_to_do_and_nothing_held() {
        let t0 = Instant::now();
        let mut plain = flow(&[], t0);
        assert!(plain.passes_through());
        plain.on_read(Bytes::from_static(b"held"), t0);
        assert!(
            !plain.passes_through(),
            "bytes are held ahead of the next read"
        );
        plain.on_eof(t0);
        let n = plain.due(t0).map(|b| b.len());
        if let (Next::Continue, Some(n)) = (plain.step(t0), n) {
            plain.wrote(n, t0);
        }
        assert!(!plain.passes_through(), "the stream has ended");

        let delayed = flow(&[stage("l", "latency", &[("latency", 10)], 1)], t0);
        assert!(!delayed.passes_through());
        let mut never = stage("l", "latency", &[("latency", 10)], 1);
        never.toxicity = 0.0;
        assert!(
            flow(&[never], t0).passes_through(),
            "an inactive toxic does nothing"
        );
    }

    /// Request/response traffic with no toxic moves one piece at a time: once a message has
    /// been written, the direction holds no queue memory at all.
    #[test]
    fn one_message_at_a_time_allocates_no_queue() {
        let t0 = Instant::now();
        let mut f = flow(&[], t0);
        for _ in 0..3 {
            f.on_read(Bytes::from_static(b"GET key\r\n"), t0);
            assert_eq!(f.step(t0), Next::Continue);
            let n = f.due(t0).expect("due at once with no toxic").len();
            f.wrote(n, t0);
        }
        assert_eq!(f.held(), 0);
        assert_eq!((f.input.capacity(), f.output.capacity()), (1, 1));
    }

    /// A cut that removing a toxic causes is reported once, and ends the direction.
    #[test]
    fn removal_cut_reported_once() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("t", "timeout", &[("timeout", 0)], 1)], t0);
        f.change_chain(&[], t0);
        assert_eq!(f.step(t0), Next::Cut(Cut::Close));
        assert_eq!(f.read_allowance(), 0);
    }

    /// End-of-stream passes on once everything before it has been written, after the delay.
    #[test]
    fn end_follows_the_data() {
        let t0 = Instant::now();
        let mut f = flow(&[stage("l", "latency", &[("latency", 50)], 1)], t0);
        f.on_read(Bytes::from_static(b"bye"), t0);
        f.on_eof(t0);
        assert!(drain(&mut f, t0 + 10 * MS).is_empty());
        assert_eq!(drain(&mut f, t0 + 50 * MS), b"bye");
        assert_eq!(f.step(t0 + 50 * MS), Next::Finish);
    }
}
