//! What a person sees while a run goes on, and the short summary after it.
//!
//! On a terminal: one line per finished step, with probe values against their tolerances,
//! under a live status line (progress bar, current step, elapsed time and time left before
//! `--max-duration`). Elsewhere (CI logs, pipes): the same lines, plain, and no status line.

use crate::journal::{Journal, Status, Verdict};
use crate::model::ActivityKind;
use crate::progress::{Planned, Step};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Progress of a run, sent by the runner (to this view, and to the dashboards through
/// [`crate::progress`]).
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        title: String,
        steps: usize,
        max_duration: Option<Duration>,
        /// Every step, in order: safeguards, hypothesis before, method, hypothesis after,
        /// rollbacks.
        plan: Vec<Planned>,
    },
    Phase(&'static str),
    ActivityStarted {
        name: String,
        kind: ActivityKind,
        background: bool,
        step: Step,
    },
    ActivityFinished {
        name: String,
        kind: ActivityKind,
        output: Value,
        error: Option<String>,
        step: Step,
    },
    Tolerance {
        name: String,
        value: Value,
        expected: String,
        met: bool,
        step: Step,
        /// The tolerance, substituted.
        tolerance: Value,
    },
    Pause {
        name: String,
        seconds: f64,
    },
    Stopped(String),
    Restored {
        restored: Vec<String>,
        errors: Vec<String>,
    },
    Finished {
        verdict: Verdict,
        status: Status,
        deviated: bool,
        /// What stopped the run early.
        reason: Option<String>,
    },
}

/// Renders events until the channel closes.
pub async fn render(mut rx: mpsc::UnboundedReceiver<Event>, live: bool) {
    let mut state = State {
        live,
        started: Instant::now(),
        title: String::new(),
        steps: 0,
        done: 0,
        max: None,
        phase: "",
        current: String::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(event) => state.on(event),
                None => break,
            },
            _ = tick.tick(), if live => state.status_line(),
        }
    }
    if live {
        print!("\r\x1b[2K");
        let _ = std::io::stdout().flush();
    }
}

struct State {
    live: bool,
    started: Instant,
    title: String,
    steps: usize,
    done: usize,
    max: Option<Duration>,
    phase: &'static str,
    current: String,
}

impl State {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.live {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
        drop(out);
        if self.live {
            self.status_line();
        }
    }

    fn status_line(&self) {
        let width = 20;
        let filled = (self.done.min(self.steps) * width)
            .checked_div(self.steps)
            .unwrap_or(0);
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
        let elapsed = self.started.elapsed();
        let left = self
            .max
            .map(|m| format!(", {:.0}s left", m.saturating_sub(elapsed).as_secs_f64()))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "\r\x1b[2K[{bar}] {}/{} {} > {}  {:.1}s{left}",
            self.done.min(self.steps),
            self.steps,
            self.phase,
            self.current,
            elapsed.as_secs_f64()
        );
        let _ = out.flush();
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::Started {
                title,
                steps,
                max_duration,
                ..
            } => {
                self.title = title;
                self.steps = steps;
                self.max = max_duration;
                let limit = max_duration
                    .map(|m| format!(" (at most {})", humantime::format_duration(m)))
                    .unwrap_or_default();
                self.line(&format!("Experiment: {}{limit}", self.title));
            }
            Event::Phase(phase) => {
                self.phase = phase;
                self.line(&format!("== {phase}"));
            }
            Event::ActivityStarted {
                name,
                kind,
                background,
                ..
            } => {
                let kind = match kind {
                    ActivityKind::Probe => "probe",
                    ActivityKind::Action => "action",
                };
                let bg = if background { " [in background]" } else { "" };
                self.current = format!("{kind}: {name}{bg}");
                if !self.live {
                    self.line(&format!("  {kind}: {name}{bg}"));
                }
            }
            Event::ActivityFinished {
                name,
                output,
                error,
                ..
            } => {
                self.done += 1;
                match error {
                    Some(e) => self.line(&format!("  x {name}: failed: {e}")),
                    None => self.line(&format!("  ok {name}: {}", short(&output))),
                }
            }
            Event::Tolerance {
                name,
                value,
                expected,
                met,
                ..
            } => {
                let verdict = if met { "within" } else { "NOT within" };
                self.line(&format!(
                    "     {name}: {} {verdict} tolerance ({expected})",
                    short(&value)
                ));
            }
            Event::Pause { name, seconds } => {
                self.current = format!("pausing {seconds}s ({name})");
                self.line(&format!("  pause {seconds}s ({name})"));
            }
            Event::Stopped(why) => self.line(&format!("!! stopping: {why}")),
            Event::Restored { restored, errors } => {
                if restored.is_empty() && errors.is_empty() {
                    self.line("  nothing to restore");
                }
                for r in restored {
                    self.line(&format!("  restored: {r}"));
                }
                for e in errors {
                    self.line(&format!("  COULD NOT RESTORE: {e}"));
                }
            }
            Event::Finished { .. } => {}
        }
    }
}

