//! The CLI run under the name `toxiproxy-cli` (a symlink, as in the image) against a real
//! faultline server: the command lines of toxiproxy-cli's documentation work unchanged and
//! print what toxiproxy-cli prints.

use faultline_client::{ProxyConfig, Server};
use std::path::PathBuf;
use std::process::{Command, Output};

/// A `toxiproxy-cli` symlink to the built binary, in a directory of this test's own.
fn toxiproxy_cli() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "faultline-toxiproxy-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("toxiproxy-cli");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_faultline-cli"), &link).unwrap();
    link
}

/// Runs `toxiproxy-cli ARGS` against `server` (through TOXIPROXY_URL, as toxiproxy-cli
/// reads it), off the async runtime so the embedded server keeps answering.
async fn run(server: &Server, args: &[&str]) -> Output {
    let url = server.url();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(toxiproxy_cli())
            .env("TOXIPROXY_URL", url)
            .env_remove("FAULTLINE_API_TOKEN")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Asserts success and returns stdout.
async fn ok(server: &Server, args: &[&str]) -> String {
    let out = run(server, args).await;
    assert!(
        out.status.success(),
        "toxiproxy-cli {args:?}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The README's walk-through: create, add a toxic, inspect, update, list, remove, toggle,
/// delete, each with toxiproxy-cli's exact output (stdout is not a terminal here).
#[tokio::test]
async fn documented_command_lines_print_toxiproxy_cli_output() {
    let server = Server::start().await.unwrap();

    let out = ok(
        &server,
        &[
            "create",
            "-l",
            "127.0.0.1:0",
            "-u",
            "localhost:6379",
            "redis",
        ],
    )
    .await;
    assert_eq!(out, "Created new proxy redis\n");
    let listen = server.proxy("redis").await.unwrap().listen().to_string();

    let out = ok(
        &server,
        &[
            "toxic",
            "add",
            "-t",
            "latency",
            "-a",
            "latency=1000",
            "redis",
        ],
    )
    .await;
    assert_eq!(
        out,
        "Added downstream latency toxic 'latency_downstream' on proxy 'redis'\n"
    );

    let out = ok(&server, &["inspect", "redis"]).await;
    assert_eq!(
        out,
        "latency_downstream\ttype=latency\tstream=downstream\ttoxicity=1.00\tattributes=[\tjitter=0\tlatency=1000\t]\n"
    );

    let out = ok(
        &server,
        &[
            "toxic",
            "update",
            "-n",
            "latency_downstream",
            "-a",
            "latency=110",
            "redis",
        ],
    )
    .await;
    assert_eq!(out, "Updated toxic 'latency_downstream' on proxy 'redis'\n");
    let toxic = server
        .proxy("redis")
        .await
        .unwrap()
        .toxic("latency_downstream")
        .await
        .unwrap();
    assert_eq!(toxic.attributes["latency"], 110);

    let out = ok(&server, &["list"]).await;
    assert_eq!(
        out,
        format!("redis\t{listen}\tlocalhost:6379\tenabled\t1\n")
    );

    let out = ok(
        &server,
        &["toxic", "remove", "-n", "latency_downstream", "redis"],
    )
    .await;
    assert_eq!(out, "Removed toxic 'latency_downstream' on proxy 'redis'\n");

    let out = ok(&server, &["toggle", "redis"]).await;
    assert_eq!(out, "Proxy redis is now disabled\n");
    assert!(!server.proxy("redis").await.unwrap().is_enabled());

    let out = ok(&server, &["delete", "redis"]).await;
    assert_eq!(out, "Deleted proxy redis\n");
    assert!(server.proxies().await.unwrap().is_empty());
}

/// toxiproxy-cli's own spellings: `-h host:port` for the server, one-dash long flags
/// (`-tox`, `-toxicName`), `--toxicity`, `-u` for upstream, `-a k=v,k2=v2`, and the proxy
/// name before the flags.
#[tokio::test]
async fn toxiproxy_cli_flag_spellings() {
    let server = Server::start().await.unwrap();
    server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:5432"))
        .await
        .unwrap();
    let host = server.url().trim_start_matches("http://").to_string();

    let out = tokio::task::spawn_blocking(move || {
        Command::new(toxiproxy_cli())
            .env_remove("TOXIPROXY_URL")
            .args([
                "-h",
                &host,
                "toxic",
                "add",
                "db",
                "-t",
                "latency",
                "-toxicName",
                "slow",
            ])
            .args(["-tox", "0.5", "-u", "-a", "latency=500,jitter=50"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Added upstream latency toxic 'slow' on proxy 'db'\n"
    );

    let out = ok(
        &server,
        &[
            "toxic",
            "add",
            "-t",
            "reset_peer",
            "-a",
            "timeout=500",
            "--toxicity",
            "0.1",
            "db",
        ],
    )
    .await;
    assert_eq!(
        out,
        "Added downstream reset_peer toxic 'reset_peer_downstream' on proxy 'db'\n"
    );

    let toxics = server.proxy("db").await.unwrap().toxics().await.unwrap();
    let slow = toxics.iter().find(|t| t.name == "slow").unwrap();
    assert_eq!(
        (
            slow.attributes["latency"].as_i64(),
            slow.attributes["jitter"].as_i64()
        ),
        (Some(500), Some(50))
    );
    assert_eq!(slow.toxicity, 0.5);
    let reset = toxics
        .iter()
        .find(|t| t.name == "reset_peer_downstream")
        .unwrap();
    assert_eq!(reset.toxicity, 0.1);
}

/// `--version` prints toxiproxy-cli's version line.
#[tokio::test]
async fn version_flag() {
    let server = Server::start().await.unwrap();
    let out = ok(&server, &["--version"]).await;
    assert!(out.starts_with("toxiproxy-cli version "), "{out}");
}

/// A failure prints toxiproxy-cli's message on stderr and exits 1.
#[tokio::test]
async fn failures_read_like_toxiproxy_cli() {
    let server = Server::start().await.unwrap();
    let out = run(&server, &["inspect", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Failed to retrieve proxy nope: proxy not found"),
        "{err}"
    );
}

/// Asserts the command failed with `code` and returns stderr.
async fn fails(server: &Server, args: &[&str], code: i32) -> String {
    let out = run(server, args).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "toxiproxy-cli {args:?}: {err}"
    );
    err
}

/// A server with proxy `db` (its upstream is never dialed by these tests).
async fn server_with_db() -> Server {
    let server = Server::start().await.unwrap();
    server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:5432"))
        .await
        .unwrap();
    server
}

/// `toxic delete -n NAME PROXY` (toxiproxy-cli's alias of `remove`) removes that toxic and
/// prints toxiproxy-cli's line.
#[tokio::test]
async fn toxic_delete_removes_the_named_toxic() {
    let server = server_with_db().await;
    ok(
        &server,
        &["toxic", "add", "-t", "latency", "-n", "slow", "db"],
    )
    .await;
    let out = ok(&server, &["toxic", "delete", "-n", "slow", "db"]).await;
    assert_eq!(out, "Removed toxic 'slow' on proxy 'db'\n");
    assert!(server
        .proxy("db")
        .await
        .unwrap()
        .toxics()
        .await
        .unwrap()
        .is_empty());
}

/// `-d` adds the toxic to the downstream.
#[tokio::test]
async fn downstream_flag_adds_a_downstream_toxic() {
    let server = server_with_db().await;
    let out = ok(
        &server,
        &["toxic", "add", "-t", "latency", "-d", "-n", "down", "db"],
    )
    .await;
    assert_eq!(out, "Added downstream latency toxic 'down' on proxy 'db'\n");
    let toxic = server
        .proxy("db")
        .await
        .unwrap()
        .toxic("down")
        .await
        .unwrap();
    assert_eq!(toxic.stream, faultline_client::Stream::Downstream);
}

/// Repeated `-a key=value` flags each set their attribute, as in toxiproxy-cli's usage
/// example (`-a latency=100 -a jitter=50`).
#[tokio::test]
async fn repeated_attribute_flags_each_set_one() {
    let server = server_with_db().await;
    ok(
        &server,
        &[
            "toxic",
            "add",
            "-t",
            "latency",
            "-n",
            "lag",
            "-a",
            "latency=100",
            "-a",
            "jitter=50",
            "db",
        ],
    )
    .await;
    let toxic = server
        .proxy("db")
        .await
        .unwrap()
        .toxic("lag")
        .await
        .unwrap();
    assert_eq!(
        (
            toxic.attributes["latency"].as_i64(),
            toxic.attributes["jitter"].as_i64()
        ),
        (Some(100), Some(50))
    );
}

/// `toggle` prints toxiproxy-cli's line each way: disabled, then enabled again.
#[tokio::test]
async fn toggle_prints_the_new_state_each_way() {
    let server = server_with_db().await;
    assert_eq!(
        ok(&server, &["toggle", "db"]).await,
        "Proxy db is now disabled\n"
    );
    assert_eq!(
        ok(&server, &["toggle", "db"]).await,
        "Proxy db is now enabled\n"
    );
    assert!(server.proxy("db").await.unwrap().is_enabled());
}

/// `toggle` and `delete` of a missing proxy fail as toxiproxy-cli's do, at the look-up:
/// `Failed to retrieve proxy NAME: ...`, exit 1.
#[tokio::test]
async fn toggle_and_delete_of_a_missing_proxy_fail_at_the_look_up() {
    let server = Server::start().await.unwrap();
    for command in ["toggle", "delete"] {
        let err = fails(&server, &[command, "nope"], 1).await;
        assert!(
            err.starts_with("Failed to retrieve proxy nope: proxy not found"),
            "{command}: {err}"
        );
    }
}

/// A misspelled attribute is reported under `-a`, as typed, not the `--attribute` the
/// dialect rewrites it to; also when it is one of a comma-separated list.
#[tokio::test]
async fn unknown_attribute_names_dash_a_as_typed() {
    let server = server_with_db().await;
    for value in ["rate_kb=10", "rate=10,rate_kb=10"] {
        let err = fails(
            &server,
            &["toxic", "add", "-t", "bandwidth", "-a", value, "db"],
            2,
        )
        .await;
        assert!(
            err.starts_with("Failed to add toxic: -a rate_kb=10: unknown attribute \"rate_kb\""),
            "{value}: {err}"
        );
    }
    assert!(server
        .proxy("db")
        .await
        .unwrap()
        .toxics()
        .await
        .unwrap()
        .is_empty());
}

/// A toxicity out of range is reported under the flag as typed (`-tox`, `--toxicity`), not
/// faultline-cli's `--tox`.
#[tokio::test]
async fn bad_toxicity_names_the_flag_as_typed() {
    let server = server_with_db().await;
    for flag in ["-tox", "--toxicity", "-toxicity"] {
        let err = fails(
            &server,
            &["toxic", "add", "-t", "latency", flag, "1.5", "db"],
            2,
        )
        .await;
        assert!(
            err.contains(&format!("invalid value '1.5' for '{flag} <0..1>'")),
            "{flag}: {err}"
        );
    }
}
