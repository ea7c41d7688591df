//! Text output for people: aligned tables and `toxiproxy-cli`-like toxic lines.

use crate::Outcome;
use faultline_client::{ProxyInfo, Stream, ToxicInfo};
use serde_json::Value;
use std::fmt::Write;

/// What faultline-cli prints for `outcome`.
pub fn render(outcome: &Outcome) -> String {
    match outcome {
        Outcome::List(infos) => proxy_table(infos),
        Outcome::Inspect(info) => inspect(info),
        Outcome::Created(p) => format!(
            "Created new {}proxy {} listening on {} (upstream {})\n",
            match p.protocol {
                faultline_client::Protocol::Http => "HTTP ",
                faultline_client::Protocol::Tcp => "",
            },
            p.name,
            p.listen,
            p.upstream
        ),
        Outcome::Toggled(p) => format!(
            "Proxy {} is now {}\n",
            p.name,
            if p.enabled { "enabled" } else { "disabled" }
        ),
        Outcome::Deleted(name) => format!("Deleted proxy {name}\n"),
        Outcome::Reset => "Reset: every proxy enabled, every toxic removed\n".into(),
        Outcome::Version {
            server,
            faultline,
            url,
        } => match faultline {
            Some(faultline) => format!(
                "faultline-cli {}\nserver at {url}: faultline {faultline} (Toxiproxy API {server})\n",
                env!("CARGO_PKG_VERSION")
            ),
            None => format!(
                "faultline-cli {}\nserver at {url}: Toxiproxy {server}\n",
                env!("CARGO_PKG_VERSION")
            ),
        },
        Outcome::Added { proxy, toxic } => format!(
            "Added {} {} toxic '{}' on proxy '{proxy}'\n",
            toxic.stream, toxic.type_name, toxic.name
        ),
        Outcome::Updated { proxy, toxic } => format!(
            "Updated toxic '{}' on proxy '{proxy}': {}\n",
            toxic.name,
            toxic_line(toxic)
        ),
        Outcome::Removed { proxy, name } => format!("Removed toxic '{name}' on proxy '{proxy}'\n"),
    }
}

/// Rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `list`: one line per proxy.
pub fn proxy_table(proxies: &[ProxyInfo]) -> String {
    if proxies.is_empty() {
        return "No proxies. Create one with: faultline-cli create -u HOST:PORT NAME\n".into();
    }
    let rows: Vec<Vec<String>> = proxies
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.listen.clone(),
                p.upstream.clone(),
                if p.enabled { "enabled" } else { "disabled" }.to_string(),
                match p.toxics.len() {
                    0 => "none".to_string(),
                    n => n.to_string(),
                },
            ]
        })
        .collect();
    table(&["NAME", "LISTEN", "UPSTREAM", "STATE", "TOXICS"], &rows)
}

/// `inspect`: the proxy, then its toxics by stream.
pub fn inspect(p: &ProxyInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:     {}", p.name);
    let _ = writeln!(out, "Listen:   {}", p.listen);
    let _ = writeln!(out, "Upstream: {}", p.upstream);
    let _ = writeln!(
        out,
        "State:    {}",
        if p.enabled { "enabled" } else { "disabled" }
    );
    for (stream, title) in [
        (Stream::Upstream, "Upstream toxics"),
        (Stream::Downstream, "Downstream toxics"),
    ] {
        let toxics: Vec<&ToxicInfo> = p.toxics.iter().filter(|t| t.stream == stream).collect();
        let _ = writeln!(out, "\n{title}:");
        if toxics.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for t in toxics {
            let _ = writeln!(out, "  {}: {}", t.name, toxic_line(t));
        }
    }
    out
}

/// `type=latency stream=downstream toxicity=1.00 attributes=[ jitter=0 latency=1000 ]`, plus
/// faultline's extensions when a toxic has them.
pub fn toxic_line(t: &ToxicInfo) -> String {
    let mut line = format!(
        "type={} stream={} toxicity={:.2} attributes=[",
        t.type_name, t.stream, t.toxicity
    );
    let mut keys: Vec<&String> = t.attributes.keys().collect();
    keys.sort();
    for key in keys {
        let _ = write!(line, " {key}={}", plain(&t.attributes[key]));
    }
    line.push_str(" ]");
    if let Some(target) = &t.target {
        if !target.cidrs.is_empty() {
            let _ = write!(line, " cidrs={}", target.cidrs.join(","));
        }
        if let Some(f) = target.fraction.filter(|f| *f < 1.0) {
            let _ = write!(line, " fraction={f}");
        }
    }
    if let Some(ms) = t.remaining_ms {
        let _ = write!(line, " remaining={ms}ms");
    }
    if let Some(s) = &t.schedule {
        let _ = write!(
            line,
            " schedule={}ms/{}ms",
            s.on.as_millis(),
            s.off.as_millis()
        );
    }
    if let Some(active) = t.active {
        let _ = write!(line, " active={active}");
    }
    line
}

/// A JSON value without quotes around strings.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Columns line up whatever the cell widths.
    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["NAME", "X"],
            &[
                vec!["a-long-name".into(), "1".into()],
                vec!["b".into(), "2".into()],
            ],
        );
        assert_eq!(text, "NAME         X\na-long-name  1\nb            2\n");
    }

    /// Toxic lines read like toxiproxy-cli's, attributes sorted.
    #[test]
    fn toxic_line_format() {
        let t: ToxicInfo = serde_json::from_value(json!({
            "name": "latency_downstream", "type": "latency", "stream": "downstream",
            "toxicity": 1, "attributes": {"latency": 1000, "jitter": 0}
        }))
        .unwrap();
        assert_eq!(
            toxic_line(&t),
            "type=latency stream=downstream toxicity=1.00 attributes=[ jitter=0 latency=1000 ]"
        );
    }
}
