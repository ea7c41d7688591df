//! `GET /metrics`: Prometheus exposition of every proxy's live counters.
//!
//! Toxiproxy's two byte counters keep their names and labels (dashboards built for Toxiproxy
//! keep working; unlike Toxiproxy they move while connections are open, not only when they
//! end). faultline's own series are prefixed `faultline_`. The counters live in the data plane
//! as atomics; a scrape reads them into a fresh encoder, so the data path never touches this.

use super::AppState;
use crate::proxy::{Direction, ProxyStats};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
    listener: String,
    proxy: String,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyDirectionLabels {
    proxy: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    proxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    proxy: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    proxy: String,
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CutLabels {
    proxy: String,
    kind: &'static str,
}

/// The methods `/metrics` answers: every standard one, as Toxiproxy answers any.
pub const METHODS: axum::routing::MethodFilter = axum::routing::MethodFilter::GET
    .or(axum::routing::MethodFilter::POST)
    .or(axum::routing::MethodFilter::PUT)
    .or(axum::routing::MethodFilter::PATCH)
    .or(axum::routing::MethodFilter::DELETE)
    .or(axum::routing::MethodFilter::HEAD)
    .or(axum::routing::MethodFilter::OPTIONS)
    .or(axum::routing::MethodFilter::TRACE);
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpFaultLabels {
    proxy: String,
    toxic: String,
    kind: &'static str,
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let proxies = state.registry.list().await;
    let received = Family::<DirectionLabels, Counter>::default();
    let delayed = Family::<ProxyDirectionLabels, Counter>::default();
    let dropped = Family::<ProxyDirectionLabels, Counter>::default();
    let sent = Family::<DirectionLabels, Counter>::default();
    let opened = Family::<ProxyLabels, Counter>::default();
    let active = Family::<ProxyLabels, Gauge>::default();
    let connect_errors = Family::<ReasonLabels, Counter>::default();
    let refused = Family::<RefusedLabels, Counter>::default();
    let toxics = Family::<ProxyLabels, Gauge>::default();
    let enabled = Family::<ProxyLabels, Gauge>::default();
    let cuts = Family::<CutLabels, Counter>::default();
    let http_faults = Family::<HttpFaultLabels, Counter>::default();

    let read = |c: &AtomicU64| ProxyStats::get(c);
    for p in &proxies {
        for direction in Direction::BOTH {
            let labels = DirectionLabels {
                direction: direction.as_str(),
                listener: p.listen.clone(),
                proxy: p.name.clone(),
                upstream: p.upstream.clone(),
            };
            let stats = p.stats.direction(direction);
            received
                .get_or_create(&labels)
                .inc_by(read(&stats.received_bytes));
            sent.get_or_create(&labels).inc_by(read(&stats.sent_bytes));
            let labels = ProxyDirectionLabels {
                proxy: p.name.clone(),
                direction: direction.as_str(),
            };
            delayed
                .get_or_create(&labels)
                .inc_by(read(&stats.delayed_chunks));
            dropped
                .get_or_create(&labels)
                .inc_by(read(&stats.dropped_bytes));
        }
        let labels = ProxyLabels {
            proxy: p.name.clone(),
        };
        let s = &p.stats;
        opened
            .get_or_create(&labels)
            .inc_by(read(&s.connections_total));
        active
            .get_or_create(&labels)
            .set(read(&s.connections_active) as i64);
        for (reason, count) in s.connect_failures.counts() {
            connect_errors
                .get_or_create(&ReasonLabels {
                    proxy: p.name.clone(),
                    reason,
                })
                .inc_by(count);
        }
        for (by, count) in s.refused.counts() {
            refused
                .get_or_create(&RefusedLabels {
                    proxy: p.name.clone(),
                    by,
                })
                .inc_by(count);
        }
        toxics.get_or_create(&labels).set(p.toxics.len() as i64);
        enabled.get_or_create(&labels).set(i64::from(p.enabled));
        for (kind, counter) in [("close", &s.toxic_closes), ("reset", &s.toxic_resets)] {
            cuts.get_or_create(&CutLabels {
                proxy: p.name.clone(),
                kind,
            })
            .inc_by(read(counter));
        }
        for (toxic, kind, n) in s.http_faults() {
            http_faults
                .get_or_create(&HttpFaultLabels {
                    proxy: p.name.clone(),
                    toxic,
                    kind,
                })
                .inc_by(n);
        }
    }

    let mut registry = Registry::default();
    registry.register(
        "toxiproxy_proxy_received_bytes",
        "Bytes read from the source socket, per proxy and direction",
        received,
    );
    registry.register(
        "toxiproxy_proxy_sent_bytes",
        "Bytes written to the destination socket, per proxy and direction",
        sent,
    );
    registry.register(
        "faultline_connections",
        "Client connections proxied to the upstream",
        opened,
    );
    registry.register(
        "faultline_connections_active",
        "Client connections open now",
        active,
    );
    registry.register(
        "faultline_upstream_connect_errors",
        "Upstream dials that failed, by reason (refused, timeout, reset, other)",
        connect_errors,
    );
    registry.register(
        "faultline_connections_refused",
        "Clients turned away before the upstream was dialed, by what turned them away",
        refused,
    );
    registry.register("faultline_toxics", "Toxics configured on the proxy", toxics);
    registry.register(
        "faultline_proxy_enabled",
        "1 if the proxy is listening",
        enabled,
    );
    registry.register(
        "faultline_toxic_delayed_chunks",
        "Chunks that toxics held back, per proxy and direction",
        delayed,
    );
    registry.register(
        "faultline_toxic_dropped_bytes",
        "Bytes that toxics discarded, per proxy and direction",
        dropped,
    );
    registry.register(
        "faultline_toxic_cuts",
        "Connections a toxic closed or reset",
        cuts,
    );
    registry.register(
        "faultline_http_requests_faulted",
        "HTTP requests an HTTP toxic applied to, per proxy and toxic",
        http_faults,
    );
    let tasks = Gauge::<i64>::default();
    tasks.set(state.registry.data_plane_tasks() as i64);
    registry.register(
        "faultline_runtime_tasks",
        "Tasks alive on the data plane: accept loops, connections and toxic timers",
        tasks,
    );
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
