//! Criterion benchmarks of faultline's hot paths.
//!
//! - `chunk/<toxic>`: one 32 KiB piece (the pipeline's read size) through one live toxic's state
//!   machine, as `Half::run_chain` feeds it: a fresh `Piece` sharing one `Bytes` buffer, pushed
//!   into a reused output vector;
//! - `chain/<n>_noop`: the same piece through a chain of `n` toxics with the pipeline's
//!   two-vector hand-off (n = 0 is the empty chain every toxic-free connection runs);
//! - `roundtrip/<direct|proxy>`: a 64-byte echo round trip over loopback, straight to an echo
//!   server and through an embedded faultline proxy with no toxic; the difference is what the
//!   proxy adds per round trip.
//!
//! `cargo bench -p faultline --bench toxics` runs them all; add `-- chunk` to pick a group.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use faultline::registry::{NewProxy, Options, Registry};
use faultline::toxics::{self, Attributes, Cut, Piece, Toxic};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const CHUNK: usize = 32 * 1024;

/// Attributes per toxic type: values a test would use, chosen so that the toxic does its real
/// work on every piece (probabilities above 0, a limit that is not reached, a rate that is set).
fn bench_attributes(kind: &str) -> serde_json::Value {
    match kind {
        "latency" => json!({"latency": 50, "jitter": 5}),
        "bandwidth" => json!({"rate": 1000}),
        "slow_close" => json!({"delay": 100}),
        "timeout" => json!({"timeout": 1000}),
        "reset_peer" => json!({"timeout": 1000}),
        "slicer" => json!({"average_size": 1024, "size_variation": 256, "delay": 10}),
        "limit_data" => json!({"bytes": 1_i64 << 40}),
        "packet_loss" => json!({"probability": 0.01}),
        "drop" => json!({"probability": 0.01}),
        "corrupt" => json!({"probability": 0.001}),
        _ => json!({}),
    }
}

/// A live toxic of `kind`, through the same steps the API and a connection take.
fn live_toxic(kind: &str, rng: &mut SmallRng) -> Box<dyn Toxic> {
    let kind = toxics::lookup(kind).expect("known toxic type");
    let mut attrs = Attributes::defaults(kind);
    attrs
        .merge_json(&bench_attributes(kind.name))
        .expect("valid bench attributes");
    (kind.build)(&attrs).expect("buildable").instantiate(rng)
}

fn chunk_through_each_toxic(c: &mut Criterion) {
    let data = Bytes::from(vec![0x5a_u8; CHUNK]);
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    for kind in toxics::TYPES {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut toxic = live_toxic(kind.name, &mut rng);
        let mut out: Vec<Piece> = Vec::with_capacity(64);
        // Arrival instants move forward as in a real stream; a fixed base keeps it cheap.
        let t0 = Instant::now();
        group.bench_function(kind.name, |b| {
            b.iter(|| {
                out.clear();
                let cut = toxic.on_piece(Piece::new(data.clone(), t0), &mut out);
                if cut.is_some() {
                    // reset_peer cuts once armed; a fresh instance keeps measuring the data path.
                    toxic = live_toxic(kind.name, &mut rng);
                }
                black_box((&out, cut));
            })
        });
    }
    group.finish();
}

/// The pipeline's chain hand-off (`Half::run_chain`), over boxed toxics.
fn run_chain(
    stages: &mut [Box<dyn Toxic>],
    piece: Piece,
    scratch: &mut (Vec<Piece>, Vec<Piece>),
    output: &mut std::collections::VecDeque<Piece>,
) -> Option<Cut> {
    let mut cut_after = None;
    if stages.is_empty() {
        output.push_back(piece);
        return None;
    }
    let (current, next) = scratch;
    current.clear();
    current.push(piece);
    for toxic in stages.iter_mut() {
        next.clear();
        for piece in current.drain(..) {
            if let Some(cut) = toxic.on_piece(piece, next) {
                cut_after = Some(cut);
            }
        }
        std::mem::swap(current, next);
    }
    output.extend(current.drain(..));
    cut_after
}

fn chunk_through_chain(c: &mut Criterion) {
    let data = Bytes::from(vec![0x5a_u8; CHUNK]);
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    for n in [0usize, 1, 4] {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut stages: Vec<Box<dyn Toxic>> =
            (0..n).map(|_| live_toxic("noop", &mut rng)).collect();
        let mut scratch = (Vec::new(), Vec::new());
        let mut output = std::collections::VecDeque::new();
        let t0 = Instant::now();
        group.bench_function(format!("{n}_noop"), |b| {
            b.iter(|| {
                let cut = run_chain(
                    &mut stages,
                    Piece::new(data.clone(), t0),
                    &mut scratch,
                    &mut output,
                );
                black_box(output.pop_front());
                black_box(cut);
            })
        });
    }
    group.finish();
}

/// An echo server on a thread of its own, for as long as the process lives.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn round_trip(stream: &mut TcpStream, msg: &[u8; 64], buf: &mut [u8; 64]) {
    stream.write_all(msg).expect("write");
    stream.read_exact(buf).expect("read");
}

fn loopback_round_trip(c: &mut Criterion) {
    let echo = echo_server();
    // The proxy runs on its own runtime threads, as in the server binary.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let registry = Registry::new(Options::default());
    let view = runtime
        .block_on(registry.create(NewProxy {
            name: "bench".into(),
            listen: "127.0.0.1:0".into(),
            upstream: echo.to_string(),
            enabled: true,
            ..NewProxy::default()
        }))
        .expect("create proxy");

    let mut group = c.benchmark_group("roundtrip");
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    for (name, addr) in [("direct", echo.to_string()), ("proxy", view.listen.clone())] {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        group.bench_function(name, |b| b.iter(|| round_trip(&mut stream, &msg, &mut buf)));
    }
    group.finish();
    runtime.block_on(registry.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = chunk_through_each_toxic, chunk_through_chain, loopback_round_trip
}
criterion_main!(benches);
