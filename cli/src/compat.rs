//! The `toxiproxy-cli` dialect: when the binary runs under that name (the image's
//! `/toxiproxy-cli`, an alias, a symlink), it takes toxiproxy-cli's flag spellings and prints
//! its outputs, so scripts written for toxiproxy-cli work unchanged.
//!
//! Flags: `-h`/`-host` is the server (`--help` is help), every long flag may take one dash
//! (`-tox 0.5`, `-toxicName x`, `-listen a:1`), and `-a k=v,k2=v2` sets several attributes,
//! as Go's flag parsing and urfave/cli allow. Outputs: the same lines (`Created new proxy
//! redis`, `Added downstream latency toxic 'latency_downstream' on proxy 'redis'`), with
//! tab-separated `list` and `inspect` when stdout is not a terminal, and headers and hints
//! when it is.

use crate::Outcome;
use faultline_client::{ProxyInfo, Stream, ToxicInfo};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt::Write;

/// The name that selects this dialect.
pub const NAME: &str = "toxiproxy-cli";

/// Long flags toxiproxy-cli accepts with one dash, as Go's flag package does.
const LONG_FLAGS: &[&str] = &[
    "host",
    "help",
    "listen",
    "upstream",
    "downstream",
    "toxicName",
    "type",
    "tox",
    "toxicity",
    "attribute",
];

/// What to do with a toxiproxy-cli command line.
#[derive(Debug, PartialEq)]
pub enum Translated {
    /// faultline-cli's spelling of the same command.
    Args(Vec<OsString>),
    /// `--version` / `-v`: print toxiproxy-cli's version line.
    Version,
}

/// Whether the program was invoked as `toxiproxy-cli` (any directory, any extension).
pub fn invoked_as_toxiproxy_cli(argv0: &OsString) -> bool {
    std::path::Path::new(argv0)
        .file_stem()
        .is_some_and(|stem| stem == NAME)
}

/// Rewrites toxiproxy-cli's flags into faultline-cli's.
pub fn translate(argv: Vec<OsString>) -> Translated {
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter();
    if let Some(argv0) = args.next() {
        out.push(argv0);
    }
    let mut seen_command = false;
    let mut split_next = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        if split_next {
            // The value of -a: urfave/cli's string slices split on commas.
            split_next = false;
            push_split(&mut out, "--attribute", &text);
            continue;
        }
        let (name, value) = match text.strip_prefix("--").or_else(|| text.strip_prefix('-')) {
            Some(flag) if !flag.is_empty() => match flag.split_once('=') {
                Some((name, value)) => (Some(name.to_string()), Some(value.to_string())),
                None => (Some(flag.to_string()), None),
            },
            _ => (None, None),
        };
        let Some(name) = name else {
            seen_command = true;
            out.push(arg);
            continue;
        };
        match name.as_str() {
            "v" | "version" if !seen_command => return Translated::Version,
            "h" | "host" => push_flag(&mut out, "--host", value),
            "a" | "attribute" => match value {
                Some(value) => push_split(&mut out, "--attribute", &value),
                None => split_next = true,
            },
            long if LONG_FLAGS.contains(&long) => push_flag(&mut out, &format!("--{long}"), value),
            _ => out.push(arg),
        }
    }
    Translated::Args(out)
}

fn push_flag(out: &mut Vec<OsString>, flag: &str, value: Option<String>) {
    match value {
        Some(value) => out.push(format!("{flag}={value}").into()),
        None => out.push(flag.into()),
    }
}

fn push_split(out: &mut Vec<OsString>, flag: &str, value: &str) {
    for part in value.split(',') {
        out.push(flag.into());
        out.push(part.into());
    }
}

