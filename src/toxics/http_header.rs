//! `http_header`: on matching exchanges, sets the headers of `set` (an object) and removes
//! those named in `remove` (an array), on requests (`stream: upstream`) or responses
//! (`stream: downstream`). Other header lines keep their exact bytes and order.

use super::http_status::check_headers;
use super::{AttrSpec, Attributes, ToxicSpec, ToxicType};
use crate::http::head::valid_name;
use crate::http::rules::{matcher, Fault, Rule, MATCH_ATTRIBUTES};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "http_header",
    attributes: &[
        AttrSpec::map("set"),
        AttrSpec::list("remove"),
        MATCH_ATTRIBUTES[0],
        MATCH_ATTRIBUTES[1],
        MATCH_ATTRIBUTES[2],
    ],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let set = a.map("set").to_vec();
    check_headers("set", &set)?;
    let remove = a.list("remove").to_vec();
    if let Some(bad) = remove.iter().find(|name| !valid_name(name)) {
        return Err(format!(
            "attribute remove has an invalid header name \"{bad}\""
        ));
    }
    Ok(Arc::new(Rule {
        kind: TYPE.name,
        matcher: matcher(a)?,
        fault: Fault::Header { set, remove },
    }))
}
