//! The complete test from README.md, kept here so it is known to pass (keep the two in sync).

use faultline_client::{ProxyConfig, Server, Toxic};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Stands in for your real dependency (database, cache, HTTP API...): an echo server.
async fn echo_server() -> std::net::SocketAddr {
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

/// Stands in for your code under test: one request with a 200 ms deadline.
async fn ping(addr: std::net::SocketAddr) -> Result<(), &'static str> {
    let attempt = async {
        let mut conn = TcpStream::connect(addr)
            .await
            .map_err(|_| "connect failed")?;
        conn.write_all(b"ping").await.map_err(|_| "write failed")?;
        let mut reply = [0u8; 4];
        conn.read_exact(&mut reply)
            .await
            .map_err(|_| "connection broke")?;
        Ok(())
    };
    tokio::time::timeout(Duration::from_millis(200), attempt)
        .await
        .map_err(|_| "timed out")?
}

/// A dependency that answers in 1 s makes `ping` time out after its 200 ms deadline.
#[tokio::test]
async fn ping_times_out_when_the_dependency_is_slow() {
    // 1. A faultline server in this test, and a proxy in front of the dependency.
    let server = Server::start().await.unwrap();
    let proxy = server
        .create_proxy(ProxyConfig::new("dependency", echo_server().await))
        .await
        .unwrap();
    let addr = proxy.listen_addr().unwrap(); // 127.0.0.1:<port picked by the server>

    // 2. Healthy: it works.
    assert_eq!(ping(addr).await, Ok(()));

    // 3. Slow: replies are 1 s late while `slow` lives.
    let slow = proxy
        .inject(Toxic::latency(Duration::from_secs(1)))
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(ping(addr).await, Err("timed out"));
    assert!(started.elapsed() < Duration::from_secs(1));
    slow.remove().await.unwrap();

    // 4. Down: connections are refused inside the block, and it recovers afterwards.
    let outcome = proxy.with_down(ping(addr)).await.unwrap();
    assert_eq!(outcome, Err("connect failed"));
    assert_eq!(ping(addr).await, Ok(()));
}
