//! `faultline-cli`: manage proxies and toxics on faultline or any Toxiproxy v2 server, with
//! `toxiproxy-cli`'s command names and aliases. Under the name `toxiproxy-cli` it also takes
//! toxiproxy-cli's flag spellings and prints its outputs ([`compat`]).
//!
//! Output is a readable table or sentence by default and JSON with `--json`. Failures print
//! `error: ...` on stderr and exit with status 1 (2 for bad arguments).

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod args;
mod attributes;
mod compat;
mod output;

use args::{Attribute, Cli, Command, ToxicCommand};
use clap::{CommandFactory, FromArgMatches};
use faultline_client::{
    Client, Error, ProxyConfig, ProxyInfo, Schedule, Target, Toxic, ToxicInfo, ToxicUpdate,
};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// What a command did, rendered as text for people (faultline's or toxiproxy-cli's) or JSON.
#[derive(Debug)]
pub enum Outcome {
    List(Vec<ProxyInfo>),
    Inspect(ProxyInfo),
    Created(ProxyInfo),
    Toggled(ProxyInfo),
    Deleted(String),
    Reset,
    Version {
        server: String,
        faultline: Option<String>,
        url: String,
    },
    Added {
        proxy: String,
        toxic: ToxicInfo,
    },
    Updated {
        proxy: String,
        toxic: ToxicInfo,
    },
    Removed {
        proxy: String,
        name: String,
    },
}

/// Which command-line dialect is spoken.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    Faultline,
    ToxiproxyCli,
}

/// Why a command failed: the message, and the exit status (2 for bad arguments).
struct Failure {
    message: String,
    code: u8,
    /// Failed while looking the proxy up, before changing it (toxiproxy-cli words that
    /// `Failed to retrieve proxy NAME: ...` for `toggle` and `delete`).
    retrieving: bool,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure {
            message,
            code: 2,
            retrieving: false,
        }
    }

    fn retrieving(e: Error) -> Failure {
        Failure {
            retrieving: true,
            ..Failure::from(e)
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = if matches!(e, Error::UnknownAttribute { .. }) {
            2
        } else {
            1
        };
        Failure {
            message: e.to_string(),
            code,
            retrieving: false,
        }
    }
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    // The command line as typed, before the toxiproxy-cli dialect rewrites it: errors name
    // the flags the user wrote (`-a`, `-tox`), not their faultline-cli spellings.
    let typed_argv = argv.clone();
    let dialect = match argv.first() {
        Some(argv0) if compat::invoked_as_toxiproxy_cli(argv0) => Dialect::ToxiproxyCli,
        _ => Dialect::Faultline,
    };
    if dialect == Dialect::ToxiproxyCli {
        match compat::translate(argv) {
            compat::Translated::Version => {
                print!("{}", compat::version_line());
                return ExitCode::SUCCESS;
            }
            compat::Translated::Args(translated) => argv = translated,
        }
    }
    let cli = parse(argv, &typed_argv, dialect);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let typed = |a: &Attribute| flag_as_typed(&typed_argv, a);
    match runtime.block_on(run(&cli, &typed)) {
        Ok(outcome) => {
            let text = if cli.json {
                let mut text = serde_json::to_string_pretty(&as_json(&outcome)).unwrap_or_default();
                text.push('\n');
                text
            } else if dialect == Dialect::ToxiproxyCli {
                compat::render(&outcome, std::io::stdout().is_terminal())
            } else {
                output::render(&outcome)
            };
            // A closed pipe (`| head`) is not worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let message = match dialect {
                Dialect::ToxiproxyCli => {
                    compat::failure(&cli.command, &failure.message, failure.retrieving)
                }
                Dialect::Faultline => format!("error: {}", failure.message),
            };
            eprintln!("{}", with_hint(&cli, &message));
            ExitCode::from(failure.code)
        }
    }
}