/// toxiproxy-cli's `--version` line.
pub fn version_line() -> String {
    format!(
        "{NAME} version {} (faultline-cli)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// What toxiproxy-cli prints for `outcome`; `tty` when stdout is a terminal.
pub fn render(outcome: &Outcome, tty: bool) -> String {
    match outcome {
        Outcome::List(proxies) => list(proxies, tty),
        Outcome::Inspect(proxy) => inspect(proxy, tty),
        Outcome::Created(p) => format!("Created new proxy {}\n", p.name),
        Outcome::Toggled(p) => format!(
            "Proxy {} is now {}\n",
            p.name,
            if p.enabled { "enabled" } else { "disabled" }
        ),
        Outcome::Deleted(name) => format!("Deleted proxy {name}\n"),
        Outcome::Added { proxy, toxic } => format!(
            "Added {} {} toxic '{}' on proxy '{proxy}'\n",
            toxic.stream, toxic.type_name, toxic.name
        ),
        Outcome::Updated { proxy, toxic } => {
            format!("Updated toxic '{}' on proxy '{proxy}'\n", toxic.name)
        }
        Outcome::Removed { proxy, name } => format!("Removed toxic '{name}' on proxy '{proxy}'\n"),
        // Commands toxiproxy-cli does not have print as faultline-cli does.
        other => crate::output::render(other),
    }
}

/// toxiproxy-cli's message for a failed command: `Failed to add toxic: <reason>`.
/// `retrieving`: `toggle` or `delete` failed looking the proxy up, before changing it (as
/// toxiproxy-cli, which fetches the proxy first, words it).
pub fn failure(command: &crate::args::Command, reason: &str, retrieving: bool) -> String {
    use crate::args::{Command, ToxicCommand};
    match command {
        Command::List => format!("Failed to retrieve proxies: {reason}"),
        Command::Inspect { proxy } => format!("Failed to retrieve proxy {proxy}: {reason}"),
        Command::Toggle { proxy } | Command::Delete { proxy } if retrieving => {
            format!("Failed to retrieve proxy {proxy}: {reason}")
        }
        Command::Toggle { proxy } => format!("Failed to toggle proxy {proxy}: {reason}"),
        Command::Create { .. } => format!("Failed to create proxy: {reason}"),
        Command::Delete { .. } => format!("Failed to delete proxy: {reason}"),
        Command::Toxic(ToxicCommand::Add { .. }) => format!("Failed to add toxic: {reason}"),
        Command::Toxic(ToxicCommand::Update { .. }) => format!("Failed to update toxic: {reason}"),
        Command::Toxic(ToxicCommand::Remove { .. }) => format!("Failed to remove toxic: {reason}"),
        _ => reason.to_string(),
    }
}

/// `list`: `name<TAB>listen<TAB>upstream<TAB>enabled<TAB>toxics`, sorted by name.
fn list(proxies: &[ProxyInfo], tty: bool) -> String {
    let mut out = String::new();
    if tty {
        out.push_str("Name\t\t\tListen\t\tUpstream\t\tEnabled\t\tToxics\n");
        out.push_str(&"=".repeat(86));
        out.push('\n');
        if proxies.is_empty() {
            out.push_str("no proxies\n\nHint: create a proxy with `toxiproxy-cli create`\n");
            return out;
        }
    }
    let mut sorted: Vec<&ProxyInfo> = proxies.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for p in sorted {
        let toxics = match p.toxics.len() {
            0 if tty => "None".to_string(),
            n => n.to_string(),
        };
        cell(&mut out, &p.name, 3, tty);
        cell(&mut out, &p.listen, 2, tty);
        cell(&mut out, &p.upstream, 3, tty);
        cell(
            &mut out,
            if p.enabled { "enabled" } else { "disabled" },
            2,
            tty,
        );
        let _ = writeln!(out, "{toxics}");
    }
    if tty {
        out.push_str("\nHint: inspect toxics with `toxiproxy-cli inspect <proxyName>`\n");
    }
    out
}

/// A column: the text, a tab, and on a terminal enough tabs to line up (8-wide tab stops).
fn cell(out: &mut String, text: &str, tabs: usize, tty: bool) {
    let extra = if tty {
        tabs.saturating_sub(text.len() / 8 + 1)
    } else {
        0
    };
    let _ = write!(out, "{text}\t{}", "\t".repeat(extra));
}

/// `inspect`: one tab-separated line per toxic; on a terminal, a header, toxics by stream
/// and a hint.
fn inspect(p: &ProxyInfo, tty: bool) -> String {
    let mut out = String::new();
    if !tty {
        for t in &p.toxics {
            toxic_line(&mut out, t, false);
        }
        return out;
    }
    let _ = writeln!(
        out,
        "Name: {}\tListen: {}\tUpstream: {}",
        p.name, p.listen, p.upstream
    );
    out.push_str(&"=".repeat(70));
    out.push('\n');
    if p.toxics.is_empty() {
        out.push_str("Proxy has no toxics enabled.\n");
    } else {
        for (i, (stream, title)) in [
            (Stream::Upstream, "Upstream"),
            (Stream::Downstream, "Downstream"),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{title} toxics:");
            let toxics: Vec<&ToxicInfo> = p.toxics.iter().filter(|t| t.stream == stream).collect();
            if toxics.is_empty() {
                let _ = writeln!(out, "Proxy has no {title} toxics enabled.");
            }
            for t in toxics {
                toxic_line(&mut out, t, true);
            }
        }
    }
    out.push_str("\nHint: add a toxic with `toxiproxy-cli toxic add`\n");
    out
}

/// `name<TAB>type=latency<TAB>stream=downstream<TAB>toxicity=1.00<TAB>attributes=[<TAB>jitter=0<TAB>latency=1000<TAB>]`
fn toxic_line(out: &mut String, t: &ToxicInfo, tty: bool) {
    let colon = if tty { ":" } else { "" };
    let _ = write!(
        out,
        "{}{colon}\ttype={}\tstream={}\ttoxicity={:.2}\tattributes=[",
        t.name, t.type_name, t.stream, t.toxicity
    );
    let mut keys: Vec<&String> = t.attributes.keys().collect();
    keys.sort();
    for key in keys {
        let _ = write!(out, "\t{key}={}", go_value(&t.attributes[key]));
    }
    out.push_str("\t]\n");
}

/// A value as Go's `fmt.Print` shows the float64 toxiproxy-cli decodes it into: `1000`, `0.5`,
/// and `1e+06` for a million.
fn go_value(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) => go_float(f),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Go's `%v` of a float64, i.e. `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, in
/// exponent form when the decimal exponent is below -4 or at least 6.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return if f == 0.0 { "0".into() } else { f.to_string() };
    }
    let exponent = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exponent) {
        // Rust's Display is the shortest round-trip form, without exponent.
        return f.to_string();
    }
    // Shortest digits in exponent form, then Go's spelling: e+06 rather than e6.
    let text = format!("{f:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn translated(list: &[&str]) -> Vec<String> {
        match translate(args(list)) {
            Translated::Args(out) => out.into_iter().map(|a| a.into_string().unwrap()).collect(),
            Translated::Version => vec!["<version>".into()],
        }
    }

    /// `-h host:port` is the server, one-dash long flags get two, `-a a=1,b=2` splits.
    #[test]
    fn toxiproxy_cli_spellings() {
        assert_eq!(
            translated(&[
                "toxiproxy-cli",
                "-h",
                "localhost:8474",
                "toxic",
                "add",
                "-t",
                "latency",
                "-tox",
                "0.5",
                "-a",
                "latency=1000,jitter=50",
                "-toxicName=slow",
                "redis"
            ]),
            [
                "toxiproxy-cli",
                "--host",
                "localhost:8474",
                "toxic",
                "add",
                "-t",
                "latency",
                "--tox",
                "0.5",
                "--attribute",
                "latency=1000",
                "--attribute",
                "jitter=50",
                "--toxicName=slow",
                "redis"
            ]
        );
        assert_eq!(
            translated(&[
                "toxiproxy-cli",
                "t",
                "u",
                "-a=jitter=0,latency=110",
                "-n",
                "x",
                "p"
            ]),
            [
                "toxiproxy-cli",
                "t",
                "u",
                "--attribute",
                "jitter=0",
                "--attribute",
                "latency=110",
                "-n",
                "x",
                "p"
            ]
        );
    }

    /// `--version` and `-v` before a command ask for the version line.
    #[test]
    fn version_flags() {
        assert_eq!(translated(&["toxiproxy-cli", "--version"]), ["<version>"]);
        assert_eq!(translated(&["toxiproxy-cli", "-v"]), ["<version>"]);
    }

    /// The dialect follows the program's name, wherever it lives.
    #[test]
    fn selected_by_name() {
        assert!(invoked_as_toxiproxy_cli(
            &"/usr/local/bin/toxiproxy-cli".into()
        ));
        assert!(invoked_as_toxiproxy_cli(&"toxiproxy-cli".into()));
        assert!(!invoked_as_toxiproxy_cli(&"/faultline-cli".into()));
    }

    /// Numbers print as Go prints a float64.
    #[test]
    fn go_number_format() {
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(100_000.0), "100000");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(0.00001), "1e-05");
    }
}