/// A value on one short line.
pub fn short(value: &Value) -> String {
    let text = match value {
        Value::Object(o) if o.contains_key("status") && o.contains_key("body") => {
            format!("status {}", o["status"])
        }
        Value::Object(o) if o.contains_key("status") && o.contains_key("stdout") => {
            format!("exit status {}", o["status"])
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 100 {
        text.chars().take(97).collect::<String>() + "..."
    } else {
        text
    }
}

/// The few lines a person reads after a run.
pub fn summary(journal: &Journal, journal_path: Option<&str>) -> String {
    let verdict = journal.verdict();
    let title = journal
        .experiment
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("");
    let checked = journal.steady_states.before.is_some();
    let label = match verdict {
        Verdict::Held if !checked => "completed (no steady-state hypothesis to check)",
        other => other.label(),
    };
    let mut out = vec![format!(
        "Result: {} (exit {}) - {title}",
        label.to_uppercase(),
        verdict.exit_code()
    )];
    let describe = |state: &Option<crate::journal::HypothesisRun>| match state {
        None => "not checked".to_string(),
        Some(s) if s.steady_state_met == Some(true) => format!("met ({} probes)", s.probes.len()),
        Some(s) => match s.probes.last() {
            Some(p) if !p.succeeded() => format!(
                "probe '{}' failed: {}",
                p.name(),
                p.exception
                    .as_ref()
                    .and_then(|e| e.first())
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            Some(p) => format!(
                "NOT met: probe '{}' returned {}",
                p.name(),
                short(&p.output)
            ),
            None => "NOT met".into(),
        },
    };
    if journal.steady_states.before.is_some() || journal.steady_states.after.is_some() {
        out.push(format!(
            "Steady state before: {}; after: {}",
            describe(&journal.steady_states.before),
            describe(&journal.steady_states.after)
        ));
    }
    let failed: Vec<&str> = journal
        .run
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| r.name())
        .collect();
    out.push(format!(
        "Method: {} activities run{}",
        journal.run.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", failed: {}", failed.join(", "))
        }
    ));
    for action in journal.failed_actions() {
        out.push(format!(
            "WARNING: action '{}' failed, so its fault may not have been injected: {}",
            action.name(),
            action
                .exception
                .as_ref()
                .and_then(|e| e.first())
                .map(String::as_str)
                .unwrap_or("")
        ));
    }
    if let Some(why) = &journal.faultline.aborted_by {
        out.push(format!("Stopped by: {why}"));
    }
    out.push(format!(
        "Rollbacks: {} run; cleanup restored {} change(s){}",
        journal.rollbacks.len(),
        journal.faultline.restored.len(),
        if journal.faultline.cleanup_errors.is_empty() {
            String::new()
        } else {
            format!(
                ", {} COULD NOT be restored",
                journal.faultline.cleanup_errors.len()
            )
        }
    ));
    if let Some(path) = journal_path {
        out.push(format!("Journal: {path}"));
    }
    out.join("\n")
}
