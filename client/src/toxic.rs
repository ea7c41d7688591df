//! Toxics: typed descriptions of faults to add ([`Toxic`]), what the server reports about a
//! toxic it holds ([`ToxicInfo`]), and partial changes ([`ToxicUpdate`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::Duration;

/// Which way the data a toxic acts on flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stream {
    /// Client to upstream server (requests).
    Upstream,
    /// Upstream server to client (responses). Toxiproxy's default.
    #[default]
    Downstream,
}

impl Stream {
    /// `"upstream"` or `"downstream"`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stream {
    type Err = String;

    /// Case-insensitive, as Toxiproxy servers accept it.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("upstream") {
            Ok(Stream::Upstream)
        } else if s.eq_ignore_ascii_case("downstream") {
            Ok(Stream::Downstream)
        } else {
            Err(format!("stream must be upstream or downstream, got {s:?}"))
        }
    }
}

impl Serialize for Stream {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How a latency toxic spreads its jitter (a faultline extension; Toxiproxy is always uniform).
///
/// ```
/// use faultline_client::{Distribution, Toxic};
/// use std::time::Duration;
///
/// let tail = Toxic::latency(Duration::from_millis(50))
///     .jitter(Duration::from_millis(20))
///     .distribution(Distribution::Normal);
/// assert_eq!(tail.to_json()["attributes"]["distribution"], "normal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Uniform in `[latency - jitter, latency + jitter)`. The default.
    Uniform,
    /// Normal around `latency`, with `jitter` as standard deviation.
    Normal,
    /// A long tail above `latency` (Pareto), for "mostly fast, sometimes very slow".
    Pareto,
}

impl Distribution {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Pareto => "pareto",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Distribution::Uniform,
            Distribution::Normal,
            Distribution::Pareto,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(s))
    }
}

/// What `limit_connections` does with connections over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitMode {
    /// Reset them at once (the default).
    Refuse,
    /// Hold them until a slot frees up.
    Queue,
}

impl LimitMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitMode::Refuse => "refuse",
            LimitMode::Queue => "queue",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [LimitMode::Refuse, LimitMode::Queue]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// Which HTTP requests an HTTP toxic applies to (faultline, `http` proxies); every criterion
/// given must hold, and none given means every request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpMatch {
    /// The request method, e.g. `"POST"`.
    pub method: Option<String>,
    /// The start of the request path, e.g. `"/v1/chat"`.
    pub path_prefix: Option<String>,
    /// `"Name: regex"`: a header whose value matches the regex.
    pub header: Option<String>,
}

impl HttpMatch {
    fn write(&self, attributes: &mut Value) {
        for (key, value) in [
            ("method", &self.method),
            ("path_prefix", &self.path_prefix),
            ("header", &self.header),
        ] {
            if let Some(value) = value {
                attributes[key] = json!(value);
            }
        }
    }

    fn read(a: &Map<String, Value>) -> Option<HttpMatch> {
        let text = |key: &str| match a.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.is_empty() => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        Some(HttpMatch {
            method: text("method")?,
            path_prefix: text("path_prefix")?,
            header: text("header")?,
        })
    }
}

/// Where an `http_delay` toxic holds an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpDelayPhase {
    /// Before the request goes upstream.
    Request,
    /// Before the response's headers reach the client (time to first byte).
    ResponseHeaders,
    /// Between body chunks (each server-sent event arrives later).
    Body,
}

impl HttpDelayPhase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpDelayPhase::Request => "request",
            HttpDelayPhase::ResponseHeaders => "response_headers",
            HttpDelayPhase::Body => "body",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            HttpDelayPhase::Request,
            HttpDelayPhase::ResponseHeaders,
            HttpDelayPhase::Body,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// Where an `http_abort` toxic cuts an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpAbortPhase {
    /// The request reaches the upstream; the client gets no response byte.
    BeforeResponse,
    /// The client gets the response headers and no body.
    AfterHeaders,
    /// The client gets the first `bytes` bytes of the body.
    MidBody {
        /// Body bytes let through before the cut.
        bytes: u64,
    },
}

impl HttpAbortPhase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpAbortPhase::BeforeResponse => "before_response",
            HttpAbortPhase::AfterHeaders => "after_headers",
            HttpAbortPhase::MidBody { .. } => "mid_body",
        }
    }
}

