//! `latency`: delays every piece by `latency` ms, plus a random `jitter`.
//!
//! The delay counts from when the bytes arrived, so a delayed stream keeps its throughput (the
//! pipeline reads ahead while pieces wait, as a long network path holds data in flight).
//! Pieces never overtake each other: a piece that draws a short delay waits for its predecessor.
//!
//! `jitter` is spread per `distribution` (a faultline extension, `uniform` by default):
//! `uniform` draws from `[-jitter, jitter)` as Toxiproxy does; `normal` uses `jitter` as the
//! standard deviation; `pareto` adds a heavy tail whose mean is `jitter` (a Lomax law of shape 2:
//! one piece in a hundred waits more than `latency + 9 * jitter`), as `tc netem` can.

use super::{millis, AttrSpec, Attributes, Piece, Toxic, ToxicSpec, ToxicType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "latency",
    attributes: &[
        AttrSpec::int("latency", 0, 0),
        AttrSpec::int("jitter", 0, 0),
        AttrSpec::choice("distribution", "uniform", &["uniform", "normal", "pareto"]).extension(),
    ],
    build,
};

/// How far ahead a delayed stream may be read: enough for ~1 GB/s through 30 ms.
const READ_AHEAD: usize = 32 << 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Distribution {
    Uniform,
    Normal,
    Pareto,
}

#[derive(Debug)]
struct Spec {
    latency: Duration,
    jitter: Duration,
    distribution: Distribution,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    let distribution = match a.text("distribution") {
        "normal" => Distribution::Normal,
        "pareto" => Distribution::Pareto,
        _ => Distribution::Uniform,
    };
    Ok(Arc::new(Spec {
        latency: millis(a.int("latency")),
        jitter: millis(a.int("jitter")),
        distribution,
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, rng: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Latency {
            latency: self.latency,
            jitter: self.jitter,
            distribution: self.distribution,
            rng: SmallRng::from_rng(rng),
            last_release: None,
        })
    }
}

struct Latency {
    latency: Duration,
    jitter: Duration,
    distribution: Distribution,
    rng: SmallRng,
    last_release: Option<Instant>,
}

impl Latency {
    fn delay(&mut self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let base = self.latency.as_secs_f64();
        let jitter = self.jitter.as_secs_f64();
        let offset = match self.distribution {
            // Toxiproxy draws whole milliseconds; microseconds spread the same range more evenly.
            Distribution::Uniform => self.rng.random_range(-jitter..jitter),
            Distribution::Normal => {
                // Box-Muller: two uniforms give one standard normal sample.
                let u1: f64 = 1.0 - self.rng.random::<f64>();
                let u2: f64 = self.rng.random();
                jitter * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            }
            Distribution::Pareto => {
                let u: f64 = 1.0 - self.rng.random::<f64>();
                jitter * (u.powf(-0.5) - 1.0)
            }
        };
        Duration::from_secs_f64((base + offset).clamp(0.0, 86_400.0))
    }
}

impl Toxic for Latency {
    fn on_piece(&mut self, mut piece: Piece, out: &mut Vec<Piece>) -> Option<super::Cut> {
        let mut release = piece.at + self.delay();
        if let Some(last) = self.last_release {
            release = release.max(last);
        }
        self.last_release = Some(release);
        piece.at = release;
        out.push(piece);
        None
    }

    fn read_ahead(&self) -> usize {
        // With no delay there is nothing in flight to cover: reading ahead would only fill
        // memory while the destination is slow.
        if self.latency.is_zero() && self.jitter.is_zero() {
            0
        } else {
            READ_AHEAD
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::AttrValue;
    use super::*;

    /// Each piece is released `latency` after it arrived, not after its predecessor left.
    #[test]
    fn delay_counts_from_arrival() {
        let mut t = toxic("latency", &[("latency", int(100))]);
        let t0 = Instant::now();
        let (a, _) = feed(t.as_mut(), b"a", t0);
        let (b, _) = feed(t.as_mut(), b"b", t0 + Duration::from_millis(1));
        assert_eq!(a[0].at, t0 + Duration::from_millis(100));
        assert_eq!(b[0].at, t0 + Duration::from_millis(101));
    }

    /// Jitter stays in `[latency - jitter, latency + jitter)` and never reorders pieces.
    #[test]
    fn uniform_jitter_in_range_and_ordered() {
        let mut t = toxic("latency", &[("latency", int(100)), ("jitter", int(50))]);
        let t0 = Instant::now();
        let mut last = t0;
        for _ in 0..1000 {
            let (out, _) = feed(t.as_mut(), b"x", t0);
            let d = out[0].at - t0;
            assert!(
                d >= Duration::from_millis(50) && d < Duration::from_millis(150),
                "{d:?}"
            );
            assert!(out[0].at >= last);
            last = out[0].at;
        }
    }

    /// The pareto law has a heavy tail: some pieces wait far longer than the mean.
    #[test]
    fn pareto_has_heavy_tail() {
        let mut t = toxic(
            "latency",
            &[
                ("latency", int(10)),
                ("jitter", int(10)),
                ("distribution", AttrValue::Text("pareto".into())),
            ],
        );
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..5000)
            .map(|i| {
                let at = t0 + Duration::from_secs(i);
                feed(t.as_mut(), b"x", at).0[0].at - at
            })
            .collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(10)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(100)));
    }
}
