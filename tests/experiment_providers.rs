//! The native functions, one at a time, against a real faultline server: each chaostoxi
//! (chaostoolkit-toxiproxy) and faultline function is read from an experiment file (so its
//! arguments are checked as a file's are), carried out by the provider, and its effect is read
//! back through the REST API. Automatic cleanup is not run here, so the state is the action's.

mod experiment_support;

use experiment_support::{ai, api_get, faultline, proxy};
use faultline_experiment::providers::{execute, Context};
use faultline_experiment::{parse, Format};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The context of a run acting on `api`, with `configuration`.
fn context(api: &str, configuration: Value) -> Context {
    let configuration = configuration.as_object().cloned().unwrap_or_default();
    Context::new(configuration, Map::new(), vec![api.to_string()])
}

/// Reads an experiment whose method is this one activity, as a file would be read, and
/// carries the activity out.
async fn call(ctx: &Context, kind: &str, module: &str, func: &str, arguments: Value) -> Value {
    try_call(ctx, kind, module, func, arguments)
        .await
        .unwrap_or_else(|e| panic!("{module}.{func} failed: {e}"))
}

async fn try_call(
    ctx: &Context,
    kind: &str,
    module: &str,
    func: &str,
    arguments: Value,
) -> Result<Value, String> {
    let document = json!({"title": "one activity", "method": [
        {"type": kind, "name": func, "provider": {"type": "python", "module": module,
         "func": func, "arguments": arguments}}]});
    let loaded = parse(&document.to_string(), Format::Json, "one.json").expect("a valid file");
    execute(&loaded.experiment.method[0], ctx).await
}

async fn toxi_action(ctx: &Context, func: &str, arguments: Value) -> Value {
    call(ctx, "action", "chaostoxi.proxy.actions", func, arguments).await
}

async fn toxic_action(ctx: &Context, func: &str, arguments: Value) -> Value {
    call(ctx, "action", "chaostoxi.toxic.actions", func, arguments).await
}

async fn faultline_action(ctx: &Context, func: &str, arguments: Value) -> Value {
    call(ctx, "action", "faultline.actions", func, arguments).await
}

/// The one toxic of proxy `name`, as the API shows it.
async fn only_toxic(api: &str, name: &str) -> Value {
    let toxics = api_get(api, &format!("/proxies/{name}/toxics")).await;
    let list = toxics.as_array().expect("a list of toxics");
    assert_eq!(list.len(), 1, "{toxics}");
    list[0].clone()
}

/// Carries out the `chaostoxi.toxic.actions` function `func` against a fresh server with the
/// proxy `web`, and returns the one toxic it left there.
async fn toxic_made_by(func: &str, arguments: Value) -> Value {
    let (server, _) = server_with_web().await;
    let api = server.url();
    toxic_action(&context(&api, json!({})), func, arguments).await;
    only_toxic(&api, "web").await
}

/// A faultline server with the proxy `web` in front of a live upstream.
async fn server_with_web() -> (faultline::server::ServerHandle, String) {
    let server = faultline().await;
    let upstream = ai().await;
    proxy(&server.url(), "web", &upstream).await;
    (server, upstream)
}

/// `create_proxy` creates the proxy with the upstream and listen address given, enabled,
/// and puts its port in the configuration as `<name>_PORT`, as the extension does.
#[tokio::test]
async fn chaostoxi_create_proxy_creates_the_proxy() {
    let server = faultline().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    let created = toxi_action(
        &ctx,
        "create_proxy",
        json!({"proxy_name": "db", "upstream_host": "127.0.0.1", "upstream_port": 5432,
               "listen_host": "127.0.0.1", "listen_port": 0}),
    )
    .await;
    assert_eq!(created, json!(true));
    let db = api_get(&api, "/proxies/db").await;
    assert_eq!(db["upstream"], "127.0.0.1:5432");
    assert_eq!(db["enabled"], true);
    let listen = db["listen"].as_str().unwrap();
    let port = listen
        .strip_prefix("127.0.0.1:")
        .expect("listens on loopback");
    assert_ne!(port, "0");
    let configuration = ctx.configuration.lock().unwrap().clone();
    assert_eq!(configuration["db_PORT"], json!(port));
}

