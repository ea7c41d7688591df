//! Tolerances, checked exactly as Chaos Toolkit checks them (chaoslib's `within_tolerance`):
//!
//! - a boolean or string: the value equals it;
//! - an integer: equals the value, or the value's `status` when the value is an object (an HTTP
//!   or process probe's output);
//! - a list: the `status` is in it (for such objects); otherwise two items are an inclusive
//!   range and any other length is a set of allowed values;
//! - `{"type": "range", "range": [lo, hi], "target"?}`: a number (or numeric string) within;
//! - `{"type": "regex", "pattern", "target"?}`: the pattern is found in the string;
//! - `{"type": "jsonpath", "path", "expect"?, "count"?, "target"?}`: the path matches (all of
//!   `expect`, or `count` times).
//!
//! Pure functions of the value: no I/O, so the rules are unit-tested here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A probe's tolerance, validated when the file is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Tolerance(pub Value);

impl From<Tolerance> for Value {
    fn from(t: Tolerance) -> Value {
        t.0
    }
}

impl TryFrom<Value> for Tolerance {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        validate(&value)?;
        Ok(Tolerance(value))
    }
}

fn validate(tolerance: &Value) -> Result<(), String> {
    match tolerance {
        Value::Bool(_) | Value::String(_) | Value::Array(_) => Ok(()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
        Value::Object(map) => validate_typed(map),
        other => Err(format!(
            "a tolerance must be an integer, a string, a boolean, a list or an object with a \
             `type` (range, regex or jsonpath), not {other}"
        )),
    }
}

fn validate_typed(map: &Map<String, Value>) -> Result<(), String> {
    match map.get("type").and_then(Value::as_str) {
        Some("range") => {
            let range = map
                .get("range")
                .ok_or("a range tolerance needs a `range` key: [lower, upper]")?;
            match range.as_array().map(Vec::as_slice) {
                Some([lo, hi]) if lo.is_number() && hi.is_number() => Ok(()),
                _ => Err(format!(
                    "a tolerance `range` must be two numbers [lower, upper], not {range}"
                )),
            }
        }
        Some("regex") => {
            let pattern = map
                .get("pattern")
                .ok_or("a regex tolerance needs a `pattern` key")?;
            let pattern = pattern
                .as_str()
                .ok_or("a regex tolerance's `pattern` must be a string")?;
            if pattern.contains("${") {
                return Ok(()); // checked once substituted
            }
            regex::Regex::new(pattern)
                .map(|_| ())
                .map_err(|e| format!("tolerance pattern {pattern:?} is invalid: {e}"))
        }
        Some("jsonpath") => {
            let path = map
                .get("path")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .ok_or("a jsonpath tolerance needs a non-empty `path` string")?;
            if path.contains("${") {
                return Ok(());
            }
            serde_json_path::JsonPath::parse(path)
                .map(|_| ())
                .map_err(|e| format!("tolerance JSON path {path:?} is invalid: {e}"))
        }
        Some("probe") => Err(
            "tolerances of type `probe` call Python code; faultline supports range, regex and \
             jsonpath (use Chaos Toolkit's `chaos run` for probe tolerances)"
                .into(),
        ),
        Some(other) => Err(format!(
            "tolerance type '{other}' is unsupported; valid: range, regex, jsonpath"
        )),
        None => Err("an object tolerance needs a `type`: range, regex or jsonpath".into()),
    }
}

/// Whether `value` is within `tolerance` (already substituted). An error means the tolerance
/// could not be applied at all (a pattern that became invalid after substitution).
pub fn within(tolerance: &Value, value: &Value) -> Result<bool, String> {
    Ok(match tolerance {
        Value::Bool(_) | Value::String(_) => py_eq(value, tolerance),
        Value::Number(_) => match status_of(value) {
            Some(status) => py_eq(status, tolerance),
            None => py_eq(value, tolerance),
        },
        Value::Array(items) => match status_of(value) {
            Some(status) => items.iter().any(|t| py_eq(status, t)),
            None if items.len() == 2 => {
                py_cmp(&items[0], value).is_some_and(Ordering::is_le)
                    && py_cmp(value, &items[1]).is_some_and(Ordering::is_le)
            }
            None => items.iter().any(|t| py_eq(value, t)),
        },
        Value::Object(map) => {
            let value = targeted(map, value);
            match map.get("type").and_then(Value::as_str) {
                Some("range") => in_range(map, value),
                Some("regex") => matches_regex(map, value)?,
                Some("jsonpath") => matches_jsonpath(map, value)?,
                other => return Err(format!("unsupported tolerance type {other:?}")),
            }
        }
        Value::Null => value.is_null(),
    })
}

/// A short description for people: `== 200`, `in [0, 300]`, `matches "ok"`.
pub fn describe(tolerance: &Value) -> String {
    match tolerance {
        Value::Array(items) if items.len() == 2 => format!("in [{}, {}]", items[0], items[1]),
        Value::Array(items) => format!(
            "one of {}",
            Value::Array(items.clone()).to_string().replace(',', ", ")
        ),
        Value::Object(map) => {
            let target = map
                .get("target")
                .and_then(Value::as_str)
                .map(|t| format!("{t} "))
                .unwrap_or_default();
            match map.get("type").and_then(Value::as_str) {
                Some("range") => match map.get("range").and_then(Value::as_array) {
                    Some(r) if r.len() == 2 => format!("{target}in [{}, {}]", r[0], r[1]),
                    _ => format!("{target}in range"),
                },
                Some("regex") => format!(
                    "{target}matches {}",
                    map.get("pattern").unwrap_or(&Value::Null)
                ),
                Some("jsonpath") => format!(
                    "{target}has {}{}",
                    map.get("path").and_then(Value::as_str).unwrap_or(""),
                    map.get("expect")
                        .map(|e| format!(" == {e}"))
                        .unwrap_or_default()
                ),
                _ => tolerance.to_string(),
            }
        }
        other => format!("== {other}"),
    }
}

/// The part of a value a tolerance looks at: `value[target]` when present.
fn targeted<'a>(map: &Map<String, Value>, value: &'a Value) -> &'a Value {
    match map.get("target").and_then(Value::as_str) {
        Some(target) => value.get(target).unwrap_or(value),
        None => value,
    }
}

