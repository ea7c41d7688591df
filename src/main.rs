//! The `faultline` server binary: flags, logging, signals. Everything else is the library.

use anyhow::{anyhow, Context};
use clap::{Parser, ValueEnum};
use faultline::api::fields::UnknownKeys;
use faultline::api::ApiOptions;
use faultline::registry::{Options, Registry};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// A programmable TCP fault-injection proxy, API-compatible with Toxiproxy v2.
///
/// Toxiproxy's single-dash flags (`-host 0.0.0.0`, `-port=8474`, `-config f.json`) work too.
/// Chaos experiments: `faultline experiment run|validate FILE` (see `faultline experiment --help`).
#[derive(Debug, Parser)]
#[command(name = "faultline", version, after_help = ENVIRONMENT_HELP)]
struct Args {
    /// Address the REST API listens on.
    #[arg(long, default_value = "127.0.0.1", env = "FAULTLINE_HOST")]
    host: String,
    /// Port the REST API listens on.
    #[arg(long, default_value_t = 8474, env = "FAULTLINE_PORT")]
    port: u16,
    /// JSON file of proxies to create at startup (Toxiproxy's /populate format; each proxy
    /// may also list `toxics`).
    #[arg(long, env = "FAULTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Seed for every random choice (toxicity, jitter, slicing, loss), for reproducible runs.
    #[arg(long)]
    seed: Option<u64>,
    /// PEM file of CA certificates trusted (besides the platform's) for `upstream_tls`.
    #[arg(long, env = "FAULTLINE_UPSTREAM_CA")]
    upstream_ca: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, how long open connections may go on before they are closed
    /// (`5s`, `500ms`, `0s`...). New connections are refused at once.
    #[arg(long, default_value = "5s", env = "FAULTLINE_DRAIN_TIMEOUT", value_parser = humantime::parse_duration)]
    drain_timeout: std::time::Duration,
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Require this token on every API call but `GET /version`, as `Authorization: Bearer
    /// TOKEN` or as either half of HTTP Basic credentials (`http://:TOKEN@host:8474`).
    #[arg(long, env = "FAULTLINE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Ignore unknown JSON keys with a logged warning, as Toxiproxy does, instead of
    /// refusing them with a 400.
    #[arg(
        long,
        env = "FAULTLINE_LENIENT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    lenient: bool,
    /// Largest request body the API accepts; larger ones get a 413.
    #[arg(long, env = "FAULTLINE_MAX_BODY_BYTES", default_value_t = faultline::api::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Accepted for Toxiproxy compatibility; metrics are always served at /metrics.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    proxy_metrics: Option<bool>,
    /// Accepted for Toxiproxy compatibility; metrics are always served at /metrics.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    runtime_metrics: Option<bool>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `--help`'s closing section: what the environment changes, and where the manual is.
const ENVIRONMENT_HELP: &str = "\
Environment:
  FAULTLINE_HOST, FAULTLINE_PORT, FAULTLINE_CONFIG
                  defaults for --host, --port and --config (flags win)
  FAULTLINE_API_TOKEN, FAULTLINE_LENIENT, FAULTLINE_MAX_BODY_BYTES
                  defaults for --api-token, --lenient and --max-body-bytes
  FAULTLINE_UPSTREAM_CA, FAULTLINE_DRAIN_TIMEOUT
                  defaults for --upstream-ca and --drain-timeout
  RUST_LOG        log filter, e.g. `debug` or `info,faultline::proxy=trace` (wins over LOG_LEVEL)
  LOG_LEVEL       Toxiproxy's level names: trace, debug, info, warn, error (default info)
  NO_COLOR        plain log lines even on a terminal

Documentation (README.md in the repository, https://github.com/faultline/faultline):
  #server-flags    flags and Toxiproxy's spellings of them
  #api             the REST API, status codes and errors
  #toxics          every toxic type and its attributes
  #security        the API token, exposure in containers, what is logged
  #docker          the container image and docker compose";

/// Flags Toxiproxy spells with one dash, rewritten to clap's two.
const GO_FLAGS: &[&str] = &[
    "host",
    "port",
    "config",
    "seed",
    "version",
    "help",
    "proxy-metrics",
    "runtime-metrics",
    "log-format",
    "api-token",
    "lenient",
    "max-body-bytes",
    "drain-timeout",
];

fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, arg)| {
            let name = arg
                .strip_prefix('-')
                .filter(|rest| !rest.starts_with('-'))
                .map(|rest| rest.split('=').next().unwrap_or(rest));
            match name {
                Some(name) if i > 0 && GO_FLAGS.contains(&name) => format!("-{arg}"),
                _ => arg,
            }
        })
        .collect()
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Toxiproxy's LOG_LEVEL uses zerolog's names.
        let level = match std::env::var("LOG_LEVEL")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "trace" => "trace",
            "debug" => "debug",
            "warn" | "warning" => "warn",
            "error" | "fatal" | "panic" => "error",
            _ => "info",
        };
        EnvFilter::new(level)
    });
    // Colour only for a person at a terminal, never in files, pipes or container logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C. The handlers are installed before this returns, so
