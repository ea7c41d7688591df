//! TLS to the upstream (`upstream_tls`): faultline speaks plain HTTP to the client and TLS to
//! the upstream, with rustls. Trusted roots are the platform's plus any `--upstream-ca` file.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("no certificate found in CA file {0}")]
    EmptyCaFile(String),
    #[error("TLS setup failed: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS client trusting the platform's roots and the certificates of `extra_ca` (PEM).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping a platform root certificate source");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "platform root certificates loaded");
    if let Some(path) = extra_ca {
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::EmptyCaFile(shown));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The engine speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name to present and verify: `sni` if given, else the host of `upstream` (`host:port`).
pub fn server_name(upstream: &str, sni: Option<&str>) -> Result<ServerName<'static>, String> {
    let host = match sni {
        Some(sni) => sni,
        None => upstream
            .rsplit_once(':')
            .map_or(upstream, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']'),
    };
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("upstream_sni must be a DNS name or an IP address, got \"{host}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name defaults to the upstream's host; a bad SNI is refused with its value.
    #[test]
    fn server_names() {
        assert_eq!(
            server_name("api.example.com:443", None).unwrap(),
            ServerName::try_from("api.example.com").unwrap()
        );
        assert!(server_name("[::1]:443", None).is_ok());
        assert_eq!(
            server_name("127.0.0.1:1", Some("localhost")).unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        let err = server_name("x:1", Some("bad name!")).unwrap_err();
        assert!(err.contains("bad name!"), "{err}");
    }

    /// A CA file that does not exist is named in the error.
    #[test]
    fn missing_ca_file_is_named() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
