//! `slow_close`: data passes unchanged, but end-of-stream is held back `delay` ms.

use super::{millis, AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "slow_close",
    attributes: &[AttrSpec::int("delay", 0, 0).unit(Unit::Milliseconds)],
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
        Box::new(SlowClose { delay: self.delay })
    }
}

struct SlowClose {
    delay: Duration,
}

impl Toxic for SlowClose {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        out.push(piece);
        None
    }

    fn on_end(&mut self, at: Instant) -> Instant {
        at + self.delay
    }
}
