//! Which efs a kernel is timed at: the sweep policy. Pure: it sees only
//! (ef, recall) pairs, so it is tested on synthetic curves.
//!
//! The reward is decided by the points whose recall lies in the band
//! [lo, hi] and by the first point past it (the staircase credits a recall
//! only with QPS measured at that recall or above, so points below the band
//! never count). The band sweep therefore spends its timed passes there:
//!
//! 1. **Climb**: one untimed probe pass at ef = 1, 2, 4, 8, … until recall
//!    reaches hi. A probe is a real pass (its answers validated, its recall
//!    kept), so it also serves as the warm-up of that ef.
//! 2. **Fill**: between the last ef below lo and the first ef at or past hi,
//!    [`FILL_POINTS`] efs spaced geometrically, then the widest recall gaps
//!    that overlap the band split at their geometric middle until no gap is
//!    wider than [`MAX_RECALL_GAP`] or the probe budget is spent.
//! 3. **Time** the efs whose recall is in [lo, hi) and the first one at or
//!    past hi. The margin past the band is that one point: a higher ef is
//!    credited only where it is faster than a lower one, which for a search
//!    that does more work at higher ef it is not; timing it would add
//!    seconds, and let noise, not speed, raise the reward.
//!
//! The climb gives up early, reward 0, when recall has stopped rising below
//! the band (three doublings past k without gaining [`PLATEAU_GAIN`]) or ef
//! passes [`MAX_EF`]; the reason is kept for the evaluation's message.

use std::collections::BTreeMap;

/// The climb's ceiling (CRINN's sweep ends at 700).
pub const MAX_EF: usize = 1024;
/// Efs probed between the band's brackets before refining.
pub const FILL_POINTS: usize = 6;
/// Refine until adjacent probed points overlapping the band differ by no
/// more recall than this.
pub const MAX_RECALL_GAP: f64 = 0.02;
/// Probes per kernel at most (climb, fill and refinement together).
pub const MAX_PROBES: usize = 28;
/// Less recall gained over three doublings than this is a plateau.
pub const PLATEAU_GAIN: f64 = 0.005;

/// How a kernel's efs are chosen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// Find the band for each kernel and time the efs that decide the
    /// reward (the default).
    Band,
    /// Exactly these efs, every one timed (`--ef LIST`, or `--sweep full`).
    Efs(Vec<usize>),
}

/// CRINN's full sweep, 30 values from 1 to 700, for figures comparable with
/// published curves (and QPS at recall 0.99).
pub const FULL_EFS: &[usize] = &[
    1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256,
    320, 384, 448, 512, 600, 700,
];

/// The probing state of one kernel's sweep.
#[derive(Clone, Debug)]
pub struct Planner {
    sweep: Sweep,
    lo: f64,
    hi: f64,
    k: usize,
    /// Recall of every ef probed so far.
    probed: BTreeMap<usize, f64>,
    /// The climb's efs, in order.
    climbed: Vec<usize>,
    /// Why the climb gave up, if it did.
    gave_up: Option<String>,
    climbing: bool,
    /// The fill efs not probed yet.
    fill: Vec<usize>,
    filled: bool,
}

impl Planner {
    pub fn new(sweep: &Sweep, band: (f64, f64), k: usize) -> Planner {
        Planner {
            sweep: sweep.clone(),
            lo: band.0,
            hi: band.1,
            k: k.max(1),
            probed: BTreeMap::new(),
            climbed: Vec::new(),
            gave_up: None,
            climbing: true,
            fill: Vec::new(),
            filled: false,
        }
    }

    /// Records the recall a probe of `ef` measured.
    pub fn record(&mut self, ef: usize, recall: f64) {
        self.probed.insert(ef, recall);
    }

    /// The next ef to probe, or `None` when probing is over.
    pub fn next_probe(&mut self) -> Option<usize> {
        if let Sweep::Efs(efs) = &self.sweep {
            return efs.iter().copied().find(|ef| !self.probed.contains_key(ef));
        }
        if self.probed.len() >= MAX_PROBES {
            return None;
        }
        if self.climbing {
            match self.climb_step() {
                Some(ef) => return Some(ef),
                None => self.climbing = false,
            }
        }
        if self.gave_up.is_some() {
            return None;
        }
        if !self.filled {
            self.fill = self.fill_points();
            self.filled = true;
        }
        while let Some(ef) = self.fill.pop() {
            if !self.probed.contains_key(&ef) {
                return Some(ef);
            }
        }
        self.refine_point()
    }

