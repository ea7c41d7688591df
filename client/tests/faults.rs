//! Faults as the code under test sees them: real sockets through an embedded faultline
//! server to a real echo service on 127.0.0.1.

mod common;

use common::{echo_server, round_trip};
use faultline_client::{Proxy, ProxyConfig, Server, Target, Toxic};
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// A server, an echo service and a proxy called `name` in front of it.
async fn proxied_echo(name: &str) -> (Server, Proxy) {
    let server = Server::start().await.unwrap();
    let upstream = echo_server().await;
    let proxy = server
        .create_proxy(ProxyConfig::new(name, upstream))
        .await
        .unwrap();
    (server, proxy)
}

/// The code under test: one request/reply exchange, surfacing I/O errors as they are.
async fn exchange(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    conn.write_all(b"ping").await?;
    let mut reply = vec![0u8; 4];
    let n = conn.read(&mut reply).await?;
    reply.truncate(n);
    Ok(reply)
}

/// Downstream latency of 300 ms makes every reply at least 300 ms late.
#[tokio::test]
async fn latency_delays_replies_by_at_least_the_configured_time() {
    let (_server, proxy) = proxied_echo("echo").await;
    proxy
        .add_toxic(Toxic::latency(Duration::from_millis(300)))
        .await
        .unwrap();

    let took = round_trip(proxy.listen_addr().unwrap()).await;

    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Latency in both directions adds up.
#[tokio::test]
async fn latency_upstream_and_downstream_add_up() {
    let (_server, proxy) = proxied_echo("echo").await;
    let delay = Duration::from_millis(150);
    proxy
        .add_toxic(Toxic::latency(delay).upstream())
        .await
        .unwrap();
    proxy
        .add_toxic(Toxic::latency(delay).downstream())
        .await
        .unwrap();

    let took = round_trip(proxy.listen_addr().unwrap()).await;

    assert!(took >= 2 * delay, "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A reset_peer toxic makes the code under test see "connection reset" on its next read.
#[tokio::test]
async fn reset_peer_is_observed_as_connection_reset() {
    let (_server, proxy) = proxied_echo("echo").await;
    proxy
        .add_toxic(Toxic::reset_peer(Duration::ZERO).upstream())
        .await
        .unwrap();

    let mut conn = TcpStream::connect(proxy.listen_addr().unwrap())
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), exchange(&mut conn))
        .await
        .expect("the reset did not arrive within 10 s");

    let err = outcome.expect_err("the exchange should fail");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// A refuse toxic turns new connections away while one opened before keeps working.
#[tokio::test]
async fn refuse_turns_away_new_connections_but_spares_open_ones() {
    let (_server, proxy) = proxied_echo("echo").await;
    let addr = proxy.listen_addr().unwrap();
    let mut before = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut before).await.unwrap(), b"ping");

    proxy.add_toxic(Toxic::refuse()).await.unwrap();

    // The reset may arrive before `connect` has even returned, failing the connect itself.
    if let Ok(mut after) = TcpStream::connect(addr).await {
        let refused = tokio::time::timeout(Duration::from_secs(10), exchange(&mut after))
            .await
            .expect("the refusal did not arrive within 10 s");
        assert!(
            !matches!(&refused, Ok(reply) if reply.as_slice() == b"ping"),
            "a new connection got through: {refused:?}"
        );
    }
    assert_eq!(exchange(&mut before).await.unwrap(), b"ping");
}

