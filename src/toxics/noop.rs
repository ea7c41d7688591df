//! `noop`: passes everything through unchanged (Toxiproxy registers it; useful in tests).

use super::{Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType};
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

/// Lets everything through; also the data side of toxics that act only on connect.
pub(crate) struct Noop;

impl Toxic for Noop {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        out.push(piece);
        None
    }
}
