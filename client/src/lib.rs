//! placeholder until the client crate lands