/// The command line parsed, with `toxic add --help` listing the server's toxic types. A
/// value refused by its parser (`--tox 1.5`) is reported under the flag as `typed`.
fn parse(argv: Vec<OsString>, typed: &[OsString], dialect: Dialect) -> Cli {
    let mut command = Cli::command().mut_subcommand("toxic", |toxic| {
        toxic.mut_subcommand("add", |add| add.after_help(attributes::types_help()))
    });
    if dialect == Dialect::ToxiproxyCli {
        command = command.name(compat::NAME).bin_name(compat::NAME);
    }
    let matches = command
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| exit_naming_typed_flag(e, typed));
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Exits with clap's error, where a refused value's flag is named as the user typed it:
/// clap names the flag's canonical spelling (`--tox`) even for `--toxicity` or `-tox`.
fn exit_naming_typed_flag(error: clap::Error, typed: &[OsString]) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::ValueValidation {
        error.exit();
    }
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (
        context(ContextKind::InvalidArg),
        context(ContextKind::InvalidValue),
    ) else {
        error.exit();
    };
    // `--tox <0..1>`: the flag, then its value name.
    let canonical = arg.split_whitespace().next().unwrap_or(&arg).to_string();
    let Some(flag) = typed_flag(typed, &value) else {
        error.exit();
    };
    let text = error.render().to_string().replacen(
        &format!("'{arg}'"),
        &format!("'{}'", arg.replacen(&canonical, &flag, 1)),
        1,
    );
    eprint!("{text}");
    std::process::exit(error.exit_code());
}

/// The flag that carried `value` on the command line as typed: `-x value`, `-x=value`, or
/// one of the comma-separated values of `-x a,b` (toxiproxy-cli's `-a` splits them).
fn typed_flag(argv: &[OsString], value: &str) -> Option<String> {
    let argv: Vec<&str> = argv.iter().filter_map(|a| a.to_str()).collect();
    let holds = |text: &str| text == value || text.split(',').any(|v| v == value);
    for (i, arg) in argv.iter().enumerate().skip(1) {
        if holds(arg) && argv[i - 1].starts_with('-') && argv[i - 1] != "--" {
            return Some(argv[i - 1].to_string());
        }
        if let Some((flag, rest)) = arg.split_once('=') {
            if flag.starts_with('-') && flag.len() > 1 && !rest.is_empty() && holds(rest) {
                return Some(flag.to_string());
            }
        }
    }
    None
}

/// The error, with a hint where one helps.
fn with_hint(cli: &Cli, message: &str) -> String {
    if message.contains("cannot reach the API server") {
        format!(
            "{message}\nhint: is the server running at {}? Set --host or TOXIPROXY_URL.",
            cli.host
        )
    } else if message.contains("(HTTP 401)") {
        format!(
            "{message}\nhint: the server wants an API token: set {}.",
            faultline_client::TOKEN_ENV
        )
    } else {
        message.to_string()
    }
}

/// How the user spelled the flag that carried `attribute` (`-a`, `--attribute`), so errors
/// point at what was typed; `argv` is the command line before any dialect rewrote it.
fn flag_as_typed(argv: &[OsString], attribute: &Attribute) -> String {
    // Otherwise the value was attached to the short flag: `-alatency=100`.
    typed_flag(argv, &attribute.text).unwrap_or_else(|| "-a".into())
}

async fn run(cli: &Cli, typed: &dyn Fn(&Attribute) -> String) -> Result<Outcome, Failure> {
    let client = Client::new(&cli.host)?;
    execute(&client, &cli.command, typed).await
}

