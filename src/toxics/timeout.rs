//! `timeout`: swallows all data in its direction; after `timeout` ms without data it closes
//! the connection (0 = swallow forever, connection left open). As in Toxiproxy, the timer is an
//! idle timer restarted by every piece, and removing the toxic closes the connections it held,
//! since their streams have already lost bytes.

use super::{millis, AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "timeout",
    attributes: &[AttrSpec::int("timeout", 0, 0).unit(Unit::Milliseconds)],
    build,
};

#[derive(Debug)]
struct Spec {
    timeout: Duration,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        timeout: millis(a.int("timeout")),
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(Timeout {
            timeout: self.timeout,
            started: Instant::now(),
        })
    }
}

struct Timeout {
    timeout: Duration,
    /// When the toxic attached, or when it last swallowed a piece.
    started: Instant,
}

impl Toxic for Timeout {
    fn on_piece(&mut self, piece: Piece, _out: &mut Vec<Piece>) -> Option<Cut> {
        self.started = self.started.max(piece.at).max(Instant::now());
        None
    }

    fn deadline(&self) -> Option<(Instant, Cut)> {
        (!self.timeout.is_zero()).then(|| (self.started + self.timeout, Cut::Close))
    }

    fn on_remove(&self) -> Option<Cut> {
        Some(Cut::Close)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Data is swallowed and each piece pushes the close further out.
    #[test]
    fn swallows_and_restarts_timer() {
        let mut t = toxic("timeout", &[("timeout", int(400))]);
        let first = t.deadline().unwrap().0;
        let later = Instant::now() + Duration::from_millis(250);
        let (out, cut) = feed(t.as_mut(), b"data", later);
        assert!(out.is_empty() && cut.is_none());
        let (deadline, cut) = t.deadline().unwrap();
        assert_eq!(cut, Cut::Close);
        assert!(deadline > first);
        assert_eq!(deadline, later + Duration::from_millis(400));
    }

    /// Timeout 0 never closes on its own.
    #[test]
    fn zero_never_closes() {
        let t = toxic("timeout", &[]);
        assert!(t.deadline().is_none());
    }
}
