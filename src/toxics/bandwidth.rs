//! `bandwidth`: caps the rate of one direction at `rate` KB/s (1 KB = 1000 bytes).
//!
//! Release instants follow an exact schedule (each byte takes `1/rate` ms after the previous
//! one), so timer overshoot never accumulates into a lower rate. Pieces bigger than 100 ms worth
//! of bytes are cut so the stream flows smoothly instead of in bursts.
//! `rate: 0` stalls the direction and keeps the connection open: Toxiproxy users rely on this to
//! simulate a network partition.

use super::{far_future, AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "bandwidth",
    attributes: &[AttrSpec::int("rate", 0, 0).unit(Unit::KilobytesPerSecond)],
    build,
};

#[derive(Debug)]
struct Spec {
    bytes_per_ms: u64,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        bytes_per_ms: a.int("rate") as u64,
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Bandwidth {
            bytes_per_ms: self.bytes_per_ms,
            free_at: None,
        })
    }
}

struct Bandwidth {
    bytes_per_ms: u64,
    /// When the link finishes sending what it was last given.
    free_at: Option<Instant>,
}

impl Toxic for Bandwidth {
    fn on_piece(&mut self, mut piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        if self.bytes_per_ms == 0 {
            piece.at = far_future(piece.at);
            out.push(piece);
            return None;
        }
        let slice = (self.bytes_per_ms * 100).min(usize::MAX as u64) as usize;
        let mut start = match self.free_at {
            Some(free) if free > piece.at => free,
            _ => piece.at,
        };
        while !piece.data.is_empty() {
            let data = piece.data.split_to(slice.min(piece.data.len()));
            let nanos = data.len() as u64 * 1_000_000 / self.bytes_per_ms;
            start += Duration::from_nanos(nanos);
            out.push(Piece {
                data,
                at: start,
                gap: piece.gap,
            });
        }
        self.free_at = Some(start);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// 480 KB at 1000 KB/s is released over exactly 480 ms, in 100 KB slices.
    #[test]
    fn schedule_is_exact() {
        let mut t = toxic("bandwidth", &[("rate", int(1000))]);
        let t0 = Instant::now();
        let (out, _) = feed(t.as_mut(), &vec![0u8; 480_000], t0);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].at - t0, Duration::from_millis(100));
        assert_eq!(out.last().unwrap().at - t0, Duration::from_millis(480));
        let (next, _) = feed(t.as_mut(), &[0u8; 1000], t0);
        assert_eq!(next[0].at - t0, Duration::from_millis(481));
    }

    /// Rate 0 holds data back indefinitely without closing.
    #[test]
    fn zero_rate_stalls() {
        let mut t = toxic("bandwidth", &[]);
        let t0 = Instant::now();
        let (out, cut) = feed(t.as_mut(), b"abc", t0);
        assert!(cut.is_none());
        assert!(out[0].at > t0 + Duration::from_secs(86_400));
    }
}
