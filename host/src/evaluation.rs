//! The result of one evaluation: the object `anneval score --json` writes and
//! every exporter reads. Field names are a contract with users and tools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetInfo;
use crate::measure::EfMeasurement;
use crate::metrics::{self, Point};
use crate::verdict::{Failure, Verdict};

/// Recalls at which `qps_at_recall` is reported.
pub const REPORTED_RECALLS: [f64; 3] = [0.9, 0.95, 0.99];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// Empty for `ok`; otherwise what went wrong and what to do.
    pub message: String,
    /// Mean QPS of the frontier over `band` (0 unless the verdict is `ok`).
    pub reward: f64,
    pub band: [f64; 2],
    pub k: usize,
    /// One point per `ef`, in sweep order.
    pub curve: Vec<CurvePoint>,
    /// The Pareto frontier of the curve, ascending in recall.
    pub frontier: Vec<FrontierPoint>,
    /// QPS on the frontier at recall 0.9, 0.95, 0.99 (null if not reached).
    pub qps_at_recall: BTreeMap<String, Option<f64>>,
    pub max_recall: Option<f64>,
    pub build_seconds: Option<f64>,
    pub index_bytes: Option<u64>,
    /// WebAssembly instructions per query at recall 0.9, interpolated on the
    /// fuel frontier (null if never reached or not metered).
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
    /// Wall-clock seconds of the whole evaluation.
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub ef: usize,
    pub recall: f64,
    /// The best pass.
    pub qps: f64,
    /// Every timed pass.
    pub qps_passes: Vec<f64>,
    /// (best - worst) / best over the passes.
    pub spread: f64,
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
            band: [ctx.band.0, ctx.band.1],
            k: ctx.k,
            curve: Vec::new(),
            frontier: Vec::new(),
            qps_at_recall: REPORTED_RECALLS
                .iter()
                .map(|r| (recall_key(*r), None))
                .collect(),
            max_recall: None,
            build_seconds: None,
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
        }
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
        sweep: &[EfMeasurement],
    ) -> Evaluation {
        let mut eval = Evaluation::empty(ctx, candidate);
        eval.curve = sweep
            .iter()
            .map(|m| {
                let passes = m.pass_qps(queries);
                let best = passes.iter().copied().fold(0.0, f64::max);
                let worst = passes.iter().copied().fold(f64::INFINITY, f64::min);
                CurvePoint {
                    ef: m.ef,
                    recall: m.recall,
                    qps: best,
                    spread: if best > 0.0 {
                        (best - worst) / best
                    } else {
                        0.0
                    },
                    qps_passes: passes,
                    fuel_per_query: m.fuel_per_query,
                }
            })
            .collect();
        let points: Vec<Point> = eval
            .curve
            .iter()
            .map(|c| Point {
                recall: c.recall,
                qps: c.qps,
            })
            .collect();
        let frontier = metrics::pareto_frontier(&points);
        eval.reward = metrics::band_reward(&frontier, ctx.band.0, ctx.band.1);
        for r in REPORTED_RECALLS {
            eval.qps_at_recall
                .insert(recall_key(r), metrics::qps_at_recall(&frontier, r));
        }
        eval.max_recall = eval.curve.iter().map(|c| c.recall).reduce(f64::max);
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
        eval.fuel_per_query = fuel_per_query_at(&eval.curve, 0.9);
        eval
    }
}

/// Instructions per query at `recall`, on the frontier of (recall, 1/fuel).
fn fuel_per_query_at(curve: &[CurvePoint], recall: f64) -> Option<f64> {
    let points: Vec<Point> = curve
        .iter()
        .filter_map(|c| {
            c.fuel_per_query.filter(|f| *f > 0.0).map(|f| Point {
                recall: c.recall,
                qps: 1.0 / f,
            })
        })
        .collect();
    let frontier = metrics::pareto_frontier(&points);
    metrics::qps_at_recall(&frontier, recall).map(|per_fuel| 1.0 / per_fuel)
}

/// The key of a recall in `qps_at_recall`: "0.9", "0.95", "0.99".
pub fn recall_key(r: f64) -> String {
    format!("{r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            band: (0.85, 0.95),
            k: 10,
            runs: 2,
            engine: "wasm",
            dataset: "d".into(),
            dataset_info: None,
            params: vec![],
        }
    }

    #[test]
    fn scoring_builds_curve_frontier_and_reward() {
        let sweep = vec![
            EfMeasurement {
                ef: 10,
                recall: 0.8,
                pass_seconds: vec![0.5, 1.0],
                fuel_per_query: Some(100.0),
            },
            EfMeasurement {
                ef: 20,
                recall: 1.0,
                pass_seconds: vec![2.0, 2.0],
                fuel_per_query: Some(300.0),
            },
        ];
        let e = Evaluation::scored(&ctx(), CandidateInfo::default(), 1000, &sweep);
        assert_eq!(e.verdict, Verdict::Ok);
        assert_eq!(e.curve[0].qps, 2000.0);
        assert_eq!(e.curve[0].spread, 0.5);
        assert_eq!(e.frontier.len(), 2);
        assert_eq!(e.frontier[1].ef, 20);
        // Linear from (0.8, 2000) to (1.0, 500): at 0.9 it is 1250.
        assert!((e.reward - 1250.0).abs() < 1e-9);
        assert_eq!(e.qps_at_recall["0.9"], Some(1250.0));
        assert_eq!(e.max_recall, Some(1.0));
        // 1/fuel interpolated halfway between 1/100 and 1/300.
        let want = 1.0 / ((1.0 / 100.0 + 1.0 / 300.0) / 2.0);
        assert!((e.fuel_per_query.unwrap() - want).abs() < 1e-9);
        let json = serde_json::to_value(&e).unwrap();
        for key in [
            "verdict",
            "message",
            "reward",
            "curve",
            "qps_at_recall",
            "build_seconds",
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
