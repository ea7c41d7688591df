//! How a faulted response body leaves, sans-IO: when each chunk may be written (`http_delay`
//! in the `body` phase), how a server-sent event stream is split into one release per event,
//! and where the body is cut (`http_abort` in the `mid_body` phase).

use super::parse::ParseError;
use super::rules::Plan;
use crate::toxics::Cut;
use bytes::{Bytes, BytesMut};
use std::time::Instant;

/// What to do with one run of body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub data: Bytes,
    /// Not before this instant.
    pub at: Instant,
    /// End the connection once `data` is written.
    pub cut: Option<Cut>,
}

/// Paces and cuts one response body.
#[derive(Debug)]
pub struct BodyShaper {
    /// Body bytes after which to cut, and how.
    abort_after: Option<(u64, Cut)>,
    passed: u64,
    last_release: Option<Instant>,
}

impl BodyShaper {
    pub fn new(abort_after: Option<(u64, Cut)>) -> Self {
        BodyShaper {
            abort_after,
            passed: 0,
            last_release: None,
        }
    }

    /// Whether nothing of the body may pass at all (an abort after 0 bytes).
    pub fn cut_now(&self) -> Option<Cut> {
        match self.abort_after {
            Some((0, cut)) => Some(cut),
            _ => None,
        }
    }

    /// A chunk (or a read, for bodies that are not chunked) arrived at `now`. With a body
    /// delay each chunk leaves that long after the previous one left, or after it arrived if
    /// the upstream was slower: chunks are spaced, never bunched.
    pub fn on_chunk(&mut self, data: Bytes, now: Instant, plan: &mut Plan) -> Release {
        let at = match plan.next_body_delay() {
            Some(delay) => now.max(self.last_release.unwrap_or(now)) + delay,
            None => now,
        };
        self.last_release = Some(at);
        let mut data = data;
        let mut cut = None;
        if let Some((limit, how)) = self.abort_after {
            let room = limit.saturating_sub(self.passed);
            if data.len() as u64 >= room {
                data.truncate(room as usize);
                cut = Some(how);
            }
        }
        self.passed += data.len() as u64;
        Release { data, at, cut }
    }
}

/// Splits a `text/event-stream` body into one run per event, so a body delay spaces events
/// rather than transfer chunks. An event ends at a blank line (`\n\n`, `\r\n\r\n`, or a
/// mix of the two). The event bytes are never changed; a chunked body is re-framed as one
/// chunk per event (a chunk's extensions, if it had any, are dropped with its framing).
/// Bytes of an event not yet complete are held until it is, or until the body ends.
#[derive(Debug)]
pub struct SseSplitter {
    chunked: bool,
    /// Event bytes (decoded, for a chunked body) not yet released.
    pending: BytesMut,
}

impl SseSplitter {
    pub fn new(chunked: bool) -> Self {
        SseSplitter {
            chunked,
            pending: BytesMut::new(),
        }
    }

    /// Takes one run of raw body bytes: for a chunked body exactly one chunk with its framing
    /// (the last one with its trailers), as [`super::parse::BodyReader`] delimits them; else
    /// any run. `done` says the body ends with it. Returns the runs to write, in order: one
    /// per complete event, then the end of the body if it ended.
    pub fn split(&mut self, raw: Bytes, done: bool) -> Result<Vec<Bytes>, ParseError> {
        let mut out = Vec::new();
        if !self.chunked {
            self.pending.extend_from_slice(&raw);
            self.take_events(&mut out);
            if done && !self.pending.is_empty() {
                out.push(self.pending.split().freeze());
            }
            return Ok(out);
        }
        let (line, size) = match httparse::parse_chunk_size(&raw) {
            Ok(httparse::Status::Complete(found)) => found,
            _ => return Err(ParseError::Chunk),
        };
        if size == 0 {
            // The last chunk: what is left of an event goes first, then the end as it came.
            if !self.pending.is_empty() {
                let rest = self.pending.split().freeze();
                out.push(frame(&rest));
            }
            out.push(raw);
            return Ok(out);
        }
        let end = line + size as usize;
        let data = raw.get(line..end).ok_or(ParseError::Chunk)?;
        self.pending.extend_from_slice(data);
        let mut events = Vec::new();
        self.take_events(&mut events);
        out.extend(events.iter().map(|event| frame(event)));
        Ok(out)
    }

    /// What is held of an unfinished event when a body that ends at close ends.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }

