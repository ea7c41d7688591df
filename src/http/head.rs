//! Writing heads: a received head with header edits applied, and the synthetic responses of
//! `http_status`. Lines no edit touches are copied byte for byte.

use super::parse::Head;
use super::rules::{Answer, HeaderEdits};
use bytes::{BufMut, Bytes, BytesMut};

/// `head` with `edits` applied: removed and replaced headers are left out, then the set
/// headers are appended before the blank line. Every other line is copied unchanged.
pub fn edit(head: &Head, edits: &HeaderEdits) -> Bytes {
    if edits.is_empty() {
        return head.raw.clone();
    }
    let raw = &head.raw[..];
    let start_line_end = raw.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut out = BytesMut::with_capacity(raw.len() + 64);
    out.put_slice(&raw[..start_line_end]);
    let dropped = |name: &str| {
        edits.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
            || edits.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
    };
    for line in &head.headers {
        if !dropped(head.name(line)) {
            out.put_slice(&raw[line.line.clone()]);
        }
    }
    for (name, value) in &edits.set {
        put_header(&mut out, name, value);
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

fn put_header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// The bytes of a synthetic response. Its length is always stated (a Content-Length the
/// toxic set is replaced), so the connection stays usable; `close` adds `Connection: close`.
pub fn answer(answer: &Answer, close: bool) -> Bytes {
    let reason = axum::http::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let bodyless = (100..200).contains(&answer.status) || matches!(answer.status, 204 | 304);
    let mut out = BytesMut::with_capacity(128 + answer.body.len());
    out.put_slice(format!("HTTP/1.1 {} {reason}\r\n", answer.status).as_bytes());
    let mut has_type = false;
    for (name, value) in &answer.headers {
        let framing = name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection");
        has_type |= name.eq_ignore_ascii_case("content-type");
        if !framing {
            put_header(&mut out, name, value);
        }
    }
    if !bodyless {
        if !has_type && !answer.body.is_empty() {
            put_header(&mut out, "Content-Type", "text/plain; charset=utf-8");
        }
        put_header(&mut out, "Content-Length", &answer.body.len().to_string());
    }
    if close {
        put_header(&mut out, "Connection", "close");
    }
    out.put_slice(b"\r\n");
    if !bodyless {
        out.put_slice(answer.body.as_bytes());
    }
    out.freeze()
}

/// Whether `text` may be used as a header name.
pub fn valid_name(text: &str) -> bool {
    !text.is_empty() && axum::http::HeaderName::from_bytes(text.as_bytes()).is_ok()
}

/// Whether `text` may be used as a header value (no CR, LF or other control bytes).
pub fn valid_value(text: &str) -> bool {
    axum::http::HeaderValue::from_str(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse;

    fn head(text: &str) -> Head {
        parse::response(&mut BytesMut::from(text))
            .unwrap()
            .unwrap()
            .head
    }

    /// Without edits the head is the very bytes received, odd case and spacing included.
    #[test]
    fn untouched_head_is_unchanged() {
        let h = head("HTTP/1.1 200 OK\r\nx-ODD-Case:   spaced\r\nServer: s\r\n\r\n");
        assert_eq!(edit(&h, &HeaderEdits::default()), h.raw);
    }

    /// Removed and replaced headers go; others keep their bytes and order; set ones are added.
    #[test]
    fn edits_touch_only_named_headers() {
        let h = head("HTTP/1.1 200 OK\r\nA: 1\r\nserver: s\r\nB:2\r\nX-Set: old\r\n\r\n");
        let edits = HeaderEdits {
            set: vec![("X-Set".into(), "new".into())],
            remove: vec!["Server".into()],
        };
        assert_eq!(
            &edit(&h, &edits)[..],
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nX-Set: new\r\n\r\n"
        );
    }

    /// A synthetic answer states its length and reason, and drops framing headers it was given.
    #[test]
    fn answer_is_well_framed() {
        let a = Answer {
            status: 429,
            headers: vec![
                ("Retry-After".into(), "2".into()),
                ("Content-Length".into(), "99".into()),
            ],
            body: "slow down".into(),
        };
        assert_eq!(
            &answer(&a, false)[..],
            &b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 9\r\n\r\nslow down"[..]
        );
        let empty = Answer {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
        };
        assert_eq!(
            &answer(&empty, true)[..],
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
    }
}
