//! `faultline-cli`: manage proxies and toxics on faultline or any Toxiproxy v2 server, with
//! `toxiproxy-cli`'s command names and aliases.
//!
//! Output is a readable table or sentence by default and JSON with `--json`. Failures print
//! `error: ...` on stderr and exit with status 1 (2 for bad arguments).

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod args;
mod output;

use args::{Cli, Command, ToxicCommand};
use clap::Parser;
use faultline_client::{Client, Error, ProxyConfig, Schedule, Target, Toxic, ToxicUpdate};
use serde_json::{json, Value};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", explain(&cli, &e));
            ExitCode::FAILURE
        }
    }
}

/// The error, with a hint where one helps.
fn explain(cli: &Cli, e: &Error) -> String {
    if e.is_unreachable() {
        format!(
            "{e}\nhint: is the server running at {}? Set --host or TOXIPROXY_URL.",
            cli.host
        )
    } else {
        e.to_string()
    }
}

/// What a command printed: a value for `--json`, and text for people.
struct Report {
    json: Value,
    text: String,
}

async fn run(cli: &Cli) -> Result<(), Error> {
    let client = Client::new(&cli.host)?;
    let report = execute(&client, &cli.command).await?;
    if cli.json {
        let text = serde_json::to_string_pretty(&report.json).unwrap_or_default();
        println!("{text}");
    } else {
        print!("{}", report.text);
    }
    Ok(())
}

async fn execute(client: &Client, command: &Command) -> Result<Report, Error> {
    Ok(match command {
        Command::List => {
            let proxies = client.proxies().await?;
            let infos: Vec<_> = proxies.iter().map(|p| p.info().clone()).collect();
            Report {
                json: json!(infos),
                text: output::proxy_table(&infos),
            }
        }
        Command::Inspect { proxy } => {
            let info = client.proxy(proxy).await?.info().clone();
            Report {
                json: json!(info),
                text: output::inspect(&info),
            }
        }
        Command::Create {
            listen,
            upstream,
            proxy,
        } => {
            let config = ProxyConfig::new(proxy.clone(), upstream).listen(listen);
            let created = client.create_proxy(config).await?;
            Report {
                json: json!(created.info()),
                text: format!(
                    "Created new proxy {} listening on {} (upstream {})\n",
                    created.name(),
                    created.listen(),
                    created.upstream()
                ),
            }
        }
        Command::Toggle { proxy } => {
            let mut handle = client.proxy(proxy).await?;
            let enabled = handle.toggle().await?;
            Report {
                json: json!(handle.info()),
                text: format!(
                    "Proxy {} is now {}\n",
                    handle.name(),
                    if enabled { "enabled" } else { "disabled" }
                ),
            }
        }
        Command::Delete { proxy } => {
            client.proxy(proxy).await?.delete().await?;
            Report {
                json: json!({ "deleted": proxy }),
                text: format!("Deleted proxy {proxy}\n"),
            }
        }
        Command::Reset => {
            client.reset().await?;
            Report {
                json: json!({ "reset": true }),
                text: "Reset: every proxy enabled, every toxic removed\n".into(),
            }
        }
        Command::Version => {
            let server = client.version().await?;
            let cli = env!("CARGO_PKG_VERSION");
            Report {
                json: json!({ "cli": cli, "server": server, "url": client.url() }),
                text: format!("faultline-cli {cli}\nserver {server} at {}\n", client.url()),
            }
        }
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
            let attrs = attributes.iter().map(|a| (a.key.clone(), a.value.clone()));
            let mut toxic = Toxic::custom(kind.clone(), Value::Object(attrs.collect()));
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
            Report {
                text: format!(
                    "Added {} {} toxic '{}' on proxy '{proxy}'\n",
                    added.stream, added.type_name, added.name
                ),
                json: json!(added),
            }
        }
        Command::Toxic(ToxicCommand::Update {
            name,
            toxicity,
            attributes,
            proxy,
        }) => {
            let mut update = ToxicUpdate::new();
            if let Some(toxicity) = toxicity {
                update = update.toxicity(*toxicity);
            }
            for a in attributes {
                update = update.attribute(a.key.clone(), a.value.clone());
            }
            let updated = client
                .proxy(proxy)
                .await?
                .update_toxic(name, update)
                .await?;
            Report {
                text: format!(
                    "Updated toxic '{}' on proxy '{proxy}': {}\n",
                    updated.name,
                    output::toxic_line(&updated)
                ),
                json: json!(updated),
            }
        }
        Command::Toxic(ToxicCommand::Remove { name, proxy }) => {
            client.proxy(proxy).await?.remove_toxic(name).await?;
            Report {
                json: json!({ "removed": name, "proxy": proxy }),
                text: format!("Removed toxic '{name}' on proxy '{proxy}'\n"),
            }
        }
    })
}
