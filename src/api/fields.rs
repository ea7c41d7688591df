//! The fields each JSON object of the API may carry, declared once, and what becomes of the
//! others.
//!
//! A typo must not become a silent default (`"rate_kb"` would leave a bandwidth toxic at rate
//! 0, a full partition), so by default an unknown key is a 400 that names it and lists the
//! valid ones. `--lenient` restores Toxiproxy's behaviour for legacy tooling: unknown keys are
//! ignored with a warning. Keys match case-insensitively, as Go's decoder matches them.
//!
//! Adding a field to the API is one edit here (and its parsing in `models`); toxic attribute
//! names come from each [`ToxicType`]'s attribute specs, so new toxics are covered without one.

use super::error::ApiError;
use crate::toxics::ToxicType;
use serde_json::{Map, Value};

/// What to do with a key no object of its kind has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownKeys {
    /// A 400 naming the key and listing the valid ones.
    #[default]
    Reject,
    /// Ignored with a logged warning, as Toxiproxy ignores them.
    Ignore,
}

/// The keys an object may carry.
#[derive(Debug)]
pub struct Known {
    /// What the object is called in messages: `proxy`, `toxic`, `schedule`.
    pub object: &'static str,
    /// Fields faultline reads; the valid ones an error lists.
    pub fields: &'static [&'static str],
    /// Fields published clients send that faultline accepts and ignores.
    pub tolerated: &'static [&'static str],
}

/// A proxy, as `POST /proxies`, `/populate` items, updates and config files carry it.
pub const PROXY: Known = Known {
    object: "proxy",
    fields: &[
        "name",
        "listen",
        "upstream",
        "enabled",
        // faultline extensions.
        "protocol",
        "upstream_tls",
        "upstream_sni",
        "connect_timeout_ms",
    ],
    // `toxics`: the Go client's proxy objects carry their toxics (a config file applies them);
    // `Logger`: Toxiproxy's leaked field, sent back by clients that echo a proxy object.
    tolerated: &["toxics", "Logger"],
};

/// A toxic, as `POST /proxies/{proxy}/toxics` and its updates carry it.
pub const TOXIC: Known = Known {
    object: "toxic",
    fields: &[
        "name",
        "type",
        "stream",
        "toxicity",
        "attributes",
        // faultline extensions.
        "target",
        "duration_ms",
        "schedule",
    ],
    // What faultline writes about a live toxic, sent back by clients that echo a toxic object.
    tolerated: &["remaining_ms", "active"],
};

/// A toxic's blast radius (`target`).
pub const TARGET: Known = Known {
    object: "target",
    fields: &["cidrs", "fraction"],
    // `cidr`: read as `cidrs` (one block or a list), accepted though not advertised.
    tolerated: &["cidr"],
};

/// A toxic's on/off rhythm (`schedule`).
pub const SCHEDULE: Known = Known {
    object: "schedule",
    fields: &["on_ms", "off_ms"],
    tolerated: &[],
};

/// An experiment runner's progress (`POST /experiments/events`), one set of fields per `type`.
pub const EXPERIMENT_STARTED: Known = Known {
    object: "experiment event \"started\"",
    fields: &["run", "type", "title", "steps"],
    tolerated: &[],
};

/// One planned step of an experiment, in `started`'s `steps`.
pub const EXPERIMENT_STEP: Known = Known {
    object: "experiment step",
    fields: &["phase", "name", "kind"],
    tolerated: &[],
};

pub const EXPERIMENT_ACTIVITY: Known = Known {
    object: "experiment event \"activity\"",
    fields: &[
        "run", "type", "phase", "index", "name", "kind", "status", "error",
    ],
    tolerated: &[],
};

pub const EXPERIMENT_PROBE: Known = Known {
    object: "experiment event \"probe\"",
    fields: &[
        "run",
        "type",
        "phase",
        "index",
        "name",
        "value",
        "tolerance",
        "range",
        "ok",
    ],
    tolerated: &[],
};

