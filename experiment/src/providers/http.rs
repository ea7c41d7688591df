//! The `http` provider (chaoslib's `run_http_activity`): one request; the output is
//! `{"status", "headers", "body"}`, the body parsed when the reply says
//! `Content-Type: application/json`. Failing to connect or timing out fails the activity; an
//! error status does not (a tolerance may expect it).

use crate::fleet::{one_line, root_cause};
use reqwest::Method;
use serde_json::{Map, Value};
use std::time::Duration;

/// Runs the substituted provider object.
pub async fn run(p: &Value, _has_tolerance: bool) -> Result<Value, String> {
    let url = p
        .get("url")
        .and_then(Value::as_str)
        .ok_or("an HTTP activity needs a `url` string")?;
    let method = p
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("HTTP method {method:?} is invalid"))?;
    let headers: Map<String, Value> = p
        .get("headers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut builder = reqwest::Client::builder();
    match p.get("timeout") {
        Some(Value::Number(n)) => {
            builder = builder.timeout(seconds(n.as_f64().unwrap_or(0.0))?);
        }
        Some(Value::Array(pair)) if pair.len() == 2 => {
            let connect = pair[0]
                .as_f64()
                .ok_or("timeout [connect, read] must be numbers")?;
            let read = pair[1]
                .as_f64()
                .ok_or("timeout [connect, read] must be numbers")?;
            builder = builder
                .connect_timeout(seconds(connect)?)
                .timeout(seconds(connect + read)?);
        }
        None | Some(Value::Null) => {}
        Some(other) => return Err(format!("HTTP timeout must be seconds, not {other}")),
    }
    let client = builder.build().map_err(|e| one_line(&e))?;
    let mut request = client.request(method.clone(), url);
    let mut json_body = false;
    for (name, value) in &headers {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if name.eq_ignore_ascii_case("content-type") && value == "application/json" {
            json_body = true;
        }
        request = request.header(name, value);
    }
    if let Some(arguments) = p.get("arguments").filter(|a| !a.is_null()) {
        request = if method == Method::GET {
            request.query(&query_pairs(arguments))
        } else if json_body {
            request.json(arguments)
        } else if let Value::String(raw) = arguments {
            request.body(raw.clone())
        } else {
            request.form(&query_pairs(arguments))
        };
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            "activity took too long to complete".to_string()
        } else {
            format!("failed to connect to {url}: {}", root_cause(&e))
        }
    })?;
    let status = response.status().as_u16();
    let mut reply_headers = Map::new();
    for (name, value) in response.headers() {
        reply_headers.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let text = response.text().await.map_err(|e| {
        if e.is_timeout() {
            "activity took too long to complete".to_string()
        } else {
            format!("reading the reply from {url}: {}", one_line(&e))
        }
    })?;
    let body = if is_json {
        serde_json::from_str(&text).map_err(|e| format!("{url} sent invalid JSON: {e}"))?
    } else {
        Value::String(text)
    };
    Ok(serde_json::json!({"status": status, "headers": reply_headers, "body": body}))
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("timeout {s} is not a valid number of seconds"))
}

/// A mapping as `key=value` pairs (lists repeat the key, as `requests` does).
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    if let Some(map) = arguments.as_object() {
        for (k, v) in map {
            match v {
                Value::Array(items) => out.extend(items.iter().map(|i| (k.clone(), text(i)))),
                Value::Null => {}
                other => out.push((k.clone(), text(other))),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server that answers `reply` and hands back the request it read.
    async fn serve_once(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            socket.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (url, task)
    }

    /// GET arguments become the query string; a JSON reply's body is parsed; the status and
    /// headers are in the output.
    #[tokio::test]
    async fn get_with_query_and_json_body() {
        let (url, request) = serve_once(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: 15\r\nconnection: close\r\n\r\n{\"state\":\"up\"}\n",
        )
        .await;
        let out = run(
            &json!({"url": format!("{url}/health"), "arguments": {"deep": 1}}),
            true,
        )
        .await
        .unwrap();
        assert_eq!(out["status"], 503);
        assert_eq!(out["body"], json!({"state": "up"}));
        assert_eq!(out["headers"]["content-type"], "application/json");
        assert!(request
            .await
            .unwrap()
            .starts_with("GET /health?deep=1 HTTP/1.1"));
    }

    /// A refused connection fails the activity and names the URL.
    #[tokio::test]
    async fn refused_connection_fails() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let err = run(&json!({"url": url, "timeout": 2}), true)
            .await
            .unwrap_err();
        assert!(
            err.starts_with(&format!("failed to connect to {url}")),
            "{err}"
        );
    }
}
