//! The journal of a run, in Chaos Toolkit's journal format (so its reporting tools read it),
//! plus a `faultline` section (the APIs used, what cleanup restored, what aborted the run), and
//! the verdict and exit code derived from it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::SystemTime;

/// How the run ended, with Chaos Toolkit's four statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran to the end (the hypothesis may still have deviated).
    Completed,
    /// A hypothesis probe could not run, so the hypothesis could not be checked.
    Failed,
    /// Stopped by a safeguard or `--max-duration`.
    Aborted,
    /// Stopped by a signal (Ctrl-C, SIGTERM).
    Interrupted,
}

/// The whole record of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    #[serde(rename = "chaoslib-version")]
    pub chaoslib_version: String,
    pub platform: String,
    pub node: String,
    pub experiment: Value,
    pub start: String,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub duration: Option<f64>,
    pub status: Option<Status>,
    pub deviated: bool,
    pub steady_states: SteadyStates,
    pub run: Vec<Run>,
    pub rollbacks: Vec<Run>,
    #[serde(default)]
    pub faultline: FaultlineSection,
}

/// The hypothesis as checked before, during and after the method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SteadyStates {
    pub before: Option<HypothesisRun>,
    pub after: Option<HypothesisRun>,
    pub during: Vec<HypothesisRun>,
}

/// One check of the hypothesis.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HypothesisRun {
    pub steady_state_met: Option<bool>,
    pub probes: Vec<Run>,
}

/// One activity's execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub activity: Value,
    pub output: Value,
    pub start: String,
    pub end: String,
    pub duration: f64,
    /// `succeeded` or `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_met: Option<bool>,
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    /// The activity's name as written.
    pub fn name(&self) -> &str {
        self.activity
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// What faultline adds to the journal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FaultlineSection {
    /// The API of every faultline instance the run acted on.
    pub apis: Vec<String>,
    /// What automatic cleanup changed back, one line each.
    pub restored: Vec<String>,
    /// What cleanup could not change back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_errors: Vec<String>,
    /// The safeguard or limit that stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
    /// Every safeguard probe execution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safeguards: Vec<Run>,
}

impl Journal {
    pub fn new(experiment: Value) -> Journal {
        Journal {
            chaoslib_version: format!("faultline-experiment {}", env!("CARGO_PKG_VERSION")),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            node: hostname(),
            experiment,
            start: timestamp(SystemTime::now()),
            end: None,
            duration: None,
            status: None,
            deviated: false,
            steady_states: SteadyStates::default(),
            run: Vec::new(),
            rollbacks: Vec::new(),
            faultline: FaultlineSection::default(),
        }
    }

    /// The outcome for people and for CI.
    pub fn verdict(&self) -> Verdict {
        match self.status {
            Some(Status::Interrupted) => Verdict::Interrupted,
            Some(Status::Aborted) => Verdict::Aborted,
            _ if self.deviated => Verdict::Deviated,
            Some(Status::Failed) => Verdict::Failed,
            _ if self
                .steady_states
                .before
                .as_ref()
                .is_some_and(|b| b.steady_state_met == Some(false)) =>
            {
                Verdict::NotSteadyBefore
            }
            _ if !self.failed_actions().is_empty() => Verdict::ActionFailed,
            _ => Verdict::Held,
        }
    }

