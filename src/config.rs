//! The startup config file: Toxiproxy's `/populate` format (a JSON array of proxies), where each
//! proxy may also list `toxics` to start with (Toxiproxy ignores them; faultline applies them,
//! so a compose stack can start with its faults in place).

use crate::api::models;
use crate::registry::Registry;
use std::path::Path;

/// Why a config file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Creates the proxies and toxics listed in `path`; stops at the first problem.
pub async fn load(registry: &Registry, path: &Path) -> Result<usize, ConfigError> {
    let shown = path.display().to_string();
    let invalid = |message: String| ConfigError::Invalid {
        path: shown.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let value = models::parse_body(&bytes).map_err(|e| invalid(e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| invalid("expected a JSON array of proxies".into()))?;
    let mut proxies = Vec::new();
    let mut toxics = Vec::new();
    for item in items {
        proxies.push(models::new_proxy(item).map_err(|e| invalid(e.to_string()))?);
        toxics.push(models::proxy_toxics(item).map_err(|e| invalid(e.to_string()))?);
    }
    let count = proxies.len();
    let names: Vec<String> = proxies.iter().map(|p| p.name.clone()).collect();
    let (_, error) = registry.populate(proxies).await;
    if let Some(e) = error {
        return Err(invalid(e.to_string()));
    }
    for (name, list) in names.iter().zip(toxics) {
        for toxic in list {
            registry
                .add_toxic(name, toxic)
                .await
                .map_err(|e| invalid(format!("proxy {name}: {e}")))?;
        }
    }
    Ok(count)
}
