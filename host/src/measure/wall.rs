//! Where an evaluation's wall time goes: each kernel's phases, added up as
//! they run, so that the time spent outside the timed calls (the calls the
//! reward is computed from) is a figure, not a guess.

use serde::{Deserialize, Serialize};

/// Seconds one kernel spent in each phase of its evaluation. The run's wall
/// time ([`crate::evaluation::Evaluation::seconds`]) less every kernel's
/// phases is what the run spent on nothing any kernel asked for (dataset
/// preparation, the measuring thread, progress): see [`WallTime::other`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WallTime {
    /// Compiling the source to a component or binary, or finding it in the
    /// cache.
    pub compile: f64,
    /// Validating the component and compiling it to machine code for the
    /// sandbox's engines (wasm), or checking the binary (native).
    pub load: f64,
    /// Building the index: a fresh instance and the `build` call.
    pub build: f64,
    /// Restoring a searcher from the saved index before every call (probe,
    /// timed and fuel alike): a fresh instance, and the index handed to it.
    pub restores: f64,
    /// The probes' search calls, untimed for the reward (they choose the
    /// efs and size the passes).
    pub probes: f64,
    /// The timed search calls, which the reward is computed from.
    pub timed: f64,
    /// The search calls on the fuel-metering engine.
    pub fuel: f64,
    /// Around every call: checking and scoring its answers, the thread a
    /// timed call runs on.
    pub checks: f64,
}

/// Which part of the sweep a call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Probe,
    Timed,
    Fuel,
}

impl WallTime {
    /// Adds one call: `spent` seconds in all, of which `restore` restoring
    /// and `search` in the search call itself.
    pub fn add_call(&mut self, kind: CallKind, spent: f64, restore: f64, search: f64) {
        self.restores += restore;
        match kind {
            CallKind::Probe => self.probes += search,
            CallKind::Timed => self.timed += search,
            CallKind::Fuel => self.fuel += search,
        }
        self.checks += (spent - restore - search).max(0.0);
    }

    /// Adds a failed call's `spent` seconds, all to its phase: where in
    /// the call it failed (restore, search or check) is not known.
    pub fn add_failed(&mut self, kind: CallKind, spent: f64) {
        self.add_call(kind, spent, 0.0, spent);
    }

    /// Every phase, named, in the order a kernel goes through them.
    pub fn phases(&self) -> [(&'static str, f64); 8] {
        [
            ("compile", self.compile),
            ("load", self.load),
            ("build", self.build),
            ("restores", self.restores),
            ("probes", self.probes),
            ("timed calls", self.timed),
            ("fuel", self.fuel),
            ("checks", self.checks),
        ]
    }

    /// The sum of the phases.
    pub fn sum(&self) -> f64 {
        self.phases().iter().map(|(_, s)| s).sum()
    }

    /// What a run of `run_seconds` spent outside every kernel's phases.
    pub fn other(run_seconds: f64, kernels: &[WallTime]) -> f64 {
        (run_seconds - kernels.iter().map(WallTime::sum).sum::<f64>()).max(0.0)
    }
}

impl std::ops::Add for WallTime {
    type Output = WallTime;

    /// Phase by phase: the phases of several kernels, or of one kernel's
    /// stages.
    fn add(self, o: WallTime) -> WallTime {
        WallTime {
            compile: self.compile + o.compile,
            load: self.load + o.load,
            build: self.build + o.build,
            restores: self.restores + o.restores,
            probes: self.probes + o.probes,
            timed: self.timed + o.timed,
            fuel: self.fuel + o.fuel,
            checks: self.checks + o.checks,
        }
    }
}

impl std::iter::Sum for WallTime {
    fn sum<I: Iterator<Item = WallTime>>(walls: I) -> WallTime {
        walls.fold(WallTime::default(), |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_split_into_restore_search_and_the_rest() {
        let mut w = WallTime::default();
        w.add_call(CallKind::Probe, 0.5, 0.1, 0.3);
        w.add_call(CallKind::Timed, 0.25, 0.05, 0.2);
        w.add_call(CallKind::Fuel, 1.0, 0.1, 0.85);
        w.add_failed(CallKind::Timed, 2.0);
        assert!((w.restores - 0.25).abs() < 1e-12);
        assert_eq!((w.probes, w.timed, w.fuel), (0.3, 2.2, 0.85));
        assert!((w.checks - 0.15).abs() < 1e-12, "{}", w.checks);
        assert!((w.sum() - 3.75).abs() < 1e-12);
        assert!((WallTime::other(5.0, &[w, w]) - 0.0).abs() < 1e-12);
        assert!((WallTime::other(8.0, &[w]) - 4.25).abs() < 1e-12);
    }

    #[test]
    fn walls_add_phase_by_phase() {
        let mut a = WallTime {
            compile: 1.0,
            load: 0.5,
            build: 2.0,
            ..WallTime::default()
        };
        a.add_call(CallKind::Fuel, 0.4, 0.1, 0.25);
        let mut b = WallTime::default();
        b.add_call(CallKind::Probe, 1.0, 0.25, 0.5);
        let total: WallTime = [a, b].into_iter().sum();
        let want = [1.0, 0.5, 2.0, 0.35, 0.5, 0.0, 0.25, 0.3];
        for ((name, got), want) in total.phases().into_iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{name}: {got} against {want}");
        }
        assert!((total.sum() - a.sum() - b.sum()).abs() < 1e-12);
    }
}
