//! Curve shaping buys nothing: kernels that answer uselessly but fast at
//! some efs (so their points sit below the reward band, or out of it) score
//! no more than the honest kernel they are made from, and the gate does not
//! call them faster. Each case also shows that the same curve *would* have
//! fooled an area with linear interpolation between points (CRINN's), so the
//! test would fail if the reward went back to that definition.

mod common;

use anneval::dataset::{Dataset, registry};
use anneval::evaluator::Quiet;
use anneval::gate::{self, GateMetric, GateOptions};
use anneval::measure::sweep::Sweep;
use anneval::{Candidate, Evaluation, ScoreOptions, Verdict};

/// The reference kernel with `code` run first in its `search`.
fn reference_with(origin: &str, code: &str) -> Candidate {
    let path = common::repo_root().join("guest-template/src/kernel.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let head = "fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {";
    assert!(text.contains(head), "the reference's search changed");
    common::source(origin, text.replace(head, &format!("{head}\n{code}\n")))
}

/// Ids `0..k`: valid, distinct, and almost never right.
const USELESS: &str = "out.extend(0..k as u32); return;";

/// The reward an area under the linearly interpolated frontier would give
/// (the definition this test guards against), from the measured curve.
fn interpolated_reward(eval: &Evaluation) -> f64 {
    let f: Vec<(f64, f64)> = eval.frontier.iter().map(|p| (p.recall, p.qps)).collect();
    let (lo, hi) = (eval.band[0], eval.band[1]);
    let at = |r: f64| -> f64 {
        if r > f.last().unwrap().0 {
            return 0.0;
        }
        if r <= f[0].0 {
            return f[0].1;
        }
        let i = f.partition_point(|p| p.0 < r);
        let ((r0, q0), (r1, q1)) = (f[i - 1], f[i]);
        q0 + (r - r0) / (r1 - r0) * (q1 - q0)
    };
    let n = 1000;
    (0..n)
        .map(|i| at(lo + (i as f64 + 0.5) * (hi - lo) / n as f64))
        .sum::<f64>()
        / n as f64
}

fn all_ok(evals: &[Evaluation]) {
    for e in evals {
        let source = &e.candidate.source;
        assert_eq!(e.verdict, Verdict::Ok, "{source}: {}", e.message);
    }
}

fn data() -> Dataset {
    registry::make("embed-xs-32-euclidean", &|_| {}).unwrap()
}

#[test]
fn curve_shaping_kernels_earn_no_more_than_the_honest_kernel() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = data();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![1, 8, 14, 16, 20, 24, 32, 48]),
        runs: 5,
        ..ScoreOptions::default()
    };
    opts.check(&data).unwrap();
    // Useless answers below an ef, as in issue 11: the policy gives up the
    // low efs to plant one very fast point below the band. Cut at three
    // places, so the first honest point lands at the band's bottom, middle
    // and top.
    let mut kernels = vec![Candidate::Reference];
    for cut in [20, 24, 32] {
        kernels.push(reference_with(
            &format!("useless below ef {cut}"),
            &format!("if ef < {cut} {{ {USELESS} }}"),
        ));
    }
    let evals = evaluator.evaluate_together(&kernels, &data, &opts, &Quiet);
    all_ok(&evals);
    let reference = &evals[0];
    assert!(
        reference
            .curve
            .iter()
            .filter(|p| (0.85..0.95).contains(&p.recall))
            .count()
            >= 3,
        "the set must put several of the reference's points in the band: {:?}",
        reference.curve
    );
    for shaped in &evals[1..] {
        let name = &shaped.candidate.source;
        // The shaping is there: a point far faster than any honest one, with
        // a recall below the band.
        let fastest_honest = reference.curve.iter().map(|p| p.qps).fold(0.0, f64::max);
        assert!(
            shaped
                .curve
                .iter()
                .any(|p| p.recall < 0.85 && p.qps > fastest_honest),
            "{name}: no useless fast point in {:?}",
            shaped.curve
        );
        // It would have fooled an interpolated area.
        let fooled = interpolated_reward(shaped) / interpolated_reward(reference);
        assert!(
            fooled > 1.15,
            "{name}: interpolation would give only {fooled:.2}× (the case no longer tests the hole)"
        );
        // It does not fool the reward: the shaped kernel earns what its
        // honest points earn, at most the reference's (within noise).
        let ratio = shaped.reward / reference.reward;
        assert!(
            ratio < 1.15,
            "{name}: reward {:.0} against the reference's {:.0} ({ratio:.2}×)",
            shaped.reward,
            reference.reward
        );
        for r in ["0.9", "0.95"] {
            let (s, b) = (shaped.qps_at_recall[r], reference.qps_at_recall[r]);
            assert!(
                s.unwrap_or(0.0) <= b.unwrap_or(0.0) * 1.15,
                "{name}: QPS at recall {r} {s:?} against {b:?}"
            );
        }

        // The gate, deciding on time as CI would, with the small margin a
        // CI job asks of a proposal, does not pass it: the identical in-band
        // code measures a ratio near 1, not the 9× the hole gave.
        let time = gate::decide(
            reference.clone(),
            shaped.clone(),
            &GateOptions {
                min_speedup: 1.05,
                ..GateOptions::default()
            },
        )
        .unwrap();
        assert!(!time.passed, "{name}: {}", time.summary);
        if let Some(r) = time.ratio {
            assert!(r.estimate < 1.15, "{name}: time ratio {r:?}");
        }
        // On instructions the decision is exact: never above 1.
        let fuel = gate::decide(
            reference.clone(),
            shaped.clone(),
            &GateOptions {
                metric: GateMetric::Fuel,
                ..GateOptions::default()
            },
        )
        .unwrap();
        assert!(!fuel.passed, "{name}: {}", fuel.summary);
        if let Some(r) = fuel.ratio {
            assert!(r.estimate <= 1.0 + 1e-9, "{name}: fuel ratio {r:?}");
        }
    }
}

