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

use super::{millis, AttrSpec, Attributes, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "latency",
    attributes: &[
        AttrSpec::int("latency", 0, 0).unit(Unit::Milliseconds),
        AttrSpec::int("jitter", 0, 0).unit(Unit::Milliseconds),
        AttrSpec::choice("distribution", "uniform", &["uniform", "normal", "pareto"]).extension(),
    ],
    build,
};

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

    fn holds(&self) -> Duration {
        // With no delay there is nothing in flight to cover: reading ahead would only fill
        // memory while the destination is slow. Jitter's tail is counted at three spreads.
        match self.distribution {
            Distribution::Uniform => self.latency + self.jitter,
            Distribution::Normal | Distribution::Pareto => self.latency + self.jitter * 3,
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

    /// The delays `n` pieces draw, in milliseconds, sorted. Arrivals are an hour apart so the
    /// no-overtaking rule never shortens or lengthens a draw; the source is seeded.
    fn sorted_delays_ms(distribution: &str, latency: i64, jitter: i64, n: u64) -> Vec<f64> {
        let mut t = toxic(
            "latency",
            &[
                ("latency", int(latency)),
                ("jitter", int(jitter)),
                ("distribution", AttrValue::Text(distribution.into())),
            ],
        );
        let t0 = Instant::now();
        let mut delays: Vec<f64> = (0..n)
            .map(|i| {
                let at = t0 + Duration::from_secs(3600 * i);
                (feed(t.as_mut(), b"x", at).0[0].at - at).as_secs_f64() * 1000.0
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        delays
    }

    /// The value below which a share `q` of the sorted samples fall.
    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    fn mean(samples: &[f64]) -> f64 {
        samples.iter().sum::<f64>() / samples.len() as f64
    }

    #[track_caller]
    fn assert_near(what: &str, actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what} is {actual:.4}, expected {expected:.4} ± {tolerance}"
        );
    }

    /// Uniform jitter is flat over `latency ± jitter`: the quartiles sit at `± jitter / 2`.
    #[test]
    fn uniform_spreads_evenly() {
        let d = sorted_delays_ms("uniform", 100, 50, 100_000);
        assert_near("median", quantile(&d, 0.5), 100.0, 1.0);
        assert_near("first quartile", quantile(&d, 0.25), 75.0, 1.0);
        assert_near("third quartile", quantile(&d, 0.75), 125.0, 1.0);
    }

    /// Normal jitter is a bell around `latency` with `jitter` as its standard deviation: the
    /// median is the latency, ~68% of delays fall within ± jitter, ~95% within ± 2 jitter, and
    /// one in a hundred exceeds latency + 2.33 jitter.
    #[test]
    fn normal_centres_on_latency_with_jitter_as_deviation() {
        let d = sorted_delays_ms("normal", 1000, 100, 100_000);
        let within = |k: f64| {
            let inside = d
                .iter()
                .filter(|x| (**x - 1000.0).abs() <= k * 100.0)
                .count();
            inside as f64 / d.len() as f64
        };
        assert_near("median", quantile(&d, 0.5), 1000.0, 3.0);
        assert_near("mean", mean(&d), 1000.0, 3.0);
        assert_near("share within ± jitter", within(1.0), 0.6827, 0.01);
        assert_near("share within ± 2 jitter", within(2.0), 0.9545, 0.005);
        assert_near("99th percentile", quantile(&d, 0.99), 1232.6, 8.0);
        assert_near("1st percentile", quantile(&d, 0.01), 767.4, 8.0);
    }

    /// Pareto jitter only adds, with a heavy tail whose mean is `jitter`: the median is
    /// latency + jitter·(√2 − 1), the 99th percentile latency + 9 jitter.
    #[test]
    fn pareto_adds_a_heavy_tail_with_mean_jitter() {
        let d = sorted_delays_ms("pareto", 100, 50, 100_000);
        assert!(
            d[0] >= 100.0,
            "shortest delay {} is under the latency",
            d[0]
        );
        assert_near(
            "median",
            quantile(&d, 0.5),
            100.0 + 50.0 * (2f64.sqrt() - 1.0),
            1.5,
        );
        assert_near("99th percentile", quantile(&d, 0.99), 550.0, 30.0);
        assert_near("mean", mean(&d), 150.0, 5.0);
    }
}
