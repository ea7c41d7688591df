//! The fleet example over three faultline instances on loopback: the action runs on every
//! instance and rollback restores every instance.

mod experiment_support;

use experiment_support::{ai, api_get, example, faultline, proxy, run};
use faultline::server::ServerHandle;
use serde_json::json;

struct Fleet {
    apis: Vec<ServerHandle>,
    ai_urls: Vec<String>,
}

async fn fleet() -> Fleet {
    let upstream = ai().await;
    let mut apis = Vec::new();
    let mut ai_urls = Vec::new();
    for _ in 0..3 {
        let api = faultline().await;
        let listen = proxy(&api.url(), "ai", &upstream).await;
        ai_urls.push(format!("http://{listen}/complete"));
        apis.push(api);
    }
    Fleet { apis, ai_urls }
}

impl Fleet {
    fn args(&self, latency_ms: u64) -> Vec<String> {
        let mut args = Vec::new();
        for api in &self.apis {
            args.push("--api".to_string());
            args.push(api.url());
        }
        args.push("--var".into());
        args.push(format!("ai_urls:json={}", json!(self.ai_urls)));
        args.push("--var".into());
        args.push(format!("latency_ms:int={latency_ms}"));
        args
    }

    async fn assert_clean(&self) {
        for api in &self.apis {
            let proxy = api_get(&api.url(), "/proxies/ai").await;
            assert_eq!(proxy["toxics"], json!([]), "{}", api.url());
        }
    }
}

/// 400 ms of latency on all three instances: every request through the fleet is slow (the
/// fastest one too, so no instance was missed), the hypothesis deviates, and all three are
/// clean afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_run_over_three_instances_deviates_and_restores_all() {
    let fleet = fleet().await;
    let out = run(&example("fleet-latency.json"), &fleet.args(400)).await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        out.journal["faultline"]["apis"].as_array().unwrap().len(),
        3
    );
    let after = &out.journal["steady_states"]["after"]["probes"][0]["output"];
    assert!(after["min_ms"].as_f64().unwrap() >= 400.0, "{after}");
    assert_eq!(out.journal["rollbacks"][0]["status"], "succeeded");
    fleet.assert_clean().await;
}

/// A latency the hypothesis tolerates holds on the same fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_run_holds_with_small_latency() {
    let fleet = fleet().await;
    let out = run(&example("fleet-latency.json"), &fleet.args(20)).await;
    assert_eq!(out.code, 0, "{out}");
    let after = &out.journal["steady_states"]["after"]["probes"][0]["output"];
    assert!(after["min_ms"].as_f64().unwrap() >= 20.0, "{after}");
    fleet.assert_clean().await;
}
