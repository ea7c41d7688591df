//! `faultline experiment run|validate`: flags, signals, the journal file and the exit code.

use crate::journal::Journal;
use crate::{load_file, run_experiment, view, Error, Settings, Stop, Vars};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Run chaos experiments written in Chaos Toolkit's open format against faultline.
#[derive(Debug, Parser)]
#[command(name = "faultline experiment")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment (JSON or YAML) and write its journal.
    ///
    /// Exit codes: 0 the hypothesis held, 2 it deviated (or was not met before the method),
    /// 3 aborted by a safeguard or --max-duration, 1 error (including a method action that
    /// failed), 130 interrupted (after rollbacks).
    Run {
        /// The experiment file.
        file: PathBuf,
        /// A configuration value, `name[:type]=value` (type: str, int, float, bool, json).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// A JSON/YAML file with `configuration` and `secrets`, or a `.env` file.
        #[arg(long = "var-file", value_name = "FILE")]
        var_files: Vec<PathBuf>,
        /// Where to write the journal.
        #[arg(long, default_value = "./journal.json")]
        journal: PathBuf,
        /// A faultline API to act on; repeat for a fleet (overrides the configuration).
        #[arg(long = "api", value_name = "URL")]
        apis: Vec<String>,
        /// Abort the run after this long (e.g. `90s`, `5m`).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_duration: Option<Duration>,
        /// Plain lines even on a terminal.
        #[arg(long)]
        no_live: bool,
    },
    /// Check an experiment file without running it.
    Validate {
        /// The experiment file.
        file: PathBuf,
    },
}

/// Runs the subcommand given `args` (starting with `experiment`) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(dispatch(args.command));
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn dispatch(command: Command) -> i32 {
    match command {
        Command::Validate { file } => match load_file(&file) {
            Ok(loaded) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}: valid experiment \"{}\" ({} hypothesis probes, {} method activities, {} \
                     rollbacks, {} safeguards)",
                    file.display(),
                    loaded.experiment.title,
                    loaded
                        .experiment
                        .steady_state_hypothesis
                        .as_ref()
                        .map(|h| h.probes.len())
                        .unwrap_or(0),
                    loaded.experiment.method.len(),
                    loaded.experiment.rollbacks.len(),
                    loaded.experiment.safeguards().count()
                );
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        Command::Run {
            file,
            vars,
            var_files,
            journal,
            apis,
            max_duration,
            no_live,
        } => {
            let mut settings = Settings {
                apis,
                max_duration,
                ..Settings::default()
            };
            if let Err(e) = collect_vars(&mut settings.vars, &vars, &var_files) {
                eprintln!("error: {e}");
                return 1;
            }
            run(
                file,
                journal,
                settings,
                !no_live && std::io::stdout().is_terminal(),
            )
            .await
        }
    }
}

fn collect_vars(vars: &mut Vars, specs: &[String], files: &[PathBuf]) -> Result<(), String> {
    for file in files {
        vars.add_file(file)?;
    }
    for spec in specs {
        vars.add_var(spec)?;
    }
    Ok(())
}

async fn run(file: PathBuf, journal_path: PathBuf, mut settings: Settings, live: bool) -> i32 {
    let loaded = match load_file(&file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    settings.events = Some(tx);
    let view = tokio::spawn(view::render(rx, live));
    let signals = tokio::spawn(stop_on_signals(settings.stopper.clone()));
    let result = run_experiment(&loaded, settings).await;
    signals.abort();
    let _ = view.await;
    match result {
        Ok(journal) => {
            let path = journal_path.display().to_string();
            let written = write_journal(&journal, &journal_path);
            if let Err(e) = &written {
                eprintln!("error: cannot write the journal to {path}: {e}");
            }
            println!();
            println!(
                "{}",
                view::summary(&journal, written.is_ok().then_some(&path))
            );
            journal.verdict().exit_code()
        }
        Err(Error::Load(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(Error::Setup(e)) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn write_journal(journal: &Journal, path: &std::path::Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(journal).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// Ctrl-C or SIGTERM stops the run; rollbacks and cleanup still run before the exit (130).
async fn stop_on_signals(stopper: crate::Stopper) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        stopper.stop(Stop::Interrupted(format!("{name} received")));
        // Further signals are ignored until rollbacks and cleanup are done.
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            stopper.stop(Stop::Interrupted("Ctrl-C received".into()));
        }
    }
}
