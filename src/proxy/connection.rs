//! One proxied connection: admit the client (connect-phase toxics), dial the upstream, then
//! run both directions until both have passed on end-of-stream or the connection is cut.
//!
//! On an HTTP proxy the byte pipeline's far end is an in-memory duplex, and the HTTP engine
//! runs between its other end and the upstream (TCP or TLS): client ⇄ TCP toxics ⇄ HTTP
//! engine ⇄ upstream, so TCP toxics act on the client's bytes exactly as on a TCP proxy.

use super::descriptors::{self, is_out_of_descriptors};
use super::listener::ListenerContext;
use super::pipeline::{applies, ConnectionControl, Half, Peer};
use super::stats::{ActiveGuard, ProxyStats};
use super::Direction;
use crate::events::EventData;
use crate::http::{engine, Protocol};
use crate::toxics::{Admission, Cut};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use socket2::SockRef;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// Serves one client until its connection ends or `shutdown` fires.
///
/// The future lives in the connection's task for the connection's whole life, so its size is
/// memory per connection: the setup (admission, dial, TLS) and the HTTP engine are boxed, and
/// only what a plain TCP connection needs while it runs is held inline.
pub async fn serve(
    mut client: TcpStream,
    client_addr: SocketAddr,
    context: Arc<ListenerContext>,
    shutdown: CancellationToken,
) {
    let mut rng = context.seeds.next_rng();
    let peer = Peer {
        ip: client_addr.ip(),
        draw: rng.random(),
    };
    let Some((slots, dialed)) = Box::pin(open(
        &client,
        client_addr,
        peer,
        &mut rng,
        &context,
        &shutdown,
    ))
    .await
    else {
        return;
    };
    let active = ActiveGuard::new(&context.stats);
    let _ = client.set_nodelay(true);
    tracing::debug!(proxy = %context.name, client = %client_addr, "accepted client");
    publish(&context, client_addr, "connection_opened", || None);

    let control = ConnectionControl::new(shutdown);
    let mut halves = [
        Half::new(
            Direction::Upstream,
            context.chains.subscribe(Direction::Upstream),
            SmallRng::from_rng(&mut rng),
            peer,
            &context.stats,
        ),
        Half::new(
            Direction::Downstream,
            context.chains.subscribe(Direction::Downstream),
            rng,
            peer,
            &context.stats,
        ),
    ];
    match dialed {
        Dialed::Tcp(server) => run_tcp(&context, &mut client, server, &mut halves, &control).await,
        Dialed::Http(server) => {
            let http = run_http_connection(
                &mut client,
                client_addr,
                peer,
                server,
                &mut halves,
                &control,
                &context,
            );
            Box::pin(http).await
        }
    }
    let outcome = control.outcome();
    if outcome == Some(Cut::Reset) {
        reset(&client);
    }
    let how = match outcome {
        None => "closed",
        Some(Cut::Close) => "cut",
        Some(Cut::Reset) => "reset",
    };
    // Gone before it is announced: whoever acts on the event finds the socket closed, the
    // counts settled and any `limit_connections` slot free.
    drop(halves);
    drop(client);
    drop(active);
    drop(slots);
    tracing::debug!(proxy = %context.name, client = %client_addr, how, "connection ended");
    publish(&context, client_addr, "connection_closed", || {
        Some(json!({"how": how}))
    });
}

/// Publishes a connection event; the payload is built only if someone is watching.
fn publish(
    context: &ListenerContext,
    client: SocketAddr,
    kind: &'static str,
    detail: impl FnOnce() -> Option<serde_json::Value>,
) {
    if !context.events.is_watched() {
        return;
    }
    context.events.publish(
        kind,
        EventData {
            proxy: Some(&context.name),
            client: Some(client.to_string()),
            detail: detail(),
            ..EventData::default()
        },
    )
}

