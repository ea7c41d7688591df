//! The JSON the API reads and writes.
//!
//! Reading follows Go's `encoding/json` as Toxiproxy uses it, because clients depend on its
//! leniency: only the first JSON value of a body counts, field names match case-insensitively,
//! unknown fields are ignored and `null` means "not given". Writing reproduces Toxiproxy's
//! objects field for field; faultline's extensions appear only when they are used.

use super::error::ApiError;
use crate::registry::{
    NewProxy, NewToxic, ProxyChange, ProxyView, Schedule, ToxicChange, ToxicView,
};
use crate::target::Target;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::time::Duration;

/// The first JSON value of a body (an empty body is Go's `EOF`).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        None => Err(ApiError::BadBody("EOF".into())),
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) if e.is_eof() => Err(ApiError::BadBody("unexpected EOF".into())),
        Some(Err(e)) => Err(ApiError::BadBody(e.to_string())),
    }
}

/// The fields of a JSON object, looked up as Go does.
struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    /// Go's name for the target type, for error messages.
    owner: &'static str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, owner: &'static str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map: Some(map),
                owner,
            }),
            Value::Null => Ok(Fields { map: None, owner }),
            other => Err(ApiError::BadBody(format!(
                "json: cannot unmarshal {} into Go value of type {owner}",
                json_kind(other)
            ))),
        }
    }

    /// The value of `key`: an exact match first, then a case-insensitive one. `null` is absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        let map = self.map?;
        map.get(key)
            .or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    /// Whether `key` is present, even as `null`.
    fn has(&self, key: &str) -> bool {
        self.map
            .is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(key)))
    }

    fn mismatch(&self, key: &str, value: &Value, go_type: &str) -> ApiError {
        ApiError::BadBody(format!(
            "json: cannot unmarshal {} into Go struct field {}.{key} of type {go_type}",
            json_kind(value),
            self.owner
        ))
    }

    fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.mismatch(key, other, "string")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.mismatch(key, other, "bool")),
        }
    }

    fn float(&self, key: &str) -> Result<Option<f32>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as f32)),
            Some(other) => Err(self.mismatch(key, other, "float32")),
        }
    }

    fn millis(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(ms) => Ok(Some(Duration::from_millis(ms))),
                None => Err(ApiError::BadBody(format!(
                    "{key} must be a whole number of milliseconds"
                ))),
            },
        }
    }

    fn raw(&self, key: &str) -> Value {
        self.get(key).cloned().unwrap_or(Value::Null)
    }

    fn target(&self) -> Result<Option<Target>, ApiError> {
        Target::from_json(&self.raw("target")).map_err(ApiError::BadBody)
    }

    fn schedule(&self) -> Result<Option<Schedule>, ApiError> {
        let Some(value) = self.get("schedule") else {
            return Ok(None);
        };
        let fields = Fields::of(value, "Schedule")?;
        let bad = || ApiError::BadBody("schedule needs on_ms and off_ms".into());
        Ok(Some(Schedule {
            on: fields.millis("on_ms")?.ok_or_else(bad)?,
            off: fields.millis("off_ms")?.ok_or_else(bad)?,
        }))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `POST /proxies` and each `/populate` item.
pub fn new_proxy(value: &Value) -> Result<NewProxy, ApiError> {
    let f = Fields::of(value, "Proxy")?;
    Ok(NewProxy {
        name: f.string("name")?.unwrap_or_default(),
        listen: f.string("listen")?.unwrap_or_default(),
        upstream: f.string("upstream")?.unwrap_or_default(),
        enabled: f.bool("enabled")?.unwrap_or(true),
    })
}

/// The toxics a config file may list for a proxy (a faultline extension).
pub fn proxy_toxics(value: &Value) -> Result<Vec<NewToxic>, ApiError> {
    let f = Fields::of(value, "Proxy")?;
    match f.get("toxics") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(new_toxic).collect(),
        Some(other) => Err(f.mismatch("toxics", other, "[]Toxic")),
    }
}

/// `POST/PATCH /proxies/{proxy}`.
pub fn proxy_change(value: &Value) -> Result<ProxyChange, ApiError> {
    let f = Fields::of(value, "Proxy")?;
    Ok(ProxyChange {
        listen: f.string("listen")?,
        upstream: f.string("upstream")?,
        enabled: f.bool("enabled")?,
    })
}

