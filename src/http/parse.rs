//! HTTP/1.1 message heads and body framing, sans-IO.
//!
//! Heads are parsed with `httparse`, which borrows from the buffer: we keep the raw head bytes
//! and only the offsets of each header line, so a head that no toxic edits is forwarded exactly
//! as it arrived (header case, order and spacing included). [`BodyReader`] is fed raw bytes
//! and says how many belong to the current body and where chunks end; body bytes are never
//! decoded or re-encoded, only counted.

use bytes::Bytes;
use std::ops::Range;

/// The largest head accepted; a longer one is a broken or hostile peer.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header lines in one head.
const MAX_HEADERS: usize = 128;

/// Why a message could not be parsed; the connection is then closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed HTTP head: {0}")]
    Head(httparse::Error),
    #[error("HTTP head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunk,
}

/// One header line of a raw head, as offsets into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLine {
    pub name: Range<usize>,
    pub value: Range<usize>,
    /// The whole line, its CRLF included.
    pub line: Range<usize>,
}

/// A parsed message head: the raw bytes and where each header is in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub raw: Bytes,
    pub headers: Vec<HeaderLine>,
    /// The `y` of `HTTP/1.y`.
    pub minor_version: u8,
}

/// Where each header parsed from `raw` is, as offsets into it.
fn header_lines(raw: &[u8], names: &[httparse::Header<'_>]) -> Vec<HeaderLine> {
    let base = raw.as_ptr() as usize;
    names
        .iter()
        .map(|h| {
            let name_start = h.name.as_ptr() as usize - base;
            let value_start = h.value.as_ptr() as usize - base;
            let value = value_start..value_start + h.value.len();
            let line_end = raw[value.end..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(raw.len(), |i| value.end + i + 1);
            HeaderLine {
                name: name_start..name_start + h.name.len(),
                value,
                line: name_start..line_end,
            }
        })
        .collect()
}

impl Head {
    pub fn name(&self, line: &HeaderLine) -> &str {
        std::str::from_utf8(&self.raw[line.name.clone()]).unwrap_or("")
    }

    pub fn value(&self, line: &HeaderLine) -> &[u8] {
        &self.raw[line.value.clone()]
    }

    /// Values of every header named `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| self.name(h).eq_ignore_ascii_case(name))
            .map(|h| self.value(h))
    }

    /// Whether a comma-separated header `name` lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Where the body is: chunked, or a Content-Length, or `None` when neither is given.
    fn framing(&self) -> Result<Option<Framing>, ParseError> {
        if let Some(last) = self.values("transfer-encoding").last() {
            let chunked = last
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            // A transfer coding other than chunked last: the body runs to the close.
            return Ok(Some(if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }));
        }
        let mut length = None;
        for value in self.values("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(ParseError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError::ContentLength);
            }
            length = Some(n);
        }
        Ok(length.map(Framing::Length))
    }

    /// Whether the message is a server-sent event stream (`Content-Type: text/event-stream`).
    pub fn is_event_stream(&self) -> bool {
        self.values("content-type").last().is_some_and(|v| {
            let media = v.split(|b| *b == b';').next().unwrap_or_default();
            media
                .trim_ascii()
                .eq_ignore_ascii_case(b"text/event-stream")
        })
    }

    /// Whether the sender asked to close the connection after this message.
    pub fn wants_close(&self) -> bool {
        if self.minor_version == 0 {
            !self.has_token("connection", "keep-alive")
        } else {
            self.has_token("connection", "close")
        }
    }
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// The body ends when the sender closes (responses only).
    UntilClose,
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub head: Head,
    pub method: String,
    pub target: String,
    pub framing: Framing,
}

impl Request {
    /// `Expect: 100-continue`: the client waits for an interim response before its body.
    pub fn expects_continue(&self) -> bool {
        self.head.has_token("expect", "100-continue")
    }

    /// The client asks to switch protocols (WebSocket) or to open a tunnel.
    pub fn wants_upgrade(&self) -> bool {
        self.method.eq_ignore_ascii_case("CONNECT")
            || (self.head.has_token("connection", "upgrade")
                && self.head.values("upgrade").next().is_some())
    }

    /// The path of the target, without its query (for `path_prefix` matching).
    pub fn path(&self) -> &str {
        let target = self.target.as_str();
        // An absolute-form target (`http://host/path`) is matched on its path too.
        let path = match target.find("://") {
            Some(i) => target[i + 3..]
                .find('/')
                .map_or("/", |j| &target[i + 3 + j..]),
            None => target,
        };
        path.split('?').next().unwrap_or(path)
    }
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub head: Head,
    pub status: u16,
}

