//! The load generator: every workload, against one address (an upstream directly, or a proxy
//! in front of it). Every loop is bounded by a deadline or a count, and every task is aborted
//! once its measurement window has closed, so a stalled proxy cannot hang the benchmark.

use crate::upstreams::{self, Upstreams};
use anyhow::{anyhow, bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long and how much: `--quick` or a full run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Traffic before a throughput window opens (slow start, buffers filling).
    pub warmup: Duration,
    /// A throughput window.
    pub window: Duration,
    /// Round trips for the small-message latency row.
    pub round_trips: usize,
    /// Idle connections held open for the memory row (before any cap).
    pub idle: usize,
    /// Connections and round trips each for the `latency` 50 ms row.
    pub delayed_connections: usize,
    pub delayed_round_trips: usize,
    /// Window of the `bandwidth` row (the rate is averaged over it).
    pub bandwidth_window: Duration,
    /// Streaming connections and how long toxics are added and removed under them.
    pub churn_connections: usize,
    pub churn_window: Duration,
    /// Most connections opened by the connection-per-request row, so TIME_WAIT sockets
    /// never exhaust loopback's ephemeral ports.
    pub max_new_connections: u64,
    /// Connections, and how long they push bulk data, for the peak-RSS rows.
    pub pressure_connections: usize,
    pub pressure_window: Duration,
    /// The proxy process of the column being measured, whose CPU time a window also counts.
    pub proxy_pid: Option<u32>,
}

/// What a throughput window measured.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Units (bytes, requests, connections) per second.
    pub per_sec: f64,
    /// CPU time (user + system) the proxy process spent per unit, in seconds, when known.
    pub cpu_per_unit: Option<f64>,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warmup: Duration::from_millis(30),
                window: Duration::from_millis(100),
                round_trips: 200,
                idle: 200,
                delayed_connections: 4,
                delayed_round_trips: 2,
                bandwidth_window: Duration::from_millis(200),
                churn_connections: 50,
                churn_window: Duration::from_millis(200),
                max_new_connections: 2_000,
                pressure_connections: 20,
                pressure_window: Duration::from_millis(1500),
                proxy_pid: None,
            }
        } else {
            Plan {
                warmup: Duration::from_millis(300),
                window: Duration::from_secs(3),
                round_trips: 20_000,
                idle: 10_000,
                delayed_connections: 25,
                delayed_round_trips: 20,
                bandwidth_window: Duration::from_secs(5),
                churn_connections: 1_000,
                churn_window: Duration::from_secs(4),
                max_new_connections: 20_000,
                pressure_connections: 200,
                pressure_window: Duration::from_secs(4),
                proxy_pid: None,
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connect to {addr} timed out"))?
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Counts what `tasks` report into `counter` over a window that opens after the warm-up, and
/// the proxy's CPU time over the same window. A task error ends the run with that error.
async fn windowed_rate(
    plan: &Plan,
    window: Duration,
    counter: &AtomicU64,
    stop: &AtomicBool,
    mut tasks: JoinSet<Result<()>>,
) -> Result<Rate> {
    let cpu = || plan.proxy_pid.and_then(crate::sys::cpu_seconds);
    let measure = async {
        tokio::time::sleep(plan.warmup).await;
        let (c0, t0, cpu0) = (counter.load(Ordering::Relaxed), Instant::now(), cpu());
        tokio::time::sleep(window).await;
        let (c1, t1, cpu1) = (counter.load(Ordering::Relaxed), Instant::now(), cpu());
        let units = (c1 - c0) as f64;
        Rate {
            per_sec: units / (t1 - t0).as_secs_f64(),
            cpu_per_unit: cpu0
                .zip(cpu1)
                .filter(|_| units > 0.0)
                .map(|(a, b)| (b - a) / units),
        }
    };
    // A task that fails early ends the run at once, with its error.
    let failed = async {
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        // Every task ended before the window closed: an error of its own kind.
        Err::<(), _>(anyhow!(
            "every connection ended before the measurement window closed"
        ))
    };
    let rate = tokio::select! {
        rate = measure => rate,
        failed = failed => { failed?; unreachable!() }
    };
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(rate)
}

/// Bulk upload: `streams` connections write as fast as they can; the sink counts what arrives
/// (bytes).
pub async fn bulk_upload(
    plan: &Plan,
    ups: &Upstreams,
    addr: SocketAddr,
    streams: usize,
) -> Result<Rate> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for _ in 0..streams {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            s.write_u8(upstreams::BULK_UPLOAD).await?;
            let buf = vec![0x42u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&buf).await?;
            }
            Ok(())
        });
    }
    windowed_rate(plan, plan.window, &ups.sunk, &stop, tasks).await
}