/// Admits the client (connect-phase toxics) and dials the upstream (and TLS, if asked).
/// Returns the slots the connection holds for its life and the dialed upstream, or `None`
/// when the client was refused or the dial failed (both dealt with, counted and published).
async fn open(
    client: &TcpStream,
    client_addr: SocketAddr,
    peer: Peer,
    rng: &mut SmallRng,
    context: &ListenerContext,
    shutdown: &CancellationToken,
) -> Option<(Vec<OwnedSemaphorePermit>, Dialed)> {
    let stats = &context.stats;
    let slots = match admit(client, peer, rng, context, shutdown).await {
        Ok(slots) => slots,
        Err(refusal) => {
            publish(context, client_addr, "connection_refused", || {
                Some(json!({"by": refusal}))
            });
            return None;
        }
    };

    let timeout = Duration::from_millis(context.connect_timeout_ms.load(Relaxed));
    let dialed = tokio::select! {
        _ = shutdown.cancelled() => return None,
        dialed = tokio::time::timeout(timeout, descriptors::dial(&context.upstream)) => dialed,
    };
    let failure = match dialed {
        Ok(Ok(server)) => Ok(server),
        Ok(Err(error)) if is_out_of_descriptors(&error) => {
            // Not the upstream's fault: this client is refused like one the listener could
            // not accept, and the shortage is logged once for the burst.
            context.descriptors.refused(&context.name, &error);
            ProxyStats::add(&stats.refused.no_descriptors, 1);
            reset(client);
            publish(context, client_addr, "connection_refused", || {
                Some(json!({"by": "no_descriptors"}))
            });
            return None;
        }
        Ok(Err(error)) => Err((connect_failure(&error), error.to_string())),
        Err(_) => Err((
            "timeout",
            format!("no answer within {} ms", timeout.as_millis()),
        )),
    };
    let upstream_error = |reason: &'static str, error: &str| {
        // As Toxiproxy: the client is closed at once and the proxy keeps running.
        ProxyStats::add(&stats.connect_errors, 1);
        ProxyStats::add(stats.connect_failures.by(reason), 1);
        tracing::warn!(proxy = %context.name, client = %client_addr,
            upstream = %context.upstream, reason, %error,
            "unable to open connection to upstream");
        publish(context, client_addr, "upstream_error", || {
            Some(json!({"reason": reason, "error": error}))
        });
    };
    let server = match failure {
        Ok(server) => server,
        Err((reason, error)) => {
            upstream_error(reason, &error);
            return None;
        }
    };
    let _ = server.set_nodelay(true);
    let dialed = match (context.protocol, &context.upstream_tls) {
        (Protocol::Tcp, _) => Dialed::Tcp(server),
        (Protocol::Http, None) => Dialed::Http(Upstream::Plain(server)),
        (Protocol::Http, Some(tls)) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let handshake = tokio::select! {
                _ = shutdown.cancelled() => return None,
                handshake = connector.connect(tls.name.clone(), server) => handshake,
            };
            match handshake {
                Ok(stream) => Dialed::Http(Upstream::Tls(Box::new(stream))),
                Err(error) => {
                    upstream_error("tls", &format!("TLS: {error}"));
                    return None;
                }
            }
        }
    };
    context.descriptors.recovered(&context.name);
    Some((slots, dialed))
}

