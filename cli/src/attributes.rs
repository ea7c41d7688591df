//! `-a key=value` against the server's toxic catalogue: unknown keys are refused before
//! anything is sent, durations are accepted with units (`1s`, `250ms`) and converted into the
//! attribute's own unit, and `toxic add --help` lists every type from the same catalogue.

use crate::args::Attribute;
use faultline_client::catalogue::{self, AttrKind, AttrSpec, Unit};
use serde_json::{Map, Value};
use std::fmt::Write;
use std::time::Duration;

/// The attributes as the server wants them for a toxic of `type_name`. `flag` is how the user
/// spelled the attribute flag (`-a`, `--attribute`), so an error points at what was typed.
/// Types the catalogue does not know (a Toxiproxy server's custom toxics) pass unchanged.
pub fn resolve(
    type_name: &str,
    attributes: &[Attribute],
    flag: impl Fn(&Attribute) -> String,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for a in attributes {
        let (key, value) = match catalogue::lookup(type_name) {
            None => (a.key.clone(), a.value.clone()),
            Some(kind) => {
                // Any case, as the server reads keys; sent under the catalogue's name.
                let Some(spec) = catalogue::attribute(kind, &a.key) else {
                    let err = catalogue::check_attributes(type_name, [a.key.as_str()])
                        .expect_err("the key is not in the catalogue");
                    return Err(format!("{} {}: {err}", flag(a), a.text));
                };
                let value =
                    in_unit(spec, &a.value).map_err(|e| format!("{} {}: {e}", flag(a), a.text))?;
                (spec.name.to_string(), value)
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// A duration written with a unit, in the attribute's unit; other values unchanged.
fn in_unit(spec: &AttrSpec, value: &Value) -> Result<Value, String> {
    let Value::String(text) = value else {
        return Ok(value.clone());
    };
    let per_second = match spec.unit {
        Unit::Milliseconds => 1_000u128,
        Unit::Microseconds => 1_000_000u128,
        _ => return Ok(value.clone()),
    };
    let duration: Duration = humantime::parse_duration(text).map_err(|_| {
        format!(
            "{} is a number of {} or a duration such as 1s or 250ms, not {text:?}",
            spec.name,
            spec.unit.symbol()
        )
    })?;
    let count = duration.as_nanos() * per_second / 1_000_000_000;
    if count * 1_000_000_000 != duration.as_nanos() * per_second {
        return Err(format!(
            "{} is a whole number of {}; {text} is not",
            spec.name,
            spec.unit.symbol()
        ));
    }
    Ok(Value::from(u64::try_from(count).unwrap_or(u64::MAX)))
}

/// `toxic add --help`'s list of types: every type with its attributes and their units.
pub fn types_help() -> String {
    let mut out = String::from(
        "Toxic types (-t) and their attributes (-a key=value; times also as 1s, 250ms):\n",
    );
    let width = catalogue::TYPES
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for kind in catalogue::TYPES {
        let attributes: Vec<String> = kind.attributes.iter().map(describe).collect();
        let attributes = if attributes.is_empty() {
            "(no attributes)".to_string()
        } else {
            attributes.join("  ")
        };
        let _ = writeln!(out, "  {:<width$}  {attributes}", kind.name);
    }
    out
}

/// `latency=<ms>`, `probability=<0..1>`, `mode=refuse|queue`.
fn describe(spec: &AttrSpec) -> String {
    let what = match spec.kind {
        AttrKind::Int { .. } if spec.unit != Unit::None => format!("<{}>", spec.unit.symbol()),
        AttrKind::Int { .. } => "<n>".to_string(),
        AttrKind::Float { min, max, .. } => format!("<{min}..{max}>"),
        AttrKind::Choice { choices, .. } => choices.join("|"),
        AttrKind::Text { .. } => "<text>".to_string(),
        AttrKind::Bool { .. } => "true|false".to_string(),
        AttrKind::Map => "<JSON object>".to_string(),
        AttrKind::List => "<JSON array>".to_string(),
    };
    format!("{}={what}", spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(key: &str, value: Value) -> Attribute {
        Attribute {
            key: key.into(),
            text: format!("{key}={value}"),
            value,
        }
    }

    fn dash_a(_: &Attribute) -> String {
        "-a".into()
    }

    /// Durations with units become the attribute's unit: ms for latency, µs for slicer delay.
    #[test]
    fn durations_with_units() {
        let ms = resolve("latency", &[attr("latency", "1s".into())], dash_a).unwrap();
        assert_eq!(ms["latency"], 1000);
        let us = resolve("slicer", &[attr("delay", "2ms".into())], dash_a).unwrap();
        assert_eq!(us["delay"], 2000);
        let plain = resolve("latency", &[attr("latency", 250.into())], dash_a).unwrap();
        assert_eq!(plain["latency"], 250);
    }

    /// Attribute names match in any case, as the server matches them; the value is converted
    /// by the attribute's unit and sent under the catalogue's name.
    #[test]
    fn attribute_names_match_in_any_case() {
        let out = resolve("latency", &[attr("LATENCY", "1s".into())], dash_a).unwrap();
        assert_eq!(Value::Object(out), serde_json::json!({"latency": 1000}));
    }

    /// A duration finer than the unit, or a word that is no duration, is refused.
    #[test]
    fn bad_durations() {
        let err = resolve("latency", &[attr("latency", "1500us".into())], dash_a).unwrap_err();
        assert!(err.contains("whole number of ms"), "{err}");
        let err = resolve("latency", &[attr("latency", "fast".into())], dash_a).unwrap_err();
        assert!(err.contains("a number of ms or a duration"), "{err}");
    }

    /// An unknown key names the flag as typed, the key and the valid ones.
    #[test]
    fn unknown_key_is_refused() {
        let a = Attribute {
            key: "rate_kb".into(),
            value: 10.into(),
            text: "rate_kb=10".into(),
        };
        let err = resolve("bandwidth", &[a], |_| "--attribute".into()).unwrap_err();
        assert_eq!(
            err,
            "--attribute rate_kb=10: unknown attribute \"rate_kb\" for bandwidth; expected one of: rate"
        );
    }

    /// The help lists every type of the catalogue with units.
    #[test]
    fn help_lists_every_type() {
        let help = types_help();
        for kind in catalogue::TYPES {
            assert!(help.contains(kind.name), "{help}");
        }
        assert!(
            help.contains("latency=<ms>") && help.contains("rate=<KB/s>"),
            "{help}"
        );
        assert!(help.contains("delay=<µs>"), "{help}");
    }
}
