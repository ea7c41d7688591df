//! Running the API server: on an already bound listener, until a shutdown token fires, then
//! closing every proxy. Tests and the embedded client bind `127.0.0.1:0` and pass it in.

use crate::api::{self, ApiOptions, AppState};
use crate::registry::Registry;
use axum::serve::ListenerExt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves the API on `listener` until `shutdown` fires; then closes every proxy and its
/// connections at once.
pub async fn run(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    run_with(listener, registry, shutdown, ApiOptions::default()).await
}

/// [`run`], with the API's security and validation settings.
pub async fn run_with(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    options: ApiOptions,
) -> io::Result<()> {
    run_draining(listener, registry, shutdown, options, Duration::ZERO).await
}

/// Serves the API on `listener` until `shutdown` fires; then stops accepting clients, lets
/// open connections finish for up to `drain_timeout`, closes the rest, and returns once every
/// proxy task has ended.
///
/// The API gets a thread and a small runtime of its own: a data plane busy with thousands of
/// connections (each woken when its toxics change) must never delay the API call that
/// changes them. Proxies keep running on the caller's runtime.
pub async fn run_draining(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    options: ApiOptions,
    drain_timeout: Duration,
) -> io::Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let listener = listener.into_std()?;
    let app = api::router(AppState {
        registry: registry.clone(),
        shutdown: shutdown.clone(),
        options: Arc::new(options),
        loopback,
        experiments: Arc::default(),
    })
    .into_make_service_with_connect_info::<SocketAddr>();
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
                        // Through `tap_io`, whose listener axum gives `ConnectInfo<SocketAddr>`
                        // (the audit names the caller), and small responses leave at once.
                        let listener = api::listener::ApiListener::new(listener)
                            .tap_io(|stream| stream.set_nodelay());
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
    registry.shutdown_draining(drain_timeout).await;
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
        Self::spawn_with(listener, registry, ApiOptions::default())
    }

    /// [`ServerHandle::spawn`], with the API's security and validation settings.
    pub fn spawn_with(
        listener: TcpListener,
        registry: Arc<Registry>,
        options: ApiOptions,
    ) -> io::Result<ServerHandle> {
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_with(
            listener,
            registry.clone(),
            shutdown.clone(),
            options,
        ));
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
