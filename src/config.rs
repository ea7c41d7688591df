//! The startup config file: Toxiproxy's `/populate` format (a JSON array of proxies), where each
//! proxy may also list `toxics` to start with (Toxiproxy ignores them; faultline applies them,
//! so a compose stack can start with its faults in place).
//!
//! Errors are for the person who wrote the file: they name the file, the line and column of a
//! syntax error, and the proxy entry (by name and position) a problem is in. Unlike `/populate`,
//! two entries with the same name are an error rather than "the last one wins".

use crate::api::fields::UnknownKeys;
use crate::api::{error::ApiError, models};
use crate::registry::{self, Registry};
use std::path::Path;

/// Why a config file could not be applied. Each message is one line and complete: it carries
/// its cause's text, so nothing else needs printing after it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}, line {line}, column {column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("config file {path}, {entry}: {message}")]
    Entry {
        path: String,
        /// `proxy "redis" (entry 2)`, or `entry 2` when the entry has no usable name.
        entry: String,
        message: String,
    },
}

/// Creates the proxies and toxics listed in `path`; stops at the first problem.
pub async fn load(registry: &Registry, path: &Path) -> Result<usize, ConfigError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        reason: read_reason(&e, &shown),
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        let text = e.to_string();
        // serde_json appends " at line L column C"; the position is reported on its own.
        let message = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        ConfigError::Syntax {
            path: shown.clone(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    let items = value.as_array().ok_or_else(|| ConfigError::Invalid {
        path: shown.clone(),
        message: "expected a JSON array of proxies, like \
                  [{\"name\": \"redis\", \"listen\": \"0.0.0.0:26379\", \"upstream\": \"redis:6379\"}]"
            .into(),
    })?;

    let entry_error = |index: usize, name: &str, message: String| ConfigError::Entry {
        path: shown.clone(),
        entry: describe_entry(index, name),
        message,
    };
    let mut proxies: Vec<registry::NewProxy> = Vec::new();
    let mut toxics = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        let proxy = models::new_proxy(item, UnknownKeys::Reject)
            .map_err(|e| entry_error(index, name, reason(e)))?;
        if proxy.name.is_empty() {
            return Err(entry_error(index, "", "missing \"name\"".into()));
        }
        if proxy.upstream.is_empty() {
            return Err(entry_error(index, name, "missing \"upstream\"".into()));
        }
        if let Some(first) = proxies.iter().position(|p| p.name == proxy.name) {
            return Err(entry_error(
                index,
                name,
                format!(
                    "the name is already used by entry {}; proxy names must be unique",
                    first + 1
                ),
            ));
        }
        toxics.push(
            models::proxy_toxics(item, UnknownKeys::Reject)
                .map_err(|e| entry_error(index, name, reason(e)))?,
        );
        proxies.push(proxy);
    }

    let count = proxies.len();
    let names: Vec<String> = proxies.iter().map(|p| p.name.clone()).collect();
    let listens: Vec<(String, bool)> = proxies
        .iter()
        .map(|p| (p.listen.clone(), p.enabled))
        .collect();
    let (_, error) = registry.populate(proxies).await;
    if let Some(e) = error {
        // Names and upstreams were checked above: what is left is a listen address that
        // cannot be bound. The registry's message names the address; the entry is found
        // by it, so the author knows which one to change.
        let message = registry_reason(&e);
        return Err(match failed_listen(&message, &listens) {
            Some(index) => entry_error(index, &names[index], message),
            None => ConfigError::Invalid {
                path: shown.clone(),
                message,
            },
        });
    }
    for (index, (name, list)) in names.iter().zip(toxics).enumerate() {
        for toxic in list {
            let toxic_name = toxic.name.clone();
            registry.add_toxic(name, toxic).await.map_err(|e| {
                let what = match toxic_name.as_deref() {
                    Some(t) if !t.is_empty() => format!("toxic \"{t}\": "),
                    _ => "a toxic: ".to_string(),
                };
                entry_error(index, name, format!("{what}{}", registry_reason(&e)))
            })?;
        }
    }
    Ok(count)
}

/// `proxy "redis" (entry 2)`: entries are counted from 1, as a person reads the file.
fn describe_entry(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("entry {}", index + 1)
    } else {
        format!("proxy \"{name}\" (entry {})", index + 1)
    }
}

/// Which entry a listen failure is about: the one whose address the message names
/// (`listen tcp 127.0.0.1:26379: bind: ...`), else the first enabled one whose address
/// cannot be bound now (a name such as `localhost:26379` is reported resolved).
fn failed_listen(message: &str, listens: &[(String, bool)]) -> Option<usize> {
    let named = listens.iter().position(|(listen, enabled)| {
        *enabled && !listen.is_empty() && message.contains(&format!("tcp {listen}:"))
    });
    named.or_else(|| {
        listens.iter().position(|(listen, enabled)| {
            *enabled && std::net::TcpListener::bind(listen.as_str()).is_err()
        })
    })
}

/// A parse failure in the file's words, without the HTTP API's "bad request body:" prefix.
fn reason(e: ApiError) -> String {
    match e {
        ApiError::BadBody(message) => message,
        ApiError::Registry(e) => registry_reason(&e),
        other => other.to_string(),
    }
}

fn registry_reason(e: &registry::Error) -> String {
    match e {
        registry::Error::Invalid(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Why the file could not be read, with what to do about a permission problem: in the
/// container image faultline runs as uid 65532, which often cannot read a mounted file.
fn read_reason(e: &std::io::Error, path: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied: faultline runs as uid {} here (65532 in the container image) \
             and needs read access: `chmod a+r {path}`, or mount it with that owner",
            current_uid().map_or_else(|| "?".to_string(), |uid| uid.to_string())
        ),
        _ => e.to_string(),
    }
}

/// The effective uid, read from `/proc` (no libc binding needed for one number).
fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries are named for a person: by name when they have one, always by position.
    #[test]
    fn entries_are_described_by_name_and_position() {
        assert_eq!(describe_entry(0, "redis"), "proxy \"redis\" (entry 1)");
        assert_eq!(describe_entry(2, ""), "entry 3");
    }

    /// A missing file says so in plain words; a permission problem says what to do.
    #[test]
    fn read_reasons() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(read_reason(&missing, "/x.json"), "no such file");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let text = read_reason(&denied, "/x.json");
        assert!(
            text.contains("65532") && text.contains("chmod a+r /x.json"),
            "{text}"
        );
    }
}
