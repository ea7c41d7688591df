//! The dashboard end to end, in a real headless Chromium driven over the DevTools protocol:
//! what a person sees at `/ui` follows the server live, its form changes real traffic, and a
//! page from another origin cannot change anything. Screenshots of the main views go to
//! `target/ui-screenshots/`.
//!
//! Without chromium these tests skip loudly; with `CI=true` they fail instead.

mod browser_support;
mod common;

use browser_support::Page;
use common::{echo_server, http_server, latency_experiment, round_trip, run_experiment, Harness};
use faultline::api::ApiOptions;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SETTLE: Duration = Duration::from_secs(10);

/// A server and a tab showing its dashboard, live and with its toxic types loaded.
async fn dashboard() -> Option<(Harness, Page)> {
    let page = browser_support::new_page().await?;
    let harness = Harness::start().await;
    page.goto(&harness.url("/ui")).await;
    page.wait_for(
        "document.getElementById('status').dataset.state === 'live' \
         && document.getElementById('toxic-type').options.length > 0",
        SETTLE,
    )
    .await;
    Some((harness, page))
}

fn card(proxy: &str) -> String {
    format!("document.querySelector('[data-proxy=\"{proxy}\"]')")
}

/// Waits for the newest timeline entry of event type `kind`; returns what it says: the kind
/// of event, its subject (proxy / toxic) and its detail.
async fn timeline_entry(page: &Page, kind: &str) -> (String, String, String) {
    let parts = page
        .wait_for(
            &format!(
                "(() => {{
                    const li = document.querySelector('#timeline li[data-type=\"{kind}\"]');
                    return li && ['.kind', '.subject', '.detail']
                        .map((part) => li.querySelector(part).textContent);
                }})()"
            ),
            SETTLE,
        )
        .await;
    serde_json::from_value(parts).unwrap()
}

/// The page loads, goes live and draws a proxy without a single console error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_without_console_errors() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("web", echo_server().await).await;
    page.wait_for(&card("web"), SETTLE).await;
    // Two stats polls have drawn the sparklines.
    page.wait_for(
        &format!(
            "{}.querySelector('.facts').textContent.includes('total')",
            card("web")
        ),
        SETTLE,
    )
    .await;
    page.eval("new Promise((resolve) => setTimeout(resolve, 2200))")
        .await;
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// A proxy created through the API appears in an open page without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_created_through_api_appears_without_reload() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    page.eval("window.sameDocument = true").await;
    assert_eq!(
        page.eval(&format!("{} === null", card("orders"))).await,
        true
    );
    let listen = h.proxy("orders", echo_server().await).await;

    let shown = page
        .wait_for(
            &format!(
                "{c} && {c}.querySelector('.listen').textContent",
                c = card("orders")
            ),
            SETTLE,
        )
        .await;
    assert_eq!(shown, listen.to_string());
    assert_eq!(page.eval("window.sameDocument === true").await, true);
}

/// A latency toxic added from the generated form delays real traffic through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_added_from_form_delays_real_traffic() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let listen = h.proxy("db", echo_server().await).await;
    page.wait_for(&card("db"), SETTLE).await;
    let mut before = TcpStream::connect(listen).await.unwrap();
    let baseline = round_trip(&mut before, b"ping").await;
    assert!(baseline < Duration::from_millis(250), "{baseline:?}");

    page.eval(&format!(
        "{}.querySelector('.add-toxic').click();
         const form = document.getElementById('toxic-form');
         form.elements.type.value = 'latency';
         form.elements.type.dispatchEvent(new Event('change'));
         form.elements.latency.value = '400';
         form.elements.name.value = 'slow_db';
         true",
        card("db")
    ))
    .await;
    // The form offers exactly the attributes the server declares, with their units.
    let labels = page
        .eval("document.getElementById('toxic-attributes').textContent")
        .await;
    let labels = labels.as_str().unwrap();
    assert!(
        labels.contains("latency") && labels.contains("ms"),
        "{labels}"
    );
    assert!(
        labels.contains("jitter") && labels.contains("distribution"),
        "{labels}"
    );
    page.screenshot("add-toxic-form").await;
    page.eval("document.getElementById('toxic-submit').click(); true")
        .await;
    page.wait_for(
        &format!("{}.querySelector('[data-toxic=\"slow_db\"]')", card("db")),
        SETTLE,
    )
    .await;

    let toxic = h.get("/proxies/db/toxics/slow_db").await.json();
    assert_eq!(toxic["attributes"]["latency"], 400);
    let mut after = TcpStream::connect(listen).await.unwrap();
    let delayed = round_trip(&mut after, b"ping").await;
    assert!(delayed >= Duration::from_millis(400), "{delayed:?}");
    assert!(delayed < Duration::from_secs(3), "{delayed:?}");
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// A timed toxic counts down to zero on the page, then disappears from it when it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_toxic_counts_down_and_disappears() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("cache", echo_server().await).await;
    page.wait_for(&card("cache"), SETTLE).await;
    let added = Instant::now();
    h.toxic(
        "cache",
        json!({"name": "brief", "type": "timeout", "attributes": {"timeout": 0}, "duration_ms": 2000}),
    )
    .await;

    // In the page: every countdown value shown, until the row is gone.
    let seen = page
        .eval(&format!(
            "new Promise((resolve, reject) => {{
                const shown = [];
                const started = performance.now();
                (function watch() {{
                    const row = {}.querySelector('[data-toxic=\"brief\"]');
                    const countdown = row && row.querySelector('.countdown');
                    if (countdown && countdown.dataset.left) shown.push(Number(countdown.dataset.left));
                    if (!row && shown.length) resolve(shown);
                    else if (performance.now() - started > 8000) reject(new Error('still shown: ' + shown.slice(-3)));
                    else setTimeout(watch, 20);
                }})();
            }})",
            card("cache")
        ))
        .await;
    let gone_after = added.elapsed();
    let shown: Vec<f64> = serde_json::from_value(seen).unwrap();
    let (first, last) = (shown[0], *shown.last().unwrap());
    assert!(first > 1000.0, "countdown started at {first} ms");
    assert!(last < 500.0, "countdown stopped at {last} ms");
    assert!(
        shown.windows(2).all(|w| w[1] <= w[0]),
        "countdown went up: {shown:?}"
    );
    assert!(gone_after >= Duration::from_millis(1900), "{gone_after:?}");
    assert_eq!(h.get("/proxies/cache/toxics").await.json(), json!([]));
    page.wait_for(
        "document.querySelector('#timeline li[data-type=\"toxic_expired\"]')",
        SETTLE,
    )
    .await;
}

