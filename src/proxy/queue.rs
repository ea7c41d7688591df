//! The FIFO of pieces a direction holds ([`super::flow`]'s input and output queues).
//!
//! Most of the time a queue holds nothing or one piece: a request read and about to be
//! written, with no toxic or with a latency. So the first piece lives inline, and only a
//! queue holding two or more spills the rest to the heap. An idle connection that has moved
//! a message therefore keeps no queue allocation, where a plain `VecDeque` would keep its
//! capacity (four 64-byte pieces for each of the four queues of a connection).

use crate::toxics::Piece;
use std::collections::VecDeque;

/// A FIFO of pieces whose first piece is stored inline.
#[derive(Debug, Default)]
pub struct Queue {
    /// The front piece; `None` only when the queue is empty.
    head: Option<Piece>,
    /// Every piece after the front one.
    rest: VecDeque<Piece>,
}

impl Queue {
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    pub fn front(&self) -> Option<&Piece> {
        self.head.as_ref()
    }

    pub fn front_mut(&mut self) -> Option<&mut Piece> {
        self.head.as_mut()
    }

    pub fn push_back(&mut self, piece: Piece) {
        match self.head {
            None => self.head = Some(piece),
            Some(_) => self.rest.push_back(piece),
        }
    }

    pub fn push_front(&mut self, piece: Piece) {
        if let Some(old) = self.head.replace(piece) {
            self.rest.push_front(old);
        }
    }

    pub fn pop_front(&mut self) -> Option<Piece> {
        let head = self.head.take()?;
        self.head = self.rest.pop_front();
        Some(head)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Piece> {
        self.head.iter_mut().chain(self.rest.iter_mut())
    }

    pub fn clear(&mut self) {
        self.head = None;
        self.rest.clear();
    }

    /// Pieces the queue can hold without allocating (the inline one included).
    pub fn capacity(&self) -> usize {
        1 + self.rest.capacity()
    }

    /// Gives back spilled capacity beyond room for `spare` pieces after the front one.
    pub fn shrink_to(&mut self, spare: usize) {
        if self.rest.capacity() > spare {
            self.rest.shrink_to(spare);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn piece(byte: u8) -> Piece {
        Piece::new(vec![byte], Instant::now())
    }

    fn drain(queue: &mut Queue) -> Vec<u8> {
        std::iter::from_fn(|| queue.pop_front())
            .map(|p| p.data[0])
            .collect()
    }

    /// Pieces come out in the order they went in, across the inline slot and the spill.
    #[test]
    fn keeps_order_across_the_inline_slot() {
        let mut queue = Queue::default();
        for b in 1..=5 {
            queue.push_back(piece(b));
        }
        assert_eq!(queue.len(), 5);
        assert_eq!(queue.pop_front().unwrap().data[0], 1);
        queue.push_back(piece(6));
        queue.push_front(piece(0));
        assert_eq!(drain(&mut queue), vec![0, 2, 3, 4, 5, 6]);
        assert!(queue.is_empty());
        assert!(queue.front().is_none());
    }

    /// One piece at a time, the case of every request/response exchange, never allocates.
    #[test]
    fn one_piece_at_a_time_stays_inline() {
        let mut queue = Queue::default();
        for b in 0..100 {
            queue.push_back(piece(b));
            assert_eq!(queue.front().unwrap().data[0], b);
            queue.pop_front();
        }
        assert_eq!(queue.capacity(), 1);
    }

    /// After a spike, shrinking gives the spilled capacity back down to the spare asked for.
    #[test]
    fn shrinks_back_after_a_spike() {
        let mut queue = Queue::default();
        for b in 0..200 {
            queue.push_back(piece(b as u8));
        }
        queue.clear();
        assert!(queue.capacity() > 100);
        queue.shrink_to(8);
        assert!(queue.capacity() <= 1 + 8, "{}", queue.capacity());
        assert_eq!(queue.iter_mut().count(), 0);
    }
}
