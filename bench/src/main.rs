//! faultline-bench: a reproducible loopback benchmark of faultline against direct connections
//! and any other Toxiproxy-API server. See `bench/README.md`.

#![forbid(unsafe_code)]

mod load;
mod report;
mod servers;
mod sys;
mod upstreams;

use anyhow::{bail, Context, Result};
use clap::Parser;
use load::Plan;
use report::{Cell, Goal, Row};
use serde_json::{json, Value};
use servers::Server;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use upstreams::Upstreams;

#[derive(Parser, Debug)]
#[command(about = "Loopback benchmark: direct vs faultline vs other Toxiproxy-API servers")]
struct Args {
    /// A few seconds in all, with small counts (a smoke test: never fails on timing).
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Another Toxiproxy-API server to measure, e.g. `toxiproxy=http://127.0.0.1:8474`.
    #[arg(long = "server", value_name = "NAME=URL")]
    servers: Vec<String>,
    /// Idle connections for the memory row (default 10,000; 200 with --quick).
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Only these groups of rows (comma-separated): idle, bulk, reqresp, http, connreq, rtt,
    /// lat0, lat50, bandwidth, churn. Useful to profile one workload.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    only: Vec<String>,
    /// Internal: run faultline's API in this process (the benchmark's child).
    #[arg(long, hide = true)]
    serve_faultline: bool,
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
    server: Option<Server>,
    endpoints: Endpoints,
}

/// Every row, in the order of the table.
fn rows() -> Vec<Row> {
    let row = |id, title, unit, goal| Row {
        id,
        title,
        unit,
        goal,
        cells: Vec::new(),
    };
    vec![
        row(
            "bulk1",
            "bulk upload, 1 stream, no toxic",
            "MB/s",
            Goal::RatioToDirect(0.85),
        ),
        row(
            "bulk4",
            "bulk upload, 4 streams, no toxic",
            "MB/s",
            Goal::RatioToDirect(0.85),
        ),
        row(
            "download",
            "bulk download, 1 stream, no toxic",
            "MB/s",
            Goal::Info,
        ),
        row(
            "req1",
            "request/response, 50 conns, unpipelined",
            "req/s",
            Goal::RatioToDirect(0.75),
        ),
        row(
            "req16",
            "request/response, 50 conns, pipelined 16",
            "req/s",
            Goal::RatioToDirect(0.8),
        ),
        row(
            "http",
            "HTTP keep-alive, 50 conns",
            "req/s",
            Goal::RatioToDirect(0.7),
        ),
        row(
            "connreq",
            "new connection per request, 16 workers",
            "req/s",
            Goal::RatioToDirect(0.7),
        ),
        row(
            "rtt_p50",
            "round trip, 1 conn, 64 B, p50",
            "µs",
            Goal::AtMostDirectPlus(25.0),
        ),
        row("rtt_p99", "round trip, 1 conn, 64 B, p99", "µs", Goal::Info),
        row(
            "idle_mem",
            "RSS per idle proxied connection",
            "KiB",
            Goal::AtMost(8.0),
        ),
        row(
            "lat0",
            "bulk upload, latency 0 ms both streams",
            "MB/s",
            Goal::RatioToRow("bulk1", 0.8),
        ),
        row(
            "lat50_p50",
            "latency 50 ms downstream: added delay p50",
            "ms",
            Goal::Within(50.0, 50.5),
        ),
        row(
            "lat50_p99",
            "latency 50 ms downstream: added delay p99",
            "ms",
            Goal::Within(50.0, 50.5),
        ),
        row(
            "lat50_bulk",
            "bulk download, latency 50 ms downstream",
            "MB/s",
            Goal::RatioToRow("download", 0.8),
        ),
        row(
            "bandwidth",
            "bandwidth 1000 KB/s: achieved rate",
            "KB/s",
            Goal::Within(990.0, 1010.0),
        ),
        row(
            "churn_api",
            "toxic add/remove under streaming conns: API p99",
            "ms",
            Goal::AtMost(10.0),
        ),
        row(
            "churn_loss",
            "same: connections that lost or altered bytes",
            "conns",
            Goal::Zero,
        ),
    ]
}

/// The groups of rows measured together, in running order (memory first, on a fresh server).
const GROUPS: &[(&str, &[&str])] = &[
    ("idle", &["idle_mem"]),
    ("bulk", &["bulk1", "bulk4", "download"]),
    ("reqresp", &["req1", "req16"]),
    ("http", &["http"]),
    ("connreq", &["connreq"]),
    ("rtt", &["rtt_p50", "rtt_p99"]),
    ("lat0", &["lat0"]),
    ("lat50", &["lat50_p50", "lat50_p99", "lat50_bulk"]),
    ("bandwidth", &["bandwidth"]),
    ("churn", &["churn_api", "churn_loss"]),
];

struct Ctx {
    plan: Plan,
    ups: Upstreams,
    idle: usize,
    /// Each column's no-toxic round-trip p50 (µs), the base of the added-delay rows.
    rtt_p50: HashMap<String, f64>,
}

const MB: f64 = 1e6;

