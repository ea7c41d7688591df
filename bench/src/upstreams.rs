//! The benchmark's own upstream servers, on 127.0.0.1 ephemeral ports, so nothing needs to be
//! installed: an echo server, a bulk server (sink or source), a redis-style request/response
//! server and a minimal HTTP/1.1 keep-alive server.

use anyhow::Result;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A redis `GET key` command, as redis-benchmark sends it.
pub const REDIS_REQUEST: &[u8] = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
/// The reply to [`REDIS_REQUEST`].
pub const REDIS_REPLY: &[u8] = b"$5\r\nvalue\r\n";
/// A keep-alive HTTP/1.1 request, as a load tool like wrk sends it.
pub const HTTP_REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: faultline-bench\r\n\r\n";
/// The minimal server's reply.
pub const HTTP_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
/// First byte a bulk client sends: it uploads (the server discards what it reads).
pub const BULK_UPLOAD: u8 = b'U';
/// First byte a bulk client sends: it downloads (the server writes until the client leaves).
pub const BULK_DOWNLOAD: u8 = b'D';

const BULK_CHUNK: usize = 64 * 1024;

/// Addresses of the running upstreams, and what the bulk sink has received.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub echo: SocketAddr,
    pub bulk: SocketAddr,
    pub redis: SocketAddr,
    pub http: SocketAddr,
    /// Bytes the bulk server has read from uploading clients, over its whole life.
    pub sunk: Arc<AtomicU64>,
}

impl Upstreams {
    /// Starts every upstream on the current runtime; they live as long as the runtime.
    pub async fn start() -> Result<Upstreams> {
        let sunk = Arc::new(AtomicU64::new(0));
        let bulk_sunk = sunk.clone();
        Ok(Upstreams {
            echo: serve(echo).await?,
            bulk: serve(move |s| bulk(s, bulk_sunk.clone())).await?,
            redis: serve(redis).await?,
            http: serve(http).await?,
            sunk,
        })
    }
}

async fn serve<F, Fut>(handler: F) -> Result<SocketAddr>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handler(stream));
                }
                // Out of descriptors for a moment: the client sees a refused connection.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    });
    Ok(addr)
}

/// Echoes everything; after the client's end-of-stream, writes the rest and closes.
async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let (mut r, mut w) = stream.split();
    tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await
}

async fn bulk(mut stream: TcpStream, sunk: Arc<AtomicU64>) -> std::io::Result<()> {
    let mode = stream.read_u8().await?;
    let mut buf = vec![0u8; BULK_CHUNK];
    if mode == BULK_DOWNLOAD {
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        loop {
            stream.write_all(&buf).await?;
        }
    }
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        sunk.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Answers every complete `GET key` with `value`, pipelined requests included.
async fn redis(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending = 0usize;
    let mut replies = Vec::new();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending += n;
        let complete = pending / REDIS_REQUEST.len();
        pending %= REDIS_REQUEST.len();
        if complete > 0 {
            replies.clear();
            for _ in 0..complete {
                replies.extend_from_slice(REDIS_REPLY);
            }
            stream.write_all(&replies).await?;
        }
    }
}

/// Answers every request (headers ended by an empty line; GET, no body) with a fixed page.
async fn http(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 8 * 1024];
    let mut replies = Vec::new();
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        replies.clear();
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            buf.drain(..end + 4);
            replies.extend_from_slice(HTTP_REPLY);
        }
        if !replies.is_empty() {
            stream.write_all(&replies).await?;
        }
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
