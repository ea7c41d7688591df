//! HTTP toxics as rules, and what they decide for one request (its [`Plan`]), sans-IO.
//!
//! An HTTP toxic is a [`Rule`]: which requests it may touch ([`Match`]) and what it does to
//! them ([`Fault`]). Rules ride in the proxy's ordinary toxic chains (the byte pipeline passes
//! them by untouched); the HTTP engine reads them from the chains for each request and rolls
//! each matching rule's toxicity with the connection's seeded random source, so which requests
//! are faulted is reproducible under `--seed`.

use super::parse::Request;
use crate::proxy::pipeline::{applies, Peer};
use crate::proxy::{Direction, Stage};
use crate::toxics::{AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use regex::bytes::Regex;
use std::sync::Arc;
use std::time::Duration;

/// Which requests a rule applies to; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    /// A header name and a regex its value must match (`"Name: regex"`).
    pub header: Option<(String, Regex)>,
}

impl Match {
    /// Builds a match from the three attributes (empty strings mean "any"), or says which one
    /// is unusable.
    pub fn new(method: &str, path_prefix: &str, header: &str) -> Result<Match, String> {
        let header = match header.trim() {
            "" => None,
            spec => {
                let (name, pattern) = spec.split_once(':').ok_or_else(|| {
                    format!("attribute header must be \"Name: regex\", got \"{spec}\"")
                })?;
                let name = name.trim();
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    return Err(format!(
                        "attribute header must start with a header name, got \"{spec}\""
                    ));
                }
                let regex = Regex::new(pattern.trim()).map_err(|e| {
                    format!("attribute header has an invalid regex after \"{name}:\": {e}")
                })?;
                Some((name.to_string(), regex))
            }
        };
        if !method.bytes().all(is_token_byte) {
            return Err(format!(
                "attribute method must be an HTTP method such as \"POST\", got \"{method}\""
            ));
        }
        if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
            return Err(format!(
                "attribute path_prefix must start with /, got \"{path_prefix}\""
            ));
        }
        let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(Match {
            method: given(method),
            path_prefix: given(path_prefix),
            header,
        })
    }

    pub fn matches(&self, request: &Request) -> bool {
        if let Some(method) = &self.method {
            if !request.method.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(prefix) = &self.path_prefix {
            if !request.path().starts_with(prefix.as_str()) {
                return false;
            }
        }
        if let Some((name, regex)) = &self.header {
            if !request.head.values(name).any(|v| regex.is_match(v)) {
                return false;
            }
        }
        true
    }
}

/// The match attributes every HTTP toxic takes, in the order they are listed.
pub const MATCH_ATTRIBUTES: [AttrSpec; 3] = [
    AttrSpec::text("method", ""),
    AttrSpec::text("path_prefix", ""),
    AttrSpec::text("header", ""),
];

/// The match described by a toxic's match attributes.
pub fn matcher(a: &Attributes) -> Result<Match, String> {
    Match::new(a.text("method"), a.text("path_prefix"), a.text("header"))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Where in an exchange a delay applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayPhase {
    Request,
    ResponseHeaders,
    Body,
}

/// Where in an exchange an abort cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortPhase {
    BeforeResponse,
    AfterHeaders,
    /// After this many body bytes.
    MidBody(u64),
}

/// What a rule does to a request it applies to.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer at once with this response; the upstream never sees the request.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Delay {
        phase: DelayPhase,
        delay: Duration,
        jitter: Duration,
    },
    Abort {
        phase: AbortPhase,
        cut: Cut,
    },
    /// Edits the request's (upstream) or the response's (downstream) headers.
    Header {
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
}

/// One HTTP toxic: a match and a fault.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: &'static str,
    pub matcher: Match,
    pub fault: Fault,
}

impl ToxicSpec for Rule {
    /// The byte pipeline passes HTTP toxics by: they act on whole requests, in the HTTP engine.
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(PassThrough)
    }

    fn http_rule(&self) -> Option<&Rule> {
        Some(self)
    }
}

struct PassThrough;

impl Toxic for PassThrough {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        out.push(piece);
        None
    }
}

/// Header edits to apply to a head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// A synthetic response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A toxic that applied to a request, for counters and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub toxic: Arc<str>,
    pub kind: &'static str,
}

/// Everything the toxics decided for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub answer: Option<Answer>,
    pub request_delay: Duration,
    pub headers_delay: Duration,
    /// Spacing of body chunks: a delay and a jitter drawn per chunk from `rng`.
    pub body_delay: Option<(Duration, Duration)>,
    pub abort: Option<(AbortPhase, Cut)>,
    pub request_edits: HeaderEdits,
    pub response_edits: HeaderEdits,
    pub applied: Vec<Applied>,
    /// This request's own random source (body jitter).
    pub rng: SmallRng,
}