fn pairs(a: &Map<String, Value>, key: &str) -> Option<Vec<(String, String)>> {
    match a.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        Some(_) => None,
    }
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// The fault itself: a toxic type with its attributes, in Rust units.
///
/// Times are [`Duration`]s (sent as whole milliseconds, except the slicer's `delay`, sent in
/// microseconds as Toxiproxy expects); rates and sizes are plain integers; probabilities are
/// `f64` in `[0, 1]`. Types this crate does not know travel as [`ToxicKind::Custom`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToxicKind {
    /// Delays data by `latency` ± `jitter`.
    Latency {
        /// The delay added to every chunk of data.
        latency: Duration,
        /// The spread around `latency`.
        jitter: Duration,
        /// How the spread is drawn; `None` leaves the server's default (uniform).
        distribution: Option<Distribution>,
    },
    /// Caps throughput at `rate` KB/s (1 KB = 1000 bytes); `0` stalls the stream, keeping the
    /// connection open (a partition).
    Bandwidth {
        /// Kilobytes per second.
        rate: u64,
    },
    /// Delays the close of the connection by `delay` after the peer closes.
    SlowClose {
        /// How long the close is held back.
        delay: Duration,
    },
    /// Swallows all data; closes the connection after `timeout` without data (zero: never).
    Timeout {
        /// Idle time before the close; zero keeps the connection open and silent.
        timeout: Duration,
    },
    /// On the first data, resets the connection (TCP RST) after `timeout`.
    ResetPeer {
        /// Time between the first data and the reset.
        timeout: Duration,
    },
    /// Cuts data into small writes of about `average_size` bytes, `delay` apart.
    Slicer {
        /// Average slice size in bytes.
        average_size: u64,
        /// Maximum deviation from `average_size`, in bytes.
        size_variation: u64,
        /// Pause between slices (sent in microseconds).
        delay: Duration,
    },
    /// Closes the connection once `bytes` bytes went through.
    LimitData {
        /// Bytes let through before the close.
        bytes: u64,
    },
    /// TCP segment loss as the application sees it: data arrives late (retransmission
    /// timeouts, doubling from `rto`), never missing.
    PacketLoss {
        /// Probability that a segment is lost, in `[0, 1]`.
        probability: f64,
        /// Initial retransmission timeout.
        rto: Duration,
    },
    /// Discards whole chunks with `probability`: bytes go missing.
    Drop {
        /// Probability that a chunk is discarded, in `[0, 1]`.
        probability: f64,
    },
    /// Flips one bit in each byte with `probability`.
    Corrupt {
        /// Probability that a byte is corrupted, in `[0, 1]`.
        probability: f64,
    },
    /// Does nothing (useful in tests of the tooling itself).
    Noop,
    /// Connects to the upstream only `delay` after the client connected (faultline): a slow
    /// DNS lookup or accept queue. Open connections are not affected.
    SlowOpen {
        /// How long new connections wait before the upstream is dialled.
        delay: Duration,
    },
    /// Resets new connections before any byte is exchanged; open ones keep working
    /// (faultline): "the service went away".
    Refuse,
    /// Accepts new connections and never answers; open ones keep working (faultline): a
    /// firewall dropping packets.
    Blackhole,
    /// At most `limit` connections at once (faultline): a small connection pool.
    LimitConnections {
        /// Connections allowed at once.
        limit: u64,
        /// What happens to the others; `None` leaves the server's default (refuse).
        mode: Option<LimitMode>,
    },
    /// Answers matching HTTP requests at once, without the upstream (faultline, `http`
    /// proxies): a 429 storm, a 503.
    HttpStatus {
        /// The status code, 100 to 599.
        status: u16,
        /// Response headers, e.g. `Retry-After`.
        headers: Vec<(String, String)>,
        /// The response body.
        body: String,
        /// Which requests.
        matcher: HttpMatch,
    },
    /// Delays matching HTTP exchanges at a phase (faultline, `http` proxies).
    HttpDelay {
        /// Where the exchange is held.
        phase: HttpDelayPhase,
        /// How long.
        delay: Duration,
        /// Spread around `delay`.
        jitter: Duration,
        /// Which requests.
        matcher: HttpMatch,
    },
    /// Cuts matching HTTP exchanges at a phase (faultline, `http` proxies).
    HttpAbort {
        /// Where the exchange is cut.
        phase: HttpAbortPhase,
        /// A TCP reset instead of a clean close.
        reset: bool,
        /// Which requests.
        matcher: HttpMatch,
    },
    /// Sets and removes headers of matching requests (upstream stream) or responses
    /// (downstream stream) (faultline, `http` proxies).
    HttpHeader {
        /// Headers to set (replacing any of the same name).
        set: Vec<(String, String)>,
        /// Header names to remove.
        remove: Vec<String>,
        /// Which requests.
        matcher: HttpMatch,
    },
    /// Any other toxic type, with its attributes as raw JSON: for toxics of newer servers.
    Custom {
        /// The toxic `type`, e.g. `"my_toxic"`.
        type_name: String,
        /// Its `attributes`, sent as they are.
        attributes: Map<String, Value>,
    },
}

