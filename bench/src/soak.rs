//! The soak benchmark: connection churn through one faultline proxy while toxics are added,
//! removed and the proxy disabled and enabled, for a long time (30 minutes by default). The
//! faultline process's RSS, open descriptors, threads and connection gauges are sampled over
//! time; the run fails if they grow instead of staying flat, if they do not come back down
//! once the churn stops, or if any echoed byte differs from what was sent.

use crate::servers::{self, Server};
use crate::sys;
use crate::upstreams::Upstreams;
use anyhow::{anyhow, Result};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long the churn lasts, e.g. `60s`, `30m`.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent clients, each opening one connection after another.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// New connections per second, all clients together (paced, so the soak measures the
    /// proxy over time rather than saturating a shared machine).
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// Time between samples (default: the duration / 120, between 1 s and 15 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    sample_every: Option<Duration>,
    /// How much the last quarter's mean may exceed the first quarter's, in percent (plus a
    /// small absolute slack per resource).
    #[arg(long, default_value_t = 25.0)]
    tolerance: f64,
    /// Also write every sample and the verdicts as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

/// One look at the faultline process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    threads: u64,
    /// `faultline_runtime_tasks`, if the server exposes it.
    tasks: Option<f64>,
    /// `faultline_connections_active`, summed over proxies.
    active: Option<f64>,
}

async fn sample(server: &Server, pid: u32, started: Instant) -> Result<Sample> {
    let page = server.metrics().await.unwrap_or_default();
    Ok(Sample {
        at: started.elapsed(),
        rss_kib: sys::rss_kib(pid).ok_or_else(|| anyhow!("faultline (pid {pid}) is gone"))?,
        fds: sys::fd_count(pid).ok_or_else(|| anyhow!("no /proc/{pid}/fd"))?,
        threads: sys::threads(pid).unwrap_or(0),
        tasks: servers::metric_sum(&page, "faultline_runtime_tasks"),
        active: servers::metric_sum(&page, "faultline_connections_active"),
    })
}

