//! The management API through the typed client, against an embedded faultline server.

mod common;

use common::echo_server;
use faultline_client::{
    Client, Distribution, ProxyConfig, ProxyUpdate, Schedule, Server, Stream, Target, Toxic,
    ToxicKind, ToxicUpdate,
};
use std::time::Duration;

/// A proxy created on port 0 reports the real address it listens on.
#[tokio::test]
async fn proxy_on_port_zero_reports_its_real_address() {
    let server = Server::start().await.unwrap();

    let proxy = server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:5432"))
        .await
        .unwrap();

    let addr = proxy.listen_addr().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
}

/// Create, get, list, update and delete a proxy.
#[tokio::test]
async fn proxy_lifecycle() {
    let server = Server::start().await.unwrap();
    let upstream = echo_server().await;
    server
        .create_proxy(ProxyConfig::new("b", upstream))
        .await
        .unwrap();
    server
        .create_proxy(ProxyConfig::new("a", upstream).disabled())
        .await
        .unwrap();

    let names: Vec<String> = server
        .proxies()
        .await
        .unwrap()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let mut a = server.proxy("a").await.unwrap();
    assert!(!a.is_enabled());
    a.enable().await.unwrap();
    assert!(a.is_enabled());
    a.update(ProxyUpdate {
        upstream: Some("127.0.0.1:9".into()),
        ..ProxyUpdate::default()
    })
    .await
    .unwrap();
    assert_eq!(server.proxy("a").await.unwrap().upstream(), "127.0.0.1:9");
    assert!(!a.toggle().await.unwrap());

    a.delete().await.unwrap();
    assert!(server.proxy("a").await.unwrap_err().is_not_found());
}

/// Server errors keep their HTTP status and message.
#[tokio::test]
async fn api_errors_keep_status_and_message() {
    let server = Server::start().await.unwrap();
    let missing = server.proxy("nope").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    assert_eq!(missing.to_string(), "proxy not found (HTTP 404)");

    server
        .create_proxy(ProxyConfig::new("x", "127.0.0.1:9"))
        .await
        .unwrap();
    let taken = server
        .create_proxy(ProxyConfig::new("x", "127.0.0.1:9"))
        .await
        .unwrap_err();
    assert!(taken.is_conflict(), "{taken}");
    assert!(taken.to_string().contains("proxy already exists"));
}

/// A server that is not there gives a transport error, not a hang.
#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let err = Client::new(&format!("http://{addr}"))
        .unwrap()
        .version()
        .await
        .unwrap_err();

    assert!(err.is_unreachable(), "{err}");
}

/// Every typed toxic is accepted and reads back as the same kind.
#[tokio::test]
async fn typed_toxics_round_trip() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("all", "127.0.0.1:9"))
        .await
        .unwrap();
    let ms = Duration::from_millis;
    let toxics = [
        Toxic::latency(ms(100))
            .jitter(ms(10))
            .distribution(Distribution::Normal),
        Toxic::bandwidth(64),
        Toxic::slow_close(ms(50)),
        Toxic::timeout(ms(1000)),
        Toxic::reset_peer(ms(20)),
        Toxic::slicer(16, 4, Duration::from_micros(500)),
        Toxic::limit_data(1024),
        Toxic::packet_loss(0.25).rto(ms(300)),
        Toxic::drop(0.5),
        Toxic::corrupt(0.01),
        Toxic::noop(),
        Toxic::slow_open(ms(40)),
        Toxic::refuse(),
        Toxic::blackhole(),
        Toxic::limit_connections(3).queue_excess(),
    ];
    for (i, toxic) in toxics.into_iter().enumerate() {
        let toxic = toxic.name(format!("t{i}")).upstream().toxicity(0.5);
        let added = proxy.add_toxic(toxic.clone()).await.unwrap();
        assert_eq!(&added.kind(), toxic.kind(), "{}", added.type_name);
        assert_eq!(added.stream, Stream::Upstream);
        assert_eq!(added.toxicity, 0.5);
        assert_eq!(proxy.toxic(&added.name).await.unwrap(), added);
    }
    assert_eq!(proxy.toxics().await.unwrap().len(), 15);
}

/// The escape hatch sends any type with raw attributes.
#[tokio::test]
async fn custom_toxic_sends_raw_attributes() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("raw", "127.0.0.1:9"))
        .await
        .unwrap();

    let added = proxy
        .add_toxic(Toxic::custom("latency", serde_json::json!({"latency": 42})))
        .await
        .unwrap();
    assert_eq!(added.attributes["latency"], 42);

    let bad = proxy
        .add_toxic(Toxic::custom("no_such_toxic", serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400));
    assert!(bad.to_string().contains("invalid toxic type"), "{bad}");
}