/// Runs both directions of a TCP connection until both have ended or it is cut.
async fn run_tcp(
    context: &ListenerContext,
    client: &mut TcpStream,
    mut server: TcpStream,
    [upstream, downstream]: &mut [Half<'_>; 2],
    control: &ConnectionControl,
) {
    {
        let (mut client_reader, mut client_writer) = client.split();
        let (mut server_reader, mut server_writer) = server.split();
        // Pinned in place: moved into `run`, the joined halves would take their room twice.
        let directions = std::pin::pin!(async {
            tokio::join!(
                upstream.run(&mut client_reader, &mut server_writer, control),
                downstream.run(&mut server_reader, &mut client_writer, control),
            );
        });
        control.run(&context.chains, directions).await;
    }
    if control.outcome() == Some(Cut::Reset) {
        reset(&server);
    }
}

/// Runs an HTTP connection: client ⇄ TCP toxics ⇄ HTTP engine ⇄ upstream.
async fn run_http_connection(
    client: &mut TcpStream,
    client_addr: SocketAddr,
    peer: Peer,
    server: Upstream,
    [upstream, downstream]: &mut [Half<'_>; 2],
    control: &ConnectionControl,
    context: &ListenerContext,
) {
    let (mut client_reader, mut client_writer) = client.split();
    let (near, far) = tokio::io::duplex(HTTP_BUFFER);
    let (mut near_reader, mut near_writer) = tokio::io::split(near);
    let report = |request: &crate::http::parse::Request, plan: &crate::http::rules::Plan| {
        report_fault(context, client_addr, request, plan)
    };
    let engine_context = engine::Context {
        chains: engine::chains_of(&context.chains),
        peer,
        seeds: &context.seeds,
        report: &report,
    };
    // Pinned in place: moved into `run`, the joined halves would take their room twice.
    let directions = std::pin::pin!(async {
        tokio::join!(
            upstream.run(&mut client_reader, &mut near_writer, control),
            downstream.run(&mut near_reader, &mut client_writer, control),
            run_http(far, server, engine_context, control, context),
        );
    });
    control.run(&context.chains, directions).await;
}

/// Applies the connect-phase toxics that select this connection. Returns the slots it holds
/// for its life, or what kept it out (the client has been dealt with then).
///
/// A client waiting for a `limit_connections` slot is never stranded: when either chain
/// changes (the toxic is updated or removed), admission starts over against the new chain, and
/// when the proxy stops, the wait ends.
async fn admit(
    client: &TcpStream,
    peer: Peer,
    rng: &mut SmallRng,
    context: &ListenerContext,
    shutdown: &CancellationToken,
) -> Result<Vec<OwnedSemaphorePermit>, &'static str> {
    let mut upstream = context.chains.subscribe(Direction::Upstream);
    let mut downstream = context.chains.subscribe(Direction::Downstream);
    let refused = |reason: &'static str| {
        if let Some(counter) = context.stats.refused.by(reason) {
            ProxyStats::add(counter, 1);
        }
        reason
    };
    'admission: loop {
        let chains = [
            upstream.borrow_and_update().clone(),
            downstream.borrow_and_update().clone(),
        ];
        let mut slots = Vec::new();
        let mut delay = Duration::ZERO;
        for stage in chains.iter().flat_map(|chain| chain.iter()) {
            let admission = stage.spec.admission();
            if matches!(admission, Admission::Proceed) || !applies(stage, peer, rng) {
                continue;
            }
            match admission {
                Admission::Proceed => {}
                Admission::Delay(d) => delay = delay.max(d),
                Admission::Refuse => {
                    reset(client);
                    return Err(refused("refuse"));
                }
                Admission::Blackhole => {
                    refused("blackhole");
                    // Boxed: its read buffer would otherwise make every connection's setup 4 KiB
                    // larger.
                    Box::pin(swallow(client, shutdown)).await;
                    return Err("blackhole");
                }
                Admission::Slot { pool, wait } => match pool.clone().try_acquire_owned() {
                    Ok(permit) => slots.push(permit),
                    Err(_) if wait => {
                        let permit = tokio::select! {
                            _ = shutdown.cancelled() => return Err("shutdown"),
                            Ok(()) = upstream.changed() => continue 'admission,
                            Ok(()) = downstream.changed() => continue 'admission,
                            permit = pool.acquire_owned() => permit,
                        };
                        match permit {
                            Ok(permit) => slots.push(permit),
                            Err(_) => return Err(refused("limit_connections")),
                        }
                    }
                    Err(_) => {
                        reset(client);
                        return Err(refused("limit_connections"));
                    }
                },
            }
        }
        if !delay.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => return Err("shutdown"),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        return Ok(slots);
    }
}

/// How a dial failed, as metrics and events name it.
fn connect_failure(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => "refused",
        TimedOut => "timeout",
        ConnectionReset | ConnectionAborted => "reset",
        _ => "other",
    }
}