/// The throughput sparklines move while traffic flows through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkline_moves_while_traffic_flows() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let listen = h.proxy("stream", echo_server().await).await;
    page.wait_for(&card("stream"), SETTLE).await;
    let canvas = format!(
        "{}.querySelector('.spark.downstream canvas')",
        card("stream")
    );
    let idle = page.eval(&format!("{canvas}.toDataURL()")).await;

    let traffic = tokio::spawn(async move {
        let mut client = TcpStream::connect(listen).await.unwrap();
        let chunk = vec![7u8; 32 * 1024];
        let mut back = vec![0u8; chunk.len()];
        loop {
            client.write_all(&chunk).await.unwrap();
            client.read_exact(&mut back).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let rate = page
        .wait_for(
            &format!(
                "(() => {{
                    const up = Number({c}.querySelector('.spark.upstream .rate').dataset.rate);
                    const down = Number({c}.querySelector('.spark.downstream .rate').dataset.rate);
                    return up > 0 && down > 0 && {canvas}.toDataURL() !== {idle} && down;
                }})()",
                c = card("stream"),
                idle = idle
            ),
            SETTLE,
        )
        .await;
    traffic.abort();
    assert!(rate.as_f64().unwrap() > 10_000.0, "{rate}");
}

/// A page from another origin cannot create, disable or reset anything, with or without the
/// dashboard's header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_page_cannot_change_state() {
    let Some(page) = browser_support::new_page().await else {
        return;
    };
    let h = Harness::start().await;
    h.proxy("victim", echo_server().await).await;
    h.toxic(
        "victim",
        json!({"name": "slow", "type": "latency", "attributes": {"latency": 5}}),
    )
    .await;
    let before = h.get("/proxies").await.json();

    // `localhost` and `127.0.0.1` are different sites to the browser.
    let evil = evil_site().await;
    page.goto(&format!("http://localhost:{}/", evil.port()))
        .await;
    let api = format!("http://127.0.0.1:{}", h.server.addr().port());
    let results = page.eval(&format!("attack({})", json!(api))).await;

    // The header needs a preflight, which the server never approves: the browser refuses.
    assert!(
        results["create_with_header"]
            .as_str()
            .unwrap()
            .starts_with("blocked"),
        "{results}"
    );
    assert!(
        results["delete_with_header"]
            .as_str()
            .unwrap()
            .starts_with("blocked"),
        "{results}"
    );
    // Without it the requests are sent, and the browser guard refuses them.
    assert_eq!(results["disable_no_cors"], "sent", "{results}");
    assert_eq!(results["reset_no_cors"], "sent", "{results}");
    assert_eq!(h.get("/proxies").await.json(), before);
}

/// The Disable and Enable buttons switch the proxy through the API: its port stops and
/// starts accepting connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_button_disables_and_enables_proxy() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let listen = h.proxy("queue", echo_server().await).await;
    page.wait_for(&card("queue"), SETTLE).await;

    page.eval(&format!(
        "{}.querySelector('.toggle').click(); true",
        card("queue")
    ))
    .await;
    page.wait_for(
        &format!("{}.dataset.enabled === 'false'", card("queue")),
        SETTLE,
    )
    .await;
    assert_eq!(h.get("/proxies/queue").await.json()["enabled"], false);
    assert!(
        TcpStream::connect(listen).await.is_err(),
        "disabled proxy accepted"
    );

    page.eval(&format!(
        "{}.querySelector('.toggle').click(); true",
        card("queue")
    ))
    .await;
    page.wait_for(
        &format!("{}.dataset.enabled === 'true'", card("queue")),
        SETTLE,
    )
    .await;
    let mut client = TcpStream::connect(listen).await.expect("enabled again");
    round_trip(&mut client, b"back").await;
}

