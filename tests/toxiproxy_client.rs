//! A published Toxiproxy client (`toxiproxy_rust`, used unchanged) drives faultline through a
//! realistic test session: populate, find and reset, add latency, run a block, remove it, take
//! the proxy down and up, list toxics, delete.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

fn echo_once(addr: &str) -> std::io::Result<Duration> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let start = Instant::now();
    s.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf)?;
    assert_eq!(&buf, b"ping");
    Ok(start.elapsed())
}

/// The usual session of a Toxiproxy user's test suite works unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_rust_session() {
    let h = Harness::start().await;
    let upstream = echo_server().await;
    let api = h.server.addr();
    tokio::task::spawn_blocking(move || {
        let client = Client::new(api);
        assert!(client.is_running());
        assert!(client.version().unwrap().contains("2.12.0"));

        let proxies = client
            .populate(vec![ProxyPack::new(
                "echo".into(),
                "127.0.0.1:0".into(),
                upstream.to_string(),
            )])
            .expect("populate works");
        assert_eq!(proxies.len(), 1);
        let listen = proxies[0].proxy_pack.listen.clone();
        assert!(!listen.ends_with(":0"), "real port returned: {listen}");
        assert!(echo_once(&listen).unwrap() < Duration::from_millis(300));

        let proxy = client.find_and_reset_proxy("echo").expect("found");
        proxy
            .with_latency("downstream".into(), 200, 0, 1.0)
            .apply(|| {
                let took = echo_once(&listen).unwrap();
                assert!(took >= Duration::from_millis(200), "{took:?}");
            })
            .expect("apply removes the toxic");
        assert!(proxy.toxics().unwrap().is_empty());
        assert!(echo_once(&listen).unwrap() < Duration::from_millis(300));

        proxy.with_bandwidth("upstream".into(), 100, 1.0);
        proxy.with_limit_data("downstream".into(), 2048, 0.5);
        let toxics = proxy.toxics().unwrap();
        assert_eq!(toxics.len(), 2);
        proxy.delete_all_toxics().unwrap();

        proxy
            .with_down(|| {
                assert!(echo_once(&listen).is_err(), "down means unreachable");
            })
            .expect("down and up");
        assert!(echo_once(&listen).is_ok());

        assert!(client.all().unwrap().contains_key("echo"));
        client.reset().unwrap();
        proxy.delete().unwrap();
        assert!(client.find_proxy("echo").is_err());
    })
    .await
    .unwrap();
}
