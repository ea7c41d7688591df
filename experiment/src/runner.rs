//! Running an experiment: safeguards, the steady state before, the method, the steady state
//! after, then always the rollbacks and the automatic cleanup, recorded in the journal.
//!
//! The order and the decisions follow chaoslib's `Runner`: a hypothesis not met before the
//! method skips it; one not met after it marks the run deviated; a probe that fails marks it
//! failed. On top of that, a [`Stopper`] ends the run at once when a safeguard sees a value out
//! of tolerance, `--max-duration` passes, or a signal arrives: the activity under way is
//! abandoned, and rollbacks and cleanup still run. What the activities do is behind
//! [`Execute`], so this file decides and [`crate::providers`] does the I/O.

use crate::journal::{timestamp, HypothesisRun, Journal, Run, Status};
use crate::model::{Activity, Experiment, PauseValue};
use crate::progress::{Phase, Planned, Publisher, Step};
use crate::providers::{self, Context};
use crate::tolerance;
use crate::view::Event;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};

/// Why a run was stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A signal: the journal says `interrupted`.
    Interrupted(String),
    /// A safeguard or the time limit: the journal says `aborted`.
    Aborted(String),
}

impl Stop {
    pub fn reason(&self) -> &str {
        match self {
            Stop::Interrupted(r) | Stop::Aborted(r) => r,
        }
    }
}

/// Ends a run early; the first reason given wins. Clones share one state.
#[derive(Debug, Clone)]
pub struct Stopper {
    tx: Arc<watch::Sender<Option<Stop>>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper::new()
    }
}

impl Stopper {
    pub fn new() -> Stopper {
        Stopper {
            tx: Arc::new(watch::channel(None).0),
        }
    }

    /// Asks the run to stop (ignored if it already was).
    pub fn stop(&self, why: Stop) {
        self.tx.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(why);
                true
            } else {
                false
            }
        });
    }

    pub fn stopped(&self) -> Option<Stop> {
        self.tx.borrow().clone()
    }

    /// Resolves once the run is asked to stop.
    pub async fn wait(&self) -> Stop {
        let mut rx = self.tx.subscribe();
        let stop = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|s| s.clone());
        match stop {
            Some(stop) => stop,
            // The sender lives as long as this stopper, so this is not reached.
            None => std::future::pending().await,
        }
    }
}

/// Carries out one activity; the real one is [`NativeExecutor`].
pub trait Execute: Send + Sync {
    fn execute<'a>(&'a self, activity: &'a Activity) -> BoxFuture<'a, Result<Value, String>>;
    /// `${name}` substitution with the run's configuration (identity by default).
    fn substitute(&self, value: &Value) -> Value {
        value.clone()
    }
}

/// Runs activities with the native providers against a [`Context`].
pub struct NativeExecutor(pub Arc<Context>);

impl Execute for NativeExecutor {
    fn execute<'a>(&'a self, activity: &'a Activity) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(providers::execute(activity, &self.0))
    }

    fn substitute(&self, value: &Value) -> Value {
        self.0.substitute(value)
    }
}

/// Options for one run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Abort the run once this much time has passed.
    pub max_duration: Option<Duration>,
    /// Lets the caller (a signal handler) stop the run.
    pub stopper: Stopper,
    /// Progress for a view.
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// The same progress, for the dashboards of the servers the run acts on.
    pub progress: Option<Arc<Publisher>>,
}

#[derive(Clone)]
struct Runner {
    exec: Arc<dyn Execute>,
    stopper: Stopper,
    events: Option<mpsc::UnboundedSender<Event>>,
    progress: Option<Arc<Publisher>>,
    safeguard_runs: Arc<Mutex<Vec<Run>>>,
}