/// `create_proxy` with `enabled: false` creates the proxy switched off.
#[tokio::test]
async fn chaostoxi_create_proxy_can_create_it_disabled() {
    let server = faultline().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    toxi_action(
        &ctx,
        "create_proxy",
        json!({"proxy_name": "db", "upstream_host": "127.0.0.1", "upstream_port": 5432,
               "listen_host": "127.0.0.1", "listen_port": 0, "enabled": false}),
    )
    .await;
    assert_eq!(api_get(&api, "/proxies/db").await["enabled"], false);
}

/// `modify_proxy` changes the upstream and `enabled` of an existing proxy.
#[tokio::test]
async fn chaostoxi_modify_proxy_changes_upstream_and_enabled() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    toxi_action(
        &ctx,
        "modify_proxy",
        json!({"proxy_name": "web", "upstream_address": "127.0.0.1:9", "enabled": false}),
    )
    .await;
    let web = api_get(&api, "/proxies/web").await;
    assert_eq!(web["upstream"], "127.0.0.1:9");
    assert_eq!(web["enabled"], false);
}

/// `delete_proxy` removes the proxy: the API no longer lists it.
#[tokio::test]
async fn chaostoxi_delete_proxy_removes_the_proxy() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    toxi_action(&ctx, "delete_proxy", json!({"proxy_name": "web"})).await;
    let proxies = api_get(&api, "/proxies").await;
    assert!(proxies.get("web").is_none(), "{proxies}");
    let status = reqwest::get(format!("{api}/proxies/web"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

/// `reset` enables every proxy and removes every toxic.
#[tokio::test]
async fn chaostoxi_reset_enables_proxies_and_removes_toxics() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    toxic_action(
        &ctx,
        "create_latency_toxic",
        json!({"for_proxy": "web", "toxic_name": "slow", "latency": 100}),
    )
    .await;
    toxi_action(&ctx, "disable_proxy", json!({"proxy_name": "web"})).await;
    assert_eq!(api_get(&api, "/proxies/web").await["enabled"], false);
    let reset = toxi_action(&ctx, "reset", json!({})).await;
    assert_eq!(reset, json!(true));
    let web = api_get(&api, "/proxies/web").await;
    assert_eq!(web["enabled"], true);
    assert_eq!(web["toxics"], json!([]));
}

/// `create_toxic` adds a toxic of any type with its stream, toxicity and attributes.
#[tokio::test]
async fn chaostoxi_create_toxic_adds_the_toxic_as_given() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    let created = toxic_action(
        &ctx,
        "create_toxic",
        json!({"for_proxy": "web", "toxic_name": "jittery", "toxic_type": "latency",
               "stream": "upstream", "toxicity": 0.5,
               "attributes": {"latency": 120, "jitter": 10}}),
    )
    .await;
    assert_eq!(created, json!(true));
    let toxic = only_toxic(&api, "web").await;
    assert_eq!(toxic["name"], "jittery");
    assert_eq!(toxic["type"], "latency");
    assert_eq!(toxic["stream"], "upstream");
    assert_eq!(toxic["toxicity"], 0.5);
    assert_eq!(toxic["attributes"]["latency"], 120);
    assert_eq!(toxic["attributes"]["jitter"], 10);
}

/// `create_bandwith_degradation_toxic` (the extension's spelling) adds a `bandwidth` toxic
/// with its `rate`, downstream at full toxicity.
#[tokio::test]
async fn chaostoxi_bandwidth_toxic_sets_the_rate() {
    let toxic = toxic_made_by(
        "create_bandwith_degradation_toxic",
        json!({"for_proxy": "web", "toxic_name": "narrow", "rate": 64}),
    )
    .await;
    assert_eq!(toxic["type"], "bandwidth");
    assert_eq!(toxic["name"], "narrow");
    assert_eq!(toxic["stream"], "downstream");
    assert_eq!(toxic["toxicity"], 1.0);
    assert_eq!(toxic["attributes"]["rate"], 64);
}

