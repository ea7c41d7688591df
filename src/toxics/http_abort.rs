//! `http_abort`: cuts matching exchanges at a `phase`: `before_response` (the request
//! reaches the upstream, the client gets no response byte), `after_headers` (the client gets
//! the headers and no body) or `mid_body` (the client gets the first `bytes` bytes of the body
//! as sent on the wire). The connection is closed, or reset with `reset: true`.

use super::{AttrSpec, Attributes, Cut, ToxicSpec, ToxicType};
use crate::http::rules::{matcher, AbortPhase, Fault, Rule, MATCH_ATTRIBUTES};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "http_abort",
    attributes: &[
        AttrSpec::choice(
            "phase",
            "before_response",
            &["before_response", "after_headers", "mid_body"],
        ),
        AttrSpec::int("bytes", 0, 0),
        AttrSpec::boolean("reset", false),
        MATCH_ATTRIBUTES[0],
        MATCH_ATTRIBUTES[1],
        MATCH_ATTRIBUTES[2],
    ],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let phase = match a.text("phase") {
        "after_headers" => AbortPhase::AfterHeaders,
        "mid_body" => AbortPhase::MidBody(a.int("bytes") as u64),
        _ => AbortPhase::BeforeResponse,
    };
    let cut = if a.boolean("reset") {
        Cut::Reset
    } else {
        Cut::Close
    };
    Ok(Arc::new(Rule {
        kind: TYPE.name,
        matcher: matcher(a)?,
        fault: Fault::Abort { phase, cut },
    }))
}
