//! Chaos experiments, built into faultline: steady state, hypothesis, inject, observe, abort,
//! roll back, in [Chaos Toolkit]'s open experiment format, with no Python.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faultline_experiment::Error> {
//! use faultline_experiment::{load_file, run_experiment, Settings, Verdict};
//!
//! let loaded = load_file("examples/experiments/circuit-breaker.json".as_ref())?;
//! let mut settings = Settings::default();
//! settings.apis = vec!["http://127.0.0.1:8474".into()];
//! let journal = run_experiment(&loaded, settings).await?;
//! assert_eq!(journal.verdict(), Verdict::Held);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`model`]: the file format as serde types; [`load`]: JSON/YAML reading with errors that
//!   name the field and line; [`tolerance`]: Chaos Toolkit's tolerance rules (pure);
//!   [`config`]: configuration, secrets, `--var` and `${name}` substitution;
//!   [`functions`]: the Python functions run natively, with their arguments.
//! - [`runner`]: the run itself (safeguards, hypothesis, method, rollbacks, stop);
//!   [`providers`]: http, process, chaostoolkit-toxiproxy and faultline's own functions;
//!   [`cleanup`]: putting every changed proxy back; [`fleet`]: which APIs a run acts on.
//! - [`journal`]: Chaos Toolkit's journal, the verdict and exit code; [`view`]: the live
//!   terminal view and summary; [`progress`]: the same progress, published to the faultline
//!   servers for their dashboards; [`cli`]: `faultline experiment run|validate`.
//!
//! [Chaos Toolkit]: https://chaostoolkit.org

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cleanup;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod functions;
pub mod journal;
pub mod load;
pub mod model;
pub mod progress;
pub mod providers;
pub mod runner;
pub mod tolerance;
pub mod view;

pub use config::Vars;
pub use journal::{Journal, Status, Verdict};
pub use load::{load_file, parse, Format, LoadError, Loaded};
pub use model::Experiment;
pub use runner::{Stop, Stopper};

use providers::Context;
use std::sync::Arc;
use std::time::Duration;

/// Why an experiment could not be run at all (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Configuration, secrets or the APIs are not usable.
    #[error("{0}")]
    Setup(String),
}

/// How to run an experiment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--var` and `--var-file` values.
    pub vars: Vars,
    /// `--api` URLs; empty means the configuration's (or the default).
    pub apis: Vec<String>,
    pub max_duration: Option<Duration>,
    /// Lets the caller stop the run (a signal handler does).
    pub stopper: Stopper,
    pub events: Option<tokio::sync::mpsc::UnboundedSender<view::Event>>,
}

/// Resolves configuration, secrets and the fleet, and checks the APIs answer when the
/// experiment acts on them.
pub async fn prepare(experiment: &Experiment, settings: &Settings) -> Result<Arc<Context>, Error> {
    let configuration = config::resolve_configuration(&experiment.configuration, &settings.vars)
        .map_err(Error::Setup)?;
    let secrets =
        config::resolve_secrets(&experiment.secrets, &settings.vars).map_err(Error::Setup)?;
    let declared = fleet::declared_apis(&settings.apis, &configuration);
    let apis = fleet::resolve(&declared).await.map_err(Error::Setup)?;
    let ctx = Context::new(configuration, secrets, apis);
    let uses_api = experiment.activities().any(|a| match &a.provider {
        model::Provider::Python(p) => p.module != functions::FAULTLINE_PROBES,
        _ => false,
    });
    if uses_api {
        ctx.api
            .check_reachable(&ctx.apis)
            .await
            .map_err(Error::Setup)?;
    }
    Ok(Arc::new(ctx))
}

/// Runs a loaded experiment to its journal (rollbacks and cleanup included).
pub async fn run_experiment(loaded: &Loaded, settings: Settings) -> Result<Journal, Error> {
    let ctx = prepare(&loaded.experiment, &settings).await?;
    let mut document = loaded.document.clone();
    if let Some(title) = document.get("title").cloned() {
        document["title"] = ctx.substitute(&title);
    }
    let progress = Arc::new(progress::Publisher::start(&ctx.apis, &ctx.api));
    let options = runner::Options {
        max_duration: settings.max_duration,
        stopper: settings.stopper.clone(),
        events: settings.events.clone(),
        progress: Some(progress.clone()),
    };
    let exec = Arc::new(runner::NativeExecutor(ctx.clone()));
    let journal = runner::run(&loaded.experiment, document, exec, Some(&ctx), options).await;
    progress.finish().await;
    Ok(journal)
}
