//! The JSON the API reads and writes.
//!
//! Reading follows Go's `encoding/json` as Toxiproxy uses it where clients depend on it: only
//! the first JSON value of a body counts, field names match case-insensitively and `null` means
//! "not given". Unknown fields are refused, or ignored with `--lenient` (see [`super::fields`]).
//! Writing reproduces Toxiproxy's objects field for field; faultline's extensions appear only
//! when they are used.

use super::error::ApiError;
use super::fields::{self, Known, UnknownKeys};
use crate::http::Protocol;
use crate::registry::{
    HttpChange, HttpSettings, NewProxy, NewToxic, ProxyChange, ProxyView, Schedule, ToxicChange,
    ToxicView, DEFAULT_CONNECT_TIMEOUT,
};
use crate::target::Target;
use crate::toxics::{self, ToxicType};
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
pub(super) struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    /// What the object is called in error messages (`proxy`, `toxic`).
    owner: &'static str,
    policy: UnknownKeys,
}

impl<'a> Fields<'a> {
    /// The fields of `value`, after checking it carries only `known` keys.
    pub(super) fn of(
        value: &'a Value,
        known: &Known,
        policy: UnknownKeys,
    ) -> Result<Self, ApiError> {
        let owner = known.object;
        match value {
            Value::Object(map) => {
                fields::check(map, known, policy)?;
                Ok(Fields {
                    map: Some(map),
                    owner,
                    policy,
                })
            }
            Value::Null => Ok(Fields {
                map: None,
                owner,
                policy,
            }),
            other => Err(ApiError::BadBody(format!(
                "a {owner} must be a JSON object, got {}",
                json_kind(other)
            ))),
        }
    }

    /// The value of `key`: an exact match first, then a case-insensitive one. `null` is absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
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

    pub(super) fn mismatch(&self, key: &str, value: &Value, expected: &str) -> ApiError {
        ApiError::BadBody(format!(
            "field \"{key}\" of {} must be {expected}, got {}",
            self.owner,
            json_kind(value)
        ))
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.mismatch(key, other, "a string")),
        }
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.mismatch(key, other, "true or false")),
        }
    }

    fn float(&self, key: &str) -> Result<Option<f32>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as f32)),
            Some(other) => Err(self.mismatch(key, other, "a number")),
        }
    }

    fn millis(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(ms) => Ok(Some(Duration::from_millis(ms))),
                None => Err(ApiError::BadBody(format!(
                    "field \"{key}\" of {} must be a whole number of milliseconds, got {v}",
                    self.owner
                ))),
            },
        }
    }

    fn raw(&self, key: &str) -> Value {
        self.get(key).cloned().unwrap_or(Value::Null)
    }

    fn protocol(&self) -> Result<Option<Protocol>, ApiError> {
        self.string("protocol")?
            .map(|p| Protocol::parse(&p).map_err(ApiError::BadBody))
            .transpose()
    }

    /// faultline's HTTP fields of a proxy: `protocol`, `upstream_tls`, `upstream_sni`.
    fn http_change(&self) -> Result<HttpChange, ApiError> {
        Ok(HttpChange {
            protocol: self.protocol()?,
            upstream_tls: self.bool("upstream_tls")?,
            upstream_sni: self.string("upstream_sni")?,
        })
    }

    /// `target`, its keys checked like any object's: in lenient mode the unknown ones are
    /// dropped (with a warning) before it is read.
    fn target(&self) -> Result<Option<Target>, ApiError> {
        let mut raw = self.raw("target");
        if let Value::Object(map) = &mut raw {
            fields::check(map, &fields::TARGET, self.policy)?;
            map.retain(|key, _| {
                let known = fields::TARGET.fields.iter().chain(fields::TARGET.tolerated);
                known.into_iter().any(|name| name.eq_ignore_ascii_case(key))
            });
        }
        Target::from_json(&raw).map_err(ApiError::BadBody)
    }

    fn schedule(&self) -> Result<Option<Schedule>, ApiError> {
        let Some(value) = self.get("schedule") else {
            return Ok(None);
        };
        let fields = Fields::of(value, &fields::SCHEDULE, self.policy)?;
        let bad = || ApiError::BadBody("schedule needs on_ms and off_ms".into());
        Ok(Some(Schedule {
            on: fields.millis("on_ms")?.ok_or_else(bad)?,
            off: fields.millis("off_ms")?.ok_or_else(bad)?,
        }))
    }
}

