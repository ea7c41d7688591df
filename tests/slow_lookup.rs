//! The registry lock is never held across a DNS lookup of a listen address: while a request
//! waits for its hostname to resolve, the rest of the API goes on.
//!
//! The lookup is the real one (glibc's `getaddrinfo`, as the binary does it), sent to a DNS
//! server run by the test, which answers only when the test lets it. glibc's resolver has no
//! port setting, so that server listens on UDP port 53 of a random 127.x.y.z address (its own
//! per test, so tests run in parallel), and the binary runs in a mount namespace of its own
//! (`unshare --mount`) where `/etc/resolv.conf` names it. That needs root (or
//! `CAP_SYS_ADMIN` and `CAP_NET_BIND_SERVICE`); without it the tests say SKIP.

mod common;

use common::process::{logging, Process, BINARY};
use serde_json::{json, Value};
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// The name whose lookup is held; `.test` is reserved, so no real DNS knows it.
const SLOW_NAME: &str = "slow.faultline.test";

/// How long another API call may take while the lookup is held. Generous: such a call
/// answers in milliseconds, while a call stuck behind the lookup would wait until the test
/// releases it, after this bound.
const PROMPT: Duration = Duration::from_secs(5);

/// A DNS server that reports each question and answers it (any name is 127.0.0.1, with no
/// IPv6 address) only once released.
struct HeldDns {
    ip: Ipv4Addr,
    questions: mpsc::UnboundedReceiver<String>,
    release: watch::Sender<bool>,
}

impl HeldDns {
    /// Listens on UDP port 53 of a free random 127.x.y.z; `Err` says why it could not.
    async fn start() -> Result<HeldDns, String> {
        let mut bound = None;
        for attempt in 0..64u64 {
            let r = RandomState::new().hash_one(attempt);
            let ip = Ipv4Addr::new(
                127,
                100 + (r % 100) as u8,
                (r >> 8) as u8,
                1 + ((r >> 16) % 254) as u8,
            );
            match UdpSocket::bind((ip, 53)).await {
                Ok(socket) => {
                    bound = Some((ip, socket));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(format!("cannot listen on {ip}:53/udp: {e}")),
            }
        }
        let (ip, socket) = bound.ok_or("no free loopback address for port 53")?;
        let socket = Arc::new(socket);
        let (asked, questions) = mpsc::unbounded_channel();
        let (release, released) = watch::channel(false);
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Some((name, reply)) = answer(&buf[..n]) else {
                    continue;
                };
                let _ = asked.send(name);
                let (socket, mut released) = (socket.clone(), released.clone());
                tokio::spawn(async move {
                    if released.wait_for(|go| *go).await.is_ok() {
                        let _ = socket.send_to(&reply, from).await;
                    }
                });
            }
        });
        Ok(HeldDns {
            ip,
            questions,
            release,
        })
    }

    /// Waits until a question for `name` arrives.
    async fn asked_for(&mut self, name: &str) {
        while let Some(asked) = self.questions.recv().await {
            if asked.eq_ignore_ascii_case(name) {
                return;
            }
        }
        unreachable!("the DNS server stopped");
    }

    fn release(&self) {
        self.release.send_replace(true);
    }
}

/// The name asked about in a DNS query, and the reply to it: the address 127.0.0.1 for an
/// `A` question, no record (and no error) for any other type.
fn answer(query: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let is_a = qtype == 1;
    let mut reply = Vec::with_capacity(question.len() + 28);
    reply.extend_from_slice(&query[..2]);
    // A response, authoritative, recursion as asked and available, no error.
    reply.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80]);
    reply.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if is_a {
        // The question's name (a pointer to it), A, IN, TTL 0, 4 bytes: 127.0.0.1.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]);
    }
    Some((labels.join("."), reply))
}

