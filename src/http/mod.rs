//! HTTP/1.1 mode of a proxy (`"protocol": "http"`): the HTTP toxics act on whole requests.
//!
//! - [`parse`]: message heads (httparse) and body framing, sans-IO;
//! - [`rules`]: HTTP toxics as match + fault rules, and the [`rules::Plan`] they make for one
//!   request, sans-IO;
//! - [`head`]: heads with header edits, and synthetic responses;
//! - [`shape`]: pacing and cutting a response body, sans-IO;
//! - [`engine`]: the async driver over any pair of byte streams;
//! - [`tls`]: TLS to the upstream.
//!
//! On an HTTP proxy the connection is composed as: client socket ⇄ the TCP toxic pipeline ⇄
//! [`engine`] ⇄ upstream (TCP or TLS), so TCP toxics keep acting on the bytes as before.

pub mod engine;
pub mod head;
pub mod parse;
pub mod rules;
pub mod shape;
pub mod tls;

/// A proxy's protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Bytes only (Toxiproxy's behaviour).
    #[default]
    Tcp,
    /// HTTP/1.1: HTTP toxics apply.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
        }
    }

    /// Parses `tcp` or `http` (any case), or says what is valid.
    pub fn parse(text: &str) -> Result<Protocol, String> {
        if text.eq_ignore_ascii_case("tcp") {
            Ok(Protocol::Tcp)
        } else if text.eq_ignore_ascii_case("http") {
            Ok(Protocol::Http)
        } else {
            Err(format!("protocol must be tcp or http, got \"{text}\""))
        }
    }
}
