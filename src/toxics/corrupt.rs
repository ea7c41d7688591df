//! `corrupt`: flips one random bit in each passing byte with `probability`, to test checksums
//! and parsers. Positions are drawn by geometric skips, so clean bytes cost nothing and a piece
//! is copied only when it is actually corrupted.

use super::{AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType};
use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "corrupt",
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
        let mut rng = SmallRng::from_rng(rng);
        let mut toxic = Corrupt {
            probability: self.probability,
            skip: 0,
            rng: SmallRng::from_rng(&mut rng),
        };
        toxic.skip = toxic.next_skip();
        Box::new(toxic)
    }
}

struct Corrupt {
    probability: f64,
    /// Clean bytes to let by before the next corrupted one.
    skip: u64,
    rng: SmallRng,
}

impl Corrupt {
    fn next_skip(&mut self) -> u64 {
        if self.probability <= 0.0 {
            return u64::MAX;
        }
        if self.probability >= 1.0 {
            return 0;
        }
        let u: f64 = 1.0 - self.rng.random::<f64>();
        (u.ln() / (1.0 - self.probability).ln()).min(u64::MAX as f64 / 2.0) as u64
    }
}

impl Toxic for Corrupt {
    fn on_piece(&mut self, mut piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        let len = piece.data.len() as u64;
        if self.skip >= len {
            self.skip -= len;
            out.push(piece);
            return None;
        }
        let mut data = BytesMut::from(&piece.data[..]);
        let mut i = self.skip;
        loop {
            data[i as usize] ^= 1 << self.rng.random_range(0..8);
            let next = i.saturating_add(1).saturating_add(self.next_skip());
            if next >= len {
                self.skip = next - len;
                break;
            }
            i = next;
        }
        piece.data = data.freeze();
        out.push(piece);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use std::time::Instant;

    /// Probability 1 changes every byte by exactly one bit; 0 changes nothing.
    #[test]
    fn flips_one_bit_per_chosen_byte() {
        let mut all = toxic("corrupt", &[("probability", float(1.0))]);
        let (out, _) = feed(all.as_mut(), &[0u8; 64], Instant::now());
        assert!(out[0].data.iter().all(|b| b.count_ones() == 1));
        let mut none = toxic("corrupt", &[]);
        let (out, _) = feed(none.as_mut(), &[0u8; 64], Instant::now());
        assert!(out[0].data.iter().all(|b| *b == 0));
    }

    /// About `probability` of the bytes are corrupted.
    #[test]
    fn rate_matches_probability() {
        let mut t = toxic("corrupt", &[("probability", float(0.01))]);
        let (out, _) = feed(t.as_mut(), &vec![0u8; 200_000], Instant::now());
        let changed = out[0].data.iter().filter(|b| **b != 0).count();
        assert!((1_400..2_600).contains(&changed), "{changed}");
    }
}