    fn take_events(&mut self, out: &mut Vec<Bytes>) {
        while let Some(end) = event_end(&self.pending) {
            out.push(self.pending.split_to(end).freeze());
        }
    }
}

/// Where the first complete event in `data` ends (after its blank line), if there is one.
fn event_end(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(at) = data[i..].iter().position(|b| *b == b'\n') {
        let next = i + at + 1;
        match data.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// `data` as one chunk of a chunked body.
fn frame(data: &[u8]) -> Bytes {
    let mut chunk = BytesMut::with_capacity(data.len() + 12);
    chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    chunk.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::rules::{HeaderEdits, Plan};
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::time::Duration;

    fn plan(body_delay: Option<Duration>) -> Plan {
        Plan {
            answer: None,
            request_delay: Duration::ZERO,
            headers_delay: Duration::ZERO,
            body_delay: body_delay.map(|d| (d, Duration::ZERO)),
            abort: None,
            request_edits: HeaderEdits::default(),
            response_edits: HeaderEdits::default(),
            applied: Vec::new(),
            rng: SmallRng::seed_from_u64(1),
        }
    }

    /// Chunks that arrive together leave `delay` apart; a late chunk leaves `delay` after it
    /// arrived.
    #[test]
    fn body_delay_spaces_chunks() {
        let d = Duration::from_millis(100);
        let mut plan = plan(Some(d));
        let mut shaper = BodyShaper::new(None);
        let t0 = Instant::now();
        let a = shaper.on_chunk(Bytes::from_static(b"a"), t0, &mut plan);
        let b = shaper.on_chunk(Bytes::from_static(b"b"), t0, &mut plan);
        assert_eq!((a.at, b.at), (t0 + d, t0 + 2 * d));
        let late = t0 + Duration::from_secs(5);
        let c = shaper.on_chunk(Bytes::from_static(b"c"), late, &mut plan);
        assert_eq!(c.at, late + d);
    }

    /// Several events in one read leave as one run each, bytes unchanged; a partial event is
    /// held until its blank line arrives, and released at the end of the body regardless.
    #[test]
    fn sse_splits_a_plain_body_at_event_boundaries() {
        let mut sse = SseSplitter::new(false);
        let runs = sse
            .split(
                Bytes::from_static(b"data: a\n\ndata: b\r\n\r\ndata: c"),
                false,
            )
            .unwrap();
        assert_eq!(runs, [&b"data: a\n\n"[..], &b"data: b\r\n\r\n"[..]]);
        let runs = sse.split(Bytes::from_static(b"\n\n: x"), true).unwrap();
        assert_eq!(runs, [&b"data: c\n\n"[..], &b": x"[..]]);
        assert_eq!(sse.finish(), None);
    }

    /// A chunk holding several events is re-framed as one valid chunk per event, and the last
    /// chunk (with its trailers) passes as it came, after any unfinished event.
    #[test]
    fn sse_reframes_a_chunked_body_one_chunk_per_event() {
        let mut sse = SseSplitter::new(true);
        let runs = sse
            .split(
                Bytes::from_static(b"14\r\ndata: a\n\ndata: bb\n\nx\r\n"),
                false,
            )
            .unwrap();
        assert_eq!(
            runs,
            [&b"9\r\ndata: a\n\n\r\n"[..], &b"a\r\ndata: bb\n\n\r\n"[..]]
        );
        let runs = sse
            .split(Bytes::from_static(b"0\r\nX-T: 1\r\n\r\n"), true)
            .unwrap();
        assert_eq!(runs, [&b"1\r\nx\r\n"[..], &b"0\r\nX-T: 1\r\n\r\n"[..]]);
        assert!(sse.split(Bytes::from_static(b"zz\r\n"), false).is_err());
    }

    /// The body is cut after exactly `bytes` bytes, across chunks.
    #[test]
    fn mid_body_cuts_at_the_byte() {
        let mut plan = plan(None);
        let mut shaper = BodyShaper::new(Some((5, Cut::Reset)));
        let t0 = Instant::now();
        let a = shaper.on_chunk(Bytes::from_static(b"abc"), t0, &mut plan);
        assert_eq!((&a.data[..], a.cut), (&b"abc"[..], None));
        let b = shaper.on_chunk(Bytes::from_static(b"defgh"), t0, &mut plan);
        assert_eq!((&b.data[..], b.cut), (&b"de"[..], Some(Cut::Reset)));
        assert_eq!(
            BodyShaper::new(Some((0, Cut::Close))).cut_now(),
            Some(Cut::Close)
        );
    }
}
