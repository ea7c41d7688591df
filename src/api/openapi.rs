//! The OpenAPI 3.1 description of the whole API, served at `GET /openapi.json` and kept in the
//! repository as `docs/openapi.json` (a test keeps the two equal).
//!
//! The document is built here rather than written by hand so it cannot drift: the toxic
//! schemas (one per type, with each attribute's kind, default and bounds) come from the
//! [`ToxicType`] declarations, and the object fields from [`super::fields`].

use super::fields::{self, Known};
use super::routes::TOXIPROXY_VERSION;
use crate::toxics::{self, AttrKind, AttrSpec, ToxicType, MAX_INT};
use serde_json::{json, Map, Value};

/// The longest `duration_ms`, `on_ms` or `off_ms` accepted: ten years.
const MAX_MILLIS: u64 = 10 * 365 * 86_400 * 1000;

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "faultline",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A programmable TCP fault-injection proxy, API-compatible with Toxiproxy v2",
            "description": format!(
                "Toxiproxy's v2 REST API (as of Toxiproxy {TOXIPROXY_VERSION}) with faultline's \
                 extensions: toxics with `target`, `duration_ms` and `schedule`, more toxic \
                 types, `/events`, `/proxies/{{proxy}}/stats` and `/metrics`. Unknown JSON keys \
                 are refused with a 400 unless the server runs with `--lenient`. Field names \
                 match case-insensitively and `null` means \"not given\", as with Toxiproxy. \
                 When the server has an API token, every operation but `GET /version` requires \
                 it (bearer, or either half of HTTP Basic credentials)."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "http://127.0.0.1:8474"}],
        "security": [{}, {"bearer": []}, {"basic": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The token as the user name or the password, as in http://:TOKEN@host:8474"
                },
            },
            "parameters": {
                "proxy": {"name": "proxy", "in": "path", "required": true,
                          "description": "The proxy's name", "schema": {"type": "string"},
                          "example": "redis"},
                "toxic": {"name": "toxic", "in": "path", "required": true,
                          "description": "The toxic's name", "schema": {"type": "string"},
                          "example": "latency_downstream"},
            },
            "schemas": schemas(),
            "responses": common_responses(),
        },
    })
}

fn reference(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{name}")})
}

fn schema(name: &str) -> Value {
    reference("schemas", name)
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    let mut response = json_body(schema);
    response["description"] = json!(description);
    response
}

fn empty(description: &str) -> Value {
    json!({"description": description})
}

/// An operation: its summary, request body, own responses and which common errors it has.
fn operation(
    id: &str,
    summary: &str,
    body: Option<Value>,
    responses: &[(&str, Value)],
    errors: &[&str],
) -> Value {
    let mut all = Map::new();
    for (status, response) in responses {
        all.insert(status.to_string(), response.clone());
    }
    // Every operation can be refused before it runs: no token, a foreign Host, too large.
    for status in errors.iter().chain(&["401", "403", "413"]) {
        all.insert(status.to_string(), reference("responses", status));
    }
    let mut op = json!({"operationId": id, "summary": summary, "responses": all});
    if let Some(schema) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    op
}

fn params(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| reference("parameters", n)).collect())
}

