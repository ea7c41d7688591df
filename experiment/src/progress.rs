//! A run's progress, published to the faultline servers it acts on, whose dashboards show it
//! live: `POST /experiments/events` on each API, one JSON event per step (see faultline's
//! `api::experiments` for the shapes; the server re-publishes them on `/events`).
//!
//! Publishing never fails a run nor slows it down: events are queued, each API gets them in
//! order from a task of its own, a request gives up after [`REQUEST_TIMEOUT`], and the end of
//! the run waits at most [`FLUSH_TIMEOUT`] for the last ones. An API that answers 404 or 405
//! (Toxiproxy, an older faultline) simply gets no progress; any other failure is reported
//! once, on stderr, and that API gets no more events of this run.

use crate::fleet::{root_cause, Api};
use crate::model::ActivityKind;
use crate::view::{short, Event};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long one event may take to deliver.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the end of a run waits for the events still queued.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// A probe value longer than this (as JSON) is sent shortened, as the terminal shows it.
const MAX_VALUE_BYTES: usize = 1024;

/// Where a step belongs in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Safeguards,
    /// The steady-state hypothesis before the method.
    Before,
    Method,
    /// The steady-state hypothesis after the method.
    After,
    Rollbacks,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Safeguards => "safeguards",
            Phase::Before => "before",
            Phase::Method => "method",
            Phase::After => "after",
            Phase::Rollbacks => "rollbacks",
        }
    }
}

/// One step of a run: its phase and its position within it, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub phase: Phase,
    pub index: usize,
}

/// A step of the plan announced when the run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub phase: Phase,
    pub name: String,
    pub kind: ActivityKind,
}

fn kind_name(kind: ActivityKind) -> &'static str {
    match kind {
        ActivityKind::Probe => "probe",
        ActivityKind::Action => "action",
    }
}

/// The body sent for `event`, or `None` for what the dashboard does not show (phases,
/// pauses, cleanup: the activities and the end say it).
pub fn body(run: &str, event: &Event) -> Option<Value> {
    let mut body = match event {
        Event::Started { title, plan, .. } => json!({
            "type": "started",
            "title": title,
            "steps": plan.iter().map(|s| json!({
                "phase": s.phase.name(), "name": s.name, "kind": kind_name(s.kind),
            })).collect::<Vec<_>>(),
        }),
        Event::ActivityStarted {
            name, kind, step, ..
        } => json!({
            "type": "activity", "phase": step.phase.name(), "index": step.index,
            "name": name, "kind": kind_name(*kind), "status": "running",
        }),
        Event::ActivityFinished {
            name,
            kind,
            step,
            error,
            ..
        } => {
            let mut body = json!({
                "type": "activity", "phase": step.phase.name(), "index": step.index,
                "name": name, "kind": kind_name(*kind),
                "status": if error.is_some() { "failed" } else { "succeeded" },
            });
            if let Some(error) = error {
                body["error"] = json!(error);
            }
            body
        }
        Event::Tolerance {
            name,
            value,
            expected,
            met,
            step,
            tolerance,
        } => {
            let value = if value.to_string().len() > MAX_VALUE_BYTES {
                json!(short(value))
            } else {
                value.clone()
            };
            let mut body = json!({
                "type": "probe", "phase": step.phase.name(), "index": step.index,
                "name": name, "value": value, "tolerance": expected, "ok": met,
            });
            if let Some(range) = numeric_range(tolerance) {
                body["range"] = json!(range);
            }
            body
        }
        Event::Finished {
            verdict,
            status,
            deviated,
            reason,
        } => {
            let mut body = json!({
                "type": "ended", "status": status, "deviated": deviated,
                "verdict": verdict.name(),
            });
            if let Some(reason) = reason {
                body["reason"] = json!(reason);
            }
            body
        }
        _ => return None,
    };
    body["run"] = json!(run);
    Some(body)
}

/// `[lower, upper]` of a tolerance that is a numeric range: `[0, 300]`, or
/// `{"type": "range", "range": [0, 300], ...}`.
pub fn numeric_range(tolerance: &Value) -> Option<[f64; 2]> {
    let pair = match tolerance {
        Value::Array(items) => items.as_slice(),
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("range") => {
            map.get("range")?.as_array()?.as_slice()
        }
        _ => return None,
    };
    match pair {
        [lower, upper] => Some([lower.as_f64()?, upper.as_f64()?]),
        _ => None,
    }
}

