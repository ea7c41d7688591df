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
    assert!(!v["faultline"].as_str().unwrap().is_empty());

    let text = ok(cli(&server, &["version"]).await);
    let faultline = v["faultline"].as_str().unwrap();
    assert!(
        text.contains(&format!("faultline {faultline} (Toxiproxy API 2.")),
        "{text}"
    );
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

    // The server names the type it received and lists the valid ones.
    assert!(
        err.contains("invalid toxic type \"nonsense\"; expected one of: latency")
            && err.contains("(HTTP 400)"),
        "{err}"
    );
}

/// A misspelled attribute is refused before sending: the message names the flag as typed,
/// the key and the valid ones (exit 2), and the server has no toxic.
#[tokio::test]
async fn unknown_attribute_names_the_flag_and_the_valid_keys() {
    let server = server_with_db().await;

    let err = fails(
        cli(
            &server,
            &[
                "toxic",
                "add",
                "-t",
                "bandwidth",
                "--attribute",
                "rate_kb=10",
                "db",
            ],
        )
        .await,
        2,
    );

    assert_eq!(
        err.trim_end(),
        "error: --attribute rate_kb=10: unknown attribute \"rate_kb\" for bandwidth; expected one of: rate"
    );
    assert!(server.proxy("db").await.unwrap().info().toxics.is_empty());
}

async fn latency_toxic_of_db(server: &Server) -> faultline_client::ToxicInfo {
    let db = server.proxy("db").await.unwrap();
    db.toxic("latency_downstream").await.unwrap()
}

/// Attribute names match in any case, as the server matches them: `-a LATENCY=1s` adds a
/// latency of 1000 ms.
#[tokio::test]
async fn attribute_names_match_in_any_case() {
    let server = server_with_db().await;

    ok(cli(
        &server,
        &["toxic", "add", "-t", "latency", "-a", "LATENCY=1s", "db"],
    )
    .await);

    let toxic = latency_toxic_of_db(&server).await;
    assert_eq!(toxic.attributes["latency"], 1000);
}

/// Durations take units: `-a latency=1s` is 1000 ms, on add and on update.
#[tokio::test]
async fn durations_take_units() {
    let server = server_with_db().await;

    ok(cli(
        &server,
        &[
            "toxic",
            "add",
            "-t",
            "latency",
            "-a",
            "latency=1s",
            "-a",
            "jitter=250ms",
            "db",
        ],
    )
    .await);
    let toxic = latency_toxic_of_db(&server).await;
    assert_eq!(
        (
            toxic.attributes["latency"].as_i64(),
            toxic.attributes["jitter"].as_i64()
        ),
        (Some(1000), Some(250))
    );

    ok(cli(
        &server,
        &[
            "toxic",
            "update",
            "-n",
            "latency_downstream",
            "-a",
            "latency=2s",
            "db",
        ],
    )
    .await);
    let toxic = latency_toxic_of_db(&server).await;
    assert_eq!(toxic.attributes["latency"], 2000);
}

/// `toxic add --help` lists every toxic type with its attributes and units.
#[tokio::test]
async fn toxic_add_help_lists_types_with_units() {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline-cli"))
        .args(["toxic", "add", "--help"])
        .output()
        .unwrap();
    let help = ok(out);
    for kind in faultline_client::catalogue::TYPES {
        assert!(
            help.contains(&format!("\n  {}", kind.name)),
            "{} missing:\n{help}",
            kind.name
        );
    }
    assert!(
        help.contains("latency=<ms>") && help.contains("rate=<KB/s>"),
        "{help}"
    );
}

