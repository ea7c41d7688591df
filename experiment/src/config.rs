//! Configuration, secrets and `${name}` substitution, as Chaos Toolkit does them:
//!
//! - configuration values are literals or `{"type": "env", "key", "default"?, "env_var_type"?}`;
//! - `--var name[:type]=value` and var files (JSON/YAML with `configuration`/`secrets`, or a
//!   `.env` file of `KEY=value` lines read as environment) override them;
//! - a string that is exactly `${name}` becomes the value with its type; `${name}` inside a
//!   longer string is replaced by its text; unknown names are left as written.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Values given on the command line or in var files.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub configuration: Map<String, Value>,
    pub secrets: Map<String, Value>,
    /// From `.env` var files; looked up before the process environment.
    pub env: HashMap<String, String>,
}

impl Vars {
    /// Adds one `name[:type]=value` (types: str, int, float, bytes, bool, json).
    pub fn add_var(&mut self, spec: &str) -> Result<(), String> {
        let (key, raw) = spec
            .split_once('=')
            .ok_or_else(|| format!("--var {spec:?} needs the format name[:type]=value"))?;
        let (name, kind) = match key.rsplit_once(':') {
            Some((name, kind)) => (name, Some(kind)),
            None => (key, None),
        };
        if name.is_empty() {
            return Err(format!("--var {spec:?} has an empty name"));
        }
        let value = convert(kind, raw).map_err(|e| format!("--var {spec:?}: {e}"))?;
        self.configuration.insert(name.to_string(), value);
        Ok(())
    }

    /// Reads a var file: JSON or YAML with `configuration` and `secrets`, or a `.env` file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read var file {}: {e}", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let data: Option<Value> = match ext {
            "json" => Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("var file {}: {e}", path.display()))?,
            ),
            "yaml" | "yml" => Some(
                serde_yaml_ng::from_str(&text)
                    .map_err(|e| format!("var file {}: {e}", path.display()))?,
            ),
            _ => None,
        };
        match data {
            Some(data) => {
                for (section, target) in [
                    ("configuration", &mut self.configuration),
                    ("secrets", &mut self.secrets),
                ] {
                    if let Some(map) = data.get(section).and_then(Value::as_object) {
                        target.extend(map.clone());
                    }
                }
            }
            None => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let (k, v) = line.split_once('=').ok_or_else(|| {
                        format!("{}:{}: expected KEY=value", path.display(), n + 1)
                    })?;
                    self.env.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        Ok(())
    }

    fn env(&self, key: &str) -> Option<String> {
        self.env
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
    }
}

