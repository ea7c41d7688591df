//! `http_delay`: delays matching requests by `delay` ms (± `jitter`) at a `phase`: `request`
//! holds the request before it goes upstream, `response_headers` holds the response before
//! its headers reach the client, `body` spaces the body's chunks (each SSE event arrives
//! `delay` after the previous one).

use super::{millis, AttrSpec, Attributes, ToxicSpec, ToxicType};
use crate::http::rules::{matcher, DelayPhase, Fault, Rule, MATCH_ATTRIBUTES};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "http_delay",
    attributes: &[
        AttrSpec::int("delay", 0, 0),
        AttrSpec::int("jitter", 0, 0),
        AttrSpec::choice("phase", "request", &["request", "response_headers", "body"]),
        MATCH_ATTRIBUTES[0],
        MATCH_ATTRIBUTES[1],
        MATCH_ATTRIBUTES[2],
    ],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let phase = match a.text("phase") {
        "response_headers" => DelayPhase::ResponseHeaders,
        "body" => DelayPhase::Body,
        _ => DelayPhase::Request,
    };
    Ok(Arc::new(Rule {
        kind: TYPE.name,
        matcher: matcher(a)?,
        fault: Fault::Delay {
            phase,
            delay: millis(a.int("delay")),
            jitter: millis(a.int("jitter")),
        },
    }))
}