/// The toxics toggled on and off in turn: each changes timing or cuts connections, none alters
/// bytes, so every echo must be a prefix of what was sent.
const TOXICS: &[(&str, &str, &str)] = &[
    ("latency", "downstream", r#"{"latency": 5, "jitter": 5}"#),
    (
        "slicer",
        "upstream",
        r#"{"average_size": 64, "size_variation": 32, "delay": 10}"#,
    ),
    ("bandwidth", "downstream", r#"{"rate": 2000}"#),
    ("limit_data", "downstream", r#"{"bytes": 3000}"#),
    ("timeout", "upstream", r#"{"timeout": 200}"#),
    ("reset_peer", "upstream", r#"{"timeout": 50}"#),
    ("latency", "upstream", r#"{"latency": 1000}"#),
];

/// The byte at `offset` of a payload seeded with `seed`.
fn pattern(seed: u64, offset: usize) -> u8 {
    (offset as u64 % 251).wrapping_add(seed) as u8
}

#[derive(Debug, Default)]
struct Tally {
    connections: AtomicU64,
    /// Connections that echoed everything.
    complete: AtomicU64,
    /// Connections a toxic or a disable cut short (a prefix echoed, then closed or reset).
    cut: AtomicU64,
    /// Connections abandoned on purpose before their echo.
    abandoned: AtomicU64,
    /// Echoed bytes that differed from what was sent: must stay 0.
    altered: AtomicU64,
}

/// One client's life: connect, send a payload, half-close, read the echo back (every 5th
/// connection is dropped without reading, as a client that gives up).
async fn client(
    addr: std::net::SocketAddr,
    period: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    id: u64,
) {
    let mut n = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pace = tokio::time::interval(period);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        pace.tick().await;
        n += 1;
        let seed = id * 1_000_003 + n;
        let size = 512 + (seed as usize * 7919) % (12 * 1024);
        let payload: Vec<u8> = (0..size).map(|i| pattern(seed, i)).collect();
        tally.connections.fetch_add(1, Ordering::Relaxed);
        let run = async {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(&payload).await?;
            if n % 5 == 0 {
                tally.abandoned.fetch_add(1, Ordering::Relaxed);
                return Ok::<_, std::io::Error>(());
            }
            s.shutdown().await?;
            let mut got = 0usize;
            loop {
                let k = s.read(&mut buf).await?;
                if k == 0 {
                    break;
                }
                let wrong = (0..k)
                    .filter(|&i| got + i >= size || buf[i] != pattern(seed, got + i))
                    .count();
                tally.altered.fetch_add(wrong as u64, Ordering::Relaxed);
                got += k;
            }
            let counter = if got == size {
                &tally.complete
            } else {
                &tally.cut
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(15), run).await {
            Ok(Ok(())) => {}
            // Refused while disabled, reset by a toxic, cut by a timeout: all expected.
            Ok(Err(_)) | Err(_) => {
                tally.cut.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Adds and removes toxics in turn, and disables the proxy for a moment every 10 s.
async fn toggler(server: &Server, stop: &AtomicBool) -> Result<u64> {
    let mut present = vec![false; TOXICS.len()];
    let mut changes = 0u64;
    let mut step = 0usize;
    let mut last_disable = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let i = step % TOXICS.len();
        step += 1;
        let (kind, stream, attrs) = TOXICS[i];
        let name = format!("soak{i}");
        if present[i] {
            server.remove_toxic("soak", &name).await?;
        } else {
            server
                .add_toxic("soak", &name, kind, stream, serde_json::from_str(attrs)?)
                .await?;
        }
        present[i] = !present[i];
        changes += 1;
        if last_disable.elapsed() >= Duration::from_secs(10) {
            server.set_enabled("soak", false).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            server.set_enabled("soak", true).await?;
            last_disable = Instant::now();
            changes += 2;
        }
    }
    for (i, on) in present.iter().enumerate() {
        if *on {
            server.remove_toxic("soak", &format!("soak{i}")).await?;
        }
    }
    Ok(changes)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Whether a resource stayed flat: the last quarter's mean within `tolerance` percent (plus
/// `slack`) of the first quarter's (of the samples after warm-up).
#[derive(Debug)]
struct Flatness {
    resource: &'static str,
    first: f64,
    last: f64,
    limit: f64,
}

impl Flatness {
    fn of(
        samples: &[Sample],
        resource: &'static str,
        tolerance: f64,
        slack: f64,
        f: impl Fn(&Sample) -> f64,
    ) -> Flatness {
        let q = (samples.len() / 4).max(1);
        let first = mean(samples[..q].iter().map(&f));
        let last = mean(samples[samples.len() - q..].iter().map(&f));
        Flatness {
            resource,
            first,
            last,
            limit: first * (1.0 + tolerance / 100.0) + slack,
        }
    }

    fn flat(&self) -> bool {
        self.last <= self.limit
    }
}

pub async fn run(args: &SoakArgs, exe: &Path) -> Result<bool> {
    sys::raise_fd_limit(8192);
    let every = args.sample_every.unwrap_or_else(|| {
        (args.duration / 120).clamp(Duration::from_secs(1), Duration::from_secs(15))
    });
    let ups = Upstreams::start().await?;
    let server = Server::spawn_faultline(exe, None).await?;
    let pid = server.pid.ok_or_else(|| anyhow!("no pid for faultline"))?;
    let addr = server.create_proxy("soak", ups.echo).await?;
    println!(
        "soak: {} of churn by {} clients (at most {} connections/s) through {addr} (faultline \
         pid {pid}, {}), toxics toggled every 500 ms, disabled for 100 ms every 10 s; a sample \
         every {}",
        humantime::format_duration(args.duration),
        args.clients,
        args.rate,
        exe.display(),
        humantime::format_duration(every)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let baseline = sample(&server, pid, started).await?;
    if baseline.tasks.is_none() {
        println!(
            "soak: /metrics has no faultline_runtime_tasks gauge; tasks are followed through \
             faultline_connections_active and the descriptors"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = JoinSet::new();
    let period = Duration::from_secs_f64(args.clients as f64 / args.rate.max(1.0));
    for id in 0..args.clients as u64 {
        clients.spawn(client(addr, period, stop.clone(), tally.clone(), id));
    }
    let toggle_stop = stop.clone();
    let toggle = async {
        let result = toggler(&server, &toggle_stop).await;
        toggle_stop.store(true, Ordering::Relaxed);
        result
    };
    let sampling = async {
        let mut samples = Vec::new();
        let mut next = Instant::now() + every;
        println!(
            "{:>8} {:>10} {:>6} {:>8} {:>7} {:>7} {:>9}",
            "time", "RSS KiB", "fds", "threads", "tasks", "active", "conns"
        );
        while Instant::now() < started + args.duration && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep_until(next.into()).await;
            next += every;
            let s = sample(&server, pid, started).await?;
            println!(
                "{:>7.0}s {:>10} {:>6} {:>8} {:>7} {:>7} {:>9}",
                s.at.as_secs_f64(),
                s.rss_kib,
                s.fds,
                s.threads,
                s.tasks.map_or("-".into(), |t| format!("{t:.0}")),
                s.active.map_or("-".into(), |t| format!("{t:.0}")),
                tally.connections.load(Ordering::Relaxed)
            );
            samples.push(s);
        }
        stop.store(true, Ordering::Relaxed);
        Ok::<_, anyhow::Error>(samples)
    };
    let (changes, samples) = tokio::join!(toggle, sampling);
    stop.store(true, Ordering::Relaxed);
    let (changes, samples) = (changes?, samples?);
    if tokio::time::timeout(Duration::from_secs(20), async {
        while clients.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        clients.abort_all();
    }

    // Once every client is gone, the process must come back to where it started.
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    let settled = loop {
        let s = sample(&server, pid, started).await?;
        let back = s.fds <= baseline.fds + 2
            && s.tasks.unwrap_or(0.0) <= baseline.tasks.unwrap_or(0.0)
            && s.active.unwrap_or(0.0) <= baseline.active.unwrap_or(0.0);
        if back || Instant::now() > settle_deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let tol = args.tolerance;
    let clients = args.clients as f64;
    // The first tenth of the run is warm-up (allocator arenas, the first slow toxics).
    let samples = &samples[samples.len() / 10..];
    let mut checks = vec![
        Flatness::of(samples, "RSS (KiB)", tol, 4096.0, |s| s.rss_kib as f64),
        // Each client holds at most one connection (two descriptors in the proxy) at a time,
        // so the level may swing by that much; a leak grows past it.
        Flatness::of(samples, "open descriptors", tol, 2.0 * clients, |s| {
            s.fds as f64
        }),
        // The blocking pool (upstream name resolution) grows and shrinks by a few threads.
        Flatness::of(samples, "threads", 0.0, 8.0, |s| s.threads as f64),
    ];
    if samples.iter().all(|s| s.tasks.is_some()) {
        checks.push(Flatness::of(
            samples,
            "connection tasks",
            tol,
            clients,
            |s| s.tasks.unwrap_or(0.0),
        ));
    }
    if samples.iter().all(|s| s.active.is_some()) {
        checks.push(Flatness::of(
            samples,
            "active connections",
            tol,
            16.0,
            |s| s.active.unwrap_or(0.0),
        ));
    }

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let altered = load(&tally.altered);
    let complete = load(&tally.complete);
    println!();
    println!(
        "connections: {} ({} echoed in full, {} cut by toxics or disables, {} abandoned); toxic \
         and proxy changes: {changes}; altered bytes: {altered}",
        load(&tally.connections),
        complete,
        load(&tally.cut),
        load(&tally.abandoned)
    );
    let mut ok = samples.len() >= 4 && complete > 0 && altered == 0;
    if samples.len() < 4 {
        println!("FAIL: only {} samples; run longer", samples.len());
    }
    if complete == 0 {
        println!("FAIL: no connection echoed in full");
    }
    if altered > 0 {
        println!("FAIL: {altered} echoed bytes differ from what was sent");
    }
    println!("| resource | first quarter mean | last quarter mean | limit | verdict |");
    println!("|---|---|---|---|---|");
    for c in &checks {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {} |",
            c.resource,
            c.first,
            c.last,
            c.limit,
            if c.flat() { "flat" } else { "GROWS" }
        );
        ok &= c.flat();
    }
    let returned = settled.fds <= baseline.fds + 2
        && settled.tasks.unwrap_or(0.0) <= baseline.tasks.unwrap_or(0.0)
        && settled.active.unwrap_or(0.0) <= baseline.active.unwrap_or(0.0);
    println!(
        "after the churn: {} descriptors (before it: {}), RSS {} KiB (before: {}), threads {} \
         (before: {}), tasks {} (before: {}) -> {}",
        settled.fds,
        baseline.fds,
        settled.rss_kib,
        baseline.rss_kib,
        settled.threads,
        baseline.threads,
        settled.tasks.map_or("-".into(), |t| format!("{t:.0}")),
        baseline.tasks.map_or("-".into(), |t| format!("{t:.0}")),
        if returned {
            "back to the start"
        } else {
            "LEAKED"
        }
    );
    ok &= returned;
    if let Some(path) = &args.json {
        let row = |s: &Sample| {
            json!({"t_s": s.at.as_secs_f64(), "rss_kib": s.rss_kib, "fds": s.fds,
                "threads": s.threads, "tasks": s.tasks, "active": s.active})
        };
        let doc = json!({
            "duration_s": args.duration.as_secs_f64(),
            "clients": args.clients,
            "connections": load(&tally.connections),
            "complete": complete,
            "altered_bytes": altered,
            "changes": changes,
            "baseline": row(&baseline),
            "settled": row(&settled),
            "samples": samples.iter().map(row).collect::<Vec<_>>(),
            "checks": checks.iter().map(|c| json!({"resource": c.resource, "first": c.first,
                "last": c.last, "limit": c.limit, "flat": c.flat()})).collect::<Vec<_>>(),
            "pass": ok,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    }
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    let _ = server.delete_proxy("soak").await;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rss: u64) -> Sample {
        Sample {
            at: Duration::ZERO,
            rss_kib: rss,
            fds: 10,
            threads: 4,
            tasks: None,
            active: None,
        }
    }

    /// A resource that keeps growing over the run is not flat.
    #[test]
    fn steady_growth_is_not_flat() {
        let samples: Vec<Sample> = (0..40).map(|i| at(10_000 + i * 1_000)).collect();
        let check = Flatness::of(&samples, "RSS", 25.0, 0.0, |s| s.rss_kib as f64);
        assert!(!check.flat(), "{check:?}");
    }

    /// A resource that wobbles around one level is flat.
    #[test]
    fn wobble_around_a_level_is_flat() {
        let samples: Vec<Sample> = (0..40).map(|i| at(10_000 + (i % 3) * 500)).collect();
        let check = Flatness::of(&samples, "RSS", 25.0, 0.0, |s| s.rss_kib as f64);
        assert!(check.flat(), "{check:?}");
    }
}
