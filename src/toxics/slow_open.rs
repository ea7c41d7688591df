//! `slow_open`: the client's connect succeeds at once, but the upstream is dialed only `delay`
//! ms later, as a slow DNS lookup or an overloaded backend's accept queue feels. Bytes the
//! client sends meanwhile wait in the socket. Live connections are not affected.

use super::{millis, noop::OnConnect, Admission, AttrSpec, Attributes, ToxicSpec, ToxicType, Unit};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "slow_open",
    attributes: &[AttrSpec::int("delay", 0, 0).unit(Unit::Milliseconds)],
    build,
};

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(OnConnect(Admission::Delay(millis(
        a.int("delay"),
    )))))
}