/// Bytes in flight between the TCP pipeline and the HTTP engine of one connection.
const HTTP_BUFFER: usize = 64 * 1024;

/// The dialed upstream: bytes only, or the upstream of an HTTP engine.
enum Dialed {
    Tcp(TcpStream),
    Http(Upstream),
}

/// The upstream of an HTTP proxy's engine.
enum Upstream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Runs the HTTP engine until the exchange ends, and ends the connection as it says: a clean
/// end lets the pipeline deliver what it holds and pass the close on; a reset cuts at once.
async fn run_http(
    pipeline_end: tokio::io::DuplexStream,
    upstream: Upstream,
    engine_context: engine::Context<'_>,
    control: &ConnectionControl,
    context: &ListenerContext,
) {
    // The connection's `ConnectionControl::run` ends this when the connection is cut.
    let outcome = match upstream {
        Upstream::Plain(stream) => engine::run(pipeline_end, stream, engine_context).await,
        Upstream::Tls(stream) => engine::run(pipeline_end, stream, engine_context).await,
    };
    tracing::debug!(proxy = %context.name, ?outcome, "HTTP exchange ended");
    match outcome {
        engine::Outcome::Closed => {}
        engine::Outcome::Cut(cut) => {
            let counter = match cut {
                Cut::Close => &context.stats.toxic_closes,
                Cut::Reset => &context.stats.toxic_resets,
            };
            ProxyStats::add(counter, 1);
            if cut == Cut::Reset {
                control.cut(Cut::Reset);
            }
        }
        engine::Outcome::Failed => control.cut(Cut::Reset),
    }
}

/// Counts a request the HTTP toxics faulted, and publishes one event for it.
fn report_fault(
    context: &ListenerContext,
    client: SocketAddr,
    request: &crate::http::parse::Request,
    plan: &crate::http::rules::Plan,
) {
    for applied in &plan.applied {
        context.stats.count_http_fault(&applied.toxic, applied.kind);
    }
    if !context.events.is_watched() {
        // Nobody reads events: skip building one per faulted request.
        return;
    }
    let toxics: Vec<_> = plan
        .applied
        .iter()
        .map(|a| json!({"name": &*a.toxic, "type": a.kind}))
        .collect();
    context.events.publish(
        "http_request_faulted",
        EventData {
            proxy: Some(&context.name),
            toxic: plan.applied.first().map(|a| &*a.toxic),
            client: Some(client.to_string()),
            detail: Some(json!({
                "method": request.method,
                "path": request.path(),
                "toxics": toxics,
                "status": plan.answer.as_ref().map(|a| a.status),
            })),
        },
    );
}

/// Makes closing `socket` send a reset (SO_LINGER 0) instead of a normal close.
fn reset(socket: &TcpStream) {
    let _ = SockRef::from(socket).set_linger(Some(Duration::ZERO));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Chains, Seeds};

    fn context() -> Arc<ListenerContext> {
        Arc::new(ListenerContext {
            name: Arc::from("size"),
            upstream: Arc::from("127.0.0.1:1"),
            protocol: Protocol::Tcp,
            upstream_tls: None,
            chains: Arc::new(Chains::default()),
            stats: Arc::new(ProxyStats::default()),
            seeds: Arc::new(Seeds::new(Some(1), "size")),
            events: Arc::new(crate::events::EventBus::default()),
            descriptors: Default::default(),
            connect_timeout_ms: Arc::new(1000.into()),
        })
    }

    /// An idle TCP connection's task holds the future of `serve` for the connection's whole
    /// life, so its size is memory per connection (the benchmark's idle-RSS row measures the
    /// rest): the setup and the HTTP engine are boxed, and what is left stays small.
    #[tokio::test]
    async fn an_idle_tcp_connection_holds_a_small_future() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let future = serve(client, addr, context(), CancellationToken::new());
        let size = std::mem::size_of_val(&future);

        // 6,216 bytes before the setup, the HTTP engine and the chain scratch were boxed;
        // 2,192 after.
        assert!(size <= 2560, "the connection future takes {size} bytes");
    }
}