pub const EXPERIMENT_ENDED: Known = Known {
    object: "experiment event \"ended\"",
    fields: &["run", "type", "status", "deviated", "verdict", "reason"],
    tolerated: &[],
};

fn is_known(names: &[&str], key: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(key))
}

/// Checks every key of `object` against `known`.
pub fn check(
    object: &Map<String, Value>,
    known: &Known,
    policy: UnknownKeys,
) -> Result<(), ApiError> {
    for key in object.keys() {
        if is_known(known.fields, key) || is_known(known.tolerated, key) {
            continue;
        }
        let message = format!(
            "unknown field \"{key}\" in {}; expected one of: {}",
            known.object,
            known.fields.join(", ")
        );
        refuse_or_warn(message, policy)?;
    }
    Ok(())
}

/// Checks the keys of a toxic's `attributes` against the attributes its type declares.
pub fn check_attributes(
    attributes: &Value,
    kind: &ToxicType,
    policy: UnknownKeys,
) -> Result<(), ApiError> {
    let Value::Object(object) = attributes else {
        // Not an object: the attribute parser says what is wrong with it.
        return Ok(());
    };
    for key in object.keys() {
        if kind
            .attributes
            .iter()
            .any(|spec| spec.name.eq_ignore_ascii_case(key))
        {
            continue;
        }
        let valid: Vec<&str> = kind.attributes.iter().map(|spec| spec.name).collect();
        let expected = if valid.is_empty() {
            "it takes no attributes".to_string()
        } else {
            format!("expected one of: {}", valid.join(", "))
        };
        let message = format!("unknown attribute \"{key}\" for {}; {expected}", kind.name);
        refuse_or_warn(message, policy)?;
    }
    Ok(())
}

fn refuse_or_warn(message: String, policy: UnknownKeys) -> Result<(), ApiError> {
    match policy {
        UnknownKeys::Reject => Err(ApiError::UnknownKey(message)),
        UnknownKeys::Ignore => {
            tracing::warn!("ignored (lenient mode): {message}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// A misspelt toxic field is named, with the valid ones listed.
    #[test]
    fn unknown_field_is_named() {
        let err = check(
            &object(json!({"toxicty": 0.1})),
            &TOXIC,
            UnknownKeys::Reject,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "unknown field \"toxicty\" in toxic; expected one of: name, type, stream, toxicity, \
             attributes, target, duration_ms, schedule"
        );
    }

    /// Keys match case-insensitively, and fields clients send are tolerated.
    #[test]
    fn known_and_tolerated_keys_pass() {
        let proxy = json!({"Name": "a", "toxics": [], "Logger": {}, "ENABLED": true});
        check(&object(proxy), &PROXY, UnknownKeys::Reject).unwrap();
    }

    /// Attribute names come from the toxic type's declaration.
    #[test]
    fn unknown_attribute_lists_the_type_attributes() {
        let bandwidth = crate::toxics::lookup("bandwidth").unwrap();
        let err = check_attributes(&json!({"rate_kb": 10}), bandwidth, UnknownKeys::Reject)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown attribute \"rate_kb\" for bandwidth; expected one of: rate"
        );
        let noop = crate::toxics::lookup("noop").unwrap();
        let err = check_attributes(&json!({"x": 1}), noop, UnknownKeys::Reject)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown attribute \"x\" for noop; it takes no attributes"
        );
    }

    /// Lenient mode lets unknown keys through.
    #[test]
    fn lenient_ignores_unknown_keys() {
        let bandwidth = crate::toxics::lookup("bandwidth").unwrap();
        check_attributes(&json!({"rate_kb": 10}), bandwidth, UnknownKeys::Ignore).unwrap();
        check(&object(json!({"steam": "up"})), &TOXIC, UnknownKeys::Ignore).unwrap();
    }

    /// A misspelt key of a toxic's `target` is named, with the valid ones listed.
    #[test]
    fn unknown_target_field_is_named() {
        let err = check(
            &object(json!({"fractoin": 0.5})),
            &TARGET,
            UnknownKeys::Reject,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "unknown field \"fractoin\" in target; expected one of: cidrs, fraction"
        );
    }
}