fn paths() -> Value {
    let proxy_ok = |d: &str| ok(d, schema("Proxy"));
    let toxic_ok = |d: &str| ok(d, schema("Toxic"));
    json!({
        "/proxies": {
            "get": operation("listProxies", "Every proxy, keyed by name", None,
                &[("200", ok("Proxies by name", json!({"type": "object", "additionalProperties": schema("Proxy")})))], &[]),
            "post": operation("createProxy", "Create a proxy (and start it unless enabled is false)",
                Some(schema("NewProxy")),
                &[("201", proxy_ok("The proxy; listen is the address actually bound"))],
                &["400", "409", "500"]),
        },
        "/populate": {
            "post": operation("populate",
                "Create or replace many proxies; an unchanged existing proxy is kept with its toxics",
                Some(json!({"type": ["array", "null"], "items": schema("NewProxy")})),
                &[
                    ("201", ok("The proxies processed", json!({
                        "type": "object", "required": ["proxies"],
                        "properties": {"proxies": {"type": "array", "items": schema("Proxy")}}}))),
                    ("400", ok("Refused; nothing was created", schema("PopulateError"))),
                    ("500", ok("A listen address could not be bound or resolved; `proxies` lists those processed before", schema("PopulateError"))),
                ],
                &[]),
        },
        "/proxies/{proxy}": {
            "parameters": params(&["proxy"]),
            "get": operation("getProxy", "One proxy, with its toxics", None,
                &[("200", proxy_ok("The proxy"))], &["404"]),
            "post": operation("updateProxy", "Change listen, upstream or enabled (POST, as most clients send)",
                Some(schema("ProxyUpdate")), &[("200", proxy_ok("The proxy"))], &["400", "404", "500"]),
            "patch": operation("patchProxy", "Change listen, upstream or enabled",
                Some(schema("ProxyUpdate")), &[("200", proxy_ok("The proxy"))], &["400", "404", "500"]),
            "delete": operation("deleteProxy", "Delete a proxy, closing its connections", None,
                &[("204", empty("Deleted"))], &["404"]),
        },
        "/proxies/{proxy}/stats": {
            "parameters": params(&["proxy"]),
            "get": operation("proxyStats", "Live counters of one proxy (faultline)", None,
                &[("200", ok("Counters", schema("ProxyStats")))], &["404"]),
        },
        "/proxies/{proxy}/toxics": {
            "parameters": params(&["proxy"]),
            "get": operation("listToxics", "A proxy's toxics, upstream first, each in chain order", None,
                &[("200", ok("Toxics", json!({"type": "array", "items": schema("Toxic")})))], &["404"]),
            "post": operation("createToxic", "Add a toxic (200, as Toxiproxy answers)",
                Some(schema("NewToxic")), &[("200", toxic_ok("The toxic, with every attribute"))],
                &["400", "404", "409"]),
        },
        "/proxies/{proxy}/toxics/{toxic}": {
            "parameters": params(&["proxy", "toxic"]),
            "get": operation("getToxic", "One toxic", None, &[("200", toxic_ok("The toxic"))], &["404"]),
            "post": operation("updateToxic", "Change a toxic; attributes are merged into the current ones (POST)",
                Some(schema("ToxicUpdate")), &[("200", toxic_ok("The toxic"))], &["400", "404"]),
            "patch": operation("patchToxic", "Change a toxic; attributes are merged into the current ones",
                Some(schema("ToxicUpdate")), &[("200", toxic_ok("The toxic"))], &["400", "404"]),
            "delete": operation("deleteToxic", "Remove a toxic", None, &[("204", empty("Removed"))], &["404"]),
        },
        "/reset": {
            "post": operation("reset", "Enable every proxy and remove every toxic (any body is ignored)", None,
                &[("204", empty("Done"))], &["500"]),
        },
        "/version": {
            "get": {
                "operationId": "version",
                "summary": "The Toxiproxy API level spoken, and faultline's own version (needs no token)",
                "security": [{}],
                "responses": {
                    "200": {"description": "Versions", "content": {"application/json;charset=utf-8": {"schema": {
                        "type": "object", "required": ["version", "faultline"],
                        "properties": {"version": {"type": "string", "const": TOXIPROXY_VERSION},
                                       "faultline": {"type": "string"}}}}}},
                    "403": reference("responses", "403"),
                },
            },
        },
        "/metrics": metrics_path(),
        "/events": {
            "get": operation("events",
                "Server-sent events: proxies, toxics, connections, API calls and experiments' progress as they happen (never ends)",
                None,
                &[("200", json!({"description": "An event stream; each event's data is a JSON Event (see the Event schema)",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}))],
                &[]),
        },
        "/experiments/events": {
            "get": operation("experimentEvents",
                &format!("The events of the most recent experiment runs, as /events carried them, in seq order: the last {} runs by start, at most {} events of each (its experiment_started kept, then the newest; at most {} KiB); the dashboard replays them when it connects (faultline)",
                    super::experiments::HISTORY_RUNS, super::experiments::HISTORY_EVENTS_PER_RUN,
                    super::experiments::HISTORY_BYTES_PER_RUN / 1024),
                None,
                &[("200", ok("Events", json!({"type": "array", "items": schema("Event")})))],
                &[]),
            "post": operation("publishExperimentEvent",
                "One step of a chaos experiment's progress, re-published on /events as experiment_<type> with the event (less its type) as detail, and kept for GET /experiments/events (faultline: `faultline experiment run` sends these to the servers it acts on, for the dashboard)",
                Some(schema("ExperimentEvent")),
                &[("204", empty("Published on /events"))],
                &["400"]),
        },
        "/toxic-types": {
            "get": operation("toxicTypes",
                "Every toxic type the server accepts, with its attributes' kinds, defaults, bounds and units (faultline; the dashboard builds its form from it)",
                None,
                &[("200", ok("Toxic types", json!({"type": "array", "items": {
                    "type": "object", "required": ["name", "attributes"],
                    "properties": {
                        "name": {"type": "string"},
                        "attributes": {"type": "array", "items": {
                            "type": "object", "required": ["name", "type", "default"],
                            "properties": {
                                "name": {"type": "string"},
                                "type": {"enum": ["integer", "number", "choice", "string", "boolean", "object", "array"]},
                                "default": {"description": "of the attribute's type: a number, a word, a string, a boolean, an object of strings or an array of strings"},
                                "min": {"type": "number"},
                                "max": {"type": "number"},
                                "choices": {"type": "array", "items": {"type": "string"}},
                                "unit": {"type": "string", "description": "ms, µs, bytes or KB/s"},
                                "extension": {"type": "boolean", "description": "a faultline extension of a Toxiproxy toxic"},
                            }}},
                    }}})))],
                &[]),
        },
        "/openapi.json": {
            "get": operation("openapi", "This document", None,
                &[("200", ok("OpenAPI 3.1", json!({"type": "object"})))], &[]),
        },
    })
}

