//! `reset_peer`: when the first bytes arrive in its direction they are dropped, and `timeout` ms
//! later the connection is reset (both peers see ECONNRESET). Nothing happens while no data
//! flows. Unlike Toxiproxy, the reset is a real RST even when the toxic was added to a
//! connection that was already open.

use super::{millis, AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static TYPE: ToxicType = ToxicType {
    name: "reset_peer",
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
        Box::new(ResetPeer {
            timeout: self.timeout,
            reset_at: None,
        })
    }
}

struct ResetPeer {
    timeout: Duration,
    reset_at: Option<Instant>,
}

impl ResetPeer {
    fn arm(&mut self, at: Instant) {
        if self.reset_at.is_none() {
            self.reset_at = Some(at.max(Instant::now()) + self.timeout);
        }
    }
}

impl Toxic for ResetPeer {
    fn on_piece(&mut self, piece: Piece, _out: &mut Vec<Piece>) -> Option<Cut> {
        self.arm(piece.at);
        None
    }

    fn on_end(&mut self, at: Instant) -> Instant {
        self.arm(at);
        super::far_future(at)
    }

    fn deadline(&self) -> Option<(Instant, Cut)> {
        self.reset_at.map(|at| (at, Cut::Reset))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Idle: nothing scheduled. First data: dropped, reset scheduled `timeout` later.
    #[test]
    fn arms_on_first_data() {
        let mut t = toxic("reset_peer", &[("timeout", int(100))]);
        assert!(t.deadline().is_none());
        let now = Instant::now();
        let (out, cut) = feed(t.as_mut(), b"hello", now);
        assert!(out.is_empty() && cut.is_none());
        let (at, cut) = t.deadline().unwrap();
        assert_eq!(cut, Cut::Reset);
        assert!(at >= now + Duration::from_millis(100));
    }
}
