//! Runs that must stop early or must not start, and still leave nothing behind: a safeguard
//! tripping, SIGINT during the method, a malformed file, an unreachable API.

mod experiment_support;

use experiment_support::{ai, api_get, faultline, flags, proxy, run};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write(name: &str, experiment: &Value) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "faultline-{name}-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, serde_json::to_string_pretty(experiment).unwrap()).unwrap();
    path
}

fn latency_action(name: &str, proxy: &str) -> Value {
    json!({"type": "action", "name": name, "provider": {"type": "python",
        "module": "faultline.actions", "func": "add_toxic",
        "arguments": {"proxy": proxy, "name": name, "type": "latency",
                      "attributes": {"latency": 3000}}}})
}

fn disable_action(proxy: &str) -> Value {
    json!({"type": "action", "name": "cut", "provider": {"type": "python",
        "module": "chaostoxi.proxy.actions", "func": "disable_proxy",
        "arguments": {"proxy_name": proxy}}})
}

/// A safeguard checking the dependency every 200 ms trips once the method slows it down:
/// the run stops at once (long before its 30 s pause ends), exits 3, and the API shows the
/// proxy enabled with no toxic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safeguard_stops_the_run_early_and_nothing_is_left() {
    let api = faultline().await;
    let upstream = ai().await;
    let listen = proxy(&api.url(), "ai", &upstream).await;
    let experiment = json!({
        "title": "safeguard",
        "controls": [{"name": "guard", "provider": {"type": "python",
            "module": "chaosaddons.controls.safeguards", "arguments": {"probes": [
                {"type": "probe", "name": "ai-answers-in-time", "frequency": 0.2,
                 "tolerance": 200,
                 "provider": {"type": "http", "url": format!("http://{listen}/complete"),
                              "timeout": 1}}]}}}],
        "method": [
            latency_action("slow", "ai"),
            disable_action("other"),
            {"type": "action", "name": "wait", "pauses": {"after": 30},
             "provider": {"type": "process", "path": "true"}}
        ]
    });
    proxy(&api.url(), "other", &upstream).await;
    let file = write("safeguard", &experiment);
    let started = Instant::now();
    let out = run(&file, &flags(&api.url(), &[])).await;
    let took = started.elapsed();
    assert_eq!(out.code, 3, "{out}");
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
    assert_eq!(out.journal["status"], "aborted");
    assert_eq!(
        out.journal["faultline"]["aborted_by"],
        "safeguard 'ai-answers-in-time'"
    );
    let restored = out.journal["faultline"]["restored"].to_string();
    assert!(restored.contains("removed toxic slow"), "{restored}");
    let proxies = api_get(&api.url(), "/proxies").await;
    assert_eq!(proxies["ai"]["toxics"], json!([]));
    assert_eq!(proxies["other"]["enabled"], true);
    let _ = std::fs::remove_file(file);
}

/// SIGINT during the method: the real binary rolls back (the declared rollback and the
/// cleanup), exits 130, and the API is as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_method_still_rolls_back() {
    signal_during_the_method_rolls_back("INT").await;
}

/// SIGTERM (what `docker stop` and Kubernetes send) during the method: the same, rollbacks
/// and cleanup, exit 130, the API as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_method_still_rolls_back() {
    signal_during_the_method_rolls_back("TERM").await;
}

