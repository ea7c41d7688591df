//! One direction of one proxied connection: read from the source socket, pass the bytes through
//! the toxic chain, write them to the destination socket when they are due.
//!
//! A [`Half`] reads only while what it holds is under a budget (backpressure: a slow reader
//! slows the writer), applies the chain lazily (a piece enters the chain once everything before
//! it has been written), and propagates end-of-stream to its destination only (half-close).
//! Delays are release instants, so while one piece waits the half keeps reading the next ones:
//! a latency toxic adds latency without cutting throughput.
//!
//! When the chain changes, pieces the old chain was holding are released at once (as Toxiproxy
//! does when a toxic is interrupted), everything not yet processed goes through the new chain,
//! and toxics that did not change keep their state: no byte is lost, duplicated or reordered.

use super::stats::{DirectionStats, ProxyStats};
use super::{Chain, Direction, Stage as StageSpec};
use crate::toxics::{Cut, Piece, Toxic};
use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::Rng;
use socket2::SockRef;
use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::{IpAddr, Shutdown};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::tcp::ReadHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::io::poll_read_buf;
use tokio_util::sync::{CancellationToken, ReusableBoxFuture};

/// Bytes read per system call; a stream in bulk reads more per call, so it makes fewer.
const READ_SIZE: usize = 32 * 1024;
const BULK_READ_SIZE: usize = 1024 * 1024;
/// The resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);
/// What a half may hold with no toxic asking for more: enough to keep both sockets busy.
const BASE_BUDGET: usize = 64 * 1024;

/// How the whole connection ends, shared by its two halves.
#[derive(Debug)]
pub struct ConnectionControl {
    token: CancellationToken,
    /// 0: not cut, 1: close, 2: reset.
    cut: AtomicU8,
}

impl ConnectionControl {
    pub fn new(token: CancellationToken) -> Self {
        ConnectionControl {
            token,
            cut: AtomicU8::new(0),
        }
    }

    /// Ends both directions at once; a reset wins over a close.
    pub fn cut(&self, cut: Cut) {
        let code = match cut {
            Cut::Close => 1,
            Cut::Reset => 2,
        };
        self.cut.fetch_max(code, Ordering::AcqRel);
        self.token.cancel();
    }

    /// How a toxic or a failure ended the connection, if one did.
    pub fn outcome(&self) -> Option<Cut> {
        match self.cut.load(Ordering::Acquire) {
            1 => Some(Cut::Close),
            2 => Some(Cut::Reset),
            _ => None,
        }
    }
}

/// Who this connection is, for toxics that target some connections only.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: IpAddr,
    /// Drawn once per connection, so fraction targeting is stable for its whole life.
    pub draw: u64,
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

/// Waits for chain changes with one long-lived future, so the pipeline's loop does not
/// register and unregister a waiter on every turn.
struct ChainWatch {
    current: Chain,
    next: ReusableBoxFuture<'static, (bool, watch::Receiver<Chain>)>,
    /// False once the proxy is gone and its chains can no longer change.
    live: bool,
}

async fn wait_for_change(mut rx: watch::Receiver<Chain>) -> (bool, watch::Receiver<Chain>) {
    let changed = rx.changed().await.is_ok();
    (changed, rx)
}

impl ChainWatch {
    fn new(mut rx: watch::Receiver<Chain>) -> Self {
        let current = rx.borrow_and_update().clone();
        ChainWatch {
            current,
            next: ReusableBoxFuture::new(wait_for_change(rx)),
            live: true,
        }
    }

    /// Resolves to true with the new chain in `current`, or false when the proxy is gone.
    async fn changed(&mut self) -> bool {
        let (changed, mut rx) = (&mut self.next).await;
        if changed {
            self.current = rx.borrow_and_update().clone();
        } else {
            self.live = false;
        }
        self.next.set(wait_for_change(rx));
        changed
    }
}

/// One direction of a connection.
pub struct Half<'a> {
    direction: Direction,
    chain: ChainWatch,
    stages: Vec<Stage>,
    rng: SmallRng,
    peer: Peer,
    stats: &'a DirectionStats,
    proxy_stats: &'a ProxyStats,
    /// Bytes read but not yet through the chain.
    input: VecDeque<Piece>,
    input_bytes: usize,
    /// Pieces through the chain, waiting for their release instant.
    output: VecDeque<Piece>,
    output_bytes: usize,
    /// When the last whole piece was written, for pieces that keep a gap after it.
    last_write: Option<Instant>,
    end: End,
    /// A toxic decided to end the connection once `output` is written.
    cut_after_output: Option<Cut>,
    /// Reused buffers for running pieces through the chain.
    scratch: (Vec<Piece>, Vec<Piece>),
    read_buf: BytesMut,
    /// The last read filled the buffer: more is probably coming, keep the buffer.
    bulk: bool,
}