/// Editing a toxic in the form changes its attributes on the server; Remove deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_form_updates_toxic_and_remove_button_deletes_it() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("search", echo_server().await).await;
    h.toxic(
        "search",
        json!({"name": "lag", "type": "latency", "attributes": {"latency": 50}}),
    )
    .await;
    let row = format!("{}.querySelector('[data-toxic=\"lag\"]')", card("search"));
    page.wait_for(&row, SETTLE).await;

    page.eval(&format!(
        "{row}.querySelector('.edit').click();
         const form = document.getElementById('toxic-form');
         form.elements.latency.value = '75';
         form.elements.toxicity.value = '0.5';
         document.getElementById('toxic-submit').click();
         true"
    ))
    .await;
    page.wait_for(&format!("{row}.textContent.includes('75 ms')"), SETTLE)
        .await;
    let toxic = h.get("/proxies/search/toxics/lag").await.json();
    assert_eq!(toxic["attributes"]["latency"], 75);
    assert_eq!(toxic["toxicity"], 0.5);

    page.eval(&format!("{row}.querySelector('.remove').click(); true"))
        .await;
    page.wait_for(&format!("{row} === null"), SETTLE).await;
    assert_eq!(h.get("/proxies/search/toxics").await.json(), json!([]));
}

/// The Reset button removes every toxic and enables every proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_button_removes_toxics_and_enables_proxies() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let upstream = echo_server().await;
    h.proxy("one", upstream).await;
    h.proxy("two", upstream).await;
    h.toxic(
        "one",
        json!({"type": "latency", "attributes": {"latency": 10}}),
    )
    .await;
    assert_eq!(
        h.post("/proxies/two", json!({"enabled": false}))
            .await
            .status,
        200
    );
    page.wait_for(
        &format!(
            "{}.querySelector('[data-toxic]') && {}.dataset.enabled === 'false'",
            card("one"),
            card("two")
        ),
        SETTLE,
    )
    .await;

    page.eval("document.getElementById('reset-button').click(); true")
        .await;
    page.wait_for(
        &format!(
            "{}.querySelector('[data-toxic]') === null && {}.dataset.enabled === 'true'",
            card("one"),
            card("two")
        ),
        SETTLE,
    )
    .await;
    assert_eq!(h.get("/proxies/one/toxics").await.json(), json!([]));
    assert_eq!(h.get("/proxies/two").await.json()["enabled"], true);
}

/// A value outside the bounds from /toxic-types is caught in the form, and one the server
/// refuses shows the server's message; neither adds a toxic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_form_input_shows_error_and_adds_nothing() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("mq", echo_server().await).await;
    page.wait_for(&card("mq"), SETTLE).await;
    let open_with = |type_name: &str, attribute: &str, value: &str| {
        format!(
            "(() => {{
                {}.querySelector('.add-toxic').click();
                const form = document.getElementById('toxic-form');
                form.elements.type.value = '{type_name}';
                form.elements.type.dispatchEvent(new Event('change'));
                form.elements.{attribute}.value = '{value}';
                document.getElementById('toxic-submit').click();
                return true;
            }})()",
            card("mq")
        )
    };
    let error = "document.getElementById('toxic-error')";

    page.eval(&open_with("latency", "latency", "-5")).await;
    let shown = page
        .wait_for(&format!("!{error}.hidden && {error}.textContent"), SETTLE)
        .await;
    assert!(shown.as_str().unwrap().starts_with("latency:"), "{shown}");
    page.eval("document.getElementById('toxic-cancel').click(); true")
        .await;

    // Within the declared bounds, but the slicer refuses slices of 0 bytes.
    page.eval(&open_with("slicer", "average_size", "0")).await;
    let shown = page
        .wait_for(
            &format!(
                "!{error}.hidden && {error}.textContent.includes('400') && {error}.textContent"
            ),
            SETTLE,
        )
        .await;
    assert!(shown.as_str().unwrap().contains("average_size"), "{shown}");
    // The refusal is on the audit record, which the timeline shows.
    page.wait_for(
        "document.querySelector('#timeline li[data-type=\"api_request\"]')",
        SETTLE,
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('toxic-dialog').open")
            .await,
        true
    );
    assert_eq!(h.get("/proxies/mq/toxics").await.json(), json!([]));
}

