//! The CI gate: is a proposed kernel shown to be faster than the current one?
//!
//! Both kernels are measured in one run with their passes interleaved; the
//! decision reads the ratio candidate / baseline of their rewards with a
//! confidence interval ([`crate::stats::ratio_interval`] over the paired
//! replicate curves). The gate passes when the interval's lower end is above
//! the required speed-up (strictly: an identical kernel, whose fuel ratio is
//! exactly 1, is not shown faster than 1) and the candidate's best recall is
//! not below the baseline's by more than a tolerance. With the `fuel` metric the
//! rewards are counted in instructions, so the ratio is exact and the
//! decision the same on every run and machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::evaluation::Evaluation;
use crate::measure::sweep::Sweep;
use crate::stats::{self, RatioInterval};
use crate::verdict::Verdict;

/// What the gate compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMetric {
    /// Measured queries per second (the reward).
    Time,
    /// Queries per million WebAssembly instructions (the fuel reward).
    Fuel,
}

impl FromStr for GateMetric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "time" => Ok(GateMetric::Time),
            "fuel" => Ok(GateMetric::Fuel),
            other => Err(format!("{other:?} is not a gate metric (time or fuel)")),
        }
    }
}

impl fmt::Display for GateMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateMetric::Time => "time",
            GateMetric::Fuel => "fuel",
        })
    }
}

#[derive(Clone, Debug)]
pub struct GateOptions {
    /// The lower end of the interval must reach this ratio.
    pub min_speedup: f64,
    /// Two-sided confidence of the interval.
    pub confidence: f64,
    pub metric: GateMetric,
    /// How far the candidate's best recall may fall below the baseline's.
    pub recall_tolerance: f64,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            min_speedup: 1.0,
            confidence: 0.95,
            metric: GateMetric::Time,
            recall_tolerance: 0.002,
        }
    }
}

/// The gate's decision and everything it rests on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateReport {
    pub passed: bool,
    /// One line: PASS or FAIL and why.
    pub summary: String,
    /// Every reason the gate failed (empty when it passed).
    pub reasons: Vec<String>,
    pub metric: GateMetric,
    pub min_speedup: f64,
    pub recall_tolerance: f64,
    /// candidate / baseline, when both rewards are positive.
    pub ratio: Option<RatioInterval>,
    pub baseline: Evaluation,
    pub candidate: Evaluation,
}

/// Decides. An `Err` means the comparison itself is impossible (the baseline
/// failed or never reaches the band): not the candidate's fault.
pub fn decide(
    baseline: Evaluation,
    candidate: Evaluation,
    opts: &GateOptions,
) -> Result<GateReport, String> {
    if baseline.verdict != Verdict::Ok {
        return Err(format!(
            "the baseline itself did not score ({}): {}",
            baseline.verdict, baseline.message
        ));
    }
    let baseline_reward = reward(&baseline, opts.metric);
    if baseline_reward <= 0.0 {
        return Err(format!(
            "the baseline's {} reward is 0 (its curve never reaches the recall band [{}, {}]): nothing to compare with",
            opts.metric, baseline.band[0], baseline.band[1]
        ));
    }
    let mut reasons = Vec::new();
    let mut ratio = None;
    if candidate.verdict != Verdict::Ok {
        reasons.push(format!(
            "the candidate's verdict is {}: {}",
            candidate.verdict,
            first_line(&candidate.message)
        ));
    } else {
        ratio = match opts.metric {
            GateMetric::Time => stats::ratio_interval(
                &baseline.replicate_rewards,
                &candidate.replicate_rewards,
                opts.confidence,
            ),
            GateMetric::Fuel => {
                let r = reward(&candidate, GateMetric::Fuel) / baseline_reward;
                (r > 0.0).then_some(RatioInterval {
                    estimate: r,
                    low: r,
                    high: r,
                    confidence: opts.confidence,
                    pairs: 1,
                })
            }
        };
        match ratio {
            None => reasons.push(format!(
                "the candidate's curve never reaches the recall band [{}, {}]",
                candidate.band[0], candidate.band[1]
            )),
            Some(r) if r.low <= opts.min_speedup => reasons.push(format!(
                "not shown to be above {:.2}× the baseline: the {:.0}% interval of the ratio is {:.3}–{:.3}",
                opts.min_speedup,
                r.confidence * 100.0,
                r.low,
                r.high
            )),
            Some(_) => {}
        }
        // The band sweep stops each kernel at its first ef past the band's
        // top, so beyond that top its best recall says where its probes
        // happened to land, not what it can reach: compare up to the top.
        let cap = match baseline.sweep {
            Sweep::Band => baseline.band[1],
            Sweep::Efs(_) => 1.0,
        };
        let (b, c) = (
            baseline.max_recall.unwrap_or(0.0).min(cap),
            candidate.max_recall.unwrap_or(0.0).min(cap),
        );
        if c < b - opts.recall_tolerance {
            reasons.push(format!(
                "best recall {c:.4} is below the baseline's {b:.4} by more than {}",
                opts.recall_tolerance
            ));
        }
    }
    let passed = reasons.is_empty();
    let summary = match (passed, ratio) {
        (true, Some(r)) => format!(
            "PASS: the candidate is {:.3}× the baseline ({}; {:.0}% interval {:.3}–{:.3}, above {:.2} required)",
            r.estimate,
            opts.metric,
            r.confidence * 100.0,
            r.low,
            r.high,
            opts.min_speedup
        ),
        _ => format!("FAIL: {}", reasons.join("; ")),
    };
    Ok(GateReport {
        passed,
        summary,
        reasons,
        metric: opts.metric,
        min_speedup: opts.min_speedup,
        recall_tolerance: opts.recall_tolerance,
        ratio,
        baseline,
        candidate,
    })
}

