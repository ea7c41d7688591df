//! `slicer`: cuts each piece into slices of about `average_size` bytes (± `size_variation`),
//! released `delay` microseconds apart, to exercise a peer's handling of partial reads.
//!
//! Slicing bisects a piece until each part is at most `average_size + size_variation` long,
//! moving each cut by up to `size_variation`, as Toxiproxy does. Unlike Toxiproxy, an
//! `average_size` of 0 is refused (Toxiproxy recurses until it crashes) and cuts are kept inside
//! the piece whatever the variation.

use super::{AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "slicer",
    attributes: &[
        AttrSpec::int("average_size", 0, 0).unit(Unit::Bytes),
        AttrSpec::int("size_variation", 0, 0).unit(Unit::Bytes),
        AttrSpec::int("delay", 0, 0).unit(Unit::Microseconds),
    ],
    build,
};

/// How many slices one piece fed to the slicer may become, at most.
const SLICES_PER_INPUT: usize = 32;

#[derive(Debug)]
struct Spec {
    average: usize,
    variation: usize,
    delay: Duration,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let average = a.int("average_size");
    if average < 1 {
        return Err("attribute average_size of slicer toxic must be at least 1".into());
    }
    Ok(Arc::new(Spec {
        average: average as usize,
        variation: a.int("size_variation") as usize,
        delay: Duration::from_micros(a.int("delay") as u64),
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, rng: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Slicer {
            average: self.average,
            variation: self.variation,
            delay: self.delay,
            rng: SmallRng::from_rng(rng),
            next_at: None,
            stack: Vec::new(),
        })
    }
}

struct Slicer {
    average: usize,
    variation: usize,
    delay: Duration,
    rng: SmallRng,
    /// When the next slice may go, `delay` after the previous one.
    next_at: Option<Instant>,
    /// Segments still to cut, as (offset, len), last popped first (reused between pieces).
    stack: Vec<(usize, usize)>,
}

impl Toxic for Slicer {
    fn on_piece(&mut self, piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        let mut at = match self.next_at {
            Some(next) if next > piece.at => next,
            _ => piece.at,
        };
        self.stack.clear();
        self.stack.push((0, piece.data.len()));
        while let Some((offset, len)) = self.stack.pop() {
            if len == 0 {
                continue;
            }
            if len <= self.average + self.variation {
                out.push(Piece {
                    data: piece.data.slice(offset..offset + len),
                    at,
                    gap: self.delay.max(piece.gap),
                });
                at += self.delay;
                continue;
            }
            let mut mid = len / 2;
            if self.variation > 0 {
                let shift =
                    self.rng.random_range(0..2 * self.variation) as isize - self.variation as isize;
                mid = (mid as isize + shift).clamp(1, len as isize - 1) as usize;
            }
            self.stack.push((offset + mid, len - mid));
            self.stack.push((offset, mid));
        }
        self.next_at = Some(at);
        None
    }

    fn max_input(&self) -> usize {
        // A few dozen slices per piece at most: the pipeline feeds the rest as the slices go.
        (self.average + self.variation).saturating_mul(SLICES_PER_INPUT)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// With no variation and size 1, every byte is its own slice, in order.
    #[test]
    fn exact_single_bytes() {
        let mut t = toxic("slicer", &[("average_size", int(1))]);
        let (out, _) = feed(t.as_mut(), b"abcdefghijklmnopqrstuvwx", Instant::now());
        assert_eq!(out.len(), 24);
        let joined: Vec<u8> = out.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, b"abcdefghijklmnopqrstuvwx");
    }

    /// Slices stay within bounds, keep every byte in order, and are spaced by `delay`.
    #[test]
    fn sizes_bounded_and_spaced() {
        let mut t = toxic(
            "slicer",
            &[
                ("average_size", int(1024)),
                ("size_variation", int(512)),
                ("delay", int(10)),
            ],
        );
        let data: Vec<u8> = (0..480_000u32).map(|i| i as u8).collect();
        let t0 = Instant::now();
        let (out, _) = feed(t.as_mut(), &data, t0);
        assert!((240..=720).contains(&out.len()), "{}", out.len());
        assert!(out
            .iter()
            .all(|p| !p.data.is_empty() && p.data.len() <= 1536));
        let joined: Vec<u8> = out.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, data);
        assert_eq!(out[1].at - out[0].at, Duration::from_micros(10));
    }

    /// Variation larger than the average never produces empty or out-of-range slices.
    #[test]
    fn wild_variation_is_safe() {
        let mut t = toxic(
            "slicer",
            &[("average_size", int(2)), ("size_variation", int(50))],
        );
        let (out, _) = feed(t.as_mut(), &[7u8; 1000], Instant::now());
        assert_eq!(out.iter().map(|p| p.data.len()).sum::<usize>(), 1000);
    }
}
