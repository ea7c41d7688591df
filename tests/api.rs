//! The REST API, endpoint by endpoint: success and each error, with Toxiproxy's status codes
//! and bodies.

mod common;

use common::*;
use serde_json::json;

/// `GET /version` starts exactly as Toxiproxy's body does, then adds faultline's own version.
#[tokio::test]
async fn version_is_toxiproxy_shaped() {
    let h = Harness::start().await;
    let r = h.get("/version").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        format!(
            "{{\"version\": \"2.12.0\", \"faultline\": \"{}\"}}\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(r.content_type, "application/json;charset=utf-8");
}

/// An empty server lists no proxies as `{}`.
#[tokio::test]
async fn empty_listing() {
    let h = Harness::start().await;
    let r = h.get("/proxies").await;
    assert_eq!((r.status, r.json()), (200, json!({})));
}

/// Creating a proxy answers 201 with the real bound address, and it is listed and fetchable.
#[tokio::test]
async fn create_get_and_list_proxy() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/proxies",
            json!({"name": "redis", "listen": "localhost:0", "upstream": "localhost:6379"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let listen = created["listen"].as_str().unwrap();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    assert_eq!(
        created,
        json!({"name": "redis", "listen": listen, "upstream": "localhost:6379",
               "enabled": true, "toxics": [], "protocol": "tcp"})
    );
    assert_eq!(h.get("/proxies/redis").await.json(), created);
    assert_eq!(h.get("/proxies").await.json(), json!({"redis": created}));
    tokio::net::TcpStream::connect(listen)
        .await
        .expect("proxy listens");
}

/// Missing name or upstream: 400 with Toxiproxy's exact messages; nothing is created.
#[tokio::test]
async fn create_requires_name_and_upstream() {
    let h = Harness::start().await;
    let r = h.post("/proxies", json!({"upstream": "x:1"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "missing required field: name", "status": 400})
    );
    let r = h
        .post("/proxies", json!({"name": "a", "upstream": ""}))
        .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": "missing required field: upstream", "status": 400})
        )
    );
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// A taken name is a 409; after deleting the holder the name is free again.
#[tokio::test]
async fn duplicate_name_conflicts() {
    let h = Harness::start().await;
    let body = json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1"});
    assert_eq!(h.post("/proxies", body.clone()).await.status, 201);
    let r = h.post("/proxies", body.clone()).await;
    assert_eq!(
        (r.status, r.json()),
        (409, json!({"error": "proxy already exists", "status": 409}))
    );
    assert_eq!(h.delete("/proxies/a").await.status, 204);
    assert_eq!(h.post("/proxies", body).await.status, 201);
}

/// A port already in use is a 500 with Go's bind message; the proxy is not added.
#[tokio::test]
async fn port_conflict_is_500_with_go_message() {
    let h = Harness::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let r = h
        .post(
            "/proxies",
            json!({"name": "a", "listen": addr.to_string(), "upstream": "x:1"}),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({"error": format!("listen tcp {addr}: bind: address already in use"), "status": 500})
    );
    assert_eq!(h.get("/proxies/a").await.status, 404);
    drop(holder);
    let r = h
        .post(
            "/proxies",
            json!({"name": "a", "listen": addr.to_string(), "upstream": "x:1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// An unparsable listen address is refused and changes nothing.
#[tokio::test]
async fn invalid_listen_address() {
    let h = Harness::start().await;
    for listen in ["bad", "127.0.0.1:99999", "nosuchhost.invalid:80"] {
        let r = h
            .post(
                "/proxies",
                json!({"name": "a", "listen": listen, "upstream": "x:1"}),
            )
            .await;
        assert_eq!(r.status, 500, "{listen}: {}", r.body);
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("listen tcp"));
    }
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// A proxy created disabled keeps its listen string verbatim and does not listen.
#[tokio::test]
async fn create_disabled_proxy() {
    let h = Harness::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("localhost:{port}");
    let r = h
        .post(
            "/proxies",
            json!({"name": "a", "listen": listen, "upstream": "x:1", "enabled": false}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["listen"], json!(listen));
    assert_eq!(r.json()["enabled"], json!(false));
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

/// Unknown proxies are 404 on every proxy endpoint.
#[tokio::test]
async fn unknown_proxy_is_404_everywhere() {
    let h = Harness::start().await;
    let not_found = json!({"error": "proxy not found", "status": 404});
    for (method, path, body) in [
        ("GET", "/proxies/nope", None),
        ("POST", "/proxies/nope", Some("{}")),
        ("PATCH", "/proxies/nope", Some("{}")),
        ("DELETE", "/proxies/nope", None),
        ("GET", "/proxies/nope/toxics", None),
        (
            "POST",
            "/proxies/nope/toxics",
            Some(r#"{"type":"latency"}"#),
        ),
        ("GET", "/proxies/nope/toxics/t", None),
        ("POST", "/proxies/nope/toxics/t", Some("{}")),
        ("DELETE", "/proxies/nope/toxics/t", None),
    ] {
        let r = h.send(method, path, body).await;
        assert_eq!(
            (r.status, r.json()),
            (404, not_found.clone()),
            "{method} {path}"
        );
    }
}

/// Unknown paths and trailing slashes are a 404 in the usual JSON error body, naming the path.
#[tokio::test]
async fn unknown_paths_are_json_404() {
    let h = Harness::start().await;
    for path in ["/nope", "/proxies/", "/toxics"] {
        let r = h.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.content_type, "application/json", "{path}");
        assert_eq!(
            r.json(),
            json!({"error": format!("no such endpoint: {path}"), "status": 404})
        );
    }
}

/// A known path with a wrong method is a 405 in the usual JSON error body.
#[tokio::test]
async fn wrong_methods_are_json_405() {
    let h = Harness::start().await;
    for (method, path) in [
        ("PUT", "/proxies"),
        ("POST", "/version"),
        ("OPTIONS", "/reset"),
    ] {
        let r = h.send(method, path, None).await;
        assert_eq!(
            (r.status, r.json()),
            (
                405,
                json!({"error": format!("method {method} not allowed on {path}"), "status": 405})
            )
        );
    }
}

/// Browsers are refused (a web page must not drive a developer's proxy); other agents pass.
#[tokio::test]
async fn browser_user_agents_are_forbidden() {
    let h = Harness::start().await;
    let r = h
        .http
        .get(h.url("/proxies"))
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "User agent not allowed\n");
    let r = h
        .http
        .get(h.url("/proxies"))
        .header("User-Agent", "Wget/1.21")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Every response carries a 20-character request id.
#[tokio::test]
async fn responses_carry_request_id() {
    let h = Harness::start().await;
    let r = h.http.get(h.url("/proxies")).send().await.unwrap();
    let id = r.headers()["x-toxiproxy-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 20);
}

/// Updating with POST or PATCH changes upstream and listen; `{}` changes nothing.
#[tokio::test]
async fn update_proxy_fields() {
    let h = Harness::start().await;
    h.post(
        "/proxies",
        json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1"}),
    )
    .await;
    let before = h.get("/proxies/a").await.json();
    let r = h.send("POST", "/proxies/a", Some("{}")).await;
    assert_eq!((r.status, r.json()), (200, before.clone()));
    let r = h
        .send("PATCH", "/proxies/a", Some(r#"{"upstream":"y:2"}"#))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], json!("y:2"));
    let r = h
        .post("/proxies/a", json!({"listen": "127.0.0.1:0"}))
        .await
        .json();
    assert_ne!(r["listen"], before["listen"], "port 0 asks for a new port");
    assert_eq!(r["enabled"], json!(true));
}

/// Disabling closes the listener (connects are refused); enabling re-binds the same port.
#[tokio::test]
async fn disable_and_enable_keep_the_port() {
    let h = Harness::start().await;
    let addr = h.proxy("a", echo_server().await).await;
    let r = h.post("/proxies/a", json!({"enabled": false})).await;
    assert_eq!((r.status, r.json()["enabled"].clone()), (200, json!(false)));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let r = h.post("/proxies/a", json!({"enabled": true})).await;
    assert_eq!(r.json()["listen"], json!(addr.to_string()));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"back").await;
}

/// A bad listen address on update is refused and leaves the proxy as it was.
#[tokio::test]
async fn update_with_bad_listen_changes_nothing() {
    let h = Harness::start().await;
    let addr = h.proxy("a", echo_server().await).await;
    let before = h.get("/proxies/a").await.json();
    let r = h.post("/proxies/a", json!({"listen": "bad"})).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["error"],
        json!("address bad: missing port in address")
    );
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let r = h.post("/proxies/a", json!({"listen": taken})).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(h.get("/proxies/a").await.json(), before);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"still up").await;
}

/// Deleting answers 204 and frees the port; a second delete is a 404.
#[tokio::test]
async fn delete_proxy() {
    let h = Harness::start().await;
    let addr = h.proxy("a", echo_server().await).await;
    let r = h.delete("/proxies/a").await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert_eq!(h.delete("/proxies/a").await.status, 404);
    std::net::TcpListener::bind(addr).expect("port is free again");
}

/// Populate creates proxies in order and answers 201 `{"proxies": [...]}`.
#[tokio::test]
async fn populate_creates() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/populate",
            json!([
                {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
                {"name": "two", "listen": "127.0.0.1:0", "upstream": "x:2", "enabled": false},
            ]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let proxies = r.json()["proxies"].as_array().unwrap().clone();
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[0]["name"], json!("one"));
    assert_eq!(proxies[0]["enabled"], json!(true));
    assert_eq!(proxies[1]["enabled"], json!(false));
    let r = h.post("/populate", json!([])).await;
    assert_eq!((r.status, r.json()), (201, json!({"proxies": []})));
}

/// Populate validates everything first: a bad item is a 400 naming it, and nothing is created.
#[tokio::test]
async fn populate_validates_before_creating() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/populate",
            json!([
                {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
                {"name": "", "listen": "127.0.0.1:0", "upstream": "x:2"},
            ]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "missing required field: name at proxy 2", "status": 400, "proxies": []})
    );
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// Populate fails as a whole at the first bad entry: nothing before it stays, nothing after
/// it is processed (faultline is stricter than Toxiproxy, which kept the earlier items).
#[tokio::test]
async fn populate_stops_at_first_failure_and_keeps_nothing() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/populate",
            json!([
                {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
                {"name": "two", "listen": "local373", "upstream": "x:2"},
                {"name": "three", "listen": "127.0.0.1:0", "upstream": "x:3"},
            ]),
        )
        .await;
    assert_eq!(r.status, 500);
    let body = r.json();
    assert_eq!(
        body["error"],
        json!("listen tcp: address local373: missing port in address")
    );
    assert_eq!(body["proxies"], json!([]));
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// Re-populating an unchanged proxy keeps it (and its toxics); a changed one is replaced.
#[tokio::test]
async fn populate_keeps_unchanged_replaces_changed() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/populate",
            json!([{"name": "a", "listen": "localhost:0", "upstream": "x:1"},
                   {"name": "b", "listen": "127.0.0.1:0", "upstream": "x:1"}]),
        )
        .await;
    let listen = r.json()["proxies"][0]["listen"]
        .as_str()
        .unwrap()
        .to_string();
    let port = listen.rsplit(':').next().unwrap();
    h.toxic("a", json!({"type": "latency"})).await;
    h.toxic("b", json!({"type": "latency"})).await;
    let r = h
        .post(
            "/populate",
            json!([{"name": "a", "listen": format!("localhost:{port}"), "upstream": "x:1"},
                   {"name": "b", "listen": "127.0.0.1:0", "upstream": "x:2"}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let a = h.get("/proxies/a").await.json();
    assert_eq!(a["listen"], json!(listen));
    assert_eq!(a["toxics"].as_array().unwrap().len(), 1);
    let b = h.get("/proxies/b").await.json();
    assert_eq!(b["upstream"], json!("x:2"));
    assert_eq!(b["toxics"], json!([]));
}

/// Toxic CRUD: create answers 200 with every attribute; get, list, update (merging
/// attributes) and delete follow Toxiproxy.
#[tokio::test]
async fn toxic_lifecycle() {
    let h = Harness::start().await;
    h.proxy("a", echo_server().await).await;
    let created = h
        .toxic(
            "a",
            json!({"type": "latency", "attributes": {"latency": 100, "jitter": 10}}),
        )
        .await;
    assert_eq!(
        created,
        json!({"attributes": {"latency": 100, "jitter": 10}, "name": "latency_downstream",
               "type": "latency", "stream": "downstream", "toxicity": 1})
    );
    let r = h.get("/proxies/a/toxics/latency_downstream").await;
    assert_eq!((r.status, r.json()), (200, created.clone()));
    assert_eq!(h.get("/proxies/a/toxics").await.json(), json!([created]));
    let r = h
        .send(
            "PATCH",
            "/proxies/a/toxics/latency_downstream",
            Some(r#"{"attributes":{"latency":1000},"toxicity":0.5}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["attributes"],
        json!({"latency": 1000, "jitter": 10})
    );
    assert_eq!(r.json()["toxicity"], json!(0.5));
    let r = h
        .post(
            "/proxies/a/toxics/latency_downstream",
            json!({"attributes": {"jitter": 0}}),
        )
        .await;
    assert_eq!(r.json()["toxicity"], json!(0.5), "absent toxicity is kept");
    let r = h.delete("/proxies/a/toxics/latency_downstream").await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let r = h.get("/proxies/a/toxics/latency_downstream").await;
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"error": "toxic not found", "status": 404}))
    );
    assert_eq!(
        h.delete("/proxies/a/toxics/latency_downstream")
            .await
            .status,
        404
    );
}

/// Each type answers with its full attribute set, defaults included.
#[tokio::test]
async fn toxic_defaults_per_type() {
    let h = Harness::start().await;
    h.proxy("a", echo_server().await).await;
    for (kind, attrs) in [
        ("latency", json!({"latency": 0, "jitter": 0})),
        ("bandwidth", json!({"rate": 0})),
        ("slow_close", json!({"delay": 0})),
        ("timeout", json!({"timeout": 0})),
        ("reset_peer", json!({"timeout": 0})),
        ("limit_data", json!({"bytes": 0})),
        ("noop", json!({})),
        ("packet_loss", json!({"probability": 0.0, "rto": 200})),
        ("drop", json!({"probability": 0.0})),
        ("corrupt", json!({"probability": 0.0})),
    ] {
        let t = h.toxic("a", json!({"type": kind})).await;
        assert_eq!(t["attributes"], attrs, "{kind}");
    }
    let t = h
        .toxic(
            "a",
            json!({"type": "slicer", "attributes": {"average_size": 10}}),
        )
        .await;
    assert_eq!(
        t["attributes"],
        json!({"average_size": 10, "size_variation": 0, "delay": 0})
    );
}

/// Names default to `<type>_<stream>` with the stream as sent; names are unique across
/// streams; the same type may be added once per stream by default.
#[tokio::test]
async fn toxic_names_and_conflicts() {
    let h = Harness::start().await;
    h.proxy("a", echo_server().await).await;
    let t = h
        .toxic("a", json!({"type": "latency", "stream": "UPSTREAM"}))
        .await;
    assert_eq!(t["name"], json!("latency_UPSTREAM"));
    assert_eq!(t["stream"], json!("UPSTREAM"));
    h.toxic("a", json!({"type": "latency", "stream": "downstream"}))
        .await;
    h.toxic(
        "a",
        json!({"name": "foo", "type": "latency", "stream": "upstream"}),
    )
    .await;
    let r = h
        .post(
            "/proxies/a/toxics",
            json!({"name": "foo", "type": "bandwidth", "stream": "downstream"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (409, json!({"error": "toxic already exists", "status": 409}))
    );
    let list = h.get("/proxies/a/toxics").await.json();
    let order: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["latency_UPSTREAM", "foo", "latency_downstream"]);
}

/// Toxics can be added to a disabled proxy.
#[tokio::test]
async fn toxic_on_disabled_proxy() {
    let h = Harness::start().await;
    h.post(
        "/proxies",
        json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1", "enabled": false}),
    )
    .await;
    h.toxic(
        "a",
        json!({"type": "timeout", "attributes": {"timeout": 5}}),
    )
    .await;
}

/// `/reset` enables every proxy and removes every toxic: 204, empty body.
#[tokio::test]
async fn reset_restores_everything() {
    let h = Harness::start().await;
    let addr = h.proxy("a", echo_server().await).await;
    h.toxic(
        "a",
        json!({"type": "latency", "attributes": {"latency": 500}}),
    )
    .await;
    h.post("/proxies/a", json!({"enabled": false})).await;
    let r = h.send("POST", "/reset", None).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let a = h.get("/proxies/a").await.json();
    assert_eq!(
        (a["enabled"].clone(), a["toxics"].clone()),
        (json!(true), json!([]))
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut s, b"x").await < ms(400));
}

/// `/metrics` exposes Toxiproxy's byte counters with its labels.
#[tokio::test]
async fn metrics_endpoint() {
    let h = Harness::start().await;
    let addr = h.proxy("web", echo_server().await).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"hello").await;
    let upstream = h.get("/proxies/web").await.json()["upstream"].clone();
    let line = format!(
        "toxiproxy_proxy_sent_bytes_total{{direction=\"downstream\",listener=\"{addr}\",proxy=\"web\",upstream={upstream}}} 5"
    );
    eventually(&line, || async {
        let r = h.get("/metrics").await;
        assert_eq!(r.status, 200);
        r.body.contains(&line)
            && r.body
                .contains("faultline_connections_active{proxy=\"web\"} 1")
    })
    .await;
}

/// A populate whose replacement proxy cannot listen leaves the proxy it would have replaced
/// in place, still serving.
#[tokio::test]
async fn failed_populate_keeps_the_replaced_proxy() {
    let h = Harness::start().await;
    let addr = h.proxy("a", echo_server().await).await;
    h.toxic("a", json!({"type": "latency"})).await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let r = h
        .post(
            "/populate",
            json!([{"name": "a", "listen": taken, "upstream": "x:1"}]),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    let a = h.get("/proxies/a").await.json();
    assert_eq!(a["listen"], json!(addr.to_string()));
    assert_eq!(a["enabled"], json!(true));
    assert_eq!(a["toxics"].as_array().unwrap().len(), 1);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"still here").await;
}

/// `/populate` is all or nothing: with one good entry and one whose port (70000) cannot
/// exist, nothing is created and the error names the bad address.
#[tokio::test]
async fn populate_with_a_bad_port_changes_nothing() {
    let h = Harness::start().await;
    let upstream = echo_server().await.to_string();
    let r = h
        .post(
            "/populate",
            json!([
                {"name": "good", "listen": "127.0.0.1:0", "upstream": upstream},
                {"name": "bad", "listen": "127.0.0.1:70000", "upstream": upstream},
            ]),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["error"],
        json!("listen tcp: address 127.0.0.1:70000: invalid port")
    );
    assert_eq!(body["proxies"], json!([]));
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// When a later entry cannot bind its port, what the request already did is undone: the
/// proxy it created is gone (its port free again) and the one it replaced is back, toxics
/// and all, still serving.
#[tokio::test]
async fn populate_failing_to_bind_restores_every_proxy() {
    let h = Harness::start().await;
    let old_addr = h.proxy("kept", echo_server().await).await;
    h.toxic("kept", json!({"name": "slow", "type": "latency"}))
        .await;
    let before = h.get("/proxies").await.json();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fresh = free.local_addr().unwrap().to_string();
    drop(free);
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let r = h
        .post(
            "/populate",
            json!([
                {"name": "new", "listen": fresh, "upstream": "127.0.0.1:1"},
                {"name": "kept", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2"},
                {"name": "late", "listen": taken, "upstream": "127.0.0.1:3"},
            ]),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.json()["error"],
        json!(format!("listen tcp {taken}: bind: address already in use"))
    );
    assert_eq!(h.get("/proxies").await.json(), before);
    std::net::TcpListener::bind(&fresh).expect("the created proxy's port is free again");
    let mut s = tokio::net::TcpStream::connect(old_addr).await.unwrap();
    round_trip(&mut s, b"still here").await;
}
