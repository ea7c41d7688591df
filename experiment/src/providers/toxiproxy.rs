//! chaostoolkit-toxiproxy's functions (`chaostoxi.proxy.actions`, `chaostoxi.proxy.probes`,
//! `chaostoxi.toxic.actions`), with the extension's arguments, return values and failures, run
//! against every API of the fleet. Before an action changes a proxy it is recorded for
//! automatic cleanup.

use super::args::{opt_text, text, truthy};
use super::Context;
use crate::functions::{TOXI_PROXY_ACTIONS, TOXI_PROXY_PROBES, TOXI_TOXIC_ACTIONS};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// Runs one chaostoxi function.
pub async fn call(
    module: &str,
    func: &str,
    a: &Map<String, Value>,
    ctx: &Context,
) -> Result<Value, String> {
    match (module, func) {
        (TOXI_PROXY_ACTIONS, "create_proxy") => create_proxy(a, ctx).await,
        (TOXI_PROXY_ACTIONS, "disable_proxy") => {
            modify_proxy(&text(a, "proxy_name")?, json!({"enabled": false}), ctx).await
        }
        (TOXI_PROXY_ACTIONS, "enable_proxy") => {
            modify_proxy(&text(a, "proxy_name")?, json!({"enabled": true}), ctx).await
        }
        (TOXI_PROXY_ACTIONS, "modify_proxy") => {
            let mut body = Map::new();
            if let Some(l) = opt_text(a, "listen_address")? {
                body.insert("listen".into(), l.into());
            }
            if let Some(u) = opt_text(a, "upstream_address")? {
                body.insert("upstream".into(), u.into());
            }
            if let Some(e) = a.get("enabled").filter(|e| !e.is_null()) {
                body.insert("enabled".into(), Value::Bool(truthy(e)));
            }
            modify_proxy(&text(a, "proxy_name")?, Value::Object(body), ctx).await
        }
        (TOXI_PROXY_ACTIONS, "delete_proxy") => {
            let name = text(a, "proxy_name")?;
            for base in &ctx.apis {
                ctx.ledger.before_change(&ctx.api, base, &name).await?;
                // The extension only logs a failed delete.
                let _ = ctx
                    .api
                    .call(Method::DELETE, &format!("{base}/proxies/{name}"), None)
                    .await;
            }
            Ok(Value::Null)
        }
        (TOXI_PROXY_ACTIONS, "reset") => {
            let mut all_ok = true;
            for base in &ctx.apis {
                ctx.ledger.before_reset(&ctx.api, base).await?;
                let (status, _) = ctx
                    .api
                    .call(Method::POST, &format!("{base}/reset"), None)
                    .await
                    .map_err(|e| e.to_string())?;
                all_ok &= status.is_success();
            }
            Ok(Value::Bool(all_ok))
        }
        (TOXI_PROXY_PROBES, "proxy_exist") => {
            let name = text(a, "proxy_name")?;
            let mut all = true;
            for base in &ctx.apis {
                let proxy = read_proxy(&name, base, ctx).await?;
                all &= proxy.is_some_and(|p| p.get("name").and_then(Value::as_str) == Some(&name));
            }
            Ok(Value::Bool(all))
        }
        (TOXI_PROXY_PROBES, "get_proxy_attribute") => {
            let name = text(a, "proxy_name")?;
            let attribute = text(a, "attribute")?;
            let mut values = Vec::new();
            for base in &ctx.apis {
                let value = match read_proxy(&name, base, ctx).await? {
                    Some(p) => p
                        .get(&attribute)
                        .cloned()
                        .ok_or_else(|| format!("KeyError: '{attribute}'"))?,
                    None => Value::Null,
                };
                values.push(value);
            }
            Ok(agree(values))
        }
        (TOXI_TOXIC_ACTIONS, "delete_toxic") => {
            let proxy = text(a, "for_proxy")?;
            let toxic = text(a, "toxic_name")?;
            let mut all_ok = true;
            for base in &ctx.apis {
                ctx.ledger.before_change(&ctx.api, base, &proxy).await?;
                let url = format!("{base}/proxies/{proxy}/toxics/{toxic}");
                let (status, _) = ctx
                    .api
                    .call(Method::DELETE, &url, None)
                    .await
                    .map_err(|e| e.to_string())?;
                all_ok &= status.is_success();
            }
            Ok(Value::Bool(all_ok))
        }
        (TOXI_TOXIC_ACTIONS, "create_toxic") => {
            let attributes = a.get("attributes").cloned().unwrap_or(Value::Null);
            create_toxic(a, &text(a, "toxic_type")?, attributes, ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_latency_toxic") => {
            let jitter = a.get("jitter").cloned().unwrap_or(json!(0));
            let attributes = json!({"latency": a["latency"], "jitter": jitter});
            create_toxic(a, "latency", attributes, ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_bandwith_degradation_toxic") => {
            create_toxic(a, "bandwidth", json!({"rate": a["rate"]}), ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_slow_connection_close_toxic") => {
            create_toxic(a, "slow_close", json!({"delay": a["delay"]}), ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_timeout_toxic") => {
            create_toxic(a, "timeout", json!({"timeout": a["timeout"]}), ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_slicer_toxic") => {
            let attributes = json!({"average_size": a["average_size"],
                                    "size_variation": a["size_variation"], "delay": a["delay"]});
            create_toxic(a, "slicer", attributes, ctx).await
        }
        (TOXI_TOXIC_ACTIONS, "create_limiter_toxic") => {
            create_toxic(a, "limit_data", json!({"bytes": a["bytes_limit"]}), ctx).await
        }
        _ => Err(format!("{module}.{func} is not a native function")),
    }
}

/// One value when every instance agrees, else the list of what each one said.
fn agree(values: Vec<Value>) -> Value {
    match values.first() {
        Some(first) if values.iter().all(|v| v == first) => first.clone(),
        _ => Value::Array(values),
    }
}

/// The extension's `env:NAME` convention for upstream host and port.
fn from_env_if_prefixed(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => match s.strip_prefix("env:") {
            Some(key) => std::env::var(key).map_err(|_| format!("KeyError: '{key}'")),
            None => Ok(s.clone()),
        },
        other => Ok(other.to_string()),
    }
}

async fn create_proxy(a: &Map<String, Value>, ctx: &Context) -> Result<Value, String> {
    let name = text(a, "proxy_name")?;
    let upstream = format!(
        "{}:{}",
        from_env_if_prefixed(&a["upstream_host"])?,
        from_env_if_prefixed(&a["upstream_port"])?
    );
    let listen = format!(
        "{}:{}",
        opt_text(a, "listen_host")?.unwrap_or_else(|| "0.0.0.0".into()),
        opt_text(a, "listen_port")?.unwrap_or_else(|| "0".into())
    );
    let enabled = a.get("enabled").map(truthy).unwrap_or(true);
    let body = json!({"name": name, "listen": listen, "upstream": upstream, "enabled": enabled});
    let mut port = None;
    for base in &ctx.apis {
        ctx.ledger.before_change(&ctx.api, base, &name).await?;
        let proxy = ctx
            .api
            .ok(Method::POST, &format!("{base}/proxies"), Some(&body))
            .await
            .map_err(|e| format!("AssertionError: unable to create proxy: {e}"))?;
        let p = listen_port(&proxy).ok_or_else(|| {
            format!("AssertionError: unable to parse port from proxy response {proxy}")
        })?;
        port.get_or_insert(p);
    }
    if let Some(port) = port {
        ctx.set_configuration(format!("{name}_PORT"), Value::String(port));
    }
    Ok(Value::Bool(true))
}

async fn modify_proxy(name: &str, body: Value, ctx: &Context) -> Result<Value, String> {
    let mut port = None;
    for base in &ctx.apis {
        ctx.ledger.before_change(&ctx.api, base, name).await?;
        let proxy = ctx
            .api
            .ok(Method::POST, &format!("{base}/proxies/{name}"), Some(&body))
            .await
            .map_err(|e| format!("AssertionError: unable to modify proxy {name}: {e}"))?;
        port = port.or_else(|| listen_port(&proxy));
    }
    if let Some(port) = port {
        ctx.set_configuration(format!("{name}_PORT"), Value::String(port));
    }
    Ok(Value::Bool(true))
}

fn listen_port(proxy: &Value) -> Option<String> {
    let listen = proxy.get("listen")?.as_str()?;
    let port = listen.rsplit(':').next()?;
    port.chars()
        .all(|c| c.is_ascii_digit())
        .then(|| port.to_string())
}

async fn read_proxy(name: &str, base: &str, ctx: &Context) -> Result<Option<Value>, String> {
    let (status, body) = ctx
        .api
        .call(Method::GET, &format!("{base}/proxies/{name}"), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status.is_success().then_some(body))
}

async fn create_toxic(
    a: &Map<String, Value>,
    kind: &str,
    attributes: Value,
    ctx: &Context,
) -> Result<Value, String> {
    let proxy = text(a, "for_proxy")?;
    let name = text(a, "toxic_name")?;
    let body = json!({
        "name": name,
        "type": kind,
        "stream": a.get("stream").cloned().unwrap_or(json!("downstream")),
        "toxicity": a.get("toxicity").cloned().unwrap_or(json!(1.0)),
        "attributes": attributes,
    });
    let mut same = true;
    for base in &ctx.apis {
        ctx.ledger.before_change(&ctx.api, base, &proxy).await?;
        let toxic = ctx
            .api
            .ok(
                Method::POST,
                &format!("{base}/proxies/{proxy}/toxics"),
                Some(&body),
            )
            .await
            .map_err(|e| format!("unable to create toxic for proxy {proxy}: {e}"))?;
        same &= toxic.get("name").and_then(Value::as_str) == Some(name.as_str());
    }
    Ok(Value::Bool(same))
}
