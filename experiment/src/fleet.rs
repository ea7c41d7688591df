//! Which faultline (or Toxiproxy) APIs a run acts on, and a small JSON client for them.
//!
//! The APIs come from, in order: `--api` (repeatable), the configuration's `faultline_apis`
//! list, chaostoolkit-toxiproxy's `toxiproxy_url` (or `toxiproxy_host` + `toxiproxy_port`),
//! else `http://127.0.0.1:8474`. A host name that resolves to several addresses (a compose
//! service with replicas, a Kubernetes headless Service) stands for one instance per address.

use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Toxiproxy's default API address.
pub const DEFAULT_API: &str = "http://127.0.0.1:8474";

/// The API URLs named by the command line or the configuration, before name resolution.
pub fn declared_apis(cli: &[String], configuration: &Map<String, Value>) -> Vec<String> {
    if !cli.is_empty() {
        return cli.to_vec();
    }
    match configuration.get("faultline_apis") {
        Some(Value::Array(list)) if !list.is_empty() => {
            return list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }
        Some(Value::String(one)) => {
            return one
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }
        _ => {}
    }
    if let Some(url) = configuration.get("toxiproxy_url").and_then(Value::as_str) {
        return vec![url.to_string()];
    }
    if let Some(host) = configuration.get("toxiproxy_host") {
        let host = host
            .as_str()
            .map(str::to_string)
            .unwrap_or(host.to_string());
        let port = match configuration.get("toxiproxy_port") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Number(p)) => p.to_string(),
            _ => "8474".into(),
        };
        return vec![format!("http://{host}:{port}")];
    }
    vec![DEFAULT_API.to_string()]
}

/// Checks each URL and expands host names that resolve to several addresses.
pub async fn resolve(declared: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in declared {
        let url = Url::parse(raw.trim_end_matches('/'))
            .map_err(|e| format!("API URL {raw:?} is invalid: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("API URL {raw:?} has no host"))?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let is_name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_err();
        let expanded = if is_name {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("API host {host:?} does not resolve: {e}"))?
                .collect();
            expand(&url, &addrs)
        } else {
            vec![trimmed(&url)]
        };
        for api in expanded {
            if !out.contains(&api) {
                out.push(api);
            }
        }
    }
    Ok(out)
}

/// One URL per distinct address when a name has several (IPv4 preferred, as `localhost` has
/// both 127.0.0.1 and ::1 for one server); the URL as written when it has one.
pub fn expand(url: &Url, addrs: &[SocketAddr]) -> Vec<String> {
    let v4: Vec<&SocketAddr> = addrs.iter().filter(|a| a.is_ipv4()).collect();
    let chosen: Vec<&SocketAddr> = if v4.is_empty() {
        addrs.iter().collect()
    } else {
        v4
    };
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    for a in chosen {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    if ips.len() <= 1 {
        return vec![trimmed(url)];
    }
    ips.into_iter()
        .map(|ip| {
            let mut u = url.clone();
            let _ = u.set_ip_host(ip);
            trimmed(&u)
        })
        .collect()
}

fn trimmed(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

/// A JSON call's failure, as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CallError(pub String);

/// A small client for the Toxiproxy v2 API.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    /// faultline's API token (`FAULTLINE_API_TOKEN`), sent as `Authorization: Bearer` to API
    /// URLs that carry no credentials of their own.
    token: Option<String>,
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

impl Api {
    pub fn new() -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let token = std::env::var("FAULTLINE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Api { http, token }
    }

    /// Adds the API token to a request for `url`, unless the URL has credentials already
    /// (`http://:TOKEN@host`, sent as Basic).
    fn authorize(&self, request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
        let has_credentials = reqwest::Url::parse(url)
            .map(|u| !u.username().is_empty() || u.password().is_some())
            .unwrap_or(false);
        match &self.token {
            Some(token) if !has_credentials => request.bearer_auth(token),
            _ => request,
        }
    }

    /// A request to `url`, with the API token when one is set.
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.authorize(self.http.request(method, url), url)
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), CallError> {
        let mut request = self.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError(format!("{method} {url}: {}", one_line(&e))))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Like [`call`](Api::call), but a non-2xx answer is an error carrying the API's message.
    pub async fn ok(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let (status, value) = self.call(method.clone(), url, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            let message = value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            Err(CallError(format!("{method} {url}: {status}: {message}")))
        }
    }

    /// Checks that every API answers `/version`.
    pub async fn check_reachable(&self, apis: &[String]) -> Result<(), String> {
        for api in apis {
            let url = format!("{api}/version");
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => return Err(format!("API {api} answered {} to /version", r.status())),
                Err(e) => return Err(format!("API {api} is unreachable: {}", one_line(&e))),
            }
        }
        Ok(())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// The innermost cause of an error (for reqwest: "Connection refused (os error 111)").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error and its causes on one line.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// `--api` wins, then `faultline_apis`, then the extension's keys, then the default.
    #[test]
    fn api_precedence() {
        let conf = map(
            json!({"faultline_apis": ["http://a:1", "http://b:2"], "toxiproxy_url": "http://c:3"}),
        );
        assert_eq!(declared_apis(&["http://x:9".into()], &conf), ["http://x:9"]);
        assert_eq!(declared_apis(&[], &conf), ["http://a:1", "http://b:2"]);
        let conf = map(json!({"toxiproxy_host": "h", "toxiproxy_port": 9}));
        assert_eq!(declared_apis(&[], &conf), ["http://h:9"]);
        let conf = map(json!({"toxiproxy_host": "h"}));
        assert_eq!(declared_apis(&[], &conf), ["http://h:8474"]);
        assert_eq!(declared_apis(&[], &Map::new()), [DEFAULT_API]);
    }

    /// A name with three addresses is three instances; one with v4 and v6 loopback is one.
    #[test]
    fn names_expand_per_address() {
        let url = Url::parse("http://toxiproxy:8474").unwrap();
        let three: Vec<SocketAddr> = ["10.0.0.1:8474", "10.0.0.2:8474", "10.0.0.3:8474"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            expand(&url, &three),
            [
                "http://10.0.0.1:8474",
                "http://10.0.0.2:8474",
                "http://10.0.0.3:8474"
            ]
        );
        let local: Vec<SocketAddr> = ["127.0.0.1:8474", "[::1]:8474"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(expand(&url, &local), ["http://toxiproxy:8474"]);
    }
}
