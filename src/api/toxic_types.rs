//! `GET /toxic-types`: every toxic type the server accepts, with its attributes' kinds,
//! defaults, bounds and units, generated from the declarations in `crate::toxics` so that
//! forms built from it (the dashboard's) never drift from what the API validates.

use crate::toxics::{AttrKind, AttrSpec, ToxicType, Unit, MAX_INT, TYPES};
use axum::Json;
use serde_json::{json, Map, Value};

pub async fn toxic_types() -> Json<Value> {
    Json(Value::Array(
        TYPES.iter().map(|t| describe_type(t)).collect(),
    ))
}

fn describe_type(kind: &ToxicType) -> Value {
    json!({
        "name": kind.name,
        "attributes": kind.attributes.iter().map(describe_attribute).collect::<Vec<_>>(),
    })
}

fn describe_attribute(spec: &AttrSpec) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), spec.name.into());
    match spec.kind {
        AttrKind::Int { default, min, max } => {
            out.insert("type".into(), "integer".into());
            out.insert("default".into(), default.into());
            out.insert("min".into(), min.into());
            out.insert("max".into(), max.min(MAX_INT).into());
        }
        AttrKind::Float { default, min, max } => {
            out.insert("type".into(), "number".into());
            out.insert("default".into(), default.into());
            out.insert("min".into(), min.into());
            out.insert("max".into(), max.into());
        }
        AttrKind::Choice { default, choices } => {
            out.insert("type".into(), "choice".into());
            out.insert("default".into(), default.into());
            out.insert("choices".into(), choices.to_vec().into());
        }
        AttrKind::Text { default } => {
            out.insert("type".into(), "string".into());
            out.insert("default".into(), default.into());
        }
        AttrKind::Bool { default } => {
            out.insert("type".into(), "boolean".into());
            out.insert("default".into(), default.into());
        }
        AttrKind::Map => {
            out.insert("type".into(), "object".into());
            out.insert("default".into(), json!({}));
        }
        AttrKind::List => {
            out.insert("type".into(), "array".into());
            out.insert("default".into(), json!([]));
        }
    }
    if spec.unit != Unit::None {
        out.insert("unit".into(), spec.unit.symbol().into());
    }
    if spec.extension {
        out.insert("extension".into(), true.into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(type_name: &str) -> Value {
        describe_type(crate::toxics::lookup(type_name).expect("known type"))
    }

    /// Integer attributes carry their default, bounds and unit.
    #[test]
    fn integer_attribute_has_bounds_and_unit() {
        let latency = described("latency");
        assert_eq!(
            latency["attributes"][0],
            json!({"name": "latency", "type": "integer", "default": 0, "min": 0,
                   "max": MAX_INT, "unit": "ms"})
        );
    }

    /// Word attributes list their choices; extensions say so.
    #[test]
    fn choice_attribute_lists_choices() {
        let latency = described("latency");
        assert_eq!(
            latency["attributes"][2],
            json!({"name": "distribution", "type": "choice", "default": "uniform",
                   "choices": ["uniform", "normal", "pareto"], "extension": true})
        );
    }

    /// Real-valued attributes carry both bounds.
    #[test]
    fn number_attribute_has_both_bounds() {
        let drop = described("drop");
        assert_eq!(
            drop["attributes"][0],
            json!({"name": "probability", "type": "number", "default": 0.0, "min": 0.0,
                   "max": 1.0})
        );
    }
}
