//! A faultline server inside the test process (feature `embedded`, on by default).

use crate::client::Client;
use crate::error::Result;
use faultline::registry::{Options, Registry};
use faultline::server::ServerHandle;
use std::net::SocketAddr;
use std::ops::Deref;

/// A faultline server running in the background of the current tokio runtime, on its own
/// ephemeral port of 127.0.0.1, with a [`Client`] for it.
///
/// Each `Server` is independent: tests that each start one can run in parallel in the same
/// binary without seeing each other's proxies. It dereferences to its [`Client`], and stops
/// (closing every proxy and connection) when dropped or [`stop`](Server::stop)ped. It needs a
/// tokio runtime with the time and IO drivers (`#[tokio::test]` has them); a current-thread
/// runtime is fine.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), faultline_client::Error> {
/// use faultline_client::{ProxyConfig, Server};
///
/// let server = Server::start().await?;
/// let proxy = server.create_proxy(ProxyConfig::new("cache", "127.0.0.1:11211")).await?;
/// assert_eq!(server.proxies().await?.len(), 1);
/// assert!(proxy.listen_addr()?.ip().is_loopback());
/// server.stop().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    client: Client,
    /// `None` only after `stop` took it.
    handle: Option<ServerHandle>,
}

impl Server {
    /// Starts a server with random toxic decisions (toxicity, jitter, loss).
    pub async fn start() -> Result<Server> {
        Server::start_with(Options::default()).await
    }

    /// Starts a server whose random choices come from `seed`, for reproducible runs.
    pub async fn start_seeded(seed: u64) -> Result<Server> {
        // Assigned rather than a struct literal, so new server options keep their defaults.
        #[allow(clippy::field_reassign_with_default)]
        let options = {
            let mut options = Options::default();
            options.seed = Some(seed);
            options
        };
        Server::start_with(options).await
    }

    async fn start_with(options: Options) -> Result<Server> {
        let handle = ServerHandle::start_local(Registry::new(options)).await?;
        let client = Client::new(&handle.url())?;
        Ok(Server {
            client,
            handle: Some(handle),
        })
    }

    /// A client for this server (the same one `Deref` gives; clones are cheap).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The API's address.
    pub fn addr(&self) -> SocketAddr {
        self.handle
            .as_ref()
            .map(ServerHandle::addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The API's URL, `http://127.0.0.1:<port>`, for other tools (or `TOXIPROXY_URL`).
    pub fn url(&self) -> String {
        self.client.url().to_string()
    }

    /// Stops the API and every proxy, and waits until they are gone.
    pub async fn stop(mut self) -> Result<()> {
        match self.handle.take() {
            Some(handle) => Ok(handle.stop().await?),
            None => Ok(()),
        }
    }
}

impl Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
