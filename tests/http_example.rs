//! Runs `examples/http_storm.rs` (a retry and circuit-breaker policy against a 429/503 storm
//! from faultline) and checks what it reports.

#[allow(dead_code)]
#[path = "../examples/http_storm.rs"]
mod http_storm;

/// Through the seeded storm every call succeeds, after retries the storm made necessary; in
/// the outage the breaker opens after three failed calls, refuses the rest without sending
/// them, and closes again once the upstream answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_breaker_policy_survives_the_storm() {
    let report = http_storm::run(7).await;
    assert_eq!(report.storm_successes, report.storm_calls, "{report:?}");
    assert!(report.storm_faulted > 0, "{report:?}");
    assert_eq!(
        u64::from(report.storm_attempts),
        u64::from(report.storm_calls) + report.storm_faulted,
        "every faulted request was retried once: {report:?}"
    );
    assert_eq!(report.outage_exhausted, 3, "{report:?}");
    assert_eq!(report.outage_refused, 7, "{report:?}");
    assert_eq!(report.outage_sent, 3 * 8, "{report:?}");
    assert_eq!(report.trips, 1, "{report:?}");
    assert!(report.recovered, "{report:?}");
}
