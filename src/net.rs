//! Listen addresses as Toxiproxy users write and read them: Go's `host:port` syntax, its error
//! messages (the Go client's tests compare them), and Go's way of printing a bound address
//! (a wildcard listener is dual-stack and shows as `[::]:port`).

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Splits `host:port` (`[v6]:port` for IPv6) as Go's `net.SplitHostPort` does.
fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    let missing = || format!("address {addr}: missing port in address");
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {addr}: missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(missing)?;
        return Ok((host, port));
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(missing)?;
    if host.contains(':') {
        return Err(format!("address {addr}: too many colons in address"));
    }
    Ok((host, port))
}

/// Resolves a listen address; an empty host (or an empty address) means every interface.
pub async fn resolve_listen(addr: &str) -> Result<SocketAddr, String> {
    let addr = if addr.is_empty() { ":0" } else { addr };
    let (host, port) = split_host_port(addr)?;
    let port: u16 = match port.parse() {
        Ok(port) => port,
        Err(_) if port.is_empty() => 0,
        Err(_) => return Err(format!("address {addr}: invalid port")),
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| format!("lookup {host}: no such host"))?
        .collect::<Vec<_>>();
    // Prefer IPv4, as Go's resolver does for listening on "localhost".
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("lookup {host}: no such host"))
}

/// Binds a listener; an unspecified address listens on both IPv6 and IPv4 where possible.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let dual_stack = addr.ip().is_unspecified();
    let attempt = |addr: SocketAddr| -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() && dual_stack {
            socket.set_only_v6(false)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    let result = match attempt(addr) {
        // A host without IPv6 (common in containers) still gets an IPv4 wildcard listener.
        Err(e) if dual_stack && addr.is_ipv6() && e.kind() != io::ErrorKind::AddrInUse => attempt(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port()),
        ),
        other => other,
    };
    result.map_err(|e| format!("listen tcp {}: bind: {}", go_format(addr), os_message(&e)))
}

/// An address as Go prints it: `127.0.0.1:80`, `[::1]:80`, `[::]:80`.
pub fn go_format(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

/// Whether a listener bound at `bound` satisfies a request to listen on `wanted`: the same
/// interface (any wildcard matches any wildcard) and the same port. Port 0 asks for a new
/// port, as in Toxiproxy.
pub fn same_listen(bound: SocketAddr, wanted: SocketAddr) -> bool {
    let same_ip =
        bound.ip() == wanted.ip() || (bound.ip().is_unspecified() && wanted.ip().is_unspecified());
    same_ip && wanted.port() == bound.port()
}

/// An OS error as Go words it: lower case, without Rust's "(os error N)".
fn os_message(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address already in use".into(),
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's parse errors and address forms.
    #[tokio::test]
    async fn resolves_like_go() {
        assert_eq!(
            resolve_listen("bad").await.unwrap_err(),
            "address bad: missing port in address"
        );
        assert_eq!(
            resolve_listen("127.0.0.1:99999").await.unwrap_err(),
            "address 127.0.0.1:99999: invalid port"
        );
        assert_eq!(
            resolve_listen("localhost:7070").await.unwrap(),
            "127.0.0.1:7070".parse().unwrap()
        );
        assert!(resolve_listen(":0").await.unwrap().ip().is_unspecified());
        assert_eq!(go_format("[::1]:5000".parse().unwrap()), "[::1]:5000");
    }

    /// A taken port gives Go's exact message.
    #[test]
    fn bind_conflict_message() {
        let holder = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = holder.local_addr().unwrap();
        assert_eq!(
            bind(addr).unwrap_err(),
            format!("listen tcp {addr}: bind: address already in use")
        );
    }
}