fn millis(d: Duration) -> Value {
    json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A float32 as the JSON number it was written as (0.1, not 0.10000000149011612).
pub(crate) fn toxicity_json(t: f32) -> Value {
    t.to_string()
        .parse::<f64>()
        .map(Value::from)
        .unwrap_or(Value::Null)
}

fn micros(d: Duration) -> Value {
    json!(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl ToxicKind {
    /// The toxic `type` on the wire, e.g. `"latency"`.
    pub fn type_name(&self) -> &str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::PacketLoss { .. } => "packet_loss",
            ToxicKind::Drop { .. } => "drop",
            ToxicKind::Corrupt { .. } => "corrupt",
            ToxicKind::Noop => "noop",
            ToxicKind::SlowOpen { .. } => "slow_open",
            ToxicKind::Refuse => "refuse",
            ToxicKind::Blackhole => "blackhole",
            ToxicKind::LimitConnections { .. } => "limit_connections",
            ToxicKind::HttpStatus { .. } => "http_status",
            ToxicKind::HttpDelay { .. } => "http_delay",
            ToxicKind::HttpAbort { .. } => "http_abort",
            ToxicKind::HttpHeader { .. } => "http_header",
            ToxicKind::Custom { type_name, .. } => type_name,
        }
    }

    /// The `attributes` object on the wire.
    pub fn attributes(&self) -> Map<String, Value> {
        let value = match self {
            ToxicKind::Latency {
                latency,
                jitter,
                distribution,
            } => {
                let mut v = json!({"latency": millis(*latency), "jitter": millis(*jitter)});
                if let Some(d) = distribution {
                    v["distribution"] = json!(d.as_str());
                }
                v
            }
            ToxicKind::Bandwidth { rate } => json!({ "rate": rate }),
            ToxicKind::SlowClose { delay } => json!({ "delay": millis(*delay) }),
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => {
                json!({ "timeout": millis(*timeout) })
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => json!({
                "average_size": average_size,
                "size_variation": size_variation,
                "delay": micros(*delay),
            }),
            ToxicKind::LimitData { bytes } => json!({ "bytes": bytes }),
            ToxicKind::PacketLoss { probability, rto } => {
                json!({"probability": probability, "rto": millis(*rto)})
            }
            ToxicKind::Drop { probability } | ToxicKind::Corrupt { probability } => {
                json!({ "probability": probability })
            }
            ToxicKind::Noop | ToxicKind::Refuse | ToxicKind::Blackhole => json!({}),
            ToxicKind::SlowOpen { delay } => json!({ "delay": millis(*delay) }),
            ToxicKind::LimitConnections { limit, mode } => {
                let mut v = json!({ "limit": limit });
                if let Some(mode) = mode {
                    v["mode"] = json!(mode.as_str());
                }
                v
            }
            ToxicKind::HttpStatus {
                status,
                headers,
                body,
                matcher,
            } => {
                let mut v = json!({"status": status, "headers": pairs_json(headers), "body": body});
                matcher.write(&mut v);
                v
            }
            ToxicKind::HttpDelay {
                phase,
                delay,
                jitter,
                matcher,
            } => {
                let mut v = json!({"phase": phase.as_str(), "delay": millis(*delay),
                                   "jitter": millis(*jitter)});
                matcher.write(&mut v);
                v
            }
            ToxicKind::HttpAbort {
                phase,
                reset,
                matcher,
            } => {
                let bytes = match phase {
                    HttpAbortPhase::MidBody { bytes } => *bytes,
                    _ => 0,
                };
                let mut v = json!({"phase": phase.as_str(), "bytes": bytes, "reset": reset});
                matcher.write(&mut v);
                v
            }
            ToxicKind::HttpHeader {
                set,
                remove,
                matcher,
            } => {
                let mut v = json!({"set": pairs_json(set), "remove": remove});
                matcher.write(&mut v);
                v
            }
            ToxicKind::Custom { attributes, .. } => return attributes.clone(),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Reads a kind back from a server's `type` and `attributes`. Known types whose
    /// attributes do not parse, and unknown types, come back as [`ToxicKind::Custom`].
    pub fn from_wire(type_name: &str, attributes: &Map<String, Value>) -> ToxicKind {
        Self::parse_known(type_name, attributes).unwrap_or_else(|| ToxicKind::Custom {
            type_name: type_name.to_string(),
            attributes: attributes.clone(),
        })
    }

    fn parse_known(type_name: &str, a: &Map<String, Value>) -> Option<ToxicKind> {
        // Missing attributes are the server's zero defaults, as in Toxiproxy.
        let int = |key: &str| -> Option<u64> {
            match a.get(key) {
                None | Some(Value::Null) => Some(0),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            }
        };
        let ms = |key: &str| int(key).map(Duration::from_millis);
        let prob = |key: &str| match a.get(key) {
            None | Some(Value::Null) => Some(0.0),
            Some(v) => v.as_f64(),
        };
        Some(match type_name {
            "latency" => ToxicKind::Latency {
                latency: ms("latency")?,
                jitter: ms("jitter")?,
                distribution: match a.get("distribution") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(Distribution::parse(v.as_str()?)?),
                },
            },
            "bandwidth" => ToxicKind::Bandwidth { rate: int("rate")? },
            "slow_close" => ToxicKind::SlowClose {
                delay: ms("delay")?,
            },
            "timeout" => ToxicKind::Timeout {
                timeout: ms("timeout")?,
            },
            "reset_peer" => ToxicKind::ResetPeer {
                timeout: ms("timeout")?,
            },
            "slicer" => ToxicKind::Slicer {
                average_size: int("average_size")?,
                size_variation: int("size_variation")?,
                delay: Duration::from_micros(int("delay")?),
            },
            "limit_data" => ToxicKind::LimitData {
                bytes: int("bytes")?,
            },
            "packet_loss" => ToxicKind::PacketLoss {
                probability: prob("probability")?,
                rto: match a.get("rto") {
                    None | Some(Value::Null) => DEFAULT_RTO,
                    Some(_) => ms("rto")?,
                },
            },
            "drop" => ToxicKind::Drop {
                probability: prob("probability")?,
            },
            "corrupt" => ToxicKind::Corrupt {
                probability: prob("probability")?,
            },
            "noop" => ToxicKind::Noop,
            "slow_open" => ToxicKind::SlowOpen {
                delay: ms("delay")?,
            },
            "refuse" => ToxicKind::Refuse,
            "blackhole" => ToxicKind::Blackhole,
            "http_status" => ToxicKind::HttpStatus {
                status: u16::try_from(int("status")?).ok()?,
                headers: pairs(a, "headers")?,
                body: match a.get("body") {
                    None | Some(Value::Null) => String::new(),
                    Some(v) => v.as_str()?.to_string(),
                },
                matcher: HttpMatch::read(a)?,
            },
            "http_delay" => ToxicKind::HttpDelay {
                phase: match a.get("phase") {
                    None | Some(Value::Null) => HttpDelayPhase::Request,
                    Some(v) => HttpDelayPhase::parse(v.as_str()?)?,
                },
                delay: ms("delay")?,
                jitter: ms("jitter")?,
                matcher: HttpMatch::read(a)?,
            },
            "http_abort" => ToxicKind::HttpAbort {
                phase: match a
                    .get("phase")
                    .and_then(Value::as_str)
                    .unwrap_or("before_response")
                {
                    "before_response" => HttpAbortPhase::BeforeResponse,
                    "after_headers" => HttpAbortPhase::AfterHeaders,
                    "mid_body" => HttpAbortPhase::MidBody {
                        bytes: int("bytes")?,
                    },
                    _ => return None,
                },
                reset: match a.get("reset") {
                    None | Some(Value::Null) => false,
                    Some(v) => v.as_bool()?,
                },
                matcher: HttpMatch::read(a)?,
            },
            "http_header" => ToxicKind::HttpHeader {
                set: pairs(a, "set")?,
                remove: match a.get("remove") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<_>>()?,
                    Some(_) => return None,
                },
                matcher: HttpMatch::read(a)?,
            },
            "limit_connections" => ToxicKind::LimitConnections {
                limit: int("limit")?,
                mode: match a.get("mode") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(LimitMode::parse(v.as_str()?)?),
                },
            },
            _ => return None,
        })
    }
}

/// faultline's default retransmission timeout for `packet_loss`.
const DEFAULT_RTO: Duration = Duration::from_millis(200);

/// Which connections a toxic applies to (a faultline extension): client addresses in some
/// CIDR blocks, and/or a stable fraction of connections (decided once per connection, unlike
/// `toxicity`, which is re-rolled when toxics change).
///
/// ```
/// use faultline_client::Target;
/// let half_of_the_lan = Target::cidr("10.0.0.0/8").fraction(0.5);
/// assert_eq!(half_of_the_lan.cidrs, ["10.0.0.0/8"]);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Target {
    /// Client address blocks such as `"10.0.0.0/8"` or `"127.0.0.1/32"`; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Share of connections selected, in `[0, 1]`; `None` means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

impl Target {
    /// Connections from clients in `block` (e.g. `"10.0.0.0/8"`).
    pub fn cidr(block: impl Into<String>) -> Target {
        Target {
            cidrs: vec![block.into()],
            fraction: None,
        }
    }

    /// Connections from clients in any of `blocks`.
    pub fn cidrs<I, S>(blocks: I) -> Target
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Target {
            cidrs: blocks.into_iter().map(Into::into).collect(),
            fraction: None,
        }
    }

    /// A stable share of all connections, in `[0, 1]`.
    pub fn share(fraction: f64) -> Target {
        Target {
            cidrs: Vec::new(),
            fraction: Some(fraction),
        }
    }

    /// Narrows this target to a stable share of its connections, in `[0, 1]`.
    pub fn fraction(mut self, fraction: f64) -> Target {
        self.fraction = Some(fraction);
        self
    }
}

