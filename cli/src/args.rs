//! The command line, as `toxiproxy-cli` spells it (names, aliases and flags), plus `reset`,
//! `version` and `--json`.

use clap::{ArgGroup, Parser, Subcommand};
use serde_json::Value;
use std::time::Duration;

/// Manage the proxies and toxics of a faultline (or any Toxiproxy v2) server.
#[derive(Debug, Parser)]
#[command(name = "faultline-cli", version, about, propagate_version = true)]
pub struct Cli {
    /// The server's API URL.
    #[arg(
        long,
        global = true,
        env = "TOXIPROXY_URL",
        default_value = faultline_client::DEFAULT_URL
    )]
    pub host: String,

    /// Print JSON instead of tables and sentences (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every proxy.
    #[command(visible_aliases = ["l", "li", "ls"])]
    List,

    /// Show one proxy and its toxics.
    #[command(visible_aliases = ["i", "ins"])]
    Inspect {
        /// The proxy's name.
        proxy: String,
    },

    /// Create a proxy.
    #[command(visible_aliases = ["c", "new"])]
    Create {
        /// Address to listen on; port 0 lets the server pick one (printed).
        #[arg(short, long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Address of the real service.
        #[arg(short, long)]
        upstream: String,
        /// faultline: what the proxy speaks; `http` lets the http_* toxics act on requests.
        #[arg(long, value_name = "tcp|http", value_parser = protocol, default_value = "tcp")]
        protocol: faultline_client::Protocol,
        /// faultline: speak TLS to the upstream (implies --protocol http).
        #[arg(long)]
        upstream_tls: bool,
        /// faultline: the TLS server name to present and verify (default: the upstream's host).
        #[arg(long, value_name = "NAME", requires = "upstream_tls")]
        upstream_sni: Option<String>,
        /// The new proxy's name.
        proxy: String,
    },

    /// Enable a disabled proxy, or disable an enabled one.
    #[command(visible_aliases = ["tog"])]
    Toggle {
        /// The proxy's name.
        proxy: String,
    },

    /// Delete a proxy.
    #[command(visible_aliases = ["d"])]
    Delete {
        /// The proxy's name.
        proxy: String,
    },

    /// Add, update or remove toxics.
    #[command(subcommand, visible_aliases = ["t"])]
    Toxic(ToxicCommand),

    /// Enable every proxy and remove every toxic.
    Reset,

    /// Show the CLI's and the server's versions.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum ToxicCommand {
    /// Add a toxic to a proxy.
    #[command(visible_aliases = ["a"])]
    Add {
        /// The toxic's name (default: <type>_<stream>).
        #[arg(
            short = 'n',
            long = "toxicName",
            visible_alias = "toxic-name",
            value_name = "NAME"
        )]
        name: Option<String>,
        /// The toxic's type (the types and their attributes are listed below).
        #[arg(short = 't', long = "type", value_name = "TYPE")]
        kind: String,
        /// Probability, 0 to 1, that the toxic applies to a connection (default 1).
        #[arg(long = "tox", visible_alias = "toxicity", value_name = "0..1", value_parser = toxicity)]
        toxicity: Option<f32>,
        /// An attribute, as key=value (repeatable), e.g. -a latency=1000 -a jitter=100ms.
        #[arg(short = 'a', long = "attribute", value_name = "KEY=VALUE", value_parser = attribute)]
        attributes: Vec<Attribute>,
        /// Act on data from the client to the upstream service.
        #[arg(short = 'u', long, conflicts_with = "downstream")]
        upstream: bool,
        /// Act on data from the upstream service to the client (the default).
        #[arg(short = 'd', long)]
        downstream: bool,
        /// faultline: remove the toxic by itself after this long (e.g. 30s, 500ms).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        duration: Option<Duration>,
        /// faultline: apply only to clients in this CIDR block (repeatable).
        #[arg(long = "cidr", value_name = "CIDR")]
        cidrs: Vec<String>,
        /// faultline: apply only to this stable share of connections, 0 to 1.
        #[arg(long, value_name = "0..1", value_parser = fraction)]
        fraction: Option<f64>,
        /// faultline: switch on and off in cycles, as ON/OFF (e.g. 2s/8s).
        #[arg(long, value_name = "ON/OFF", value_parser = schedule)]
        schedule: Option<(Duration, Duration)>,
        /// The proxy's name.
        proxy: String,
    },

    /// Change a toxic's toxicity and/or attributes (attributes not given keep their value).
    #[command(
        visible_aliases = ["u"],
        group(ArgGroup::new("changes").args(["toxicity", "attributes"]).multiple(true).required(true))
    )]
    Update {
        /// The toxic's name.
        #[arg(
            short = 'n',
            long = "toxicName",
            visible_alias = "toxic-name",
            value_name = "NAME"
        )]
        name: String,
        /// New probability, 0 to 1, that the toxic applies to a connection.
        #[arg(long = "tox", visible_alias = "toxicity", value_name = "0..1", value_parser = toxicity)]
        toxicity: Option<f32>,
        /// An attribute to change, as key=value (repeatable); durations as 1000 or 1s.
        #[arg(short = 'a', long = "attribute", value_name = "KEY=VALUE", value_parser = attribute)]
        attributes: Vec<Attribute>,
        /// The proxy's name.
        proxy: String,
    },

    /// Remove a toxic.
    #[command(visible_aliases = ["r", "delete", "d"])]
    Remove {
        /// The toxic's name.
        #[arg(
            short = 'n',
            long = "toxicName",
            visible_alias = "toxic-name",
            value_name = "NAME"
        )]
        name: String,
        /// The proxy's name.
        proxy: String,
    },
}