/// With `--api-token`, the page loads, asks for the token, and once given it shows the
/// server's proxies live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_token_then_works_with_it() {
    let Some(page) = browser_support::new_page().await else {
        return;
    };
    let h = Harness::with_api(ApiOptions {
        token: Some("tok-123".into()),
        ..ApiOptions::default()
    })
    .await;
    page.goto(&h.url("/ui")).await;
    page.wait_for("document.getElementById('token-dialog').open", SETTLE)
        .await;
    assert_eq!(
        page.eval("document.getElementById('status').dataset.state")
            .await,
        "token"
    );

    // Submitted in a later task: saving reloads the page, which would otherwise end this
    // evaluation before it answers ("Inspected target navigated or closed").
    page.eval(
        "(() => {
            const form = document.getElementById('token-form');
            form.elements.token.value = 'tok-123';
            setTimeout(() => form.requestSubmit(), 0);
            return true;
        })()",
    )
    .await;
    page.wait_across_reload(
        "document.getElementById('status').dataset.state === 'live'",
        SETTLE,
    )
    .await;
    let created = h
        .http
        .post(h.url("/proxies"))
        .bearer_auth("tok-123")
        .body(
            json!({"name": "secured", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    page.wait_for(&card("secured"), SETTLE).await;
}

/// A page whose own name points at a faultline listening beyond loopback without a token
/// (DNS rebinding) gets the dashboard's files, but its API calls are refused with a message
/// asking for a token, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_through_rebound_name_is_refused_without_token() {
    let Some(page) = browser_support::new_page().await else {
        return;
    };
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let registry = faultline::registry::Registry::new(faultline::registry::Options::default());
    let server = faultline::server::ServerHandle::spawn(listener, registry).unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let setup = [
        (
            "/proxies",
            json!({"name": "kept", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}),
        ),
        (
            "/proxies/kept/toxics",
            json!({"name": "slow", "type": "latency"}),
        ),
    ];
    for (path, body) in setup {
        let reply = http
            .post(format!("{api}{path}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
    }

    page.goto(&format!("http://rebound.test:{port}/ui")).await;
    let notice = page
        .wait_for(
            "!document.getElementById('notice').hidden && document.getElementById('notice').textContent",
            SETTLE,
        )
        .await;
    assert!(notice.as_str().unwrap().contains("--api-token"), "{notice}");
    assert_eq!(
        page.eval("document.querySelector('[data-proxy]') === null")
            .await,
        true
    );
    let reset = page
        .eval("fetch('/reset', {method: 'POST', headers: {'X-Faultline-UI': '1'}}).then((r) => r.status)")
        .await;
    assert_eq!(reset, 403);
    let toxics: serde_json::Value = http
        .get(format!("{api}/proxies/kept/toxics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(toxics[0]["name"], "slow");
    drop(server);
}

/// The browser's own navigation timing puts DOMContentLoaded well under a second after the
/// navigation started, from a local faultline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_in_well_under_a_second() {
    let Some((_h, page)) = dashboard().await else {
        return;
    };
    let timing = page
        .eval(
            "(() => {
                const n = performance.getEntriesByType('navigation')[0];
                return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd};
            })()",
        )
        .await;
    let dom = timing["dom"].as_f64().unwrap();
    assert!(dom > 0.0 && dom < 1000.0, "{timing}");
}

/// Each card shows its proxy's protocol: `tcp` for a plain proxy, `http` for one in HTTP mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_badge_shows_tcp_or_http() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let upstream = echo_server().await;
    h.proxy("plain", upstream).await;
    let created = h
        .post(
            "/proxies",
            json!({"name": "web", "listen": "127.0.0.1:0", "upstream": upstream.to_string(),
                   "protocol": "http"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let badges = page
        .wait_for(
            "(() => {
                const badge = (name) => document.querySelector(`[data-proxy=\"${name}\"] .protocol`);
                const shown = ['plain', 'web'].map(badge);
                return shown.every((b) => b && !b.hidden) && shown.map((b) => b.textContent);
            })()",
            SETTLE,
        )
        .await;
    assert_eq!(badges, json!(["tcp", "http"]));
}

/// The active-connection count rises to 1 while a real connection through the proxy is open,
/// and falls back to 0 once it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_connections_follow_a_real_connection() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let listen = h.proxy("conns", echo_server().await).await;
    page.wait_for(&card("conns"), SETTLE).await;
    let active = format!(
        "{}.querySelector('.active-connections').textContent",
        card("conns")
    );
    assert_eq!(page.eval(&active).await, "0");

    let mut client = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut client, b"open").await;
    page.wait_for(&format!("{active} === '1'"), SETTLE).await;
    drop(client);
    page.wait_for(&format!("{active} === '0'"), SETTLE).await;
}

/// A toxic added through the API shows in the timeline with its proxy, name, type and stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_shows_toxic_added() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("ledger", echo_server().await).await;
    h.toxic(
        "ledger",
        json!({"name": "lag", "type": "latency", "attributes": {"latency": 5}}),
    )
    .await;
    let entry = timeline_entry(&page, "toxic_added").await;
    assert_eq!(
        entry,
        (
            "toxic added".into(),
            "ledger / lag".into(),
            "latency downstream".into()
        )
    );
}

/// A toxic removed through the API shows in the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_shows_toxic_removed() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("ledger", echo_server().await).await;
    h.toxic(
        "ledger",
        json!({"name": "lag", "type": "latency", "attributes": {"latency": 5}}),
    )
    .await;
    assert_eq!(h.delete("/proxies/ledger/toxics/lag").await.status, 204);
    let entry = timeline_entry(&page, "toxic_removed").await;
    assert_eq!(
        entry,
        ("toxic removed".into(), "ledger / lag".into(), String::new())
    );
}

/// A timed toxic that runs out (`duration_ms`) shows in the timeline as expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_shows_toxic_expired() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("ledger", echo_server().await).await;
    h.toxic(
        "ledger",
        json!({"name": "brief", "type": "latency", "attributes": {"latency": 5},
               "duration_ms": 300}),
    )
    .await;
    let entry = timeline_entry(&page, "toxic_expired").await;
    assert_eq!(
        entry,
        (
            "toxic expired".into(),
            "ledger / brief".into(),
            String::new()
        )
    );
    assert_eq!(h.get("/proxies/ledger/toxics").await.json(), json!([]));
}

/// `POST /reset` shows in the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_shows_reset() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("ledger", echo_server().await).await;
    assert_eq!(h.post("/reset", json!({})).await.status, 204);
    let entry = timeline_entry(&page, "reset").await;
    assert_eq!(
        entry,
        (
            "reset".into(),
            String::new(),
            "every proxy enabled, every toxic removed".into()
        )
    );
}

