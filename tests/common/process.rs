//! The `faultline` binary run by a test: started (directly or through a wrapper such as
//! `prlimit` or `unshare` that execs it), its API address read from its "API listening" log
//! line, its log followed, and killed when the test is done with it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The binary under test, for a wrapper command to exec.
pub const BINARY: &str = env!("CARGO_BIN_EXE_faultline");

/// A running `faultline` process; killed when dropped.
pub struct Process {
    pub child: Child,
    /// The API's `host:port`, as the process logged it.
    pub api: String,
    log: Arc<Log>,
}

/// What a process wrote to stdout so far, and a signal for each change.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    grew: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// Stdout is closed: no more lines will come.
    ended: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// The binary with `args`, logging at `info` without colours (what [`Process::spawn`]
    /// reads).
    pub fn command(args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.args(args);
        logging(&mut command);
        command
    }

    /// Starts the binary with `args` and waits until its API listens.
    pub fn start(args: &[&str]) -> Process {
        Process::spawn(Process::command(args))
    }

    /// Starts `command` (the binary, or a wrapper that execs it: call [`logging`] on it) and
    /// waits up to 10 s for the "API listening" line, in either log format. Its stderr is discarded, so a chatty
    /// process never blocks on a full pipe.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Log::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                writer.state.lock().unwrap().lines.push(line);
                writer.grew.notify_all();
            }
            writer.state.lock().unwrap().ended = true;
            writer.grew.notify_all();
        });
        let mut process = Process {
            child,
            api: String::new(),
            log,
        };
        let listening = process.wait_for_line("API listening", Duration::from_secs(10));
        // `address=...` in the text format, a field in the JSON one (`--log-format json`).
        let address = match serde_json::from_str::<serde_json::Value>(&listening) {
            Ok(record) => record["fields"]["address"].as_str().map(str::to_string),
            Err(_) => listening
                .split("address=")
                .nth(1)
                .map(|a| a.trim().to_string()),
        };
        process.api = address.unwrap_or_else(|| panic!("no address in {listening:?}"));
        process
    }

    /// `http://<api><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.state.lock().unwrap().lines.clone()
    }

    /// How many log lines so far contain `text`.
    pub fn lines_with(&self, text: &str) -> usize {
        let state = self.log.state.lock().unwrap();
        state.lines.iter().filter(|l| l.contains(text)).count()
    }

    /// Waits up to `within` for a log line containing `text` (one already written counts);
    /// returns the first such line. Panics with the log so far when none comes (at once if
    /// the process has closed its stdout).
    pub fn wait_for_line(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut state = self.log.state.lock().unwrap();
        loop {
            if let Some(line) = state.lines.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !state.ended,
                "no log line with {text:?} ({}); the log:\n{}",
                if state.ended {
                    "stdout closed"
                } else {
                    "timed out"
                },
                state.lines.join("\n")
            );
            state = self.log.grew.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits up to `within` for the process to exit and returns its status; kills it and
    /// panics if it does not.
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let child = &mut self.child;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let _ = tx.send(child.wait());
            });
            match rx.recv_timeout(within) {
                Ok(status) => status.expect("the process can be waited for"),
                Err(_) => {
                    // Ends the wait above, so the scope can close.
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                    panic!("the process did not exit within {within:?}");
                }
            }
        })
    }
}

/// Sets the log level and format that [`Process::spawn`] reads.
pub fn logging(command: &mut Command) -> &mut Command {
    command.env("RUST_LOG", "info").env("NO_COLOR", "1")
}