async fn execute(
    client: &Client,
    command: &Command,
    typed: &dyn Fn(&Attribute) -> String,
) -> Result<Outcome, Failure> {
    Ok(match command {
        Command::List => {
            let proxies = client.proxies().await?;
            Outcome::List(proxies.iter().map(|p| p.info().clone()).collect())
        }
        Command::Inspect { proxy } => Outcome::Inspect(client.proxy(proxy).await?.info().clone()),
        Command::Create {
            listen,
            upstream,
            protocol,
            upstream_tls,
            upstream_sni,
            proxy,
        } => {
            let mut config = ProxyConfig::new(proxy.clone(), upstream).listen(listen);
            config.protocol = *protocol;
            if *upstream_tls {
                config = config.upstream_tls(upstream_sni.as_deref());
            }
            Outcome::Created(client.create_proxy(config).await?.info().clone())
        }
        Command::Toggle { proxy } => {
            let mut handle = client.proxy(proxy).await.map_err(Failure::retrieving)?;
            handle.toggle().await?;
            Outcome::Toggled(handle.info().clone())
        }
        Command::Delete { proxy } => {
            let handle = client.proxy(proxy).await.map_err(Failure::retrieving)?;
            handle.delete().await?;
            Outcome::Deleted(proxy.clone())
        }
        Command::Reset => {
            client.reset().await?;
            Outcome::Reset
        }
        Command::Version => Outcome::Version {
            server: client.version().await?,
            faultline: client.faultline_version().await?,
            url: client.url().to_string(),
        },
        Command::Toxic(ToxicCommand::Add {
            name,
            kind,
            toxicity,
            attributes,
            upstream,
            downstream: _,
            duration,
            cidrs,
            fraction,
            schedule,
            proxy,
        }) => {
            let attrs = attributes::resolve(kind, attributes, typed).map_err(Failure::usage)?;
            let mut toxic = Toxic::custom(kind.clone(), Value::Object(attrs));
            toxic = if *upstream {
                toxic.upstream()
            } else {
                toxic.downstream()
            };
            if let Some(name) = name {
                toxic = toxic.name(name.clone());
            }
            if let Some(toxicity) = toxicity {
                toxic = toxic.toxicity(*toxicity);
            }
            if let Some(duration) = duration {
                toxic = toxic.for_duration(*duration);
            }
            if !cidrs.is_empty() || fraction.is_some() {
                toxic = toxic.target(Target {
                    cidrs: cidrs.clone(),
                    fraction: *fraction,
                });
            }
            if let Some((on, off)) = schedule {
                toxic = toxic.schedule(Schedule::new(*on, *off));
            }
            let added = client.proxy(proxy).await?.add_toxic(toxic).await?;
            Outcome::Added {
                proxy: proxy.clone(),
                toxic: added,
            }
        }
        Command::Toxic(ToxicCommand::Update {
            name,
            toxicity,
            attributes,
            proxy,
        }) => {
            let handle = client.proxy(proxy).await?;
            let mut update = ToxicUpdate::new();
            if let Some(toxicity) = toxicity {
                update = update.toxicity(*toxicity);
            }
            if !attributes.is_empty() {
                // Units and names are checked against the live toxic's type.
                let current = handle.toxic(name).await?;
                let attrs = attributes::resolve(&current.type_name, attributes, typed)
                    .map_err(Failure::usage)?;
                for (key, value) in attrs {
                    update = update.attribute(key, value);
                }
            }
            let updated = handle.update_toxic(name, update).await?;
            Outcome::Updated {
                proxy: proxy.clone(),
                toxic: updated,
            }
        }
        Command::Toxic(ToxicCommand::Remove { name, proxy }) => {
            client.proxy(proxy).await?.remove_toxic(name).await?;
            Outcome::Removed {
                proxy: proxy.clone(),
                name: name.clone(),
            }
        }
    })
}

/// `--json`'s output.
fn as_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::List(infos) => json!(infos),
        Outcome::Inspect(info) | Outcome::Created(info) | Outcome::Toggled(info) => json!(info),
        Outcome::Deleted(name) => json!({ "deleted": name }),
        Outcome::Reset => json!({ "reset": true }),
        Outcome::Version {
            server,
            faultline,
            url,
        } => {
            json!({ "cli": env!("CARGO_PKG_VERSION"), "server": server, "faultline": faultline, "url": url })
        }
        Outcome::Added { toxic, .. } | Outcome::Updated { toxic, .. } => json!(toxic),
        Outcome::Removed { proxy, name } => json!({ "removed": name, "proxy": proxy }),
    }
}