/// chaoslib's `convert_to_type`.
fn convert(kind: Option<&str>, raw: &str) -> Result<Value, String> {
    Ok(match kind {
        None | Some("str" | "string" | "bytes") => Value::String(raw.to_string()),
        Some("int" | "integer") => Value::from(
            raw.trim()
                .parse::<i64>()
                .map_err(|_| format!("{raw:?} is not an integer"))?,
        ),
        Some("float" | "number") => Value::from(
            raw.trim()
                .parse::<f64>()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        Some("bool") => Value::Bool(!matches!(
            raw.to_ascii_lowercase().as_str(),
            "false" | "0" | "no"
        )),
        Some("json") if raw.is_empty() => Value::String(String::new()),
        Some("json") => serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?,
        Some(other) => {
            return Err(format!(
                "unknown type '{other}'; valid: str, int, float, bytes, bool, json"
            ))
        }
    })
}

/// Resolves the experiment's configuration with the overrides (chaoslib's `load_configuration`).
pub fn resolve_configuration(
    declared: &Map<String, Value>,
    vars: &Vars,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (key, value) in declared {
        if let Some(over) = vars.configuration.get(key) {
            out.insert(key.clone(), over.clone());
            continue;
        }
        out.insert(key.clone(), resolve_value(key, value, vars)?);
    }
    for (key, value) in &vars.configuration {
        out.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Ok(out)
}

fn resolve_value(key: &str, value: &Value, vars: &Vars) -> Result<Value, String> {
    let Some(spec) = value.as_object().filter(|o| o.contains_key("type")) else {
        return Ok(value.clone());
    };
    match spec.get("type").and_then(Value::as_str) {
        Some("env") => {
            let env_key = spec.get("key").and_then(Value::as_str).ok_or_else(|| {
                format!("configuration `{key}`: an env value needs a `key` string")
            })?;
            let kind = spec.get("env_var_type").and_then(Value::as_str);
            match (vars.env(env_key), spec.get("default")) {
                (Some(raw), _) => {
                    convert(kind, &raw).map_err(|e| format!("configuration `{key}`: {e}"))
                }
                (None, Some(default)) => Ok(match default {
                    Value::String(s) => {
                        convert(kind, s).map_err(|e| format!("configuration `{key}`: {e}"))?
                    }
                    other => other.clone(),
                }),
                (None, None) => Err(format!(
                    "configuration `{key}` reads the environment variable {env_key}, which is \
                     not set and has no `default`"
                )),
            }
        }
        Some("probe") => Err(format!(
            "configuration `{key}`: dynamic (probe) configuration is not supported; pass the \
             value with --var {key}=..."
        )),
        Some(other) => Err(format!(
            "configuration `{key}` has type '{other}'; valid: env (or a literal value)"
        )),
        None => Ok(value.clone()),
    }
}

/// Resolves secrets (`{scope: {name: literal | {"type": "env", "key"}}}`) into one flat map
/// used for substitution after the configuration.
pub fn resolve_secrets(
    declared: &Map<String, Value>,
    vars: &Vars,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (scope, entries) in declared {
        let entries = entries
            .as_object()
            .ok_or_else(|| format!("secrets `{scope}` must be a mapping of names to values"))?;
        for (name, value) in entries {
            if let Some(over) = vars.secrets.get(scope).and_then(|s| s.get(name)).cloned() {
                out.insert(name.clone(), over);
                continue;
            }
            let resolved = match value.get("type").and_then(Value::as_str) {
                Some("env") => resolve_value(&format!("{scope}.{name}"), value, vars)?,
                Some(other) => {
                    return Err(format!(
                        "secret `{scope}.{name}` has type '{other}'; faultline reads env and \
                         literal secrets (use Chaos Toolkit for {other})"
                    ))
                }
                None => value.clone(),
            };
            out.insert(name.clone(), resolved);
        }
    }
    Ok(out)
}

/// Replaces `${name}` (and `$name`) in every string of `data`, recursively.
pub fn substitute(
    data: &Value,
    configuration: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> Value {
    let lookup = |name: &str| configuration.get(name).or_else(|| secrets.get(name));
    substitute_with(data, &lookup)
}

fn substitute_with<'a>(data: &Value, lookup: &dyn Fn(&str) -> Option<&'a Value>) -> Value {
    match data {
        Value::String(s) => substitute_string(s, lookup),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_with(v, lookup)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute_with(v, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Python's `string.Template.safe_substitute`, plus Chaos Toolkit's rule that a string that is
/// one whole `${name}` keeps the value's type.
fn substitute_string<'a>(s: &str, lookup: &dyn Fn(&str) -> Option<&'a Value>) -> Value {
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        if is_identifier(name) {
            if let Some(v) = lookup(name) {
                return v.clone();
            }
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if is_identifier(&braced[..end]) => (&braced[..end], end + 2),
                _ => ("", 0),
            }
        } else {
            let len = after
                .char_indices()
                .find(|&(j, c)| {
                    !(c == '_' || c.is_ascii_alphanumeric()) || (j == 0 && c.is_ascii_digit())
                })
                .map(|(j, _)| j)
                .unwrap_or(after.len());
            (&after[..len], len)
        };
        match (consumed, lookup(name)) {
            (c, Some(v)) if c > 0 && !name.is_empty() => {
                out.push_str(&python_str(v));
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Value::String(out)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `str(value)` as Python prints it, for values spliced into a longer string.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// A whole `${name}` keeps the value's type; inside a string it becomes text.
    #[test]
    fn typed_and_textual_substitution() {
        let conf = map(json!({"port": 8080, "host": "db", "on": true}));
        let none = Map::new();
        assert_eq!(substitute(&json!("${port}"), &conf, &none), json!(8080));
        assert_eq!(
            substitute(&json!("http://${host}:$port/x?on=${on}"), &conf, &none),
            json!("http://db:8080/x?on=True")
        );
    }

    /// Unknown names and `$$` are left as Python's safe_substitute leaves them.
    #[test]
    fn unknown_names_are_kept() {
        let conf = map(json!({"a": "1"}));
        let none = Map::new();
        assert_eq!(
            substitute(&json!("${b} $$ ${a}"), &conf, &none),
            json!("${b} $ 1")
        );
    }

    /// Substitution reaches into nested objects and lists; secrets come after configuration.
    #[test]
    fn nested_and_secrets() {
        let conf = map(json!({"a": "x"}));
        let secrets = map(json!({"token": "s3cret", "a": "ignored"}));
        let out = substitute(
            &json!({"h": ["${a}", {"t": "Bearer ${token}"}]}),
            &conf,
            &secrets,
        );
        assert_eq!(out, json!({"h": ["x", {"t": "Bearer s3cret"}]}));
    }

    /// Env values are read with their declared type and defaults; --var wins over both.
    #[test]
    fn env_configuration_and_overrides() {
        let mut vars = Vars::default();
        vars.env.insert("FL_TEST_PORT".into(), "8474".into());
        let declared = map(json!({
            "port": {"type": "env", "key": "FL_TEST_PORT", "env_var_type": "int"},
            "host": {"type": "env", "key": "FL_TEST_UNSET_HOST", "default": "localhost"},
            "name": "plain"
        }));
        let conf = resolve_configuration(&declared, &vars).unwrap();
        assert_eq!(conf["port"], json!(8474));
        assert_eq!(conf["host"], json!("localhost"));
        vars.add_var("name=over").unwrap();
        vars.add_var("count:int=3").unwrap();
        let conf = resolve_configuration(&declared, &vars).unwrap();
        assert_eq!(conf["name"], json!("over"));
        assert_eq!(conf["count"], json!(3));
    }

    /// A missing environment variable without default is named.
    #[test]
    fn missing_env_is_named() {
        let declared = map(json!({"k": {"type": "env", "key": "FL_TEST_DEFINITELY_UNSET"}}));
        let err = resolve_configuration(&declared, &Vars::default()).unwrap_err();
        assert!(err.contains("FL_TEST_DEFINITELY_UNSET"), "{err}");
    }

    /// Bad --var specs say what the format is.
    #[test]
    fn bad_var_specs() {
        let mut vars = Vars::default();
        assert!(vars
            .add_var("novalue")
            .unwrap_err()
            .contains("name[:type]=value"));
        assert!(vars
            .add_var("n:int=abc")
            .unwrap_err()
            .contains("not an integer"));
    }
}

#[cfg(test)]
mod var_file_tests {
    use super::*;
    use serde_json::json;

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("fl-vars-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A JSON var file brings configuration and secrets; a .env file brings environment
    /// values that `{"type": "env"}` configuration reads.
    #[test]
    fn json_and_env_var_files() {
        let mut vars = Vars::default();
        let json_file = temp(
            "v.json",
            r#"{"configuration": {"url": "http://x"}, "secrets": {"s": {"token": "t"}}}"#,
        );
        let env_file = temp("v.env", "# comment\nFL_VARFILE_PORT=9000\n");
        vars.add_file(&json_file).unwrap();
        vars.add_file(&env_file).unwrap();
        let declared =
            json!({"port": {"type": "env", "key": "FL_VARFILE_PORT", "env_var_type": "int"}});
        let conf = resolve_configuration(declared.as_object().unwrap(), &vars).unwrap();
        assert_eq!(conf["port"], json!(9000));
        assert_eq!(conf["url"], json!("http://x"));
        let secrets = resolve_secrets(
            json!({"s": {"token": "default"}}).as_object().unwrap(),
            &vars,
        )
        .unwrap();
        assert_eq!(secrets["token"], json!("t"));
        let _ = std::fs::remove_file(json_file);
        let _ = std::fs::remove_file(env_file);
    }
}