impl Response {
    /// How this response's body is delimited, given the request it answers.
    pub fn framing(&self, request_method: &str) -> Result<Framing, ParseError> {
        let no_body = request_method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304;
        if no_body {
            return Ok(Framing::Length(0));
        }
        Ok(self.head.framing()?.unwrap_or(Framing::UntilClose))
    }
}

/// A request head from the start of `buf`: `Ok(None)` until it is complete. On success the
/// head's bytes have been split off `buf`.
pub fn request(buf: &mut bytes::BytesMut) -> Result<Option<Request>, ParseError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf).map_err(ParseError::Head)? {
        httparse::Status::Partial => return partial(buf),
        httparse::Status::Complete(len) => len,
    };
    let method = parsed.method.unwrap_or_default().to_string();
    let target = parsed.path.unwrap_or_default().to_string();
    let minor_version = parsed.version.unwrap_or(1);
    let headers = header_lines(buf, parsed.headers);
    let head = Head {
        raw: buf.split_to(len).freeze(),
        headers,
        minor_version,
    };
    let framing = head.framing()?.unwrap_or(Framing::Length(0));
    if framing == Framing::UntilClose {
        // A request body must be delimited (RFC 9112 6.3).
        return Err(ParseError::ContentLength);
    }
    Ok(Some(Request {
        head,
        method,
        target,
        framing,
    }))
}

/// A response head from the start of `buf`, as [`request`] does.
pub fn response(buf: &mut bytes::BytesMut) -> Result<Option<Response>, ParseError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf).map_err(ParseError::Head)? {
        httparse::Status::Partial => return partial(buf),
        httparse::Status::Complete(len) => len,
    };
    let status = parsed.code.unwrap_or(0);
    let minor_version = parsed.version.unwrap_or(1);
    let headers = header_lines(buf, parsed.headers);
    let head = Head {
        raw: buf.split_to(len).freeze(),
        headers,
        minor_version,
    };
    Ok(Some(Response { head, status }))
}

