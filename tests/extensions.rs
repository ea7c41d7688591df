//! Faults Toxiproxy cannot inject: connect-phase toxics, latency distributions, time-bounded
//! and intermittent toxics, and blast radius (targeting some connections only).

mod common;

use common::*;
use faultline::registry::Options;
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a fresh client sees within `limit`: a reply, a reset, an end, or nothing. A reset
/// that arrives while `connect` is still completing makes the connect itself fail
/// ("refused").
async fn probe(addr: std::net::SocketAddr, limit: Duration) -> &'static str {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(_) => return "refused",
    };
    let _ = s.write_all(b"?").await;
    let mut buf = [0u8; 1];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Err(_) => "silent",
        Ok(Ok(0)) => "closed",
        Ok(Ok(_)) => "reply",
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => "reset",
        Ok(Err(_)) => "error",
    }
}

/// slow_open: the connect succeeds at once, the first reply comes after the delay; open
/// connections are not slowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_open_delays_new_connections_only() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut old = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut old, b"warm").await;
    h.toxic(
        "p",
        json!({"type": "slow_open", "attributes": {"delay": 300}}),
    )
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(start.elapsed() < ms(200), "connect itself is not delayed");
    round_trip(&mut s, b"first").await;
    assert_between(start.elapsed(), ms(300), ms(1500));
    assert!(round_trip(&mut old, b"old").await < ms(250));
}

/// refuse: new clients are reset before any byte; open connections keep working; removing
/// the toxic lets clients in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_resets_new_connections_only() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut old = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut old, b"warm").await;
    h.toxic("p", json!({"name": "gone", "type": "refuse"}))
        .await;
    let seen = probe(addr, ms(2000)).await;
    assert!(seen == "reset" || seen == "refused", "{seen}");
    round_trip(&mut old, b"still here").await;
    h.delete("/proxies/p/toxics/gone").await;
    assert_eq!(probe(addr, ms(2000)).await, "reply");
}

/// blackhole: new clients are accepted and never answered nor closed; open connections keep
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_never_answers_new_connections() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut old = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut old, b"warm").await;
    h.toxic("p", json!({"name": "hole", "type": "blackhole"}))
        .await;
    assert_eq!(probe(addr, ms(400)).await, "silent");
    round_trip(&mut old, b"still here").await;
    h.delete("/proxies/p/toxics/hole").await;
    assert_eq!(probe(addr, ms(2000)).await, "reply");
}

/// limit_connections (refuse): only `limit` clients at a time; a freed slot is reusable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_connections_refuses_extra_clients() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"type": "limit_connections", "attributes": {"limit": 2}}),
    )
    .await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut a, b"a").await;
    round_trip(&mut b, b"b").await;
    // The reset can reach the client before its connect call has even returned.
    let seen = probe(addr, ms(2000)).await;
    assert!(seen == "reset" || seen == "refused", "{seen}");
    drop(a);
    // The slot frees once the proxy has seen `a` close; until then probes are refused.
    eventually("a freed slot admits a new client", || async {
        probe(addr, ms(2000)).await == "reply"
    })
    .await;
}

/// limit_connections (queue): an extra client waits until a slot frees, then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_connections_queues_extra_clients() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"type": "limit_connections", "attributes": {"limit": 1, "mode": "queue"}}),
    )
    .await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut a, b"a").await;
    let mut b = TcpStream::connect(addr).await.unwrap();
    b.write_all(b"b").await.unwrap();
    let mut reply = [0u8; 1];
    // Waiting is the behaviour under test: no reply may come while `a` holds the only slot.
    let held = tokio::time::timeout(ms(300), b.read(&mut reply)).await;
    assert!(held.is_err(), "the second client waits for a slot");
    drop(a);
    tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut reply))
        .await
        .expect("admitted once the slot frees")
        .unwrap();
    assert_eq!(&reply, b"b");
}

/// Latency with a distribution is accepted, shown and applied; plain latency toxics keep
/// exactly Toxiproxy's attributes. (The shape of each distribution is checked on many seeded
/// draws by the unit tests in `src/toxics/latency.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_distributions() {
    let h = Harness::with_options(Options { seed: Some(3) }).await;
    let addr = h.proxy("p", echo_server().await).await;
    let t = h
        .toxic(
            "p",
            json!({"type": "latency", "attributes": {"latency": 100, "jitter": 10, "distribution": "normal"}}),
        )
        .await;
    assert_eq!(
        t["attributes"],
        json!({"latency": 100, "jitter": 10, "distribution": "normal"})
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    for _ in 0..5 {
        // Four standard deviations either side of the latency, plus room for a busy machine.
        assert_between(round_trip(&mut s, b"n").await, ms(60), ms(1000));
    }
    let plain = h
        .toxic("p", json!({"type": "latency", "stream": "upstream"}))
        .await;
    assert_eq!(plain["attributes"], json!({"latency": 0, "jitter": 0}));
}