impl Plan {
    /// Whether any toxic touched the request.
    pub fn is_faulted(&self) -> bool {
        !self.applied.is_empty()
    }

    /// The delay before the next body chunk.
    pub fn next_body_delay(&mut self) -> Option<Duration> {
        let (delay, jitter) = self.body_delay?;
        Some(jittered(&mut self.rng, delay, jitter))
    }
}

fn jittered(rng: &mut SmallRng, delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let j = jitter.as_secs_f64();
    let d = delay.as_secs_f64() + rng.random_range(-j..j);
    Duration::from_secs_f64(d.max(0.0))
}

/// Decides what the HTTP toxics of both chains do to `request`. Rules are taken in chain
/// order (upstream chain first); each one that matches rolls its toxicity once. The first
/// status answer and the first abort win; delays add up; header edits compose.
pub fn plan(chains: [&[Stage]; 2], request: &Request, peer: Peer, rng: &mut SmallRng) -> Plan {
    let mut plan = Plan {
        answer: None,
        request_delay: Duration::ZERO,
        headers_delay: Duration::ZERO,
        body_delay: None,
        abort: None,
        request_edits: HeaderEdits::default(),
        response_edits: HeaderEdits::default(),
        applied: Vec::new(),
        rng: SmallRng::from_rng(&mut *rng),
    };
    for (direction, chain) in Direction::BOTH.into_iter().zip(chains) {
        for stage in chain {
            let Some(rule) = stage.spec.http_rule() else {
                continue;
            };
            if !rule.matcher.matches(request) || !applies(stage, peer, rng) {
                continue;
            }
            let used = match &rule.fault {
                Fault::Status {
                    status,
                    headers,
                    body,
                } => {
                    let first = plan.answer.is_none();
                    if first {
                        plan.answer = Some(Answer {
                            status: *status,
                            headers: headers.clone(),
                            body: body.clone(),
                        });
                    }
                    first
                }
                Fault::Delay {
                    phase,
                    delay,
                    jitter,
                } => {
                    match phase {
                        DelayPhase::Request => {
                            plan.request_delay += jittered(rng, *delay, *jitter);
                        }
                        DelayPhase::ResponseHeaders => {
                            plan.headers_delay += jittered(rng, *delay, *jitter);
                        }
                        DelayPhase::Body => {
                            let (d, j) = plan.body_delay.unwrap_or_default();
                            plan.body_delay = Some((d + *delay, j + *jitter));
                        }
                    }
                    true
                }
                Fault::Abort { phase, cut } => {
                    let first = plan.abort.is_none();
                    if first {
                        plan.abort = Some((*phase, *cut));
                    }
                    first
                }
                Fault::Header { set, remove } => {
                    let edits = match direction {
                        Direction::Upstream => &mut plan.request_edits,
                        Direction::Downstream => &mut plan.response_edits,
                    };
                    edits.set.extend(set.iter().cloned());
                    edits.remove.extend(remove.iter().cloned());
                    true
                }
            };
            if used {
                plan.applied.push(Applied {
                    toxic: stage.name.clone(),
                    kind: rule.kind,
                });
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::net::{IpAddr, Ipv4Addr};

    fn request(text: &str) -> Request {
        super::super::parse::request(&mut BytesMut::from(text))
            .unwrap()
            .unwrap()
    }

    fn stage(name: &str, toxicity: f32, matcher: Match, fault: Fault) -> Stage {
        Stage {
            name: Arc::from(name),
            toxicity,
            spec: Arc::new(Rule {
                kind: "http_test",
                matcher,
                fault,
            }),
            revision: 1,
            target: None,
        }
    }

    fn status(code: u16) -> Fault {
        Fault::Status {
            status: code,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    const PEER: Peer = Peer {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        draw: 0,
    };

    /// Method, path prefix and header regex must all hold for a rule to match.
    #[test]
    fn match_needs_every_criterion() {
        let m = Match::new("post", "/v1/chat", "Authorization: ^Bearer ").unwrap();
        assert!(m.matches(&request(
            "POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer x\r\n\r\n"
        )));
        assert!(!m.matches(&request(
            "GET /v1/chat HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n"
        )));
        assert!(!m.matches(&request(
            "POST /v2/chat HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n"
        )));
        assert!(!m.matches(&request(
            "POST /v1/chat HTTP/1.1\r\nAuthorization: Basic x\r\n\r\n"
        )));
        assert!(Match::default().matches(&request("GET / HTTP/1.1\r\n\r\n")));
    }

    /// A header match without a colon, with a bad name or a bad regex says what is wrong.
    #[test]
    fn malformed_matches_are_refused() {
        let err = Match::new("", "", "Authorization").unwrap_err();
        assert!(err.contains("\"Name: regex\""), "{err}");
        let err = Match::new("", "", "X-A: (").unwrap_err();
        assert!(err.contains("invalid regex"), "{err}");
        let err = Match::new("", "", "Bad Name: x").unwrap_err();
        assert!(err.contains("header name"), "{err}");
        assert!(Match::new("GE T", "", "").is_err());
        assert!(Match::new("", "v1", "").is_err());
    }

    /// The first matching status answers; delays of one phase add up; only matching rules
    /// are recorded as applied.
    #[test]
    fn plan_composes_rules() {
        let delay = |phase, ms| Fault::Delay {
            phase,
            delay: Duration::from_millis(ms),
            jitter: Duration::ZERO,
        };
        let upstream = vec![
            stage("a", 1.0, Match::default(), status(429)),
            stage("b", 1.0, Match::default(), status(503)),
            stage("c", 1.0, Match::default(), delay(DelayPhase::Request, 10)),
        ];
        let downstream = vec![
            stage("d", 1.0, Match::default(), delay(DelayPhase::Request, 5)),
            stage(
                "e",
                1.0,
                Match::new("DELETE", "", "").unwrap(),
                delay(DelayPhase::Body, 5),
            ),
        ];
        let mut rng = SmallRng::seed_from_u64(1);
        let plan = plan(
            [&upstream, &downstream],
            &request("GET / HTTP/1.1\r\n\r\n"),
            PEER,
            &mut rng,
        );
        assert_eq!(plan.answer.as_ref().unwrap().status, 429);
        assert_eq!(plan.request_delay, Duration::from_millis(15));
        assert_eq!(plan.body_delay, None);
        let names: Vec<&str> = plan.applied.iter().map(|a| &*a.toxic).collect();
        assert_eq!(names, ["a", "c", "d"]);
    }

    /// Toxicity is rolled per request from the seeded source: the same seed faults the same
    /// requests, and about the given share of them.
    #[test]
    fn toxicity_is_per_request_and_seeded() {
        let chain = vec![stage("s", 0.5, Match::default(), status(429))];
        let req = request("GET / HTTP/1.1\r\n\r\n");
        let run = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..200)
                .map(|_| plan([&chain, &[]], &req, PEER, &mut rng).answer.is_some())
                .collect::<Vec<bool>>()
        };
        let first = run(42);
        assert_eq!(first, run(42));
        let faulted = first.iter().filter(|f| **f).count();
        assert!((60..140).contains(&faulted), "{faulted}");
    }

    /// With a jitter, a seeded `http_delay` draws each request's delay (and each body
    /// chunk's spacing) within delay ± jitter; the draws vary, spread over most of that range,
    /// and the same seed draws the same delays.
    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let (delay, jitter) = (Duration::from_millis(100), Duration::from_millis(40));
        let fault = |phase| Fault::Delay {
            phase,
            delay,
            jitter,
        };
        let chain = vec![
            stage("r", 1.0, Match::default(), fault(DelayPhase::Request)),
            stage("b", 1.0, Match::default(), fault(DelayPhase::Body)),
        ];
        let req = request("GET / HTTP/1.1\r\n\r\n");
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut delays = Vec::new();
            for _ in 0..100 {
                let mut plan = plan([&chain, &[]], &req, PEER, &mut rng);
                delays.push(plan.request_delay);
                delays.extend((0..3).map(|_| plan.next_body_delay().unwrap()));
            }
            delays
        };
        let delays = draw(7);
        assert_eq!(delays, draw(7));
        for d in &delays {
            assert!(
                (delay - jitter..=delay + jitter).contains(d),
                "{d:?} outside {delay:?} ± {jitter:?}"
            );
        }
        let (low, high) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*low < Duration::from_millis(75), "lowest {low:?}");
        assert!(*high > Duration::from_millis(125), "highest {high:?}");
        let mut distinct = delays.clone();
        distinct.dedup();
        assert!(distinct.len() > delays.len() / 2, "{delays:?}");
    }

    /// Header edits go to the request from the upstream chain, to the response from the
    /// downstream chain.
    #[test]
    fn header_edits_follow_the_stream() {
        let edit = |name: &str| Fault::Header {
            set: vec![(name.to_string(), "1".to_string())],
            remove: Vec::new(),
        };
        let up = vec![stage("u", 1.0, Match::default(), edit("X-Req"))];
        let down = vec![stage("d", 1.0, Match::default(), edit("X-Resp"))];
        let mut rng = SmallRng::seed_from_u64(1);
        let plan = plan(
            [&up, &down],
            &request("GET / HTTP/1.1\r\n\r\n"),
            PEER,
            &mut rng,
        );
        assert_eq!(plan.request_edits.set[0].0, "X-Req");
        assert_eq!(plan.response_edits.set[0].0, "X-Resp");
    }
}
