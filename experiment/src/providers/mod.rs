//! Carrying out one activity: the provider's fields are substituted with the configuration and
//! secrets, then the `http`, `process` or native Python provider runs it. A provider's error is
//! a failed activity (Chaos Toolkit's `ActivityFailed`), as one line.

pub mod faultline;
pub mod http;
pub mod load;
pub mod process;
pub mod prometheus;
pub mod toxiproxy;

use crate::cleanup::Ledger;
use crate::config::substitute;
use crate::fleet::Api;
use crate::functions::{FAULTLINE_ACTIONS, FAULTLINE_PROBES};
use crate::model::{Activity, Provider};
use serde_json::{Map, Value};
use std::sync::Mutex;

/// What every activity of a run shares.
#[derive(Debug)]
pub struct Context {
    /// Resolved configuration; chaostoxi's `create_proxy` adds `<name>_PORT` to it.
    pub configuration: Mutex<Map<String, Value>>,
    pub secrets: Map<String, Value>,
    /// Every faultline instance actions apply to.
    pub apis: Vec<String>,
    pub api: Api,
    pub ledger: Ledger,
}

impl Context {
    pub fn new(
        configuration: Map<String, Value>,
        secrets: Map<String, Value>,
        apis: Vec<String>,
    ) -> Context {
        Context {
            configuration: Mutex::new(configuration),
            secrets,
            apis,
            api: Api::new(),
            ledger: Ledger::default(),
        }
    }

    /// `data` with `${name}` replaced from the configuration and secrets as they are now.
    pub fn substitute(&self, data: &Value) -> Value {
        let configuration = self.configuration.lock().unwrap();
        substitute(data, &configuration, &self.secrets)
    }

    pub fn set_configuration(&self, key: String, value: Value) {
        self.configuration.lock().unwrap().insert(key, value);
    }
}

/// Runs an activity's provider and returns its output.
pub async fn execute(activity: &Activity, ctx: &Context) -> Result<Value, String> {
    match &activity.provider {
        Provider::Http(p) => {
            let p = ctx.substitute(&serde_json::to_value(p).map_err(|e| e.to_string())?);
            http::run(&p, activity.tolerance.is_some()).await
        }
        Provider::Process(p) => {
            let mut p = serde_json::to_value(p).map_err(|e| e.to_string())?;
            if let Some(args) = p.get("arguments").cloned() {
                p["arguments"] = ctx.substitute(&args);
            }
            process::run(&p).await
        }
        Provider::Python(p) => {
            let args = ctx.substitute(&Value::Object(p.arguments.clone()));
            let args = args.as_object().cloned().unwrap_or_default();
            match p.module.as_str() {
                FAULTLINE_ACTIONS => faultline::action(&p.func, &args, ctx).await,
                FAULTLINE_PROBES => faultline::probe(&p.func, &args).await,
                _ => toxiproxy::call(&p.module, &p.func, &args, ctx).await,
            }
        }
    }
}

/// Argument helpers for the native functions (names were checked when the file was read).
pub(crate) mod args {
    use serde_json::{Map, Value};

    pub fn text(args: &Map<String, Value>, name: &str) -> Result<String, String> {
        match args.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(format!("argument '{name}' must be a string, not {other}")),
            None => Err(format!("argument '{name}' is required")),
        }
    }

    pub fn opt_text(args: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
        match args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => text(args, name).map(Some),
        }
    }

    pub fn opt_f64(args: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
        match args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("argument '{name}' must be a number, not {s:?}")),
            Some(other) => Err(format!("argument '{name}' must be a number, not {other}")),
        }
    }

    pub fn f64(args: &Map<String, Value>, name: &str) -> Result<f64, String> {
        opt_f64(args, name)?.ok_or_else(|| format!("argument '{name}' is required"))
    }

    /// Python truthiness for the values a file can hold.
    pub fn truthy(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }
}
