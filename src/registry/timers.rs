//! Toxic timers: the expiry (`duration_ms`) and on/off rhythm (`schedule`) of a toxic, run as
//! one task per toxic on the data-plane runtime, which reaches back into the registry only
//! through a weak reference and only while its generation is still the toxic's current one.

use super::model::{Schedule, Toxic};
use super::Registry;
use std::sync::Weak;
use std::time::Duration;
use tokio::time::Instant;

impl Registry {
    /// Starts the expiry and schedule timers of a toxic, replacing any it had.
    pub(super) fn arm_timers(&self, proxy: &str, toxic: &mut Toxic, duration: Option<Duration>) {
        toxic.expires_at = duration.map(|d| Instant::now() + d);
        // A new generation even when no timer is armed: a timer of the old one may already be
        // past its cancellation point, waiting for the registry lock, and must then find that
        // the toxic has moved on (lifting `duration_ms` is never undone by it).
        toxic.timers = self.next_revision();
        if duration.is_none() && toxic.schedule.is_none() {
            toxic._timers = None;
            return;
        }
        let token = self.timers_token.child_token();
        let registry = self.this.clone();
        let (proxy, name, timers) = (proxy.to_string(), toxic.name.clone(), toxic.timers);
        let (expires_at, schedule) = (toxic.expires_at, toxic.schedule);
        let cancelled = token.clone();
        let task = async move {
            tokio::select! {
                _ = cancelled.cancelled() => {}
                _ = run_timers(registry, proxy, name, timers, expires_at, schedule) => {}
            }
        };
        self.timers.spawn_on(task, &self.runtime);
        toxic._timers = Some(token.drop_guard());
    }

    /// Switches a scheduled toxic on or off without changing anything else about it.
    async fn set_phase(&self, proxy_name: &str, toxic_name: &str, timers: u64, on: bool) {
        let mut proxies = self.lock().await;
        let Some(proxy) = proxies.get_mut(proxy_name) else {
            return;
        };
        let Ok(index) = proxy.toxic_index(toxic_name) else {
            return;
        };
        let toxic = &mut proxy.toxics[index];
        if toxic.timers != timers || toxic.active == on {
            return;
        }
        toxic.active = on;
        let direction = toxic.direction;
        proxy.publish(direction);
        proxies.publish_snapshot();
        let kind = if on {
            "toxic_activated"
        } else {
            "toxic_deactivated"
        };
        self.emit_toxic(kind, proxy_name, toxic_name, None);
    }
}

/// Runs a toxic's schedule until it expires; then removes it.
async fn run_timers(
    registry: Weak<Registry>,
    proxy: String,
    name: String,
    timers: u64,
    expires_at: Option<Instant>,
    schedule: Option<Schedule>,
) {
    let rhythm = async {
        let Some(schedule) = schedule else {
            return std::future::pending::<()>().await;
        };
        let mut phase_end = Instant::now();
        loop {
            for (length, on) in [(schedule.on, false), (schedule.off, true)] {
                phase_end += length;
                tokio::time::sleep_until(phase_end).await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                registry.set_phase(&proxy, &name, timers, on).await;
            }
        }
    };
    let expiry = async {
        match expires_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = rhythm => return,
        _ = expiry => {}
    }
    if let Some(registry) = registry.upgrade() {
        let _ = registry
            .remove_toxic_as(&proxy, &name, "toxic_expired", Some(timers))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{NewProxy, NewToxic, Options, ToxicChange};
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A registry with one disabled proxy `p` (no socket needed: timers act on the model).
    async fn registry_with_proxy() -> std::sync::Arc<Registry> {
        let registry = Registry::new(Options::default());
        registry
            .create(NewProxy {
                name: "p".into(),
                listen: "127.0.0.1:0".into(),
                upstream: "127.0.0.1:1".into(),
                enabled: false,
                ..NewProxy::default()
            })
            .await
            .unwrap();
        registry
    }

    fn latency(duration: Option<Duration>, schedule: Option<Schedule>) -> NewToxic {
        NewToxic {
            name: Some("t".into()),
            kind: Some("latency".into()),
            attributes: json!({"latency": 10}),
            duration,
            schedule,
            ..NewToxic::default()
        }
    }

    async fn is_active(registry: &Registry) -> Option<bool> {
        registry.toxic("p", "t").await.ok().map(|t| t.active)
    }

    /// A toxic with `duration_ms` is there until its deadline and gone right after it.
    #[tokio::test(start_paused = true)]
    async fn expiry_removes_the_toxic_at_its_deadline() {
        let registry = registry_with_proxy().await;
        registry
            .add_toxic("p", latency(Some(ms(600)), None))
            .await
            .unwrap();
        tokio::time::sleep(ms(599)).await;
        let view = registry.toxic("p", "t").await.unwrap();
        assert_eq!(view.remaining, Some(ms(1)));
        tokio::time::sleep(ms(2)).await;
        assert_eq!(
            registry.toxic("p", "t").await.unwrap_err(),
            crate::registry::Error::ToxicNotFound
        );
    }

    /// A scheduled toxic is active for `on`, inactive for `off`, and active again after.
    #[tokio::test(start_paused = true)]
    async fn schedule_flips_at_each_phase_end() {
        let registry = registry_with_proxy().await;
        let schedule = Schedule {
            on: ms(400),
            off: ms(300),
        };
        registry
            .add_toxic("p", latency(None, Some(schedule)))
            .await
            .unwrap();
        let start = Instant::now();
        let mut seen = Vec::new();
        for at in [399, 401, 699, 701, 1099, 1101] {
            tokio::time::sleep_until(start + ms(at)).await;
            seen.push((at, is_active(&registry).await.unwrap()));
        }
        assert_eq!(
            seen,
            [
                (399, true),
                (401, false),
                (699, false),
                (701, true),
                (1099, true),
                (1101, false)
            ]
        );
    }

    /// Lifting `duration_ms` holds even against an expiry timer that fired just before the
    /// update and is waiting to remove the toxic: it finds a newer generation and does nothing.
    #[tokio::test(start_paused = true)]
    async fn lifting_the_duration_beats_a_pending_expiry() {
        let registry = registry_with_proxy().await;
        registry
            .add_toxic("p", latency(Some(ms(500)), None))
            .await
            .unwrap();
        let pending_generation = registry.lock().await["p"].toxics[0].timers;
        let lifted = ToxicChange {
            duration: Some(None),
            attributes: json!({}),
            ..ToxicChange::default()
        };
        registry.update_toxic("p", "t", lifted).await.unwrap();
        // The old timer, already past its cancellation point, now gets the lock.
        registry
            .remove_toxic_as("p", "t", "toxic_expired", Some(pending_generation))
            .await
            .unwrap();
        tokio::time::sleep(ms(1000)).await;
        let view = registry.toxic("p", "t").await.expect("the toxic stays");
        assert_eq!(view.remaining, None);
    }
}
