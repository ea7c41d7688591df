//! faultline-bench: a reproducible loopback benchmark of faultline against direct connections
//! and any other Toxiproxy-API server. See `bench/README.md`.

#![forbid(unsafe_code)]

mod haproxy;
mod load;
mod report;
mod servers;
mod soak;
mod sys;
mod upstreams;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use haproxy::Haproxy;
use load::Plan;
use report::{Better, Cell, Goal, Row};
use serde_json::{json, Value};
use servers::Server;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use upstreams::Upstreams;

#[derive(Parser, Debug)]
#[command(
    about = "Loopback benchmark: direct vs HAProxy vs faultline vs other Toxiproxy-API servers"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// A few seconds in all, with small counts (a smoke test: never fails on timing).
    #[arg(long)]
    quick: bool,
    /// Rounds of every group; the table shows each cell's median (default 3; 1 with --quick).
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Another Toxiproxy-API server to measure, e.g. `toxiproxy=http://127.0.0.1:8474`.
    #[arg(long = "server", value_name = "NAME=URL")]
    servers: Vec<String>,
    /// Idle connections for the memory row (default 10,000; 200 with --quick).
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Only these groups of rows (comma-separated): idle, bulk, reqresp, http, connreq, rtt,
    /// lat0, lat50, cpudelay, bandwidth, churn, pressure. Useful to profile one workload.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    only: Vec<String>,
    /// A profiler to run around each proxy's measurement of each group, attached to the proxy
    /// process: `{pid}`, `{column}`, `{group}` and `{round}` are replaced, and it is stopped
    /// with SIGINT when the measurement ends, e.g.
    /// `--attach 'strace -c -f -o /tmp/{column}-{group}.strace -p {pid}'`.
    #[arg(long, value_name = "COMMAND")]
    attach: Option<String>,
    #[command(flatten)]
    bins: Binaries,
}

/// A profiler attached to a proxy for one measurement (`--attach`).
struct Attached(std::process::Child);

impl Attached {
    async fn start(
        template: &str,
        pid: u32,
        column: &str,
        group: &str,
        round: usize,
    ) -> Result<Attached> {
        let command = template
            .replace("{pid}", &pid.to_string())
            .replace("{column}", column)
            .replace("{group}", group)
            .replace("{round}", &round.to_string());
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .spawn()
            .with_context(|| format!("--attach: starting {command:?}"))?;
        // Profilers need a moment to attach before the load starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Attached(child))
    }