fn status_of(value: &Value) -> Option<&Value> {
    value.as_object().and_then(|o| o.get("status"))
}

fn in_range(map: &Map<String, Value>, value: &Value) -> bool {
    let Some(n) = as_decimal(value) else {
        return false;
    };
    let bounds = map.get("range").and_then(Value::as_array);
    match bounds.map(Vec::as_slice) {
        Some([lo, hi]) => match (as_decimal(lo), as_decimal(hi)) {
            (Some(lo), Some(hi)) => lo <= n && n <= hi,
            _ => false,
        },
        _ => false,
    }
}

/// Python's `Decimal(value)`: numbers, booleans and numeric strings.
fn as_decimal(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| !f.is_nan()),
        _ => None,
    }
}

fn matches_regex(map: &Map<String, Value>, value: &Value) -> Result<bool, String> {
    let pattern = map.get("pattern").and_then(Value::as_str).unwrap_or("");
    let rx = regex::Regex::new(pattern)
        .map_err(|e| format!("tolerance pattern {pattern:?} is invalid: {e}"))?;
    Ok(value.as_str().is_some_and(|s| rx.is_match(s)))
}

fn matches_jsonpath(map: &Map<String, Value>, value: &Value) -> Result<bool, String> {
    let path = map.get("path").and_then(Value::as_str).unwrap_or("").trim();
    let path = serde_json_path::JsonPath::parse(path)
        .map_err(|e| format!("tolerance JSON path {path:?} is invalid: {e}"))?;
    // A string (an HTTP body that was not JSON-typed) is parsed when it is JSON.
    let parsed;
    let document = match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(_) => value,
        },
        _ => value,
    };
    let found: Vec<&Value> = path.query(document).all();
    let mut result = !found.is_empty();
    if let Some(count) = map.get("count").and_then(Value::as_u64) {
        result = found.len() as u64 == count;
    }
    if let Some(expect) = map.get("expect") {
        let expected: Vec<&Value> = match expect {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        result =
            found.len() == expected.len() && found.iter().zip(&expected).all(|(a, b)| py_eq(a, b));
    }
    Ok(result)
}