/// `POST /proxies/{proxy}/toxics`.
pub fn new_toxic(value: &Value) -> Result<NewToxic, ApiError> {
    let f = Fields::of(value, "Toxic")?;
    // Toxiproxy: an absent or null stream means downstream, but "" is invalid.
    let stream = match f.map.and_then(|m| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("stream"))
            .map(|(_, v)| v)
    }) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => return Err(f.mismatch("stream", other, "string")),
    };
    Ok(NewToxic {
        name: f.string("name")?,
        kind: f.string("type")?,
        stream,
        toxicity: f.float("toxicity")?,
        attributes: f.raw("attributes"),
        target: f.target()?,
        duration: f.millis("duration_ms")?,
        schedule: f.schedule()?,
    })
}

/// `POST/PATCH /proxies/{proxy}/toxics/{toxic}`.
pub fn toxic_change(value: &Value) -> Result<ToxicChange, ApiError> {
    let f = Fields::of(value, "Toxic")?;
    let optional = |present: bool| present.then_some(());
    Ok(ToxicChange {
        toxicity: f.float("toxicity")?,
        attributes: f.raw("attributes"),
        target: optional(f.has("target")).map(|_| f.target()).transpose()?,
        duration: optional(f.has("duration_ms"))
            .map(|_| f.millis("duration_ms"))
            .transpose()?,
        schedule: optional(f.has("schedule"))
            .map(|_| f.schedule())
            .transpose()?,
    })
}

/// A proxy as Toxiproxy writes it.
#[derive(Serialize)]
pub struct ProxyJson<'a> {
    pub name: &'a str,
    pub listen: &'a str,
    pub upstream: &'a str,
    pub enabled: bool,
    pub toxics: Vec<ToxicJson<'a>>,
}

impl<'a> From<&'a ProxyView> for ProxyJson<'a> {
    fn from(p: &'a ProxyView) -> Self {
        ProxyJson {
            name: &p.name,
            listen: &p.listen,
            upstream: &p.upstream,
            enabled: p.enabled,
            toxics: p.toxics.iter().map(ToxicJson::from).collect(),
        }
    }
}

/// A toxic as Toxiproxy writes it, plus faultline's extensions when they are in use.
#[derive(Serialize)]
pub struct ToxicJson<'a> {
    pub attributes: &'a Value,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub stream: &'a str,
    #[serde(serialize_with = "go_float32")]
    pub toxicity: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl<'a> From<&'a ToxicView> for ToxicJson<'a> {
    fn from(t: &'a ToxicView) -> Self {
        ToxicJson {
            attributes: &t.attributes,
            name: &t.name,
            kind: t.kind,
            stream: &t.stream,
            toxicity: t.toxicity,
            target: t.target.as_ref(),
            remaining_ms: t.remaining.map(|d| d.as_millis() as u64),
            schedule: t.schedule.map(|s| {
                serde_json::json!({"on_ms": s.on.as_millis() as u64, "off_ms": s.off.as_millis() as u64})
            }),
            active: t.schedule.map(|_| t.active),
        }
    }
}

/// A float32 as Go prints it: shortest form, and no `.0` on whole numbers.
fn go_float32<S: Serializer>(value: &f32, s: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f32(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Only the first value counts; an empty body is EOF.
    #[test]
    fn first_value_only() {
        assert_eq!(parse_body(br#"{"a":1} trailing"#).unwrap(), json!({"a":1}));
        assert_eq!(
            parse_body(b"").unwrap_err().to_string(),
            "bad request body: EOF"
        );
        assert!(parse_body(b"{").is_err());
    }

    /// Field names are case-insensitive; wrong types name the Go field.
    #[test]
    fn go_like_fields() {
        let p = new_proxy(&json!({"Name": "a", "UPSTREAM": "b:1"})).unwrap();
        assert_eq!(
            (p.name.as_str(), p.upstream.as_str(), p.enabled),
            ("a", "b:1", true)
        );
        let err = new_proxy(&json!({"name": 5})).unwrap_err().to_string();
        assert_eq!(
            err,
            "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string"
        );
    }

    /// Whole toxicities print without a decimal point, others in shortest float32 form.
    #[test]
    fn toxicity_format() {
        let attrs = json!({});
        let mut t = ToxicJson {
            attributes: &attrs,
            name: "n",
            kind: "noop",
            stream: "downstream",
            toxicity: 1.0,
            target: None,
            remaining_ms: None,
            schedule: None,
            active: None,
        };
        assert!(serde_json::to_string(&t)
            .unwrap()
            .contains(r#""toxicity":1}"#));
        t.toxicity = 0.2;
        assert!(serde_json::to_string(&t)
            .unwrap()
            .contains(r#""toxicity":0.2}"#));
    }
}
