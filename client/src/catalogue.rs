//! The toxic types faultline knows, with their attributes and units: the server's own
//! catalogue (`faultline::toxics::TYPES`), so this client and the CLI never drift from it.
//!
//! The client checks attribute names against it before sending ([`Error::UnknownAttribute`]):
//! a typo such as `rate_kb` for `bandwidth` would otherwise be ignored by a Toxiproxy server
//! and silently become a different fault. Types it does not know (a Toxiproxy server's custom
//! toxics) are sent unchecked.
//!
//! ```
//! use faultline_client::catalogue;
//!
//! let latency = catalogue::lookup("latency").unwrap();
//! let names: Vec<&str> = latency.attributes.iter().map(|a| a.name).collect();
//! assert_eq!(names, ["latency", "jitter", "distribution"]);
//! assert_eq!(latency.attributes[0].unit.symbol(), "ms");
//! ```

use crate::error::{Error, Result};
pub use faultline::toxics::{lookup, AttrKind, AttrSpec, ToxicType, Unit, TYPES};

/// Checks that every key in `keys` is an attribute of `type_name`. Unknown types pass. Names
/// match case-insensitively, as the server matches them.
///
/// ```
/// use faultline_client::{catalogue, Error};
///
/// assert!(catalogue::check_attributes("bandwidth", ["rate"]).is_ok());
/// assert!(catalogue::check_attributes("bandwidth", ["Rate"]).is_ok());
/// let err = catalogue::check_attributes("bandwidth", ["rate_kb"]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "unknown attribute \"rate_kb\" for bandwidth; expected one of: rate"
/// );
/// assert!(catalogue::check_attributes("my_custom_toxic", ["anything"]).is_ok());
/// ```
pub fn check_attributes<'a>(
    type_name: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let Some(kind) = lookup(type_name) else {
        return Ok(());
    };
    for key in keys {
        if attribute(kind, key).is_none() {
            return Err(Error::UnknownAttribute {
                type_name: type_name.to_string(),
                key: key.to_string(),
                expected: expected(kind),
            });
        }
    }
    Ok(())
}

/// The attribute of `kind` called `key`, in any case (as the server, like Go's decoder, reads
/// keys).
pub fn attribute(kind: &ToxicType, key: &str) -> Option<&'static AttrSpec> {
    kind.attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(key))
}

/// `latency, jitter, distribution`, or `none (this type has no attributes)`.
fn expected(kind: &ToxicType) -> String {
    if kind.attributes.is_empty() {
        "none (this type has no attributes)".to_string()
    } else {
        let names: Vec<&str> = kind.attributes.iter().map(|a| a.name).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A type without attributes says so rather than listing nothing.
    #[test]
    fn attributeless_type() {
        let err = check_attributes("noop", ["x"]).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("expected one of: none (this type has no attributes)"));
    }

    /// Attribute names match in any case, as the server matches them; other names do not.
    #[test]
    fn attribute_names_match_in_any_case() {
        assert!(check_attributes("latency", ["LATENCY", "Jitter", "distribution"]).is_ok());
        assert!(check_attributes("latency", ["latencyy"]).is_err());
    }
}