/// A real connection cut by a toxic (`reset_peer`) shows in the timeline, with its proxy and
/// how it was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_shows_connection_cut_by_toxic() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let listen = h.proxy("flaky", echo_server().await).await;
    h.toxic(
        "flaky",
        json!({"name": "rst", "type": "reset_peer", "stream": "upstream",
               "attributes": {"timeout": 0}}),
    )
    .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let local = client.local_addr().unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(SETTLE, client.read(&mut buf))
        .await
        .expect("the toxic ends the connection");
    assert!(!matches!(read, Ok(n) if n > 0), "{read:?}");

    let entry = timeline_entry(&page, "connection_closed").await;
    assert_eq!(
        entry,
        (
            "connection closed".into(),
            "flaky".into(),
            format!("{local} reset by a toxic")
        )
    );
}

/// A `schedule` toxic's phase flips between active and paused on the page as its schedule
/// runs, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_phase_flips_on_the_page() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    h.proxy("pulse", echo_server().await).await;
    page.wait_for(&card("pulse"), SETTLE).await;
    page.eval("window.sameDocument = true").await;
    h.toxic(
        "pulse",
        json!({"name": "pulsing", "type": "latency", "attributes": {"latency": 5},
               "schedule": {"on_ms": 700, "off_ms": 700}}),
    )
    .await;

    // In the page: each phase shown, in turn, until it has changed twice.
    let seen = page
        .eval(&format!(
            "new Promise((resolve, reject) => {{
                const phases = [];
                const started = performance.now();
                (function watch() {{
                    const phase = {}.querySelector('[data-toxic=\"pulsing\"] .phase');
                    const now = phase && phase.textContent;
                    if (now && phases[phases.length - 1] !== now) phases.push(now);
                    if (phases.length >= 3) resolve(phases);
                    else if (performance.now() - started > 8000) reject(new Error('phases: ' + phases));
                    else setTimeout(watch, 20);
                }})();
            }})",
            card("pulse")
        ))
        .await;
    assert_eq!(seen, json!(["active", "paused", "active"]));
    assert_eq!(page.eval("window.sameDocument === true").await, true);
}

/// Records, in the page, each change of an experiment step's status (`phase:index from OLD`)
/// and of its run's state (`run from OLD`), with when the page handled it.
const OBSERVE_STEPS: &str = "(() => {
    window.observed = [];
    new MutationObserver((records) => {
        const at = performance.now();
        for (const r of records) {
            const d = r.target.dataset;
            const what = r.attributeName === 'data-state' ? 'run' : `${d.phase}:${d.index}`;
            window.observed.push({what: `${what} from ${r.oldValue}`, at});
        }
    }).observe(document.getElementById('experiments'), {
        subtree: true, attributes: true, attributeOldValue: true,
        attributeFilter: ['data-status', 'data-state'],
    });
    return true;
})()";