/// Why a half stopped.
enum Stop {
    /// End-of-stream was passed on to the destination.
    Finished,
    /// The connection is being torn down (by the other half, a toxic or the proxy).
    Cancelled,
}

impl<'a> Half<'a> {
    pub fn new(
        direction: Direction,
        chain_rx: watch::Receiver<Chain>,
        rng: SmallRng,
        peer: Peer,
        proxy_stats: &'a ProxyStats,
    ) -> Self {
        let mut half = Half {
            direction,
            chain: ChainWatch::new(chain_rx),
            stages: Vec::new(),
            rng,
            peer,
            stats: proxy_stats.direction(direction),
            proxy_stats,
            input: VecDeque::new(),
            input_bytes: 0,
            output: VecDeque::new(),
            output_bytes: 0,
            last_write: None,
            end: End::Open,
            cut_after_output: None,
            scratch: (Vec::new(), Vec::new()),
            read_buf: BytesMut::new(),
            bulk: false,
        };
        let chain = half.chain.current.clone();
        half.rebuild(&chain);
        half
    }

    /// Moves bytes from `src` to `dst` until end-of-stream has been passed on, or the
    /// connection is cut. A failure on either socket resets the whole connection.
    pub async fn run(
        &mut self,
        src: &mut ReadHalf<'_>,
        dst: &TcpStream,
        control: &ConnectionControl,
    ) {
        match self.pump(src, dst, control).await {
            Ok(Stop::Finished) => {
                tracing::debug!(direction = %self.direction, "end of stream passed on");
            }
            Ok(Stop::Cancelled) => {}
            Err(error) => {
                tracing::debug!(direction = %self.direction, %error, "connection failed");
                control.cut(Cut::Reset);
            }
        }
    }

    async fn pump(
        &mut self,
        src: &mut ReadHalf<'_>,
        dst: &TcpStream,
        control: &ConnectionControl,
    ) -> io::Result<Stop> {
        let cancelled = control.token.cancelled();
        tokio::pin!(cancelled);
        let timer = tokio::time::sleep_until(crate::toxics::far_future(Instant::now()).into());
        tokio::pin!(timer);

        loop {
            let now = Instant::now();
            if let Some(cut) = self.expired_deadline(now) {
                self.count_cut(cut);
                control.cut(cut);
                return Ok(Stop::Cancelled);
            }
            self.advance(now);
            let head_due = self.write_due(dst, now)?;

            if self.output.is_empty() {
                if let Some(cut) = self.cut_after_output {
                    self.count_cut(cut);
                    control.cut(cut);
                    return Ok(Stop::Cancelled);
                }
                if let End::Due(at) = self.end {
                    if at <= now {
                        // Half-close: the peer sees end-of-stream, the other direction goes on.
                        let _ = SockRef::from(dst).shutdown(Shutdown::Write);
                        return Ok(Stop::Finished);
                    }
                }
            }

            // The timer wheel ticks in whole milliseconds and rounds up, so it is armed a
            // tick early and the last stretch is spent yielding: delays stay exact.
            let wake_at = self.next_wake(now);
            let spin = wake_at.is_some_and(|at| at <= now + TIMER_TICK);
            if let Some(at) = wake_at.filter(|_| !spin) {
                let early = at - TIMER_TICK;
                if timer.deadline().into_std() != early {
                    timer.as_mut().reset(early.into());
                }
            }
            let want_read = self.end == End::Open
                && self.cut_after_output.is_none()
                && self.input_bytes + self.output_bytes < self.budget();
            if want_read && self.input.is_empty() && self.output.is_empty() && !self.bulk {
                // Idle between messages: give the buffer back, so idle connections cost
                // almost nothing.
                self.read_buf = BytesMut::new();
            }

            tokio::select! {
                biased;
                _ = &mut cancelled => return Ok(Stop::Cancelled),
                changed = self.chain.changed(), if self.chain.live => {
                    if changed {
                        self.apply_chain_change();
                    }
                }
                ready = dst.writable(), if head_due => ready?,
                _ = &mut timer, if wake_at.is_some() && !spin => {}
                _ = tokio::task::yield_now(), if spin => {}
                ready = src.as_ref().readable(), if want_read => {
                    ready?;
                    self.read(src).await?;
                }
            }
        }
    }