/// Runs `experiment` (whose file text is `document`) and returns its journal; `cleanup`, when
/// given, puts back what the run changed on the APIs after the rollbacks.
pub async fn run(
    experiment: &Experiment,
    document: Value,
    exec: Arc<dyn Execute>,
    cleanup: Option<&Context>,
    options: Options,
) -> Journal {
    let started = Instant::now();
    let runner = Runner {
        exec,
        stopper: options.stopper.clone(),
        events: options.events.clone(),
        progress: options.progress.clone(),
        safeguard_runs: Arc::default(),
    };
    let mut journal = Journal::new(document);
    if let Some(ctx) = cleanup {
        journal.faultline.apis = ctx.apis.clone();
    }
    let probes = experiment
        .steady_state_hypothesis
        .as_ref()
        .map(|h| h.probes.as_slice())
        .unwrap_or_default();
    runner.emit(Event::Started {
        title: experiment.title.clone(),
        steps: probes.len() * 2 + experiment.method.len() + experiment.rollbacks.len(),
        max_duration: options.max_duration,
        plan: plan(experiment),
    });
    let limit = options.max_duration.map(|limit| {
        let stopper = runner.stopper.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stopper.stop(Stop::Aborted(format!(
                "--max-duration {} reached",
                humantime::format_duration(limit)
            )));
        })
    });

    let safeguards = runner.start_safeguards(experiment).await;

    let mut proceed = runner.stopper.stopped().is_none();
    if proceed && !probes.is_empty() {
        runner.emit(Event::Phase("steady state before"));
        if let Some(state) = runner.hypothesis(probes, Phase::Before).await {
            proceed = state.steady_state_met == Some(true);
            if !proceed {
                journal.status = Some(status_of_unmet(&state));
            }
            journal.steady_states.before = Some(state);
        }
    }
    if proceed && runner.stopper.stopped().is_none() {
        runner.emit(Event::Phase("method"));
        journal.run = runner.method(&experiment.method).await;
        if runner.stopper.stopped().is_none() && !probes.is_empty() {
            runner.emit(Event::Phase("steady state after"));
            if let Some(state) = runner.hypothesis(probes, Phase::After).await {
                if state.steady_state_met != Some(true) && runner.stopper.stopped().is_none() {
                    journal.deviated = true;
                    journal.status = Some(status_of_unmet(&state));
                }
                journal.steady_states.after = Some(state);
            }
        }
    }

    for task in safeguards {
        task.abort();
    }
    if let Some(limit) = limit {
        limit.abort();
    }
    journal.faultline.safeguards = runner.safeguard_runs.lock().unwrap().clone();
    match runner.stopper.stopped() {
        Some(Stop::Interrupted(why)) => {
            journal.status = Some(Status::Interrupted);
            journal.faultline.aborted_by = Some(why.clone());
            runner.emit(Event::Stopped(why));
        }
        Some(Stop::Aborted(why)) => {
            journal.status = Some(Status::Aborted);
            journal.faultline.aborted_by = Some(why.clone());
            runner.emit(Event::Stopped(why));
        }
        None => {}
    }

    // Rollbacks always run, and are not cut short by the stop that ended the method.
    if !experiment.rollbacks.is_empty() {
        runner.emit(Event::Phase("rollbacks"));
        for (index, activity) in experiment.rollbacks.iter().enumerate() {
            let step = Step {
                phase: Phase::Rollbacks,
                index,
            };
            if let Some(run) = runner.activity(activity, false, step).await {
                journal.rollbacks.push(run);
            }
        }
    }
    if let Some(ctx) = cleanup {
        runner.emit(Event::Phase("cleanup"));
        let (restored, errors) = ctx.ledger.restore(&ctx.api).await;
        runner.emit(Event::Restored {
            restored: restored.clone(),
            errors: errors.clone(),
        });
        journal.faultline.restored = restored;
        journal.faultline.cleanup_errors = errors;
    }

    journal.status.get_or_insert(Status::Completed);
    journal.end = Some(timestamp(SystemTime::now()));
    journal.duration = Some(started.elapsed().as_secs_f64());
    runner.emit(Event::Finished {
        verdict: journal.verdict(),
        status: journal.status.unwrap_or(Status::Completed),
        deviated: journal.deviated,
        reason: journal.faultline.aborted_by.clone(),
    });
    journal
}

