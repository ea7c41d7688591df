//! A small key-value client with a timeout-and-retry policy, verified against injected
//! latency and connection resets.
//!
//! ```sh
//! cargo run -p faultline-client --example retry_policy
//! ```
//!
//! The "service" is a line-based key-value server (`GET key\n` → `value\n`) on 127.0.0.1. The
//! client under test gives each attempt 250 ms and retries up to 4 times with a growing pause.
//! Through a faultline proxy (embedded in this process) we check that:
//!
//! 1. with no fault, the first attempt succeeds;
//! 2. with 100 ms of latency, requests are slower but still succeed on the first attempt;
//! 3. with 1 s of latency, every attempt times out and the client gives up in bounded time;
//! 4. when the network resets connections for a moment, the client retries and gets through.

use faultline_client::{ProxyConfig, Server, Toxic};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The client under test: what an application would ship.
struct KvClient {
    addr: SocketAddr,
    attempt_timeout: Duration,
    attempts: u32,
    first_backoff: Duration,
}

/// What a successful `get` cost.
#[derive(Debug)]
struct Fetched {
    value: String,
    attempts: u32,
}

#[derive(Debug)]
enum KvError {
    /// Every attempt failed; the last error says how.
    GaveUp { attempts: u32, last: String },
}

impl KvClient {
    async fn get(&self, key: &str) -> Result<Fetched, KvError> {
        let mut backoff = self.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match tokio::time::timeout(self.attempt_timeout, self.try_get(key)).await {
                Ok(Ok(value)) => {
                    return Ok(Fetched {
                        value,
                        attempts: attempt,
                    })
                }
                Ok(Err(e)) => last = format!("attempt {attempt}: {e}"),
                Err(_) => last = format!("attempt {attempt}: timed out"),
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(KvError::GaveUp {
            attempts: self.attempts,
            last,
        })
    }

    /// One attempt on a fresh connection.
    async fn try_get(&self, key: &str) -> std::io::Result<String> {
        let mut conn = BufReader::new(TcpStream::connect(self.addr).await?);
        conn.get_mut()
            .write_all(format!("GET {key}\n").as_bytes())
            .await?;
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_string())
    }
}

/// The real service: a tiny key-value server on an ephemeral port.
async fn kv_server(data: HashMap<String, String>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let data = Arc::new(data);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let data = data.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                let mut line = String::new();
                while matches!(socket.read_line(&mut line).await, Ok(n) if n > 0) {
                    let key = line.trim_end().strip_prefix("GET ").unwrap_or_default();
                    let reply = data.get(key).map(String::as_str).unwrap_or("");
                    if socket
                        .get_mut()
                        .write_all(format!("{reply}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream = kv_server(HashMap::from([("greeting".into(), "hello".into())])).await?;
    let server = Server::start().await?;
    let proxy = server
        .create_proxy(ProxyConfig::new("kv", upstream))
        .await?;
    let client = KvClient {
        addr: proxy.listen_addr()?,
        attempt_timeout: Duration::from_millis(250),
        attempts: 4,
        first_backoff: Duration::from_millis(100),
    };

    // 1. Healthy network.
    let fetched = client.get("greeting").await.expect("healthy get");
    assert_eq!((fetched.value.as_str(), fetched.attempts), ("hello", 1));
    println!("healthy:         {fetched:?}");

    // 2. Slow but within the attempt timeout.
    let started = Instant::now();
    let fetched = proxy
        .with_toxic(
            Toxic::latency(Duration::from_millis(100)),
            client.get("greeting"),
        )
        .await?
        .expect("a slow get still succeeds");
    let took = started.elapsed();
    assert_eq!(fetched.attempts, 1);
    assert!(took >= Duration::from_millis(100), "took {took:?}");
    println!("100 ms latency:  {fetched:?} in {took:?}");

    // 3. Slower than the attempt timeout: the client gives up, in bounded time.
    let started = Instant::now();
    let outcome = proxy
        .with_toxic(
            Toxic::latency(Duration::from_secs(1)),
            client.get("greeting"),
        )
        .await?;
    let took = started.elapsed();
    let KvError::GaveUp { attempts, last } = outcome.expect_err("the get must give up");
    assert_eq!(attempts, 4);
    // 4 attempts of 250 ms plus 100 + 200 + 400 ms of backoff.
    assert!(took >= Duration::from_millis(1700), "took {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    println!("1 s latency:     gave up after {attempts} attempts in {took:?} ({last})");

    // 4. Connections are reset for 250 ms (the server drops the toxic by itself), then the
    //    network recovers: the retries get through.
    let started = Instant::now();
    let resets = proxy
        .inject(
            Toxic::reset_peer(Duration::ZERO)
                .upstream()
                .for_duration(Duration::from_millis(250)),
        )
        .await?;
    let fetched = client.get("greeting").await.expect("retries get through");
    resets.remove().await?;
    assert!(
        fetched.attempts >= 2,
        "the first attempt must have been reset"
    );
    println!("reset for 250ms: {fetched:?} in {:?}", started.elapsed());

    println!("retry policy verified");
    Ok(())
}