fn reward(eval: &Evaluation, metric: GateMetric) -> f64 {
    match metric {
        GateMetric::Time => eval.reward,
        GateMetric::Fuel => eval.fuel_reward.unwrap_or(0.0),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{CandidateInfo, Context};

    fn eval(replicates: &[f64], max_recall: f64, fuel_reward: f64) -> Evaluation {
        let ctx = Context {
            band: (0.85, 0.95),
            k: 10,
            sweep: Sweep::Efs(vec![10, 20]),
            runs: replicates.len(),
            engine: "wasm",
            dataset: "d".into(),
            dataset_info: None,
            params: vec![],
        };
        let mut e = Evaluation::scored(
            &ctx,
            CandidateInfo::default(),
            100,
            &crate::measure::Measured::default(),
        );
        e.replicate_rewards = replicates.to_vec();
        e.reward = replicates.iter().copied().fold(0.0, f64::max);
        e.max_recall = Some(max_recall);
        e.fuel_reward = Some(fuel_reward);
        e
    }

    /// `e` with its best recall just past the band's top.
    fn sloppy_band(e: &Evaluation) -> Evaluation {
        Evaluation {
            max_recall: Some(0.951),
            ..e.clone()
        }
    }

    #[test]
    fn passes_only_when_shown_faster_with_recall_kept() {
        let opts = GateOptions::default();
        let base = eval(&[100.0, 102.0, 98.0, 101.0], 0.99, 10.0);
        let faster = eval(&[120.0, 123.0, 117.0, 121.0], 0.99, 12.0);
        let report = decide(base.clone(), faster.clone(), &opts).unwrap();
        assert!(report.passed, "{}", report.summary);
        assert!(
            report.summary.starts_with("PASS: the candidate is 1.19"),
            "{}",
            report.summary
        );

        // The same speed is not shown faster.
        let same = decide(base.clone(), base.clone(), &opts).unwrap();
        assert!(!same.passed);
        assert!(
            same.reasons[0].contains("not shown to be above 1.00×"),
            "{:?}",
            same.reasons
        );

        // Faster but losing recall fails.
        let sloppy = eval(&[200.0, 201.0, 199.0, 200.0], 0.95, 20.0);
        let r = decide(base.clone(), sloppy, &opts).unwrap();
        assert!(
            !r.passed && r.reasons[0].contains("best recall 0.9500"),
            "{:?}",
            r.reasons
        );

        // With the band sweep, best recalls count only up to the band's top:
        // both kernels reached it, wherever their last probe landed.
        let mut band_base = base.clone();
        band_base.sweep = Sweep::Band;
        let mut band_fast = sloppy_band(&faster);
        band_fast.sweep = Sweep::Band;
        let r = decide(band_base, band_fast, &opts).unwrap();
        assert!(r.passed, "{:?}", r.reasons);

        // A candidate that failed fails the gate; a failed baseline is an error.
        let mut broken = faster.clone();
        broken.verdict = Verdict::Trap;
        broken.message = "panicked at src/kernel.rs:1:1:\nboom".into();
        let r = decide(base.clone(), broken.clone(), &opts).unwrap();
        assert!(
            !r.passed && r.reasons[0].contains("verdict is trap"),
            "{:?}",
            r.reasons
        );
        assert!(
            decide(broken, faster.clone(), &opts)
                .unwrap_err()
                .contains("baseline itself")
        );

        // Fuel is exact: 12 / 10 = 1.2, passing a 1.15 bar and failing 1.25.
        let fuel = GateOptions {
            metric: GateMetric::Fuel,
            min_speedup: 1.15,
            ..GateOptions::default()
        };
        let r = decide(base.clone(), faster.clone(), &fuel).unwrap();
        assert!(r.passed && (r.ratio.unwrap().low - 1.2).abs() < 1e-12);
        let r = decide(
            base.clone(),
            faster,
            &GateOptions {
                min_speedup: 1.25,
                ..fuel.clone()
            },
        )
        .unwrap();
        assert!(!r.passed);
        // An identical kernel's exact fuel ratio of 1 is not shown faster.
        let same = decide(
            base.clone(),
            base,
            &GateOptions {
                min_speedup: 1.0,
                ..fuel
            },
        )
        .unwrap();
        assert!(!same.passed, "{}", same.summary);
    }

    #[test]
    fn a_baseline_that_never_reaches_the_band_cannot_be_compared() {
        let base = eval(&[0.0, 0.0], 0.5, 0.0);
        let err = decide(
            base,
            eval(&[10.0, 10.0], 0.99, 1.0),
            &GateOptions::default(),
        )
        .unwrap_err();
        assert!(err.contains("never reaches the recall band"), "{err}");
    }
}
