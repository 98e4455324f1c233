//! The result of one evaluation: the object `anneval score --json` writes and
//! every exporter reads. Field names are a contract with users and tools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetInfo;
use crate::measure::sweep::Sweep;
use crate::measure::wall::WallTime;
use crate::measure::{self, Measured};
use crate::metrics::{self, Point};
use crate::stats;
use crate::verdict::{Failure, Verdict};

/// Recalls at which `qps_at_recall` is reported.
pub const REPORTED_RECALLS: [f64; 3] = [0.9, 0.95, 0.99];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// Empty for `ok`; otherwise what went wrong and what to do.
    pub message: String,
    /// The mean over `band` of the QPS credited at each recall: the best QPS
    /// measured at that recall or above (0 unless the verdict is `ok`).
    pub reward: f64,
    /// The reward of each replicate curve (pass r of every ef).
    pub replicate_rewards: Vec<f64>,
    /// Coefficient of variation of the replicate rewards: how much the
    /// reward moved from one replicate to the next.
    pub reward_cv: f64,
    /// The reward computed from instructions instead of time: the mean over
    /// the band of the queries per million WebAssembly instructions credited
    /// at each recall (the best measured at that recall or above). The same
    /// on every run and every machine.
    pub fuel_reward: Option<f64>,
    pub band: [f64; 2],
    pub k: usize,
    /// How the efs were chosen: `"band"` (found per kernel) or
    /// `{"efs": [...]}` (listed).
    pub sweep: Sweep,
    /// Every ef probed (one untimed pass each) and its recall, ascending in
    /// ef: the band sweep's climb and fill, or the listed efs.
    pub probed: Vec<ProbedPoint>,
    /// One point per timed `ef`, ascending.
    pub curve: Vec<CurvePoint>,
    /// The Pareto frontier of the curve, ascending in recall.
    pub frontier: Vec<FrontierPoint>,
    /// The best QPS measured at recall 0.9, 0.95, 0.99 or above (null if
    /// no point reaches it).
    pub qps_at_recall: BTreeMap<String, Option<f64>>,
    pub max_recall: Option<f64>,
    pub build_seconds: Option<f64>,
    /// Median seconds to restore a searcher from the saved index, per pass
    /// (untimed, so it is shown: work moved from `build` into restoring the
    /// index is visible here).
    pub restore_seconds: Option<f64>,
    pub index_bytes: Option<u64>,
    /// The fewest WebAssembly instructions per query measured at recall 0.9
    /// or above (null if never reached or not metered).
    pub fuel_per_query: Option<f64>,
    /// The dataset's name.
    pub dataset: String,
    pub dataset_info: Option<DatasetInfo>,
    /// `"wasm"` (or `"native"`).
    pub engine: String,
    pub candidate: CandidateInfo,
    pub params: BTreeMap<String, String>,
    /// Timed passes per `ef` (plus one warm-up each).
    pub runs: usize,
    /// The guest's diagnostic log (bounded).
    pub log: Vec<String>,
    pub anneval_version: String,
    /// Wall-clock seconds of the whole evaluation (of the run, when several
    /// kernels were measured together).
    pub seconds: f64,
    /// Where this kernel's share of the run's wall time went, by phase.
    #[serde(default)]
    pub wall: WallTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbedPoint {
    pub ef: usize,
    pub recall: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub ef: usize,
    pub recall: f64,
    /// The best pass.
    pub qps: f64,
    /// Queries answered in each timed pass: the batch times the calls (each
    /// on a fresh instance) that make the pass long enough to measure.
    pub queries_timed: usize,
    /// Every timed pass.
    pub qps_passes: Vec<f64>,
    /// (best - worst) / best over the passes.
    pub spread: f64,
    /// How many times this ef was measured again for spreading too much.
    pub retries: usize,
    /// Whether the passes kept still spread more than allowed.
    pub noisy: bool,
    pub fuel_per_query: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    pub ef: usize,
    pub recall: f64,
    pub qps: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateInfo {
    /// A path, or `"reference"`.
    pub source: String,
    /// `"rust"` or `"component"`.
    pub kind: String,
    /// Content digest (the compile cache key for Rust sources).
    pub digest: String,
    pub compile_seconds: Option<f64>,
    pub compile_cached: Option<bool>,
}

/// What an evaluation is about, known before it runs.
#[derive(Clone, Debug)]
pub struct Context {
    pub band: (f64, f64),
    pub k: usize,
    pub sweep: Sweep,
    pub runs: usize,
    pub engine: &'static str,
    pub dataset: String,
    pub dataset_info: Option<DatasetInfo>,
    pub params: Vec<(String, String)>,
}

impl Evaluation {
    fn empty(ctx: &Context, candidate: CandidateInfo) -> Evaluation {
        Evaluation {
            verdict: Verdict::Ok,
            message: String::new(),
            reward: 0.0,
            replicate_rewards: Vec::new(),
            reward_cv: 0.0,
            fuel_reward: None,
            band: [ctx.band.0, ctx.band.1],
            k: ctx.k,
            sweep: ctx.sweep.clone(),
            probed: Vec::new(),
            curve: Vec::new(),
            frontier: Vec::new(),
            qps_at_recall: REPORTED_RECALLS
                .iter()
                .map(|r| (recall_key(*r), None))
                .collect(),
            max_recall: None,
            build_seconds: None,
            restore_seconds: None,
            index_bytes: None,
            fuel_per_query: None,
            dataset: ctx.dataset.clone(),
            dataset_info: ctx.dataset_info.clone(),
            engine: ctx.engine.to_string(),
            candidate,
            params: ctx.params.iter().cloned().collect(),
            runs: ctx.runs,
            log: Vec::new(),
            anneval_version: env!("CARGO_PKG_VERSION").to_string(),
            seconds: 0.0,
            wall: WallTime::default(),
        }
    }

    /// The curve's measured (recall, best QPS) points.
    pub fn points(&self) -> Vec<Point> {
        self.curve
            .iter()
            .map(|c| Point {
                recall: c.recall,
                qps: c.qps,
            })
            .collect()
    }

    /// An evaluation that ended in `failure`; whatever was measured before
    /// the failure is kept for diagnosis, but the reward is 0.
    pub fn failed(ctx: &Context, candidate: CandidateInfo, failure: Failure) -> Evaluation {
        Evaluation {
            verdict: failure.verdict,
            message: failure.message,
            ..Evaluation::empty(ctx, candidate)
        }
    }

    /// A completed evaluation, scored from its measurements.
    pub fn scored(
        ctx: &Context,
        candidate: CandidateInfo,
        queries: usize,
        measured: &Measured,
    ) -> Evaluation {
        let mut eval = Evaluation::empty(ctx, candidate);
        let sweep = &measured.efs;
        eval.probed = measured
            .probed
            .iter()
            .map(|&(ef, recall)| ProbedPoint { ef, recall })
            .collect();
        eval.message = measured.never_reached.clone().unwrap_or_default();
        eval.curve = sweep
            .iter()
            .map(|m| {
                let passes = m.pass_qps(queries);
                CurvePoint {
                    ef: m.ef,
                    recall: m.recall,
                    qps: passes.iter().copied().fold(0.0, f64::max),
                    queries_timed: queries * m.calls_per_pass,
                    spread: measure::spread(&m.pass_seconds),
                    qps_passes: passes,
                    retries: m.retries,
                    noisy: m.noisy,
                    fuel_per_query: m.fuel_per_query,
                }
            })
            .collect();
        let points = eval.points();
        let frontier = metrics::pareto_frontier(&points);
        eval.reward = metrics::band_reward(&points, ctx.band.0, ctx.band.1);
        for r in REPORTED_RECALLS {
            eval.qps_at_recall
                .insert(recall_key(r), metrics::qps_at_recall(&points, r));
        }
        eval.max_recall = eval
            .curve
            .iter()
            .map(|c| c.recall)
            .chain(eval.probed.iter().map(|p| p.recall))
            .reduce(f64::max);
        eval.frontier = frontier
            .iter()
            .map(|p| {
                let ef = eval
                    .curve
                    .iter()
                    .find(|c| c.recall == p.recall && c.qps == p.qps)
                    .map_or(0, |c| c.ef);
                FrontierPoint {
                    ef,
                    recall: p.recall,
                    qps: p.qps,
                }
            })
            .collect();
        let recalls: Vec<f64> = eval.curve.iter().map(|c| c.recall).collect();
        let passes: Vec<Vec<f64>> = eval.curve.iter().map(|c| c.qps_passes.clone()).collect();
        eval.replicate_rewards = stats::replicate_rewards(&recalls, &passes, ctx.band);
        eval.reward_cv = metrics::coefficient_of_variation(&eval.replicate_rewards);
        let fuel = fuel_points(&eval.curve);
        eval.fuel_per_query = metrics::qps_at_recall(&fuel, 0.9).map(|q| PER_FUEL / q);
        eval.fuel_reward =
            (!fuel.is_empty()).then(|| metrics::band_reward(&fuel, ctx.band.0, ctx.band.1));
        let restores: Vec<f64> = sweep
            .iter()
            .flat_map(|m| m.restore_seconds.iter().copied())
            .collect();
        eval.restore_seconds = median(&restores);
        eval
    }
}

/// Fuel figures are expressed as queries per this many instructions.
const PER_FUEL: f64 = 1e6;

/// The curve's (recall, queries per million instructions) points.
fn fuel_points(curve: &[CurvePoint]) -> Vec<Point> {
    curve
        .iter()
        .filter_map(|c| {
            c.fuel_per_query.filter(|f| *f > 0.0).map(|f| Point {
                recall: c.recall,
                qps: PER_FUEL / f,
            })
        })
        .collect()
}

/// The median of `xs` (`None` when empty).
fn median(xs: &[f64]) -> Option<f64> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The key of a recall in `qps_at_recall`: "0.9", "0.95", "0.99".
pub fn recall_key(r: f64) -> String {
    format!("{r}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::EfMeasurement;

    fn ctx() -> Context {
        Context {
            band: (0.85, 0.95),
            k: 10,
            sweep: Sweep::Band,
            runs: 2,
            engine: "wasm",
            dataset: "d".into(),
            dataset_info: None,
            params: vec![],
        }
    }

    #[test]
    fn scoring_builds_curve_frontier_and_reward() {
        let efs = vec![
            EfMeasurement {
                ef: 10,
                recall: 0.8,
                pass_seconds: vec![0.5, 1.0],
                calls_per_pass: 1,
                restore_seconds: vec![0.01, 0.03],
                fuel_per_query: Some(100.0),
                retries: 2,
                noisy: true,
            },
            EfMeasurement {
                ef: 20,
                recall: 1.0,
                pass_seconds: vec![4.0, 4.0],
                calls_per_pass: 2,
                restore_seconds: vec![0.02, 0.05],
                fuel_per_query: Some(300.0),
                retries: 0,
                noisy: false,
            },
        ];
        let measured = Measured {
            efs,
            probed: vec![(1, 0.5), (10, 0.8), (20, 1.0)],
            never_reached: None,
        };
        let e = Evaluation::scored(&ctx(), CandidateInfo::default(), 1000, &measured);
        // Two calls of 1,000 queries in 4 s: 500 QPS, 2,000 queries timed.
        assert_eq!((e.curve[1].qps, e.curve[1].queries_timed), (500.0, 2000));
        assert_eq!(e.probed.len(), 3);
        assert_eq!(e.verdict, Verdict::Ok);
        assert_eq!(e.curve[0].qps, 2000.0);
        assert_eq!(e.curve[0].spread, 0.5);
        assert_eq!(e.frontier.len(), 2);
        assert_eq!(e.frontier[1].ef, 20);
        // (0.8, 2000) is below the band: the whole band is credited the
        // 500 QPS measured at recall 1.0.
        assert!((e.reward - 500.0).abs() < 1e-9);
        assert_eq!(e.qps_at_recall["0.9"], Some(500.0));
        assert_eq!(e.max_recall, Some(1.0));
        // Recall 0.9 is first reached at 300 instructions per query.
        assert_eq!(e.fuel_per_query, Some(300.0));
        // Replicate 0 is (0.8, 2000), (1.0, 500); replicate 1 (0.8, 1000),
        // (1.0, 500): both credit the band with 500.
        assert_eq!(e.replicate_rewards.len(), 2);
        assert!(e.replicate_rewards.iter().all(|r| (r - 500.0).abs() < 1e-9));
        assert!(e.reward_cv < 1e-12);
        // The fuel reward is the same band mean over 1e6 / fuel.
        assert!((e.fuel_reward.unwrap() - 1e6 / 300.0).abs() < 1e-6);
        // The median restore over all four passes.
        assert_eq!(e.restore_seconds, Some(0.025));
        assert!(e.curve[0].noisy && e.curve[0].retries == 2);
        let json = serde_json::to_value(&e).unwrap();
        for key in [
            "verdict",
            "message",
            "reward",
            "curve",
            "qps_at_recall",
            "build_seconds",
            "restore_seconds",
            "index_bytes",
            "fuel_per_query",
            "dataset",
            "engine",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from the JSON");
        }
        assert_eq!(json["verdict"], "ok");
        assert_eq!(json["engine"], "wasm");
    }

    #[test]
    fn a_band_never_reached_is_ok_with_reward_zero_and_says_why() {
        let measured = Measured {
            efs: vec![],
            probed: vec![(1, 0.4), (2, 0.4)],
            never_reached: Some("the curve never reaches the recall band's bottom 0.85".into()),
        };
        let e = Evaluation::scored(&ctx(), CandidateInfo::default(), 100, &measured);
        assert_eq!((e.verdict, e.reward), (Verdict::Ok, 0.0));
        assert!(e.message.contains("never reaches"), "{}", e.message);
        assert_eq!(e.max_recall, Some(0.4));
    }

    #[test]
    fn a_failure_has_zero_reward_and_its_message() {
        let e = Evaluation::failed(
            &ctx(),
            CandidateInfo::default(),
            Failure::new(Verdict::Timeout, "too slow"),
        );
        assert_eq!(
            (e.verdict, e.reward, e.message.as_str()),
            (Verdict::Timeout, 0.0, "too slow")
        );
    }
}
