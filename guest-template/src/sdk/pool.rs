//! A sorted, fixed-capacity candidate pool for best-first graph search.
//!
//! One array serves as both the candidate queue and the result set (as in
//! GLASS's linear pool): entries stay sorted by distance, a cursor points at
//! the nearest entry not yet expanded, and anything pushed past the capacity
//! falls off the end. For the pool sizes ANN search uses (tens to hundreds),
//! a binary search and a short memmove beat a pair of binary heaps.

/// A point and its distance to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    pub id: u32,
    pub dist: f32,
}

/// Set in `Neighbor::id` inside the pool once the entry has been expanded.
const EXPANDED: u32 = 1 << 31;

/// The best `capacity` points seen so far, nearest first.
pub struct CandidatePool {
    items: Vec<Neighbor>,
    capacity: usize,
    cursor: usize,
}

impl CandidatePool {
    pub fn new(capacity: usize) -> Self {
        let mut pool = CandidatePool {
            items: Vec::new(),
            capacity: 0,
            cursor: 0,
        };
        pool.reset(capacity);
        pool
    }

    /// Empties the pool and sets a new capacity (at least 1).
    pub fn reset(&mut self, capacity: usize) {
        self.items.clear();
        self.capacity = capacity.max(1);
        self.items.reserve(self.capacity + 1);
        self.cursor = 0;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.items.len() == self.capacity
    }

    /// The distance a new point must beat to enter a full pool.
    #[inline(always)]
    pub fn bound(&self) -> f32 {
        if self.is_full() {
            self.items[self.items.len() - 1].dist
        } else {
            f32::INFINITY
        }
    }

    /// Offers a point (ids must be below 2^31); returns whether it entered.
    #[inline]
    pub fn insert(&mut self, id: u32, dist: f32) -> bool {
        debug_assert!(id & EXPANDED == 0, "pool ids must be below 2^31");
        if dist >= self.bound() {
            return false;
        }
        if self.is_full() {
            self.items.pop();
        }
        let pos = self.items.partition_point(|n| n.dist <= dist);
        self.items.insert(pos, Neighbor { id, dist });
        if pos < self.cursor {
            self.cursor = pos;
        }
        true
    }

    /// Whether an entry remains that has not been expanded.
    #[inline(always)]
    pub fn has_next(&self) -> bool {
        self.cursor < self.items.len()
    }

    /// The nearest entry not yet expanded, marked expanded.
    #[inline]
    pub fn pop_next(&mut self) -> Neighbor {
        let i = self.cursor;
        let n = self.items[i];
        self.items[i].id |= EXPANDED;
        self.cursor += 1;
        while self.cursor < self.items.len() && self.items[self.cursor].id & EXPANDED != 0 {
            self.cursor += 1;
        }
        n
    }

    /// The id of the entry `pop_next` would return, without marking it.
    #[inline(always)]
    pub fn peek_next(&self) -> Option<u32> {
        self.items.get(self.cursor).map(|n| n.id & !EXPANDED)
    }

    /// The entry at rank `i` (0 is the nearest).
    #[inline]
    pub fn get(&self, i: usize) -> Neighbor {
        let n = self.items[i];
        Neighbor {
            id: n.id & !EXPANDED,
            dist: n.dist,
        }
    }

    /// Every entry, nearest first.
    pub fn iter(&self) -> impl Iterator<Item = Neighbor> + '_ {
        (0..self.items.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_sorted_and_expands_nearest_first() {
        let mut pool = CandidatePool::new(3);
        assert!(pool.insert(10, 5.0));
        assert!(pool.insert(11, 1.0));
        assert!(pool.insert(12, 3.0));
        assert!(!pool.insert(13, 9.0), "a full pool refuses a worse point");
        assert_eq!(pool.peek_next(), Some(11));
        assert_eq!(pool.pop_next().id, 11);
        assert_eq!(pool.peek_next(), Some(12));
        assert!(pool.insert(14, 2.0), "a better point displaces the worst");
        let ids: Vec<u32> = pool.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![11, 14, 12]);
        assert_eq!(
            pool.pop_next().id,
            14,
            "the cursor moves back to a new nearer entry"
        );
        assert_eq!(pool.pop_next().id, 12);
        assert!(!pool.has_next());
        assert_eq!(pool.bound(), 3.0);
    }

    #[test]
    fn ties_do_not_reorder_earlier_entries() {
        let mut pool = CandidatePool::new(4);
        pool.insert(1, 1.0);
        pool.insert(2, 1.0);
        pool.insert(3, 1.0);
        let ids: Vec<u32> = pool.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