/// A `faultline` binary whose lookups go to a [`HeldDns`], and a client for its API.
struct Server {
    dns: HeldDns,
    process: Process,
    http: reqwest::Client,
    _files: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `/etc/resolv.conf`'s and `/etc/nsswitch.conf`'s replacements ($1, $2) over them, then
/// execs the rest of the arguments.
const IN_NAMESPACE: &str = r#"mount --bind "$1" /etc/resolv.conf \
  && { [ ! -e /etc/nsswitch.conf ] || mount --bind "$2" /etc/nsswitch.conf; } \
  && shift 2 && exec "$@""#;

impl Server {
    /// `None` (after saying SKIP) where this machine cannot run the binary so.
    async fn start(test: &str) -> Option<Server> {
        let skip = |why: String| {
            eprintln!("SKIP {test}: {why}");
            None
        };
        let dns = match HeldDns::start().await {
            Ok(dns) => dns,
            Err(why) => return skip(why),
        };
        let files = TempDir(std::env::temp_dir().join(format!(
            "faultline-slow-lookup-{}-{test}",
            std::process::id()
        )));
        std::fs::create_dir_all(&files.0).unwrap();
        let resolv = files.0.join("resolv.conf");
        let nsswitch = files.0.join("nsswitch.conf");
        // One server, no search domains; glibc waits up to 30 s per try, so the held answer
        // is never retried into a failure.
        std::fs::write(
            &resolv,
            format!("nameserver {}\noptions timeout:30 attempts:2\n", dns.ip),
        )
        .unwrap();
        std::fs::write(&nsswitch, "hosts: files dns\n").unwrap();
        let in_namespace = |program: &str, args: &[&str]| {
            let mut command = Command::new("unshare");
            command
                .args(["--mount", "--", "sh", "-c", IN_NAMESPACE, "sh"])
                .arg(&resolv)
                .arg(&nsswitch)
                .arg(program)
                .args(args)
                .env_remove("LOCALDOMAIN")
                .env_remove("RES_OPTIONS")
                .env_remove("HOSTALIASES");
            command
        };
        match in_namespace("true", &[]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return skip(format!(
                    "cannot replace /etc/resolv.conf in a mount namespace: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => return skip(format!("cannot run unshare (util-linux): {e}")),
        }
        let mut command = in_namespace(BINARY, &["--host", "127.0.0.1", "--port", "0"]);
        logging(&mut command);
        let process = Process::spawn(command);
        Some(Server {
            dns,
            process,
            http: reqwest::Client::new(),
            _files: files,
        })
    }

    /// Sends a request and returns its status and JSON body.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> impl std::future::Future<Output = (u16, Value)> + Send + 'static {
        let mut request = self.http.request(method, self.process.url(path));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        async move {
            let response = request.send().await.expect("the API answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, body)
        }
    }

    /// Starts `request` in the background and returns once its lookup of [`SLOW_NAME`] has
    /// reached the DNS server (where it is held).
    async fn held<T: Send + 'static>(
        &mut self,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let request = tokio::spawn(request);
        tokio::time::timeout(Duration::from_secs(10), self.dns.asked_for(SLOW_NAME))
            .await
            .expect("the lookup reaches the test's DNS server");
        request
    }

    /// While a lookup is held: another change and a read answer at once, and the held request
    /// is still waiting (so these calls did run during its lookup).
    async fn others_answer_during(&self, held: &tokio::task::JoinHandle<(u16, Value)>) {
        let quick = json!({"name": "quick", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"});
        let (status, body) = tokio::time::timeout(
            PROMPT,
            self.call(reqwest::Method::POST, "/proxies", Some(quick)),
        )
        .await
        .expect("creating another proxy answers while a lookup is held");
        assert_eq!(status, 201, "{body}");
        let (status, body) =
            tokio::time::timeout(PROMPT, self.call(reqwest::Method::GET, "/proxies", None))
                .await
                .expect("listing proxies answers while a lookup is held");
        assert_eq!(status, 200, "{body}");
        assert!(body.get("quick").is_some(), "{body}");
        assert!(
            !held.is_finished(),
            "the held request is still waiting for its lookup"
        );
    }
}

/// The listen address that a request resolved through the held DNS server.
fn resolved_listen(proxy: &Value) -> SocketAddr {
    let listen: SocketAddr = proxy["listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(listen.ip(), Ipv4Addr::LOCALHOST, "{proxy}");
    assert_ne!(listen.port(), 0, "{proxy}");
    listen
}

/// While creating a proxy whose listen hostname takes long to resolve, another proxy is
/// created and the list is read at once; once the lookup answers, the proxy listens there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lookup_on_create_does_not_hold_up_the_api() {
    let Some(mut server) = Server::start("a_slow_lookup_on_create_does_not_hold_up_the_api").await
    else {
        return;
    };
    let slow = json!({"name": "slow", "listen": format!("{SLOW_NAME}:0"),
                      "upstream": "127.0.0.1:1"});
    let creating = server
        .held(server.call(reqwest::Method::POST, "/proxies", Some(slow)))
        .await;
    server.others_answer_during(&creating).await;
    server.dns.release();
    let (status, body) = creating.await.unwrap();
    assert_eq!(status, 201, "{body}");
    let listen = resolved_listen(&body);
    tokio::net::TcpStream::connect(listen)
        .await
        .expect("the proxy listens where its name resolved");
}

/// While moving a proxy to a listen hostname that takes long to resolve, another proxy is
/// created and the list is read at once; once the lookup answers, the proxy has moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lookup_on_update_does_not_hold_up_the_api() {
    let Some(mut server) = Server::start("a_slow_lookup_on_update_does_not_hold_up_the_api").await
    else {
        return;
    };
    let moving = json!({"name": "moving", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"});
    let (status, body) = server
        .call(reqwest::Method::POST, "/proxies", Some(moving))
        .await;
    assert_eq!(status, 201, "{body}");
    let change = json!({"listen": format!("{SLOW_NAME}:0")});
    let updating = server
        .held(server.call(reqwest::Method::POST, "/proxies/moving", Some(change)))
        .await;
    server.others_answer_during(&updating).await;
    server.dns.release();
    let (status, updated) = updating.await.unwrap();
    assert_eq!(status, 200, "{updated}");
    assert_ne!(updated["listen"], body["listen"], "{updated}");
    resolved_listen(&updated);
}

/// While `/populate` waits for a listen hostname to resolve, another proxy is created and
/// the list is read at once; once the lookup answers, the populated proxy is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lookup_on_populate_does_not_hold_up_the_api() {
    let Some(mut server) =
        Server::start("a_slow_lookup_on_populate_does_not_hold_up_the_api").await
    else {
        return;
    };
    let list = json!([{"name": "slow", "listen": format!("{SLOW_NAME}:0"),
                       "upstream": "127.0.0.1:1"}]);
    let populating = server
        .held(server.call(reqwest::Method::POST, "/populate", Some(list)))
        .await;
    server.others_answer_during(&populating).await;
    server.dns.release();
    let (status, body) = populating.await.unwrap();
    assert_eq!(status, 201, "{body}");
    resolved_listen(&body["proxies"][0]);
}