#[test]
fn a_normalised_reward_cannot_be_shaped_either() {
    let _serial = common::one_at_a_time();
    // The batch's normalised reward is reward / reference reward from one
    // interleaved run: shaped points below the band leave it where the
    // honest kernel's is.
    let evaluator = common::evaluator();
    let data = data();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![1, 8, 12, 16, 20, 24, 32, 48]),
        runs: 3,
        fuel: false,
        ..ScoreOptions::default()
    };
    let shaped = reference_with(
        "useless below ef 24",
        &format!("if ef < 24 {{ {USELESS} }}"),
    );
    let evals = evaluator.evaluate_together(
        &[Candidate::Reference, shaped, Candidate::Reference],
        &data,
        &opts,
        &Quiet,
    );
    let (reference, shaped, again) = (&evals[0], &evals[1], &evals[2]);
    let normalised = shaped.reward / reference.reward;
    let honest = again.reward / reference.reward;
    assert!(
        normalised < honest * 1.2 && normalised < 1.2,
        "shaped {normalised:.3}, the reference against itself {honest:.3}"
    );
}

/// The reference renamed `Hnsw`, wrapped by an `Index` whose `build` only
/// keeps the base vectors and whose `load` builds the graph: all of the
/// build moved into the untimed restore of every pass.
fn lazy_reference() -> Candidate {
    let path = common::repo_root().join("guest-template/src/kernel.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let renamed = text
        .replace("pub struct Index {", "pub struct Hnsw {")
        .replace("impl Index {", "impl Hnsw {")
        .replace("impl Kernel for Index {", "impl Kernel for Hnsw {")
        .replace("Index {", "Hnsw {");
    let wrapper = r#"
pub struct Index {
    graph: Hnsw,
}

impl Kernel for Index {
    fn build(base: &[f32], dim: usize, metric: Metric, _: &Params) -> Self {
        // No graph yet: save() below writes the raw vectors.
        let mut bytes = Vec::new();
        let mut w = ByteWriter::new(&mut bytes);
        w.u8(metric.to_u8());
        w.u64(dim as u64);
        w.f32s(base);
        LAZY.with(|l| *l.borrow_mut() = bytes);
        Index { graph: Hnsw::build(&base[..dim], dim, metric, &Params::new(Vec::new())) }
    }
    fn save(&self, out: &mut Vec<u8>) {
        LAZY.with(|l| out.extend_from_slice(&l.borrow()));
    }
    fn load(bytes: &[u8]) -> Self {
        let mut r = ByteReader::new(bytes);
        let metric = Metric::from_u8(r.u8());
        let dim = r.u64() as usize;
        let base = r.f32s();
        Index { graph: Hnsw::build(&base, dim, metric, &Params::new(Vec::new())) }
    }
    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {
        self.graph.search(query, k, ef, out)
    }
}

thread_local! {
    static LAZY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
"#;
    common::source("build moved into load", format!("{renamed}\n{wrapper}"))
}

#[test]
fn work_moved_from_build_into_restore_is_reported() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = data();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![16, 32]),
        runs: 2,
        fuel: false,
        ..ScoreOptions::default()
    };
    let evals = evaluator.evaluate_together(
        &[Candidate::Reference, lazy_reference()],
        &data,
        &opts,
        &Quiet,
    );
    let (reference, lazy) = (&evals[0], &evals[1]);
    all_ok(&evals);
    let (rb, rr) = (
        reference.build_seconds.unwrap(),
        reference.restore_seconds.unwrap(),
    );
    let (lb, lr) = (lazy.build_seconds.unwrap(), lazy.restore_seconds.unwrap());
    // The lazy kernel's build is nearly free and its every restore costs a
    // build: the report shows where the work went.
    assert!(lb < rb / 4.0, "build: lazy {lb} s, reference {rb} s");
    assert!(
        lr > rr * 10.0 && lr > rb / 4.0,
        "restore: lazy {lr} s, reference {rr} s"
    );
    // And it buys no speed: the searches are the same code.
    let ratio = lazy.reward / reference.reward;
    assert!(ratio < 1.25, "lazy / reference reward {ratio:.2}");
    let json = serde_json::to_value(lazy).unwrap();
    assert!(json["restore_seconds"].as_f64().unwrap() > 0.0);
    assert!(anneval::export::table::render(lazy).contains("ms per pass"));
}
