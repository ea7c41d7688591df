//! A minimal health probe for images without a shell or curl (faultline's image is `FROM
//! scratch`): one HTTP `GET`, exit status 0 on a 2xx answer, 1 otherwise.
//!
//! ```sh
//! healthcheck                                # GET http://127.0.0.1:$FAULTLINE_PORT/version
//! healthcheck http://faultline:8474/version  # any http:// URL (no TLS)
//! healthcheck --tcp echo:7000                # only check that a TCP connect succeeds
//! ```
//!
//! The default target is faultline's own API on this host: port `FAULTLINE_PORT` (default
//! 8474), path `/version`. It prints what it checked and how long that took. It uses only the
//! standard library, so it builds with a plain `rustc` into a static binary (see
//! `docker/build.sh`); the image runs it as its `HEALTHCHECK`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            let port = std::env::var("FAULTLINE_PORT").unwrap_or_else(|_| "8474".into());
            http_get(&format!("http://127.0.0.1:{port}/version"))
        }
        ["-h" | "--help"] => {
            println!("usage: healthcheck [http://HOST:PORT/PATH | --tcp HOST:PORT]");
            return ExitCode::SUCCESS;
        }
        ["--tcp", addr] => connect(addr).map(|_| format!("tcp {addr}: connected")),
        [url] => http_get(url),
        _ => Err("usage: healthcheck [http://HOST:PORT/PATH | --tcp HOST:PORT]".into()),
    };
    let took = started.elapsed().as_millis();
    match result {
        Ok(message) => {
            println!("healthy: {message} ({took} ms)");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("unhealthy: {message} ({took} ms)");
            ExitCode::FAILURE
        }
    }
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let mut last = format!("{addr}: no address");
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: cannot resolve: {e}"))?;
    for sock in addrs {
        match TcpStream::connect_timeout(&sock, TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr} ({sock}): {e}"),
        }
    }
    Err(last)
}

/// `GET`s an `http://host:port/path` URL; Ok with the status line on a 2xx answer.
fn http_get(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = connect(&addr)?;
    let io = |e: std::io::Error| format!("{url}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: faultline-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(io)?;
    let response = String::from_utf8_lossy(&response);
    let status_line = response
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status.len() == 3 && status.starts_with('2') {
        Ok(format!("{url}: {status_line}"))
    } else if status_line.is_empty() {
        Err(format!("{url}: empty answer"))
    } else {
        Err(format!("{url}: {status_line}"))
    }
}
