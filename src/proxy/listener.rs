//! The accept loop of one running proxy.

use super::{Chains, ProxyStats, Seeds};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection of a running proxy shares.
#[derive(Debug)]
pub struct ListenerContext {
    pub name: Arc<str>,
    /// Fixed for the life of the listener: changing it restarts the proxy.
    pub upstream: Arc<str>,
    pub chains: Arc<Chains>,
    pub stats: Arc<ProxyStats>,
    pub seeds: Arc<Seeds>,
    pub events: Arc<crate::events::EventBus>,
}

/// Accepts clients until `shutdown` fires; each connection runs in `connections` with a child
/// token, so cancelling the proxy ends every connection and closes the listener.
pub async fn run(
    listener: TcpListener,
    context: Arc<ListenerContext>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, addr)) => {
                connections.spawn(super::connection::serve(
                    client,
                    addr,
                    context.clone(),
                    shutdown.child_token(),
                ));
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                // Out of file descriptors or memory: back off instead of spinning.
                tracing::error!(proxy = %context.name, %error, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// Errors that concern one client only, after which accepting goes on at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