    /// Reads once from `src` into `input`. Reading through `AsyncRead` (not `try_read`)
    /// lets tokio note that a short read drained the socket, which saves an empty read per
    /// message.
    async fn read(&mut self, src: &mut ReadHalf<'_>) -> io::Result<()> {
        let want = if self.bulk { BULK_READ_SIZE } else { READ_SIZE };
        if self.read_buf.capacity() - self.read_buf.len() < want / 4 {
            self.read_buf.reserve(want);
        }
        let room = self.read_buf.capacity() - self.read_buf.len();
        let read = std::future::poll_fn(|cx| {
            Poll::Ready(poll_read_buf(Pin::new(&mut *src), cx, &mut self.read_buf))
        })
        .await;
        match read {
            Poll::Ready(Ok(0)) => {
                self.end = End::Read(Instant::now());
                Ok(())
            }
            Poll::Ready(Ok(n)) => {
                ProxyStats::add(&self.stats.received_bytes, n as u64);
                self.bulk = n == room;
                let data = self.read_buf.split().freeze();
                self.input_bytes += n;
                self.input.push_back(Piece::new(data, Instant::now()));
                Ok(())
            }
            Poll::Pending => {
                self.bulk = false;
                Ok(())
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.bulk = false;
                Ok(())
            }
            Poll::Ready(Err(e)) => Err(e),
        }
    }

    /// Writes every piece that is due; returns whether a due piece is waiting for the socket.
    fn write_due(&mut self, dst: &TcpStream, now: Instant) -> io::Result<bool> {
        while let Some(due) = self.head_due_at() {
            if due > now {
                return Ok(false);
            }
            let head = self.output.front_mut().expect("a head is due");
            match dst.try_write(&head.data) {
                Ok(n) => {
                    ProxyStats::add(&self.stats.sent_bytes, n as u64);
                    self.output_bytes -= n;
                    if n == head.data.len() {
                        self.output.pop_front();
                        self.last_write = Some(now);
                    } else {
                        let _ = head.data.split_to(n);
                        head.gap = Duration::ZERO;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
            if self.output.is_empty() {
                self.advance(Instant::now());
            }
        }
        Ok(false)
    }

    /// When the next piece may be written: its release instant, and its gap after the last.
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
            if let Some(piece) = self.input.pop_front() {
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
        let (current, next) = &mut self.scratch;
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
            ProxyStats::add(&self.stats.delayed_chunks, 1);
        }
        if bytes_out < bytes_in {
            ProxyStats::add(&self.stats.dropped_bytes, (bytes_in - bytes_out) as u64);
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

    /// When something will next be due with no I/O happening: a piece, the end, a deadline.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
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
        [head, end, deadline].into_iter().flatten().min()
    }

    fn budget(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| s.active)
            .map(|s| s.toxic.read_ahead())
            .fold(BASE_BUDGET, usize::saturating_add)
    }

    fn apply_chain_change(&mut self) {
        let chain = self.chain.current.clone();
        let now = Instant::now();
        // What the old chain holds goes out now, ahead of anything the new chain will see.
        for piece in &mut self.output {
            piece.at = piece.at.min(now);
        }
        if let End::Due(_) = self.end {
            self.end = End::Read(now);
        }
        if let Some(cut) = self.rebuild(&chain) {
            self.count_cut(cut);
            self.cut_after_output = Some(cut);
            self.output.clear();
            self.output_bytes = 0;
        }
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
                    let active = self.roll(spec);
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
        old.iter()
            .filter(|s| s.active)
            .filter_map(|s| s.toxic.on_remove())
            .max_by_key(|cut| *cut == Cut::Reset)
    }

    fn roll(&mut self, spec: &StageSpec) -> bool {
        applies(spec, self.peer, &mut self.rng)
    }

    fn count_cut(&self, cut: Cut) {
        let counter = match cut {
            Cut::Close => &self.proxy_stats.toxic_closes,
            Cut::Reset => &self.proxy_stats.toxic_resets,
        };
        ProxyStats::add(counter, 1);
    }
}
