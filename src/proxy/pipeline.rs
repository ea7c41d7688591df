//! One direction of one proxied connection: the async driver around [`Flow`], which decides
//! everything (what the chain makes of the bytes, what is due when, how much may be read).
//!
//! The driver reads from the source only while the flow allows it (backpressure: a slow reader
//! slows the writer, and a read never takes more than the budget left), writes what is due,
//! sleeps until the next instant the flow names, and watches the proxy's chain for changes. It
//! propagates end-of-stream to its destination only (half-close). It works over any
//! `AsyncRead`/`AsyncWrite` pair: plain TCP halves, or the streams of a protocol layer.
//!
//! Connections hold no read buffer: reads land on the stack. With no toxic acting, a read is
//! written on from there at once and only what the destination does not take is kept (as
//! HAProxy holds only what it could not forward); through a toxic, small reads are copied out
//! at their exact size, and only a stream in bulk keeps a buffer, given back when it pauses.

use super::flow::{Flow, Next, ReadAheadPool};
use super::precise;
use super::stats::{DirectionStats, ProxyStats};
use super::{Chain, Chains, Direction};
use crate::toxics::Cut;
use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use rand::rngs::SmallRng;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::pin;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio_util::io::poll_read_buf;
use tokio_util::sync::CancellationToken;

pub use super::flow::{applies, Peer};

/// Bytes read per call onto the stack: everything a direction with no toxic reads (written on
/// from there), and messages while they are small (then copied out at their size).
///
/// 32 KiB, not more: the bytes are copied twice (socket to stack, stack to socket), and a chunk
/// that stays in the core's caches between the two copies is cheaper per byte than fewer,
/// larger calls. In one benchmark run on a 2-core Xeon, bulk went from 0.84-0.93x of HAProxy's
/// with 64 KiB reads to 1.06-1.11x with 32 KiB (and 0.98-1.00x with 16 KiB); messages do not
/// change.
const STACK_READ: usize = 32 * 1024;
/// Bytes read per call by a stream in bulk through a toxic, into a buffer kept while the bulk
/// lasts (the pieces share it, with no copy).
///
/// Half the 64 KiB a direction holds at least, so one read can come in while the one before
/// is still being written: a read the size of the whole budget stops reading until its write
/// is done, and reading and writing take turns. `latency 0` on a bulk stream went from 0.75x
/// of no toxic (256 KiB, capped at the budget) to 0.94x in one same-run benchmark.
const BULK_READ: usize = 32 * 1024;

/// How the whole connection ends, shared by its two halves.
#[derive(Debug)]
pub struct ConnectionControl {
    /// Cancelled when the proxy stops: shared by all its connections, so a cut never
    /// cancels it (a cut is seen by [`ConnectionControl::run`] in the task that made it).
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

    /// Ends both directions at once; a reset wins over a close. Called only from inside the
    /// connection's [`ConnectionControl::run`], which ends as soon as the call returns to it.
    pub fn cut(&self, cut: Cut) {
        let code = match cut {
            Cut::Close => 1,
            Cut::Reset => 2,
        };
        self.cut.fetch_max(code, Ordering::AcqRel);
    }

