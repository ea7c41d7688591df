//! Toxiproxy's browser guard, and the one exemption faultline makes for its own dashboard.
//!
//! Toxiproxy refuses every request whose `User-Agent` starts with `Mozilla/`, so that a web page
//! cannot drive the API of a developer's machine through their browser (CSRF). faultline keeps
//! that rule and lets two kinds of browser requests through:
//!
//! - `GET`/`HEAD` of the dashboard's static files (`/`, `/ui`, `/ui/...`): they hold no data and
//!   change nothing;
//! - requests carrying [`UI_HEADER`] that the browser marks as same-origin. A cross-site page
//!   can only send a custom header after a CORS preflight, which this server never approves
//!   (`OPTIONS` is a 405 without CORS headers, as in Toxiproxy); `Sec-Fetch-Site` and `Origin`,
//!   which pages cannot forge, must also say the request comes from the dashboard's own origin.
//!
//! Same-origin is not enough on its own: with DNS rebinding, a hostile page's own name comes to
//! point at this server, and its requests are then same-origin. The API's `Host` check stops
//! that when it listens on loopback; otherwise (a container on `0.0.0.0`) the dashboard's
//! requests pass only when `Host` is an address or `localhost` (names no one can rebind), or
//! when an API token is set (which a rebinding page does not have).

use axum::http::{header, HeaderMap, Method};
use std::net::IpAddr;

/// The header the dashboard sends with each of its requests.
pub const UI_HEADER: &str = "x-faultline-ui";

/// What the browser guard does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Toxiproxy's refusal of a browser.
    Refuse,
    /// The dashboard's own request, reaching the API through a host name while no token is
    /// set: DNS rebinding could be behind it.
    NeedsToken,
}

/// Decides on one request; `token_set` says whether the API requires a token.
pub fn verdict(method: &Method, path: &str, headers: &HeaderMap, token_set: bool) -> Verdict {
    let from_browser = headers
        .get(header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"Mozilla/"));
    if !from_browser || is_dashboard_file(method, path) {
        return Verdict::Pass;
    }
    let from_dashboard = headers.get(UI_HEADER).is_some_and(|v| v == "1") && same_origin(headers);
    match from_dashboard {
        false => Verdict::Refuse,
        true if token_set || host_cannot_be_rebound(headers) => Verdict::Pass,
        true => Verdict::NeedsToken,
    }
}

/// A read of one of the dashboard's static files, which hold no data and change nothing (so
/// neither the browser guard nor a token needs to protect them).
pub fn is_dashboard_file(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/" || path == "/ui" || path.starts_with("/ui/"))
}

/// `Host` is an IP address or `localhost` (which browsers resolve themselves), so no DNS answer
/// can have pointed it at this server.
fn host_cannot_be_rebound(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok()
}

/// Nothing the browser says contradicts a same-origin request: `Sec-Fetch-Site` (sent by
/// current browsers to trustworthy origins such as localhost) is `same-origin`, and `Origin`
/// (sent with every non-GET fetch) names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .map_or(true, |site| site == "same-origin");
    let origin_ok = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let (origin, host) = (origin.as_bytes(), host.as_bytes());
            [&b"http://"[..], b"https://"]
                .iter()
                .any(|scheme| origin.strip_prefix(*scheme) == Some(host))
        }
        (Some(_), None) => false,
    };
    site_ok && origin_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn passes(method: &Method, path: &str, headers: &HeaderMap) -> bool {
        verdict(method, path, headers, false) == Verdict::Pass
    }

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// Clients that are not browsers pass, as in Toxiproxy.
    #[test]
    fn non_browsers_pass() {
        let h = headers(&[("user-agent", "curl/8.0")]);
        assert!(passes(&Method::POST, "/proxies", &h));
        assert!(passes(&Method::POST, "/proxies", &HeaderMap::new()));
    }

    /// A browser without the dashboard header is refused, as in Toxiproxy.
    #[test]
    fn plain_browser_request_is_refused() {
        let h = headers(&[("user-agent", CHROME), ("host", "127.0.0.1:8474")]);
        assert!(!passes(&Method::GET, "/proxies", &h));
        assert!(!passes(&Method::POST, "/reset", &h));
    }

    /// A browser may load the dashboard's static files, and only with GET or HEAD.
    #[test]
    fn browser_may_load_dashboard_files() {
        let h = headers(&[("user-agent", CHROME)]);
        assert!(passes(&Method::GET, "/ui", &h));
        assert!(passes(&Method::GET, "/ui/app.js", &h));
        assert!(passes(&Method::GET, "/", &h));
        assert!(!passes(&Method::POST, "/ui", &h));
        assert!(!passes(&Method::GET, "/uix", &h));
    }

    /// The dashboard's own same-origin requests pass.
    #[test]
    fn dashboard_same_origin_request_passes() {
        let h = headers(&[
            ("user-agent", CHROME),
            ("host", "127.0.0.1:8474"),
            ("origin", "http://127.0.0.1:8474"),
            ("sec-fetch-site", "same-origin"),
            (UI_HEADER, "1"),
        ]);
        assert!(passes(&Method::POST, "/reset", &h));
    }

    /// Browsers that send no fetch metadata (plain-HTTP, non-local origins) pass on the header.
    #[test]
    fn dashboard_request_without_fetch_metadata_passes() {
        let h = headers(&[
            ("user-agent", CHROME),
            ("host", "10.0.0.5:8474"),
            (UI_HEADER, "1"),
        ]);
        assert!(passes(&Method::GET, "/proxies", &h));
    }

    /// The header does not help a request the browser marks as coming from another site.
    #[test]
    fn header_from_another_site_is_refused() {
        let h = headers(&[
            ("user-agent", CHROME),
            ("host", "127.0.0.1:8474"),
            ("sec-fetch-site", "cross-site"),
            (UI_HEADER, "1"),
        ]);
        assert!(!passes(&Method::POST, "/reset", &h));
    }

    /// The header does not help a request whose Origin is not the server's.
    #[test]
    fn header_with_foreign_origin_is_refused() {
        let h = headers(&[
            ("user-agent", CHROME),
            ("host", "127.0.0.1:8474"),
            ("origin", "http://localhost:9999"),
            (UI_HEADER, "1"),
        ]);
        assert!(!passes(&Method::POST, "/reset", &h));
    }

    fn dashboard_request(host: &'static str, origin: &'static str) -> HeaderMap {
        headers(&[
            ("user-agent", CHROME),
            ("host", host),
            ("origin", origin),
            (UI_HEADER, "1"),
        ])
    }

    /// Through a host name and without a token, the dashboard's request could come from a
    /// rebound page: it is refused, asking for a token.
    #[test]
    fn dashboard_through_host_name_needs_token() {
        let h = dashboard_request("faultline.example:8474", "http://faultline.example:8474");
        assert_eq!(
            verdict(&Method::POST, "/reset", &h, false),
            Verdict::NeedsToken
        );
        assert_eq!(verdict(&Method::POST, "/reset", &h, true), Verdict::Pass);
    }

    /// Addresses and localhost cannot be rebound, so no token is needed there.
    #[test]
    fn dashboard_through_address_or_localhost_passes() {
        for (host, origin) in [
            ("localhost:8474", "http://localhost:8474"),
            ("10.0.0.5:8474", "http://10.0.0.5:8474"),
            ("[::1]:8474", "http://[::1]:8474"),
        ] {
            let h = dashboard_request(host, origin);
            assert_eq!(
                verdict(&Method::POST, "/reset", &h, false),
                Verdict::Pass,
                "{host}"
            );
        }
    }
}
