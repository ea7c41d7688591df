//! `blackhole`: new connections are accepted and then never answered (the upstream is never
//! dialed), as behind a firewall that drops packets; clients hang until their own timeouts.
//! Connections already open keep working.

use super::{noop::Noop, Admission, Attributes, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "blackhole",
    attributes: &[],
    build,
};

#[derive(Debug)]
struct Spec;

fn build(_: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Noop)
    }

    fn admission(&self) -> Admission {
        Admission::Blackhole
    }
}
