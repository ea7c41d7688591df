//! A typed async client for [faultline] and any [Toxiproxy] v2 server, made for fault-injection
//! tests in `cargo test`, with an embedded server so tests need nothing running beforehand.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use faultline_client::{ProxyConfig, Server, Toxic};
//! use std::time::{Duration, Instant};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // The real service: here, a one-shot echo server.
//! let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let upstream_addr = upstream.local_addr()?;
//! tokio::spawn(async move {
//!     let (mut socket, _) = upstream.accept().await.unwrap();
//!     let mut buf = [0u8; 4];
//!     socket.read_exact(&mut buf).await.unwrap();
//!     socket.write_all(&buf).await.unwrap();
//! });
//!
//! // A faultline server in this process, and a proxy in front of the service.
//! let server = Server::start().await?;
//! let proxy = server.create_proxy(ProxyConfig::new("echo", upstream_addr)).await?;
//!
//! // Replies are 100 ms late while the guard lives.
//! let _slow = proxy.inject(Toxic::latency(Duration::from_millis(100))).await?;
//!
//! let started = Instant::now();
//! let mut conn = tokio::net::TcpStream::connect(proxy.listen_addr()?).await?;
//! conn.write_all(b"ping").await?;
//! let mut reply = [0u8; 4];
//! conn.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ping");
//! assert!(started.elapsed() >= Duration::from_millis(100));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`Client`]: one API server (faultline or `toxiproxy-server`): proxies, `/populate`,
//!   `/reset`, `/version`.
//! - [`Proxy`]: one proxy: enable, disable, update, delete, and its toxics; scoped faults with
//!   [`Proxy::inject`], [`Proxy::down`], [`Proxy::with_toxic`] and [`Proxy::with_down`].
//! - [`Toxic`] and [`ToxicKind`]: typed faults (latency, bandwidth, slow_close, timeout,
//!   reset_peer, slicer, limit_data, packet_loss, drop, corrupt, noop; faultline's
//!   connection-phase slow_open, refuse, blackhole and limit_connections; and
//!   [`Toxic::custom`] for anything else), with faultline's extensions: [`Target`],
//!   [`Toxic::for_duration`] and [`Schedule`].
//! - [`ToxicGuard`] and [`DownGuard`]: faults that end when dropped; the [`guard`] module
//!   explains how that works without an async `Drop`.
//! - [`Server`] (feature `embedded`, on by default): a faultline server inside the test
//!   process, on an ephemeral port, one per test if you like.
//! - [`Error`]: keeps the server's HTTP status and `error` message.
//! - [`experiment`]: chaos experiments in Chaos Toolkit's format (the `faultline-experiment`
//!   crate): build or load one, run it against a [`Server`] with
//!   [`Server::run_experiment`], and assert on its journal.
//!
//! [faultline]: https://github.com/faultline/faultline
//! [Toxiproxy]: https://github.com/Shopify/toxiproxy

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod catalogue;
mod client;
#[cfg(feature = "embedded")]
mod embedded;
mod error;
#[cfg(feature = "embedded")]
mod experiments;
pub mod guard;
mod proxy;
mod toxic;

pub use client::{Client, DEFAULT_URL, TOKEN_ENV};
#[cfg(feature = "embedded")]
pub use embedded::Server;
pub use error::{Error, Result};
/// Chaos experiments: the `faultline-experiment` crate.
pub use faultline_experiment as experiment;
pub use guard::{DownGuard, ToxicGuard};
pub use proxy::{Protocol, Proxy, ProxyConfig, ProxyInfo, ProxyUpdate};
pub use toxic::{
    Distribution, HttpAbortPhase, HttpDelayPhase, HttpMatch, LimitMode, Schedule, Stream, Target,
    Toxic, ToxicInfo, ToxicKind, ToxicUpdate,
};

/// Compiles the README's code blocks as doctests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
