//! A small search service for the chaos experiments in `examples/experiments/`: it calls an
//! AI-like dependency through faultline, with a switchable timeout, circuit breaker, fallback
//! and Retry-After handling, and exposes Prometheus metrics (breaker state included).
//!
//! ```sh
//! # the dependency, and a faultline proxy in front of it
//! cargo run --example demo_service -- --ai-listen 127.0.0.1:9100 &
//! faultline &
//! curl -X POST localhost:8474/proxies -d '{"name":"ai","listen":"127.0.0.1:9101","upstream":"127.0.0.1:9100"}'
//! # the search service, calling the dependency through the proxy
//! cargo run --example demo_service -- --listen 127.0.0.1:8080 --ai-url http://127.0.0.1:9101
//! curl 'localhost:8080/search?q=rust'; curl localhost:8080/metrics
//! ```
//!
//! Flags: `--listen ADDR` (search service), `--ai-listen ADDR` (serve the dependency),
//! `--ai-url URL`, `--timeout-ms N` (1000), `--breaker on|off`, `--fallback on|off`,
//! `--retry-after on|off`, `--failure-threshold N` (5), `--open-for-ms N` (10000),
//! `--fallback-delay-ms N` (0).

mod service;

use std::time::Duration;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut listen = None;
    let mut ai_listen = None;
    let mut config = service::Config::new("http://127.0.0.1:9101");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let on = |v: String| match v.as_str() {
            "on" | "true" => Ok(true),
            "off" | "false" => Ok(false),
            _ => Err(format!("expected on or off, not {v:?}")),
        };
        let millis = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("expected milliseconds, not {v:?}"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(value()?),
            "--ai-listen" => ai_listen = Some(value()?),
            "--ai-url" => config.ai_url = value()?,
            "--timeout-ms" => config.timeout = millis(value()?)?,
            "--breaker" => config.breaker = on(value()?)?,
            "--fallback" => config.fallback = on(value()?)?,
            "--retry-after" => config.honour_retry_after = on(value()?)?,
            "--failure-threshold" => {
                config.failure_threshold = value()?.parse().map_err(|_| "expected a count")?
            }
            "--open-for-ms" => config.open_for = millis(value()?)?,
            "--fallback-delay-ms" => config.fallback_delay = millis(value()?)?,
            other => return Err(format!("unknown flag {other}; see the source's header")),
        }
    }
    if listen.is_none() && ai_listen.is_none() {
        return Err("give --listen ADDR (search service) and/or --ai-listen ADDR".into());
    }
    let mut tasks = Vec::new();
    if let Some(addr) = ai_listen {
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        println!(
            "AI dependency on http://{}",
            l.local_addr().map_err(|e| e.to_string())?
        );
        tasks.push(tokio::spawn(service::serve_ai(l)));
    }
    if let Some(addr) = listen {
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        println!(
            "search service on http://{} (AI at {}, breaker {}, fallback {})",
            l.local_addr().map_err(|e| e.to_string())?,
            config.ai_url,
            config.breaker,
            config.fallback
        );
        tasks.push(tokio::spawn(service::serve_search(l, config)));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
