//! The API's accept loop, which keeps the API answering when the process is out of file
//! descriptors: one descriptor is held in reserve (an open `/dev/null`) and given up to accept
//! an API client that would otherwise wait in the backlog. That client is served like any
//! other; when its connection closes the reserve is taken again. So during a shortage the API
//! serves one connection at a time instead of none, and nothing sleeps a whole second per
//! failed accept (axum's own loop does).

use crate::proxy::descriptors::{self, is_connection_error, is_out_of_descriptors, Backoff};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The descriptor in reserve, shared with the connection that is using its slot.
type Reserve = Arc<Mutex<Option<std::fs::File>>>;

/// A [`TcpListener`] for `axum::serve` that keeps a descriptor in reserve for API clients.
#[derive(Debug)]
pub struct ApiListener {
    listener: TcpListener,
    reserve: Reserve,
}

impl ApiListener {
    pub fn new(listener: TcpListener) -> Self {
        ApiListener {
            listener,
            reserve: Arc::new(Mutex::new(descriptors::open_spare())),
        }
    }

    /// Gives up the reserve to take one pending client; `None` if there was no reserve or
    /// nobody was waiting (then the reserve is kept).
    fn accept_on_reserve(&self) -> Option<(ApiStream, SocketAddr)> {
        let _exclusive = descriptors::exclusive();
        let mut reserve = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
        drop(reserve.take()?);
        match descriptors::accept_queued(&self.listener) {
            Some(Ok((stream, addr))) => Some((
                ApiStream {
                    stream: Some(stream),
                    reserve: Some(self.reserve.clone()),
                },
                addr,
            )),
            _ => {
                *reserve = descriptors::open_spare();
                None
            }
        }
    }
}

impl axum::serve::Listener for ApiListener {
    type Io = ApiStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ApiStream, SocketAddr) {
        let mut backoff = Backoff::default();
        loop {
            let error = match descriptors::accept(&self.listener).await {
                Ok((stream, addr)) => {
                    let mut reserve = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
                    if reserve.is_none() {
                        *reserve = descriptors::open_spare();
                    }
                    let stream = ApiStream {
                        stream: Some(stream),
                        reserve: None,
                    };
                    return (stream, addr);
                }
                Err(error) => error,
            };
            if is_out_of_descriptors(&error) {
                if let Some(accepted) = self.accept_on_reserve() {
                    return accepted;
                }
            } else if is_connection_error(&error) {
                continue;
            } else {
                tracing::error!(%error, "API accept failed");
            }
            tokio::time::sleep(backoff.pause()).await;
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An API connection; the one accepted on the reserve takes the reserve back when it closes.
#[derive(Debug)]
pub struct ApiStream {
    /// Always `Some` until dropped: taken in `drop` to close it before the reserve reopens.
    stream: Option<TcpStream>,
    reserve: Option<Reserve>,
}

impl ApiStream {
    /// Sends small writes at once (an API answer is one small write).
    pub fn set_nodelay(&self) {
        if let Some(stream) = &self.stream {
            let _ = stream.set_nodelay(true);
        }
    }

    fn stream(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(self.get_mut().stream.as_mut().expect("open until dropped"))
    }
}

impl Drop for ApiStream {
    fn drop(&mut self) {
        let Some(reserve) = self.reserve.take() else {
            return;
        };
        let _exclusive = descriptors::exclusive();
        drop(self.stream.take());
        let mut reserve = reserve.lock().unwrap_or_else(|e| e.into_inner());
        if reserve.is_none() {
            *reserve = descriptors::open_spare();
        }
    }
}

impl AsyncRead for ApiStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for ApiStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}
