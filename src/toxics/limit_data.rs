//! `limit_data`: lets `bytes` bytes through, then closes the connection. The count survives
//! updates of the toxic, so raising `bytes` on a live connection lets more data through.

use super::{AttrSpec, Attributes, Cut, Piece, Toxic, ToxicSpec, ToxicType, Unit};
use rand::rngs::SmallRng;
use std::sync::Arc;

pub static TYPE: ToxicType = ToxicType {
    name: "limit_data",
    attributes: &[AttrSpec::int("bytes", 0, 0).unit(Unit::Bytes)],
    build,
};

#[derive(Debug)]
struct Spec {
    limit: u64,
}

fn build(a: &Attributes) -> Result<Arc<dyn ToxicSpec>, String> {
    Ok(Arc::new(Spec {
        limit: a.int("bytes") as u64,
    }))
}

impl ToxicSpec for Spec {
    fn instantiate(&self, _: &mut SmallRng) -> Box<dyn Toxic> {
        Box::new(LimitData {
            limit: self.limit,
            passed: 0,
        })
    }
}

struct LimitData {
    limit: u64,
    passed: u64,
}

impl Toxic for LimitData {
    fn on_piece(&mut self, mut piece: Piece, out: &mut Vec<Piece>) -> Option<Cut> {
        let room = self.limit.saturating_sub(self.passed);
        if (piece.data.len() as u64) > room {
            piece.data.truncate(room as usize);
        }
        self.passed += piece.data.len() as u64;
        if !piece.data.is_empty() {
            out.push(piece);
        }
        (self.passed >= self.limit).then_some(Cut::Close)
    }

    fn progress(&self) -> u64 {
        self.passed
    }

    fn resume(&mut self, progress: u64) {
        self.passed = progress;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::time::Instant;

    /// "abc" then "defgh" under a limit of 5 gives "abcde" and a close.
    #[test]
    fn truncates_then_closes() {
        let mut t = toxic("limit_data", &[("bytes", int(5))]);
        let now = Instant::now();
        let (a, cut) = feed(t.as_mut(), b"abc", now);
        assert_eq!(&a[0].data[..], b"abc");
        assert!(cut.is_none());
        let (b, cut) = feed(t.as_mut(), b"defgh", now);
        assert_eq!(&b[0].data[..], b"de");
        assert_eq!(cut, Some(Cut::Close));
    }

    /// Limit 0 passes nothing and closes on the first data.
    #[test]
    fn zero_closes_on_first_data() {
        let mut t = toxic("limit_data", &[]);
        let (out, cut) = feed(t.as_mut(), b"x", Instant::now());
        assert!(out.is_empty());
        assert_eq!(cut, Some(Cut::Close));
    }

    /// A replacement instance resumes the count of the one it replaces.
    #[test]
    fn progress_carries_over() {
        let mut t = toxic("limit_data", &[("bytes", int(100))]);
        feed(t.as_mut(), &[0; 90], Instant::now());
        let mut raised = toxic("limit_data", &[("bytes", int(100))]);
        raised.resume(t.progress());
        let (out, cut) = feed(raised.as_mut(), &[0; 20], Instant::now());
        assert_eq!(out[0].data.len(), 10);
        assert_eq!(cut, Some(Cut::Close));
    }
}
