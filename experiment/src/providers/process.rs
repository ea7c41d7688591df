//! The `process` provider (chaoslib's `run_process_activity`): runs a program to completion;
//! the output is `{"status", "stdout", "stderr"}`. Only a timeout fails the activity: the exit
//! status is for the tolerance to judge.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Runs the provider object (arguments already substituted).
pub async fn run(p: &Value) -> Result<Value, String> {
    let raw = p
        .get("path")
        .and_then(Value::as_str)
        .ok_or("a process activity needs a `path`")?;
    let path = which(raw).ok_or_else(|| format!("path '{raw}' cannot be found"))?;
    let mut command = match p.get("arguments") {
        Some(Value::String(line)) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(format!("{} {line}", path.display()));
            c
        }
        Some(Value::Array(items)) => {
            let mut c = Command::new(&path);
            c.args(items.iter().filter_map(argument));
            c
        }
        Some(Value::Object(map)) => {
            let mut c = Command::new(&path);
            for (k, v) in map {
                c.arg(k);
                c.args(argument(v));
            }
            c
        }
        _ => Command::new(&path),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let output = match p.get("timeout").and_then(Value::as_f64) {
        Some(secs) => {
            let limit = Duration::try_from_secs_f64(secs).map_err(|_| "invalid process timeout")?;
            tokio::time::timeout(limit, child.wait_with_output())
                .await
                .map_err(|_| "process activity took too long to complete".to_string())?
        }
        None => child.wait_with_output().await,
    }
    .map_err(|e| format!("waiting for {}: {e}", path.display()))?;
    let status = output.status.code().unwrap_or_else(|| {
        // Killed by a signal: Python reports -N.
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            -output.status.signal().unwrap_or(0)
        }
        #[cfg(not(unix))]
        {
            -1
        }
    });
    Ok(json!({
        "status": status,
        "stdout": String::from_utf8_lossy(&output.stdout),
        "stderr": String::from_utf8_lossy(&output.stderr),
    }))
}

/// One argument as text; `None` and empty strings are dropped, as chaoslib drops them.
fn argument(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        other => Some(other.to_string()),
    }
}

/// `shutil.which`: a path with a slash as is (if executable), else searched in `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let expanded = match name.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(|h| Path::new(&h).join(rest))?,
        None => PathBuf::from(name),
    };
    if expanded.components().count() > 1 || expanded.is_absolute() {
        return is_executable(&expanded).then_some(expanded);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&expanded))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program's exit status and output are the activity's output.
    #[tokio::test]
    async fn output_and_status() {
        let out = run(&json!({"path": "sh", "arguments": ["-c", "echo hi; echo err >&2; exit 3"]}))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"status": 3, "stdout": "hi\n", "stderr": "err\n"})
        );
    }

    /// A program past its timeout fails the activity.
    #[tokio::test]
    async fn timeout_fails() {
        let err = run(&json!({"path": "sleep", "arguments": ["5"], "timeout": 0.2}))
            .await
            .unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }

    /// A missing program is named.
    #[tokio::test]
    async fn missing_program_is_named() {
        let err = run(&json!({"path": "no-such-program-here"}))
            .await
            .unwrap_err();
        assert!(err.contains("no-such-program-here"), "{err}");
    }
}