/// Runs an experiment that slows and disables the proxy `ai` then waits a minute, sends
/// `SIG<signal>` once it waits, and checks the rollbacks and cleanup put everything back.
async fn signal_during_the_method_rolls_back(signal: &str) {
    let api = faultline().await;
    let upstream = ai().await;
    proxy(&api.url(), "ai", &upstream).await;
    let experiment = json!({
        "title": "interrupted",
        "method": [
            latency_action("slow", "ai"),
            disable_action("ai"),
            {"type": "action", "name": "wait", "pauses": {"after": 60},
             "provider": {"type": "process", "path": "true"}}
        ],
        "rollbacks": [
            {"type": "action", "name": "declared-rollback", "provider": {"type": "python",
             "module": "chaostoxi.proxy.actions", "func": "enable_proxy",
             "arguments": {"proxy_name": "ai"}}}
        ]
    });
    let file = write(&format!("sig{signal}"), &experiment);
    let journal = experiment_support::journal_path(&format!("sig{signal}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["experiment", "run", "--api", &api.url(), "--journal"])
        .arg(&journal)
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run is in its long pause, i.e. after both faults are in place; the
    // reader thread keeps reading to the end, as a terminal would.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            let done = line.contains("pause 60s");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert!(lines.iter().any(|l| l.contains("pause 60s")), "{lines:?}");
    let during = api_get(&api.url(), "/proxies/ai").await;
    assert_eq!(during["enabled"], false);
    assert_eq!(during["toxics"].as_array().unwrap().len(), 1);

    let started = Instant::now();
    // The shell's own `kill`, so no procps package is needed.
    Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(20));
    let after = api_get(&api.url(), "/proxies/ai").await;
    assert_eq!(after["enabled"], true);
    assert_eq!(after["toxics"], json!([]));
    let journal_file = journal;
    let journal: Value =
        serde_json::from_str(&std::fs::read_to_string(&journal_file).unwrap()).unwrap();
    assert_eq!(journal["status"], "interrupted");
    assert_eq!(
        journal["faultline"]["aborted_by"],
        format!("SIG{signal} received")
    );
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(journal_file);
}

/// A hypothesis probe that errors (nothing listens where it asks) makes the run `failed`,
/// exit 1, and the declared rollbacks still run: the rollback's marker file appears.
#[tokio::test]
async fn rollbacks_run_when_a_hypothesis_probe_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let marker = std::env::temp_dir().join(format!(
        "faultline-rolled-back-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&marker);
    let file = write(
        "failed-run",
        &json!({
            "title": "failed",
            "steady-state-hypothesis": {"title": "answers", "probes": [
                {"type": "probe", "name": "answers", "tolerance": 200,
                 "provider": {"type": "http", "url": nobody, "timeout": 2}}]},
            "method": [
                {"type": "action", "name": "never", "provider": {"type": "process", "path": "true"}}
            ],
            "rollbacks": [
                {"type": "action", "name": "mark", "provider": {"type": "process",
                 "path": "touch", "arguments": [marker.to_str().unwrap()]}}
            ]
        }),
    );
    let out = run(&file, &[]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.journal["status"], "failed", "{out}");
    assert_eq!(
        out.journal["steady_states"]["before"]["probes"][0]["status"],
        "failed"
    );
    assert_eq!(out.journal["run"], json!([]), "the method did not run");
    assert_eq!(out.journal["rollbacks"][0]["status"], "succeeded", "{out}");
    assert!(marker.exists(), "the rollback did not run");
    let _ = std::fs::remove_file(&marker);
}

/// A malformed file is rejected before anything runs, with the field and the line.
#[test]
fn malformed_file_points_at_field_and_line() {
    let path =
        std::env::temp_dir().join(format!("faultline-malformed-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{
  "title": "typo",
  "method": [
    {
      "type": "action",
      "name": "slow",
      "provider": {
        "type": "python",
        "module": "chaostoxi.toxic.actions",
        "func": "create_latency_toxic",
        "arguments": {"for_proxy": "db", "toxic_name": "slow", "latenc": 100}
      }
    }
  ]
}
"#,
    )
    .unwrap();
    for command in ["validate", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["experiment", command])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(":11: at `method[0].provider.arguments.latenc`"),
            "{stderr}"
        );
        assert!(stderr.contains("no argument 'latenc'"), "{stderr}");
    }
    let _ = std::fs::remove_file(path);
}

/// An API nobody answers on is an error (exit 1) before anything runs.
#[tokio::test]
async fn unreachable_api_is_an_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = write(
        "unreachable",
        &json!({"title": "t", "method": [disable_action("x")]}),
    );
    let out = run(&file, &flags(&url, &[])).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unreachable"), "{}", out.stderr);
    let _ = std::fs::remove_file(file);
}

