//! Reading a value from a Prometheus text endpoint (`/metrics`): a gauge such as a circuit
//! breaker's state, a counter's rate over a window, or how long until a value enters a range.
//! Parsing is sans-IO; the fetches are thin.

use crate::fleet::one_line;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Sums every sample of `metric` whose labels include all of `labels`.
pub fn sample(text: &str, metric: &str, labels: &[(String, String)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        if name != metric {
            continue;
        }
        let (label_text, value_text) = match rest.strip_prefix('{') {
            Some(inner) => match inner.rfind('}') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => continue,
            },
            None => ("", rest),
        };
        let found = parse_labels(label_text);
        if !labels
            .iter()
            .all(|(k, v)| found.iter().any(|(fk, fv)| fk == k && fv == v))
        {
            continue;
        }
        let Some(value) = value_text.split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        *total.get_or_insert(0.0) += value;
    }
    total
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = &body[end..];
    }
    out
}

async fn fetch(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| one_line(&e))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("failed to read metrics from {url}: {}", one_line(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .text()
        .await
        .map_err(|e| format!("failed to read metrics from {url}: {}", one_line(&e)))
}

fn describe(metric: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return metric.to_string();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{metric}{{{}}}", inner.join(","))
}

/// The current value.
pub async fn value(url: &str, metric: &str, labels: &[(String, String)]) -> Result<f64, String> {
    let text = fetch(url).await?;
    sample(&text, metric, labels)
        .ok_or_else(|| format!("{url} has no sample of {}", describe(metric, labels)))
}

/// The per-second increase over `window_s` seconds.
pub async fn rate(
    url: &str,
    metric: &str,
    labels: &[(String, String)],
    window_s: f64,
) -> Result<f64, String> {
    let window = Duration::try_from_secs_f64(window_s)
        .ok()
        .filter(|w| !w.is_zero())
        .ok_or("window_s must be a positive number of seconds")?;
    let first = value(url, metric, labels).await?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let second = value(url, metric, labels).await?;
    Ok((second - first) / started.elapsed().as_secs_f64())
}

/// Seconds until the value is within `[lo, hi]`, polling every `interval_s`; `null` when it
/// is not within `timeout_s` (so a range tolerance on it does not hold).
pub async fn seconds_until(
    url: &str,
    metric: &str,
    labels: &[(String, String)],
    (lo, hi): (f64, f64),
    timeout_s: f64,
    interval_s: f64,
) -> Result<Value, String> {
    let timeout = Duration::try_from_secs_f64(timeout_s).map_err(|_| "invalid timeout_s")?;
    let interval =
        Duration::try_from_secs_f64(interval_s.max(0.01)).map_err(|_| "invalid interval_s")?;
    let started = Instant::now();
    loop {
        let v = value(url, metric, labels).await?;
        if lo <= v && v <= hi {
            let secs = started.elapsed().as_secs_f64();
            return Ok(Value::from((secs * 1000.0).round() / 1000.0));
        }
        if started.elapsed() >= timeout {
            return Ok(Value::Null);
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP demo_breaker_state 0 closed, 1 open, 2 half-open
# TYPE demo_breaker_state gauge
demo_breaker_state{dependency="ai"} 1
demo_requests_total{route="/search",outcome="ok"} 120
demo_requests_total{route="/search",outcome="error"} 3
demo_requests_total{route="/health",outcome="ok"} 9
demo_uptime_seconds 12.5
"#;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A labelled gauge is read exactly.
    #[test]
    fn labelled_gauge() {
        assert_eq!(
            sample(TEXT, "demo_breaker_state", &l(&[("dependency", "ai")])),
            Some(1.0)
        );
    }

    /// Samples matching a label subset are summed; a label-less metric is read too.
    #[test]
    fn subsets_sum() {
        assert_eq!(
            sample(TEXT, "demo_requests_total", &l(&[("route", "/search")])),
            Some(123.0)
        );
        assert_eq!(sample(TEXT, "demo_requests_total", &[]), Some(132.0));
        assert_eq!(sample(TEXT, "demo_uptime_seconds", &[]), Some(12.5));
    }

    /// A metric or label that is not there is no value (not zero).
    #[test]
    fn absent_is_none() {
        assert_eq!(sample(TEXT, "demo_nothing", &[]), None);
        assert_eq!(
            sample(TEXT, "demo_breaker_state", &l(&[("dependency", "db")])),
            None
        );
        assert_eq!(sample(TEXT, "demo_requests", &[]), None);
    }
}