/// `create_slow_connection_close_toxic` adds a `slow_close` toxic with its `delay`.
#[tokio::test]
async fn chaostoxi_slow_close_toxic_sets_the_delay() {
    let toxic = toxic_made_by(
        "create_slow_connection_close_toxic",
        json!({"for_proxy": "web", "toxic_name": "lingering", "delay": 750}),
    )
    .await;
    assert_eq!(toxic["type"], "slow_close");
    assert_eq!(toxic["attributes"]["delay"], 750);
}

/// `create_timeout_toxic` adds a `timeout` toxic with its `timeout`.
#[tokio::test]
async fn chaostoxi_timeout_toxic_sets_the_timeout() {
    let toxic = toxic_made_by(
        "create_timeout_toxic",
        json!({"for_proxy": "web", "toxic_name": "hang", "timeout": 2500}),
    )
    .await;
    assert_eq!(toxic["type"], "timeout");
    assert_eq!(toxic["attributes"]["timeout"], 2500);
}

/// `create_slicer_toxic` adds a `slicer` toxic with its average size, variation and delay.
#[tokio::test]
async fn chaostoxi_slicer_toxic_sets_size_variation_and_delay() {
    let toxic = toxic_made_by(
        "create_slicer_toxic",
        json!({"for_proxy": "web", "toxic_name": "chunks", "average_size": 64,
               "size_variation": 16, "delay": 20}),
    )
    .await;
    assert_eq!(toxic["type"], "slicer");
    assert_eq!(toxic["attributes"]["average_size"], 64);
    assert_eq!(toxic["attributes"]["size_variation"], 16);
    assert_eq!(toxic["attributes"]["delay"], 20);
}

/// `create_limiter_toxic` adds a `limit_data` toxic whose `bytes` is the `bytes_limit`.
#[tokio::test]
async fn chaostoxi_limiter_toxic_sets_the_byte_limit() {
    let toxic = toxic_made_by(
        "create_limiter_toxic",
        json!({"for_proxy": "web", "toxic_name": "cap", "bytes_limit": 4096}),
    )
    .await;
    assert_eq!(toxic["type"], "limit_data");
    assert_eq!(toxic["attributes"]["bytes"], 4096);
}

/// faultline's `add_toxic` with `duration_ms`: the API shows the time left, and the server
/// removes the toxic by itself once it has passed.
#[tokio::test]
async fn faultline_add_toxic_with_duration_ms_expires() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    let mut events = server.registry().events().subscribe();
    let added = Instant::now();
    faultline_action(
        &ctx,
        "add_toxic",
        json!({"proxy": "web", "type": "latency", "name": "brief",
               "attributes": {"latency": 50}, "duration_ms": 300}),
    )
    .await;
    let toxic = only_toxic(&api, "web").await;
    assert_eq!(toxic["name"], "brief");
    let remaining = toxic["remaining_ms"].as_u64().expect("a timed toxic");
    assert!(remaining <= 300, "{toxic}");
    let expired = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.kind == "toxic_expired" {
                return event;
            }
        }
    })
    .await
    .expect("the toxic expires");
    let lived = added.elapsed();
    assert_eq!(expired.toxic.as_deref(), Some("brief"));
    assert!(
        lived >= Duration::from_millis(300),
        "expired after {lived:?}"
    );
    assert_eq!(api_get(&api, "/proxies/web/toxics").await, json!([]));
}

/// faultline's `add_toxic` with `target`: the toxic is limited to those client addresses.
#[tokio::test]
async fn faultline_add_toxic_with_target_limits_the_toxic() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    faultline_action(
        &ctx,
        "add_toxic",
        json!({"proxy": "web", "type": "latency", "attributes": {"latency": 50},
               "target": {"cidrs": ["10.0.0.0/8"], "fraction": 0.5}}),
    )
    .await;
    let toxic = only_toxic(&api, "web").await;
    assert_eq!(toxic["name"], "latency_downstream", "the default name");
    assert_eq!(toxic["target"]["cidrs"], json!(["10.0.0.0/8"]));
    assert_eq!(toxic["target"]["fraction"], 0.5);
}

/// faultline's `disable_proxy` then `enable_proxy` switch the proxy off and on again.
#[tokio::test]
async fn faultline_disable_then_enable_proxy() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    faultline_action(&ctx, "disable_proxy", json!({"proxy": "web"})).await;
    assert_eq!(api_get(&api, "/proxies/web").await["enabled"], false);
    faultline_action(&ctx, "enable_proxy", json!({"proxy": "web"})).await;
    assert_eq!(api_get(&api, "/proxies/web").await["enabled"], true);
}

