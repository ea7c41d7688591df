//! faultline's own functions, for what chaostoolkit-toxiproxy cannot say.
//!
//! `faultline.actions`: `add_toxic` (any toxic type, HTTP toxics included, with faultline's
//! `duration_ms`, `schedule` and `target`), `remove_toxic`, `disable_proxy`, `enable_proxy`,
//! `reset`; each on every instance of the fleet, recorded for cleanup first.
//!
//! `faultline.probes`: `http_load` (latency percentiles and error rate, see [`super::load`]),
//! `prometheus_value`, `prometheus_rate` and `seconds_until_metric` (see [`super::prometheus`]).

use super::args::{f64 as num, opt_f64, opt_text, text};
use super::{load, prometheus, Context};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// Runs one `faultline.actions` function.
pub async fn action(func: &str, a: &Map<String, Value>, ctx: &Context) -> Result<Value, String> {
    match func {
        "add_toxic" => add_toxic(a, ctx).await,
        "remove_toxic" => {
            let proxy = text(a, "proxy")?;
            let name = text(a, "name")?;
            each(
                ctx,
                &proxy,
                Method::DELETE,
                &format!("/toxics/{name}"),
                None,
            )
            .await
        }
        "disable_proxy" | "enable_proxy" => {
            let proxy = text(a, "proxy")?;
            let body = json!({"enabled": func == "enable_proxy"});
            each(ctx, &proxy, Method::POST, "", Some(&body)).await
        }
        "reset" => {
            for base in &ctx.apis {
                ctx.ledger.before_reset(&ctx.api, base).await?;
                ctx.api
                    .ok(Method::POST, &format!("{base}/reset"), None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Value::Bool(true))
        }
        other => Err(format!("faultline.actions has no function '{other}'")),
    }
}

/// Runs one `faultline.probes` function.
pub async fn probe(func: &str, a: &Map<String, Value>) -> Result<Value, String> {
    match func {
        "http_load" => load::run(&load::Plan::from_args(a)?).await,
        "prometheus_value" => {
            let labels = labels(a)?;
            prometheus::value(&text(a, "url")?, &text(a, "metric")?, &labels)
                .await
                .map(Value::from)
        }
        "prometheus_rate" => {
            let labels = labels(a)?;
            prometheus::rate(
                &text(a, "url")?,
                &text(a, "metric")?,
                &labels,
                num(a, "window_s")?,
            )
            .await
            .map(Value::from)
        }
        "seconds_until_metric" => {
            let labels = labels(a)?;
            let range = match a.get("range").and_then(Value::as_array).map(Vec::as_slice) {
                Some([lo, hi]) => (
                    lo.as_f64().ok_or("range must be two numbers")?,
                    hi.as_f64().ok_or("range must be two numbers")?,
                ),
                _ => return Err("argument 'range' must be [lower, upper]".into()),
            };
            prometheus::seconds_until(
                &text(a, "url")?,
                &text(a, "metric")?,
                &labels,
                range,
                num(a, "timeout_s")?,
                opt_f64(a, "interval_s")?.unwrap_or(0.2),
            )
            .await
        }
        other => Err(format!("faultline.probes has no function '{other}'")),
    }
}

fn labels(a: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    match a.get("labels") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), v)
            })
            .collect()),
        Some(other) => Err(format!("argument 'labels' must be a mapping, not {other}")),
    }
}

async fn add_toxic(a: &Map<String, Value>, ctx: &Context) -> Result<Value, String> {
    let proxy = text(a, "proxy")?;
    let kind = text(a, "type")?;
    let stream = opt_text(a, "stream")?.unwrap_or_else(|| "downstream".into());
    let name = opt_text(a, "name")?.unwrap_or_else(|| format!("{kind}_{stream}"));
    let mut body = json!({
        "name": name,
        "type": kind,
        "stream": stream,
        "toxicity": a.get("toxicity").cloned().unwrap_or(json!(1.0)),
        "attributes": a.get("attributes").cloned().unwrap_or(json!({})),
    });
    for key in ["duration_ms", "schedule", "target"] {
        if let Some(v) = a.get(key).filter(|v| !v.is_null()) {
            body[key] = v.clone();
        }
    }
    each(ctx, &proxy, Method::POST, "/toxics", Some(&body)).await
}

/// The same call on `proxy` at every instance; returns the first instance's answer.
async fn each(
    ctx: &Context,
    proxy: &str,
    method: Method,
    suffix: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut first = None;
    for base in &ctx.apis {
        ctx.ledger.before_change(&ctx.api, base, proxy).await?;
        let url = format!("{base}/proxies/{proxy}{suffix}");
        let reply = ctx
            .api
            .ok(method.clone(), &url, body)
            .await
            .map_err(|e| e.to_string())?;
        first.get_or_insert(reply);
    }
    Ok(first.unwrap_or(Value::Null))
}