/// Python's `==` on JSON values: numbers (and booleans, which are 0 and 1) compare by value.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| py_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (numeric(a), numeric(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Python's `<`/`>` where it is defined: numbers with numbers, strings with strings.
fn py_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => numeric(a)?.partial_cmp(&numeric(b)?),
    }
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(tolerance: Value, value: Value) -> bool {
        within(&tolerance, &value).unwrap()
    }

    /// An integer tolerance on an HTTP probe is compared with the status code.
    #[test]
    fn integer_matches_http_status() {
        let reply = json!({"status": 200, "headers": {}, "body": "ok"});
        assert!(ok(json!(200), reply.clone()));
        assert!(!ok(json!(503), reply));
    }

    /// An integer tolerance on a plain value is equality, and 1 equals 1.0 as in Python.
    #[test]
    fn integer_matches_plain_value() {
        assert!(ok(json!(3), json!(3.0)));
        assert!(!ok(json!(3), json!(4)));
    }

    /// A list on a status-bearing output is a set of allowed statuses.
    #[test]
    fn list_is_allowed_statuses() {
        let reply = json!({"status": 404});
        assert!(ok(json!([200, 404, 500]), reply.clone()));
        assert!(!ok(json!([200, 201, 204]), reply));
    }

    /// A two-item list on a plain value is an inclusive range.
    #[test]
    fn pair_is_inclusive_range() {
        assert!(ok(json!([0, 300]), json!(300)));
        assert!(ok(json!([0, 300]), json!(0)));
        assert!(!ok(json!([0, 300]), json!(300.5)));
    }

    /// Any other list length is membership.
    #[test]
    fn longer_list_is_membership() {
        assert!(ok(json!(["a", "b", "c"]), json!("b")));
        assert!(!ok(json!(["a", "b", "c"]), json!("d")));
    }

    /// Booleans and strings are equality.
    #[test]
    fn bool_and_string_are_equality() {
        assert!(ok(json!(true), json!(true)));
        assert!(!ok(json!(true), json!(false)));
        assert!(ok(json!("up"), json!("up")));
        assert!(!ok(json!("up"), json!("down")));
    }

    /// A range reads `target` out of an object and accepts numeric strings.
    #[test]
    fn range_with_target() {
        let t = json!({"type": "range", "range": [0, 300], "target": "p99_ms"});
        assert!(ok(t.clone(), json!({"p99_ms": 120.5})));
        assert!(!ok(t.clone(), json!({"p99_ms": 812})));
        assert!(ok(json!({"type": "range", "range": [1, 2]}), json!("1.5")));
        assert!(!ok(json!({"type": "range", "range": [1, 2]}), json!("abc")));
    }

    /// A regex is searched for (not anchored) in the string or its target.
    #[test]
    fn regex_searches() {
        let t = json!({"type": "regex", "pattern": "o+k", "target": "body"});
        assert!(ok(
            t.clone(),
            json!({"status": 200, "body": "all ook here"})
        ));
        assert!(!ok(t, json!({"status": 200, "body": "nope"})));
    }

    /// A JSON path must match; with `expect`, the matches must equal it; `count` counts them.
    #[test]
    fn jsonpath_expect_and_count() {
        let v = json!({"status": 200, "body": {"items": [{"ok": true}, {"ok": true}]}});
        let found = json!({"type": "jsonpath", "path": "$.items[*].ok", "target": "body"});
        assert!(ok(found, v.clone()));
        let expect = json!({"type": "jsonpath", "path": "$.items[*].ok", "target": "body", "expect": [true, true]});
        assert!(ok(expect, v.clone()));
        let count = json!({"type": "jsonpath", "path": "$.items[*]", "target": "body", "count": 3});
        assert!(!ok(count, v));
    }

    /// A JSON path on a string body parses it first.
    #[test]
    fn jsonpath_parses_string_bodies() {
        let t = json!({"type": "jsonpath", "path": "$.state", "expect": "open"});
        assert!(ok(t, json!("{\"state\": \"open\"}")));
    }

    /// Malformed tolerances are refused with what is valid.
    #[test]
    fn invalid_tolerances_are_refused() {
        assert!(Tolerance::try_from(json!(0.5)).is_err());
        let e = Tolerance::try_from(json!({"type": "between"})).unwrap_err();
        assert!(e.contains("range, regex, jsonpath"), "{e}");
        let e = Tolerance::try_from(json!({"type": "range", "range": [1]})).unwrap_err();
        assert!(e.contains("two numbers"), "{e}");
        let e = Tolerance::try_from(json!({"type": "regex", "pattern": "("})).unwrap_err();
        assert!(e.contains("invalid"), "{e}");
    }
}