/// An experiment run against the server shows on the open page as it goes, without a reload:
/// its title, each step with its status (running while it runs), the probe's values against
/// the tolerance, and the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_panel_follows_a_run_live() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let (service, _requests) = http_server(200).await;
    let listen = h.proxy("checkout", service).await;
    page.wait_for(&card("checkout"), SETTLE).await;
    assert_eq!(
        page.eval("document.getElementById('experiments').hidden")
            .await,
        true
    );
    page.eval("window.sameDocument = true").await;
    page.eval(OBSERVE_STEPS).await;

    let experiment = latency_experiment(&format!("http://{listen}/"), "checkout");
    let journal = run_experiment(&experiment, vec![h.server.url()]).await;
    assert_eq!(journal.verdict(), faultline_experiment::Verdict::Deviated);

    let run = "document.querySelector('#experiments [data-run]')";
    page.wait_for(
        &format!("{run} && {run}.dataset.state === 'deviated'"),
        SETTLE,
    )
    .await;
    let shown = page
        .eval(&format!(
            "(() => {{
                const run = {run};
                const probe = run.querySelector('[data-probe=\"p99-under-250ms\"]');
                return {{
                    title: run.querySelector('.title').textContent,
                    verdict: run.querySelector('.verdict').textContent,
                    steps: [...run.querySelectorAll('.steps li')].map((li) =>
                        [li.dataset.phase, li.querySelector('.step-name').textContent, li.dataset.status]),
                    values: [...probe.querySelectorAll('.probe-values li')].map((li) =>
                        [li.dataset.phase, Number(li.dataset.value), li.dataset.ok]),
                    tolerance: probe.querySelector('.tolerance').textContent,
                    chart: !probe.querySelector('.probe-chart').hidden,
                }};
            }})()"
        ))
        .await;
    assert_eq!(
        shown["title"],
        "the service answers within 250 ms under 400 ms of latency"
    );
    assert_eq!(shown["verdict"], "hypothesis deviated");
    assert_eq!(
        shown["steps"],
        json!([
            ["before", "p99-under-250ms", "succeeded"],
            ["method", "add-latency", "succeeded"],
            ["after", "p99-under-250ms", "succeeded"],
            ["rollbacks", "remove-latency", "succeeded"],
        ])
    );
    let values = shown["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{shown}");
    assert_eq!(
        (&values[0][0], &values[0][2]),
        (&json!("before"), &json!("true"))
    );
    assert!(values[0][1].as_f64().unwrap() < 250.0, "{shown}");
    assert_eq!(
        (&values[1][0], &values[1][2]),
        (&json!("after"), &json!("false"))
    );
    assert!(values[1][1].as_f64().unwrap() >= 400.0, "{shown}");
    assert_eq!(shown["tolerance"], "tolerance: p99_ms in [0, 250]");
    assert_eq!(shown["chart"], true);

    // Live: every step went from pending to running to done before the verdict, and the
    // method showed while the hypothesis after it took its second and more.
    let observed = page.eval("window.observed").await;
    let at = |what: &str| {
        observed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["what"] == what)
            .and_then(|r| r["at"].as_f64())
            .unwrap_or_else(|| panic!("{what} not in {observed}"))
    };
    let ended = at("run from running");
    for step in ["before:0", "method:0", "after:0", "rollbacks:0"] {
        assert!(at(&format!("{step} from pending")) <= at(&format!("{step} from running")));
        assert!(at(&format!("{step} from running")) <= ended, "{observed}");
    }
    assert!(
        at("method:0 from pending") + 1000.0 < ended,
        "the method showed only at the end: {observed}"
    );
    assert_eq!(page.eval("window.sameDocument === true").await, true);
    page.screenshot("experiment").await;
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// A page opened after a run has started shows it from its start (title, plan, the steps and
/// probe values already reported), then follows it live to the verdict, each probe value once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_panel_opened_mid_run_shows_it_from_the_start() {
    let h = Harness::start().await;
    let post = |event: serde_json::Value| {
        let h = &h;
        async move {
            let reply = h.post("/experiments/events", event).await;
            assert_eq!(reply.status, 204, "{}", reply.body);
        }
    };
    let step = |phase: &str, name: &str, kind: &str, status: &str| {
        json!({"run": "mid", "type": "activity", "phase": phase, "index": 0, "name": name,
               "kind": kind, "status": status})
    };
    let probe = |phase: &str, value: f64, ok: bool| {
        json!({"run": "mid", "type": "probe", "phase": phase, "index": 0, "name": "p99",
               "value": value, "tolerance": "p99_ms in [0, 250]", "range": [0, 250], "ok": ok})
    };
    post(
        json!({"run": "mid", "type": "started", "title": "opened midway", "steps": [
            {"phase": "before", "name": "p99", "kind": "probe"},
            {"phase": "method", "name": "add-latency", "kind": "action"},
            {"phase": "after", "name": "p99", "kind": "probe"},
        ]}),
    )
    .await;
    post(step("before", "p99", "probe", "running")).await;
    post(probe("before", 12.5, true)).await;
    post(step("before", "p99", "probe", "succeeded")).await;
    post(step("method", "add-latency", "action", "running")).await;

    let Some(page) = browser_support::new_page().await else {
        return;
    };
    page.goto(&h.url("/ui")).await;
    let run = "document.querySelector('#experiments [data-run=\"mid\"]')";
    let shown = format!(
        "(() => {{
            const run = {run};
            if (!run) return null;
            return {{
                title: run.querySelector('.title').textContent,
                state: run.dataset.state,
                verdict: run.querySelector('.verdict').textContent,
                steps: [...run.querySelectorAll('.steps li')].map((li) =>
                    [li.dataset.phase, li.querySelector('.step-name').textContent, li.dataset.status]),
                values: [...run.querySelectorAll('[data-probe=\"p99\"] .probe-values li')]
                    .map((li) => [li.dataset.phase, Number(li.dataset.value), li.dataset.ok]),
            }};
        }})()"
    );
    page.wait_for(
        &format!("document.getElementById('status').dataset.state === 'live' && !!{run}"),
        SETTLE,
    )
    .await;
    let before = page.eval(&shown).await;
    assert_eq!(before["title"], "opened midway", "{before}");
    assert_eq!(before["state"], "running", "{before}");
    assert_eq!(
        before["steps"],
        json!([
            ["before", "p99", "succeeded"],
            ["method", "add-latency", "running"],
            ["after", "p99", "pending"],
        ])
    );
    assert_eq!(before["values"], json!([["before", 12.5, "true"]]));
    assert_eq!(
        page.eval("document.querySelectorAll('#experiments [data-run]').length")
            .await,
        1
    );

    // The rest arrives live.
    post(step("method", "add-latency", "action", "succeeded")).await;
    post(step("after", "p99", "probe", "running")).await;
    post(probe("after", 412.5, false)).await;
    post(step("after", "p99", "probe", "succeeded")).await;
    post(
        json!({"run": "mid", "type": "ended", "status": "completed", "deviated": true,
                "verdict": "deviated"}),
    )
    .await;
    page.wait_for(&format!("{run}.dataset.state === 'deviated'"), SETTLE)
        .await;
    let after = page.eval(&shown).await;
    assert_eq!(after["title"], "opened midway", "{after}");
    assert_eq!(after["verdict"], "hypothesis deviated", "{after}");
    assert_eq!(
        after["steps"],
        json!([
            ["before", "p99", "succeeded"],
            ["method", "add-latency", "succeeded"],
            ["after", "p99", "succeeded"],
        ])
    );
    assert_eq!(
        after["values"],
        json!([["before", 12.5, "true"], ["after", 412.5, "false"]])
    );
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// A relay from the browser to the server that the test can close: closing cuts every
/// connection through it and holds new ones until it opens again.
struct Relay {
    addr: std::net::SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn to(server: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, _) = tokio::sync::watch::channel(true);
        let watch = open.clone();
        tokio::spawn(async move {
            while let Ok((mut browser, _)) = listener.accept().await {
                let mut state = watch.subscribe();
                tokio::spawn(async move {
                    if state.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    let Ok(mut upstream) = TcpStream::connect(server).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut browser, &mut upstream) => {}
                        _ = state.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Relay { addr, open }
    }
}

/// When the page's event stream drops and reconnects mid-run, the panel catches up on what was
/// published meanwhile from the history, and shows what it had already seen once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_panel_catches_up_after_the_event_stream_reconnects() {
    let h = Harness::start().await;
    let relay = Relay::to(h.server.addr()).await;
    let Some(page) = browser_support::new_page().await else {
        return;
    };
    page.goto(&format!("http://{}/ui", relay.addr)).await;
    let status = "document.getElementById('status').dataset.state";
    page.wait_for(&format!("{status} === 'live'"), SETTLE).await;
    let post = |event: serde_json::Value| {
        let h = &h;
        async move {
            let reply = h.post("/experiments/events", event).await;
            assert_eq!(reply.status, 204, "{}", reply.body);
        }
    };
    let probe = |phase: &str, value: f64, ok: bool| {
        json!({"run": "gap", "type": "probe", "phase": phase, "index": 0, "name": "p99",
               "value": value, "ok": ok})
    };
    let values = "[...document.querySelectorAll('[data-run=\"gap\"] [data-probe=\"p99\"] \
                  .probe-values li')].map((li) => Number(li.dataset.value))";
    post(
        json!({"run": "gap", "type": "started", "title": "through a gap", "steps": [
            {"phase": "before", "name": "p99", "kind": "probe"},
            {"phase": "after", "name": "p99", "kind": "probe"},
        ]}),
    )
    .await;
    post(probe("before", 12.5, true)).await;
    page.wait_for(&format!("{values}.length === 1"), SETTLE)
        .await;

    // The stream drops; what is published until it reconnects only the history has.
    relay.open.send_replace(false);
    page.wait_for(&format!("{status} === 'connecting'"), SETTLE)
        .await;
    post(probe("after", 412.5, false)).await;
    post(
        json!({"run": "gap", "type": "ended", "status": "completed", "deviated": true,
                "verdict": "deviated"}),
    )
    .await;
    relay.open.send_replace(true);

    let run = "document.querySelector('#experiments [data-run=\"gap\"]')";
    page.wait_for(&format!("{run}.dataset.state === 'deviated'"), SETTLE)
        .await;
    assert_eq!(page.eval(values).await, json!([12.5, 412.5]));
    assert_eq!(
        page.eval(&format!("{run}.querySelector('.title').textContent"))
            .await,
        "through a gap"
    );
    assert_eq!(page.eval(status).await, "live");
    // The start it had seen before the gap is not replayed again (the timeline has it once).
    assert_eq!(
        page.eval(
            "document.querySelectorAll('#timeline li[data-type=\"experiment_started\"]').length"
        )
        .await,
        1
    );
}

/// A run whose steady state cannot even be checked shows the failed probe with its error,
/// the steps that never ran as skipped, the rollback that still ran, and the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_panel_shows_failed_and_skipped_steps() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let nothing = json!({"type": "process", "path": "true"});
    let experiment = json!({
        "title": "nobody answers",
        "steady-state-hypothesis": {"title": "up", "probes": [
            {"type": "probe", "name": "answers", "tolerance": 200,
             "provider": {"type": "http", "url": nobody, "timeout": 2}}]},
        "method": [{"type": "action", "name": "inject", "provider": nothing}],
        "rollbacks": [{"type": "action", "name": "heal", "provider": nothing}]
    });
    let journal = run_experiment(&experiment, vec![h.server.url()]).await;
    assert_eq!(journal.verdict(), faultline_experiment::Verdict::Failed);

    let run = "document.querySelector('#experiments [data-run]')";
    page.wait_for(
        &format!("{run} && {run}.dataset.state === 'failed'"),
        SETTLE,
    )
    .await;
    let shown = page
        .eval(&format!(
            "(() => {{
                const run = {run};
                return {{
                    verdict: run.querySelector('.verdict').textContent,
                    steps: [...run.querySelectorAll('.steps li')].map((li) =>
                        [li.dataset.phase, li.dataset.status, li.querySelector('.step-detail').textContent]),
                }};
            }})()"
        ))
        .await;
    assert_eq!(shown["verdict"], "failed: a hypothesis probe could not run");
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{shown}");
    assert_eq!(
        (&steps[0][0], &steps[0][1]),
        (&json!("before"), &json!("failed"))
    );
    assert!(
        steps[0][2].as_str().unwrap().contains("refused"),
        "the probe's error is shown: {shown}"
    );
    assert_eq!(
        steps[1..],
        [
            json!(["method", "skipped", ""]),
            json!(["after", "skipped", ""]),
            json!(["rollbacks", "succeeded", ""]),
        ]
    );
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// Screenshots of the main view with live state: proxies, toxics with countdown, schedule
/// and target, traffic, and the event timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_shows_toxics_traffic_and_events() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let echo = echo_server().await;
    let api = h.proxy("payments-api", echo).await;
    h.proxy("redis", echo).await;
    h.toxic(
        "payments-api",
        json!({"name": "latency_downstream", "type": "latency",
               "attributes": {"latency": 120, "jitter": 30}, "duration_ms": 300_000}),
    )
    .await;
    h.toxic(
        "payments-api",
        json!({"name": "flaky_uplink", "type": "bandwidth", "stream": "upstream",
               "attributes": {"rate": 500}, "schedule": {"on_ms": 4000, "off_ms": 6000},
               "target": {"fraction": 0.5}}),
    )
    .await;
    h.toxic(
        "redis",
        json!({"name": "cut_after_1mb", "type": "limit_data", "attributes": {"bytes": 1_000_000}}),
    )
    .await;
    let traffic = tokio::spawn(async move {
        let mut client = TcpStream::connect(api).await.unwrap();
        let chunk = vec![1u8; 16 * 1024];
        let mut back = vec![0u8; chunk.len()];
        loop {
            client.write_all(&chunk).await.unwrap();
            client.read_exact(&mut back).await.unwrap();
        }
    });
    page.wait_for(
        &format!(
            "{c}.querySelectorAll('[data-toxic]').length === 2 \
             && {c}.querySelector('.countdown') && {c}.querySelector('.phase') \
             && Number({c}.querySelector('.spark.downstream .rate').dataset.rate) > 0 \
             && document.querySelectorAll('#timeline li').length >= 3",
            c = card("payments-api")
        ),
        SETTLE,
    )
    .await;
    // A few seconds of history in the sparklines.
    page.eval("new Promise((resolve) => setTimeout(resolve, 4000))")
        .await;
    traffic.abort();
    page.screenshot("overview").await;
    assert_eq!(page.errors(), Vec::<String>::new());
}