    /// SIGINT (how strace and perf are told to stop and write what they have), then waits.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// The programs under test.
#[derive(clap::Args, Debug, Clone)]
struct Binaries {
    /// The faultline binary to measure (default: `faultline` next to this executable, i.e.
    /// `target/release/faultline` after `cargo build --release`).
    #[arg(long, value_name = "PATH", global = true)]
    faultline: Option<PathBuf>,
    /// The HAProxy binary (default: `haproxy` on PATH or in /usr/sbin).
    #[arg(long, value_name = "PATH", global = true)]
    haproxy: Option<PathBuf>,
    /// Leave HAProxy out even if it is installed.
    #[arg(long, global = true)]
    no_haproxy: bool,
    /// Worker threads of both proxies: faultline's runtime (through tokio's
    /// `TOKIO_WORKER_THREADS`) and HAProxy's `nbthread` (default: one per CPU, tokio's default).
    #[arg(long, value_name = "N", global = true)]
    workers: Option<usize>,
}

impl Binaries {
    fn faultline(&self) -> Result<PathBuf> {
        let exe = match &self.faultline {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .context("locating the benchmark executable")?
                .with_file_name("faultline"),
        };
        if !exe.is_file() {
            bail!(
                "no faultline binary at {} (build it with `cargo build --release -p faultline`, \
                 or pass --faultline PATH)",
                exe.display()
            );
        }
        Ok(exe)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connection churn with toxics toggling for a long time, sampling the faultline process's
    /// RSS, descriptors and threads; fails if they grow instead of staying flat.
    Soak(soak::SoakArgs),
}

/// Where one column's traffic goes: the upstreams themselves, or a server's proxies of them.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    echo: SocketAddr,
    bulk: SocketAddr,
    redis: SocketAddr,
    http: SocketAddr,
}

struct Column {
    name: String,
    /// The Toxiproxy API of the column's server (not for `direct` or HAProxy).
    server: Option<Server>,
    /// The proxy process, for CPU and RSS rows.
    pid: Option<u32>,
    endpoints: Endpoints,
    /// Keeps HAProxy running for as long as its column.
    _haproxy: Option<Haproxy>,
}

/// Every row, in the order of the issues' tables.
fn rows() -> Vec<Row> {
    use Better::{Higher, Lower, LowerAdded, Neither};
    let row = |id, title, unit, goal, better| Row {
        id,
        title,
        unit,
        goal,
        better,
        cells: Vec::new(),
    };
    vec![
        row(
            "bulk1",
            "bulk upload, 1 stream, no toxic",
            "MB/s",
            Goal::RatioToDirect(0.85),
            Higher,
        ),
        row(
            "bulk4",
            "bulk upload, 4 streams, no toxic",
            "MB/s",
            Goal::RatioToDirect(0.85),
            Higher,
        ),
        row(
            "download",
            "bulk download, 1 stream, no toxic",
            "MB/s",
            Goal::Info,
            Higher,
        ),
        row(
            "req1",
            "request/response, 50 conns, unpipelined",
            "req/s",
            Goal::RatioToDirect(0.75),
            Higher,
        ),
        row(
            "cpu_req",
            "proxy CPU per request, unpipelined",
            "µs",
            Goal::Info,
            Lower,
        ),
        row(
            "req16",
            "request/response, 50 conns, pipelined 16",
            "req/s",
            Goal::RatioToDirect(0.8),
            Higher,
        ),
        row(
            "http",
            "HTTP keep-alive, 50 conns",
            "req/s",
            Goal::RatioToDirect(0.7),
            Higher,
        ),
        row(
            "connreq",
            "new connection per request, 16 workers",
            "req/s",
            Goal::RatioToDirect(0.7),
            Higher,
        ),
        row(
            "cpu_conn",
            "proxy CPU per new connection",
            "µs",
            Goal::Info,
            Lower,
        ),
        row(
            "rtt_p50",
            "round trip, 1 conn, 64 B, p50",
            "µs",
            Goal::AtMostDirectPlus(25.0),
            LowerAdded,
        ),
        row(
            "rtt_p99",
            "round trip, 1 conn, 64 B, p99",
            "µs",
            Goal::Info,
            Lower,
        ),
        row(
            "idle_mem",
            "RSS per idle proxied connection",
            "KiB",
            Goal::AtMost(8.0),
            Lower,
        ),
        row(
            "lat0",
            "bulk upload, latency 0 ms both streams",
            "MB/s",
            Goal::RatioToRow("bulk1", 0.8),
            Neither,
        ),
        row(
            "lat50_p50",
            "latency 50 ms downstream: added delay p50",
            "ms",
            Goal::Within(50.0, 50.5),
            Neither,
        ),
        row(
            "lat50_p99",
            "latency 50 ms downstream: added delay p99",
            "ms",
            Goal::Within(50.0, 50.5),
            Neither,
        ),
        row(
            "lat50_bulk",
            "bulk download, latency 50 ms downstream",
            "MB/s",
            Goal::RatioToRow("download", 0.8),
            Neither,
        ),
        row(
            "cpu_delayed",
            "proxy CPU per request, latency 10 ms downstream",
            "µs",
            Goal::InfoVsRow("cpu_req"),
            Neither,
        ),
        row(
            "bandwidth",
            "bandwidth 1000 KB/s: achieved rate",
            "KB/s",
            Goal::Within(990.0, 1010.0),
            Neither,
        ),
        row(
            "churn_api",
            "toxic add/remove under streaming conns: API p99",
            "ms",
            Goal::AtMost(10.0),
            Neither,
        ),
        row(
            "churn_loss",
            "same: connections that lost or altered bytes",
            "conns",
            Goal::Zero,
            Neither,
        ),
        row(
            "http_mode",
            "HTTP keep-alive, 50 conns, proxy in http mode (parsed, no toxic)",
            "req/s",
            Goal::InfoVsRow("http"),
            Higher,
        ),
        row(
            "drain_api",
            "API p99 (GET /proxies, /metrics) while a proxy with live conns is disabled and deleted",
            "ms",
            Goal::AtMost(10.0),
            Lower,
        ),
        row(
            "rss_bulk",
            "peak RSS, bulk upload on 200 conns, no toxic",
            "MiB",
            Goal::Info,
            Lower,
        ),
        row(
            "rss_lat1000",
            "peak RSS, same through latency 1000 ms",
            "MiB",
            Goal::InfoVsRow("rss_bulk"),
            Neither,
        ),
    ]
}

/// The groups of rows measured together, in running order (memory first, on a fresh server),
/// and whether the group runs in the first round only (memory rows: a process's allocator
/// keeps what a round used, so later rounds would not start from the same state).
const GROUPS: &[(&str, &[&str], bool)] = &[
    ("idle", &["idle_mem"], true),
    ("bulk", &["bulk1", "bulk4", "download"], false),
    ("reqresp", &["req1", "cpu_req", "req16"], false),
    ("http", &["http"], false),
    ("connreq", &["connreq", "cpu_conn"], false),
    ("rtt", &["rtt_p50", "rtt_p99"], false),
    ("lat0", &["lat0"], false),
    ("lat50", &["lat50_p50", "lat50_p99", "lat50_bulk"], false),
    ("cpudelay", &["cpu_delayed"], false),
    ("bandwidth", &["bandwidth"], false),
    ("churn", &["churn_api", "churn_loss"], false),
    ("httpmode", &["http_mode"], false),
    ("drain", &["drain_api"], false),
    ("pressure", &["rss_bulk", "rss_lat1000"], true),
];

/// How far the peak-RSS rows let a proxy grow before stopping the load (the machine is shared).
const PRESSURE_CAP_KIB: u64 = 3 * 1024 * 1024;

struct Ctx {
    plan: Plan,
    ups: Upstreams,
    idle: usize,
    /// Each column's no-toxic round-trip p50 (µs), the base of the added-delay rows.
    rtt_p50: HashMap<String, f64>,
    /// How to start another faultline process (binary, workers), for the peak-RSS rows.
    faultline: (PathBuf, Option<usize>),
}

const MB: f64 = 1e6;

/// Measures one group for one column; `None` marks a row that does not apply to it.
async fn measure(group: &str, col: &Column, ctx: &mut Ctx) -> Result<Vec<Option<f64>>> {
    let mut plan = ctx.plan.clone();
    plan.proxy_pid = col.pid;
    let ep = col.endpoints;
    let server = col.server.as_ref();
    let us = |secs: Option<f64>| secs.map(|s| s * 1e6);
    Ok(match group {
        "idle" => {
            let Some(pid) = col.pid else {
                return Ok(vec![None]);
            };
            let settle = if ctx.idle < 1000 { 100 } else { 1000 };
            tokio::time::sleep(Duration::from_millis(settle)).await;
            let before = sys::rss_kib(pid).context("reading the server's RSS")?;
            let open = load::open_idle(ep.echo, ctx.idle).await?;
            tokio::time::sleep(Duration::from_millis(settle)).await;
            let after = sys::rss_kib(pid).context("reading the server's RSS")?;
            drop(open);
            tokio::time::sleep(Duration::from_millis(settle)).await;
            vec![Some(after.saturating_sub(before) as f64 / ctx.idle as f64)]
        }
        "bulk" => vec![
            Some(
                load::bulk_upload(&plan, &ctx.ups, ep.bulk, 1)
                    .await?
                    .per_sec
                    / MB,
            ),
            Some(
                load::bulk_upload(&plan, &ctx.ups, ep.bulk, 4)
                    .await?
                    .per_sec
                    / MB,
            ),
            Some(
                load::bulk_download(&plan, ep.bulk, plan.window)
                    .await?
                    .per_sec
                    / MB,
            ),
        ],
        "reqresp" => {
            let one = load::request_response(&plan, ep.redis, 50, 1).await?;
            let sixteen = load::request_response(&plan, ep.redis, 50, 16).await?;
            vec![
                Some(one.per_sec),
                us(one.cpu_per_unit),
                Some(sixteen.per_sec),
            ]
        }
        "http" => vec![Some(
            load::http_keep_alive(&plan, ep.http, 50).await?.per_sec,
        )],
        "connreq" => {
            let rate = load::connection_per_request(&plan, ep.redis, 16).await?;
            vec![Some(rate.per_sec), us(rate.cpu_per_unit)]
        }
        "rtt" => {
            let times = load::round_trips(ep.echo, plan.round_trips).await?;
            let p50 = load::quantile(&times, 0.5).as_secs_f64() * 1e6;
            ctx.rtt_p50.insert(col.name.clone(), p50);
            vec![
                Some(p50),
                Some(load::quantile(&times, 0.99).as_secs_f64() * 1e6),
            ]
        }
        "lat0" => {
            let Some(s) = server else {
                return Ok(vec![None]);
            };
            for stream in ["upstream", "downstream"] {
                let attrs = json!({"latency": 0});
                s.add_toxic("bulk", &format!("lat0_{stream}"), "latency", stream, attrs)
                    .await?;
            }
            let rate = load::bulk_upload(&plan, &ctx.ups, ep.bulk, 1).await;
            for stream in ["upstream", "downstream"] {
                s.remove_toxic("bulk", &format!("lat0_{stream}")).await?;
            }
            vec![Some(rate?.per_sec / MB)]
        }
        "lat50" => {
            let Some(s) = server else {
                return Ok(vec![None, None, None]);
            };
            let base = ctx.rtt_p50.get(&col.name).copied().unwrap_or(0.0) / 1e3;
            let attrs = json!({"latency": 50});
            s.add_toxic("echo", "lat50", "latency", "downstream", attrs.clone())
                .await?;
            let times = load::parallel_round_trips(
                ep.echo,
                plan.delayed_connections,
                plan.delayed_round_trips,
                Duration::from_millis(50),
            )
            .await;
            s.remove_toxic("echo", "lat50").await?;
            let times = times?;
            let added = |q| load::quantile(&times, q).as_secs_f64() * 1e3 - base;
            s.add_toxic("bulk", "lat50", "latency", "downstream", attrs)
                .await?;
            let rate = load::bulk_download(&plan, ep.bulk, plan.window).await;
            s.remove_toxic("bulk", "lat50").await?;
            vec![
                Some(added(0.5)),
                Some(added(0.99)),
                Some(rate?.per_sec / MB),
            ]
        }
        "cpudelay" => {
            let Some(s) = server else {
                return Ok(vec![None]);
            };
            let attrs = json!({"latency": 10});
            s.add_toxic("redis", "lat10", "latency", "downstream", attrs)
                .await?;
            let rate = load::request_response(&plan, ep.redis, 50, 1).await;
            s.remove_toxic("redis", "lat10").await?;
            vec![us(rate?.cpu_per_unit)]
        }
        "pressure" => {
            // A process's allocator keeps what earlier rows used (10,000 idle connections), so
            // growth over it would read 0: faultline gets a fresh process for these rows.
            // (HAProxy allocates from pools it sizes at start; it keeps its process.)
            let fresh = match server {
                Some(s) if s.name == "faultline" => {
                    let (exe, workers) = &ctx.faultline;
                    let fresh = Server::spawn_faultline(exe, *workers).await?;
                    let bulk = fresh.create_proxy("bulk", ctx.ups.bulk).await?;
                    Some((fresh, bulk))
                }
                _ => None,
            };
            let (server, pid, bulk_addr) = match &fresh {
                Some((f, bulk)) => (Some(f), f.pid, *bulk),
                None => (server, col.pid, ep.bulk),
            };
            let Some(pid) = pid else {
                return Ok(vec![None, None]);
            };
            let ep = Endpoints {
                bulk: bulk_addr,
                ..ep
            };
            let mib = |p: load::Pressure| {
                if p.capped {
                    eprintln!(
                        "  {}: stopped the load at {} MiB over its start (cap)",
                        col.name,
                        p.peak_kib / 1024
                    );
                }
                p.peak_kib as f64 / 1024.0
            };
            let plain = load::bulk_upload_peak_rss(&plan, ep.bulk, pid, PRESSURE_CAP_KIB).await?;
            // The sink reads everything: let the proxy drain before the next load.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(s) = server else {
                return Ok(vec![Some(mib(plain)), None]);
            };
            let attrs = json!({"latency": 1000});
            s.add_toxic("bulk", "lat1000", "latency", "upstream", attrs)
                .await?;
            let delayed = load::bulk_upload_peak_rss(&plan, ep.bulk, pid, PRESSURE_CAP_KIB).await;
            s.remove_toxic("bulk", "lat1000").await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            vec![Some(mib(plain)), Some(mib(delayed?))]
        }
        "bandwidth" => {
            let Some(s) = server else {
                return Ok(vec![None]);
            };
            s.add_toxic(
                "bulk",
                "bw",
                "bandwidth",
                "downstream",
                json!({"rate": 1000}),
            )
            .await?;
            let rate = load::bulk_download(&plan, ep.bulk, plan.bandwidth_window).await;
            s.remove_toxic("bulk", "bw").await?;
            vec![Some(rate?.per_sec / 1e3)]
        }
        "churn" => {
            let window = plan.churn_window;
            let (api, integrity) =
                load::stream_and_check(ep.echo, plan.churn_connections, || async move {
                    let Some(s) = server else {
                        tokio::time::sleep(window).await;
                        return Ok(Vec::new());
                    };
                    // The API client runs on a thread and runtime of its own: on the load
                    // generator's runtime, its requests would wait behind thousands of
                    // streaming tasks and the delay measured would be the benchmark's.
                    let (name, api) = (s.name.clone(), s.api.clone());
                    tokio::task::spawn_blocking(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?
                            .block_on(toxic_churn(Server::api_only(&name, &api)?, window))
                    })
                    .await?
                })
                .await?;
            if let Some(problem) = &integrity.first_problem {
                eprintln!(
                    "  {}: {} of {} connections lost or altered bytes (wrote {}, echoed {}): {problem}",
                    col.name,
                    integrity.broken_connections,
                    plan.churn_connections,
                    integrity.written,
                    integrity.echoed
                );
            }
            if !api.is_empty() {
                eprintln!(
                    "  {}: {} API calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    col.name,
                    api.len(),
                    load::quantile(&api, 0.5).as_secs_f64() * 1e3,
                    load::quantile(&api, 0.99).as_secs_f64() * 1e3,
                    load::quantile(&api, 1.0).as_secs_f64() * 1e3
                );
            }
            let p99 = (!api.is_empty()).then(|| load::quantile(&api, 0.99).as_secs_f64() * 1e3);
            vec![p99, Some(integrity.broken_connections as f64)]
        }
        "httpmode" => {
            // faultline's own HTTP mode; other servers (and HAProxy in TCP mode) have none.
            let Some(s) = server.filter(|_| col.name == "faultline") else {
                return Ok(vec![None]);
            };
            let addr = s
                .create_proxy_with("httpmode", ctx.ups.http, json!({"protocol": "http"}))
                .await?;
            let rate = load::http_keep_alive(&plan, addr, 50).await;
            s.delete_proxy("httpmode").await?;
            vec![Some(rate?.per_sec)]
        }
        "drain" => {
            let Some(s) = server else {
                return Ok(vec![None]);
            };
            // As many live connections as the churn row streams on (1,000 in full mode).
            let addr = s.create_proxy("drain", ctx.ups.echo).await?;
            let open = load::open_idle(addr, plan.churn_connections).await?;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            // The reader runs on a thread and runtime of its own, as in the churn row.
            let (name, api, done) = (s.name.clone(), s.api.clone(), stop.clone());
            let reader = tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(api_reads(Server::api_only(&name, &api)?, done))
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.set_enabled("drain", false).await?;
            s.set_enabled("drain", true).await?;
            s.delete_proxy("drain").await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let times = reader.await??;
            drop(open);
            if !times.is_empty() {
                eprintln!(
                    "  {}: {} reads during the drains, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    col.name,
                    times.len(),
                    load::quantile(&times, 0.5).as_secs_f64() * 1e3,
                    load::quantile(&times, 0.99).as_secs_f64() * 1e3,
                    load::quantile(&times, 1.0).as_secs_f64() * 1e3
                );
            }
            vec![(!times.is_empty()).then(|| load::quantile(&times, 0.99).as_secs_f64() * 1e3)]
        }
        other => bail!("unknown group {other}"),
    })
}

