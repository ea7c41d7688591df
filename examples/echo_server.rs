//! A tiny upstream to put behind faultline: a TCP echo service and a one-line HTTP service.
//!
//! ```sh
//! cargo run --example echo_server -- --echo 127.0.0.1:7000 --http 127.0.0.1:8080
//! ```
//!
//! It uses only the standard library (one thread per connection), so it also builds with a
//! plain `rustc` into a static binary for a `FROM scratch` image (see `docker/build.sh`), where
//! it is the example upstream of the top-level `docker-compose.yml`.
//!
//! - `--echo ADDR` (default `0.0.0.0:7000`): every byte received is sent back.
//! - `--http ADDR` (default `0.0.0.0:8080`): any request gets `200 OK` and a short text body.
//!
//! Either can be turned off with `--echo off` / `--http off`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

const BODY: &str = "hello from the faultline example upstream\n";

fn main() {
    let mut echo = Some("0.0.0.0:7000".to_string());
    let mut http = Some("0.0.0.0:8080".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.trim_start_matches('-') {
            "echo" => &mut echo,
            "http" => &mut http,
            "h" | "help" => {
                println!("usage: echo_server [--echo ADDR|off] [--http ADDR|off]");
                return;
            }
            other => fail(&format!("unknown flag {other:?} (try --help)")),
        };
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        *slot = (value != "off").then_some(value);
    }
    if echo.is_none() && http.is_none() {
        fail("nothing to serve: both --echo and --http are off");
    }

    exit_on_sigterm();
    let mut servers = Vec::new();
    if let Some(addr) = echo {
        servers.push(serve("echo", &addr, echo_connection));
    }
    if let Some(addr) = http {
        servers.push(serve("http", &addr, http_connection));
    }
    for server in servers {
        let _ = server.join();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("echo_server: {message}");
    std::process::exit(2);
}

/// Binds `addr`, then handles each connection on its own thread.
fn serve(
    kind: &'static str,
    addr: &str,
    handle: fn(TcpStream) -> io::Result<()>,
) -> thread::JoinHandle<()> {
    let listener =
        TcpListener::bind(addr).unwrap_or_else(|e| fail(&format!("cannot listen on {addr}: {e}")));
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("echo_server: {kind} listening on {local}");
    thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    thread::spawn(move || {
                        let _ = stream.set_nodelay(true);
                        if let Err(e) = handle(stream) {
                            eprintln!("echo_server: {kind} connection: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("echo_server: {kind} accept: {e}"),
            }
        }
    })
}

/// Sends back every byte, as it arrives, until the client closes.
fn echo_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return stream.shutdown(std::net::Shutdown::Write);
        }
        stream.write_all(&buf[..n])?;
    }
}

/// Reads one request head, answers `200 OK` with a short body, then closes.
fn http_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = if head.starts_with(b"HEAD ") { "" } else { BODY };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        BODY.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// In a container this is PID 1, which the kernel does not stop on SIGTERM unless it handles
/// the signal: without this, `docker stop` would wait 10 s and then kill it.
#[cfg(unix)]
fn exit_on_sigterm() {
    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }
    extern "C" fn on_signal(_: i32) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(0) }
    }
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // SAFETY: installs a handler that only calls an async-signal-safe function.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

#[cfg(not(unix))]
fn exit_on_sigterm() {}