/// An on/off cycle (a faultline extension): the toxic is active for `on`, then inactive for
/// `off`, and so on. Server responses then say whether it is `active` right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// How long each active phase lasts.
    pub on: Duration,
    /// How long each pause lasts.
    pub off: Duration,
}

impl Schedule {
    /// Active for `on`, then inactive for `off`, repeating.
    pub fn new(on: Duration, off: Duration) -> Schedule {
        Schedule { on, off }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!({"on_ms": millis(self.on), "off_ms": millis(self.off)}).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            on_ms: u64,
            off_ms: u64,
        }
        let w = Wire::deserialize(d)?;
        Ok(Schedule::new(
            Duration::from_millis(w.on_ms),
            Duration::from_millis(w.off_ms),
        ))
    }
}

/// A fault to add to a proxy: a [`ToxicKind`] plus where and how often it applies.
///
/// Start from a constructor named after the toxic type, then refine with builder methods:
///
/// ```
/// use faultline_client::{Stream, Target, Toxic};
/// use std::time::Duration;
///
/// let slow_replies = Toxic::latency(Duration::from_millis(300))
///     .jitter(Duration::from_millis(50))
///     .downstream()
///     .toxicity(0.5)
///     .name("slow_replies");
/// assert_eq!(slow_replies.stream_direction(), Stream::Downstream);
///
/// // faultline extensions: only some clients, for a while, in bursts.
/// let flaky = Toxic::reset_peer(Duration::ZERO)
///     .upstream()
///     .target(Target::cidr("127.0.0.1/32").fraction(0.5))
///     .for_duration(Duration::from_secs(5));
/// assert_eq!(flaky.kind().type_name(), "reset_peer");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    kind: ToxicKind,
    name: Option<String>,
    stream: Stream,
    toxicity: f32,
    target: Option<Target>,
    duration: Option<Duration>,
    schedule: Option<Schedule>,
}

impl Toxic {
    /// A toxic of `kind`, downstream, toxicity 1, named by the server (`<type>_<stream>`).
    pub fn new(kind: ToxicKind) -> Toxic {
        Toxic {
            kind,
            name: None,
            stream: Stream::Downstream,
            toxicity: 1.0,
            target: None,
            duration: None,
            schedule: None,
        }
    }