/// One `-a key=value`. Numbers become JSON numbers, `true`/`false` booleans, anything else a
/// string (e.g. `distribution=normal`, or `1s`, which [`crate::attributes`] turns into the
/// attribute's unit once the toxic's type is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub key: String,
    pub value: Value,
    /// `key=value` as typed, for error messages.
    pub text: String,
}

fn attribute(text: &str) -> Result<Attribute, String> {
    let (key, raw) = text
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!(
            "expected key=value with a non-empty key, got {text:?}"
        ));
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!("attribute {key} has no value"));
    }
    let value = if raw.starts_with('{') || raw.starts_with('[') {
        // Objects and arrays (http_status headers, http_header set and remove) as JSON.
        serde_json::from_str(raw)
            .map_err(|e| format!("attribute {key} is not valid JSON ({e}): {raw}"))?
    } else if let Ok(i) = raw.parse::<i64>() {
        Value::from(i)
    } else if let Some(f) = raw.parse::<f64>().ok().filter(|f| f.is_finite()) {
        Value::from(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        Value::from(b)
    } else {
        Value::from(raw)
    };
    Ok(Attribute {
        key: key.to_string(),
        value,
        text: text.to_string(),
    })
}

fn protocol(text: &str) -> Result<faultline_client::Protocol, String> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(faultline_client::Protocol::Tcp),
        "http" => Ok(faultline_client::Protocol::Http),
        _ => Err(format!("protocol must be tcp or http, got {text:?}")),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("expected a duration such as 30s or 500ms, got {text:?}: {e}"))
}

fn schedule(text: &str) -> Result<(Duration, Duration), String> {
    let (on, off) = text
        .split_once('/')
        .ok_or_else(|| format!("expected ON/OFF such as 2s/8s, got {text:?}"))?;
    Ok((duration(on)?, duration(off)?))
}

fn fraction(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| format!("fraction must be a number between 0 and 1, got {text:?}"))
}

fn toxicity(text: &str) -> Result<f32, String> {
    let value: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("toxicity must be a number between 0 and 1, got {text:?}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "toxicity must be a number between 0 and 1, got {value}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The argument definitions are consistent (clap's own check).
    #[test]
    fn definitions_are_valid() {
        Cli::command().debug_assert();
    }

    /// Attribute values keep their JSON types.
    #[test]
    fn attribute_values() {
        assert_eq!(attribute("latency=1000").unwrap().value, 1000);
        assert_eq!(attribute("probability=0.5").unwrap().value, 0.5);
        assert_eq!(attribute("distribution=normal").unwrap().value, "normal");
        assert!(attribute("latency").is_err());
        assert!(attribute("=5").is_err());
        assert!(attribute("latency=").is_err());
    }

    /// Objects and arrays are JSON (HTTP toxics' headers); a header match stays a string.
    #[test]
    fn json_attribute_values() {
        assert_eq!(
            attribute(r#"headers={"Retry-After":"2"}"#).unwrap().value,
            serde_json::json!({"Retry-After": "2"})
        );
        assert_eq!(
            attribute(r#"remove=["Server"]"#).unwrap().value,
            serde_json::json!(["Server"])
        );
        assert!(attribute("set={oops").is_err());
        assert_eq!(
            attribute("header=X-Tenant: ^blue$").unwrap().value,
            "X-Tenant: ^blue$"
        );
        assert!(protocol("HTTP").is_ok());
        assert!(protocol("udp").unwrap_err().contains("tcp or http"));
    }

    /// Extension values parse from human-friendly text.
    #[test]
    fn extension_values() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(
            schedule("2s/8s"),
            Ok((Duration::from_secs(2), Duration::from_secs(8)))
        );
        assert!(schedule("2s").is_err());
        assert!(fraction("1.5").is_err());
    }

    /// Toxicity is checked client-side.
    #[test]
    fn toxicity_range() {
        assert_eq!(toxicity("0.25"), Ok(0.25));
        assert!(toxicity("1.5").is_err());
        assert!(toxicity("-0.1").is_err());
        assert!(toxicity("half").is_err());
    }
}
