//! Helpers shared by the client's integration tests: a real upstream service on 127.0.0.1
//! and a client-side round trip through a proxy.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on an ephemeral port of 127.0.0.1: every byte it reads it writes back.
/// It runs until the test's runtime ends.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut reader, mut writer) = socket.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

/// Sends `ping` through `addr` on a fresh connection and waits for the echo; returns how long
/// the round trip took. Panics if the echo does not come back within 10 s.
pub async fn round_trip(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut reply = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut reply))
        .await
        .expect("echo did not come back within 10 s")
        .unwrap();
    assert_eq!(&reply, b"ping");
    started.elapsed()
}
