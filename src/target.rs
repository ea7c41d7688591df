//! Blast radius: which connections a toxic applies to.
//!
//! Beyond Toxiproxy's `toxicity` (a fresh roll per connection and update), a target picks
//! connections by client address (CIDR blocks) and/or a stable fraction of connections. The
//! fraction is decided once per connection from a number drawn when it was accepted (seeded by
//! `--seed`), so a connection is in or out for its whole life, whatever updates happen.

use crate::hash::{fnv1a_str, splitmix};
use serde_json::{json, Value};
use std::net::IpAddr;

/// A set of connections a toxic applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Client address blocks; empty means any address.
    pub cidrs: Vec<Cidr>,
    /// Share of connections selected, in `[0, 1]`.
    pub fraction: f64,
}

impl Target {
    /// Parses `{"cidrs": ["10.0.0.0/8", ...], "fraction": 0.5}` (both optional).
    pub fn from_json(value: &Value) -> Result<Option<Target>, String> {
        let object = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            _ => return Err("target must be an object with cidrs and/or fraction".into()),
        };
        let mut target = Target {
            cidrs: Vec::new(),
            fraction: 1.0,
        };
        for (key, value) in object {
            match key.to_ascii_lowercase().as_str() {
                "cidrs" | "cidr" => {
                    let list: Vec<&Value> = match value {
                        Value::Array(items) => items.iter().collect(),
                        Value::String(_) => vec![value],
                        Value::Null => vec![],
                        _ => return Err("target cidrs must be a list of CIDR blocks".into()),
                    };
                    for item in list {
                        let text = item
                            .as_str()
                            .ok_or("target cidrs must be a list of CIDR blocks")?;
                        target.cidrs.push(text.parse()?);
                    }
                }
                "fraction" => {
                    let f = value
                        .as_f64()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or("target fraction must be a number between 0 and 1")?;
                    target.fraction = f;
                }
                // The API checks keys first (api::fields::TARGET), honouring --lenient.
                _ => {
                    return Err(format!(
                        "unknown field \"{key}\" in target; expected one of: cidrs, fraction"
                    ))
                }
            }
        }
        Ok(Some(target))
    }

    pub fn to_json(&self) -> Value {
        let cidrs: Vec<String> = self.cidrs.iter().map(Cidr::to_string).collect();
        json!({"cidrs": cidrs, "fraction": self.fraction})
    }

    /// Whether the connection from `ip`, with its per-connection `draw`, is targeted by the
    /// toxic `name` (the name mixes in so two half-targeted toxics pick different halves).
    pub fn selects(&self, ip: IpAddr, draw: u64, name: &str) -> bool {
        if !self.cidrs.is_empty() && !self.cidrs.iter().any(|c| c.contains(ip)) {
            return false;
        }
        if self.fraction >= 1.0 {
            return true;
        }
        let mixed = splitmix(draw ^ fnv1a_str(name));
        ((mixed >> 11) as f64 / (1u64 << 53) as f64) < self.fraction
    }
}

/// An IPv4 or IPv6 address block, like `10.1.0.0/16` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR block \"{s}\"");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Address blocks match IPv4, IPv4-mapped IPv6 and IPv6 clients.
    #[test]
    fn cidr_matching() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    /// A fraction selects about that share of connections, stably for each one.
    #[test]
    fn fraction_is_stable_and_proportional() {
        let t = Target {
            cidrs: vec![],
            fraction: 0.3,
        };
        let ip = "127.0.0.1".parse().unwrap();
        let picked = (0..10_000u64)
            .filter(|d| t.selects(ip, splitmix(*d), "x"))
            .count();
        assert!((2_600..3_400).contains(&picked), "{picked}");
        assert_eq!(t.selects(ip, 42, "x"), t.selects(ip, 42, "x"));
    }
}
