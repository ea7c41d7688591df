//! A proxy's HTTP settings (`protocol`, `upstream_tls`, `upstream_sni`): their validation,
//! and the TLS client shared by every proxy that speaks TLS to its upstream.

use super::Error;
use crate::http::{tls, Protocol};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// How a proxy speaks to its peers: TCP or HTTP, and TLS to the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSettings {
    pub protocol: Protocol,
    /// TLS to the upstream (HTTP proxies only).
    pub upstream_tls: bool,
    /// The server name to present and verify; the upstream's host when `None`.
    pub upstream_sni: Option<String>,
}

/// Changes to [`HttpSettings`]; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct HttpChange {
    pub protocol: Option<Protocol>,
    pub upstream_tls: Option<bool>,
    /// `Some("")` removes the SNI override.
    pub upstream_sni: Option<String>,
}

impl HttpSettings {
    /// These settings with `change` applied.
    pub(super) fn changed(&self, change: HttpChange) -> HttpSettings {
        HttpSettings {
            protocol: change.protocol.unwrap_or(self.protocol),
            upstream_tls: change.upstream_tls.unwrap_or(self.upstream_tls),
            upstream_sni: match change.upstream_sni {
                Some(sni) if sni.is_empty() => None,
                Some(sni) => Some(sni),
                None => self.upstream_sni.clone(),
            },
        }
    }

    /// TLS settings need an HTTP proxy, and a name that can be presented and verified.
    pub(super) fn validate(&self, upstream: &str) -> Result<(), Error> {
        let tls_asked = self.upstream_tls || self.upstream_sni.is_some();
        if tls_asked && self.protocol != Protocol::Http {
            return Err(Error::Invalid(
                "upstream_tls and upstream_sni need \"protocol\": \"http\"".into(),
            ));
        }
        if tls_asked {
            tls::server_name(upstream, self.upstream_sni.as_deref()).map_err(Error::Invalid)?;
        }
        Ok(())
    }
}

/// The registry's TLS client, built on first use (reading the platform's roots is slow).
#[derive(Debug)]
pub(super) struct UpstreamTls {
    ca: Option<PathBuf>,
    config: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl UpstreamTls {
    pub(super) fn new(ca: Option<PathBuf>) -> Self {
        UpstreamTls {
            ca,
            config: OnceLock::new(),
        }
    }

    /// What a listener needs to open TLS to `upstream`, if `settings` ask for TLS.
    pub(super) fn for_proxy(
        &self,
        settings: &HttpSettings,
        upstream: &str,
    ) -> Result<Option<Arc<crate::proxy::listener::UpstreamTls>>, Error> {
        if !settings.upstream_tls {
            return Ok(None);
        }
        let config = self
            .config
            .get_or_init(|| tls::client_config(self.ca.as_deref()).map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::Invalid)?;
        let name =
            tls::server_name(upstream, settings.upstream_sni.as_deref()).map_err(Error::Invalid)?;
        Ok(Some(Arc::new(crate::proxy::listener::UpstreamTls {
            config,
            name,
        })))
    }
}
