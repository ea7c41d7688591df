//! What the data plane does when the process runs out of file descriptors: clients it cannot
//! serve are refused at once (reset) instead of being left in the listen backlog, a shortage
//! is logged once when it starts and once when it ends, and accepting resumes as soon as a
//! descriptor is free.
//!
//! Refusing a pending client takes a descriptor too, so each accept loop keeps one in reserve
//! (a [`Spare`], an open `/dev/null`). Giving the spare back frees exactly one slot, and the
//! kernel hands the lowest free slot to whichever thread asks next. Were that a connection of
//! the other worker dialing its upstream, the pending client would get nothing and the spare
//! could not be reopened: the client would hang until some other connection closed. So every
//! descriptor the data plane allocates (accepting, dialing) is taken under `ALLOCATION`
//! shared, and the refusal holds it exclusively from giving the spare back to reopening it.

use socket2::SockRef;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

/// Held shared while the data plane allocates a descriptor, exclusively while a spare is
/// traded for a pending client; never held across an `.await`.
static ALLOCATION: RwLock<()> = RwLock::new(());

pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    ALLOCATION.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn exclusive() -> RwLockWriteGuard<'static, ()> {
    ALLOCATION.write().unwrap_or_else(|e| e.into_inner())
}

/// EMFILE (the process's limit) or ENFILE (the system's); the same numbers on Linux and the BSDs.
pub(crate) fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// Errors that concern one client only, after which accepting goes on at once.
pub(crate) fn is_connection_error(error: &io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One poll of `listener`, for a client already queued: `None` when nobody is (which also
/// clears tokio's readiness, so the next `accept` waits for a client instead of failing again
/// at once).
pub(crate) fn accept_queued(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match listener.poll_accept(&mut cx) {
        Poll::Ready(accepted) => Some(accepted),
        Poll::Pending => None,
    }
}

/// Accepts the next client of `listener`, taking its descriptor under `ALLOCATION`.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    poll_fn(|cx| {
        let _shared = shared();
        listener.poll_accept(cx)
    })
    .await
}

/// Connects to `upstream` (`host:port`), trying each address it resolves to in turn, as
/// `TcpStream::connect` does, but creating each socket under `ALLOCATION`.
pub async fn dial(upstream: &str) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(upstream).await? {
        let socket = {
            let _shared = shared();
            if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
        }?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{upstream} resolves to no address"),
        )
    }))
}

/// What trading the spare for a pending client came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A pending client was accepted and reset.
    Refused,
    /// Nobody was waiting: the failed accept came before any client (the kernel reserves the
    /// descriptor before it looks at the queue). Accepting can wait for the next client.
    NonePending,
    /// No spare was at hand, or something outside the data plane took the freed slot: the
    /// accept loop backs off and tries again.
    NoSpare,
}

/// The pause after an accept failure that refusing could not clear; doubled on each
/// consecutive one up to [`MAX_BACKOFF`], so a lasting shortage costs almost no CPU and a
/// short one is over quickly.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// The pauses of an accept loop between failures it cannot clear.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(MIN_BACKOFF)
    }
}

impl Backoff {
    /// How long to pause now; longer each consecutive time.
    pub fn pause(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        pause
    }

    /// Something succeeded: the next pause is the shortest again.
    pub fn reset(&mut self) {
        self.0 = MIN_BACKOFF;
    }
}

/// The accept loop's descriptor in reserve, and its backoff while no spare can be had.
#[derive(Debug)]
pub struct Spare {
    file: Option<std::fs::File>,
    backoff: Backoff,
}

impl Default for Spare {
    fn default() -> Self {
        Spare {
            file: open_spare(),
            backoff: Backoff::default(),
        }
    }
}

