//! The `faultline` server binary: flags, logging, signals. Everything else is the library.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use faultline::registry::{Options, Registry};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// A programmable TCP fault-injection proxy, API-compatible with Toxiproxy v2.
///
/// Toxiproxy's single-dash flags (`-host 0.0.0.0`, `-port=8474`, `-config f.json`) work too.
#[derive(Debug, Parser)]
#[command(name = "faultline", version)]
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
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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

async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = sigterm => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse_from(normalize_args(std::env::args()));
    init_logging(args.log_format);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting faultline");

    let registry = Registry::new(Options { seed: args.seed });
    if let Some(path) = &args.config {
        let count = faultline::config::load(&registry, path).await?;
        tracing::info!(config = %path.display(), proxies = count, "loaded config");
    }

    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen for the API on {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, "API listening");

    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_signal(shutdown.clone()));
    faultline::server::run(listener, registry, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
