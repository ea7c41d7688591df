//! `faultline.probes.http_load`: N requests (or requests for a duration) at a concurrency,
//! reported as latency percentiles and an error rate, the numbers steady states are made of.
//!
//! Output: `{"requests", "errors", "error_rate", "error_percent", "p50_ms", "p95_ms",
//! "p99_ms", "min_ms", "max_ms", "mean_ms"}`; a tolerance picks one with `target`, e.g.
//! `{"type": "range", "range": [0, 300], "target": "p99_ms"}`.

use super::args::{opt_f64, opt_text};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    pub urls: Vec<String>,
    pub method: reqwest::Method,
    /// Stop after this many requests (default 100 when no duration is given).
    pub requests: Option<usize>,
    /// Or keep sending for this long.
    pub duration: Option<Duration>,
    pub concurrency: usize,
    pub timeout: Duration,
    /// A status at or above this counts as an error (default 500); so do timeouts and
    /// connection failures.
    pub error_status_from: u16,
}

impl Plan {
    pub fn from_args(a: &Map<String, Value>) -> Result<Plan, String> {
        let mut urls: Vec<String> = Vec::new();
        if let Some(u) = opt_text(a, "url")? {
            urls.push(u);
        }
        match a.get("urls") {
            Some(Value::Array(list)) => {
                for u in list {
                    urls.push(
                        u.as_str()
                            .ok_or("argument 'urls' must be a list of strings")?
                            .to_string(),
                    );
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => return Err(format!("argument 'urls' must be a list, not {other}")),
        }
        if urls.is_empty() {
            return Err("http_load needs `url` or `urls`".into());
        }
        let count = |name: &str| -> Result<Option<usize>, String> {
            match opt_f64(a, name)? {
                Some(n) if n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
                Some(n) => Err(format!(
                    "argument '{name}' must be a positive integer, not {n}"
                )),
                None => Ok(None),
            }
        };
        let requests = count("requests")?;
        let duration = match opt_f64(a, "duration_s")? {
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("argument 'duration_s' must be a positive number of seconds")?,
            ),
            None => None,
        };
        let method = opt_text(a, "method")?.unwrap_or_else(|| "GET".into());
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("HTTP method {method:?} is invalid"))?;
        let timeout = Duration::try_from_secs_f64(opt_f64(a, "timeout_s")?.unwrap_or(10.0))
            .map_err(|_| "argument 'timeout_s' must be a positive number of seconds")?;
        let error_status_from = opt_f64(a, "error_status_from")?.unwrap_or(500.0) as u16;
        Ok(Plan {
            urls,
            method,
            requests: requests.or(if duration.is_none() { Some(100) } else { None }),
            duration,
            concurrency: count("concurrency")?.unwrap_or(1),
            timeout,
            error_status_from,
        })
    }
}

/// Sends the load and summarizes it.
pub async fn run(plan: &Plan) -> Result<Value, String> {
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = plan.duration.map(|d| Instant::now() + d);
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let client = client.clone();
        let next = next.clone();
        let plan = plan.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if plan.requests.is_some_and(|n| i >= n)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let url = &plan.urls[i % plan.urls.len()];
                let started = Instant::now();
                let result = client.request(plan.method.clone(), url).send().await;
                let ok = match result {
                    Ok(r) => {
                        let ok = r.status().as_u16() < plan.error_status_from;
                        // Reading the body is part of the latency a user sees.
                        ok & r.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                samples.push((started.elapsed(), ok));
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for w in workers {
        samples.extend(w.await.map_err(|e| e.to_string())?);
    }
    Ok(summarize(&samples))
}

/// Percentiles by nearest rank, error rate as a fraction and a percentage.
pub fn summarize(samples: &[(Duration, bool)]) -> Value {
    let mut ms: Vec<f64> = samples
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let errors = samples.iter().filter(|(_, ok)| !ok).count();
    let n = samples.len();
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let rate = if n == 0 {
        0.0
    } else {
        errors as f64 / n as f64
    };
    json!({
        "requests": n,
        "errors": errors,
        "error_rate": round(rate),
        "error_percent": round(rate * 100.0),
        "p50_ms": round(percentile(&ms, 50.0)),
        "p95_ms": round(percentile(&ms, 95.0)),
        "p99_ms": round(percentile(&ms, 99.0)),
        "min_ms": round(ms.first().copied().unwrap_or(0.0)),
        "max_ms": round(ms.last().copied().unwrap_or(0.0)),
        "mean_ms": round(if n == 0 { 0.0 } else { ms.iter().sum::<f64>() / n as f64 }),
    })
}

/// The nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest rank: p99 of 100 values is the 99th, p50 of 4 values the 2nd.
    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    /// One slow request in a hundred shows in p99 only; errors count in the rate.
    #[test]
    fn summary_fields() {
        let mut s = vec![(Duration::from_millis(10), true); 99];
        s.push((Duration::from_millis(900), false));
        let out = summarize(&s);
        assert_eq!(out["requests"], 100);
        assert_eq!(out["errors"], 1);
        assert_eq!(out["error_percent"], 1.0);
        assert_eq!(out["p50_ms"], 10.0);
        assert_eq!(out["p99_ms"], 10.0);
        assert_eq!(out["max_ms"], 900.0);
    }

    /// Neither url nor urls is refused.
    #[test]
    fn needs_a_url() {
        assert!(Plan::from_args(&Map::new()).unwrap_err().contains("url"));
    }
}
