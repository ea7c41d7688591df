//! `limit_connections`: at most `limit` connections at once go through the proxy; the others
//! are refused (reset at once, `mode: "refuse"`, the default) or wait for a free slot
//! (`mode: "queue"`), as a backend with a small connection pool behaves.
//!
//! Connections opened before the toxic was added do not count against the limit, and an
//! update starts a fresh count.

use super::{noop::OnConnect, Admission, AttrSpec, Attributes, ToxicSpec, ToxicType};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub static TYPE: ToxicType = ToxicType {
    name: "limit_connections",
    attributes: &[
        AttrSpec::int("limit", 0, 0),
        AttrSpec::choice("mode", "refuse", &["refuse", "queue"]),
    ],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let limit = (a.int("limit") as usize).min(Semaphore::MAX_PERMITS);
    Ok(Arc::new(OnConnect(Admission::Slot {
        pool: Arc::new(Semaphore::new(limit)),
        wait: a.text("mode") == "queue",
    })))
}