/// `/metrics` answers any method, as Toxiproxy's does.
fn metrics_path() -> Value {
    let mut path = Map::new();
    for method in [
        "get", "post", "put", "patch", "delete", "head", "options", "trace",
    ] {
        path.insert(
            method.to_string(),
            operation(
                &format!("metrics{}", capitalized(method)),
                "Prometheus metrics (any method, as Toxiproxy's)",
                None,
                &[(
                    "200",
                    json!({"description": "OpenMetrics text exposition (Prometheus reads it)",
                           "content": {"application/openmetrics-text; version=1.0.0; charset=utf-8": {"schema": {"type": "string"}}}}),
                )],
                &[],
            ),
        );
    }
    Value::Object(path)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn common_responses() -> Value {
    let error = |d: &str| ok(d, schema("Error"));
    json!({
        "400": error("Bad input: the message names what was wrong and what is valid; nothing changed"),
        "401": error("An API token is required (bearer, or HTTP Basic)"),
        "403": {"description": "A foreign Host on a loopback API (JSON error body), or a browser (Toxiproxy's plain-text refusal)",
                "content": {"application/json": {"schema": schema("Error")},
                            "text/plain; charset=utf-8": {"schema": {"type": "string"}}}},
        "404": error("No such proxy or toxic"),
        "409": error("The name is taken"),
        "413": error("The request body is larger than --max-body-bytes"),
        "500": error("A listen address could not be bound or resolved (Toxiproxy's 500, with Go's message)"),
    })
}

/// `"type": [t, "null"]`: Go's decoder, which Toxiproxy clients rely on, reads null as absent.
fn nullable(kind: &str) -> Value {
    json!([kind, "null"])
}

/// An object schema of `known`'s fields, closed (strict mode refuses other keys).
fn object(known: &Known, properties: Value, required: &[&str]) -> Value {
    let mut properties = match properties {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for field in known.tolerated {
        properties.insert(
            field.to_string(),
            json!({"description": "Sent by published clients; accepted and ignored"}),
        );
    }
    debug_assert!(
        known.fields.iter().all(|f| properties.contains_key(*f)),
        "{} schema misses a field",
        known.object
    );
    json!({"type": ["object", "null"], "properties": properties, "required": required,
           "additionalProperties": false})
}

fn proxy_properties() -> Value {
    json!({
        "name": {"type": nullable("string"), "description": "Unique name (required on create)"},
        "listen": {"type": nullable("string"), "description": "host:port to listen on; port 0 picks one"},
        "upstream": {"type": nullable("string"), "description": "host:port to forward to (required on create)"},
        "enabled": {"type": nullable("boolean"), "description": "Whether the proxy listens (default true)"},
        "protocol": {"description": "Reserved for faultline's protocol-aware proxies"},
        "upstream_tls": {"description": "Reserved for faultline's TLS upstreams"},
        "upstream_sni": {"description": "Reserved for faultline's TLS upstreams"},
        "connect_timeout_ms": {"description": "Reserved for faultline's upstream connect timeout"},
    })
}

/// A proxy to create: name and upstream are required and non-empty.
fn new_proxy_schema() -> Value {
    let mut properties = proxy_properties();
    for required in ["name", "upstream"] {
        properties[required]["type"] = json!("string");
        properties[required]["minLength"] = json!(1);
    }
    let mut schema = object(&fields::PROXY, properties, &["name", "upstream"]);
    schema["type"] = json!("object");
    schema
}

fn millis(description: &str) -> Value {
    json!({"type": nullable("integer"), "minimum": 1, "maximum": MAX_MILLIS, "description": description})
}

fn common_toxic_properties() -> Map<String, Value> {
    let props = json!({
        "name": {"type": nullable("string"), "description": "Unique within the proxy; default <type>_<stream>"},
        "stream": {"type": nullable("string"), "description": "upstream or downstream, any case (default downstream)"},
        "toxicity": {"type": nullable("number"), "minimum": 0, "maximum": 1,
                     "description": "Probability that the toxic applies to a connection (default 1)"},
        "target": {"oneOf": [{"type": "null"}, schema("Target")]},
        "duration_ms": millis("faultline: the toxic removes itself after this long"),
        "schedule": {"oneOf": [{"type": "null"}, schema("Schedule")]},
    });
    match props {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The schema of one attribute, from its declaration.
fn attribute_schema(spec: &AttrSpec) -> Value {
    let mut schema = match spec.kind {
        AttrKind::Int { default, min, max } => {
            json!({"type": nullable("integer"), "minimum": min, "maximum": max.min(MAX_INT), "default": default})
        }
        AttrKind::Float { default, min, max } => {
            json!({"type": nullable("number"), "minimum": min, "maximum": max, "default": default})
        }
        AttrKind::Choice { default, choices } => {
            let mut words: Vec<Value> = choices.iter().map(|c| json!(c)).collect();
            words.push(Value::Null);
            json!({"enum": words, "default": default})
        }
        AttrKind::Text { default } => json!({"type": nullable("string"), "default": default}),
        AttrKind::Bool { default } => json!({"type": nullable("boolean"), "default": default}),
        AttrKind::Map => json!({
            "type": nullable("object"),
            "additionalProperties": {"type": "string"},
            "default": {},
        }),
        AttrKind::List => json!({
            "type": nullable("array"),
            "items": {"type": "string"},
            "default": [],
        }),
    };
    if spec.extension {
        schema["description"] = json!("faultline extension; listed only when not at its default");
    }
    schema
}

fn attributes_schema(kind: &ToxicType) -> Value {
    let properties: Map<String, Value> = kind
        .attributes
        .iter()
        .map(|spec| (spec.name.to_string(), attribute_schema(spec)))
        .collect();
    json!({"type": ["object", "null"], "properties": properties, "additionalProperties": false})
}

/// One create schema per toxic type, generated from its declaration.
fn new_toxic_variant(kind: &ToxicType) -> Value {
    let mut properties = common_toxic_properties();
    properties.insert("type".into(), json!({"const": kind.name}));
    properties.insert("attributes".into(), attributes_schema(kind));
    let mut variant = object(&fields::TOXIC, Value::Object(properties), &["type"]);
    variant["type"] = json!("object");
    variant["title"] = json!(kind.name);
    variant
}

/// A required string that is one of `words`.
fn words(words: &[&str], description: &str) -> Value {
    json!({"enum": words, "description": description})
}

/// The shape of one `POST /experiments/events` body per `type` (see [`super::experiments`]).
fn experiment_event_schema() -> Value {
    use super::experiments::{
        ACTIVITY_STATUSES, KINDS, MAX_RUN_ID, PHASES, RUN_STATUSES, VERDICTS,
    };
    let variant = |known: &Known, kind: &str, mut properties: Value, required: &[&str]| {
        properties["run"] = json!({"type": "string", "minLength": 1, "maxLength": MAX_RUN_ID,
            "description": "The run's id, chosen by the runner; the same in all its events"});
        properties["type"] = json!({"const": kind});
        let mut all = vec!["run", "type"];
        all.extend_from_slice(required);
        let mut schema = object(known, properties, &all);
        schema["type"] = json!("object");
        schema["title"] = json!(kind);
        schema
    };
    let phase = words(PHASES, "Where the step belongs: safeguards, the steady-state hypothesis before the method, the method, the hypothesis after it, or the rollbacks");
    let index = json!({"type": "integer", "minimum": 0, "description": "The step's position within its phase, from 0"});
    let kind = words(KINDS, "probe or action");
    let text = |description: &str| json!({"type": nullable("string"), "description": description});
    let step = {
        let mut schema = object(
            &fields::EXPERIMENT_STEP,
            json!({"phase": phase, "name": {"type": "string"}, "kind": kind}),
            &["phase", "name", "kind"],
        );
        schema["type"] = json!("object");
        schema
    };
    json!({
        "description": "One event of a run: started (its plan), an activity's state, a probe's value against its tolerance, or its end",
        "oneOf": [
            variant(&fields::EXPERIMENT_STARTED, "started", json!({
                "title": {"type": "string"},
                "steps": {"type": ["array", "null"], "items": step, "description": "The plan, in order"},
            }), &["title"]),
            variant(&fields::EXPERIMENT_ACTIVITY, "activity", json!({
                "phase": phase, "index": index, "name": {"type": "string"}, "kind": kind,
                "status": words(ACTIVITY_STATUSES, "running when it starts, then succeeded or failed"),
                "error": text("Why it failed"),
            }), &["phase", "index", "name", "kind", "status"]),
            variant(&fields::EXPERIMENT_PROBE, "probe", json!({
                "phase": phase, "index": index, "name": {"type": "string"},
                "value": {"description": "The part of the probe's output the tolerance looks at (any JSON)"},
                "tolerance": text("The tolerance, in words"),
                "range": {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                          "description": "[lower, upper] when the tolerance is a numeric range"},
                "ok": {"type": "boolean", "description": "Whether the value is within the tolerance"},
            }), &["phase", "index", "name", "ok"]),
            variant(&fields::EXPERIMENT_ENDED, "ended", json!({
                "status": words(RUN_STATUSES, "The journal's status, as Chaos Toolkit's"),
                "deviated": {"type": "boolean", "description": "Whether the hypothesis held before the method and not after it"},
                "verdict": words(VERDICTS, "The runner's verdict, which its exit code follows"),
                "reason": text("What stopped an aborted or interrupted run"),
            }), &["status", "deviated", "verdict"]),
        ],
    })
}

fn schemas() -> Value {
    let mut update = common_toxic_properties();
    for ignored in ["name", "type", "stream"] {
        update.insert(
            ignored.into(),
            json!({"type": nullable("string"), "description": "Ignored: a toxic's name, type and stream cannot change"}),
        );
    }
    update.insert(
        "attributes".into(),
        json!({"type": ["object", "null"],
               "description": "Merged into the current attributes; only the toxic type's attributes are accepted"}),
    );
    let variants: Vec<Value> = toxics::TYPES.iter().map(|t| new_toxic_variant(t)).collect();
    let names: Vec<&str> = toxics::TYPES.iter().map(|t| t.name).collect();
    let attribute_sets: Map<String, Value> = toxics::TYPES
        .iter()
        .map(|t| (t.name.to_string(), attributes_schema(t)))
        .collect();
    json!({
        "Error": {"type": "object", "required": ["error", "status"],
                  "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
        "PopulateError": {"type": "object", "required": ["error", "status", "proxies"],
                          "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                                         "proxies": {"type": "array", "items": schema("Proxy")}}},
        "NewProxy": new_proxy_schema(),
        "ProxyUpdate": object(&fields::PROXY, proxy_properties(), &[]),
        "Proxy": {"type": "object", "required": ["name", "listen", "upstream", "enabled", "toxics"],
                  "properties": {"name": {"type": "string"}, "listen": {"type": "string"},
                                 "upstream": {"type": "string"}, "enabled": {"type": "boolean"},
                                 "toxics": {"type": "array", "items": schema("Toxic")}}},
        "NewToxic": {"oneOf": variants, "description": "One schema per toxic type"},
        "ToxicUpdate": object(&fields::TOXIC, Value::Object(update), &[]),
        "Toxic": {"type": "object", "required": ["attributes", "name", "type", "stream", "toxicity"],
                  "properties": {
                      "attributes": {"type": "object", "description": "Every attribute of the type (see ToxicAttributes)"},
                      "name": {"type": "string"},
                      "type": {"enum": names},
                      "stream": {"type": "string"},
                      "toxicity": {"type": "number"},
                      "target": schema("Target"),
                      "remaining_ms": {"type": "integer", "minimum": 0, "description": "Until a timed toxic removes itself"},
                      "schedule": schema("Schedule"),
                      "active": {"type": "boolean", "description": "Whether a scheduled toxic is in its on phase"},
                  }},
        "ToxicAttributes": {"type": "object", "properties": attribute_sets,
                            "description": "The attributes of each toxic type"},
        "Target": {"type": "object", "additionalProperties": false,
                   "description": "faultline: which connections the toxic applies to",
                   "properties": {
                       "cidrs": {"type": ["array", "string", "null"], "items": {"type": "string"},
                                 "description": "Client address blocks, e.g. 10.0.0.0/8; empty means any"},
                       "fraction": {"type": "number", "minimum": 0, "maximum": 1,
                                    "description": "Stable share of connections selected"}}},
        "Schedule": {"type": "object", "required": ["on_ms", "off_ms"], "additionalProperties": false,
                     "description": "faultline: the toxic is active for on_ms, then absent for off_ms, repeating",
                     "properties": {"on_ms": millis("Active phase"), "off_ms": millis("Absent phase")}},
        "ProxyStats": {"type": "object",
                       "required": ["name", "connections_active", "connections_total", "connect_errors",
                                    "toxic_closes", "toxic_resets", "upstream", "downstream"],
                       "properties": {
                           "name": {"type": "string"},
                           "connections_active": {"type": "integer"},
                           "connections_total": {"type": "integer"},
                           "connect_errors": {"type": "integer"},
                           "toxic_closes": {"type": "integer"},
                           "toxic_resets": {"type": "integer"},
                           "upstream": schema("DirectionStats"),
                           "downstream": schema("DirectionStats")}},
        "DirectionStats": {"type": "object",
                           "required": ["received_bytes", "sent_bytes", "delayed_chunks", "dropped_bytes"],
                           "properties": {"received_bytes": {"type": "integer"}, "sent_bytes": {"type": "integer"},
                                          "delayed_chunks": {"type": "integer"}, "dropped_bytes": {"type": "integer"}}},
        "ExperimentEvent": experiment_event_schema(),
        "Event": {"type": "object", "required": ["seq", "time", "type"],
                  "properties": {"seq": {"type": "integer"}, "time": {"type": "string", "format": "date-time"},
                                 "type": {"type": "string"}, "proxy": {"type": "string"},
                                 "toxic": {"type": "string"}, "client": {"type": "string"},
                                 "detail": {}}},
    })
}
