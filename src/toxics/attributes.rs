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
    /// A whole number (JSON integer) within `[min, max]`, like Toxiproxy's int64 attributes.
    Int { default: i64, min: i64, max: i64 },
    /// A real number within `[min, max]`.
    Float { default: f64, min: f64, max: f64 },
    /// One of a fixed set of words.
    Choice {
        default: &'static str,
        choices: &'static [&'static str],
    },
    /// Free text (a JSON string).
    Text { default: &'static str },
    /// `true` or `false`.
    Bool { default: bool },
    /// A JSON object of names to string values (headers to set); empty by default.
    Map,
    /// A JSON array of strings (headers to remove); empty by default.
    List,
}

/// What an attribute's number counts, for help texts and for tools that accept `1s` or `500ms`
/// in place of a bare number of the attribute's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (a probability, a count) or a word.
    None,
    Milliseconds,
    Microseconds,
    Bytes,
    KilobytesPerSecond,
}

impl Unit {
    /// The unit's short name, as help texts print it (`ms`, `µs`, `bytes`, `KB/s`).
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Milliseconds => "ms",
            Unit::Microseconds => "µs",
            Unit::Bytes => "bytes",
            Unit::KilobytesPerSecond => "KB/s",
        }
    }
}

/// One declared attribute of a toxic type.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
    /// What the number counts (help texts; tools convert `1s` into it).
    pub unit: Unit,
    /// Listed in API output only when set to something other than its default, so toxics that
    /// Toxiproxy also has keep exactly Toxiproxy's attribute set unless the extension is used.
    pub extension: bool,
}

impl AttrSpec {
    pub const fn int(name: &'static str, default: i64, min: i64) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Int {
                default,
                min,
                max: MAX_INT,
            },
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn int_range(name: &'static str, default: i64, min: i64, max: i64) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Int { default, min, max },
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn text(name: &'static str, default: &'static str) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Text { default },
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn boolean(name: &'static str, default: bool) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Bool { default },
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn map(name: &'static str) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Map,
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn list(name: &'static str) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::List,
            unit: Unit::None,
            extension: false,
        }
    }

    pub const fn float(name: &'static str, default: f64, min: f64, max: f64) -> Self {
        AttrSpec {
            name,
            kind: AttrKind::Float { default, min, max },
            unit: Unit::None,
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
            unit: Unit::None,
            extension: false,
        }
    }

    /// Says what the attribute's number counts.
    pub const fn unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
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
            AttrKind::Choice { default, .. } | AttrKind::Text { default } => {
                AttrValue::Text(default.to_string())
            }
            AttrKind::Bool { default } => AttrValue::Bool(default),
            AttrKind::Map => AttrValue::Map(Vec::new()),
            AttrKind::List => AttrValue::List(Vec::new()),
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
            AttrKind::Int { min, max, .. } => {
                let n = as_integer(value).ok_or_else(|| mismatch("an integer"))?;
                if n < min || n > max {
                    return Err(format!(
                        "attribute {} of {} toxic must be between {min} and {max}, got {n}",
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
            AttrKind::Text { .. } => value
                .as_str()
                .map(|s| AttrValue::Text(s.to_string()))
                .ok_or_else(|| mismatch("a string")),
            AttrKind::Bool { .. } => value
                .as_bool()
                .map(AttrValue::Bool)
                .ok_or_else(|| mismatch("true or false")),
            AttrKind::Map => {
                let object = value
                    .as_object()
                    .ok_or_else(|| mismatch("an object of names to strings"))?;
                let mut pairs = Vec::with_capacity(object.len());
                for (name, v) in object {
                    let text = v.as_str().ok_or_else(|| {
                        format!(
                            "attribute {}.{name} of {} toxic must be a string, got {}",
                            self.name,
                            type_name,
                            describe(v)
                        )
                    })?;
                    pairs.push((name.clone(), text.to_string()));
                }
                Ok(AttrValue::Map(pairs))
            }
            AttrKind::List => {
                let items = value
                    .as_array()
                    .ok_or_else(|| mismatch("an array of strings"))?;
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map(AttrValue::List)
                    .ok_or_else(|| mismatch("an array of strings"))
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
    Bool(bool),
    /// Name-value pairs, in the order the client sent them.
    Map(Vec<(String, String)>),
    List(Vec<String>),
}

impl AttrValue {
    fn to_json(&self) -> Value {
        match self {
            AttrValue::Int(n) => Value::from(*n),
            AttrValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            AttrValue::Text(s) => Value::from(s.as_str()),
            AttrValue::Bool(b) => Value::from(*b),
            AttrValue::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
            AttrValue::List(items) => Value::from(items.clone()),
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
            _ => 0,
        }
    }

    /// The real attribute `name`.
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            AttrValue::Int(n) => *n as f64,
            AttrValue::Float(f) => *f,
            _ => 0.0,
        }
    }

    /// The boolean attribute `name`.
    pub fn boolean(&self, name: &str) -> bool {
        matches!(self.get(name), AttrValue::Bool(true))
    }

    /// The object attribute `name`, as name-value pairs.
    pub fn map(&self, name: &str) -> &[(String, String)] {
        match self.get(name) {
            AttrValue::Map(pairs) => pairs,
            _ => &[],
        }
    }

    /// The array attribute `name`.
    pub fn list(&self, name: &str) -> &[String] {
        match self.get(name) {
            AttrValue::List(items) => items,
            _ => &[],
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

    fn http_header() -> Attributes {
        Attributes::defaults(crate::toxics::lookup("http_header").unwrap())
    }

    /// Objects of strings, arrays of strings and booleans round-trip; other shapes are refused
    /// with the attribute's name and the expected shape.
    #[test]
    fn structured_kinds_validate() {
        let mut a = http_header();
        a.merge_json(&json!({"set": {"X-A": "1"}, "remove": ["Server"]}))
            .unwrap();
        assert_eq!(a.map("set"), &[("X-A".to_string(), "1".to_string())]);
        assert_eq!(a.list("remove"), &["Server".to_string()]);
        let err = a.merge_json(&json!({"set": {"X-A": 1}})).unwrap_err();
        assert!(err.contains("set.X-A") && err.contains("string"), "{err}");
        let err = a.merge_json(&json!({"remove": "Server"})).unwrap_err();
        assert!(err.contains("array of strings"), "{err}");
        assert_eq!(a.list("remove"), &["Server".to_string()]);
        let mut abort = Attributes::defaults(crate::toxics::lookup("http_abort").unwrap());
        let err = abort.merge_json(&json!({"reset": "yes"})).unwrap_err();
        assert!(err.contains("true or false"), "{err}");
    }
}
