//! The OpenAPI document describes the router exactly: every route is documented, every
//! documented operation answers, and the served document is the one kept in the repository.

mod common;

use common::*;
use serde_json::{json, Value};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `GET /openapi.json` serves the document kept in `docs/openapi.json`. Run with
/// `UPDATE_OPENAPI=1` to rewrite the committed file after changing the API.
#[tokio::test]
async fn served_document_is_the_committed_one() {
    let h = Harness::start().await;
    let r = h.get("/openapi.json").await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/json")
    );
    let served = r.json();
    assert_eq!(served, faultline::api::openapi::document());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
        std::fs::write(COMMITTED, text).unwrap();
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(COMMITTED).expect("docs/openapi.json exists"),
    )
    .unwrap();
    assert!(
        committed == served,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test --test api_openapi"
    );
}

/// The router's paths and the document's are the same set.
#[test]
fn every_route_is_documented() {
    let document = faultline::api::openapi::document();
    let mut documented: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut routed = faultline::api::route_paths();
    documented.sort_unstable();
    routed.sort_unstable();
    assert_eq!(routed, documented);
}

/// Every documented operation answers (neither "no such endpoint" nor 405), and every
/// undocumented method on a documented path is a 405.
#[tokio::test]
async fn every_documented_operation_answers() {
    let h = Harness::start().await;
    h.proxy("p", echo_server().await).await;
    h.toxic("p", json!({"name": "t", "type": "latency"})).await;
    let document = faultline::api::openapi::document();
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path.replace("{proxy}", "p").replace("{toxic}", "t");
        for method in METHODS {
            let documented = item.get(method).is_some();
            let upper = method.to_ascii_uppercase();
            if path == "/events" && documented {
                // A stream that never ends: the status line is the answer.
                let r = h.http.get(h.url(&concrete)).send().await.unwrap();
                assert_eq!(r.status(), 200);
                continue;
            }
            // A harmless body: an update that changes nothing, a populate of nothing.
            let body = (method != "get" && method != "delete").then_some("{}");
            let body = if path == "/populate" {
                Some("[]")
            } else {
                body
            };
            let r = h.send(&upper, &concrete, body).await;
            if documented {
                assert_ne!(r.status, 405, "{upper} {path}: {}", r.body);
                assert!(
                    !r.body.contains("no such endpoint"),
                    "{upper} {path}: {}",
                    r.body
                );
                let statuses = item[method]["responses"].as_object().unwrap();
                assert!(
                    statuses.contains_key(&r.status.to_string()),
                    "{upper} {path} answered {} which is not documented: {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(r.status, 405, "{upper} {path} is undocumented: {}", r.body);
            }
        }
    }
}

/// The create-toxic schema has one variant per toxic type, with that type's attributes.
#[test]
fn toxic_schemas_come_from_the_type_declarations() {
    let document = faultline::api::openapi::document();
    let variants = document["components"]["schemas"]["NewToxic"]["oneOf"]
        .as_array()
        .unwrap();
    assert_eq!(variants.len(), faultline::toxics::TYPES.len());
    for (variant, kind) in variants.iter().zip(faultline::toxics::TYPES) {
        assert_eq!(variant["properties"]["type"]["const"], json!(kind.name));
        let attributes: Vec<&str> = variant["properties"]["attributes"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let declared: Vec<&str> = kind.attributes.iter().map(|a| a.name).collect();
        assert_eq!(attributes, declared, "{}", kind.name);
    }
}
