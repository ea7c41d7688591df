//! The experiment file: Chaos Toolkit's open experiment format as serde types.
//!
//! Checks that need nothing but the file (activity types, provider types, known extension
//! functions and their arguments, tolerance shapes) happen while deserializing, so a mistake is
//! reported with the field's path and the line it is on (see [`crate::load`]).

use crate::functions;
use crate::tolerance::Tolerance;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One experiment: steady-state hypothesis, method, rollbacks, and what they need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawExperiment")]
pub struct Experiment {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Literals, `{"type": "env", "key": ...}` lookups, or `${name}` references to them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub configuration: Map<String, Value>,
    /// Scopes of named secrets (literals or `{"type": "env"}`), substituted like configuration.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub secrets: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Control>,
    #[serde(
        rename = "steady-state-hypothesis",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub steady_state_hypothesis: Option<Hypothesis>,
    pub method: Vec<Activity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollbacks: Vec<Activity>,
}

#[derive(Deserialize)]
struct RawExperiment {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    configuration: Map<String, Value>,
    #[serde(default)]
    secrets: Map<String, Value>,
    #[serde(default)]
    controls: Vec<Control>,
    #[serde(rename = "steady-state-hypothesis", default)]
    steady_state_hypothesis: Option<Hypothesis>,
    method: Vec<Activity>,
    #[serde(default)]
    rollbacks: Vec<Activity>,
}

impl TryFrom<RawExperiment> for Experiment {
    type Error = String;

    fn try_from(raw: RawExperiment) -> Result<Self, String> {
        if raw.title.trim().is_empty() {
            return Err("`title` must not be empty".into());
        }
        if raw.method.is_empty() {
            return Err("`method` needs at least one activity".into());
        }
        if let Some(apis) = raw.configuration.get("faultline_apis") {
            let ok = matches!(apis, Value::String(_))
                || apis
                    .as_array()
                    .is_some_and(|list| list.iter().all(Value::is_string));
            if !ok {
                return Err(
                    "configuration `faultline_apis` must be a list of API URLs (strings)".into(),
                );
            }
        }
        Ok(Experiment {
            title: raw.title,
            description: raw.description,
            tags: raw.tags,
            configuration: raw.configuration,
            secrets: raw.secrets,
            controls: raw.controls,
            steady_state_hypothesis: raw.steady_state_hypothesis,
            method: raw.method,
            rollbacks: raw.rollbacks,
        })
    }
}

impl Experiment {
    /// The safeguard probes declared through `chaosaddons.controls.safeguards`.
    pub fn safeguards(&self) -> impl Iterator<Item = &Activity> {
        self.controls.iter().flat_map(|c| c.probes.iter())
    }

    /// Every activity, in the order a run meets them (hypothesis, method, rollbacks).
    pub fn activities(&self) -> impl Iterator<Item = &Activity> {
        self.steady_state_hypothesis
            .iter()
            .flat_map(|h| h.probes.iter())
            .chain(self.method.iter())
            .chain(self.rollbacks.iter())
            .chain(self.safeguards())
    }
}

/// What must hold before and after the method.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawHypothesis")]
pub struct Hypothesis {
    pub title: String,
    #[serde(default)]
    pub probes: Vec<Activity>,
}

#[derive(Deserialize)]
struct RawHypothesis {
    title: String,
    #[serde(default)]
    probes: Vec<Activity>,
}

impl TryFrom<RawHypothesis> for Hypothesis {
    type Error = String;

    fn try_from(raw: RawHypothesis) -> Result<Self, String> {
        if raw.title.trim().is_empty() {
            return Err("the hypothesis needs a `title`".into());
        }
        if let Some(probe) = raw.probes.iter().find(|p| p.kind != ActivityKind::Probe) {
            return Err(format!(
                "hypothesis activity '{}' must be of type `probe`",
                probe.name
            ));
        }
        if let Some(probe) = raw.probes.iter().find(|p| p.tolerance.is_none()) {
            return Err(format!(
                "hypothesis probe '{}' needs a `tolerance`",
                probe.name
            ));
        }
        Ok(Hypothesis {
            title: raw.title,
            probes: raw.probes,
        })
    }
}

/// `probe` (observes) or `action` (changes something).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Probe,
    Action,
}

/// A probe or an action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawActivity")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    pub name: String,
    pub provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pauses: Option<Pauses>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// Safeguards only: seconds between two runs of the probe for the whole experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<f64>,
}

#[derive(Deserialize)]
struct RawActivity {
    #[serde(rename = "type", default)]
    kind: Option<ActivityKind>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
    #[serde(default)]
    provider: Option<Provider>,
    #[serde(default)]
    tolerance: Option<Tolerance>,
    #[serde(default)]
    pauses: Option<Pauses>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default)]
    frequency: Option<f64>,
    #[serde(default)]
    controls: Option<Value>,
}

impl TryFrom<RawActivity> for Activity {
    type Error = String;

