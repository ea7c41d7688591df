//! `http_status`: answers matching requests at once with `status` (100-599), optional
//! `headers` and `body`; the upstream never sees them and the connection stays usable.

use super::{AttrSpec, Attributes, ToxicSpec, ToxicType};
use crate::http::head::{valid_name, valid_value};
use crate::http::rules::{matcher, Fault, Rule, MATCH_ATTRIBUTES};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "http_status",
    attributes: &[
        AttrSpec::int_range("status", 0, 100, 599),
        AttrSpec::map("headers"),
        AttrSpec::text("body", ""),
        MATCH_ATTRIBUTES[0],
        MATCH_ATTRIBUTES[1],
        MATCH_ATTRIBUTES[2],
    ],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let status = a.int("status");
    if status == 0 {
        return Err("attribute status of http_status toxic is required (100-599)".into());
    }
    let headers = a.map("headers").to_vec();
    check_headers("headers", &headers)?;
    Ok(Arc::new(Rule {
        kind: TYPE.name,
        matcher: matcher(a)?,
        fault: Fault::Status {
            status: status as u16,
            headers,
            body: a.text("body").to_string(),
        },
    }))
}

/// Refuses header names and values that cannot be written into an HTTP head.
pub(crate) fn check_headers(attribute: &str, headers: &[(String, String)]) -> Result<(), String> {
    for (name, value) in headers {
        if !valid_name(name) {
            return Err(format!(
                "attribute {attribute} has an invalid header name \"{name}\""
            ));
        }
        if !valid_value(value) {
            return Err(format!(
                "attribute {attribute}.{name} has an invalid header value (control characters)"
            ));
        }
    }
    Ok(())
}