/// a signal sent as soon as the API is reported listening is never missed.
fn on_shutdown_signal(token: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: no new connections; open ones may finish");
        token.cancel();
    });
    Ok(())
}

fn main() -> ExitCode {
    // `faultline experiment ...` runs a chaos experiment; anything else starts the server.
    if std::env::args().nth(1).as_deref() == Some("experiment") {
        std::process::exit(faultline_experiment::cli::main(std::env::args().skip(1)));
    }
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    let args = Args::parse_from(normalize_args(std::env::args()));
    init_logging(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        // An expected failure (a taken port, a bad config file): one line that says what to do,
        // never a backtrace, whatever RUST_BACKTRACE says.
        Err(e) => {
            eprintln!("faultline: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting faultline");

    if let Some(path) = &args.upstream_ca {
        // Checked now, so a bad file stops the start with one clear line.
        faultline::http::tls::client_config(Some(path))?;
    }
    let registry =
        Registry::with_upstream_ca(Options { seed: args.seed }, args.upstream_ca.clone());
    if let Some(path) = &args.config {
        let count = faultline::config::load(&registry, path).await?;
        tracing::info!(config = %path.display(), proxies = count, "loaded config");
    }

    let shutdown = CancellationToken::new();
    on_shutdown_signal(shutdown.clone())?;

    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| bind_error(&addr, e))?;
    let local = listener.local_addr()?;
    let token = args.api_token.filter(|t| !t.is_empty());
    if token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            address = %local,
            "the API listens on a non-loopback address without a token: anyone who can reach \
             it can change every proxy; set --api-token (FAULTLINE_API_TOKEN)"
        );
    }
    tracing::info!(address = %local, "API listening");
    let options = ApiOptions {
        unknown_keys: if args.lenient {
            UnknownKeys::Ignore
        } else {
            UnknownKeys::Reject
        },
        token,
        max_body_bytes: args.max_body_bytes,
    };

    faultline::server::run_draining(listener, registry, shutdown, options, args.drain_timeout)
        .await
        .context("the API server stopped")?;
    tracing::info!("stopped");
    Ok(())
}

/// Why the API cannot listen on `addr`, and what to do about it.
fn bind_error(addr: &str, e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow!(
            "cannot listen for the API on {addr}: the address is already in use (is another \
             faultline or toxiproxy running? stop it, or pick another port with --port)"
        ),
        std::io::ErrorKind::PermissionDenied => anyhow!(
            "cannot listen for the API on {addr}: permission denied (ports below 1024 need \
             privileges; pick another port with --port)"
        ),
        _ => anyhow!("cannot listen for the API on {addr}: {e}"),
    }
}

/// The error and its causes on one line, each text once: a cause whose words the message
/// already carries (as most of faultline's messages do) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every environment variable a flag reads is listed in `--help`'s closing section, so
    /// a flag added later cannot be missed there.
    #[test]
    fn help_lists_every_flag_environment_variable() {
        use clap::CommandFactory;
        for arg in Args::command().get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    ENVIRONMENT_HELP.contains(&*env),
                    "{env} is missing from ENVIRONMENT_HELP"
                );
            }
        }
    }

    /// A cause already told by its context is not told again; a new one is appended.
    #[test]
    fn one_line_prints_each_cause_once() {
        let io = std::io::Error::other("disk on fire");
        let told = anyhow::Error::new(std::io::Error::other("disk on fire"))
            .context(format!("cannot read x: {io}"));
        assert_eq!(one_line(&told), "cannot read x: disk on fire");
        let untold = anyhow::Error::new(io).context("cannot read x");
        assert_eq!(one_line(&untold), "cannot read x: disk on fire");
    }

    /// Toxiproxy's spellings become clap's; values and clap's own flags are left alone.
    #[test]
    fn go_flags_are_rewritten() {
        let args = [
            "faultline",
            "-host=0.0.0.0",
            "-port",
            "9",
            "--seed",
            "1",
            "-V",
        ];
        let out = normalize_args(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            [
                "faultline",
                "--host=0.0.0.0",
                "--port",
                "9",
                "--seed",
                "1",
                "-V"
            ]
        );
        let out = out[..6].to_vec();
        let parsed = Args::parse_from(out);
        assert_eq!((parsed.host.as_str(), parsed.port), ("0.0.0.0", 9));
    }
}
