//! Faults as the code under test sees them: real sockets through an embedded faultline
//! server to a real echo service on 127.0.0.1.

mod common;

use common::{echo_server, round_trip};
use faultline_client::{Proxy, ProxyConfig, Server, Target, Toxic};
use std::io::ErrorKind;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// A toxic given a lifetime removes itself (faultline).
#[tokio::test]
async fn toxic_with_a_duration_removes_itself() {
    let (_server, proxy) = proxied_echo("echo").await;
    let added = proxy
        .add_toxic(Toxic::noop().for_duration(Duration::from_millis(300)))
        .await
        .unwrap();
    let remaining = added.remaining().expect("remaining_ms is reported");
    assert!(remaining <= Duration::from_millis(300), "{remaining:?}");

    let mut gone = false;
    for _ in 0..100 {
        if proxy.toxics().await.unwrap().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the toxic was still there after 5 s");
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

/// First of two tests that run in parallel with the same proxy name (see the next one).
#[tokio::test]
async fn parallel_test_one_sees_only_its_own_toxic() {
    let (server, proxy) = proxied_echo("parallel").await;
    proxy
        .add_toxic(Toxic::latency(Duration::from_millis(100)).name("one"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let names: Vec<String> = server
        .proxy("parallel")
        .await
        .unwrap()
        .info()
        .toxics
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, ["one"]);
}

/// Second of two tests that run in parallel with the same proxy name.
#[tokio::test]
async fn parallel_test_two_sees_only_its_own_toxic() {
    let (server, proxy) = proxied_echo("parallel").await;
    proxy
        .add_toxic(Toxic::bandwidth(100).name("two"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let names: Vec<String> = server
        .proxy("parallel")
        .await
        .unwrap()
        .info()
        .toxics
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, ["two"]);
}
