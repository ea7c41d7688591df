//! The client knows every toxic type the server has: a type it lacked would silently come back
//! as `ToxicKind::Custom`. HTTP toxics round-trip through a real server.

use faultline::toxics::{Attributes, TYPES};
use faultline_client::{
    HttpAbortPhase, HttpDelayPhase, Protocol, ProxyConfig, Server, Stream, Toxic, ToxicKind,
};
use std::time::Duration;

/// Every type in the server's registry parses, from the server's own defaults, into a typed
/// kind with the same wire name.
#[test]
fn client_knows_every_server_toxic_type() {
    for kind in TYPES {
        let defaults = Attributes::defaults(kind).to_json();
        let parsed = ToxicKind::from_wire(kind.name, defaults.as_object().unwrap());
        assert!(
            !matches!(parsed, ToxicKind::Custom { .. }),
            "the client has no typed kind for the server's toxic type {}",
            kind.name
        );
        assert_eq!(parsed.type_name(), kind.name);
    }
}

/// Typed HTTP toxics are accepted by an HTTP proxy and read back identical.
#[tokio::test]
async fn http_toxics_round_trip() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("api", "127.0.0.1:9").http())
        .await
        .unwrap();
    assert_eq!(proxy.info().protocol, Protocol::Http);
    let toxics = [
        Toxic::http_status(429)
            .set_header("Retry-After", "2")
            .body("slow down")
            .method("POST")
            .path_prefix("/v1/chat")
            .header_matches("X-Tenant", "^blue$")
            .toxicity(0.5),
        Toxic::http_delay(HttpDelayPhase::Body, Duration::from_millis(50))
            .jitter(Duration::from_millis(5)),
        Toxic::http_abort(HttpAbortPhase::MidBody { bytes: 10 }).reset(),
        Toxic::http_header()
            .set_header("X-Fault", "1")
            .remove_header("Server")
            .upstream(),
    ];
    for toxic in toxics {
        let added = proxy.add_toxic(toxic.clone()).await.unwrap();
        assert_eq!(&added.kind(), toxic.kind(), "{}", added.name);
    }
    let header = proxy.toxic("http_header_upstream").await.unwrap();
    assert_eq!(header.stream, Stream::Upstream);
}

/// A TCP proxy refuses HTTP toxics with a message that names the fix.
#[tokio::test]
async fn http_toxic_on_tcp_proxy_is_refused() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:9"))
        .await
        .unwrap();
    assert_eq!(proxy.info().protocol, Protocol::Tcp);
    let error = proxy.add_toxic(Toxic::http_status(503)).await.unwrap_err();
    assert!(
        error.to_string().contains("\"protocol\": \"http\""),
        "{error}"
    );
}