/// Every step of `experiment`, in the order they can run.
fn plan(experiment: &Experiment) -> Vec<Planned> {
    let probes = experiment
        .steady_state_hypothesis
        .as_ref()
        .map(|h| h.probes.as_slice())
        .unwrap_or_default();
    let phases: [(Phase, Vec<&Activity>); 5] = [
        (Phase::Safeguards, experiment.safeguards().collect()),
        (Phase::Before, probes.iter().collect()),
        (Phase::Method, experiment.method.iter().collect()),
        (Phase::After, probes.iter().collect()),
        (Phase::Rollbacks, experiment.rollbacks.iter().collect()),
    ];
    phases
        .into_iter()
        .flat_map(|(phase, activities)| {
            activities.into_iter().map(move |a| Planned {
                phase,
                name: a.name.clone(),
                kind: a.kind,
            })
        })
        .collect()
}

/// chaoslib: an unmet hypothesis is `failed` when a probe could not run, else `completed`.
fn status_of_unmet(state: &HypothesisRun) -> Status {
    if state.probes.iter().any(|p| !p.succeeded()) {
        Status::Failed
    } else {
        Status::Completed
    }
}

impl Runner {
    fn emit(&self, event: Event) {
        if let Some(progress) = &self.progress {
            progress.send(&event);
        }
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Checks every probe in order; stops at the first that fails or is out of tolerance.
    /// `None` when the run was stopped before it finished.
    async fn hypothesis(&self, probes: &[Activity], phase: Phase) -> Option<HypothesisRun> {
        let mut state = HypothesisRun {
            steady_state_met: None,
            probes: Vec::new(),
        };
        for (index, probe) in probes.iter().enumerate() {
            let step = Step { phase, index };
            let mut run = self.activity(probe, true, step).await?;
            if self.stopper.stopped().is_some() {
                return None;
            }
            let met = run.succeeded() && self.tolerance_met(probe, &run, step);
            run.tolerance_met = Some(met);
            state.probes.push(run);
            if !met {
                state.steady_state_met = Some(false);
                return Some(state);
            }
        }
        state.steady_state_met = Some(true);
        Some(state)
    }

    fn tolerance_met(&self, probe: &Activity, run: &Run, step: Step) -> bool {
        let Some(tolerance) = &probe.tolerance else {
            return true;
        };
        let tolerance = self.exec.substitute(&tolerance.0);
        let met = tolerance::within(&tolerance, &run.output).unwrap_or(false);
        self.emit(Event::Tolerance {
            name: probe.name.clone(),
            value: focus(&tolerance, &run.output),
            expected: tolerance::describe(&tolerance),
            met,
            step,
            tolerance,
        });
        met
    }

    /// The method's activities in order; background ones run alongside and are awaited at
    /// the end. A stop abandons what is under way.
    async fn method(&self, activities: &[Activity]) -> Vec<Run> {
        let mut runs = Vec::new();
        let mut background = Vec::new();
        for (index, activity) in activities.iter().enumerate() {
            if self.stopper.stopped().is_some() {
                break;
            }
            let step = Step {
                phase: Phase::Method,
                index,
            };
            if activity.background {
                let me = self.clone();
                let activity = activity.clone();
                background.push(tokio::spawn(async move {
                    me.activity(&activity, true, step).await
                }));
            } else if let Some(run) = self.activity(activity, true, step).await {
                // A method probe's tolerance does not decide anything (as in Chaos Toolkit),
                // but its value against it is worth showing.
                if run.succeeded() && activity.tolerance.is_some() {
                    self.tolerance_met(activity, &run, step);
                }
                runs.push(run);
            }
        }
        for task in background {
            let stop = self.stopper.clone();
            let abort = task.abort_handle();
            tokio::select! {
                done = task => {
                    if let Ok(Some(run)) = done {
                        runs.push(run);
                    }
                }
                _ = stop.wait() => abort.abort(),
            }
        }
        runs
    }

    /// One activity with its pauses. `None` if the run was stopped before it started.
    async fn activity(&self, activity: &Activity, interruptible: bool, step: Step) -> Option<Run> {
        let pauses = activity.pauses.clone().unwrap_or_default();
        if let Some(before) = &pauses.before {
            if !self.pause(before, &activity.name, interruptible).await {
                return None;
            }
        }
        if interruptible && self.stopper.stopped().is_some() {
            return None;
        }
        self.emit(Event::ActivityStarted {
            name: activity.name.clone(),
            kind: activity.kind,
            background: activity.background,
            step,
        });
        let started_at = SystemTime::now();
        let started = Instant::now();
        let result = if interruptible {
            tokio::select! {
                r = self.exec.execute(activity) => r,
                stop = self.stopper.wait() => Err(format!("stopped: {}", stop.reason())),
            }
        } else {
            self.exec.execute(activity).await
        };
        let run = Run {
            activity: serde_json::to_value(activity).unwrap_or(Value::Null),
            output: result.as_ref().cloned().unwrap_or(Value::Null),
            start: timestamp(started_at),
            end: timestamp(SystemTime::now()),
            duration: started.elapsed().as_secs_f64(),
            status: if result.is_ok() {
                "succeeded"
            } else {
                "failed"
            }
            .into(),
            exception: result
                .as_ref()
                .err()
                .map(|e| vec![format!("ActivityFailed: {e}")]),
            tolerance_met: None,
        };
        self.emit(Event::ActivityFinished {
            name: activity.name.clone(),
            kind: activity.kind,
            output: run.output.clone(),
            error: result.err(),
            step,
        });
        if let Some(after) = &pauses.after {
            self.pause(after, &activity.name, interruptible).await;
        }
        Some(run)
    }

    /// Sleeps for a pause; false if a stop cut it short.
    async fn pause(&self, value: &PauseValue, name: &str, interruptible: bool) -> bool {
        let seconds = self.exec.substitute(&value.0).as_f64().unwrap_or(0.0);
        let Ok(duration) = Duration::try_from_secs_f64(seconds) else {
            return true;
        };
        if duration.is_zero() {
            return true;
        }
        self.emit(Event::Pause {
            name: name.to_string(),
            seconds,
        });
        if !interruptible {
            tokio::time::sleep(duration).await;
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.stopper.wait() => false,
        }
    }

    /// Runs the safeguards that must pass first, and starts the others (once in the
    /// background, or every `frequency` seconds). Returns the tasks to end afterwards.
    async fn start_safeguards(&self, experiment: &Experiment) -> Vec<tokio::task::JoinHandle<()>> {
        let probes: Vec<Activity> = experiment.safeguards().cloned().collect();
        if probes.is_empty() {
            return Vec::new();
        }
        self.emit(Event::Phase("safeguards"));
        let mut tasks = Vec::new();
        let mut first = Vec::new();
        for (index, probe) in probes.into_iter().enumerate() {
            let me = self.clone();
            let step = Step {
                phase: Phase::Safeguards,
                index,
            };
            if let Some(every) = probe.frequency {
                tasks.push(tokio::spawn(async move {
                    let every = Duration::from_secs_f64(every);
                    loop {
                        if !me.safeguard(&probe, step).await {
                            return;
                        }
                        tokio::time::sleep(every).await;
                    }
                }));
            } else if probe.background {
                tasks.push(tokio::spawn(async move {
                    me.safeguard(&probe, step).await;
                }));
            } else {
                first.push(tokio::spawn(async move {
                    me.safeguard(&probe, step).await;
                }));
            }
        }
        for task in first {
            let _ = task.await;
        }
        tasks
    }

    /// Runs one safeguard probe; out of tolerance (or failing) stops the run. Returns whether
    /// it held.
    async fn safeguard(&self, probe: &Activity, step: Step) -> bool {
        if self.stopper.stopped().is_some() {
            return false;
        }
        let Some(mut run) = self.activity(probe, true, step).await else {
            return false;
        };
        if self.stopper.stopped().is_some() {
            return false;
        }
        let held = run.succeeded() && self.tolerance_met(probe, &run, step);
        run.tolerance_met = Some(held);
        self.safeguard_runs.lock().unwrap().push(run);
        if !held {
            self.stopper
                .stop(Stop::Aborted(format!("safeguard '{}'", probe.name)));
        }
        held
    }
}

/// The part of an output a tolerance looks at (its `target`, or an HTTP/process `status`).
pub fn focus(tolerance: &Value, output: &Value) -> Value {
    if let Some(target) = tolerance.get("target").and_then(Value::as_str) {
        if let Some(v) = output.get(target) {
            return v.clone();
        }
    }
    if matches!(tolerance, Value::Number(_) | Value::Array(_)) {
        if let Some(status) = output.get("status") {
            return status.clone();
        }
    }
    output.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{parse, Format};
    use serde_json::json;
    use std::collections::HashMap;

    /// One scripted answer: a delay in milliseconds, then the output or error.
    type Answer = (u64, Result<Value, String>);

    /// Answers each activity by name from a script: a list of (delay, output) used in turn
    /// (the last one repeats). Records the order activities ran in.
    struct Script {
        answers: HashMap<String, Vec<Answer>>,
        calls: Mutex<Vec<String>>,
    }

    impl Script {
        fn new(answers: &[(&str, Vec<Answer>)]) -> Arc<Script> {
            Arc::new(Script {
                answers: answers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                calls: Mutex::default(),
            })
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Execute for Script {
        fn execute<'a>(&'a self, activity: &'a Activity) -> BoxFuture<'a, Result<Value, String>> {
            Box::pin(async move {
                let n = {
                    let mut calls = self.calls.lock().unwrap();
                    calls.push(activity.name.clone());
                    calls.iter().filter(|c| **c == activity.name).count()
                };
                let list = &self.answers[&activity.name];
                let (delay, answer) = list[(n - 1).min(list.len() - 1)].clone();
                tokio::time::sleep(Duration::from_millis(delay)).await;
                answer
            })
        }
    }

    fn experiment(extra: Value) -> Experiment {
        let mut doc = json!({
            "title": "t",
            "steady-state-hypothesis": {"title": "h", "probes": [
                {"type": "probe", "name": "p99", "tolerance": [0, 300],
                 "provider": {"type": "process", "path": "true"}}
            ]},
            "method": [
                {"type": "action", "name": "inject", "provider": {"type": "process", "path": "true"}}
            ],
            "rollbacks": [
                {"type": "action", "name": "heal", "provider": {"type": "process", "path": "true"}}
            ]
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        parse(&doc.to_string(), Format::Json, "t.json")
            .unwrap()
            .experiment
    }

    async fn go(e: &Experiment, script: Arc<Script>, options: Options) -> Journal {
        run(e, json!({"title": "t"}), script, None, options).await
    }

    fn ok(v: Value) -> Answer {
        (0, Ok(v))
    }

    /// The plan announced at the start lists every step, phase by phase, in run order.
    #[test]
    fn plan_lists_every_step_in_order() {
        let steps: Vec<(&str, String)> = plan(&experiment(json!({})))
            .into_iter()
            .map(|s| (s.phase.name(), s.name))
            .collect();
        let expected = [
            ("before", "p99"),
            ("method", "inject"),
            ("after", "p99"),
            ("rollbacks", "heal"),
        ];
        assert_eq!(
            steps,
            expected.map(|(phase, name)| (phase, name.to_string()))
        );
    }

    /// A hypothesis that holds before and after the method gives a completed, held run.
    #[tokio::test(start_paused = true)]
    async fn hypothesis_held() {
        let script = Script::new(&[
            ("p99", vec![ok(json!(120))]),
            ("inject", vec![ok(json!(true))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let j = go(&experiment(json!({})), script.clone(), Options::default()).await;
        assert_eq!(j.status, Some(Status::Completed));
        assert!(!j.deviated);
        assert_eq!(script.calls(), ["p99", "inject", "p99", "heal"]);
        assert_eq!(
            j.steady_states.after.as_ref().unwrap().probes[0].tolerance_met,
            Some(true)
        );
        assert_eq!(j.verdict().exit_code(), 0);
    }

    /// Out of tolerance after the method: deviated, and the rollbacks still ran.
    #[tokio::test(start_paused = true)]
    async fn deviated_after() {
        let script = Script::new(&[
            ("p99", vec![ok(json!(120)), ok(json!(5000))]),
            ("inject", vec![ok(json!(true))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let j = go(&experiment(json!({})), script.clone(), Options::default()).await;
        assert!(j.deviated);
        assert_eq!(j.status, Some(Status::Completed));
        assert_eq!(j.rollbacks.len(), 1);
        assert_eq!(j.verdict().exit_code(), 2);
    }

    /// Not steady to begin with: the method is skipped, rollbacks run, exit 2.
    #[tokio::test(start_paused = true)]
    async fn unmet_before_skips_method() {
        let script = Script::new(&[
            ("p99", vec![ok(json!(900))]),
            ("inject", vec![ok(json!(true))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let j = go(&experiment(json!({})), script.clone(), Options::default()).await;
        assert_eq!(script.calls(), ["p99", "heal"]);
        assert!(!j.deviated);
        assert_eq!(j.verdict(), crate::Verdict::NotSteadyBefore);
    }

    /// A hypothesis probe that cannot run marks the run failed.
    #[tokio::test(start_paused = true)]
    async fn failing_probe_is_failed() {
        let script = Script::new(&[
            ("p99", vec![(0, Err("failed to connect".into()))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let j = go(&experiment(json!({})), script, Options::default()).await;
        assert_eq!(j.status, Some(Status::Failed));
        let before = j.steady_states.before.clone().unwrap();
        assert_eq!(before.probes[0].status, "failed");
        assert!(before.probes[0].exception.is_some());
    }

    /// A safeguard with a frequency stops a long method at once when it trips.
    #[tokio::test(start_paused = true)]
    async fn safeguard_stops_method_at_once() {
        let e = experiment(json!({
            "controls": [{"name": "guard", "provider": {"type": "python",
                "module": "chaosaddons.controls.safeguards", "arguments": {"probes": [
                    {"type": "probe", "name": "errors", "frequency": 1, "tolerance": [0, 1],
                     "provider": {"type": "process", "path": "true"}}]}}}],
            "method": [
                {"type": "action", "name": "inject", "provider": {"type": "process", "path": "true"}},
                {"type": "action", "name": "long", "provider": {"type": "process", "path": "true"}}
            ]
        }));
        let script = Script::new(&[
            (
                "errors",
                vec![ok(json!(0)), ok(json!(0)), ok(json!(0)), ok(json!(7))],
            ),
            ("p99", vec![ok(json!(1))]),
            ("inject", vec![ok(json!(true))]),
            ("long", vec![(600_000, Ok(json!(true)))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let started = tokio::time::Instant::now();
        let j = go(&e, script.clone(), Options::default()).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(j.status, Some(Status::Aborted));
        assert_eq!(
            j.faultline.aborted_by.as_deref(),
            Some("safeguard 'errors'")
        );
        assert_eq!(j.run.last().unwrap().status, "failed");
        assert!(j.steady_states.after.is_none());
        assert_eq!(j.rollbacks.len(), 1);
        assert_eq!(j.verdict().exit_code(), 3);
    }

    /// A safeguard that fails before the method keeps the method from running.
    #[tokio::test(start_paused = true)]
    async fn safeguard_before_method() {
        let e = experiment(json!({
            "controls": [{"name": "guard", "provider": {"type": "python",
                "module": "chaosaddons.controls.safeguards", "arguments": {"probes": [
                    {"type": "probe", "name": "healthy", "tolerance": true,
                     "provider": {"type": "process", "path": "true"}}]}}}]
        }));
        let script = Script::new(&[
            ("healthy", vec![ok(json!(false))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let j = go(&e, script.clone(), Options::default()).await;
        assert_eq!(script.calls(), ["healthy", "heal"]);
        assert_eq!(j.status, Some(Status::Aborted));
    }

    /// A background safeguard (run once, alongside) that fails stops the run too.
    #[tokio::test(start_paused = true)]
    async fn background_safeguard_stops_the_run() {
        let e = experiment(json!({
            "controls": [{"name": "guard", "provider": {"type": "python",
                "module": "chaosaddons.controls.safeguards", "arguments": {"probes": [
                    {"type": "probe", "name": "slow-check", "background": true, "tolerance": true,
                     "provider": {"type": "process", "path": "true"}}]}}}],
            "method": [
                {"type": "action", "name": "long", "provider": {"type": "process", "path": "true"}}
            ]
        }));
        let script = Script::new(&[
            ("slow-check", vec![(2_000, Ok(json!(false)))]),
            ("p99", vec![ok(json!(1))]),
            ("long", vec![(600_000, Ok(json!(true)))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let started = tokio::time::Instant::now();
        let j = go(&e, script, Options::default()).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(j.status, Some(Status::Aborted));
        assert_eq!(j.faultline.safeguards.len(), 1);
        assert_eq!(j.rollbacks.len(), 1);
    }

    /// --max-duration aborts a run that goes on too long.
    #[tokio::test(start_paused = true)]
    async fn max_duration_aborts() {
        let script = Script::new(&[
            ("p99", vec![ok(json!(1))]),
            ("inject", vec![(60_000, Ok(json!(true)))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let options = Options {
            max_duration: Some(Duration::from_secs(2)),
            ..Options::default()
        };
        let started = tokio::time::Instant::now();
        let j = go(&experiment(json!({})), script, options).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(j.status, Some(Status::Aborted));
        assert!(j.faultline.aborted_by.unwrap().contains("max-duration"));
        assert_eq!(j.rollbacks.len(), 1);
    }

    /// A stop from outside (a signal) during a pause: interrupted, rollbacks ran, exit 130.
    #[tokio::test(start_paused = true)]
    async fn interrupted_during_pause() {
        let e = experiment(json!({"method": [
            {"type": "action", "name": "inject", "pauses": {"after": 30},
             "provider": {"type": "process", "path": "true"}}
        ]}));
        let script = Script::new(&[
            ("p99", vec![ok(json!(1))]),
            ("inject", vec![ok(json!(true))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let options = Options::default();
        let stopper = options.stopper.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.stop(Stop::Interrupted("SIGINT received".into()));
        });
        let j = go(&e, script.clone(), options).await;
        assert_eq!(script.calls(), ["p99", "inject", "heal"]);
        assert_eq!(j.status, Some(Status::Interrupted));
        assert_eq!(j.verdict().exit_code(), 130);
    }

    /// Background activities run alongside the next ones and are awaited.
    #[tokio::test(start_paused = true)]
    async fn background_runs_alongside() {
        let e = experiment(json!({"method": [
            {"type": "action", "name": "slow", "background": true,
             "provider": {"type": "process", "path": "true"}},
            {"type": "action", "name": "inject", "provider": {"type": "process", "path": "true"}}
        ]}));
        let script = Script::new(&[
            ("p99", vec![ok(json!(1))]),
            ("slow", vec![(5_000, Ok(json!(1)))]),
            ("inject", vec![(5_000, Ok(json!(2)))]),
            ("heal", vec![ok(json!(true))]),
        ]);
        let started = tokio::time::Instant::now();
        let j = go(&e, script, Options::default()).await;
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "ran one after the other"
        );
        assert_eq!(j.run.len(), 2);
    }
}