/// A JSON value's kind, with its article, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `POST /proxies` and each `/populate` item.
pub fn new_proxy(value: &Value, policy: UnknownKeys) -> Result<NewProxy, ApiError> {
    let f = Fields::of(value, &fields::PROXY, policy)?;
    Ok(NewProxy {
        name: f.string("name")?.unwrap_or_default(),
        listen: f.string("listen")?.unwrap_or_default(),
        upstream: f.string("upstream")?.unwrap_or_default(),
        enabled: f.bool("enabled")?.unwrap_or(true),
        connect_timeout: f.millis("connect_timeout_ms")?,
        http: {
            let change = f.http_change()?;
            HttpSettings {
                protocol: change.protocol.unwrap_or_default(),
                upstream_tls: change.upstream_tls.unwrap_or(false),
                upstream_sni: change.upstream_sni.filter(|s| !s.is_empty()),
            }
        },
    })
}

/// The toxics a config file may list for a proxy (a faultline extension).
pub fn proxy_toxics(value: &Value, policy: UnknownKeys) -> Result<Vec<NewToxic>, ApiError> {
    let f = Fields::of(value, &fields::PROXY, policy)?;
    match f.get("toxics") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|t| new_toxic(t, policy)).collect(),
        Some(other) => Err(f.mismatch("toxics", other, "a list of toxics")),
    }
}

/// `POST/PATCH /proxies/{proxy}`.
pub fn proxy_change(value: &Value, policy: UnknownKeys) -> Result<ProxyChange, ApiError> {
    let f = Fields::of(value, &fields::PROXY, policy)?;
    // A proxy cannot be renamed, so `name` is ignored, but like Toxiproxy (whose decoder reads
    // the whole object) a name of the wrong type is refused.
    f.string("name")?;
    Ok(ProxyChange {
        listen: f.string("listen")?,
        upstream: f.string("upstream")?,
        enabled: f.bool("enabled")?,
        connect_timeout: f.millis("connect_timeout_ms")?,
        http: f.http_change()?,
    })
}

/// `POST /proxies/{proxy}/toxics`.
pub fn new_toxic(value: &Value, policy: UnknownKeys) -> Result<NewToxic, ApiError> {
    let f = Fields::of(value, &fields::TOXIC, policy)?;
    // Toxiproxy: an absent or null stream means downstream, but "" is invalid.
    let stream = match f.map.and_then(|m| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("stream"))
            .map(|(_, v)| v)
    }) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => return Err(f.mismatch("stream", other, "a string")),
    };
    let kind = f.string("type")?;
    // An unknown type is reported by the registry, in Toxiproxy's order of checks.
    if let Some(toxic_type) = kind.as_deref().and_then(toxics::lookup) {
        fields::check_attributes(&f.raw("attributes"), toxic_type, policy)?;
    }
    Ok(NewToxic {
        name: f.string("name")?,
        kind,
        stream,
        toxicity: f.float("toxicity")?,
        attributes: f.raw("attributes"),
        target: f.target()?,
        duration: f.millis("duration_ms")?,
        schedule: f.schedule()?,
    })
}

/// `POST/PATCH /proxies/{proxy}/toxics/{toxic}` of a toxic of type `kind`.
pub fn toxic_change(
    value: &Value,
    kind: &ToxicType,
    policy: UnknownKeys,
) -> Result<ToxicChange, ApiError> {
    let f = Fields::of(value, &fields::TOXIC, policy)?;
    // A toxic's name, type and stream cannot change; they are ignored, but must be strings.
    for ignored in ["name", "type", "stream"] {
        f.string(ignored)?;
    }
    fields::check_attributes(&f.raw("attributes"), kind, policy)?;
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
    /// faultline: shown only when it differs from the default, so Toxiproxy's objects stay
    /// field for field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// faultline: `tcp` or `http`, always shown (Toxiproxy clients ignore it).
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upstream_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_sni: Option<&'a str>,
}

impl<'a> From<&'a ProxyView> for ProxyJson<'a> {
    fn from(p: &'a ProxyView) -> Self {
        ProxyJson {
            name: &p.name,
            listen: &p.listen,
            upstream: &p.upstream,
            enabled: p.enabled,
            toxics: p.toxics.iter().map(ToxicJson::from).collect(),
            connect_timeout_ms: (p.connect_timeout != DEFAULT_CONNECT_TIMEOUT)
                .then_some(p.connect_timeout.as_millis() as u64),
            protocol: p.http.protocol.as_str(),
            upstream_tls: p.http.upstream_tls,
            upstream_sni: p.http.upstream_sni.as_deref(),
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

    /// Field names are case-insensitive; wrong types name the field and the expected type.
    #[test]
    fn go_like_fields() {
        let p = new_proxy(
            &json!({"Name": "a", "UPSTREAM": "b:1"}),
            UnknownKeys::Reject,
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.upstream.as_str(), p.enabled),
            ("a", "b:1", true)
        );
        let err = new_proxy(&json!({"name": 5}), UnknownKeys::Reject)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "bad request body: field \"name\" of proxy must be a string, got a number"
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
