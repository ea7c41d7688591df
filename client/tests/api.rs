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

/// A server with a proxy called `db` (its upstream is never dialled).
async fn server_with_db() -> (Server, faultline_client::Proxy) {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:5432"))
        .await
        .unwrap();
    (server, proxy)
}

/// A misspelled attribute of a known type is refused before anything is sent, naming the
/// key and the valid ones; the server never sees the toxic.
#[tokio::test]
async fn unknown_attribute_is_refused_before_sending() {
    let (_server, proxy) = server_with_db().await;

    let err = proxy
        .add_toxic(Toxic::custom(
            "bandwidth",
            serde_json::json!({"rate_kb": 10}),
        ))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "unknown attribute \"rate_kb\" for bandwidth; expected one of: rate"
    );
    assert!(proxy.toxics().await.unwrap().is_empty());
}

/// Attribute names match in any case before sending, as the server matches them: a
/// `LATENCY` attribute is sent and the server applies it.
#[tokio::test]
async fn attribute_names_match_in_any_case() {
    let (_server, proxy) = server_with_db().await;

    let toxic = proxy
        .add_toxic(Toxic::custom("latency", serde_json::json!({"LATENCY": 5})))
        .await
        .unwrap();

    assert_eq!(toxic.attributes["latency"], 5);
}

/// An update's raw attribute is checked against the live toxic's type, through the proxy
/// and through the guard; the toxic keeps its value.
#[tokio::test]
async fn unknown_attribute_in_an_update_is_refused() {
    let (_server, proxy) = server_with_db().await;
    let mut guard = proxy
        .inject(Toxic::latency(Duration::from_millis(100)))
        .await
        .unwrap();

    let err = proxy
        .update_toxic(guard.name(), ToxicUpdate::new().attribute("latencyy", 5))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "unknown attribute \"latencyy\" for latency; expected one of: latency, jitter"
        ),
        "{err}"
    );
    let err = guard
        .update(ToxicUpdate::new().attribute("jiter", 5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"jiter\""), "{err}");

    assert_eq!(
        proxy.toxic(guard.name()).await.unwrap().attributes["latency"],
        100
    );
}

/// `ToxicGuard::update` changes the live toxic and the guard still removes it.
#[tokio::test]
async fn guard_update_changes_the_live_toxic() {
    let (_server, proxy) = server_with_db().await;
    let mut guard = proxy
        .inject(Toxic::latency(Duration::from_millis(100)))
        .await
        .unwrap();

    let info = guard
        .update(ToxicUpdate::new().attribute("latency", 700).toxicity(0.5))
        .await
        .unwrap()
        .clone();

    assert_eq!(info.attributes["latency"], 700);
    assert_eq!(proxy.toxic(guard.name()).await.unwrap().toxicity, 0.5);
    guard.remove().await.unwrap();
    assert!(proxy.toxics().await.unwrap().is_empty());
}

/// The token is sent as `Authorization: Bearer`, read from the bytes a real socket receives.
#[tokio::test]
async fn token_is_sent_as_bearer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the headers ended");
            request.extend_from_slice(&buf[..n]);
        }
        let body = "{\"version\":\"2.12.0\"}";
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&request).to_ascii_lowercase()
    });

    let client = Client::new(&addr.to_string())
        .unwrap()
        .with_token(Some("s3cret"));
    assert_eq!(client.version().await.unwrap(), "2.12.0");

    let request = seen.await.unwrap();
    assert!(
        request.contains("\r\nauthorization: bearer s3cret\r\n"),
        "{request}"
    );
}
