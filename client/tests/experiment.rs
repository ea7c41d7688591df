//! A chaos experiment built in Rust, run against an embedded server in `cargo test`, with
//! assertions on its journal.

use faultline_client::experiment::{Experiment, Loaded, Status, Vars, Verdict};
use faultline_client::{ProxyConfig, Server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Stands in for a dependency: an echo server.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Round trip through `addr`, failing if it takes longer than 200 ms: the "code under test".
async fn ping(addr: std::net::SocketAddr) -> bool {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
        conn.write_all(b"ping").await.ok()?;
        let mut reply = [0u8; 4];
        conn.read_exact(&mut reply).await.ok()?;
        Some(reply == *b"ping")
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_millis(200), attempt).await,
        Ok(Some(true))
    )
}

fn experiment(latency_ms: u64) -> Experiment {
    serde_json::from_value(json!({
        "title": "the cache proxy survives latency",
        "steady-state-hypothesis": {"title": "proxy enabled", "probes": [
            {"type": "probe", "name": "enabled", "tolerance": true,
             "provider": {"type": "python", "module": "chaostoxi.proxy.probes",
                          "func": "get_proxy_attribute",
                          "arguments": {"proxy_name": "cache", "attribute": "enabled"}}}
        ]},
        "method": [
            {"type": "action", "name": "slow-cache",
             "provider": {"type": "python", "module": "faultline.actions", "func": "add_toxic",
                          "arguments": {"proxy": "cache", "type": "latency",
                                        "attributes": {"latency": latency_ms}}}},
            {"type": "action", "name": "cache-down",
             "provider": {"type": "python", "module": "chaostoxi.proxy.actions",
                          "func": "disable_proxy", "arguments": {"proxy_name": "${victim}"}}}
        ]
    }))
    .expect("a valid experiment")
}

/// An experiment that disables the proxy its hypothesis watches deviates; the journal says
/// so, and cleanup put the proxy and its toxics back.
#[tokio::test]
async fn deviation_is_in_the_journal_and_cleanup_restores() {
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("cache", echo().await))
        .await
        .unwrap();
    let mut settings = faultline_client::experiment::Settings::default();
    let mut vars = Vars::default();
    vars.add_var("victim=cache").unwrap();
    settings.vars = vars;
    let journal = server
        .run_experiment_with(&Loaded::from_experiment(experiment(500)), settings)
        .await
        .unwrap();
    assert_eq!(journal.verdict(), Verdict::Deviated);
    assert_eq!(journal.status, Some(Status::Completed));
    assert_eq!(journal.run.len(), 2);
    assert!(journal.run.iter().all(|r| r.succeeded()));
    assert_eq!(
        journal.faultline.restored.len(),
        2,
        "{:?}",
        journal.faultline.restored
    );
    let after = server.proxy("cache").await.unwrap();
    assert!(after.info().enabled);
    assert!(after.toxics().await.unwrap().is_empty());
    assert!(
        ping(proxy.listen_addr().unwrap()).await,
        "the dependency is fast again"
    );
}

/// Aimed at another proxy, the same experiment holds.
#[tokio::test]
async fn hypothesis_holds_when_the_fault_misses() {
    let server = Server::start().await.unwrap();
    server
        .create_proxy(ProxyConfig::new("cache", echo().await))
        .await
        .unwrap();
    server
        .create_proxy(ProxyConfig::new("other", echo().await))
        .await
        .unwrap();
    let mut settings = faultline_client::experiment::Settings::default();
    settings.vars.add_var("victim=other").unwrap();
    let journal = server
        .run_experiment_with(&Loaded::from_experiment(experiment(10)), settings)
        .await
        .unwrap();
    assert_eq!(journal.verdict(), Verdict::Held);
    let before = journal.steady_states.before.as_ref().unwrap();
    assert_eq!(before.probes[0].output, json!(true));
    assert!(server.proxy("other").await.unwrap().info().enabled);
}
