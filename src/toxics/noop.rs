//! `noop`: passes everything through unchanged (Toxiproxy registers it; useful in tests).

use super::{Admission, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "noop",
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
}

/// Lets everything through.
struct Noop;

impl Toxic for Noop {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        out.push(piece);
        None
    }
}

/// The spec of a toxic that acts only when a connection opens (`slow_open`, `refuse`,
/// `blackhole`, `limit_connections`); its data side lets everything through.
#[derive(Debug)]
pub(crate) struct OnConnect(pub Admission);

impl ToxicSpec for OnConnect {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Noop)
    }

    fn admission(&self) -> Admission {
        self.0.clone()
    }
}
