//! The accept loop of one running proxy. When the process runs out of file descriptors it
//! refuses the clients it cannot serve rather than leave them in the backlog, and backs off
//! instead of spinning ([`super::descriptors`] owns how).

use super::descriptors::{
    self, is_connection_error, is_out_of_descriptors, DescriptorShortage, Refusal, Spare,
};
use super::{Chains, ProxyStats, Seeds};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection of a running proxy shares.
#[derive(Debug)]
pub struct ListenerContext {
    pub name: Arc<str>,
    /// Fixed for the life of the listener: changing it restarts the proxy.
    pub upstream: Arc<str>,
    /// TCP or HTTP, fixed for the life of the listener as the upstream is.
    pub protocol: crate::http::Protocol,
    /// TLS to the upstream, for HTTP proxies that ask for it.
    pub upstream_tls: Option<Arc<UpstreamTls>>,
    pub chains: Arc<Chains>,
    pub stats: Arc<ProxyStats>,
    pub seeds: Arc<Seeds>,
    pub events: Arc<crate::events::EventBus>,
    /// Whether the process is out of descriptors for this proxy, so a shortage is logged
    /// once per burst, by the accept loop or by a connection that cannot dial.
    pub descriptors: DescriptorShortage,
    /// Milliseconds a dial to the upstream may take (changes apply to the next dial).
    pub connect_timeout_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// How to open TLS to the upstream.
#[derive(Debug)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// Accepts clients until `accepting` fires; each connection runs in `connections` and watches
/// `connections_token`, so cancelling that ends every connection. (No child token per
/// connection: a connection's own end is not a cancellation, and a child would cost an
/// allocation and two locks of the parent's mutex per connection.)
pub async fn run(
    listener: TcpListener,
    context: Arc<ListenerContext>,
    accepting: CancellationToken,
    connections_token: CancellationToken,
    connections: TaskTracker,
) {
    let mut spare = Spare::default();
    loop {
        let accepted = tokio::select! {
            _ = accepting.cancelled() => break,
            accepted = descriptors::accept(&listener) => accepted,
        };
        match accepted {
            Ok((client, addr)) => {
                spare.accepted();
                connections.spawn(super::connection::serve(
                    client,
                    addr,
                    context.clone(),
                    connections_token.clone(),
                ));
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) if is_out_of_descriptors(&error) => {
                let refusal = spare.refuse_pending(&listener, || {
                    context.descriptors.refused(&context.name, &error);
                    ProxyStats::add(&context.stats.refused.no_descriptors, 1);
                });
                if refusal != Refusal::NoSpare {
                    continue;
                }
                tokio::select! {
                    _ = accepting.cancelled() => break,
                    _ = tokio::time::sleep(spare.backoff()) => {}
                }
            }
            Err(error) => {
                // Out of memory or another transient failure: back off instead of spinning.
                tracing::error!(proxy = %context.name, %error, "accept failed");
                tokio::select! {
                    _ = accepting.cancelled() => break,
                    _ = tokio::time::sleep(spare.backoff()) => {}
                }
            }
        }
    }
}