/// `--max-duration` aborts a run that would go on for a minute: exit 3, soon after the limit.
#[tokio::test]
async fn max_duration_aborts_the_run() {
    let file = write(
        "max-duration",
        &json!({"title": "long", "method": [
            {"type": "action", "name": "wait", "pauses": {"after": 60},
             "provider": {"type": "process", "path": "true"}}
        ]}),
    );
    let started = Instant::now();
    let out = run(&file, &["--max-duration".into(), "1s".into()]).await;
    let took = started.elapsed();
    assert_eq!(out.code, 3, "{out}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(out.journal["status"], "aborted");
    assert_eq!(
        out.journal["faultline"]["aborted_by"],
        "--max-duration 1s reached"
    );
    let _ = std::fs::remove_file(file);
}

/// Against an API that requires a token, the experiment runner sends the one in
/// `FAULTLINE_API_TOKEN` (as the client and the CLI do): with it the action succeeds and the
/// run cleans up; without it the action is refused (401) and the journal says it failed.
#[tokio::test]
async fn api_token_comes_from_the_environment() {
    use faultline::api::ApiOptions;
    use faultline::registry::{Options, Registry};
    use faultline::server::ServerHandle;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = ServerHandle::spawn_with(
        listener,
        Registry::new(Options::default()),
        ApiOptions {
            token: Some("s3cret".into()),
            ..ApiOptions::default()
        },
    )
    .unwrap();
    let api = server.url();
    let created = reqwest::Client::new()
        .post(format!("{api}/proxies"))
        .bearer_auth("s3cret")
        .json(&json!({"name": "dep", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let file = write(
        "token",
        &json!({"title": "token", "method": [latency_action("slow", "dep")]}),
    );
    let journal = experiment_support::journal_path("token");
    let run_with = |token: Option<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
        command
            .args(["experiment", "run"])
            .arg(&file)
            .args(["--api", &api])
            .arg("--journal")
            .arg(&journal)
            .env_remove("FAULTLINE_API_TOKEN")
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.env("FAULTLINE_API_TOKEN", token);
        }
        command.output()
    };
    let action_status = |journal: &std::path::Path| {
        let text = std::fs::read_to_string(journal).expect("a journal");
        let value: Value = serde_json::from_str(&text).expect("JSON journal");
        value["run"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    run_with(None).await.unwrap();
    assert_eq!(action_status(&journal), "failed", "acted without the token");
    let allowed = run_with(Some("s3cret")).await.unwrap();
    assert_eq!(
        action_status(&journal),
        "succeeded",
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let toxics: Value = reqwest::Client::new()
        .get(format!("{api}/proxies/dep/toxics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(toxics, json!([]), "the run cleaned up after itself");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(journal);
}

/// A method action that fails (here the API answers 404: no such proxy) while the hypothesis
/// holds is an error, not a pass: exit 1 and a summary warning naming the action, while the
/// journal keeps Chaos Toolkit's `completed`, not deviated.
#[tokio::test]
async fn failed_method_action_with_a_held_hypothesis_exits_1_and_warns() {
    let api = faultline().await;
    let file = write(
        "failed-action",
        &json!({
            "title": "the fault never lands",
            "steady-state-hypothesis": {"title": "fine", "probes": [
                {"type": "probe", "name": "fine", "tolerance": 0,
                 "provider": {"type": "process", "path": "true"}}]},
            "method": [disable_action("nope")]
        }),
    );
    let out = run(&file, &flags(&api.url(), &[])).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.journal["status"], "completed", "{out}");
    assert_eq!(out.journal["deviated"], false);
    assert_eq!(out.journal["run"][0]["status"], "failed");
    assert!(
        out.stdout
            .contains("WARNING: action 'cut' failed, so its fault may not have been injected"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("ERROR: A METHOD ACTION FAILED (exit 1)"),
        "{out}"
    );
}

/// `--var-file` through the real CLI: a JSON file's `configuration` overrides the
/// experiment's, so the hypothesis that checks the value holds (it would not without it).
#[tokio::test]
async fn var_file_overrides_the_configuration() {
    let vars = std::env::temp_dir().join(format!("faultline-vars-{}.json", std::process::id()));
    std::fs::write(&vars, r#"{"configuration": {"word": "from-the-file"}}"#).unwrap();
    let file = write(
        "var-file",
        &json!({
            "title": "var file",
            "configuration": {"word": "from-the-experiment"},
            "steady-state-hypothesis": {"title": "the word", "probes": [
                {"type": "probe", "name": "word-is-from-the-file", "tolerance": 0,
                 "provider": {"type": "process", "path": "test",
                              "arguments": ["${word}", "=", "from-the-file"]}}]},
            "method": [
                {"type": "action", "name": "nothing", "provider": {"type": "process", "path": "true"}}
            ]
        }),
    );
    let out = run(&file, &["--var-file".into(), vars.display().to_string()]).await;
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&vars);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.journal["steady_states"]["before"]["steady_state_met"],
        true
    );
}

/// `validate` on a good file exits 0 and says what the file holds.
#[test]
fn validate_accepts_a_good_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["experiment", "validate"])
        .arg(experiment_support::example("circuit-breaker.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("circuit-breaker.json: valid experiment \"Search survives"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(4 hypothesis probes, 3 method activities, 1 rollbacks, 0 safeguards)"),
        "{stdout}"
    );
}