/// Sends a run's events to every API, each from its own task.
#[derive(Debug)]
pub struct Publisher {
    run: String,
    lanes: Vec<mpsc::UnboundedSender<Value>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Publisher {
    /// Starts one delivery task per API (on the current runtime).
    pub fn start(apis: &[String], api: &Api) -> Publisher {
        let mut lanes = Vec::new();
        let mut tasks = Vec::new();
        for base in apis {
            let (tx, rx) = mpsc::unbounded_channel();
            lanes.push(tx);
            tasks.push(tokio::spawn(deliver(
                api.clone(),
                base.clone(),
                format!("{base}/experiments/events"),
                rx,
            )));
        }
        Publisher {
            run: run_id(),
            lanes,
            tasks: Mutex::new(tasks),
        }
    }

    /// The id every event of this run carries.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Queues `event` for every API still listening; never waits.
    pub fn send(&self, event: &Event) {
        let Some(body) = body(&self.run, event) else {
            return;
        };
        for lane in &self.lanes {
            let _ = lane.send(body.clone());
        }
    }

    /// Waits, at most [`FLUSH_TIMEOUT`], for the events queued to be delivered (each lane ends
    /// after the run's `ended` event); what is left then is dropped.
    pub async fn finish(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(FLUSH_TIMEOUT, all).await.is_err() {
            for abort in aborts {
                abort.abort();
            }
        }
    }
}

/// Unique enough among the runs a dashboard shows: the start time and the process.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{}", nanos, std::process::id())
}

/// Delivers one API's events in order, until the run's end or the first failure.
async fn deliver(api: Api, base: String, url: String, mut rx: mpsc::UnboundedReceiver<Value>) {
    while let Some(body) = rx.recv().await {
        let last = body["type"] == "ended";
        let sent = api
            .request(Method::POST, &url)
            .timeout(REQUEST_TIMEOUT)
            .json(&body)
            .send()
            .await;
        let problem = match sent {
            Ok(r) if r.status().is_success() => None,
            // No such endpoint: Toxiproxy, or a faultline without a dashboard.
            Ok(r)
                if matches!(
                    r.status(),
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ) =>
            {
                return
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or(text);
                Some(format!("{status}: {}", message.trim()))
            }
            Err(e) if e.is_timeout() => Some(format!(
                "no answer within {} ms",
                REQUEST_TIMEOUT.as_millis()
            )),
            Err(e) => Some(root_cause(&e)),
        };
        if let Some(problem) = problem {
            eprintln!(
                "note: {base} gets no live progress of this run for its dashboard: {problem}"
            );
            return;
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    /// A tolerance's numeric range is found in both of its forms, and only there.
    #[test]
    fn numeric_ranges() {
        assert_eq!(numeric_range(&json!([0, 300])), Some([0.0, 300.0]));
        assert_eq!(
            numeric_range(&json!({"type": "range", "range": [1.5, 2], "target": "p99_ms"})),
            Some([1.5, 2.0])
        );
        assert_eq!(numeric_range(&json!([200, 201, 204])), None);
        assert_eq!(numeric_range(&json!(200)), None);
        assert_eq!(
            numeric_range(&json!({"type": "regex", "pattern": "x"})),
            None
        );
    }

    /// A probe's value against its tolerance becomes a `probe` event with the range; a value
    /// too long to show is shortened.
    #[test]
    fn probe_event_carries_value_tolerance_and_range() {
        let event = Event::Tolerance {
            name: "p99".into(),
            value: json!(412.0),
            expected: "p99_ms in [0, 250]".into(),
            met: false,
            step: Step {
                phase: Phase::After,
                index: 0,
            },
            tolerance: json!({"type": "range", "range": [0, 250], "target": "p99_ms"}),
        };
        assert_eq!(
            body("r", &event).unwrap(),
            json!({"type": "probe", "phase": "after", "index": 0, "name": "p99", "value": 412.0,
                   "tolerance": "p99_ms in [0, 250]", "ok": false, "range": [0.0, 250.0],
                   "run": "r"})
        );
        let long = Event::Tolerance {
            name: "page".into(),
            value: json!({"status": 200, "headers": {}, "body": "x".repeat(5000)}),
            expected: "true".into(),
            met: true,
            step: Step {
                phase: Phase::Before,
                index: 1,
            },
            tolerance: json!(true),
        };
        assert_eq!(body("r", &long).unwrap()["value"], "status 200");
    }

    /// The end of a run says its status, deviation, verdict and reason.
    #[test]
    fn ended_event() {
        let event = Event::Finished {
            verdict: Verdict::Aborted,
            status: crate::Status::Aborted,
            deviated: false,
            reason: Some("safeguard 'errors'".into()),
        };
        assert_eq!(
            body("r", &event).unwrap(),
            json!({"type": "ended", "status": "aborted", "deviated": false,
                   "verdict": "aborted", "reason": "safeguard 'errors'", "run": "r"})
        );
        assert_eq!(body("r", &Event::Phase("method")), None);
    }
}
