//! `POST /experiments/events`: the progress of a chaos experiment, sent by its runner
//! (`faultline experiment run` publishes to every server it acts on), re-published on
//! `/events` for the dashboard as `experiment_started`, `experiment_activity`,
//! `experiment_probe` and `experiment_ended`.
//!
//! An event is checked, then passed on to whoever listens; the server also keeps the events
//! of the most recent runs ([`History`]), which `GET /experiments/events` serves, so a
//! dashboard opened (or reconnected) midway through a run can show it from its start. Each body is one event, an object with the run's id (`run`, chosen by the runner) and a
//! `type` that says which other fields it has:
//!
//! - `started`: `title`, and `steps`, the plan: `{phase, name, kind}` in order;
//! - `activity`: a step (`phase` and its `index` within the phase) started (`status`
//!   `running`) or finished (`succeeded`, or `failed` with an `error`), with its `name` and
//!   `kind`;
//! - `probe`: a probe's `value` against its tolerance (`tolerance` in words, `range` when it
//!   is numeric) and whether it was `ok`;
//! - `ended`: the journal's `status`, whether the hypothesis `deviated`, the runner's
//!   `verdict` and, for a stopped run, the `reason`.

use super::error::ApiError;
use super::fields::{self, Known};
use super::models::{json_kind, parse_body, Fields};
use super::AppState;
use crate::events::{Event, EventData};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The longest run id accepted.
pub const MAX_RUN_ID: usize = 64;

/// The event types, as the body's `type` names them.
pub const TYPES: &[&str] = &["started", "activity", "probe", "ended"];
/// Where a step belongs in a run.
pub const PHASES: &[&str] = &["safeguards", "before", "method", "after", "rollbacks"];
pub const KINDS: &[&str] = &["probe", "action"];
/// An activity's state.
pub const ACTIVITY_STATUSES: &[&str] = &["running", "succeeded", "failed"];
/// The journal's status, as Chaos Toolkit names it.
pub const RUN_STATUSES: &[&str] = &["completed", "failed", "aborted", "interrupted"];
/// The runner's verdict (its exit code follows from it).
pub const VERDICTS: &[&str] = &[
    "held",
    "deviated",
    "not_steady_before",
    "failed",
    "action_failed",
    "aborted",
    "interrupted",
];

/// One checked event, as `/events` carries it in its `detail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Progress {
    Started {
        run: String,
        title: String,
        steps: Vec<Step>,
    },
    Activity {
        run: String,
        phase: &'static str,
        index: u64,
        name: String,
        kind: &'static str,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Probe {
        run: String,
        phase: &'static str,
        index: u64,
        name: String,
        value: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        tolerance: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        range: Option<[f64; 2]>,
        ok: bool,
    },
    Ended {
        run: String,
        status: &'static str,
        deviated: bool,
        verdict: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub phase: &'static str,
    pub name: String,
    pub kind: &'static str,
}

impl Progress {
    /// The event's name on `/events`.
    pub fn kind(&self) -> &'static str {
        match self {
            Progress::Started { .. } => "experiment_started",
            Progress::Activity { .. } => "experiment_activity",
            Progress::Probe { .. } => "experiment_probe",
            Progress::Ended { .. } => "experiment_ended",
        }
    }
}

/// The runs whose events `GET /experiments/events` serves: the most recent by start.
pub const HISTORY_RUNS: usize = 4;
/// The events kept of one run; beyond it, the oldest go first (its `started` stays).
pub const HISTORY_EVENTS_PER_RUN: usize = 500;
/// The bytes (as JSON) kept of one run, whatever clients send; an event larger than this is
/// passed on live but not kept.
pub const HISTORY_BYTES_PER_RUN: usize = 256 * 1024;

/// The events of the most recent runs, as `/events` carried them (with their `seq`), bounded
/// in runs, events and bytes.
#[derive(Debug, Default)]
pub struct History {
    runs: Mutex<VecDeque<RunHistory>>,
}

#[derive(Debug)]
struct RunHistory {
    run: String,
    /// The `experiment_started` event, kept while the run is.
    started: Option<(Event, usize)>,
    /// The others, oldest first, each with its size.
    events: VecDeque<(Event, usize)>,
    bytes: usize,
}