/// Updates merge attributes; removal deletes; a default name is `<type>_<stream>`.
#[tokio::test]
async fn toxic_update_merges_and_remove_deletes() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("p", "127.0.0.1:9"))
        .await
        .unwrap();
    let added = proxy
        .add_toxic(Toxic::latency(Duration::from_millis(100)).jitter(Duration::from_millis(10)))
        .await
        .unwrap();
    assert_eq!(added.name, "latency_downstream");

    let updated = proxy
        .update_toxic(
            &added.name,
            ToxicUpdate::new().attribute("latency", 500).toxicity(0.25),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.kind(),
        ToxicKind::Latency {
            latency: Duration::from_millis(500),
            jitter: Duration::from_millis(10),
            distribution: None
        }
    );
    assert_eq!(updated.toxicity, 0.25);

    let replaced = proxy
        .update_toxic(&added.name, Toxic::latency(Duration::from_millis(7)))
        .await
        .unwrap();
    assert_eq!(replaced.attributes["latency"], 7);
    assert_eq!(replaced.attributes["jitter"], 0);

    proxy.remove_toxic(&added.name).await.unwrap();
    assert!(proxy.toxic(&added.name).await.unwrap_err().is_not_found());
}

/// Extensions come back in responses: target, remaining time, schedule and whether active.
#[tokio::test]
async fn faultline_extensions_are_reported() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("ext", "127.0.0.1:9"))
        .await
        .unwrap();

    let added = proxy
        .add_toxic(
            Toxic::drop(0.1)
                .target(Target::cidr("10.0.0.0/8").fraction(0.5))
                .for_duration(Duration::from_secs(60))
                .schedule(Schedule::new(
                    Duration::from_secs(30),
                    Duration::from_secs(30),
                )),
        )
        .await
        .unwrap();

    let target = added.target.clone().expect("target reported");
    assert_eq!(target.cidrs, ["10.0.0.0/8"]);
    assert_eq!(target.fraction, Some(0.5));
    let remaining = added.remaining().expect("remaining reported");
    assert!(remaining > Duration::from_secs(50) && remaining <= Duration::from_secs(60));
    assert_eq!(
        added.schedule,
        Some(Schedule::new(
            Duration::from_secs(30),
            Duration::from_secs(30)
        ))
    );
    assert_eq!(added.active, Some(true));

    let cleared = proxy
        .update_toxic(
            &added.name,
            ToxicUpdate::new().clear_duration().clear_target(),
        )
        .await
        .unwrap();
    assert_eq!(cleared.remaining_ms, None);
    assert_eq!(cleared.target, None);
}

/// Reset removes every toxic and enables every proxy.
#[tokio::test]
async fn reset_clears_toxics_and_enables_proxies() {
    let server = Server::start().await.unwrap();
    let mut proxy = server
        .create_proxy(ProxyConfig::new("r", "127.0.0.1:9"))
        .await
        .unwrap();
    proxy.add_toxic(Toxic::noop()).await.unwrap();
    proxy.disable().await.unwrap();

    server.reset().await.unwrap();

    proxy.refresh().await.unwrap();
    assert!(proxy.is_enabled());
    assert!(proxy.info().toxics.is_empty());
}

/// Populate creates several proxies at once and keeps unchanged ones.
#[tokio::test]
async fn populate_creates_and_keeps() {
    let server = Server::start().await.unwrap();
    let first = server
        .populate(vec![
            ProxyConfig::new("one", "127.0.0.1:9"),
            ProxyConfig::new("two", "127.0.0.1:9").disabled(),
        ])
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let one = &first[0];
    one.add_toxic(Toxic::noop()).await.unwrap();

    let again = server
        .populate(vec![
            ProxyConfig::new("one", "127.0.0.1:9").listen(one.listen())
        ])
        .await
        .unwrap();

    assert_eq!(again[0].info().toxics.len(), 1);
    assert_eq!(server.proxies().await.unwrap().len(), 2);
}

/// The version is a Toxiproxy 2.x API level.
#[tokio::test]
async fn version_is_toxiproxy_2() {
    let server = Server::start().await.unwrap();
    assert!(server.version().await.unwrap().starts_with("2."));
}