    /// Runs the halves of one connection (joined in `directions`) until they end, a half
    /// cuts the connection, or its proxy stops; then the halves are dropped where they are.
    ///
    /// This is the one place that waits for the connection's signals: the proxy stopping and
    /// either chain of `chains` changing. Both are shared by every connection of the proxy,
    /// and polling them takes a lock they share, so they are polled only when they fired (a
    /// `Signals` waker says so), not on every wake-up of the connection. A changed chain
    /// wakes the connection, and each half takes the change on its next turn.
    pub async fn run<F: Future<Output = ()>>(&self, chains: &Chains, directions: F) {
        let signals = Arc::new(Signals::default());
        let signal_waker = Waker::from(signals.clone());
        let mut cancelled = pin!(self.token.cancelled());
        // Halves look at their chains on every turn, after this waiter is registered (the
        // first turn comes after the first poll below), so no change is missed.
        let mut changed = pin!(chains.changed());
        let mut directions = pin!(directions);
        std::future::poll_fn(|cx| {
            if signals.fired(cx) {
                let mut signal_cx = Context::from_waker(&signal_waker);
                if cancelled.as_mut().poll(&mut signal_cx).is_ready() {
                    return Poll::Ready(());
                }
                while changed.as_mut().poll(&mut signal_cx).is_ready() {
                    changed.set(chains.changed());
                }
            }
            if directions.as_mut().poll(cx).is_ready() || self.outcome().is_some() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
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

/// Records that a connection's shared signals fired, and wakes the connection's task.
#[derive(Debug)]
struct Signals {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Default for Signals {
    fn default() -> Self {
        // Fired at first, so the signals are polled (and their waiters registered) once.
        Signals {
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl Signals {
    /// Registers the task's waker and says whether a signal fired since the last call.
    fn fired(&self, cx: &Context<'_>) -> bool {
        self.task.register(cx.waker());
        self.fired.swap(false, Ordering::AcqRel)
    }
}

impl Wake for Signals {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// One direction of a connection.
pub struct Half<'a> {
    flow: Flow,
    /// The proxy's chain for this direction. A change is seen with an atomic load on every
    /// turn; what wakes the connection for it is [`ConnectionControl::run`].
    chain: watch::Receiver<Chain>,
    stats: &'a DirectionStats,
    proxy_stats: &'a ProxyStats,
    pool: &'a ReadAheadPool,
    /// Kept only while a stream in bulk goes through a toxic.
    read_buf: BytesMut,
    /// Sleeps until the next instant the flow names; created on first need, so an idle
    /// connection with no toxic holds no timer.
    timer: Option<Box<precise::Sleep>>,
    /// The last read filled what it asked for: more is probably coming.
    bulk: bool,
}

/// Why a half stopped.
enum Stop {
    /// End-of-stream was passed on to the destination.
    Finished,
    /// A toxic cut the connection.
    Cut,
}

impl<'a> Half<'a> {
    pub fn new(
        direction: Direction,
        mut chain: watch::Receiver<Chain>,
        rng: SmallRng,
        peer: Peer,
        proxy_stats: &'a ProxyStats,
    ) -> Self {
        let current = chain.borrow_and_update().clone();
        let flow = Flow::new(direction, &current, rng, peer, Instant::now());
        Half {
            flow,
            chain,
            stats: proxy_stats.direction(direction),
            proxy_stats,
            pool: &proxy_stats.read_ahead,
            read_buf: BytesMut::new(),
            timer: None,
            bulk: false,
        }
    }

    /// Moves bytes from `src` to `dst` until end-of-stream has been passed on, or the
    /// connection is cut. A failure on either side resets the whole connection. It does not
    /// watch for the connection ending otherwise: run the halves inside
    /// [`ConnectionControl::run`], which drops them when it ends.
    pub async fn run<R, W>(&mut self, src: &mut R, dst: &mut W, control: &ConnectionControl)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let result = self.pump(src, dst, control).await;
        self.release();
        match result {
            Ok(Stop::Finished) => {
                tracing::debug!(direction = %self.flow.direction(), "end of stream passed on");
            }
            Ok(Stop::Cut) => {}
            Err(error) => {
                tracing::debug!(direction = %self.flow.direction(), %error, "connection failed");
                control.cut(Cut::Reset);
            }
        }
    }

    /// Runs the direction to its end: [`Half::poll_pump`] until end-of-stream is due or a
    /// toxic cuts, then the half-close.
    async fn pump<R, W>(
        &mut self,
        src: &mut R,
        dst: &mut W,
        control: &ConnectionControl,
    ) -> io::Result<Stop>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let stop = std::future::poll_fn(|cx| self.poll_pump(cx, src, dst, control)).await?;
        if let Stop::Finished = stop {
            // Half-close: the peer sees end-of-stream, the other direction goes on.
            let _ = dst.shutdown().await;
        }
        Ok(stop)
    }

    /// Moves what it can without waiting, then registers for whatever can make progress: the
    /// destination accepting the due piece, the next instant the flow names, and the source
    /// (while the budget allows a read). A cut and a chain change are taken at the top of
    /// every turn. Each wake-up polls the sockets directly: no future is built per turn, and
    /// nothing is registered twice.
    fn poll_pump<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        dst: &mut W,
        control: &ConnectionControl,
    ) -> Poll<io::Result<Stop>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if control.outcome().is_some() {
                // Cut elsewhere in this task (the other half, or the HTTP engine dropping its
                // end): nothing more may reach either peer, not even end-of-stream.
                return Poll::Ready(Ok(Stop::Cut));
            }
            let changed = self.chain.has_changed().unwrap_or(false);
            // With no toxic and nothing held or granted, nothing depends on the time and the
            // flow has nothing to decide before the next read: skip straight to it.
            if changed || !self.flow.is_transparent() {
                let now = Instant::now();
                if changed {
                    let current = self.chain.borrow_and_update().clone();
                    self.flow.change_chain(&current, now);
                }
                match self.flow.step(now) {
                    Next::Continue => {}
                    Next::Finish => {
                        self.flush_tally();
                        return Poll::Ready(Ok(Stop::Finished));
                    }
                    Next::Cut(cut) => {
                        self.flush_tally();
                        self.count_cut(cut);
                        control.cut(cut);
                        return Poll::Ready(Ok(Stop::Cut));
                    }
                }
                self.rebalance_read_ahead(now);
                if let Written::Some = self.write_due(cx, dst, now)? {
                    // Writing may have emptied what was held: the flow has more to decide.
                    continue;
                }
                self.flush_tally();

                if let Some(at) = self.flow.next_wake(now) {
                    let timer = match &mut self.timer {
                        Some(timer) => {
                            timer.reset(at);
                            timer
                        }
                        // Created on first need: an idle connection with no toxic holds no timer.
                        None => self.timer.insert(Box::new(precise::Sleep::new(at))),
                    };
                    if Pin::new(&mut **timer).poll(cx).is_ready() {
                        continue;
                    }
                }
            }
            let allowance = self.flow.read_allowance();
            if allowance == 0 {
                return Poll::Pending;
            }
            if self.flow.held() == 0 && (!self.bulk || self.flow.passes_through()) {
                // Idle between messages, or no longer delayed: give the buffer back, so idle
                // connections cost almost nothing.
                self.read_buf = BytesMut::new();
            }
            // With nothing to change and nothing ahead of it, a read goes straight on.
            let through = self.flow.passes_through().then_some(&mut *dst);
            let read =
                match poll_read_some(cx, src, through, &mut self.read_buf, allowance, self.bulk) {
                    Poll::Ready(read) => read?,
                    Poll::Pending => return Poll::Pending,
                };
            match read {
                Read::Eof => self.flow.on_eof(Instant::now()),
                Read::Data { passed, rest, full } => {
                    let total = passed + rest.len();
                    ProxyStats::add(&self.stats.received_bytes, total as u64);
                    if passed > 0 {
                        ProxyStats::add(&self.stats.sent_bytes, passed as u64);
                    }
                    self.bulk = full;
                    if !rest.is_empty() {
                        self.flow.on_read(rest, Instant::now());
                    }
                }
            }
        }
    }

    /// Writes every piece that is due; when the destination cannot take more, `cx` is woken
    /// once it can.
    fn write_due<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
        now: Instant,
    ) -> io::Result<Written> {
        let mut wrote = false;
        while let Some(head) = self.flow.due(now) {
            match Pin::new(&mut *dst).poll_write(cx, head) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    ProxyStats::add(&self.stats.sent_bytes, n as u64);
                    self.flow.wrote(n, now);
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(Written::Blocked),
            }
        }
        Ok(if wrote { Written::Some } else { Written::All })
    }

    /// Asks the proxy's pool for the read-ahead the flow wants, or gives back what it no longer
    /// needs.
    fn rebalance_read_ahead(&mut self, now: Instant) {
        let Some(wanted) = self.flow.wanted_read_ahead(now) else {
            return;
        };
        let granted = self.flow.read_ahead();
        if wanted > granted {
            let more = self.pool.take(wanted - granted);
            self.flow.set_read_ahead(granted + more);
        } else {
            self.pool.give_back(granted - wanted);
            self.flow.set_read_ahead(wanted);
        }
    }

    /// Counts what is left in the tally and gives the read-ahead back to the proxy's pool.
    fn release(&mut self) {
        self.flush_tally();
        self.pool.give_back(self.flow.read_ahead());
        self.flow.set_read_ahead(0);
    }

    fn flush_tally(&mut self) {
        let tally = self.flow.take_tally();
        if tally.delayed_chunks > 0 {
            ProxyStats::add(&self.stats.delayed_chunks, tally.delayed_chunks);
        }
        if tally.dropped_bytes > 0 {
            ProxyStats::add(&self.stats.dropped_bytes, tally.dropped_bytes);
        }
    }

    fn count_cut(&self, cut: Cut) {
        let counter = match cut {
            Cut::Close => &self.proxy_stats.toxic_closes,
            Cut::Reset => &self.proxy_stats.toxic_resets,
        };
        ProxyStats::add(counter, 1);
    }
}

impl Drop for Half<'_> {
    /// A half dropped mid-run (its connection was cut or its proxy stopped) still counts what
    /// it did and gives its read-ahead back.
    fn drop(&mut self) {
        self.release();
    }
}

