//! `refuse`: new connections are reset before any byte is exchanged ("the service went
//! away"), while connections already open keep working. Compare `enabled: false`, which also
//! closes live connections ("the service died").

use super::{noop::Noop, Admission, Attributes, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "refuse",
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
        Admission::Refuse
    }
}