    /// Delays data by `latency` (add spread with [`jitter`](Toxic::jitter)).
    pub fn latency(latency: Duration) -> Toxic {
        Toxic::new(ToxicKind::Latency {
            latency,
            jitter: Duration::ZERO,
            distribution: None,
        })
    }

    /// Caps throughput at `rate` KB/s (1 KB = 1000 bytes). `0` stalls the stream but keeps
    /// the connection open: a network partition.
    pub fn bandwidth(rate: u64) -> Toxic {
        Toxic::new(ToxicKind::Bandwidth { rate })
    }

    /// Delays the close by `delay` after the peer closes.
    pub fn slow_close(delay: Duration) -> Toxic {
        Toxic::new(ToxicKind::SlowClose { delay })
    }

    /// Swallows data and closes after `timeout` without data; `Duration::ZERO` never closes
    /// (a black hole).
    pub fn timeout(timeout: Duration) -> Toxic {
        Toxic::new(ToxicKind::Timeout { timeout })
    }

    /// Resets the connection (TCP RST) `timeout` after the first data.
    pub fn reset_peer(timeout: Duration) -> Toxic {
        Toxic::new(ToxicKind::ResetPeer { timeout })
    }

    /// Cuts data into writes of `average_size` ± `size_variation` bytes, `delay` apart.
    pub fn slicer(average_size: u64, size_variation: u64, delay: Duration) -> Toxic {
        Toxic::new(ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        })
    }

    /// Closes the connection after `bytes` bytes.
    pub fn limit_data(bytes: u64) -> Toxic {
        Toxic::new(ToxicKind::LimitData { bytes })
    }

    /// Loses TCP segments with `probability`: data arrives late, never missing. The
    /// retransmission timeout starts at 200 ms; change it with [`rto`](Toxic::rto).
    pub fn packet_loss(probability: f64) -> Toxic {
        Toxic::new(ToxicKind::PacketLoss {
            probability,
            rto: DEFAULT_RTO,
        })
    }

    /// Discards whole chunks with `probability`.
    pub fn drop(probability: f64) -> Toxic {
        Toxic::new(ToxicKind::Drop { probability })
    }

    /// Flips one bit in each byte with `probability`.
    pub fn corrupt(probability: f64) -> Toxic {
        Toxic::new(ToxicKind::Corrupt { probability })
    }

    /// Does nothing.
    pub fn noop() -> Toxic {
        Toxic::new(ToxicKind::Noop)
    }

    /// Dials the upstream only `delay` after a client connects (faultline).
    pub fn slow_open(delay: Duration) -> Toxic {
        Toxic::new(ToxicKind::SlowOpen { delay })
    }

    /// Resets new connections at once; open ones keep working (faultline).
    pub fn refuse() -> Toxic {
        Toxic::new(ToxicKind::Refuse)
    }

    /// Accepts new connections and never answers; open ones keep working (faultline).
    pub fn blackhole() -> Toxic {
        Toxic::new(ToxicKind::Blackhole)
    }

    /// Lets at most `limit` connections through at once and refuses the others (faultline);
    /// [`queue_excess`](Toxic::queue_excess) makes them wait instead.
    pub fn limit_connections(limit: u64) -> Toxic {
        Toxic::new(ToxicKind::LimitConnections { limit, mode: None })
    }

    /// Makes a limit_connections toxic hold excess connections until a slot frees up.
    ///
    /// # Panics
    /// If this is not a limit_connections toxic.
    pub fn queue_excess(mut self) -> Toxic {
        match &mut self.kind {
            ToxicKind::LimitConnections { mode, .. } => *mode = Some(LimitMode::Queue),
            other => panic!(
                "queue_excess applies to limit_connections toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Answers matching requests at once with `status`, without reaching the upstream
    /// (faultline, `http` proxies). Add headers with [`set_header`](Toxic::set_header), a body
    /// with [`body`](Toxic::body), and narrow it with [`method`](Toxic::method),
    /// [`path_prefix`](Toxic::path_prefix) and [`header_matches`](Toxic::header_matches).
    ///
    /// ```
    /// use faultline_client::Toxic;
    /// let storm = Toxic::http_status(429).set_header("Retry-After", "2").toxicity(0.5);
    /// assert_eq!(storm.kind().attributes()["headers"]["Retry-After"], "2");
    /// ```
    pub fn http_status(status: u16) -> Toxic {
        Toxic::new(ToxicKind::HttpStatus {
            status,
            headers: Vec::new(),
            body: String::new(),
            matcher: HttpMatch::default(),
        })
    }

    /// Holds matching HTTP exchanges for `delay` at `phase` (faultline, `http` proxies).
    pub fn http_delay(phase: HttpDelayPhase, delay: Duration) -> Toxic {
        Toxic::new(ToxicKind::HttpDelay {
            phase,
            delay,
            jitter: Duration::ZERO,
            matcher: HttpMatch::default(),
        })
    }

    /// Cuts matching HTTP exchanges at `phase` with a clean close; [`reset`](Toxic::reset)
    /// makes it a TCP reset (faultline, `http` proxies).
    pub fn http_abort(phase: HttpAbortPhase) -> Toxic {
        Toxic::new(ToxicKind::HttpAbort {
            phase,
            reset: false,
            matcher: HttpMatch::default(),
        })
    }

    /// Edits headers of matching requests (with [`upstream`](Toxic::upstream)) or responses
    /// (the default) (faultline, `http` proxies): see [`set_header`](Toxic::set_header) and
    /// [`remove_header`](Toxic::remove_header).
    pub fn http_header() -> Toxic {
        Toxic::new(ToxicKind::HttpHeader {
            set: Vec::new(),
            remove: Vec::new(),
            matcher: HttpMatch::default(),
        })
    }

    /// Adds a header to an http_status answer, or to the headers an http_header toxic sets.
    ///
    /// # Panics
    /// If this is neither an http_status nor an http_header toxic.
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Toxic {
        match &mut self.kind {
            ToxicKind::HttpStatus { headers, .. } | ToxicKind::HttpHeader { set: headers, .. } => {
                headers.push((name.into(), value.into()))
            }
            other => panic!(
                "set_header applies to http_status and http_header toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Removes a header (http_header toxics).
    ///
    /// # Panics
    /// If this is not an http_header toxic.
    pub fn remove_header(mut self, name: impl Into<String>) -> Toxic {
        match &mut self.kind {
            ToxicKind::HttpHeader { remove, .. } => remove.push(name.into()),
            other => panic!(
                "remove_header applies to http_header toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Sets the body of an http_status answer.
    ///
    /// # Panics
    /// If this is not an http_status toxic.
    pub fn body(mut self, text: impl Into<String>) -> Toxic {
        match &mut self.kind {
            ToxicKind::HttpStatus { body, .. } => *body = text.into(),
            other => panic!(
                "body applies to http_status toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Makes an http_abort toxic send a TCP reset instead of a clean close.
    ///
    /// # Panics
    /// If this is not an http_abort toxic.
    pub fn reset(mut self) -> Toxic {
        match &mut self.kind {
            ToxicKind::HttpAbort { reset, .. } => *reset = true,
            other => panic!(
                "reset applies to http_abort toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    fn matcher(&mut self, what: &str) -> &mut HttpMatch {
        match &mut self.kind {
            ToxicKind::HttpStatus { matcher, .. }
            | ToxicKind::HttpDelay { matcher, .. }
            | ToxicKind::HttpAbort { matcher, .. }
            | ToxicKind::HttpHeader { matcher, .. } => matcher,
            other => panic!("{what} applies to HTTP toxics, not {}", other.type_name()),
        }
    }

    /// Applies an HTTP toxic only to requests with this method (e.g. `"POST"`).
    ///
    /// # Panics
    /// If this is not an HTTP toxic.
    pub fn method(mut self, method: impl Into<String>) -> Toxic {
        self.matcher("method").method = Some(method.into());
        self
    }

    /// Applies an HTTP toxic only to requests whose path starts with `prefix`.
    ///
    /// # Panics
    /// If this is not an HTTP toxic.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Toxic {
        self.matcher("path_prefix").path_prefix = Some(prefix.into());
        self
    }

    /// Applies an HTTP toxic only to requests with a header `name` whose value matches
    /// `regex`.
    ///
    /// # Panics
    /// If this is not an HTTP toxic.
    pub fn header_matches(mut self, name: &str, regex: &str) -> Toxic {
        self.matcher("header_matches").header = Some(format!("{name}: {regex}"));
        self
    }

    /// Any toxic type, with raw JSON attributes: the escape hatch for types this crate does
    /// not know. `attributes` should be a JSON object; anything else is sent as `{}`.
    ///
    /// ```
    /// use faultline_client::Toxic;
    /// let t = Toxic::custom("latency", serde_json::json!({"latency": 100}));
    /// assert_eq!(t.kind().attributes()["latency"], 100);
    /// ```
    pub fn custom(type_name: impl Into<String>, attributes: Value) -> Toxic {
        Toxic::new(ToxicKind::Custom {
            type_name: type_name.into(),
            attributes: match attributes {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        })
    }

    /// Sets the spread of a latency or http_delay toxic.
    ///
    /// # Panics
    /// If this is not a latency toxic.
    pub fn jitter(mut self, jitter: Duration) -> Toxic {
        match &mut self.kind {
            ToxicKind::Latency { jitter: j, .. } | ToxicKind::HttpDelay { jitter: j, .. } => {
                *j = jitter
            }
            other => panic!(
                "jitter applies to latency and http_delay toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Sets how a latency toxic draws its jitter (a faultline extension).
    ///
    /// # Panics
    /// If this is not a latency toxic.
    pub fn distribution(mut self, distribution: Distribution) -> Toxic {
        match &mut self.kind {
            ToxicKind::Latency {
                distribution: d, ..
            } => *d = Some(distribution),
            other => panic!(
                "distribution applies to latency toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Sets the initial retransmission timeout of a packet_loss toxic.
    ///
    /// # Panics
    /// If this is not a packet_loss toxic.
    pub fn rto(mut self, rto: Duration) -> Toxic {
        match &mut self.kind {
            ToxicKind::PacketLoss { rto: r, .. } => *r = rto,
            other => panic!(
                "rto applies to packet_loss toxics, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Names the toxic (default: `<type>_<stream>`, e.g. `latency_downstream`). Names are
    /// unique per proxy, across both streams.
    pub fn name(mut self, name: impl Into<String>) -> Toxic {
        self.name = Some(name.into());
        self
    }

    /// Acts on `stream`.
    pub fn stream(mut self, stream: Stream) -> Toxic {
        self.stream = stream;
        self
    }

    /// Acts on data from the client to the upstream server.
    pub fn upstream(self) -> Toxic {
        self.stream(Stream::Upstream)
    }

    /// Acts on data from the upstream server to the client (the default).
    pub fn downstream(self) -> Toxic {
        self.stream(Stream::Downstream)
    }

    /// Probability in `[0, 1]` that the toxic applies to a given connection (default 1).
    pub fn toxicity(mut self, toxicity: f32) -> Toxic {
        self.toxicity = toxicity;
        self
    }

    /// Applies only to the connections `target` selects (a faultline extension).
    pub fn target(mut self, target: Target) -> Toxic {
        self.target = Some(target);
        self
    }

    /// Makes the server remove the toxic by itself after `duration` (a faultline extension:
    /// `duration_ms`). A safety net: the fault ends even if the test process dies.
    pub fn for_duration(mut self, duration: Duration) -> Toxic {
        self.duration = Some(duration);
        self
    }

    /// Switches the toxic on and off in cycles (a faultline extension).
    pub fn schedule(mut self, schedule: Schedule) -> Toxic {
        self.schedule = Some(schedule);
        self
    }

    /// The type and attributes.
    pub fn kind(&self) -> &ToxicKind {
        &self.kind
    }

    /// The name given with [`name`](Toxic::name), if any.
    pub fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name the server will give it: the given one, or `<type>_<stream>`.
    pub fn effective_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}_{}", self.kind.type_name(), self.stream))
    }

    /// The stream it acts on.
    pub fn stream_direction(&self) -> Stream {
        self.stream
    }

    /// The JSON body of `POST /proxies/{proxy}/toxics`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("type".into(), json!(self.kind.type_name()));
        body.insert("stream".into(), json!(self.stream.as_str()));
        body.insert("toxicity".into(), toxicity_json(self.toxicity));
        body.insert("attributes".into(), Value::Object(self.kind.attributes()));
        if let Some(target) = &self.target {
            body.insert("target".into(), json!(target));
        }
        if let Some(duration) = self.duration {
            body.insert("duration_ms".into(), millis(duration));
        }
        if let Some(schedule) = &self.schedule {
            body.insert("schedule".into(), json!(schedule));
        }
        Value::Object(body)
    }
}

impl Serialize for Toxic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// A toxic as the server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicInfo {
    /// Its name, unique within the proxy.
    pub name: String,
    /// Its type, e.g. `"latency"`; see [`kind`](ToxicInfo::kind) for the typed view.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The stream it acts on.
    pub stream: Stream,
    /// Probability that it applies to a given connection.
    #[serde(default = "one")]
    pub toxicity: f32,
    /// Its attributes, as the server lists them.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Which connections it applies to (faultline only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Time left before the server removes it (faultline only, toxics added with
    /// [`Toxic::for_duration`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    /// Its on/off cycle (faultline only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Whether a scheduled toxic is in an active phase right now (faultline only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

fn one() -> f32 {
    1.0
}

impl ToxicInfo {
    /// The typed type and attributes.
    pub fn kind(&self) -> ToxicKind {
        ToxicKind::from_wire(&self.type_name, &self.attributes)
    }

    /// Time left before the server removes the toxic, if it has an expiry.
    pub fn remaining(&self) -> Option<Duration> {
        self.remaining_ms.map(Duration::from_millis)
    }

    /// A [`Toxic`] that would recreate this one (on another proxy or server), without its
    /// remaining lifetime.
    pub fn to_toxic(&self) -> Toxic {
        let mut toxic = Toxic::new(self.kind())
            .name(self.name.clone())
            .stream(self.stream)
            .toxicity(self.toxicity);
        toxic.target = self.target.clone();
        toxic.schedule = self.schedule;
        toxic
    }
}

/// A change to an existing toxic: only what is set is sent, and attributes merge into the
/// current ones (Toxiproxy's rule), so `ToxicUpdate::new().attribute("latency", 50)` keeps
/// the jitter. A whole [`Toxic`] converts into an update that sets all of its attributes.
///
/// ```
/// use faultline_client::ToxicUpdate;
/// let body = ToxicUpdate::new().toxicity(0.5).attribute("latency", 50).to_json();
/// assert_eq!(body, serde_json::json!({"toxicity": 0.5, "attributes": {"latency": 50}}));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToxicUpdate {
    toxicity: Option<f32>,
    attributes: Map<String, Value>,
    target: Option<Option<Target>>,
    duration: Option<Option<Duration>>,
    schedule: Option<Option<Schedule>>,
}

impl ToxicUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> ToxicUpdate {
        ToxicUpdate::default()
    }

    /// Sets the toxicity.
    pub fn toxicity(mut self, toxicity: f32) -> ToxicUpdate {
        self.toxicity = Some(toxicity);
        self
    }

    /// Sets one attribute (raw JSON value), keeping the others.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> ToxicUpdate {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Sets every attribute of `kind` (its type is not changed: servers ignore it).
    pub fn attributes_of(mut self, kind: &ToxicKind) -> ToxicUpdate {
        self.attributes.extend(kind.attributes());
        self
    }

    /// Sets the target (faultline).
    pub fn target(mut self, target: Target) -> ToxicUpdate {
        self.target = Some(Some(target));
        self
    }

    /// Removes the target: the toxic applies to every connection again (faultline).
    pub fn clear_target(mut self) -> ToxicUpdate {
        self.target = Some(None);
        self
    }

    /// Sets a new lifetime, counted from now (faultline).
    pub fn for_duration(mut self, duration: Duration) -> ToxicUpdate {
        self.duration = Some(Some(duration));
        self
    }

    /// Removes the expiry: the toxic stays until removed (faultline).
    pub fn clear_duration(mut self) -> ToxicUpdate {
        self.duration = Some(None);
        self
    }

    /// Sets the on/off cycle (faultline).
    pub fn schedule(mut self, schedule: Schedule) -> ToxicUpdate {
        self.schedule = Some(Some(schedule));
        self
    }

    /// Removes the on/off cycle: the toxic is always active (faultline).
    pub fn clear_schedule(mut self) -> ToxicUpdate {
        self.schedule = Some(None);
        self
    }

    /// The JSON body of `POST /proxies/{proxy}/toxics/{toxic}`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        if let Some(t) = self.toxicity {
            body.insert("toxicity".into(), toxicity_json(t));
        }
        if !self.attributes.is_empty() {
            body.insert("attributes".into(), Value::Object(self.attributes.clone()));
        }
        if let Some(target) = &self.target {
            body.insert("target".into(), json!(target));
        }
        if let Some(duration) = self.duration {
            body.insert("duration_ms".into(), json!(duration.map(millis)));
        }
        if let Some(schedule) = &self.schedule {
            body.insert("schedule".into(), json!(schedule));
        }
        Value::Object(body)
    }
}

impl From<Toxic> for ToxicUpdate {
    /// Everything but the name, type and stream, which a server never changes.
    fn from(toxic: Toxic) -> ToxicUpdate {
        let mut update = ToxicUpdate::new()
            .toxicity(toxic.toxicity)
            .attributes_of(&toxic.kind);
        update.target = toxic.target.map(Some);
        update.duration = toxic.duration.map(Some);
        update.schedule = toxic.schedule.map(Some);
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests carry Toxiproxy's field names and units.
    #[test]
    fn latency_wire_shape() {
        let t = Toxic::latency(Duration::from_millis(1000))
            .jitter(Duration::from_millis(100))
            .upstream()
            .name("slow");
        assert_eq!(
            t.to_json(),
            json!({"name": "slow", "type": "latency", "stream": "upstream", "toxicity": 1.0,
                   "attributes": {"latency": 1000, "jitter": 100}})
        );
    }

    /// Extensions appear only when used, in faultline's shapes.
    #[test]
    fn extensions_wire_shape() {
        let t = Toxic::drop(0.25)
            .target(Target::cidr("10.0.0.0/8").fraction(0.5))
            .for_duration(Duration::from_secs(5))
            .schedule(Schedule::new(
                Duration::from_secs(2),
                Duration::from_secs(8),
            ));
        let body = t.to_json();
        assert_eq!(
            body["target"],
            json!({"cidrs": ["10.0.0.0/8"], "fraction": 0.5})
        );
        assert_eq!(body["duration_ms"], 5000);
        assert_eq!(body["schedule"], json!({"on_ms": 2000, "off_ms": 8000}));
        assert!(Toxic::noop().to_json().get("target").is_none());
    }

    /// The slicer's delay is in microseconds, as in Toxiproxy.
    #[test]
    fn slicer_delay_in_micros() {
        let attrs = Toxic::slicer(64, 16, Duration::from_millis(2))
            .kind()
            .attributes();
        assert_eq!(attrs["delay"], 2000);
    }

    /// Server objects read back into typed kinds; unknown types stay raw.
    #[test]
    fn info_round_trip() {
        let info: ToxicInfo = serde_json::from_value(json!({
            "attributes": {"latency": 300, "jitter": 0}, "name": "latency_downstream",
            "type": "latency", "stream": "DOWNSTREAM", "toxicity": 1, "remaining_ms": 900,
            "schedule": {"on_ms": 1, "off_ms": 2}, "active": true
        }))
        .unwrap();
        assert_eq!(
            info.kind(),
            ToxicKind::Latency {
                latency: Duration::from_millis(300),
                jitter: Duration::ZERO,
                distribution: None
            }
        );
        assert_eq!(info.stream, Stream::Downstream);
        assert_eq!(info.remaining(), Some(Duration::from_millis(900)));
        assert_eq!(info.active, Some(true));
        let odd = ToxicKind::from_wire("future", &Map::new());
        assert_eq!(odd.type_name(), "future");
    }

    /// A full toxic as an update sends every attribute and the extensions it has.
    #[test]
    fn toxic_into_update() {
        let update: ToxicUpdate = Toxic::bandwidth(10).toxicity(0.5).into();
        assert_eq!(
            update.to_json(),
            json!({"toxicity": 0.5, "attributes": {"rate": 10}})
        );
        assert_eq!(
            ToxicUpdate::new().clear_duration().to_json(),
            json!({"duration_ms": null})
        );
    }

    /// Misusing a type-specific builder is a programming error, reported clearly.
    #[test]
    #[should_panic(expected = "jitter applies to latency and http_delay toxics, not bandwidth")]
    fn jitter_on_bandwidth_panics() {
        let _ = Toxic::bandwidth(1).jitter(Duration::from_millis(1));
    }
}
