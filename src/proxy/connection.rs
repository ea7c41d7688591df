//! One proxied connection: dial the upstream for an accepted client, then run both directions
//! until both have passed on end-of-stream or the connection is cut.

use super::listener::ListenerContext;
use super::pipeline::{ConnectionControl, Half, Peer};
use super::stats::ActiveGuard;
use super::Direction;
use crate::toxics::Cut;
use rand::Rng;
use socket2::SockRef;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Serves one client until its connection ends or `shutdown` fires.
pub async fn serve(
    client: TcpStream,
    client_addr: SocketAddr,
    context: Arc<ListenerContext>,
    shutdown: CancellationToken,
) {
    let stats = &context.stats;
    let server = tokio::select! {
        _ = shutdown.cancelled() => return,
        dialed = TcpStream::connect(&*context.upstream) => dialed,
    };
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            // As Toxiproxy: the client is closed at once and the proxy keeps running.
            crate::proxy::stats::ProxyStats::add(&stats.connect_errors, 1);
            tracing::warn!(proxy = %context.name, client = %client_addr,
                upstream = %context.upstream, %error, "unable to open connection to upstream");
            return;
        }
    };
    let _active = ActiveGuard::new(stats);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tracing::debug!(proxy = %context.name, client = %client_addr, "accepted client");

    let mut rng = context.seeds.next_rng();
    let peer = Peer {
        ip: client_addr.ip(),
        draw: rng.random(),
    };
    let control = ConnectionControl::new(shutdown);
    let mut upstream = Half::new(
        Direction::Upstream,
        context.chains.subscribe(Direction::Upstream),
        rng.clone(),
        peer,
        stats,
    );
    let mut downstream = Half::new(
        Direction::Downstream,
        context.chains.subscribe(Direction::Downstream),
        {
            let _ = rng.random::<u64>();
            rng
        },
        peer,
        stats,
    );
    tokio::join!(
        upstream.run(&client, &server, &control),
        downstream.run(&server, &client, &control),
    );
    if control.outcome() == Some(Cut::Reset) {
        for socket in [&client, &server] {
            let _ = SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }
    tracing::debug!(proxy = %context.name, client = %client_addr, outcome = ?control.outcome(),
        "connection closed");
}
