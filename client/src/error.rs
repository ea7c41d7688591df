//! The one error type of the client.

use std::fmt;

/// Everything that can go wrong when talking to a Toxiproxy v2 API server.
///
/// The variant says where it went wrong: the server refused the request ([`Error::Api`], with
/// the server's own status and message), the request never got an answer
/// ([`Error::Transport`]), or the answer was not what a Toxiproxy server sends
/// ([`Error::Decode`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status. Toxiproxy error bodies are
    /// `{"error": "...", "status": N}`; `message` is that `error` text (or the raw body when
    /// the server sent something else, such as `404 page not found`).
    #[error("{message} (HTTP {status})")]
    Api {
        /// The HTTP status code, e.g. 404 for `proxy not found`, 409 for `proxy already exists`.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached, or the connection broke, or the request timed out.
    #[error("cannot reach the API server at {url}: {reason}")]
    Transport {
        /// The URL the request went to.
        url: String,
        /// The root cause, e.g. `Connection refused (os error 111)` or `timed out`.
        reason: String,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a success status, but the body was not the expected JSON.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The URL the request went to.
        url: String,
        /// What did not match.
        reason: String,
    },
    /// The server URL given to [`Client::new`](crate::Client::new) is not a usable http URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A proxy's `listen` is not an `ip:port` socket address (for example a proxy created
    /// disabled with `localhost:0`, whose `listen` is echoed verbatim).
    #[error("proxy {proxy:?} listens on {listen:?}, which is not an ip:port socket address")]
    ListenAddr {
        /// The proxy's name.
        proxy: String,
        /// Its `listen` field.
        listen: String,
    },
    /// An attribute the toxic's type does not have, refused before anything was sent (see
    /// [`catalogue`](crate::catalogue)): a Toxiproxy server would ignore it and apply a
    /// different fault than the one meant.
    #[error("unknown attribute \"{key}\" for {type_name}; expected one of: {expected}")]
    UnknownAttribute {
        /// The toxic's type, e.g. `bandwidth`.
        type_name: String,
        /// The key as given, e.g. `rate_kb`.
        key: String,
        /// The type's attributes, comma-separated.
        expected: String,
    },
    /// The embedded server could not start (binding its port failed).
    #[error("embedded server: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The HTTP status the server answered with, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server said 404: no such proxy or toxic.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the server said 409: a proxy or toxic of that name already exists.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Whether the server could not be reached at all (refused, unreachable, timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    pub(crate) fn transport(url: impl fmt::Display, source: reqwest::Error) -> Error {
        let reason = if source.is_timeout() {
            "timed out".to_string()
        } else {
            // reqwest's own message names only the URL; the cause is at the end of the chain.
            let mut cause: &dyn std::error::Error = &source;
            while let Some(next) = cause.source() {
                cause = next;
            }
            cause.to_string()
        };
        Error::Transport {
            url: url.to_string(),
            reason,
            source,
        }
    }

    pub(crate) fn decode(url: impl fmt::Display, reason: impl fmt::Display) -> Error {
        Error::Decode {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The client's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
