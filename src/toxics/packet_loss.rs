//! `packet_loss`: what an application sees when TCP segments are lost on the way.
//!
//! TCP hides loss: a lost segment is retransmitted after a retransmission timeout (RTO), and
//! everything behind it waits (head-of-line blocking). So no byte goes missing or out of order;
//! from the first lost segment of a piece on, bytes arrive late. Each ~1448-byte segment is lost
//! with `probability`; a retransmission can be lost again, each time doubling the wait from
//! `rto` ms (default 200, Linux's minimum RTO), for at most 6 doublings.

use super::{millis, AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "packet_loss",
    attributes: &[
        AttrSpec::float("probability", 0.0, 0.0, 1.0),
        AttrSpec::int("rto", 200, 1).unit(Unit::Milliseconds),
    ],
    build,
};

/// A typical Ethernet TCP segment's payload.
const SEGMENT: usize = 1448;
const MAX_BACKOFFS: u32 = 6;

#[derive(Debug)]
struct Spec {
    probability: f64,
    rto: Duration,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        probability: a.float("probability"),
        rto: millis(a.int("rto")),
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, rng: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(PacketLoss {
            probability: self.probability,
            rto: self.rto,
            rng: SmallRng::from_rng(rng),
            last_release: None,
        })
    }
}

struct PacketLoss {
    probability: f64,
    rto: Duration,
    rng: SmallRng,
    last_release: Option<Instant>,
}

impl PacketLoss {
    /// How long one segment takes to get through: zero, or the sum of its backed-off RTOs.
    fn retransmission_wait(&mut self) -> Duration {
        let mut wait = Duration::ZERO;
        let mut backoffs = 0;
        while self.rng.random_bool(self.probability) {
            wait += self.rto * (1 << backoffs.min(MAX_BACKOFFS));
            backoffs += 1;
            if backoffs > 2 * MAX_BACKOFFS {
                break;
            }
        }
        wait
    }
}

impl Toxic for PacketLoss {
    fn on_piece(&mut self, mut piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        let arrived = piece.at;
        let mut release = self.last_release.map_or(arrived, |l| l.max(arrived));
        let mut offset = 0;
        // Cut the piece wherever a lost segment makes the bytes behind it later.
        for start in (0..piece.data.len()).step_by(SEGMENT) {
            let wait = self.retransmission_wait();
            let segment_release = arrived + wait;
            if segment_release > release {
                if start > offset {
                    out.push(Piece {
                        data: piece.data.split_to(start - offset),
                        at: release,
                        gap: piece.gap,
                    });
                    offset = start;
                }
                release = segment_release;
            }
        }
        piece.at = release;
        self.last_release = Some(release);
        out.push(piece);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Certain loss delays every byte by at least one RTO, and nothing is lost.
    #[test]
    fn loss_delays_never_drops() {
        let mut t = toxic(
            "packet_loss",
            &[("probability", float(0.5)), ("rto", int(200))],
        );
        let t0 = Instant::now();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let (out, cut) = feed(t.as_mut(), &data, t0);
        assert!(cut.is_none());
        let joined: Vec<u8> = out.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, data);
        assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(out.last().unwrap().at >= t0 + Duration::from_millis(200));
    }

    /// Probability 0 changes nothing.
    #[test]
    fn no_loss_no_delay() {
        let mut t = toxic("packet_loss", &[]);
        let t0 = Instant::now();
        let (out, _) = feed(t.as_mut(), &[1; 5000], t0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].at, t0);
    }
}
