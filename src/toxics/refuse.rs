//! `refuse`: new connections are reset before any byte is exchanged ("the service went
//! away"), while connections already open keep working. Compare `enabled: false`, which also
//! closes live connections ("the service died").

use super::{noop::OnConnect, Admission, Attributes, ToxicSpec, ToxicType};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "refuse",
    attributes: &[],
    build,
};

fn build(_: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(OnConnect(Admission::Refuse)))
}