impl History {
    /// Numbers and publishes the event on `bus` and keeps it; under one lock, so the history
    /// is in `seq` order.
    fn publish(&self, bus: &crate::events::EventBus, progress: &Progress, data: EventData<'_>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let event = bus.publish_numbered(progress.kind(), data);
        let size = serde_json::to_vec(&event).map_or(usize::MAX, |json| json.len());
        if size > HISTORY_BYTES_PER_RUN {
            return;
        }
        let id = progress.run();
        let started = matches!(progress, Progress::Started { .. });
        let position = runs.iter().position(|r| r.run == id);
        // A run starts anew with its `started` (the dashboard rebuilds it then too).
        if started || position.is_none() {
            if let Some(i) = position {
                runs.remove(i);
            }
            runs.push_back(RunHistory {
                run: id.to_string(),
                started: None,
                events: VecDeque::new(),
                bytes: 0,
            });
            while runs.len() > HISTORY_RUNS {
                runs.pop_front();
            }
        }
        let Some(run) = runs.iter_mut().find(|r| r.run == id) else {
            return;
        };
        run.bytes += size;
        if started {
            run.started = Some((event, size));
        } else {
            run.events.push_back((event, size));
        }
        while run.events.len() + usize::from(run.started.is_some()) > HISTORY_EVENTS_PER_RUN
            || run.bytes > HISTORY_BYTES_PER_RUN
        {
            let Some((_, size)) = run.events.pop_front() else {
                break;
            };
            run.bytes -= size;
        }
    }

    /// Every kept event, in `seq` order.
    pub fn events(&self) -> Vec<Event> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let mut events: Vec<Event> = runs
            .iter()
            .flat_map(|r| r.started.iter().chain(&r.events))
            .map(|(event, _)| event.clone())
            .collect();
        drop(runs);
        events.sort_by_key(|event| event.seq);
        events
    }
}

impl Progress {
    /// The run's id.
    pub fn run(&self) -> &str {
        match self {
            Progress::Started { run, .. }
            | Progress::Activity { run, .. }
            | Progress::Probe { run, .. }
            | Progress::Ended { run, .. } => run,
        }
    }
}

/// `GET /experiments/events`: the kept events of the most recent runs, in `seq` order, as
/// `/events` carried them.
pub async fn history(State(state): State<AppState>) -> Response {
    Json(state.experiments.events()).into_response()
}

/// `POST /experiments/events`: checks the event, publishes and keeps it; 204.
pub async fn publish(State(state): State<AppState>, request: Request) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string());
    // The guard has buffered the body within the size limit.
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let progress = match parse_body(&body).and_then(|v| parse(&v, state.options.unknown_keys)) {
        Ok(progress) => progress,
        Err(e) => return e.into_response(),
    };
    state.experiments.publish(
        state.registry.events(),
        &progress,
        EventData {
            client: remote,
            detail: serde_json::to_value(&progress).ok(),
            ..EventData::default()
        },
    );
    StatusCode::NO_CONTENT.into_response()
}

/// Reads one event; the error names what was wrong and what is valid.
pub fn parse(value: &Value, policy: fields::UnknownKeys) -> Result<Progress, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::BadBody(format!(
            "an experiment event must be a JSON object, got {}",
            json_kind(value)
        )));
    };
    let kind = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("type"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null());
    let kind = match kind {
        None => return Err(missing("type", "experiment event")),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ApiError::BadBody(format!(
                "field \"type\" of experiment event must be one of: {}; got {}",
                TYPES.join(", "),
                json_kind(other)
            )))
        }
    };
    let known = match kind {
        "started" => &fields::EXPERIMENT_STARTED,
        "activity" => &fields::EXPERIMENT_ACTIVITY,
        "probe" => &fields::EXPERIMENT_PROBE,
        "ended" => &fields::EXPERIMENT_ENDED,
        other => {
            return Err(ApiError::BadBody(format!(
                "field \"type\" of experiment event must be one of: {}; got \"{other}\"",
                TYPES.join(", ")
            )))
        }
    };
    let f = Reader::of(value, known, policy)?;
    let run = f.required_string("run")?;
    let length = run.chars().count();
    if length == 0 || length > MAX_RUN_ID {
        return Err(ApiError::BadBody(format!(
            "field \"run\" of {} must be 1 to {MAX_RUN_ID} characters, got {length}",
            known.object
        )));
    }
    Ok(match kind {
        "started" => Progress::Started {
            run,
            title: f.required_string("title")?,
            steps: match f.fields.get("steps") {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| step(item, policy))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => return Err(f.fields.mismatch("steps", other, "a list of steps")),
            },
        },
        "activity" => {
            let status = f.word("status", ACTIVITY_STATUSES)?;
            Progress::Activity {
                run,
                phase: f.word("phase", PHASES)?,
                index: f.index()?,
                name: f.required_string("name")?,
                kind: f.word("kind", KINDS)?,
                status,
                error: f.fields.string("error")?,
            }
        }
        "probe" => Progress::Probe {
            run,
            phase: f.word("phase", PHASES)?,
            index: f.index()?,
            name: f.required_string("name")?,
            value: f.fields.get("value").cloned().unwrap_or(Value::Null),
            tolerance: f.fields.string("tolerance")?,
            range: f.range()?,
            ok: f.required_bool("ok")?,
        },
        _ => Progress::Ended {
            run,
            status: f.word("status", RUN_STATUSES)?,
            deviated: f.required_bool("deviated")?,
            verdict: f.word("verdict", VERDICTS)?,
            reason: f.fields.string("reason")?,
        },
    })
}