    fn try_from(raw: RawActivity) -> Result<Self, String> {
        if let Some(reference) = raw.reference {
            return Err(format!(
                "activity references (`ref: {reference}`) are not supported; repeat the activity \
                 in full"
            ));
        }
        let kind = raw
            .kind
            .ok_or("an activity needs a `type`: `probe` or `action`")?;
        let name = raw
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or("an activity needs a non-empty `name`")?;
        let provider = raw
            .provider
            .ok_or_else(|| format!("activity '{name}' needs a `provider`"))?;
        if raw.controls.is_some() {
            return Err(format!(
                "activity '{name}': per-activity `controls` are not supported; declare \
                 safeguards at the experiment level"
            ));
        }
        if let Some(f) = raw.frequency {
            if !(f.is_finite() && f > 0.0) {
                return Err(format!(
                    "activity '{name}': `frequency` must be a positive number of seconds"
                ));
            }
        }
        Ok(Activity {
            kind,
            name,
            provider,
            tolerance: raw.tolerance,
            pauses: raw.pauses,
            background: raw.background.unwrap_or(false),
            frequency: raw.frequency,
        })
    }
}

/// Seconds to wait before and after an activity: numbers or `${name}` references.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pauses {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<PauseValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PauseValue>,
}

/// A pause: seconds, or a `${name}` resolved from configuration or secrets when it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct PauseValue(pub Value);

impl TryFrom<Value> for PauseValue {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match &value {
            Value::Number(n) if n.as_f64().is_some_and(|s| s >= 0.0) => Ok(PauseValue(value)),
            Value::String(s) if s.starts_with("${") && s.ends_with('}') => Ok(PauseValue(value)),
            _ => Err(format!(
                "a pause must be a number of seconds or a `${{name}}` reference, not {value}"
            )),
        }
    }
}

impl From<PauseValue> for Value {
    fn from(p: PauseValue) -> Value {
        p.0
    }
}

/// How an activity is carried out. Python modules are recognized by name and run natively.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Provider {
    Http(HttpProvider),
    Process(ProcessProvider),
    Python(PythonProvider),
}

/// An HTTP call; its output is `{"status", "headers", "body"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpProvider {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    /// Query string for GET, JSON body with `Content-Type: application/json`, else a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// Seconds (a number, or `[connect, read]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
}

/// A program run to completion; its output is `{"status", "stdout", "stderr"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessProvider {
    pub path: String,
    /// A list of arguments, a mapping flattened to `key value` pairs, or a shell string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

/// A Python function in Chaos Toolkit; here, one of the functions faultline knows natively.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawPython")]
pub struct PythonProvider {
    pub module: String,
    pub func: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub arguments: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawPython {
    module: String,
    func: String,
    #[serde(default)]
    arguments: Map<String, Value>,
    /// Secret scopes handed to the function; none of the native functions take secrets.
    #[serde(default)]
    #[allow(dead_code)]
    secrets: Option<Value>,
}

impl TryFrom<RawPython> for PythonProvider {
    type Error = String;

    fn try_from(raw: RawPython) -> Result<Self, String> {
        functions::check_call(&raw.module, &raw.func, &raw.arguments)?;
        Ok(PythonProvider {
            module: raw.module,
            func: raw.func,
            arguments: raw.arguments,
        })
    }
}

/// The one control faultline runs: chaostoolkit-addons' safeguards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawControl", into = "Value")]
pub struct Control {
    pub name: String,
    pub probes: Vec<Activity>,
}

/// The module of chaostoolkit-addons' safeguards control.
pub const SAFEGUARDS_MODULE: &str = "chaosaddons.controls.safeguards";

#[derive(Deserialize)]
struct RawControl {
    name: String,
    provider: RawControlProvider,
}

#[derive(Deserialize)]
struct RawControlProvider {
    #[serde(rename = "type")]
    kind: String,
    module: String,
    #[serde(default)]
    arguments: Option<SafeguardArguments>,
}

#[derive(Deserialize)]
struct SafeguardArguments {
    probes: Vec<Activity>,
}

impl TryFrom<RawControl> for Control {
    type Error = String;

    fn try_from(raw: RawControl) -> Result<Self, String> {
        if raw.provider.kind != "python" || raw.provider.module != SAFEGUARDS_MODULE {
            return Err(format!(
                "control '{}' uses module '{}', which faultline does not run; the only control \
                 it runs natively is `{SAFEGUARDS_MODULE}` (use Chaos Toolkit's `chaos run` for \
                 other controls)",
                raw.name, raw.provider.module
            ));
        }
        let probes = raw.provider.arguments.map(|a| a.probes).unwrap_or_default();
        if let Some(p) = probes
            .iter()
            .find(|p| p.kind != ActivityKind::Probe || p.tolerance.is_none())
        {
            return Err(format!(
                "safeguard '{}' must be a probe with a `tolerance`",
                p.name
            ));
        }
        Ok(Control {
            name: raw.name,
            probes,
        })
    }
}

impl From<Control> for Value {
    fn from(c: Control) -> Value {
        serde_json::json!({
            "name": c.name,
            "provider": {
                "type": "python",
                "module": SAFEGUARDS_MODULE,
                "arguments": {"probes": c.probes},
            }
        })
    }
}