/// Measures one group for one column; `None` marks a row that does not apply to it.
async fn measure(group: &str, col: &Column, ctx: &mut Ctx) -> Result<Vec<Option<f64>>> {
    let plan = ctx.plan.clone();
    let ep = col.endpoints;
    let server = col.server.as_ref();
    Ok(match group {
        "idle" => {
            let Some(pid) = server.and_then(|s| s.pid) else {
                return Ok(vec![None]);
            };
            let settle = if plan.idle < 1000 { 100 } else { 1000 };
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
            Some(load::bulk_upload(&plan, &ctx.ups, ep.bulk, 1).await? / MB),
            Some(load::bulk_upload(&plan, &ctx.ups, ep.bulk, 4).await? / MB),
            Some(load::bulk_download(&plan, ep.bulk, plan.window).await? / MB),
        ],
        "reqresp" => vec![
            Some(load::request_response(&plan, ep.redis, 50, 1).await?),
            Some(load::request_response(&plan, ep.redis, 50, 16).await?),
        ],
        "http" => vec![Some(load::http_keep_alive(&plan, ep.http, 50).await?)],
        "connreq" => vec![Some(
            load::connection_per_request(&plan, ep.redis, 16).await?,
        )],
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
            vec![Some(rate? / MB)]
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
            )
            .await;
            s.remove_toxic("echo", "lat50").await?;
            let times = times?;
            let added = |q| load::quantile(&times, q).as_secs_f64() * 1e3 - base;
            s.add_toxic("bulk", "lat50", "latency", "downstream", attrs)
                .await?;
            let rate = load::bulk_download(&plan, ep.bulk, plan.window).await;
            s.remove_toxic("bulk", "lat50").await?;
            vec![Some(added(0.5)), Some(added(0.99)), Some(rate? / MB)]
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
            vec![Some(rate? / 1e3)]
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

/// Removes every toxic a failed group may have left behind (errors ignored: most are absent).
async fn clean_toxics(server: &Server) {
    for (proxy, toxic) in [
        ("bulk", "lat0_upstream"),
        ("bulk", "lat0_downstream"),
        ("echo", "lat50"),
        ("bulk", "lat50"),
        ("bulk", "bw"),
        ("echo", "churn"),
    ] {
        let _ = server.remove_toxic(proxy, toxic).await;
    }
}

async fn run(args: Args) -> Result<bool> {
    let plan = Plan::new(args.quick);
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
    println!(
        "faultline-bench: {} run on {cpus} CPUs ({model}), RLIMIT_NOFILE {fd_limit}",
        if args.quick { "quick" } else { "full" }
    );
    for cap in &caps {
        println!("  cap: {cap}");
    }

    let ups = Upstreams::start().await?;
    let mut columns = vec![Column {
        name: "direct".into(),
        server: None,
        endpoints: Endpoints {
            echo: ups.echo,
            bulk: ups.bulk,
            redis: ups.redis,
            http: ups.http,
        },
    }];
    let mut server_info = serde_json::Map::new();
    let mut wanted = vec![Server::spawn_faultline()?];
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
                "{}: its process could not be found from its API port, so no RSS row",
                server.name
            ));
        }
        server_info.insert(
            server.name.clone(),
            json!({"api": server.api, "version": version, "pid": server.pid}),
        );
        columns.push(Column {
            name: server.name.clone(),
            server: Some(server),
            endpoints,
        });
    }
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();

    for group in &args.only {
        if !GROUPS.iter().any(|(g, _)| g == group) {
            bail!("--only: unknown group {group:?}");
        }
    }
    let selected: Vec<(&str, &[&str])> = GROUPS
        .iter()
        .filter(|(g, _)| args.only.is_empty() || args.only.iter().any(|o| o == g))
        .copied()
        .collect();
    let mut rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| selected.iter().any(|(_, ids)| ids.contains(&r.id)))
        .collect();
    for row in &mut rows {
        row.cells = vec![Cell::NotApplicable; columns.len()];
    }
    let mut ctx = Ctx {
        plan,
        ups,
        idle,
        rtt_p50: HashMap::new(),
    };
    let started = Instant::now();
    for (group, ids) in &selected {
        for (c, col) in columns.iter().enumerate() {
            let t = Instant::now();
            let result = measure(group, col, &mut ctx).await;
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
                if let Some(row) = rows.iter_mut().find(|r| r.id == *id) {
                    row.cells[c] = cell;
                }
            }
            eprintln!(
                "  {group:<9} {:<10} {:>6.2}s",
                col.name,
                t.elapsed().as_secs_f64()
            );
            // Lets closed sockets drain before the next measurement.
            tokio::time::sleep(Duration::from_millis(if args.quick { 20 } else { 200 })).await;
        }
    }
    let elapsed = started.elapsed();
    for col in &columns {
        if let Some(s) = &col.server {
            for proxy in ["echo", "bulk", "redis", "http"] {
                let _ = s.delete_proxy(proxy).await;
            }
        }
    }

    let table = report::table(&rows, &names);
    println!();
    println!("{table}");
    println!();
    println!(
        "measured in {:.1}s; idle connections: {idle}; churn: {} streaming connections",
        elapsed.as_secs_f64(),
        ctx.plan.churn_connections
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "machine": {"nproc": cpus, "cpu": model},
            "quick": args.quick,
            "fd_limit": fd_limit,
            "idle_connections": idle,
            "churn_connections": ctx.plan.churn_connections,
            "caps": caps,
            "servers": Value::Object(server_info),
            "columns": names,
            "rows": report::json_rows(&rows, &names),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }

    // Errors of the benchmark itself, of direct runs or of faultline fail the run; timing never
    // does. Another server's errors are its own and only reported.
    let mut ok = true;
    for row in &rows {
        for (c, cell) in row.cells.iter().enumerate().take(2) {
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
            .take(2)
            .any(|c| c.value().unwrap_or(0.0) > 0.0)
        {
            eprintln!("error: bytes were lost or altered under toxic changes");
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.serve_faultline {
        return servers::serve_faultline_child();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = runtime.block_on(run(args))?;
    // Sockets and the faultline child go with the runtime and the columns.
    drop(runtime);
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