/// Adds and removes a `latency 1 ms` toxic on the echo proxy (alternating streams) for `window`;
/// returns every call's duration, sorted.
async fn toxic_churn(s: Server, window: Duration) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    let deadline = Instant::now() + window;
    let mut round = 0u64;
    while Instant::now() < deadline {
        let stream = if round % 2 == 0 {
            "downstream"
        } else {
            "upstream"
        };
        let t = Instant::now();
        s.add_toxic("echo", "churn", "latency", stream, json!({"latency": 1}))
            .await?;
        times.push(t.elapsed());
        let t = Instant::now();
        s.remove_toxic("echo", "churn").await?;
        times.push(t.elapsed());
        round += 1;
    }
    times.sort();
    Ok(times)
}

/// Reads `GET /proxies` and `GET /metrics` in turn until `stop`; returns every read's duration,
/// sorted.
async fn api_reads(
    s: Server,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        s.list_proxies().await?;
        times.push(t.elapsed());
        let t = Instant::now();
        s.metrics().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

/// Removes every toxic a failed group may have left behind (errors ignored: most are absent).
async fn clean_toxics(server: &Server) {
    for (proxy, toxic) in [
        ("bulk", "lat0_upstream"),
        ("bulk", "lat0_downstream"),
        ("echo", "lat50"),
        ("bulk", "lat50"),
        ("bulk", "bw"),
        ("echo", "churn"),
        ("redis", "lat10"),
        ("bulk", "lat1000"),
    ] {
        let _ = server.remove_toxic(proxy, toxic).await;
    }
}

async fn run(args: Args) -> Result<bool> {
    let plan = Plan::new(args.quick);
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let mut caps = Vec::new();
    let wanted_idle = args.idle.unwrap_or(plan.idle);
    // This process holds a client and an upstream descriptor per idle connection; the faultline
    // child (which inherits the limit) a client-side and an upstream-side one.
    let fd_limit = sys::raise_fd_limit(2 * wanted_idle as u64 + 4096);
    let idle_fit = (fd_limit.saturating_sub(200) / 2) as usize;
    let idle = wanted_idle.min(idle_fit).max(1);
    if idle < wanted_idle {
        caps.push(format!(
            "idle connections capped at {idle} (asked {wanted_idle}): RLIMIT_NOFILE is {fd_limit} \
             and could not be raised further"
        ));
    }
    let (cpus, model) = sys::machine();
    let load_before = sys::load_average();
    println!(
        "faultline-bench: {} run, {rounds} round(s), on {cpus} CPUs ({model}), RLIMIT_NOFILE \
         {fd_limit}, load average {}",
        if args.quick { "quick" } else { "full" },
        load_before.as_deref().unwrap_or("unknown")
    );
    for cap in &caps {
        println!("  cap: {cap}");
    }

    let ups = Upstreams::start().await?;
    let direct = Endpoints {
        echo: ups.echo,
        bulk: ups.bulk,
        redis: ups.redis,
        http: ups.http,
    };
    let mut columns = vec![Column {
        name: "direct".into(),
        server: None,
        pid: None,
        endpoints: direct,
        _haproxy: None,
    }];
    let mut server_info = serde_json::Map::new();

    // HAProxy, with as many threads as faultline's runtime has workers (one per CPU).
    let workers = args.bins.workers.unwrap_or(cpus).max(1);
    let haproxy_exe = if args.bins.no_haproxy {
        None
    } else {
        args.bins.haproxy.clone().or_else(haproxy::find)
    };
    match haproxy_exe {
        None if args.bins.no_haproxy => println!("  haproxy: left out (--no-haproxy)"),
        None => {
            println!("  haproxy: NOT INSTALLED, carrying on without it (apt-get install haproxy)");
            caps.push("haproxy not installed: no HAProxy column".into());
        }
        Some(exe) => {
            let ports = [
                sys::free_port()?,
                sys::free_port()?,
                sys::free_port()?,
                sys::free_port()?,
            ];
            let routes = [
                ("echo", ports[0], ups.echo),
                ("bulk", ports[1], ups.bulk),
                ("redis", ports[2], ups.redis),
                ("http", ports[3], ups.http),
            ];
            // HAProxy asks for two descriptors per connection and fails to start if the limit
            // (which it inherits from us) is below that.
            let maxconn = (idle + 2_000).min((fd_limit as usize).saturating_sub(64) / 2);
            match Haproxy::start(&exe, workers, maxconn, &routes).await {
                Ok(h) => {
                    println!(
                        "  haproxy: {} (version {}, pid {}, nbthread {workers}, TCP mode)",
                        exe.display(),
                        h.version,
                        h.pid
                    );
                    server_info.insert(
                        "haproxy".into(),
                        json!({"binary": exe, "version": h.version, "pid": h.pid,
                            "nbthread": workers}),
                    );
                    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
                    columns.push(Column {
                        name: "haproxy".into(),
                        server: None,
                        pid: Some(h.pid),
                        endpoints: Endpoints {
                            echo: at(ports[0]),
                            bulk: at(ports[1]),
                            redis: at(ports[2]),
                            http: at(ports[3]),
                        },
                        _haproxy: Some(h),
                    });
                }
                Err(e) => {
                    println!("  haproxy: could not start ({e:#}), carrying on without it");
                    caps.push(format!("haproxy could not start: {e:#}"));
                }
            }
        }
    }

    let faultline_exe = args.bins.faultline()?;
    let mut wanted = vec![Server::spawn_faultline(&faultline_exe, args.bins.workers).await?];
    for spec in &args.servers {
        let Some((name, url)) = spec.split_once('=') else {
            bail!("--server wants NAME=URL, got {spec:?}");
        };
        wanted.push(Server::external(name, url)?);
    }
    for server in wanted {
        let version = server
            .version()
            .await
            .with_context(|| format!("{} at {} does not answer", server.name, server.api))?;
        let endpoints = Endpoints {
            echo: server.create_proxy("echo", ups.echo).await?,
            bulk: server.create_proxy("bulk", ups.bulk).await?,
            redis: server.create_proxy("redis", ups.redis).await?,
            http: server.create_proxy("http", ups.http).await?,
        };
        println!(
            "  {}: {} (API level {version}, pid {})",
            server.name,
            server.api,
            server.pid.map_or("unknown".into(), |p| p.to_string())
        );
        if server.pid.is_none() {
            caps.push(format!(
                "{}: its process could not be found from its API port, so no RSS or CPU rows",
                server.name
            ));
        }
        let mut info = json!({"api": server.api, "version": version, "pid": server.pid});
        if server.name == "faultline" {
            info["binary"] = json!(faultline_exe);
        }
        server_info.insert(server.name.clone(), info);
        columns.push(Column {
            name: server.name.clone(),
            pid: server.pid,
            server: Some(server),
            endpoints,
            _haproxy: None,
        });
    }
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let column_index = |name: &str| names.iter().position(|n| n == name);
    let versus = column_index("haproxy").zip(column_index("faultline"));

    for group in &args.only {
        if !GROUPS.iter().any(|(g, _, _)| g == group) {
            bail!("--only: unknown group {group:?}");
        }
    }
    let selected: Vec<(&str, &[&str], bool)> = GROUPS
        .iter()
        .filter(|(g, _, _)| args.only.is_empty() || args.only.iter().any(|o| o == g))
        .copied()
        .collect();
    let mut rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| selected.iter().any(|(_, ids, _)| ids.contains(&r.id)))
        .collect();
    // Every round's cell, per row and column.
    let mut measured: Vec<Vec<Vec<Cell>>> = vec![vec![Vec::new(); columns.len()]; rows.len()];
    let mut ctx = Ctx {
        plan,
        ups,
        idle,
        rtt_p50: HashMap::new(),
        faultline: (faultline_exe.clone(), args.bins.workers),
    };
    let started = Instant::now();
    // Each group runs every round before the next group, and every column in turn within a
    // round, so slow drifts of a shared machine fall on all columns alike.
    for (group, ids, once) in &selected {
        let group_rounds = if *once { 1 } else { rounds };
        for round in 0..group_rounds {
            for (c, col) in columns.iter().enumerate() {
                let attached = match (&args.attach, col.pid) {
                    (Some(template), Some(pid)) => {
                        Some(Attached::start(template, pid, &col.name, group, round).await?)
                    }
                    _ => None,
                };
                let t = Instant::now();
                let result = measure(group, col, &mut ctx).await;
                if let Some(attached) = attached {
                    attached.stop();
                }
                let cells: Vec<Cell> = match result {
                    Ok(values) => values
                        .into_iter()
                        .map(|v| v.map_or(Cell::NotApplicable, Cell::Value))
                        .collect(),
                    Err(e) => {
                        if let Some(s) = &col.server {
                            clean_toxics(s).await;
                        }
                        vec![Cell::Failed(format!("{e:#}")); ids.len()]
                    }
                };
                for (id, cell) in ids.iter().zip(cells) {
                    if let Some(r) = rows.iter().position(|r| r.id == *id) {
                        measured[r][c].push(cell);
                    }
                }
                eprintln!(
                    "  {group:<9} round {} {:<10} {:>6.2}s",
                    round + 1,
                    col.name,
                    t.elapsed().as_secs_f64()
                );
                // Lets closed sockets drain before the next measurement.
                tokio::time::sleep(Duration::from_millis(if args.quick { 20 } else { 200 })).await;
            }
        }
    }
    for (row, cells) in rows.iter_mut().zip(&measured) {
        row.cells = cells.iter().map(|rounds| report::median(rounds)).collect();
    }
    let elapsed = started.elapsed();
    for col in &columns {
        if let Some(s) = &col.server {
            for proxy in ["echo", "bulk", "redis", "http"] {
                let _ = s.delete_proxy(proxy).await;
            }
        }
    }
    let load_after = sys::load_average();

    let table = report::table(&rows, &names, versus);
    println!();
    println!("{table}");
    println!();
    println!(
        "measured in {:.1}s, median of {rounds} round(s) (memory rows: first round); idle \
         connections: {idle}; churn: {} streaming connections; load average before {}, after {}",
        elapsed.as_secs_f64(),
        ctx.plan.churn_connections,
        load_before.as_deref().unwrap_or("unknown"),
        load_after.as_deref().unwrap_or("unknown"),
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "machine": {"nproc": cpus, "cpu": model,
                "load_average_before": load_before, "load_average_after": load_after},
            "quick": args.quick,
            "rounds": rounds,
            "fd_limit": fd_limit,
            "idle_connections": idle,
            "churn_connections": ctx.plan.churn_connections,
            "pressure_connections": ctx.plan.pressure_connections,
            "caps": caps,
            "servers": Value::Object(server_info),
            "columns": names,
            "rows": report::json_rows(&rows, &names, &measured, versus),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }

    // Errors of the benchmark itself, of direct runs or of faultline fail the run; timing never
    // does. HAProxy's and other servers' errors are theirs and only reported.
    let ours = |c: usize| names[c] == "direct" || names[c] == "faultline";
    let mut ok = true;
    for row in &rows {
        for (c, cell) in row.cells.iter().enumerate().filter(|(c, _)| ours(*c)) {
            if let Cell::Failed(e) = cell {
                eprintln!("error: {} / {}: {e}", row.id, names[c]);
                ok = false;
            }
        }
    }
    if let Some(row) = rows.iter().find(|r| r.id == "churn_loss") {
        if row
            .cells
            .iter()
            .enumerate()
            .any(|(c, cell)| ours(c) && cell.value().unwrap_or(0.0) > 0.0)
        {
            eprintln!("error: bytes were lost or altered under toxic changes");
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = match args.command {
        Some(Command::Soak(ref soak)) => {
            let exe = args.bins.faultline()?;
            runtime.block_on(soak::run(soak, &exe))?
        }
        None => runtime.block_on(run(args))?,
    };
    // Sockets and the servers go with the runtime and the columns.
    drop(runtime);
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