/// Bulk download over one connection, for `window` (bytes).
pub async fn bulk_download(plan: &Plan, addr: SocketAddr, window: Duration) -> Result<Rate> {
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    {
        let (stop, received) = (stop.clone(), received.clone());
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            s.write_u8(upstreams::BULK_DOWNLOAD).await?;
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    bail!("download ended early");
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    windowed_rate(plan, window, &received, &stop, tasks).await
}

/// Redis-style GETs over `connections` connections, `depth` requests in flight on each
/// (requests).
pub async fn request_response(
    plan: &Plan,
    addr: SocketAddr,
    connections: usize,
    depth: usize,
) -> Result<Rate> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let requests = upstreams::REDIS_REQUEST.repeat(depth);
    let replies = upstreams::REDIS_REPLY.repeat(depth);
    for _ in 0..connections {
        let (stop, done) = (stop.clone(), done.clone());
        let (requests, replies) = (requests.clone(), replies.clone());
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            let mut buf = vec![0u8; replies.len()];
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&requests).await?;
                s.read_exact(&mut buf).await?;
                if buf != replies {
                    bail!("wrong reply: {:?}", String::from_utf8_lossy(&buf));
                }
                done.fetch_add(depth as u64, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    windowed_rate(plan, plan.window, &done, &stop, tasks).await
}

/// Reads one HTTP/1.1 response with a Content-Length body from `s`, using `buf` as the
/// connection's read buffer (what follows the response stays in it).
async fn read_http_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = upstreams::find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            if !head.starts_with("HTTP/1.1 200") {
                bail!("unexpected response {head:?}");
            }
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| anyhow!("no Content-Length in {head:?}"))?;
            let total = end + 4 + length;
            while buf.len() < total {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    bail!("connection closed inside a response");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..total);
            return Ok(());
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before a response");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// HTTP/1.1 keep-alive GETs over `connections` connections, one request at a time on each
/// (requests).
pub async fn http_keep_alive(plan: &Plan, addr: SocketAddr, connections: usize) -> Result<Rate> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (stop, done) = (stop.clone(), done.clone());
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            let mut buf = Vec::with_capacity(4096);
            while !stop.load(Ordering::Relaxed) {
                s.write_all(upstreams::HTTP_REQUEST).await?;
                read_http_response(&mut s, &mut buf).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    windowed_rate(plan, plan.window, &done, &stop, tasks).await
}

