//! `blackhole`: new connections are accepted and then never answered (the upstream is never
//! dialed), as behind a firewall that drops packets; clients hang until their own timeouts.
//! Connections already open keep working.

use super::{noop::OnConnect, Admission, Attributes, ToxicSpec, ToxicType};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "blackhole",
    attributes: &[],
    build,
};

fn build(_: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(OnConnect(Admission::Blackhole)))
}
