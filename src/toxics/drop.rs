//! `drop`: discards whole pieces with `probability`, leaving holes in the stream, to test how a
//! protocol copes with missing bytes (unlike `packet_loss`, which TCP would repair).

use super::{AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "drop",
    attributes: &[AttrSpec::float("probability", 0.0, 0.0, 1.0)],
    build,
};

#[derive(Debug)]
struct Spec {
    probability: f64,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        probability: a.float("probability"),
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, rng: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Drop {
            probability: self.probability,
            rng: SmallRng::from_rng(rng),
        })
    }
}

struct Drop {
    probability: f64,
    rng: SmallRng,
}

impl Toxic for Drop {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        if !self.rng.random_bool(self.probability) {
            out.push(piece);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use std::time::Instant;

    /// Probability 1 drops everything; 0 drops nothing.
    #[test]
    fn drops_by_probability() {
        let mut all = toxic("drop", &[("probability", float(1.0))]);
        assert!(feed(all.as_mut(), b"abc", Instant::now()).0.is_empty());
        let mut none = toxic("drop", &[]);
        assert_eq!(feed(none.as_mut(), b"abc", Instant::now()).0.len(), 1);
    }
}
