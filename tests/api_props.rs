//! Property tests of the API's JSON models, through the real router (in-process, no sockets
//! but the proxies' own): what the API writes, it reads back to the same value; and a request
//! it refuses never changes its state.

use axum::body::Body;
use axum::http::{header, Request};
use faultline::api::{self, ApiOptions, AppState};
use faultline::registry::{Options, Registry};
use faultline::toxics::{is_http, AttrKind, TYPES};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// An in-process API over a fresh registry.
struct Api {
    router: axum::Router,
}

impl Api {
    fn new() -> Api {
        let state = AppState {
            registry: Registry::new(Options::default()),
            shutdown: CancellationToken::new(),
            options: Arc::new(ApiOptions::default()),
            loopback: true,
            experiments: Arc::default(),
        };
        Api {
            router: api::router(state),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A valid value for each attribute of a type, within its declared bounds.
fn attributes_for(kind: &'static faultline::toxics::ToxicType) -> BoxedStrategy<Value> {
    let per_attribute: Vec<BoxedStrategy<(String, Value)>> = kind
        .attributes
        .iter()
        .map(|spec| {
            let name = spec.name.to_string();
            let value: BoxedStrategy<Value> = match spec.kind {
                AttrKind::Int { min, max, .. } => {
                    let low = min.max(0);
                    (low..=max.min(low + 100_000)).prop_map(Value::from).boxed()
                }
                AttrKind::Float { min, max, .. } => (0u32..=1000)
                    .prop_map(move |k| json!(min + (max - min) * f64::from(k) / 1000.0))
                    .boxed(),
                AttrKind::Choice { choices, .. } => proptest::sample::select(choices.to_vec())
                    .prop_map(Value::from)
                    .boxed(),
                AttrKind::Text { default } => Just(Value::from(default)).boxed(),
                AttrKind::Bool { .. } => proptest::bool::ANY.prop_map(Value::from).boxed(),
                AttrKind::Map => Just(json!({})).boxed(),
                AttrKind::List => Just(json!([])).boxed(),
            };
            value.prop_map(move |v| (name.clone(), v)).boxed()
        })
        .collect();
    per_attribute
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>()))
        .boxed()
}

/// A valid toxic to create: any type, valid attributes, and faultline's extensions.
fn valid_toxic() -> impl Strategy<Value = Value> {
    // HTTP toxics need an `http` proxy; these properties run on TCP proxies.
    let tcp_types: Vec<_> = TYPES.iter().copied().filter(|t| !is_http(t)).collect();
    proptest::sample::select(tcp_types)
        .prop_flat_map(|kind| {
            (
                Just(kind.name),
                attributes_for(kind),
                proptest::sample::select(vec!["upstream", "downstream", "UPSTREAM", "Downstream"]),
                (0u32..=100).prop_map(|p| f64::from(p) / 100.0),
                proptest::option::of((
                    proptest::collection::vec(
                        (0u8..=255, 0u8..=32).prop_map(|(a, p)| format!("10.{a}.0.0/{p}")),
                        0..3,
                    ),
                    (0u32..=100).prop_map(|p| f64::from(p) / 100.0),
                )),
                proptest::option::of((1u64..100_000, 1u64..100_000)),
            )
        })
        .prop_map(|(kind, attributes, stream, toxicity, target, schedule)| {
            let mut toxic = json!({"name": "t", "type": kind, "stream": stream,
                                   "toxicity": toxicity, "attributes": attributes});
            if let Some((cidrs, fraction)) = target {
                toxic["target"] = json!({"cidrs": cidrs, "fraction": fraction});
            }
            if let Some((on, off)) = schedule {
                toxic["schedule"] = json!({"on_ms": on, "off_ms": off});
            }
            toxic
        })
}

/// A valid proxy to create (disabled, so nothing binds).
fn valid_proxy() -> impl Strategy<Value = Value> {
    (
        "[a-zA-Z0-9_.-]{1,20}",
        "[a-z0-9.-]{1,20}:[0-9]{1,5}",
        proptest::option::of("[a-z0-9.]{1,15}:[0-9]{1,5}"),
    )
        .prop_map(|(name, upstream, listen)| {
            let mut proxy = json!({"name": name, "upstream": upstream, "enabled": false});
            if let Some(listen) = listen {
                proxy["listen"] = json!(listen);
            }
            proxy
        })
}

/// Any JSON, biased toward the API's own keys and their typos, types and near-misses.
fn any_body() -> impl Strategy<Value = Value> {
    let keys = proptest::sample::select(vec![
        "name",
        "Name",
        "listen",
        "upstream",
        "enabled",
        "toxics",
        "type",
        "stream",
        "toxicity",
        "toxicty",
        "steam",
        "attributes",
        "latency",
        "latencyy",
        "rate",
        "rate_kb",
        "jitter",
        "target",
        "schedule",
        "on_ms",
        "duration_ms",
        "cidrs",
        "fraction",
        "Logger",
        "protocol",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-10i64..10_000).prop_map(Value::from),
        (-2.0f64..3.0).prop_map(|f| json!(f)),
        proptest::sample::select(vec![
            "latency",
            "bandwidth",
            "noop",
            "gremlin",
            "upstream",
            "downstream",
            "",
            "p",
            "t",
            "127.0.0.1:0",
            "bad",
            "[::1",
            "127.0.0.1:99999",
            "10.0.0.0/8",
            "300.1.1.1/8",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// A toxic as the API writes it, sent back as a new toxic, is written the same way.
    #[test]
    fn toxic_round_trips(toxic in valid_toxic()) {
        runtime().block_on(async {
            let api = Api::new();
            for name in ["a", "b"] {
                let proxy = json!({"name": name, "upstream": "127.0.0.1:1", "enabled": false});
                prop_assert_eq!(api.call("POST", "/proxies", Some(&proxy)).await.0, 201);
            }
            let (status, first) = api.call("POST", "/proxies/a/toxics", Some(&toxic)).await;
            prop_assert_eq!(status, 200, "{}", first);
            let (status, second) = api.call("POST", "/proxies/b/toxics", Some(&first)).await;
            prop_assert_eq!(status, 200, "{}", second);
            prop_assert_eq!(&second, &first);
            let (_, read) = api.call("GET", "/proxies/b/toxics/t", None).await;
            prop_assert_eq!(read, first);
            Ok(())
        })?;
    }

    /// A proxy as the API writes it, sent back to create one elsewhere, is written the same way.
    #[test]
    fn proxy_round_trips(proxy in valid_proxy()) {
        runtime().block_on(async {
            let (status, first) = Api::new().call("POST", "/proxies", Some(&proxy)).await;
            prop_assert_eq!(status, 201, "{}", first);
            let (status, second) = Api::new().call("POST", "/proxies", Some(&first)).await;
            prop_assert_eq!(status, 201, "{}", second);
            prop_assert_eq!(second, first);
            Ok(())
        })?;
    }

    /// Whatever the body, a request the API refuses leaves every proxy and toxic as it was.
    #[test]
    fn refused_requests_change_nothing(body in any_body(), endpoint in 0usize..7) {
        runtime().block_on(async {
            let api = Api::new();
            let proxy = json!({"name": "p", "upstream": "127.0.0.1:1", "enabled": false});
            prop_assert_eq!(api.call("POST", "/proxies", Some(&proxy)).await.0, 201);
            let toxic = json!({"name": "t", "type": "latency", "attributes": {"latency": 5}});
            prop_assert_eq!(api.call("POST", "/proxies/p/toxics", Some(&toxic)).await.0, 200);
            let (_, before) = api.call("GET", "/proxies", None).await;
            let (method, path, body) = match endpoint {
                0 => ("POST", "/proxies", body),
                1 => ("POST", "/proxies/p", body),
                2 => ("PATCH", "/proxies/p", body),
                3 => ("POST", "/proxies/p/toxics", body),
                4 => ("PATCH", "/proxies/p/toxics/t", body),
                5 => ("POST", "/populate", json!([body])),
                _ => ("POST", "/populate", body),
            };
            let (status, answer) = api.call(method, path, Some(&body)).await;
            prop_assert!(status < 500 || answer["error"].as_str().is_some(), "{}", answer);
            if status >= 400 {
                let (_, after) = api.call("GET", "/proxies", None).await;
                prop_assert_eq!(after, before, "{} {} {} -> {} {}", method, path, body, status, answer);
            }
            Ok(())
        })?;
    }
}