/// FAULTLINE_API_TOKEN is sent as `Authorization: Bearer`, read from a real socket.
#[tokio::test]
async fn api_token_comes_from_the_environment() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the headers ended");
            request.extend_from_slice(&buf[..n]);
        }
        let body = "{}";
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).to_ascii_lowercase()
    });

    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_faultline-cli"))
            .env("FAULTLINE_API_TOKEN", "s3cret")
            .args(["--host", &url, "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    ok(out);
    let request = seen.join().unwrap();
    assert!(
        request.contains("\r\nauthorization: bearer s3cret\r\n"),
        "{request}"
    );
}

/// `toxic add --help` lists every type of the catalogue with its attributes (the CLI's
/// catalogue is the server's own; `cli_adds_every_type_the_running_server_lists` checks the
/// CLI against a running server).
#[tokio::test]
async fn toxic_add_help_lists_every_catalogue_type() {
    let help = ok(cli_at("http://127.0.0.1:9", &["toxic", "add", "--help"]).await);
    for kind in faultline::toxics::TYPES {
        let listed = help
            .lines()
            .any(|l| l.split_whitespace().next() == Some(kind.name));
        assert!(
            listed,
            "the CLI does not know the server's toxic type {}",
            kind.name
        );
        for attribute in kind.attributes {
            assert!(
                help.contains(&format!("{}=", attribute.name)),
                "the CLI does not list attribute {} of {}",
                attribute.name,
                kind.name
            );
        }
    }
}

/// A valid value, as `-a` takes it, for an attribute the server describes at /toxic-types, and
/// the JSON the server should then hold; `None` for an optional string with no valid generic
/// value.
fn attribute_value(attribute: &Value) -> Option<(String, Value)> {
    let default = &attribute["default"];
    let value = match attribute["type"].as_str().unwrap() {
        "integer" => {
            let (min, max) = (
                attribute["min"].as_i64().unwrap(),
                attribute["max"].as_i64().unwrap(),
            );
            // Not the default, so the server holding it shows the CLI sent it.
            Value::from((default.as_i64().unwrap() + 1).clamp(min.max(1), max))
        }
        "number" => {
            let (default, max) = (
                default.as_f64().unwrap(),
                attribute["max"].as_f64().unwrap(),
            );
            Value::from(if default < max {
                (default + max.min(1.0)) / 2.0
            } else {
                default
            })
        }
        "choice" => attribute["choices"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone(),
        "boolean" => Value::from(!default.as_bool().unwrap()),
        "object" => serde_json::json!({"X-Cli": "1"}),
        "array" => serde_json::json!(["X-Cli"]),
        "string" => match attribute["name"].as_str().unwrap() {
            // The HTTP match attributes, documented with these forms.
            "method" => Value::from("POST"),
            "path_prefix" => Value::from("/v1"),
            "header" => Value::from("X-Tenant: ^blue$"),
            _ if default.as_str().is_some_and(|d| !d.is_empty()) => default.clone(),
            _ => return None,
        },
        other => panic!("unknown attribute type {other} in {attribute}"),
    };
    let text = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((text, value))
}

/// For every type a running server lists at GET /toxic-types, the real binary's `toxic add`
/// with a value for each described attribute succeeds on an HTTP proxy, and the server then
/// holds a toxic of that type with exactly those values.
#[tokio::test]
async fn cli_adds_every_type_the_running_server_lists() {
    let server = Server::start().await.unwrap();
    ok(cli(
        &server,
        &["create", "--protocol", "http", "-u", "127.0.0.1:9", "api"],
    )
    .await);
    let http = reqwest::Client::new();
    let types: Value = http
        .get(format!("{}/toxic-types", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types = types.as_array().unwrap();
    assert!(
        types.iter().any(|t| t["name"] == "http_status"),
        "{types:?}"
    );
    for kind in types {
        let type_name = kind["name"].as_str().unwrap();
        let mut args = vec![
            "toxic".to_string(),
            "add".into(),
            "-t".into(),
            type_name.into(),
            "-n".into(),
            type_name.into(),
        ];
        let mut expected = Vec::new();
        for attribute in kind["attributes"].as_array().unwrap() {
            let Some((text, value)) = attribute_value(attribute) else {
                continue;
            };
            let name = attribute["name"].as_str().unwrap();
            args.extend(["-a".to_string(), format!("{name}={text}")]);
            expected.push((name.to_string(), value));
        }
        args.push("api".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(cli(&server, &args).await);
        let toxic: Value = http
            .get(format!("{}/proxies/api/toxics/{type_name}", server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(toxic["type"], type_name, "{toxic}");
        for (name, value) in expected {
            let held = &toxic["attributes"][&name];
            let same = match (held.as_f64(), value.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-6,
                _ => *held == value,
            };
            assert!(
                same,
                "{type_name}.{name}: sent {value}, server holds {held}"
            );
        }
    }
}

/// `create --protocol http` makes an HTTP proxy, and HTTP toxics take JSON attributes.
#[tokio::test]
async fn http_proxy_and_http_toxic() {
    let server = Server::start().await.unwrap();
    let out = ok(cli(
        &server,
        &["create", "--protocol", "http", "-u", "127.0.0.1:9", "api"],
    )
    .await);
    assert!(out.contains("Created new HTTP proxy api"), "{out}");
    ok(cli(
        &server,
        &[
            "toxic",
            "add",
            "-t",
            "http_status",
            "-a",
            "status=429",
            "-a",
            r#"headers={"Retry-After":"2"}"#,
            "-a",
            "path_prefix=/v1",
            "api",
        ],
    )
    .await);
    let proxy = server.proxy("api").await.unwrap();
    assert_eq!(proxy.info().protocol, faultline_client::Protocol::Http);
    let toxic = proxy.toxic("http_status_downstream").await.unwrap();
    assert_eq!(
        toxic.kind(),
        Toxic::http_status(429)
            .set_header("Retry-After", "2")
            .path_prefix("/v1")
            .kind()
            .clone()
    );
    let err = fails(
        cli(
            &server,
            &["create", "--protocol", "udp", "-u", "127.0.0.1:9", "x"],
        )
        .await,
        2,
    );
    assert!(err.contains("tcp or http"), "{err}");
}