/// faultline's `reset` enables every proxy and removes every toxic.
#[tokio::test]
async fn faultline_reset_enables_proxies_and_removes_toxics() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let ctx = context(&api, json!({}));
    faultline_action(
        &ctx,
        "add_toxic",
        json!({"proxy": "web", "type": "latency", "attributes": {"latency": 50}}),
    )
    .await;
    faultline_action(&ctx, "disable_proxy", json!({"proxy": "web"})).await;
    faultline_action(&ctx, "reset", json!({})).await;
    let web = api_get(&api, "/proxies/web").await;
    assert_eq!(web["enabled"], true);
    assert_eq!(web["toxics"], json!([]));
}

/// A /metrics endpoint whose counter `ticks_total{kind="ms"}` counts milliseconds since it
/// started, i.e. grows at 1000 per second, next to a series that does not move.
async fn ticking_metrics() -> String {
    use axum::routing::get;
    let started = Instant::now();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            format!(
                "# TYPE ticks_total counter\nticks_total{{kind=\"ms\"}} {}\n\
                 ticks_total{{kind=\"still\"}} 7\n",
                started.elapsed().as_millis()
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/metrics")
}

/// `prometheus_rate` scrapes a real /metrics twice and returns the per-second rate of the
/// labelled series (not the other one): about 1000/s for a millisecond counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rate_computes_the_rate_of_a_counter() {
    let url = ticking_metrics().await;
    let ctx = context("http://127.0.0.1:9", json!({}));
    let rate = call(
        &ctx,
        "probe",
        "faultline.probes",
        "prometheus_rate",
        json!({"url": url, "metric": "ticks_total", "labels": {"kind": "ms"}, "window_s": 0.5}),
    )
    .await;
    let rate = rate.as_f64().expect("a number");
    assert!((800.0..=1200.0).contains(&rate), "rate {rate}/s");
}

/// An action on a proxy the API does not have fails, with the API's answer in the error.
#[tokio::test]
async fn chaostoxi_action_on_a_missing_proxy_fails() {
    let server = faultline().await;
    let ctx = context(&server.url(), json!({}));
    let err = try_call(
        &ctx,
        "action",
        "chaostoxi.proxy.actions",
        "disable_proxy",
        json!({"proxy_name": "nope"}),
    )
    .await
    .unwrap_err();
    assert!(err.contains("unable to modify proxy nope"), "{err}");
}

/// With no `--api`, the extension's `toxiproxy_host` + `toxiproxy_port` configuration keys
/// pick the API, end to end through `faultline experiment run`: the action lands on that
/// server (read back through its REST API during the run), and cleanup removes it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_host_and_port_configuration_picks_the_api() {
    let (server, _) = server_with_web().await;
    let api = server.url();
    let addr = server.addr();
    let experiment = json!({
        "title": "host and port",
        "configuration": {"toxiproxy_host": addr.ip().to_string(),
                          "toxiproxy_port": addr.port()},
        "method": [
            {"type": "action", "name": "slow", "provider": {"type": "python",
             "module": "chaostoxi.toxic.actions", "func": "create_latency_toxic",
             "arguments": {"for_proxy": "web", "toxic_name": "slow", "latency": 100}}},
            {"type": "probe", "name": "toxics-now", "provider": {"type": "http",
             "url": format!("{api}/proxies/web/toxics"), "timeout": 5}}
        ]
    });
    let file =
        std::env::temp_dir().join(format!("faultline-host-port-{}.json", std::process::id()));
    std::fs::write(&file, experiment.to_string()).unwrap();
    let out = experiment_support::run(&file, &[]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.journal["faultline"]["apis"], json!([api]), "{out}");
    assert_eq!(out.journal["run"][0]["status"], "succeeded", "{out}");
    let during = &out.journal["run"][1]["output"]["body"];
    assert_eq!(during[0]["name"], "slow", "{during}");
    assert_eq!(during[0]["attributes"]["latency"], 100);
    assert_eq!(api_get(&api, "/proxies/web/toxics").await, json!([]));
}