impl Spare {
    /// Gives the spare back to accept one pending client of `listener` and reset it, then
    /// takes the spare again. `on_refused` runs before the client sees its reset, so whatever
    /// it counts is visible to anyone the reset prompts to look.
    pub fn refuse_pending(&mut self, listener: &TcpListener, on_refused: impl FnOnce()) -> Refusal {
        let _exclusive = exclusive();
        if self.file.take().is_none() {
            self.file = open_spare();
            return Refusal::NoSpare;
        }
        let refusal = match accept_queued(listener) {
            Some(Ok((client, _))) => {
                on_refused();
                let _ = SockRef::from(&client).set_linger(Some(Duration::ZERO));
                drop(client);
                Refusal::Refused
            }
            Some(Err(_)) => Refusal::NoSpare,
            None => Refusal::NonePending,
        };
        self.file = open_spare();
        if refusal != Refusal::NoSpare {
            self.backoff.reset();
        }
        refusal
    }

    /// How long to pause before the next attempt; longer each consecutive time.
    pub fn backoff(&mut self) -> Duration {
        self.backoff.pause()
    }

    /// A client was accepted: the backoff starts over, and a spare lost earlier is retaken.
    pub fn accepted(&mut self) {
        self.backoff.reset();
        if self.file.is_none() {
            let _shared = shared();
            self.file = open_spare();
        }
    }
}

pub(crate) fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// A run of "out of file descriptors" refusals of one proxy, logged when it starts and when
/// it ends.
#[derive(Debug, Default)]
pub struct DescriptorShortage {
    /// When the current shortage began and how many clients it has refused; `None` while
    /// descriptors are available.
    since: std::sync::Mutex<Option<(Instant, u64)>>,
}

impl DescriptorShortage {
    /// A client was turned away for lack of a descriptor; only the first of a burst logs.
    pub fn refused(&self, proxy: &str, error: &io::Error) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        match since.as_mut() {
            Some((_, refused)) => *refused += 1,
            None => {
                tracing::error!(%proxy, %error,
                    "out of file descriptors: refusing new clients until some are free");
                *since = Some((Instant::now(), 1));
            }
        }
    }

    /// A client got through (accepted and dialed): a shortage, if any, is over.
    pub fn recovered(&self, proxy: &str) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((began, refused)) = since.take() {
            tracing::warn!(%proxy, refused, lasted_ms = began.elapsed().as_millis() as u64,
                "file descriptors available again: accepting clients");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With nobody queued, trading the spare finds no client, keeps the spare, and says so.
    #[tokio::test]
    async fn refusing_with_an_empty_backlog_keeps_the_spare() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut spare = Spare::default();
        let mut called = false;
        let refusal = spare.refuse_pending(&listener, || called = true);
        assert_eq!(refusal, Refusal::NonePending);
        assert!(!called);
        assert!(spare.file.is_some());
    }

    /// A queued client is accepted and reset, and the count runs before it sees the reset.
    #[tokio::test]
    async fn a_queued_client_is_reset() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut spare = Spare::default();
        let mut refused = 0;
        let refusal = loop {
            // The handshake may complete a moment after connect returns.
            match spare.refuse_pending(&listener, || refused += 1) {
                Refusal::NonePending => tokio::task::yield_now().await,
                other => break other,
            }
        };
        assert_eq!(refusal, Refusal::Refused);
        assert_eq!(refused, 1);
        let mut byte = [0u8; 1];
        let read = client.read(&mut byte).await;
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
        assert!(spare.file.is_some());
    }

    /// Without a spare the trade is refused, and the backoff grows to its cap.
    #[tokio::test]
    async fn no_spare_backs_off_up_to_the_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut spare = Spare {
            file: None,
            backoff: Backoff::default(),
        };
        assert_eq!(spare.refuse_pending(&listener, || {}), Refusal::NoSpare);
        let pauses: Vec<_> = (0..8).map(|_| spare.backoff()).collect();
        assert_eq!(pauses[0], MIN_BACKOFF);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*pauses.last().unwrap(), MAX_BACKOFF);
        spare.accepted();
        assert_eq!(spare.backoff(), MIN_BACKOFF);
    }

    /// Dialing tries the upstream's addresses and reports a refusal as the OS names it.
    #[tokio::test]
    async fn dial_connects_and_reports_refusals() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(dial(&addr).await.is_ok());
        drop(listener);
        let error = dial(&addr).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }
}