fn step(value: &Value, policy: fields::UnknownKeys) -> Result<Step, ApiError> {
    if !value.is_object() {
        return Err(ApiError::BadBody(format!(
            "each of \"steps\" must be an object with phase, name and kind, got {}",
            json_kind(value)
        )));
    }
    let f = Reader::of(value, &fields::EXPERIMENT_STEP, policy)?;
    Ok(Step {
        phase: f.word("phase", PHASES)?,
        name: f.required_string("name")?,
        kind: f.word("kind", KINDS)?,
    })
}

fn missing(key: &str, object: &str) -> ApiError {
    ApiError::BadBody(format!("missing required field \"{key}\" in {object}"))
}

/// The fields of one object, with the required ones and the word lists checked.
struct Reader<'a> {
    fields: Fields<'a>,
    object: &'static str,
}

impl<'a> Reader<'a> {
    fn of(value: &'a Value, known: &Known, policy: fields::UnknownKeys) -> Result<Self, ApiError> {
        Ok(Reader {
            fields: Fields::of(value, known, policy)?,
            object: known.object,
        })
    }

    fn required_string(&self, key: &str) -> Result<String, ApiError> {
        self.fields
            .string(key)?
            .ok_or_else(|| missing(key, self.object))
    }

    fn required_bool(&self, key: &str) -> Result<bool, ApiError> {
        self.fields
            .bool(key)?
            .ok_or_else(|| missing(key, self.object))
    }