/// A toxic with `duration_ms` shows the time it has left and removes itself on time, also
/// from live connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_toxic_expires() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut events = h.server.registry().events().subscribe();
    let added = std::time::Instant::now();
    let t = h
        .toxic(
            "p",
            json!({"name": "brief", "type": "latency", "duration_ms": 600, "attributes": {"latency": 200}}),
        )
        .await;
    let left = t["remaining_ms"].as_u64().unwrap();
    assert!(left <= 600 && left > 300, "{left}");
    assert!(round_trip(&mut s, b"slow").await >= ms(200));
    let expired = next_event(&mut events, "toxic_expired").await;
    assert_eq!(expired.toxic.as_deref(), Some("brief"));
    assert_between(added.elapsed(), ms(600), ms(5000));
    // The event follows the change: the API and live connections have it already.
    assert_eq!(h.get("/proxies/p/toxics/brief").await.status, 404);
    assert!(round_trip(&mut s, b"fast").await < ms(200));
}

/// A toxic on a schedule flips between active and inactive, and traffic feels it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_toxic_flaps() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "flap", "type": "latency", "attributes": {"latency": 150},
               "schedule": {"on_ms": 400, "off_ms": 400}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut saw_on, mut saw_off, mut slow, mut fast) = (false, false, 0, 0);
    let start = Instant::now();
    while start.elapsed() < ms(2400) {
        let t = h.get("/proxies/p/toxics/flap").await.json();
        match t["active"].as_bool() {
            Some(true) => saw_on = true,
            Some(false) => saw_off = true,
            None => panic!("a scheduled toxic shows whether it is active: {t}"),
        }
        if round_trip(&mut s, b"x").await >= ms(150) {
            slow += 1;
        } else {
            fast += 1;
        }
    }
    assert!(saw_on && saw_off, "on {saw_on}, off {saw_off}");
    assert!(slow >= 1 && fast >= 1, "slow {slow}, fast {fast}");
}

/// A CIDR target limits a toxic to matching clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_by_client_address() {
    let h = Harness::start().await;
    let addr = h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "elsewhere", "type": "latency", "attributes": {"latency": 300},
               "target": {"cidrs": ["10.0.0.0/8"]}}),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut s, b"untouched").await < ms(300));
    let t = h
        .toxic(
            "p",
            json!({"name": "here", "type": "latency", "attributes": {"latency": 300},
                   "target": {"cidrs": ["127.0.0.0/8", "::1/128"]}}),
        )
        .await;
    assert_eq!(
        t["target"],
        json!({"cidrs": ["127.0.0.0/8", "::1/128"], "fraction": 1.0})
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut s, b"hit").await >= ms(300));
}

/// Which connections a fraction target picks is the same on every run with the same seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_fraction_is_deterministic_under_seed() {
    async fn pattern() -> Vec<bool> {
        let h = Harness::with_options(Options { seed: Some(99) }).await;
        let addr = h.proxy("p", echo_server().await).await;
        h.toxic(
            "p",
            json!({"type": "latency", "attributes": {"latency": 200}, "target": {"fraction": 0.5}}),
        )
        .await;
        let mut hits = Vec::new();
        for _ in 0..16 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            hits.push(round_trip(&mut s, b"?").await >= ms(200));
        }
        hits
    }
    let first = pattern().await;
    let hit = first.iter().filter(|h| **h).count();
    assert!((2..=14).contains(&hit), "{first:?}");
    assert_eq!(pattern().await, first);
}

/// Updating a timed toxic's attributes keeps its deadline; `"duration_ms": null` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_toxic_update_keeps_or_lifts_deadline() {
    let h = Harness::start().await;
    h.proxy("p", echo_server().await).await;
    h.toxic(
        "p",
        json!({"name": "t", "type": "latency", "duration_ms": 5000, "attributes": {"latency": 1}}),
    )
    .await;
    let r = h
        .post("/proxies/p/toxics/t", json!({"attributes": {"latency": 2}}))
        .await
        .json();
    let left = r["remaining_ms"].as_u64().expect("still timed");
    assert!(left <= 5000 && left > 2000, "{left}");
    assert_eq!(r["attributes"]["latency"], json!(2));
    let r = h
        .post("/proxies/p/toxics/t", json!({"duration_ms": null}))
        .await
        .json();
    assert!(r.get("remaining_ms").is_none(), "{r}");
    let r = h
        .post(
            "/proxies/p/toxics/t",
            json!({"schedule": {"on_ms": 1000, "off_ms": 1000}}),
        )
        .await
        .json();
    assert_eq!(r["schedule"], json!({"on_ms": 1000, "off_ms": 1000}));
    assert_eq!(r["active"], json!(true));
    let r = h
        .post("/proxies/p/toxics/t", json!({"schedule": null}))
        .await
        .json();
    assert!(
        r.get("schedule").is_none() && r.get("active").is_none(),
        "{r}"
    );
}
