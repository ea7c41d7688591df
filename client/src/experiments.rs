//! Running a chaos experiment against an embedded server.

use crate::embedded::Server;
use faultline_experiment::{run_experiment, Error, Journal, Loaded, Settings};

impl Server {
    /// Runs `experiment` with this server as its only API (whatever its configuration says),
    /// rollbacks and automatic cleanup included, and returns the journal to assert on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use faultline_client::experiment::{Experiment, Loaded, Verdict};
    /// use faultline_client::{ProxyConfig, Server};
    ///
    /// let server = Server::start().await?;
    /// server.create_proxy(ProxyConfig::new("db", "127.0.0.1:5432")).await?;
    /// let experiment: Experiment = serde_json::from_value(serde_json::json!({
    ///     "title": "db proxy can be taken down",
    ///     "method": [{"type": "action", "name": "down", "provider": {"type": "python",
    ///         "module": "chaostoxi.proxy.actions", "func": "disable_proxy",
    ///         "arguments": {"proxy_name": "db"}}}]
    /// }))?;
    /// let journal = server.run_experiment(&Loaded::from_experiment(experiment)).await?;
    /// assert_eq!(journal.verdict(), Verdict::Held);
    /// // Cleanup enabled the proxy again.
    /// assert!(server.proxy("db").await?.info().enabled);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_experiment(&self, experiment: &Loaded) -> Result<Journal, Error> {
        self.run_experiment_with(experiment, Settings::default())
            .await
    }

    /// Like [`run_experiment`](Server::run_experiment), with `--var`s, a time limit or a
    /// stopper in `settings` (its `apis` are replaced by this server's URL).
    pub async fn run_experiment_with(
        &self,
        experiment: &Loaded,
        mut settings: Settings,
    ) -> Result<Journal, Error> {
        settings.apis = vec![self.url()];
        run_experiment(experiment, settings).await
    }
}