/// Dropping a guard removes its toxic: after `settle`, traffic is fast again.
#[tokio::test]
async fn dropped_guard_removes_its_toxic() {
    let (server, proxy) = proxied_echo("echo").await;
    let addr = proxy.listen_addr().unwrap();
    {
        let _slow = proxy
            .inject(Toxic::latency(Duration::from_secs(2)))
            .await
            .unwrap();
        assert_eq!(proxy.toxics().await.unwrap().len(), 1);
    }

    server.settle().await;

    assert!(proxy.toxics().await.unwrap().is_empty());
    let took = round_trip(addr).await;
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

/// A guard dropped while the test panics still removes its toxic.
#[tokio::test]
async fn guard_removes_its_toxic_when_the_test_body_panics() {
    let (server, proxy) = proxied_echo("echo").await;
    let body_proxy = proxy.clone();
    let outcome = tokio::spawn(async move {
        let _slow = body_proxy
            .inject(Toxic::latency(Duration::from_secs(2)))
            .await
            .unwrap();
        panic!("assertion failed in the code under test");
    })
    .await;
    assert!(outcome.unwrap_err().is_panic());

    server.settle().await;

    assert!(proxy.toxics().await.unwrap().is_empty());
}

/// `remove().await` ends the fault before it returns.
#[tokio::test]
async fn explicit_remove_ends_the_fault_when_it_returns() {
    let (_server, proxy) = proxied_echo("echo").await;
    let slow = proxy
        .inject(Toxic::latency(Duration::from_secs(2)))
        .await
        .unwrap();

    slow.remove().await.unwrap();

    let took = round_trip(proxy.listen_addr().unwrap()).await;
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

/// `with_toxic` applies the fault only inside the block and returns the block's output.
#[tokio::test]
async fn with_toxic_applies_only_inside_the_block() {
    let (_server, proxy) = proxied_echo("echo").await;
    let addr = proxy.listen_addr().unwrap();
    let delay = Duration::from_millis(1000);

    let inside = proxy
        .with_toxic(Toxic::latency(delay), round_trip(addr))
        .await
        .unwrap();
    let after = round_trip(addr).await;

    assert!(inside >= delay, "inside took {inside:?}");
    assert!(after < Duration::from_millis(800), "after took {after:?}");
}

/// While a proxy is down, connections are refused; afterwards the service is back.
#[tokio::test]
async fn with_down_refuses_connections_then_recovers() {
    let (_server, proxy) = proxied_echo("echo").await;
    let addr = proxy.listen_addr().unwrap();

    let refused = proxy
        .with_down(async { TcpStream::connect(addr).await.is_err() })
        .await
        .unwrap();

    assert!(refused, "a connection got through a disabled proxy");
    round_trip(addr).await;
}

/// A dropped down-guard enables the proxy again, on the same address.
#[tokio::test]
async fn dropped_down_guard_brings_the_proxy_back() {
    let (server, proxy) = proxied_echo("echo").await;
    let addr = proxy.listen_addr().unwrap();
    {
        let _down = proxy.down().await.unwrap();
        assert!(!server.proxy("echo").await.unwrap().is_enabled());
    }

    server.settle().await;

    assert!(server.proxy("echo").await.unwrap().is_enabled());
    round_trip(addr).await;
}

/// A toxic targeted at other client addresses leaves 127.0.0.1 untouched (faultline).
#[tokio::test]
async fn targeted_toxic_spares_clients_outside_its_cidrs() {
    let (_server, proxy) = proxied_echo("echo").await;
    proxy
        .add_toxic(Toxic::latency(Duration::from_secs(2)).target(Target::cidr("10.0.0.0/8")))
        .await
        .unwrap();

    let took = round_trip(proxy.listen_addr().unwrap()).await;

    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

/// The server's `/events` stream (server-sent events), read until a given event.
struct Events {
    response: reqwest::Response,
    pending: String,
}

impl Events {
    /// Subscribes; events from the moment this returns on are seen.
    async fn subscribe(server: &Server) -> Events {
        let response = reqwest::get(format!("{}/events", server.url()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Events {
            response,
            pending: String::new(),
        }
    }

    /// Waits (at most 10 s) for the next event of type `kind`; returns it.
    async fn next_of_type(&mut self, kind: &str) -> serde_json::Value {
        let wait = async {
            loop {
                while let Some(end) = self.pending.find("\n\n") {
                    let block: String = self.pending.drain(..end + 2).collect();
                    for data in block.lines().filter_map(|l| l.strip_prefix("data: ")) {
                        let event: serde_json::Value = serde_json::from_str(data).unwrap();
                        if event["type"] == kind {
                            return event;
                        }
                    }
                }
                let chunk = self.response.chunk().await.unwrap();
                let chunk = chunk.expect("the event stream stays open");
                self.pending.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("no {kind} event within 10 s"))
    }
}

/// A toxic given a lifetime removes itself once the lifetime is over, and not before
/// (faultline).
#[tokio::test]
async fn toxic_with_a_duration_removes_itself() {
    let (server, proxy) = proxied_echo("echo").await;
    let mut events = Events::subscribe(&server).await;
    let lifetime = Duration::from_millis(300);
    let added_at = Instant::now();
    let added = proxy
        .add_toxic(Toxic::noop().for_duration(lifetime))
        .await
        .unwrap();
    let remaining = added.remaining().expect("remaining_ms is reported");
    assert!(remaining <= lifetime, "{remaining:?}");

    let expired = events.next_of_type("toxic_expired").await;
    let lived = added_at.elapsed();
    assert_eq!(expired["toxic"], added.name.as_str(), "{expired}");
    assert!(lived >= lifetime, "removed after {lived:?}");
    assert!(lived < Duration::from_secs(5), "removed after {lived:?}");
    assert!(proxy.toxics().await.unwrap().is_empty());
}

/// Tests in one binary each get their own server: same proxy name, no conflict, no leaks.
#[tokio::test]
async fn servers_in_parallel_are_isolated() {
    let (a, b) = tokio::join!(proxied_echo("shared"), proxied_echo("shared"));
    let (server_a, proxy_a) = a;
    let (server_b, proxy_b) = b;
    assert_ne!(server_a.addr(), server_b.addr());

    proxy_a
        .add_toxic(Toxic::latency(Duration::from_millis(1000)))
        .await
        .unwrap();

    let (slow, fast) = tokio::join!(
        round_trip(proxy_a.listen_addr().unwrap()),
        round_trip(proxy_b.listen_addr().unwrap())
    );
    assert!(slow >= Duration::from_millis(1000), "slow took {slow:?}");
    assert!(fast < Duration::from_millis(800), "fast took {fast:?}");
    assert!(proxy_b.toxics().await.unwrap().is_empty());
    assert_eq!(server_b.proxies().await.unwrap().len(), 1);
}

/// What one of two concurrent tests measured through its own proxy.
struct Measured {
    reply: Vec<u8>,
    took: Duration,
    toxics: Vec<String>,
    proxies: usize,
}

/// Reads the echo of "ping": all four bytes, or fewer followed by end-of-stream.
async fn read_reply(conn: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4];
    while reply.len() < 4 {
        match conn.read(&mut chunk[..4 - reply.len()]).await.unwrap() {
            0 => break,
            n => reply.extend_from_slice(&chunk[..n]),
        }
    }
    reply
}

/// One of two concurrent tests: starts its own server with a proxy named "parallel", adds
/// `toxic`, and measures one exchange through that proxy. The barrier makes both tests pass
/// each step together, so each server, proxy and toxic is alive while the other test runs.
async fn concurrent_test(toxic: Toxic, barrier: Arc<Barrier>) -> Measured {
    let (server, proxy) = proxied_echo("parallel").await;
    barrier.wait().await;
    proxy.add_toxic(toxic).await.unwrap();
    barrier.wait().await;

    let started = Instant::now();
    let mut conn = TcpStream::connect(proxy.listen_addr().unwrap())
        .await
        .unwrap();
    conn.write_all(b"ping").await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut conn))
        .await
        .expect("the reply arrived within 10 s");
    let took = started.elapsed();
    let toxics = proxy.toxics().await.unwrap();
    let proxies = server.proxies().await.unwrap().len();

    // Neither server stops before the other test has measured.
    barrier.wait().await;
    server.stop().await.unwrap();
    Measured {
        reply,
        took,
        toxics: toxics.into_iter().map(|t| t.name).collect(),
        proxies,
    }
}

/// Two tests running at the same time, each with its own embedded server and a proxy of the
/// same name: each one's toxic shapes only its own traffic. One adds 1 s of latency and gets
/// the whole reply late; the other cuts replies after 2 bytes and gets them cut, but at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tests_with_one_proxy_name_keep_their_toxics_apart() {
    let barrier = Arc::new(Barrier::new(2));
    let delay = Duration::from_millis(1000);
    let slow = tokio::spawn(concurrent_test(
        Toxic::latency(delay).name("one"),
        barrier.clone(),
    ));
    let cut = tokio::spawn(concurrent_test(Toxic::limit_data(2).name("two"), barrier));
    // A panic in either fails the test at once instead of leaving the other at a barrier.
    let (slow, cut) = tokio::try_join!(slow, cut).unwrap();

    assert_eq!(slow.reply, b"ping", "the other test's limit_data leaked in");
    assert!(slow.took >= delay, "slow took {:?}", slow.took);
    assert_eq!((slow.toxics, slow.proxies), (vec!["one".to_string()], 1));

    assert_eq!(cut.reply, b"pi", "the limit_data was not applied");
    assert!(
        cut.took < Duration::from_millis(800),
        "the other test's latency leaked in: {:?}",
        cut.took
    );
    assert_eq!((cut.toxics, cut.proxies), (vec!["two".to_string()], 1));
}
