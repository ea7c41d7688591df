//! Running the API server: on an already bound listener, until a shutdown token fires, then
//! closing every proxy. Tests and the embedded client bind `127.0.0.1:0` and pass it in.

use crate::api::{self, AppState};
use crate::registry::Registry;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves the API on `listener` until `shutdown` fires; then stops every proxy.
///
/// The API gets a thread and a small runtime of its own: a data plane busy with thousands of
/// connections (each woken when its toxics change) must never delay the API call that
/// changes them. Proxies keep running on the caller's runtime.
pub async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = listener.into_std()?;
    let app = api::router(AppState {
        registry: registry.clone(),
        shutdown: shutdown.clone(),
    });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
    std::thread::Builder::new()
        .name("faultline-api".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener)?;
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await
                    })
                });
            let _ = done_tx.send(result);
        })?;
    let result = done_rx
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the API thread stopped unexpectedly")));
    registry.shutdown().await;
    result
}

/// A server running in the background of the current runtime (tests, embedding).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// Starts a server on `listener` with a fresh registry.
    pub fn spawn(listener: TcpListener, registry: Arc<Registry>) -> io::Result<ServerHandle> {
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(listener, registry.clone(), shutdown.clone()));
        Ok(ServerHandle {
            addr,
            registry,
            shutdown,
            task: Some(task),
        })
    }

    /// Binds `127.0.0.1:0` and starts a server there.
    pub async fn start_local(registry: Arc<Registry>) -> io::Result<ServerHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::spawn(listener, registry)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops the API and every proxy, and waits until they are gone.
    pub async fn stop(mut self) -> io::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
