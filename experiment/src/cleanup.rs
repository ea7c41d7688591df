//! Automatic cleanup: before an action first changes a proxy on an instance, the proxy is
//! recorded as it was; after the rollbacks, every recorded proxy is put back (toxics the run
//! added removed, toxics it removed or changed re-added, enabled/upstream/listen restored,
//! proxies it created deleted, proxies it deleted recreated). What it restored is reported.
//!
//! [`plan`] decides the steps from the two states (no I/O, unit-tested); [`Ledger::restore`]
//! carries them out.

use crate::fleet::Api;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::sync::Mutex;

/// One change back.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    DeleteProxy,
    CreateProxy(Value),
    UpdateProxy(Value),
    DeleteToxic(String),
    AddToxic(Value),
}

/// Proxies as they were before the run first changed them, per API.
#[derive(Debug, Default)]
pub struct Ledger {
    /// (api, proxy name, state before: `None` when it did not exist).
    entries: Mutex<Vec<(String, String, Option<Value>)>>,
}

impl Ledger {
    fn known(&self, api: &str, proxy: &str) -> bool {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .any(|(a, p, _)| a == api && p == proxy)
    }

    fn record(&self, api: &str, proxy: &str, before: Option<Value>) {
        if !self.known(api, proxy) {
            self.entries
                .lock()
                .unwrap()
                .push((api.to_string(), proxy.to_string(), before));
        }
    }

    /// Records `proxy` on `api` as it is now, unless already recorded.
    pub async fn before_change(&self, api: &Api, base: &str, proxy: &str) -> Result<(), String> {
        if self.known(base, proxy) {
            return Ok(());
        }
        let url = format!("{base}/proxies/{proxy}");
        let (status, body) = api
            .call(Method::GET, &url, None)
            .await
            .map_err(|e| e.to_string())?;
        let before = match status {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => Some(body),
            s => return Err(format!("GET {url}: {s}")),
        };
        self.record(base, proxy, before);
        Ok(())
    }

    /// Records every proxy on `api` (before a reset).
    pub async fn before_reset(&self, api: &Api, base: &str) -> Result<(), String> {
        let all = api
            .ok(Method::GET, &format!("{base}/proxies"), None)
            .await
            .map_err(|e| e.to_string())?;
        for (name, proxy) in all.as_object().cloned().unwrap_or_default() {
            self.record(base, &name, Some(proxy));
        }
        Ok(())
    }

    /// Puts every recorded proxy back; returns what was restored and what could not be.
    pub async fn restore(&self, api: &Api) -> (Vec<String>, Vec<String>) {
        let entries = self.entries.lock().unwrap().clone();
        let mut restored = Vec::new();
        let mut errors = Vec::new();
        for (base, name, before) in entries {
            let url = format!("{base}/proxies/{name}");
            let now = match api.call(Method::GET, &url, None).await {
                Ok((StatusCode::NOT_FOUND, _)) => None,
                Ok((s, body)) if s.is_success() => Some(body),
                Ok((s, _)) => {
                    errors.push(format!("{base}: cannot read proxy {name}: {s}"));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{base}: cannot read proxy {name}: {e}"));
                    continue;
                }
            };
            for step in plan(before.as_ref(), now.as_ref()) {
                let (method, target, body, what) = match &step {
                    Step::DeleteProxy => (
                        Method::DELETE,
                        url.clone(),
                        None,
                        format!("deleted proxy {name} (created by the experiment)"),
                    ),
                    Step::CreateProxy(b) => (
                        Method::POST,
                        format!("{base}/proxies"),
                        Some(b.clone()),
                        format!("recreated proxy {name}"),
                    ),
                    Step::UpdateProxy(b) => (
                        Method::POST,
                        url.clone(),
                        Some(b.clone()),
                        format!("restored proxy {name} ({})", describe_fields(b)),
                    ),
                    Step::DeleteToxic(t) => (
                        Method::DELETE,
                        format!("{url}/toxics/{t}"),
                        None,
                        format!("removed toxic {t} from proxy {name}"),
                    ),
                    Step::AddToxic(b) => (
                        Method::POST,
                        format!("{url}/toxics"),
                        Some(b.clone()),
                        format!(
                            "re-added toxic {} to proxy {name}",
                            b.get("name").and_then(Value::as_str).unwrap_or("?")
                        ),
                    ),
                };
                match api.ok(method, &target, body.as_ref()).await {
                    Ok(_) => restored.push(format!("{base}: {what}")),
                    Err(e) => errors.push(format!("{base}: could not {what}: {e}")),
                }
            }
        }
        (restored, errors)
    }
}

