//! The real `faultline-cli` binary against an embedded faultline server: each command works,
//! and failures are clear and exit non-zero.

use faultline_client::{ProxyConfig, Server, Stream, Toxic};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs the CLI with `args` against `url`, off the async runtime so the embedded server in
/// this test keeps answering while the process waits.
async fn cli_at(url: &str, args: &[&str]) -> Output {
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_faultline-cli"))
            .env_remove("TOXIPROXY_URL")
            .arg("--host")
            .arg(url)
            .args(args)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

async fn cli(server: &Server, args: &[&str]) -> Output {
    cli_at(&server.url(), args).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts failure with `code` and returns stderr.
fn fails(out: Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// A server with a proxy called `db` (upstream is never dialled by these tests).
async fn server_with_db() -> Server {
    let server = Server::start().await.unwrap();
    server
        .create_proxy(ProxyConfig::new("db", "127.0.0.1:5432"))
        .await
        .unwrap();
    server
}

/// `create` makes a proxy on a server-picked port and says where it listens.
#[tokio::test]
async fn create_makes_a_proxy_and_prints_its_address() {
    let server = Server::start().await.unwrap();

    let out = ok(cli(&server, &["create", "-u", "127.0.0.1:6379", "redis"]).await);

    let proxy = server.proxy("redis").await.unwrap();
    assert_eq!(proxy.upstream(), "127.0.0.1:6379");
    assert!(out.contains("Created new proxy redis"), "{out}");
    assert!(out.contains(proxy.listen()), "{out}");
}

/// `new` with `--listen` is `create` with a fixed address.
#[tokio::test]
async fn create_alias_new_with_listen() {
    let server = Server::start().await.unwrap();

    ok(cli(
        &server,
        &[
            "new",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "x",
        ],
    )
    .await);

    assert!(server.proxy("x").await.is_ok());
}

/// `list` shows a table with every proxy; `ls` is the same.
#[tokio::test]
async fn list_shows_a_table_of_proxies() {
    let server = server_with_db().await;

    let out = ok(cli(&server, &["list"]).await);
    let alias = ok(cli(&server, &["ls"]).await);

    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("db") && out.contains("127.0.0.1:5432") && out.contains("enabled"));
    assert_eq!(out, alias);
}

/// `list --json` prints the proxies as JSON for scripts.
#[tokio::test]
async fn list_json_is_machine_readable() {
    let server = server_with_db().await;

    let out = ok(cli(&server, &["--json", "list"]).await);

    let proxies: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(proxies[0]["name"], "db");
    assert_eq!(proxies[0]["enabled"], true);
}

/// `inspect` shows the proxy and its toxics split by stream.
#[tokio::test]
async fn inspect_shows_toxics_by_stream() {
    let server = server_with_db().await;
    let db = server.proxy("db").await.unwrap();
    db.add_toxic(Toxic::latency(Duration::from_millis(1000)))
        .await
        .unwrap();

    let out = ok(cli(&server, &["inspect", "db"]).await);

    assert!(out.contains("Upstream toxics:\n  none"), "{out}");
    assert!(
        out.contains("latency_downstream: type=latency stream=downstream toxicity=1.00"),
        "{out}"
    );
    assert!(out.contains("latency=1000"), "{out}");
}

/// `toggle` disables an enabled proxy, and enables it again.
#[tokio::test]
async fn toggle_flips_enabled() {
    let server = server_with_db().await;

    let first = ok(cli(&server, &["toggle", "db"]).await);
    assert!(first.contains("disabled"), "{first}");
    assert!(!server.proxy("db").await.unwrap().is_enabled());

    ok(cli(&server, &["tog", "db"]).await);
    assert!(server.proxy("db").await.unwrap().is_enabled());
}

/// `delete` removes the proxy.
#[tokio::test]
async fn delete_removes_the_proxy() {
    let server = server_with_db().await;

    let out = ok(cli(&server, &["delete", "db"]).await);

    assert_eq!(out, "Deleted proxy db\n");
    assert!(server.proxy("db").await.unwrap_err().is_not_found());
}

/// `toxic add` sends typed attributes, stream, name and toxicity.
#[tokio::test]
async fn toxic_add_with_attributes() {
    let server = server_with_db().await;

    let out = ok(cli(
        &server,
        &[
            "toxic",
            "add",
            "-n",
            "slow",
            "-t",
            "latency",
            "--tox",
            "0.5",
            "-a",
            "latency=1000",
            "-a",
            "jitter=100",
            "-u",
            "db",
        ],
    )
    .await);

    assert_eq!(out, "Added upstream latency toxic 'slow' on proxy 'db'\n");
    let toxic = server
        .proxy("db")
        .await
        .unwrap()
        .toxic("slow")
        .await
        .unwrap();
    assert_eq!(toxic.stream, Stream::Upstream);
    assert_eq!(toxic.toxicity, 0.5);
    assert_eq!(toxic.attributes["latency"], 1000);
    assert_eq!(toxic.attributes["jitter"], 100);
}

/// faultline's extensions can be given on the command line.
#[tokio::test]
async fn toxic_add_with_faultline_extensions() {
    let server = server_with_db().await;

    let out = ok(cli(
        &server,
        &[
            "t",
            "a",
            "-t",
            "drop",
            "-a",
            "probability=0.5",
            "--duration",
            "1m",
            "--cidr",
            "10.0.0.0/8",
            "--fraction",
            "0.5",
            "--schedule",
            "2s/8s",
            "db",
        ],
    )
    .await);

    assert!(out.contains("Added downstream drop toxic"), "{out}");
    let toxic = server
        .proxy("db")
        .await
        .unwrap()
        .toxic("drop_downstream")
        .await
        .unwrap();
    assert!(toxic.remaining().unwrap() > Duration::from_secs(50));
    let target = toxic.target.unwrap();
    assert_eq!(
        (target.cidrs, target.fraction),
        (vec!["10.0.0.0/8".to_string()], Some(0.5))
    );
    assert_eq!(toxic.schedule.unwrap().off, Duration::from_secs(8));
}

/// `t a` defaults to downstream and the server's default name.
#[tokio::test]
async fn toxic_add_aliases_and_defaults() {
    let server = server_with_db().await;

    ok(cli(
        &server,
        &["t", "a", "-t", "bandwidth", "-a", "rate=0", "db"],
    )
    .await);

    let toxic = server
        .proxy("db")
        .await
        .unwrap()
        .toxic("bandwidth_downstream")
        .await
        .unwrap();
    assert_eq!(toxic.stream, Stream::Downstream);
}

/// `toxic update` changes only what is given; other attributes keep their values.
#[tokio::test]
async fn toxic_update_merges_attributes() {
    let server = server_with_db().await;
    let db = server.proxy("db").await.unwrap();
    db.add_toxic(
        Toxic::latency(Duration::from_millis(100))
            .jitter(Duration::from_millis(10))
            .name("slow"),
    )
    .await
    .unwrap();

    ok(cli(
        &server,
        &["toxic", "u", "-n", "slow", "-a", "latency=700", "db"],
    )
    .await);

    let toxic = db.toxic("slow").await.unwrap();
    assert_eq!(toxic.attributes["latency"], 700);
    assert_eq!(toxic.attributes["jitter"], 10);
    assert_eq!(toxic.toxicity, 1.0);
}

/// `toxic remove` (and its aliases) removes the toxic.
#[tokio::test]
async fn toxic_remove_removes() {
    let server = server_with_db().await;
    let db = server.proxy("db").await.unwrap();
    db.add_toxic(Toxic::noop().name("a")).await.unwrap();
    db.add_toxic(Toxic::noop().name("b").upstream())
        .await
        .unwrap();

    ok(cli(&server, &["toxic", "remove", "-n", "a", "db"]).await);
    ok(cli(&server, &["t", "d", "--toxicName", "b", "db"]).await);

    assert!(db.toxics().await.unwrap().is_empty());
}

/// `reset` enables every proxy and removes every toxic.
#[tokio::test]
async fn reset_clears_everything() {
    let server = server_with_db().await;
    let mut db = server.proxy("db").await.unwrap();
    db.add_toxic(Toxic::noop()).await.unwrap();
    db.disable().await.unwrap();

    ok(cli(&server, &["reset"]).await);

    db.refresh().await.unwrap();
    assert!(db.is_enabled() && db.info().toxics.is_empty());
}

/// `version` prints the CLI's and the server's versions.
#[tokio::test]
async fn version_shows_both_versions() {
    let server = Server::start().await.unwrap();

    let out = ok(cli(&server, &["--json", "version"]).await);

    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cli"], env!("CARGO_PKG_VERSION"));
    assert!(v["server"].as_str().unwrap().starts_with("2."));
}

/// The server URL can come from TOXIPROXY_URL, as for toxiproxy-cli.
#[tokio::test]
async fn host_from_toxiproxy_url() {
    let server = server_with_db().await;
    let url = server.url();

    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_faultline-cli"))
            .env("TOXIPROXY_URL", url)
            .args(["--json", "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    assert!(ok(out).contains("\"db\""));
}

/// A server that is not there: exit 1, and the message says where and what to check.
#[tokio::test]
async fn missing_server_fails_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let err = fails(cli_at(&url, &["list"]).await, 1);

    assert!(
        err.starts_with("error: cannot reach the API server"),
        "{err}"
    );
    assert!(err.contains("TOXIPROXY_URL"), "{err}");
}

/// An unknown proxy: exit 1 with the server's message.
#[tokio::test]
async fn unknown_proxy_fails_with_the_servers_message() {
    let server = Server::start().await.unwrap();

    let err = fails(cli(&server, &["inspect", "nope"]).await, 1);

    assert_eq!(err, "error: proxy not found (HTTP 404)\n");
}

/// A name that is taken: exit 1 with the conflict.
#[tokio::test]
async fn duplicate_proxy_fails_with_conflict() {
    let server = server_with_db().await;

    let err = fails(
        cli(&server, &["create", "-u", "127.0.0.1:1", "db"]).await,
        1,
    );

    assert!(err.contains("proxy already exists (HTTP 409)"), "{err}");
}

/// A malformed -a is refused before anything is sent: exit 2.
#[tokio::test]
async fn malformed_attribute_is_refused() {
    let server = server_with_db().await;

    let err = fails(
        cli(
            &server,
            &["toxic", "add", "-t", "latency", "-a", "latency", "db"],
        )
        .await,
        2,
    );

    assert!(err.contains("expected key=value"), "{err}");
    assert!(server.proxy("db").await.unwrap().info().toxics.is_empty());
}

/// A toxicity outside 0..1 is refused: exit 2.
#[tokio::test]
async fn toxicity_out_of_range_is_refused() {
    let server = server_with_db().await;

    let err = fails(
        cli(
            &server,
            &["toxic", "add", "-t", "noop", "--tox", "1.5", "db"],
        )
        .await,
        2,
    );

    assert!(err.contains("between 0 and 1"), "{err}");
}

/// An update with nothing to change is refused: exit 2.
#[tokio::test]
async fn empty_update_is_refused() {
    let server = server_with_db().await;

    let err = fails(cli(&server, &["toxic", "update", "-n", "x", "db"]).await, 2);

    assert!(
        err.contains("--tox") || err.contains("--attribute"),
        "{err}"
    );
}

/// A toxic type the server does not know: exit 1 with the server's reason.
#[tokio::test]
async fn unknown_toxic_type_fails_with_the_servers_reason() {
    let server = server_with_db().await;

    let err = fails(
        cli(&server, &["toxic", "add", "-t", "nonsense", "db"]).await,
        1,
    );

    assert!(err.contains("invalid toxic type (HTTP 400)"), "{err}");
}