    /// A required string that must be one of `words`.
    fn word(&self, key: &str, words: &[&'static str]) -> Result<&'static str, ApiError> {
        let given = self.required_string(key)?;
        words.iter().find(|w| **w == given).copied().ok_or_else(|| {
            ApiError::BadBody(format!(
                "field \"{key}\" of {} must be one of: {}; got \"{given}\"",
                self.object,
                words.join(", ")
            ))
        })
    }

    /// The step's position within its phase, from 0.
    fn index(&self) -> Result<u64, ApiError> {
        match self.fields.get("index") {
            None => Err(missing("index", self.object)),
            Some(v) => v.as_u64().ok_or_else(|| {
                ApiError::BadBody(format!(
                    "field \"index\" of {} must be a whole number from 0, got {v}",
                    self.object
                ))
            }),
        }
    }

    /// `[lower, upper]`, two numbers.
    fn range(&self) -> Result<Option<[f64; 2]>, ApiError> {
        let Some(value) = self.fields.get("range") else {
            return Ok(None);
        };
        match value.as_array().map(Vec::as_slice) {
            Some([lower, upper]) => match (lower.as_f64(), upper.as_f64()) {
                (Some(lower), Some(upper)) => Ok(Some([lower, upper])),
                _ => Err(self.bad_range(value)),
            },
            _ => Err(self.bad_range(value)),
        }
    }

    fn bad_range(&self, value: &Value) -> ApiError {
        ApiError::BadBody(format!(
            "field \"range\" of {} must be two numbers, [lower, upper], got {value}",
            self.object
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fields::UnknownKeys;
    use serde_json::json;

    fn read(value: Value) -> Result<Progress, String> {
        parse(&value, UnknownKeys::Reject).map_err(|e| e.to_string())
    }

    /// Each type reads its own fields; the detail on `/events` is the event without `type`.
    #[test]
    fn each_type_reads_its_fields() {
        let started = read(json!({"run": "r1", "type": "started", "title": "t",
            "steps": [{"phase": "before", "name": "p", "kind": "probe"}]}))
        .unwrap();
        assert_eq!(started.kind(), "experiment_started");
        assert_eq!(
            serde_json::to_value(&started).unwrap(),
            json!({"run": "r1", "title": "t", "steps": [{"phase": "before", "name": "p", "kind": "probe"}]})
        );
        let probe = read(
            json!({"run": "r1", "type": "probe", "phase": "after", "index": 0,
            "name": "p", "value": 412.5, "tolerance": "p99_ms in [0, 250]", "range": [0, 250],
            "ok": false}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&probe).unwrap(),
            json!({"run": "r1", "phase": "after", "index": 0, "name": "p", "value": 412.5,
                   "tolerance": "p99_ms in [0, 250]", "range": [0.0, 250.0], "ok": false})
        );
        let ended = read(json!({"run": "r1", "type": "ended", "status": "completed",
            "deviated": true, "verdict": "deviated"}))
        .unwrap();
        assert_eq!(ended.kind(), "experiment_ended");
    }

    fn keep(history: &History, bus: &crate::events::EventBus, event: Value) {
        let progress = read(event).unwrap();
        let detail = serde_json::to_value(&progress).ok();
        history.publish(
            bus,
            &progress,
            EventData {
                detail,
                ..EventData::default()
            },
        );
    }

    /// A run's kept events stay within its byte budget, its `started` first; an event larger
    /// than the budget is not kept at all.
    #[test]
    fn history_stays_within_its_byte_budget() {
        let (history, bus) = (History::default(), crate::events::EventBus::default());
        keep(
            &history,
            &bus,
            json!({"run": "r", "type": "started", "title": "t"}),
        );
        let big = "x".repeat(HISTORY_BYTES_PER_RUN / 8);
        for _ in 0..20 {
            keep(
                &history,
                &bus,
                json!({"run": "r", "type": "probe", "phase": "method",
                "index": 0, "name": "p", "value": big, "ok": true}),
            );
        }
        let huge = "x".repeat(HISTORY_BYTES_PER_RUN);
        keep(
            &history,
            &bus,
            json!({"run": "r", "type": "probe", "phase": "method",
            "index": 0, "name": "p", "value": huge, "ok": true}),
        );
        let kept = history.events();
        let bytes: usize = kept
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len())
            .sum();
        assert!(bytes <= HISTORY_BYTES_PER_RUN, "{bytes}");
        assert_eq!(kept[0].kind, "experiment_started");
        assert_eq!(
            kept.len(),
            8,
            "seven of the large probes fit after the start"
        );
        assert_eq!(
            kept.last().unwrap().seq,
            21,
            "the newest kept, the huge one not"
        );
    }

    /// Bad input is named, with what is valid.
    #[test]
    fn bad_input_is_named() {
        let cases = [
            (json!([]), "an experiment event must be a JSON object, got an array"),
            (json!({"run": "r"}), "missing required field \"type\" in experiment event"),
            (
                json!({"run": "r", "type": "begun"}),
                "field \"type\" of experiment event must be one of: started, activity, probe, ended; got \"begun\"",
            ),
            (
                json!({"run": "r", "type": "started", "title": "t", "titel": "t"}),
                "unknown field \"titel\" in experiment event \"started\"; expected one of: run, type, title, steps",
            ),
            (
                json!({"type": "started", "title": "t"}),
                "missing required field \"run\" in experiment event \"started\"",
            ),
            (
                json!({"run": "", "type": "started", "title": "t"}),
                "field \"run\" of experiment event \"started\" must be 1 to 64 characters, got 0",
            ),
            (
                json!({"run": "r", "type": "activity", "phase": "during", "index": 0,
                       "name": "a", "kind": "action", "status": "running"}),
                "field \"phase\" of experiment event \"activity\" must be one of: safeguards, before, method, after, rollbacks; got \"during\"",
            ),
            (
                json!({"run": "r", "type": "probe", "phase": "before", "index": -1,
                       "name": "p", "ok": true}),
                "field \"index\" of experiment event \"probe\" must be a whole number from 0, got -1",
            ),
            (
                json!({"run": "r", "type": "probe", "phase": "before", "index": 0,
                       "name": "p", "ok": true, "range": [1]}),
                "field \"range\" of experiment event \"probe\" must be two numbers, [lower, upper], got [1]",
            ),
            (
                json!({"run": "r", "type": "started", "title": "t",
                       "steps": [{"phase": "before", "name": "p", "kind": "probe", "x": 1}]}),
                "unknown field \"x\" in experiment step; expected one of: phase, name, kind",
            ),
        ];
        for (body, message) in cases {
            let error = read(body.clone()).unwrap_err();
            assert!(error.ends_with(message), "{body}: {error}");
        }
    }
}
