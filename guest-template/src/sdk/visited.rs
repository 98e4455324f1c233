//! An epoch-stamped visited set: clearing it between searches is one
//! increment, not a pass over every point.

/// Which points a search has already looked at.
pub struct VisitedSet {
    stamps: Vec<u16>,
    epoch: u16,
}

impl VisitedSet {
    pub fn new(points: usize) -> Self {
        VisitedSet {
            stamps: vec![0; points],
            epoch: 1,
        }
    }

    /// Forgets every point (O(1) except once every 65,535 calls).
    #[inline]
    pub fn clear(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamps.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id` visited; returns true when it was not visited before.
    #[inline(always)]
    pub fn insert(&mut self, id: u32) -> bool {
        let slot = &mut self.stamps[id as usize];
        let fresh = *slot != self.epoch;
        *slot = self.epoch;
        fresh
    }

    #[inline(always)]
    pub fn contains(&self, id: u32) -> bool {
        self.stamps[id as usize] == self.epoch
    }

    /// Address of `id`'s stamp, for prefetching ahead of `insert`.
    #[inline(always)]
    pub fn slot_ptr(&self, id: u32) -> *const u16 {
        self.stamps.as_ptr().wrapping_add(id as usize)
    }

    pub fn capacity(&self) -> usize {
        self.stamps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_forgets_even_across_epoch_wrap() {
        let mut v = VisitedSet::new(4);
        for round in 0..70_000u32 {
            let id = round % 4;
            assert!(v.insert(id), "round {round}");
            assert!(!v.insert(id));
            assert!(v.contains(id));
            v.clear();
            assert!(!v.contains(id));
        }
    }
}