/// `workers` loops of: connect, one GET, close (connections, each one request).
pub async fn connection_per_request(plan: &Plan, addr: SocketAddr, workers: usize) -> Result<Rate> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let budget = Arc::new(AtomicU64::new(plan.max_new_connections));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (stop, done, budget) = (stop.clone(), done.clone(), budget.clone());
        tasks.spawn(async move {
            let mut buf = vec![0u8; upstreams::REDIS_REPLY.len()];
            while !stop.load(Ordering::Relaxed) {
                if budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                    .is_err()
                {
                    // Out of connections for this run: idle until the window closes.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let mut s = connect(addr).await?;
                s.write_all(upstreams::REDIS_REQUEST).await?;
                s.read_exact(&mut buf).await?;
                if buf != upstreams::REDIS_REPLY {
                    bail!("wrong reply");
                }
                drop(s);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    windowed_rate(plan, plan.window, &done, &stop, tasks).await
}

/// Round-trip times of `count` 64-byte echoes over one connection, sorted.
pub async fn round_trips(addr: SocketAddr, count: usize) -> Result<Vec<Duration>> {
    let mut s = connect(addr).await?;
    let msg = [0x61u8; 64];
    let mut buf = [0u8; 64];
    let mut times = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut buf).await?;
        // The first tenth warms up caches and the connection.
        if i >= count / 10 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    Ok(times)
}

/// Round-trip times over `connections` connections, `each` round trips on each, concurrently.
/// Connection `i` starts `i / connections` of `spread` after the first, so the connections are
/// independent clients rather than one client in lockstep: in lockstep, every reply of a
/// round is released in the same instant and the measuring client reads them one after
/// another, which measures the client.
pub async fn parallel_round_trips(
    addr: SocketAddr,
    connections: usize,
    each: usize,
    spread: Duration,
) -> Result<Vec<Duration>> {
    let mut tasks = JoinSet::new();
    for i in 0..connections {
        let start = spread.mul_f64(i as f64 / connections as f64);
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            tokio::time::sleep(start).await;
            let msg = [0x62u8; 64];
            let mut buf = [0u8; 64];
            let mut times = Vec::with_capacity(each);
            for _ in 0..each {
                let t = Instant::now();
                s.write_all(&msg).await?;
                tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
                    .await
                    .map_err(|_| anyhow!("echo reply took over 10 s"))??;
                times.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(times)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    all.sort();
    Ok(all)
}

/// What a bulk load did to a proxy's memory.
#[derive(Debug, Clone, Copy)]
pub struct Pressure {
    /// The highest RSS sampled during the load, over the RSS just before it, in KiB.
    pub peak_kib: u64,
    /// The load was stopped early because the proxy passed `cap_kib`.
    pub capped: bool,
}

/// `plan.pressure_connections` connections upload as fast as they can through `addr` for
/// `plan.pressure_window`, while the RSS of process `pid` is sampled every 20 ms. The load
/// stops early if the proxy grows past `cap_kib` (the machine is shared).
pub async fn bulk_upload_peak_rss(
    plan: &Plan,
    addr: SocketAddr,
    pid: u32,
    cap_kib: u64,
) -> Result<Pressure> {
    let base = crate::sys::rss_kib(pid).ok_or_else(|| anyhow!("no RSS for pid {pid}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for _ in 0..plan.pressure_connections {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut s = connect(addr).await?;
            s.write_u8(upstreams::BULK_UPLOAD).await?;
            let buf = vec![0x43u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&buf).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    let deadline = Instant::now() + plan.pressure_window;
    let mut peak = base;
    let mut capped = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    while Instant::now() < deadline {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(joined) = tasks.join_next() => { joined??; }
        }
        let rss = crate::sys::rss_kib(pid).ok_or_else(|| anyhow!("no RSS for pid {pid}"))?;
        peak = peak.max(rss);
        if rss.saturating_sub(base) > cap_kib {
            capped = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(Pressure {
        peak_kib: peak.saturating_sub(base),
        capped,
    })
}

/// The `q`-quantile of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Opens `count` connections to the echo server at `addr`, each after one 1-byte round trip
/// (so a proxy has dialed its upstream), and returns them open.
pub async fn open_idle(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>> {
    let mut open = Vec::with_capacity(count);
    // A few hundred dials at a time stays well inside any listen backlog.
    for start in (0..count).step_by(200) {
        let mut batch = JoinSet::new();
        for _ in start..count.min(start + 200) {
            batch.spawn(async move {
                let mut s = connect(addr).await?;
                s.write_all(b"i").await?;
                let mut b = [0u8; 1];
                tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b))
                    .await
                    .map_err(|_| anyhow!("idle connection: no echo within 10 s"))??;
                Ok::<_, anyhow::Error>(s)
            });
        }
        while let Some(joined) = batch.join_next().await {
            open.push(joined??);
        }
    }
    Ok(open)
}

/// The byte at `offset` of connection `conn`'s stream in the churn row: any lost, duplicated
/// or reordered chunk shifts the pattern (chunks are not a multiple of its period).
fn pattern(conn: usize, offset: u64) -> u8 {
    ((offset % 251) as u8).wrapping_add(conn as u8)
}

/// What the churn row saw on its connections.
#[derive(Debug, Default)]
pub struct Integrity {
    pub written: u64,
    pub echoed: u64,
    /// Connections whose echo differed from what was written (content or length).
    pub broken_connections: usize,
    pub first_problem: Option<String>,
}

/// Streams patterned data through `addr` (an echo server or a proxy of one) on `connections`
/// connections, each writing 1 KiB every 20 ms and checking its echo byte by byte, while
/// `during` runs; then closes every stream and checks that each echoed exactly what it wrote.
pub async fn stream_and_check<F, Fut, T>(
    addr: SocketAddr,
    connections: usize,
    during: F,
) -> Result<(T, Integrity)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    const CHUNK: usize = 1024;
    const PERIOD: Duration = Duration::from_millis(20);
    let streams = open_idle(addr, connections).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (conn, s) in streams.into_iter().enumerate() {
        let stop = stop.clone();
        tasks.spawn(async move {
            let (mut r, mut w) = s.into_split();
            // The 1-byte probe of `open_idle` is still to be echoed... it was: read_exact took it.
            let writer = async move {
                let mut offset = 0u64;
                let mut ticker = tokio::time::interval(PERIOD);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut chunk = vec![0u8; CHUNK];
                while !stop.load(Ordering::Relaxed) {
                    ticker.tick().await;
                    for (i, b) in chunk.iter_mut().enumerate() {
                        *b = pattern(conn, offset + i as u64);
                    }
                    w.write_all(&chunk).await?;
                    offset += CHUNK as u64;
                }
                w.shutdown().await?;
                Ok::<u64, anyhow::Error>(offset)
            };
            let reader = async move {
                let mut offset = 0u64;
                let mut buf = vec![0u8; 16 * 1024];
                let mut problem = None;
                loop {
                    let n = r.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    if problem.is_none() {
                        if let Some(i) =
                            (0..n).find(|&i| buf[i] != pattern(conn, offset + i as u64))
                        {
                            problem = Some(format!(
                                "connection {conn}: wrong byte at offset {}",
                                offset + i as u64
                            ));
                        }
                    }
                    offset += n as u64;
                }
                Ok::<_, anyhow::Error>((offset, problem))
            };
            let (written, read) = tokio::join!(writer, reader);
            let (written, (echoed, problem)) = (written?, read?);
            Ok::<_, anyhow::Error>((written, echoed, problem))
        });
    }
    let result = during().await;
    stop.store(true, Ordering::Relaxed);
    let mut integrity = Integrity::default();
    // Every stream must end within a generous grace period; one that does not lost its end.
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            let (written, echoed, mut problem) = joined??;
            integrity.written += written;
            integrity.echoed += echoed;
            if problem.is_none() && written != echoed {
                problem = Some(format!("wrote {written} bytes, {echoed} echoed"));
            }
            if let Some(p) = problem {
                integrity.broken_connections += 1;
                integrity.first_problem.get_or_insert(p);
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(20), collect).await {
        Ok(r) => r?,
        Err(_) => {
            integrity.broken_connections += tasks.len();
            integrity
                .first_problem
                .get_or_insert_with(|| "streams did not end within 20 s".into());
            tasks.abort_all();
        }
    }
    Ok((result?, integrity))
}
