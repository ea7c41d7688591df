//! Toxic attributes: their declared kinds and bounds, and validated values.
//!
//! Toxic files declare attributes as data ([`AttrSpec`]); the API merges user JSON into a
//! toxic's [`Attributes`] through [`Attributes::merge_json`], which enforces type and bounds in
//! one place, so no toxic re-validates JSON and no request can store an unusable value.

use super::ToxicType;
use serde_json::{Map, Number, Value};

/// The largest integer attribute: about 35 years in milliseconds, or a terabyte; larger values
/// mean nothing useful and would overflow time arithmetic.
pub const MAX_INT: i64 = 1 << 40;

/// The kind of one attribute, with its default and bounds.
#[derive(Debug, Clone, Copy)]
pub enum AttrKind {
    /// A whole number (JSON integer), like Toxiproxy's int64 attributes.
    Int { default: i64, min: i64 },
    /// A real number within `[min, max]`.
    Float { default: f64, min: f64, max: f64 },
    /// One of a fixed set of words.
    Choice {
        default: &'static str,
        choices: &'static [&'static str],
    },
}

/// One declared attribute of a toxic type.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
    /// Listed in API output only when set to something other than its default, so toxics that
    /// Toxiproxy also has keep exactly Toxiproxy's attribute set unless the extension is used.
    pub extension: bool,
}

impl AttrSpec {
    pub const fn int(name: &'static str, default: i64, min: i64) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Int { default, min },
            extension: false,
        }
    }

    pub const fn float(name: &'static str, default: f64, min: f64, max: f64) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Float { default, min, max },
            extension: false,
        }
    }

    pub const fn choice(
        name: &'static str,
        default: &'static str,
        choices: &'static [&'static str],
    ) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Choice { default, choices },
            extension: false,
        }
    }

    /// Marks the attribute as a faultline extension of a Toxiproxy toxic.
    pub const fn extension(mut self) -> Self {
        self.extension = true;
        self
    }

    fn default_value(&self) -> AttrValue {
        match self.kind {
            AttrKind::Int { default, .. } => AttrValue::Int(default),
            AttrKind::Float { default, .. } => AttrValue::Float(default),
            AttrKind::Choice { default, .. } => AttrValue::Text(default.to_string()),
        }
    }

    fn parse(&self, type_name: &str, value: &Value) -> Result<AttrValue, String> {
        let mismatch = |expected: &str| {
            format!(
                "attribute {} of {} toxic must be {}, got {}",
                self.name,
                type_name,
                expected,
                describe(value)
            )
        };
        match self.kind {
            AttrKind::Int { min, .. } => {
                let n = as_integer(value).ok_or_else(|| mismatch("an integer"))?;
                if n < min || n > MAX_INT {
                    return Err(format!(
                        "attribute {} of {} toxic must be between {min} and {MAX_INT}, got {n}",
                        self.name, type_name
                    ));
                }
                Ok(AttrValue::Int(n))
            }
            AttrKind::Float { min, max, .. } => {
                let n = value.as_f64().ok_or_else(|| mismatch("a number"))?;
                if !(min..=max).contains(&n) {
                    return Err(format!(
                        "attribute {} of {} toxic must be between {min} and {max}, got {n}",
                        self.name, type_name
                    ));
                }
                Ok(AttrValue::Float(n))
            }
            AttrKind::Choice { choices, .. } => {
                let word = value
                    .as_str()
                    .ok_or_else(|| mismatch(&format!("one of {}", choices.join(", "))))?;
                match choices.iter().find(|c| c.eq_ignore_ascii_case(word)) {
                    Some(c) => Ok(AttrValue::Text(c.to_string())),
                    None => Err(format!(
                        "attribute {} of {} toxic must be one of {}, got \"{word}\"",
                        self.name,
                        type_name,
                        choices.join(", ")
                    )),
                }
            }
        }
    }
}

/// Integers, and reals with no fractional part (some clients send `100.0`).
fn as_integer(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A validated attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl AttrValue {
    fn to_json(&self) -> Value {
        match self {
            AttrValue::Int(n) => Value::from(*n),
            AttrValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            AttrValue::Text(s) => Value::from(s.as_str()),
        }
    }
}

/// A toxic's full attribute set, in declaration order.
#[derive(Debug, Clone)]
pub struct Attributes {
    type_name: &'static str,
    specs: &'static [AttrSpec],
    values: Vec<AttrValue>,
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name && self.values == other.values
    }
}

