//! The dashboard over plain HTTP: its files, the `/` redirect, `/toxic-types`, and how the
//! browser guard treats browser requests with and without the dashboard's header.

mod common;

use common::Harness;
use serde_json::json;

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";

/// Sends `method path` as a browser would, with extra headers.
async fn browser(h: &Harness, method: &str, path: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = h
        .http
        .request(method, h.url(path))
        .header("user-agent", CHROME);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("API answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A browser loads the dashboard page, which is HTML with a strict content security policy.
#[tokio::test]
async fn browser_loads_dashboard_page() {
    let h = Harness::start().await;
    let response = h
        .http
        .get(h.url("/ui"))
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("/ui/app.js"));
    for path in ["/ui/app.js", "/ui/app.css"] {
        assert_eq!(browser(&h, "GET", path, &[]).await.0, 200, "{path}");
    }
}

/// `/` sends browsers to the dashboard; other clients get the API's usual 404.
#[tokio::test]
async fn root_redirects_only_browsers() {
    let h = Harness::start().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(h.url("/"))
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui");
    let reply = h.get("/").await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["error"], "no such endpoint: /");
}

/// `/toxic-types` lists every toxic type the API accepts, with bounds and units.
#[tokio::test]
async fn toxic_types_lists_every_type_with_bounds() {
    let h = Harness::start().await;
    let types = h.get("/toxic-types").await.json();
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in ["latency", "bandwidth", "timeout", "slicer", "limit_data"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let bandwidth = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bandwidth")
        .unwrap();
    assert_eq!(bandwidth["attributes"][0]["unit"], "KB/s");
    assert_eq!(bandwidth["attributes"][0]["min"], 0);
    // Every type listed is one the API knows (some refuse their defaults, e.g. slicer's size 0).
    // An HTTP proxy takes every type: TCP toxics act on its bytes as on any proxy.
    let upstream = common::echo_server().await;
    let created = h
        .post(
            "/proxies",
            json!({"name": "p", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
                   "protocol": "http"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    for name in names {
        let reply = h
            .post("/proxies/p/toxics", json!({"type": name, "name": name}))
            .await;
        assert!(
            reply.status == 200 || reply.body.contains("attribute"),
            "{name}: {}",
            reply.body
        );
    }
}

/// A browser request without the dashboard's header is refused and changes nothing.
#[tokio::test]
async fn browser_without_dashboard_header_is_refused() {
    let h = Harness::start().await;
    let body = json!({"name": "x", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}).to_string();
    let response = h
        .http
        .post(h.url("/proxies"))
        .header("user-agent", CHROME)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "User agent not allowed\n");
    assert_eq!(h.get("/proxies").await.json(), json!({}));
}

/// The dashboard's same-origin request passes; the same header from another origin does not.
#[tokio::test]
async fn dashboard_header_passes_only_from_same_origin() {
    let h = Harness::start().await;
    let own = format!("http://{}", h.server.addr());
    let same = [
        ("x-faultline-ui", "1"),
        ("origin", own.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    assert_eq!(browser(&h, "POST", "/reset", &same).await.0, 204);
    let foreign = [
        ("x-faultline-ui", "1"),
        ("origin", "http://localhost:1"),
        ("sec-fetch-site", "cross-site"),
    ];
    assert_eq!(browser(&h, "POST", "/reset", &foreign).await.0, 403);
}

/// A CORS preflight is never approved, so a cross-site page cannot send the header at all.
#[tokio::test]
async fn cors_preflight_is_not_approved() {
    let h = Harness::start().await;
    let response = h
        .http
        .request(reqwest::Method::OPTIONS, h.url("/proxies"))
        .header("user-agent", CHROME)
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-faultline-ui")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// With a token set, the dashboard's files load without it; its API calls still need it.
#[tokio::test]
async fn token_protects_api_calls_but_not_dashboard_files() {
    let h = Harness::with_api(faultline::api::ApiOptions {
        token: Some("t0k".into()),
        ..faultline::api::ApiOptions::default()
    })
    .await;
    assert_eq!(browser(&h, "GET", "/ui", &[]).await.0, 200);
    assert_eq!(browser(&h, "GET", "/ui/app.js", &[]).await.0, 200);
    let dashboard = [("x-faultline-ui", "1"), ("sec-fetch-site", "same-origin")];
    assert_eq!(browser(&h, "GET", "/proxies", &dashboard).await.0, 401);
    let with_token = [
        ("x-faultline-ui", "1"),
        ("sec-fetch-site", "same-origin"),
        ("authorization", "Bearer t0k"),
    ];
    assert_eq!(browser(&h, "GET", "/proxies", &with_token).await.0, 200);
}

/// On an API listening beyond loopback (as in a container) without a token, the dashboard's
/// request through a host name is refused (DNS rebinding could be behind it) with a message
/// asking for a token; through an address it passes.
#[tokio::test]
async fn dashboard_through_host_name_needs_token_beyond_loopback() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let registry = faultline::registry::Registry::new(faultline::registry::Options::default());
    let _server = faultline::server::ServerHandle::spawn(listener, registry).unwrap();
    let http = reqwest::Client::new();
    let call = |host: String| {
        http.post(format!("http://127.0.0.1:{port}/reset"))
            .header("user-agent", CHROME)
            .header("host", host.clone())
            .header("origin", format!("http://{host}"))
            .header("x-faultline-ui", "1")
            .send()
    };

    let named = call(format!("faultline.example:{port}")).await.unwrap();
    assert_eq!(named.status(), 403);
    let body: serde_json::Value = named.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("--api-token"),
        "{body}"
    );
    let by_address = call(format!("127.0.0.1:{port}")).await.unwrap();
    assert_eq!(by_address.status(), 204);
}