/// A page on another origin that tries to change the API it is pointed at; `attack(api)`
/// resolves to what happened to each attempt.
const EVIL_PAGE: &str = r#"<!doctype html><title>elsewhere</title><script>
async function attempt(request) {
  try { await request(); return 'sent'; } catch (e) { return 'blocked: ' + e.message; }
}
async function attack(api) {
  const json = { 'X-Faultline-UI': '1', 'Content-Type': 'application/json' };
  return {
    create_with_header: await attempt(() => fetch(api + '/proxies', { method: 'POST',
      headers: json, body: JSON.stringify({ name: 'evil', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' }) })),
    delete_with_header: await attempt(() => fetch(api + '/proxies/victim',
      { method: 'DELETE', headers: { 'X-Faultline-UI': '1' } })),
    disable_no_cors: await attempt(() => fetch(api + '/proxies/victim',
      { method: 'POST', mode: 'no-cors', body: '{"enabled": false}' })),
    reset_no_cors: await attempt(() => fetch(api + '/reset', { method: 'POST', mode: 'no-cors' })),
  };
}
</script>"#;

/// Serves [`EVIL_PAGE`] for every request.
async fn evil_site() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EVIL_PAGE}",
                    EVIL_PAGE.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// Not a check: writes the README's `docs/dashboard.png` from a minute of flapping traffic
/// and an experiment that ran against a third proxy. Run with
/// `cargo test --test browser readme_screenshot -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/dashboard.png; run by hand"]
async fn readme_screenshot() {
    let Some((h, page)) = dashboard().await else {
        return;
    };
    let echo = echo_server().await;
    let api = h.proxy("payments-api", echo).await;
    let cache = h.proxy("redis", echo).await;
    h.toxic(
        "payments-api",
        json!({"name": "flapping_uplink", "type": "bandwidth", "stream": "upstream",
               "attributes": {"rate": 150}, "schedule": {"on_ms": 8000, "off_ms": 8000}}),
    )
    .await;
    h.toxic(
        "payments-api",
        json!({"name": "slow_responses", "type": "latency",
               "attributes": {"latency": 120, "jitter": 30}, "duration_ms": 600_000}),
    )
    .await;
    h.toxic(
        "redis",
        json!({"name": "cut_after_5mb", "type": "limit_data",
               "attributes": {"bytes": 5_000_000}, "target": {"fraction": 0.25}}),
    )
    .await;
    // A client pacing itself to about 500 KB/s each way.
    let paced = |addr, chunk: usize, pause: u64| async move {
        let mut client = TcpStream::connect(addr).await.unwrap();
        let data = vec![3u8; chunk];
        let mut back = vec![0u8; chunk];
        loop {
            if client.write_all(&data).await.is_err() || client.read_exact(&mut back).await.is_err()
            {
                client = TcpStream::connect(addr).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    };
    let traffic = [
        tokio::spawn(paced(api, 16 * 1024, 30)),
        tokio::spawn(paced(cache, 4096, 40)),
    ];
    let (service, _requests) = http_server(200).await;
    let search = h.proxy("search", service).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let experiment = latency_experiment(&format!("http://{search}/"), "search");
    run_experiment(&experiment, vec![h.server.url()]).await;
    page.wait_for(
        "document.querySelector('#experiments [data-run]:not([data-state=\"running\"])')",
        SETTLE,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for task in traffic {
        task.abort();
    }
    let shot = page.screenshot("readme").await;
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
    std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
    std::fs::copy(shot, docs).unwrap();
}
