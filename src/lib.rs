//! faultline: a programmable TCP fault-injection proxy, API-compatible with Toxiproxy v2.
//!
//! # Layout
//!
//! - [`server`]: runs the REST API on an already bound listener until shutdown;
//! - [`api`]: the control plane (routes, JSON models, the error-to-HTTP mapping);
//! - [`registry`]: the one shared state, every proxy and its toxics, and every change to them;
//! - [`proxy`]: the data plane (listener, connection, per-direction pipeline, live counters);
//! - [`toxics`]: the faults, one file each, behind the small [`toxics::Toxic`] trait;
//! - [`http`]: the HTTP/1.1 mode of a proxy (parsing, HTTP toxics' rules, the engine, TLS);
//! - [`target`]: blast radius, which connections a toxic applies to;
//! - [`events`]: the live event stream; [`config`]: the startup config file;
//!   [`net`]: listen addresses in Toxiproxy's (Go's) syntax; [`hash`]: stable hashes for
//!   seeding and sampling.
//! - [`ui`]: the live web dashboard at `/ui`, compiled into the binary.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use faultline::{registry::{Options, Registry}, server};
//! use tokio_util::sync::CancellationToken;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let registry = Registry::new(Options::default());
//! server::run(listener, registry, CancellationToken::new()).await
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod config;
pub mod events;
pub mod hash;
pub mod http;
pub mod net;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod target;
pub mod toxics;
pub mod ui;