    /// The next climbing ef, or `None` once the climb is over.
    fn climb_step(&mut self) -> Option<usize> {
        let Some(&last) = self.climbed.last() else {
            self.climbed.push(1);
            return Some(1);
        };
        let recall = self.probed[&last];
        if recall >= self.hi {
            return None;
        }
        // Three doublings at or past k that gained (almost) nothing, below
        // the band: the curve is flat and will not reach it.
        let past_k: Vec<usize> = self
            .climbed
            .iter()
            .copied()
            .filter(|&ef| ef >= self.k)
            .collect();
        if recall < self.lo && past_k.len() >= 4 {
            let from = past_k[past_k.len() - 4];
            let gain = recall - self.probed[&from];
            if gain < PLATEAU_GAIN {
                self.gave_up = Some(format!(
                    "recall stopped rising below the band: {:.4} at ef {from}, {recall:.4} at ef {last}",
                    self.probed[&from]
                ));
                return None;
            }
        }
        let next = last * 2;
        if next > MAX_EF {
            if self.probed.values().all(|&r| r < self.lo) {
                self.gave_up = Some(format!(
                    "recall reached only {recall:.4} at ef {last} (the sweep climbs to ef {MAX_EF})"
                ));
            }
            return None;
        }
        self.climbed.push(next);
        Some(next)
    }

    /// Efs spaced geometrically between the last ef below the band and the
    /// first at or past its top (smallest last, as `next_probe` pops).
    fn fill_points(&self) -> Vec<usize> {
        let top = self
            .first_at_or_past_top()
            .unwrap_or_else(|| self.max_probed());
        let below = self
            .probed
            .iter()
            .filter(|&(&ef, &r)| ef < top && r < self.lo)
            .map(|(&ef, _)| ef)
            .max();
        let Some(below) = below else {
            return Vec::new();
        };
        let ratio = (top as f64 / below as f64).powf(1.0 / (FILL_POINTS + 1) as f64);
        let mut efs: Vec<usize> = (1..=FILL_POINTS)
            .map(|i| (below as f64 * ratio.powi(i as i32)).round() as usize)
            .filter(|&ef| ef > below && ef < top)
            .collect();
        efs.dedup();
        efs.reverse();
        efs
    }

    /// The geometric middle of the widest recall gap overlapping the band,
    /// while any is wider than [`MAX_RECALL_GAP`].
    fn refine_point(&self) -> Option<usize> {
        let top = self
            .first_at_or_past_top()
            .unwrap_or_else(|| self.max_probed());
        let points: Vec<(usize, f64)> = self
            .probed
            .iter()
            .map(|(&ef, &r)| (ef, r))
            .filter(|&(ef, _)| ef <= top)
            .collect();
        points
            .windows(2)
            .filter(|w| {
                let ((a, ra), (b, rb)) = (w[0], w[1]);
                b > a + 1 && rb - ra > MAX_RECALL_GAP && ra < self.hi && rb >= self.lo
            })
            .max_by(|x, y| (x[1].1 - x[0].1).total_cmp(&(y[1].1 - y[0].1)))
            .map(|w| {
                let (a, b) = (w[0].0, w[1].0);
                ((a as f64 * b as f64).sqrt().round() as usize).clamp(a + 1, b - 1)
            })
    }

    fn first_at_or_past_top(&self) -> Option<usize> {
        self.probed
            .iter()
            .find(|&(_, &r)| r >= self.hi)
            .map(|(&ef, _)| ef)
    }

    fn max_probed(&self) -> usize {
        self.probed.keys().copied().max().unwrap_or(1)
    }

    /// The efs to time, ascending: every listed ef for an explicit sweep;
    /// for the band sweep, those with recall in [lo, hi) and the first at
    /// or past hi.
    pub fn timed_efs(&self) -> Vec<usize> {
        match &self.sweep {
            Sweep::Efs(efs) => {
                let mut efs = efs.clone();
                efs.sort_unstable();
                efs.dedup();
                efs
            }
            Sweep::Band => {
                let top = self.first_at_or_past_top();
                self.probed
                    .iter()
                    .filter(|&(&ef, &r)| (r >= self.lo && r < self.hi) || Some(ef) == top)
                    .map(|(&ef, _)| ef)
                    .collect()
            }
        }
    }

    /// Why the band sweep timed nothing, when it did not.
    pub fn never_reached(&self) -> Option<String> {
        if self.sweep != Sweep::Band || !self.timed_efs().is_empty() {
            return None;
        }
        let why = self.gave_up.clone().unwrap_or_else(|| {
            let best = self.probed.values().copied().fold(0.0, f64::max);
            format!("recall reached only {best:.4}")
        });
        Some(format!(
            "the curve never reaches the recall band's bottom {}: {why}; reward 0",
            self.lo
        ))
    }