/// What writing the due pieces came to.
enum Written {
    /// A due piece waits for the destination to accept more.
    Blocked,
    /// Some pieces were written and nothing due is left.
    Some,
    /// Nothing was due.
    All,
}

/// What one read brought.
enum Read {
    Eof,
    Data {
        /// Bytes already written on to the destination.
        passed: usize,
        /// The bytes for the flow.
        rest: Bytes,
        /// The read filled what it asked for: more is probably coming.
        full: bool,
    },
}

/// Reads at most `limit` bytes. Reads land on the stack, so no connection holds a read
/// buffer, except a stream in bulk through a toxic, which reads into `buf`.
///
/// With `through` (the direction changes nothing and holds nothing), the read is written on
/// to it at once, and only what it did not take is copied out for the flow: with no toxic, a
/// connection holds memory only for what its destination has not accepted yet.
fn poll_read_some<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    src: &mut R,
    through: Option<&mut W>,
    buf: &mut BytesMut,
    limit: usize,
    bulk: bool,
) -> Poll<io::Result<Read>> {
    if bulk && through.is_none() {
        let want = limit.min(BULK_READ);
        if buf.capacity() - buf.len() < want / 4 {
            buf.reserve(want);
        }
        let mut limited = (&mut *src).take(want as u64);
        let n = ready!(poll_read_buf(Pin::new(&mut limited), cx, buf))?;
        if n == 0 {
            return Poll::Ready(Ok(Read::Eof));
        }
        return Poll::Ready(Ok(Read::Data {
            passed: 0,
            rest: buf.split().freeze(),
            full: n == want,
        }));
    }
    let want = limit.min(STACK_READ);
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
    let mut read = ReadBuf::uninit(&mut stack[..want]);
    ready!(Pin::new(&mut *src).poll_read(cx, &mut read))?;
    let filled = read.filled();
    if filled.is_empty() {
        return Poll::Ready(Ok(Read::Eof));
    }
    let passed = write_through(cx, through, filled)?;
    Poll::Ready(Ok(Read::Data {
        passed,
        rest: Bytes::copy_from_slice(&filled[passed..]),
        full: filled.len() == STACK_READ,
    }))
}

/// Writes what was just read on to `through`, if given; returns how much it took.
fn write_through<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    through: Option<&mut W>,
    data: &[u8],
) -> io::Result<usize> {
    match through.map(|dst| Pin::new(dst).poll_write(cx, data)) {
        Some(Poll::Ready(Ok(0))) => Err(io::ErrorKind::WriteZero.into()),
        Some(Poll::Ready(Ok(n))) => Ok(n),
        Some(Poll::Ready(Err(e))) => Err(e),
        // Not taken now: the flow holds it, and the write waits for the destination.
        Some(Poll::Pending) | None => Ok(0),
    }
}
