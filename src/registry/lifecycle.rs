//! Starting and stopping a proxy's listener: binding its address, spawning its accept loop on
//! the data-plane runtime, and closing it with all of its connections.
//!
//! Stopping is split in two so the registry lock is never held across a drain: [`halt`] (under
//! the lock) closes the listener, so the port is free at once, and tells connections to end;
//! [`Stopping::drained`] (after the lock is released) waits until they have.

use super::model::{NewProxy, Proxy};
use super::Error;
use crate::net;
use crate::proxy::listener::{self, ListenerContext};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long stopping a proxy waits for its connections to end once they are told to, so an
/// API call never hangs on a stuck socket.
pub(super) const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The live handles of an enabled proxy.
pub(super) struct Running {
    /// Ends the accept loop (the listener closes; connections go on).
    accepting: CancellationToken,
    /// Ends every connection (the parent of each connection's token).
    connections_token: CancellationToken,
    connections: TaskTracker,
    accept: JoinHandle<()>,
}

/// Binds `addr` and starts accepting there.
pub(super) fn start(proxy: &mut Proxy, addr: SocketAddr) -> Result<(), Error> {
    let listener = net::bind(addr).map_err(Error::Listen)?;
    start_with(proxy, listener)
}

/// Starts again where the proxy listened before (its stored, already resolved address).
pub(super) fn restart(proxy: &mut Proxy) -> Result<(), Error> {
    let addr = proxy
        .listen
        .parse()
        .map_err(|_| Error::Listen(format!("listen tcp: address {}: invalid", proxy.listen)))?;
    start(proxy, addr)
}

pub(super) fn start_with(proxy: &mut Proxy, listener: std::net::TcpListener) -> Result<(), Error> {
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Listen(e.to_string()))?;
    // Listeners and connections live on the data-plane runtime, whichever thread asks.
    let _runtime = proxy.runtime.enter();
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Listen(e.to_string()))?;
    let upstream_tls = proxy.tls.for_proxy(&proxy.http, &proxy.upstream)?;
    proxy.listen = net::go_format(bound);
    let context = Arc::new(ListenerContext {
        name: Arc::from(proxy.name.as_str()),
        upstream: Arc::from(proxy.upstream.as_str()),
        protocol: proxy.http.protocol,
        upstream_tls,
        chains: proxy.chains.clone(),
        stats: proxy.stats.clone(),
        seeds: proxy.seeds.clone(),
        events: proxy.events.clone(),
        descriptors: Default::default(),
        connect_timeout_ms: proxy.connect_timeout_ms.clone(),
    });
    let accepting = CancellationToken::new();
    let connections_token = CancellationToken::new();
    let connections = TaskTracker::new();
    let accept = proxy.runtime.spawn(listener::run(
        listener,
        context,
        accepting.clone(),
        connections_token.clone(),
        connections.clone(),
    ));
    tracing::info!(name = %proxy.name, listen = %proxy.listen, upstream = %proxy.upstream,
        "started proxy");
    proxy.running = Some(Running {
        accepting,
        connections_token,
        connections,
        accept,
    });
    Ok(())
}

/// A proxy whose listener is closing; its connections may still be finishing.
#[must_use = "a stopping proxy should be drained"]
pub(super) struct Stopping {
    name: String,
    connections_token: CancellationToken,
    connections: TaskTracker,
}

/// Closes the listener (the port is free when this returns) and tells every connection to
/// end. Quick: the accept loop ends at once. Call it under the registry lock; drain after.
pub(super) async fn halt(proxy: &mut Proxy) -> Option<Stopping> {
    let stopping = stop_accepting(proxy).await?;
    stopping.connections_token.cancel();
    Some(stopping)
}

/// Closes the listener only; connections go on until [`Stopping::drained`] or
/// [`Stopping::finish_within`] ends them.
pub(super) async fn stop_accepting(proxy: &mut Proxy) -> Option<Stopping> {
    let running = proxy.running.take()?;
    running.accepting.cancel();
    running.connections.close();
    let _ = running.accept.await;
    tracing::info!(name = %proxy.name, listen = %proxy.listen, "stopped proxy");
    Some(Stopping {
        name: proxy.name.clone(),
        connections_token: running.connections_token,
        connections: running.connections,
    })
}

impl Stopping {
    /// Ends every connection and waits until they are gone (at most [`DRAIN_LIMIT`]).
    pub(super) async fn drained(self) {
        self.finish_within(Duration::ZERO).await;
    }

    /// Lets connections finish on their own for up to `grace`, then ends the rest and waits
    /// until they are gone (at most [`DRAIN_LIMIT`] more).
    pub(super) async fn finish_within(self, grace: Duration) {
        if !grace.is_zero()
            && tokio::time::timeout(grace, self.connections.wait())
                .await
                .is_err()
        {
            tracing::info!(name = %self.name, open = self.connections.len(),
                "closing the connections still open after the drain timeout");
        }
        self.connections_token.cancel();
        if tokio::time::timeout(DRAIN_LIMIT, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(name = %self.name, open = self.connections.len(),
                "connections did not end in time");
        }
    }
}

impl Proxy {
    /// Keeps a connection slot busy until `release` fires, as a connection slow to close does.
    #[cfg(test)]
    pub(super) fn spawn_slow_connection(&self, release: tokio::sync::oneshot::Receiver<()>) {
        if let Some(running) = &self.running {
            running.connections.spawn(async move {
                let _ = release.await;
            });
        }
    }

    /// Whether the proxy already listens where `wanted` asks (or, disabled, would).
    pub(super) fn listens_at(&self, wanted: SocketAddr) -> bool {
        match self.listen.parse::<SocketAddr>() {
            Ok(bound) if self.running.is_some() => net::same_listen(bound, wanted),
            Ok(stored) => stored == wanted,
            Err(_) => false,
        }
    }

    /// Whether `/populate` may keep this proxy as it is for `new`, whose listen address
    /// resolves to `wanted`.
    pub(super) fn matches(
        &self,
        new: &NewProxy,
        wanted: Result<SocketAddr, String>,
    ) -> Result<bool, Error> {
        if self.upstream != new.upstream || self.http != new.http {
            return Ok(false);
        }
        if self.running.is_none() {
            return Ok(self.listen == new.listen);
        }
        Ok(self.listens_at(wanted.map_err(Error::Listen)?))
    }
}