    /// Every probed (ef, recall), ascending in ef.
    pub fn probed(&self) -> Vec<(usize, f64)> {
        self.probed.iter().map(|(&ef, &r)| (ef, r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAND: (f64, f64) = (0.85, 0.95);

    impl Planner {
        fn recall(&self, ef: usize) -> Option<f64> {
            self.probed.get(&ef).copied()
        }
    }

    /// Runs the planner against a recall function.
    fn plan(sweep: &Sweep, recall: impl Fn(usize) -> f64) -> Planner {
        let mut p = Planner::new(sweep, BAND, 10);
        while let Some(ef) = p.next_probe() {
            assert!(!p.probed.contains_key(&ef), "ef {ef} probed twice");
            p.record(ef, recall(ef));
        }
        p
    }

    /// A graph search's curve: flat up to k, then rising like 1 - c/ef.
    fn graph(scale: f64) -> impl Fn(usize) -> f64 {
        move |ef| 1.0 - scale / ef.max(10) as f64
    }

    #[test]
    fn a_steep_curve_gets_several_timed_points_in_the_band_and_one_past_it() {
        let p = plan(&Sweep::Band, graph(3.0));
        let timed = p.timed_efs();
        let recalls: Vec<f64> = timed.iter().map(|&ef| p.recall(ef).unwrap()).collect();
        let inside = recalls
            .iter()
            .filter(|&&r| (0.85..0.95).contains(&r))
            .count();
        assert!(inside >= 4, "{timed:?} {recalls:?}");
        // Exactly one timed point past the band, and it is the first.
        let past: Vec<usize> = timed
            .iter()
            .copied()
            .filter(|&ef| p.recall(ef).unwrap() >= 0.95)
            .collect();
        assert_eq!(past.len(), 1, "{timed:?}");
        assert!(p.probed().iter().all(|&(ef, r)| r < 0.95 || ef >= past[0]));
        // No probed gap overlapping the band is wider than allowed, unless
        // the efs are adjacent.
        let pts: Vec<(usize, f64)> = p
            .probed()
            .into_iter()
            .filter(|&(ef, _)| ef <= past[0])
            .collect();
        for w in pts.windows(2) {
            if w[1].1 >= 0.85 && w[0].1 < 0.95 && w[1].0 > w[0].0 + 1 {
                assert!(w[1].1 - w[0].1 <= MAX_RECALL_GAP + 1e-12, "{w:?}");
            }
        }
        assert!(p.probed().len() <= MAX_PROBES);
        assert_eq!(p.never_reached(), None);
    }

    #[test]
    fn a_slow_climb_is_followed_far_but_not_forever() {
        // Recall 0.95 only at ef = 600.
        let p = plan(&Sweep::Band, graph(30.0));
        let timed = p.timed_efs();
        assert!(timed.len() >= 3, "{timed:?}");
        assert!(timed.iter().all(|&ef| ef <= MAX_EF));
        assert!(p.recall(*timed.last().unwrap()).unwrap() >= 0.95);
    }

    #[test]
    fn a_curve_already_past_the_band_times_only_its_cheapest_point() {
        let p = plan(&Sweep::Band, |_| 0.99);
        assert_eq!(p.timed_efs(), vec![1]);
        assert_eq!(p.probed(), vec![(1, 0.99)]);
    }

    #[test]
    fn a_flat_curve_below_the_band_stops_early() {
        let p = plan(&Sweep::Band, |_| 0.4);
        assert!(p.timed_efs().is_empty());
        // ef 1, 2, 4, 8 (below k) and then three doublings past k.
        assert_eq!(p.probed().last().unwrap().0, 128);
        let why = p.never_reached().unwrap();
        assert!(
            why.contains("never reaches the recall band's bottom 0.85"),
            "{why}"
        );
        assert!(why.contains("stopped rising"), "{why}");
    }

    #[test]
    fn a_curve_that_rises_but_never_arrives_stops_at_the_ceiling() {
        let p = plan(&Sweep::Band, |ef| 0.5 + 0.3 * (ef as f64).log2() / 10.0);
        assert!(p.timed_efs().is_empty());
        assert_eq!(p.probed().last().unwrap().0, MAX_EF);
        let why = p.never_reached().unwrap();
        assert!(why.contains("climbs to ef 1024"), "{why}");
    }

    #[test]
    fn a_curve_that_enters_the_band_but_never_leaves_it_times_its_band_points() {
        let p = plan(&Sweep::Band, |ef| (0.8 + ef as f64 / 10_000.0).min(0.9));
        let timed = p.timed_efs();
        assert!(!timed.is_empty());
        assert!(timed.iter().all(|&ef| p.recall(ef).unwrap() >= 0.85));
        assert_eq!(p.never_reached(), None);
    }

    #[test]
    fn a_listed_sweep_is_honoured_exactly() {
        let listed = Sweep::Efs(vec![40, 10, 700, 10]);
        let p = plan(&listed, graph(3.0));
        assert_eq!(p.timed_efs(), vec![10, 40, 700]);
        assert_eq!(
            p.probed().iter().map(|&(ef, _)| ef).collect::<Vec<_>>(),
            vec![10, 40, 700]
        );
        // Even a curve that never reaches the band is measured as asked.
        let p = plan(&listed, |_| 0.1);
        assert_eq!(p.timed_efs(), vec![10, 40, 700]);
        assert_eq!(p.never_reached(), None);
    }

    #[test]
    fn a_non_monotone_curve_times_every_band_point_and_the_first_past_it() {
        // Recall jumps around: in band from 8, past it at 16, back in at 32.
        let curve = |ef: usize| match ef {
            0..8 => 0.5,
            8..16 => 0.9,
            16..32 => 0.96,
            32 => 0.88,
            _ => 0.97,
        };
        let p = plan(&Sweep::Band, curve);
        let timed = p.timed_efs();
        assert!(timed.contains(&8) && timed.contains(&16), "{timed:?}");
        for &ef in &timed {
            assert!(p.recall(ef).unwrap() >= 0.85);
        }
    }
}
