//! One proxied connection: admit the client (connect-phase toxics), dial the upstream, then
//! run both directions until both have passed on end-of-stream or the connection is cut.

use super::listener::ListenerContext;
use super::pipeline::{applies, ConnectionControl, Half, Peer};
use super::stats::{ActiveGuard, ProxyStats};
use super::Direction;
use crate::events::EventData;
use crate::toxics::{Admission, Cut};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use socket2::SockRef;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// Serves one client until its connection ends or `shutdown` fires.
pub async fn serve(
    mut client: TcpStream,
    client_addr: SocketAddr,
    context: Arc<ListenerContext>,
    shutdown: CancellationToken,
) {
    let stats = &context.stats;
    let mut rng = context.seeds.next_rng();
    let peer = Peer {
        ip: client_addr.ip(),
        draw: rng.random(),
    };
    let event = |kind, detail| {
        context.events.publish(
            kind,
            EventData {
                proxy: Some(&context.name),
                client: Some(client_addr.to_string()),
                detail,
                ..EventData::default()
            },
        )
    };

    let _slots = match admit(&client, peer, &mut rng, &context, &shutdown).await {
        Ok(slots) => slots,
        Err(refusal) => {
            event("connection_refused", Some(json!({"by": refusal})));
            return;
        }
    };

    let server = tokio::select! {
        _ = shutdown.cancelled() => return,
        dialed = TcpStream::connect(&*context.upstream) => dialed,
    };
    let mut server = match server {
        Ok(server) => server,
        Err(error) => {
            // As Toxiproxy: the client is closed at once and the proxy keeps running.
            ProxyStats::add(&stats.connect_errors, 1);
            tracing::warn!(proxy = %context.name, client = %client_addr,
                upstream = %context.upstream, %error, "unable to open connection to upstream");
            event("upstream_error", Some(json!({"error": error.to_string()})));
            return;
        }
    };
    let _active = ActiveGuard::new(stats);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tracing::debug!(proxy = %context.name, client = %client_addr, "accepted client");
    event("connection_opened", None);

    let control = ConnectionControl::new(shutdown);
    let mut upstream = Half::new(
        Direction::Upstream,
        context.chains.subscribe(Direction::Upstream),
        SmallRng::from_rng(&mut rng),
        peer,
        stats,
    );
    let mut downstream = Half::new(
        Direction::Downstream,
        context.chains.subscribe(Direction::Downstream),
        rng,
        peer,
        stats,
    );
    let (mut client_reader, client_writer) = client.split();
    let (mut server_reader, server_writer) = server.split();
    tokio::join!(
        upstream.run(&mut client_reader, server_writer.as_ref(), &control),
        downstream.run(&mut server_reader, client_writer.as_ref(), &control),
    );
    let outcome = control.outcome();
    if outcome == Some(Cut::Reset) {
        for socket in [&client, &server] {
            let _ = SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }
    let how = match outcome {
        None => "closed",
        Some(Cut::Close) => "cut",
        Some(Cut::Reset) => "reset",
    };
    tracing::debug!(proxy = %context.name, client = %client_addr, how, "connection ended");
    event("connection_closed", Some(json!({"how": how})));
}

/// Applies the connect-phase toxics that select this connection. Returns the slots it holds
/// for its life, or which toxic kept it out (the client has been dealt with then).
async fn admit(
    client: &TcpStream,
    peer: Peer,
    rng: &mut SmallRng,
    context: &ListenerContext,
    shutdown: &CancellationToken,
) -> Result<Vec<OwnedSemaphorePermit>, &'static str> {
    let mut slots = Vec::new();
    let mut delay = Duration::ZERO;
    for direction in Direction::BOTH {
        let chain = context.chains.subscribe(direction).borrow().clone();
        for stage in chain.iter() {
            let admission = stage.spec.admission();
            if matches!(admission, Admission::Proceed) || !applies(stage, peer, rng) {
                continue;
            }
            match admission {
                Admission::Proceed => {}
                Admission::Delay(d) => delay = delay.max(d),
                Admission::Refuse => {
                    reset(client);
                    return Err("refuse");
                }
                Admission::Blackhole => {
                    swallow(client, shutdown).await;
                    return Err("blackhole");
                }
                Admission::Slot { pool, wait } => match pool.clone().try_acquire_owned() {
                    Ok(permit) => slots.push(permit),
                    Err(_) if wait => {
                        let permit = tokio::select! {
                            _ = shutdown.cancelled() => return Err("limit_connections"),
                            permit = pool.acquire_owned() => permit,
                        };
                        match permit {
                            Ok(permit) => slots.push(permit),
                            Err(_) => return Err("limit_connections"),
                        }
                    }
                    Err(_) => {
                        reset(client);
                        return Err("limit_connections");
                    }
                },
            }
        }
    }
    if !delay.is_zero() {
        tokio::select! {
            _ = shutdown.cancelled() => return Err("shutdown"),
            _ = tokio::time::sleep(delay) => {}
        }
    }
    Ok(slots)
}

fn reset(client: &TcpStream) {
    let _ = SockRef::from(client).set_linger(Some(Duration::ZERO));
}

/// Reads and discards what a blackholed client sends until it gives up or the proxy stops.
async fn swallow(client: &TcpStream, shutdown: &CancellationToken) {
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ready = client.readable() => {
                if ready.is_err() {
                    return;
                }
                match client.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
        }
    }
}