    /// The method's actions that failed (an API that refused or was gone): the fault they
    /// were to inject may not be in place, so a hypothesis that held proves nothing.
    pub fn failed_actions(&self) -> Vec<&Run> {
        self.run
            .iter()
            .filter(|r| !r.succeeded())
            .filter(|r| r.activity.get("type").and_then(Value::as_str) == Some("action"))
            .collect()
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The hypothesis held before and after the method (or there was none to check).
    Held,
    /// The hypothesis held before the method and not after it.
    Deviated,
    /// The system was not in its steady state to begin with; the method did not run.
    NotSteadyBefore,
    /// A hypothesis probe could not run.
    Failed,
    /// The hypothesis held, but a method action failed, so the fault may not have been
    /// injected (the journal still says `completed`, as Chaos Toolkit's would).
    ActionFailed,
    /// A safeguard or `--max-duration` stopped the run.
    Aborted,
    /// A signal stopped the run (after rollbacks).
    Interrupted,
}

impl Verdict {
    /// The exit code CI sees: 0 held, 2 deviated (or not steady to begin with), 3 aborted,
    /// 1 error (a hypothesis probe or a method action failed), 130 interrupted.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Held => 0,
            Verdict::Deviated | Verdict::NotSteadyBefore => 2,
            Verdict::Failed | Verdict::ActionFailed => 1,
            Verdict::Aborted => 3,
            Verdict::Interrupted => 130,
        }
    }

    /// The verdict as one word, as the dashboard's events carry it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::Deviated => "deviated",
            Verdict::NotSteadyBefore => "not_steady_before",
            Verdict::Failed => "failed",
            Verdict::ActionFailed => "action_failed",
            Verdict::Aborted => "aborted",
            Verdict::Interrupted => "interrupted",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Held => "hypothesis held",
            Verdict::Deviated => "hypothesis deviated",
            Verdict::NotSteadyBefore => "not in steady state before the method",
            Verdict::Failed => "failed: a hypothesis probe could not run",
            Verdict::ActionFailed => "error: a method action failed",
            Verdict::Aborted => "aborted",
            Verdict::Interrupted => "interrupted",
        }
    }
}

/// ISO 8601 with the `+00:00` offset Python's `isoformat()` writes.
pub fn timestamp(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_micros(t).to_string();
    match s.strip_suffix('Z') {
        Some(base) => format!("{base}+00:00"),
        None => s,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn journal() -> Journal {
        Journal::new(json!({"title": "t"}))
    }

    /// The exit codes are the CI contract.
    #[test]
    fn exit_codes() {
        let mut j = journal();
        j.status = Some(Status::Completed);
        assert_eq!(j.verdict().exit_code(), 0);
        j.deviated = true;
        assert_eq!(j.verdict().exit_code(), 2);
        j.status = Some(Status::Aborted);
        assert_eq!(j.verdict().exit_code(), 3);
        j.status = Some(Status::Interrupted);
        assert_eq!(j.verdict().exit_code(), 130);
        j.status = Some(Status::Failed);
        j.deviated = false;
        assert_eq!(j.verdict().exit_code(), 1);
    }

    /// A failed method action turns a held hypothesis into an error (exit 1), without
    /// changing the Chaos Toolkit status; a failed method probe does not.
    #[test]
    fn failed_method_action_is_an_error() {
        let run = |kind: &str, status: &str| Run {
            activity: json!({"type": kind, "name": "x"}),
            output: Value::Null,
            start: String::new(),
            end: String::new(),
            duration: 0.0,
            status: status.into(),
            exception: None,
            tolerance_met: None,
        };
        let mut j = journal();
        j.status = Some(Status::Completed);
        j.run = vec![run("action", "succeeded"), run("probe", "failed")];
        assert_eq!(j.verdict(), Verdict::Held);
        j.run.push(run("action", "failed"));
        assert_eq!(j.verdict(), Verdict::ActionFailed);
        assert_eq!(j.verdict().exit_code(), 1);
        j.deviated = true;
        assert_eq!(j.verdict(), Verdict::Deviated, "a deviation still says so");
    }

    /// A steady state not met before the method is not a pass.
    #[test]
    fn unmet_before_is_not_held() {
        let mut j = journal();
        j.status = Some(Status::Completed);
        j.steady_states.before = Some(HypothesisRun {
            steady_state_met: Some(false),
            probes: vec![],
        });
        assert_eq!(j.verdict(), Verdict::NotSteadyBefore);
        assert_eq!(j.verdict().exit_code(), 2);
    }

    /// The journal has Chaos Toolkit's top-level keys and timestamps with an offset.
    #[test]
    fn chaos_toolkit_shape() {
        let v = serde_json::to_value(journal()).unwrap();
        for key in [
            "chaoslib-version",
            "platform",
            "node",
            "experiment",
            "start",
            "status",
            "deviated",
            "steady_states",
            "run",
            "rollbacks",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v["start"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(v["steady_states"]["during"], json!([]));
    }
}
