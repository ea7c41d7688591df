//! Reading an experiment file (JSON or YAML) into the model, with errors that name the field's
//! path and the line it is on.

use crate::model::Experiment;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// An experiment as read from a file: the typed model and the document as written (which the
/// journal records under `experiment`).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub experiment: Experiment,
    pub document: Value,
}

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Invalid),
}

/// A file that was read but is not a valid experiment.
#[derive(Debug)]
pub struct Invalid {
    pub file: String,
    /// Where in the document, e.g. `method[0].provider.func` (empty at the top).
    pub field: String,
    /// 1-based.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() && self.field != "." {
            write!(f, ": at `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The two formats an experiment file may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// By extension; otherwise JSON if the text starts like JSON, else YAML.
    pub fn guess(path: &Path, text: &str) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            _ if text.trim_start().starts_with('{') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Reads and checks an experiment file.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = Format::guess(path, &text);
    parse(&text, format, &path.display().to_string()).map_err(LoadError::Invalid)
}

/// Parses and checks an experiment from text; `file` names it in errors.
pub fn parse(text: &str, format: Format, file: &str) -> Result<Loaded, Invalid> {
    let invalid = |field: String, line: Option<usize>, message: String| Invalid {
        file: file.to_string(),
        field,
        line,
        message,
    };
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let experiment: Experiment =
                serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let field = e.path().to_string();
                    let inner = e.into_inner();
                    let message = strip_position(&inner.to_string());
                    refine(invalid(field, Some(inner.line()), message), text)
                })?;
            let document = serde_json::from_str(text)
                .map_err(|e| invalid(String::new(), Some(e.line()), e.to_string()))?;
            Ok(Loaded {
                experiment,
                document,
            })
        }
        Format::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            let experiment: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.location().map(|l| l.line());
                refine(
                    invalid(field, line, strip_position(&inner.to_string())),
                    text,
                )
            })?;
            let document = serde_yaml_ng::from_str(text).map_err(|e| {
                invalid(String::new(), e.location().map(|l| l.line()), e.to_string())
            })?;
            Ok(Loaded {
                experiment,
                document,
            })
        }
    }
}

/// An unknown argument is found when the whole provider has been read, so serde reports the
/// provider's last line; point at the argument's own line and field instead.
fn refine(mut invalid: Invalid, text: &str) -> Invalid {
    let Some(name) = invalid
        .message
        .split_once("no argument '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(name, _)| name.to_string())
    else {
        return invalid;
    };
    let Some(reported) = invalid.line else {
        return invalid;
    };
    let json_key = format!("\"{name}\"");
    let yaml_key = format!("{name}:");
    let found = text
        .lines()
        .enumerate()
        .take(reported)
        .filter(|(_, l)| {
            l.contains(&json_key)
                || l.trim_start().starts_with(&yaml_key)
                || l.contains(&format!(" {yaml_key}"))
        })
        .map(|(i, _)| i + 1)
        .last();
    if let Some(line) = found {
        invalid.line = Some(line);
        if !invalid.field.ends_with(&name) {
            invalid.field = format!("{}.arguments.{name}", invalid.field);
        }
    }
    invalid
}

/// serde's messages end with " at line L column C"; the line is reported on its own.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

impl Loaded {
    /// An experiment built in code; its document is its serialization.
    pub fn from_experiment(experiment: Experiment) -> Loaded {
        let document = serde_json::to_value(&experiment).unwrap_or(Value::Null);
        Loaded {
            experiment,
            document,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "title": "t",
  "method": [
    {"type": "action", "name": "a",
     "provider": {"type": "python", "module": "chaostoxi.proxy.actions",
                  "func": "disable_proxy", "arguments": {"proxy_name": "db"}}}
  ]
}"#;

    /// A minimal experiment using the Toxiproxy extension loads.
    #[test]
    fn minimal_json_loads() {
        let loaded = parse(GOOD, Format::Json, "x.json").unwrap();
        assert_eq!(loaded.experiment.method.len(), 1);
        assert_eq!(loaded.document["title"], "t");
    }

    /// A wrong provider type is reported with the field path and the line.
    #[test]
    fn bad_provider_type_points_at_field_and_line() {
        let text = GOOD.replace("\"type\": \"python\"", "\"type\": \"pyhton\"");
        let err = parse(&text, Format::Json, "x.json").unwrap_err();
        assert_eq!(err.field, "method[0].provider.type");
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.message.contains("pyhton"), "{err}");
        assert!(err
            .to_string()
            .starts_with("x.json:5: at `method[0].provider.type`"));
    }

    /// YAML errors carry the line too.
    #[test]
    fn yaml_error_has_line() {
        let text = "title: t\nmethod:\n  - type: action\n    name: a\n    provider:\n      type: http\n      url: 5\n      timeout: [1\n";
        let err = parse(text, Format::Yaml, "x.yaml").unwrap_err();
        assert!(err.line.is_some(), "{err}");
    }

    /// A YAML experiment with a typed tolerance loads.
    #[test]
    fn yaml_loads() {
        let text = r#"
title: y
steady-state-hypothesis:
  title: up
  probes:
    - type: probe
      name: home
      tolerance: 200
      provider: {type: http, url: "http://127.0.0.1:1/"}
method:
  - type: action
    name: wait
    provider: {type: process, path: "true"}
    pauses: {after: 1}
"#;
        let loaded = parse(text, Format::Yaml, "y.yaml").unwrap();
        let hypothesis = loaded.experiment.steady_state_hypothesis.unwrap();
        assert_eq!(hypothesis.probes[0].name, "home");
    }
}