fn describe_fields(body: &Value) -> String {
    body.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The steps that turn `now` back into `before`.
pub fn plan(before: Option<&Value>, now: Option<&Value>) -> Vec<Step> {
    match (before, now) {
        (None, None) => vec![],
        (None, Some(_)) => vec![Step::DeleteProxy],
        (Some(before), None) => {
            let mut body = Map::new();
            for key in ["name", "listen", "upstream", "enabled"] {
                if let Some(v) = before.get(key) {
                    body.insert(key.into(), v.clone());
                }
            }
            let mut steps = vec![Step::CreateProxy(Value::Object(body))];
            steps.extend(
                toxics(before)
                    .into_iter()
                    .map(|t| Step::AddToxic(toxic_body(t))),
            );
            steps
        }
        (Some(before), Some(now)) => {
            let mut steps = Vec::new();
            let mut update = Map::new();
            for key in ["upstream", "listen", "enabled"] {
                if before.get(key) != now.get(key) {
                    if let Some(v) = before.get(key) {
                        update.insert(key.into(), v.clone());
                    }
                }
            }
            if !update.is_empty() {
                steps.push(Step::UpdateProxy(Value::Object(update)));
            }
            let then = toxics(before);
            let current = toxics(now);
            for t in &current {
                let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                let same = then
                    .iter()
                    .find(|b| b.get("name").and_then(Value::as_str) == Some(name));
                match same {
                    Some(b) if same_toxic(b, t) => {}
                    _ => steps.push(Step::DeleteToxic(name.to_string())),
                }
            }
            for b in &then {
                let name = b.get("name").and_then(Value::as_str);
                let still = current
                    .iter()
                    .any(|t| t.get("name").and_then(Value::as_str) == name && same_toxic(b, t));
                if !still {
                    steps.push(Step::AddToxic(toxic_body(b)));
                }
            }
            steps
        }
    }
}

fn toxics(proxy: &Value) -> Vec<&Value> {
    proxy
        .get("toxics")
        .and_then(Value::as_array)
        .map(|t| t.iter().collect())
        .unwrap_or_default()
}

/// Two toxics are the same fault if everything but their live state matches.
fn same_toxic(a: &Value, b: &Value) -> bool {
    [
        "type",
        "stream",
        "toxicity",
        "attributes",
        "target",
        "schedule",
    ]
    .iter()
    .all(|k| a.get(*k) == b.get(*k))
}

/// A toxic as the API returned it, as a creation body (its time left becomes `duration_ms`).
fn toxic_body(t: &Value) -> Value {
    let mut body = t.as_object().cloned().unwrap_or_default();
    body.remove("active");
    if let Some(left) = body.remove("remaining_ms") {
        body.insert("duration_ms".into(), left);
    }
    if body.get("target").is_some_and(Value::is_null) {
        body.remove("target");
    }
    Value::Object(body)
}

/// A proxy snapshot, for tests.
pub fn proxy_json(name: &str, enabled: bool, toxics: Vec<Value>) -> Value {
    json!({"name": name, "listen": "127.0.0.1:1000", "upstream": "127.0.0.1:2000",
           "enabled": enabled, "toxics": toxics})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(name: &str, ms: u64) -> Value {
        json!({"name": name, "type": "latency", "stream": "downstream", "toxicity": 1,
               "attributes": {"latency": ms, "jitter": 0}})
    }

    /// An untouched proxy needs nothing.
    #[test]
    fn unchanged_needs_nothing() {
        let p = proxy_json("db", true, vec![latency("a", 5)]);
        assert!(plan(Some(&p), Some(&p)).is_empty());
    }

    /// Added toxics are removed and a disabled proxy is enabled again.
    #[test]
    fn added_toxic_and_disable_are_undone() {
        let before = proxy_json("db", true, vec![]);
        let now = proxy_json("db", false, vec![latency("slow", 5000)]);
        assert_eq!(
            plan(Some(&before), Some(&now)),
            vec![
                Step::UpdateProxy(json!({"enabled": true})),
                Step::DeleteToxic("slow".into())
            ]
        );
    }

    /// A toxic the run changed is replaced by the original; one it removed comes back.
    #[test]
    fn changed_and_removed_toxics_come_back() {
        let before = proxy_json("db", true, vec![latency("a", 5), latency("b", 7)]);
        let now = proxy_json("db", true, vec![latency("a", 500)]);
        assert_eq!(
            plan(Some(&before), Some(&now)),
            vec![
                Step::DeleteToxic("a".into()),
                Step::AddToxic(latency("a", 5)),
                Step::AddToxic(latency("b", 7)),
            ]
        );
    }

    /// A proxy the run created is deleted; one it deleted is recreated with its toxics.
    #[test]
    fn created_and_deleted_proxies() {
        let p = proxy_json("db", true, vec![latency("a", 5)]);
        assert_eq!(plan(None, Some(&p)), vec![Step::DeleteProxy]);
        let steps = plan(Some(&p), None);
        assert!(matches!(&steps[0], Step::CreateProxy(b) if b["name"] == "db"));
        assert_eq!(steps[1], Step::AddToxic(latency("a", 5)));
    }

    /// A scheduled toxic's live `active` flag is not a change.
    #[test]
    fn live_state_is_not_a_change() {
        let mut a = latency("f", 5);
        a["schedule"] = json!({"on_ms": 100, "off_ms": 100});
        let mut b = a.clone();
        a["active"] = json!(true);
        b["active"] = json!(false);
        let before = proxy_json("db", true, vec![a]);
        let now = proxy_json("db", true, vec![b]);
        assert!(plan(Some(&before), Some(&now)).is_empty());
    }
}
