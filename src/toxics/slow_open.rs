//! `slow_open`: the client's connect succeeds at once, but the upstream is dialed only `delay`
//! ms later, as a slow DNS lookup or an overloaded backend's accept queue feels. Bytes the
//! client sends meanwhile wait in the socket. Live connections are not affected.

use super::{millis, noop::Noop, Admission, AttrSpec, Attributes, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::Duration;

pub static TYPE: ToxicType = ToxicType {
    name: "slow_open",
    attributes: &[AttrSpec::int("delay", 0, 0)],
    build,
};

#[derive(Debug)]
struct Spec {
    delay: Duration,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        delay: millis(a.int("delay")),
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Noop)
    }

    fn admission(&self) -> Admission {
        Admission::Delay(self.delay)
    }
}