fn partial<T>(buf: &[u8]) -> Result<Option<T>, ParseError> {
    if buf.len() > MAX_HEAD {
        Err(ParseError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// What one call to [`BodyReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes at the start of the buffer that belong to the body (raw, framing included).
    pub consumed: usize,
    /// The body is complete after these bytes.
    pub done: bool,
    /// These bytes end a chunk (or a read, for bodies that are not chunked).
    pub chunk_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
}

/// Follows one body through raw bytes, without decoding it.
#[derive(Debug, Clone)]
pub struct BodyReader {
    framing: Framing,
    remaining: u64,
    chunked: Chunked,
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        let remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        BodyReader {
            framing,
            remaining,
            chunked: Chunked::Size,
        }
    }

    /// Whether the body is already complete (an empty body).
    pub fn is_done(&self) -> bool {
        matches!(self.framing, Framing::Length(0))
    }

    /// The next run of body bytes at the start of `buf`. `consumed == 0` and `!done` means
    /// more bytes are needed.
    pub fn next(&mut self, buf: &[u8]) -> Result<Step, ParseError> {
        match self.framing {
            Framing::Length(_) => {
                let n = self.remaining.min(buf.len() as u64);
                self.remaining -= n;
                Ok(Step {
                    consumed: n as usize,
                    done: self.remaining == 0,
                    chunk_end: true,
                })
            }
            Framing::UntilClose => Ok(Step {
                consumed: buf.len(),
                done: false,
                chunk_end: true,
            }),
            Framing::Chunked => self.next_chunked(buf),
        }
    }

    fn next_chunked(&mut self, buf: &[u8]) -> Result<Step, ParseError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let more = |at| Step {
                consumed: at,
                done: false,
                chunk_end: false,
            };
            match self.chunked {
                Chunked::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((len, 0))) => {
                        at += len;
                        self.chunked = Chunked::Trailers;
                    }
                    Ok(httparse::Status::Complete((len, size))) => {
                        at += len;
                        self.chunked = Chunked::Data(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() > 4096 => {
                        return Err(ParseError::Chunk)
                    }
                    Ok(httparse::Status::Partial) => return Ok(more(at)),
                    Err(_) => return Err(ParseError::Chunk),
                },
                Chunked::Data(left) => {
                    let n = left.min(rest.len() as u64);
                    at += n as usize;
                    if n < left {
                        self.chunked = Chunked::Data(left - n);
                        return Ok(more(at));
                    }
                    self.chunked = Chunked::DataEnd;
                }
                Chunked::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(more(at));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ParseError::Chunk);
                    }
                    at += 2;
                    self.chunked = Chunked::Size;
                    return Ok(Step {
                        consumed: at,
                        done: false,
                        chunk_end: true,
                    });
                }
                Chunked::Trailers => {
                    let Some(eol) = rest.iter().position(|b| *b == b'\n') else {
                        if rest.len() > MAX_HEAD {
                            return Err(ParseError::Chunk);
                        }
                        return Ok(more(at));
                    };
                    let line = &rest[..eol];
                    at += eol + 1;
                    if line.is_empty() || line == b"\r" {
                        return Ok(Step {
                            consumed: at,
                            done: true,
                            chunk_end: true,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn req(text: &str) -> Request {
        let mut buf = BytesMut::from(text);
        request(&mut buf).unwrap().expect("complete head")
    }

    /// A complete head is split off; what follows (the body or the next request) stays.
    #[test]
    fn request_head_is_split_off() {
        let mut buf = BytesMut::from(
            "POST /v1/chat?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET",
        );
        let r = request(&mut buf).unwrap().unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/v1/chat");
        assert_eq!(r.framing, Framing::Length(3));
        assert_eq!(&buf[..], b"abcGET");
        assert_eq!(r.head.name(&r.head.headers[1]), "Content-Length");
        assert_eq!(&r.head.raw[r.head.headers[0].line.clone()], b"Host: a\r\n");
    }

    /// A partial head asks for more; an oversized one is refused.
    #[test]
    fn partial_and_oversized_heads() {
        let mut buf = BytesMut::from("GET / HTTP/1.1\r\nHost:");
        assert_eq!(request(&mut buf).unwrap(), None);
        let mut huge = BytesMut::from("GET / HTTP/1.1\r\nX: ");
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        assert_eq!(request(&mut huge), Err(ParseError::HeadTooLarge));
    }

    /// Chunked wins over Content-Length; conflicting lengths are refused.
    #[test]
    fn request_framing() {
        let r = req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(r.framing, Framing::Chunked);
        let mut bad =
            BytesMut::from("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert_eq!(request(&mut bad), Err(ParseError::ContentLength));
        assert_eq!(req("GET / HTTP/1.1\r\n\r\n").framing, Framing::Length(0));
    }

    /// Upgrade, Expect and Connection tokens are read from comma-separated lists.
    #[test]
    fn request_intentions() {
        let ws = req(
            "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(ws.wants_upgrade());
        let expect = req("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(expect.expects_continue() && !expect.wants_upgrade());
        assert!(req("GET / HTTP/1.0\r\n\r\n").head.wants_close());
        assert!(!req("GET / HTTP/1.1\r\n\r\n").head.wants_close());
    }

    /// Responses to HEAD, 1xx, 204 and 304 have no body; others without length run to close.
    #[test]
    fn response_framing() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
        let r = response(&mut buf).unwrap().unwrap();
        assert_eq!(r.framing("GET").unwrap(), Framing::Length(10));
        assert_eq!(r.framing("HEAD").unwrap(), Framing::Length(0));
        let mut buf = BytesMut::from("HTTP/1.1 204 No Content\r\n\r\n");
        let r = response(&mut buf).unwrap().unwrap();
        assert_eq!(r.framing("GET").unwrap(), Framing::Length(0));
        let mut buf = BytesMut::from("HTTP/1.0 200 OK\r\n\r\n");
        let r = response(&mut buf).unwrap().unwrap();
        assert_eq!(r.framing("GET").unwrap(), Framing::UntilClose);
    }

    /// A chunked body is followed byte by byte, chunk ends are reported, trailers end it.
    #[test]
    fn chunked_body_in_pieces() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut reader = BodyReader::new(Framing::Chunked);
        // Fed one byte at a time, the reader consumes exactly the body and stops before NEXT.
        let mut pending = Vec::new();
        let mut total = 0;
        let mut chunk_ends = 0;
        for b in body.iter() {
            pending.push(*b);
            loop {
                let step = reader.next(&pending).unwrap();
                pending.drain(..step.consumed);
                total += step.consumed;
                chunk_ends += usize::from(step.chunk_end && !step.done);
                if step.done {
                    assert_eq!(total, body.len() - 4);
                    assert_eq!(chunk_ends, 2);
                    return;
                }
                if step.consumed == 0 {
                    break;
                }
            }
        }
        panic!("body never ended");
    }

    /// A chunk whose data is not followed by CRLF is an error.
    #[test]
    fn chunk_without_crlf_is_refused() {
        let mut reader = BodyReader::new(Framing::Chunked);
        assert_eq!(reader.next(b"2\r\nabXY"), Err(ParseError::Chunk));
    }

    /// A Content-Length body stops at its length.
    #[test]
    fn length_body_stops_at_length() {
        let mut reader = BodyReader::new(Framing::Length(3));
        let step = reader.next(b"abcdef").unwrap();
        assert_eq!((step.consumed, step.done), (3, true));
    }
}