impl Attributes {
    /// Every attribute of `kind` at its default.
    pub fn defaults(kind: &ToxicType) -> Self {
        Attributes {
            type_name: kind.name,
            specs: kind.attributes,
            values: kind
                .attributes
                .iter()
                .map(AttrSpec::default_value)
                .collect(),
        }
    }

    /// Merges a JSON object into these attributes: keys present replace values (matched
    /// case-insensitively, as Toxiproxy's decoder does), unknown keys and `null` values are
    /// ignored. On error nothing is changed.
    pub fn merge_json(&mut self, json: &Value) -> Result<(), String> {
        let object: &Map<String, Value> = match json {
            Value::Null => return Ok(()),
            Value::Object(map) => map,
            other => {
                return Err(format!(
                    "attributes must be an object, got {}",
                    describe(other)
                ))
            }
        };
        let mut merged = self.values.clone();
        for (spec, slot) in self.specs.iter().zip(merged.iter_mut()) {
            let found = object.get(spec.name).or_else(|| {
                object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(spec.name))
                    .map(|(_, v)| v)
            });
            match found {
                None | Some(Value::Null) => {}
                Some(value) => *slot = spec.parse(self.type_name, value)?,
            }
        }
        self.values = merged;
        Ok(())
    }

    /// Sets one attribute without validation (for code that builds attributes itself).
    pub fn set(&mut self, name: &str, value: AttrValue) {
        if let Some(i) = self.specs.iter().position(|s| s.name == name) {
            self.values[i] = value;
        }
    }

    fn get(&self, name: &str) -> &AttrValue {
        let i = self
            .specs
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("{} toxic declares no attribute {name}", self.type_name));
        &self.values[i]
    }

    /// The integer attribute `name`, as declared by the toxic that asks.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            AttrValue::Int(n) => *n,
            AttrValue::Float(f) => *f as i64,
            AttrValue::Text(_) => 0,
        }
    }

    /// The real attribute `name`.
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            AttrValue::Int(n) => *n as f64,
            AttrValue::Float(f) => *f,
            AttrValue::Text(_) => 0.0,
        }
    }

    /// The word attribute `name`.
    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            AttrValue::Text(s) => s,
            _ => "",
        }
    }

    /// The JSON object the API shows: every attribute, except extensions left at default.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (spec, value) in self.specs.iter().zip(&self.values) {
            if spec.extension && *value == spec.default_value() {
                continue;
            }
            map.insert(spec.name.to_string(), value.to_json());
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn latency() -> Attributes {
        Attributes::defaults(crate::toxics::lookup("latency").unwrap())
    }

    /// Keys not sent keep their values, as Toxiproxy's update merges attributes.
    #[test]
    fn merge_keeps_unsent_keys() {
        let mut a = latency();
        a.merge_json(&json!({"latency": 100, "jitter": 10}))
            .unwrap();
        a.merge_json(&json!({"latency": 1000})).unwrap();
        assert_eq!(a.int("latency"), 1000);
        assert_eq!(a.int("jitter"), 10);
    }

    /// A bad value is rejected and leaves every attribute as it was.
    #[test]
    fn bad_value_changes_nothing() {
        let mut a = latency();
        a.merge_json(&json!({"latency": 5})).unwrap();
        let err = a
            .merge_json(&json!({"jitter": 3, "latency": "slow"}))
            .unwrap_err();
        assert!(err.contains("latency"), "{err}");
        assert_eq!(a.int("latency"), 5);
        assert_eq!(a.int("jitter"), 0);
        assert!(a.merge_json(&json!({"latency": -1})).is_err());
        assert!(a.merge_json(&json!({"latency": 1.5})).is_err());
    }

    /// Keys match case-insensitively; integral reals are integers; unknown keys are ignored.
    #[test]
    fn lenient_like_toxiproxy() {
        let mut a = latency();
        a.merge_json(&json!({"Latency": 100.0, "other": true}))
            .unwrap();
        assert_eq!(a.to_json(), json!({"latency": 100, "jitter": 0}));
    }
}
