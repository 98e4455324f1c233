//! The reference kernel, compiled to WebAssembly and scored in the sandbox.

mod common;

use anneval::compile::Language;
use anneval::evaluator::Quiet;
use anneval::measure::sweep::Sweep;
use anneval::{Candidate, ScoreOptions, Verdict};

#[test]
fn reference_kernel_scores_ok_on_both_small_sets() {
    let evaluator = common::evaluator();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![1, 10, 20, 40, 80]),
        runs: 2,
        ..ScoreOptions::default()
    };
    for name in ["random-xs-20-euclidean", "random-xs-20-angular"] {
        let data = common::xs20(name);
        let eval = evaluator.evaluate(&Candidate::Reference, data, &opts, &Quiet);
        assert_eq!(eval.verdict, Verdict::Ok, "{name}: {}", eval.message);
        let max_recall = eval.max_recall.unwrap();
        assert!(max_recall >= 0.99, "{name}: max recall {max_recall}");
        assert!(eval.reward > 0.0, "{name}: reward {}", eval.reward);
        assert_eq!(eval.curve.len(), 5);
        assert!(
            eval.curve
                .iter()
                .all(|p| p.qps_passes.len() == 2 && p.qps > 0.0)
        );
        // Fuel is deterministic and grows with effort.
        let fuel: Vec<f64> = eval
            .curve
            .iter()
            .map(|p| p.fuel_per_query.unwrap())
            .collect();
        assert!(fuel.windows(2).all(|w| w[0] <= w[1]), "{fuel:?}");
        assert!(eval.fuel_per_query.unwrap() > 0.0);
        assert!(eval.build_seconds.unwrap() > 0.0);
        assert!(eval.index_bytes.unwrap() > (data.train.len() * 4) as u64);
        assert_eq!(eval.engine, "wasm");
        assert_eq!(eval.dataset, name);
    }
}

#[test]
fn fuel_per_query_is_identical_from_run_to_run() {
    let evaluator = common::evaluator();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![16]),
        runs: 1,
        ..ScoreOptions::default()
    };
    let a = common::score(&evaluator, &Candidate::Reference, &opts);
    let b = common::score(&evaluator, &Candidate::Reference, &opts);
    assert_eq!(a.verdict, Verdict::Ok, "{}", a.message);
    assert_eq!(a.curve[0].fuel_per_query, b.curve[0].fuel_per_query);
    assert_eq!(a.curve[0].recall, b.curve[0].recall);
}

#[test]
fn build_parameters_reach_the_kernel() {
    let evaluator = common::evaluator();
    let mut opts = common::quick();
    opts.params = vec![("m".into(), "not-a-number".into())];
    let eval = common::score(&evaluator, &Candidate::Reference, &opts);
    assert_eq!(eval.verdict, Verdict::Trap);
    assert!(
        eval.message
            .contains("parameter m: expected a non-negative integer"),
        "{}",
        eval.message
    );
}

#[test]
fn a_changed_kernel_compiles_and_is_cached() {
    let evaluator = common::evaluator();
    let candidate = common::hooked(&[("answer", "/* a change nobody compiled before */")]);
    let compiler = evaluator.compiler().unwrap();
    let Candidate::Source { text, .. } = &candidate else {
        unreachable!()
    };
    let text = format!("{text}\n// {}\n", std::process::id());
    let first = compiler.compile(&text, Language::Rust).unwrap();
    let second = compiler.compile(&text, Language::Rust).unwrap();
    assert!(!first.cached && second.cached);
    assert_eq!(first.component, second.component);
    assert_eq!(first.digest, second.digest);
}

/// Records every progress step of the probe and sweep phases.
#[derive(Default)]
struct SweepSteps(std::sync::Mutex<(bool, Vec<String>)>);

impl anneval::evaluator::Progress for SweepSteps {
    fn phase(&self, name: &str, _: u64) {
        self.0.lock().unwrap().0 = name == "probe" || name == "sweep";
    }
    fn extend(&self, _: u64) {}
    fn step(&self, detail: &str) {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            state.1.push(detail.to_string());
        }
    }
}

#[test]
fn passes_of_one_ef_are_spread_over_the_sweep_and_kernels_take_turns() {
    let evaluator = common::evaluator();
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![10, 20]),
        runs: 2,
        max_spread: 1.0,
        // One call per pass, so every step below is one pass.
        min_pass_seconds: 0.0,
        ..ScoreOptions::default()
    };
    let data = common::xs20("random-xs-20-euclidean");
    let steps = SweepSteps::default();
    let evals = evaluator.evaluate_together(
        &[Candidate::Reference, Candidate::Reference],
        data,
        &opts,
        &steps,
    );
    for eval in &evals {
        assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    }
    let seen = steps.0.into_inner().unwrap().1;
    // The probes, two timed rounds, the fuel round: each walks both efs,
    // and at each ef the two kernels take turns.
    let round = ["ef=10", "ef=10", "ef=20", "ef=20"];
    assert_eq!(seen, round.repeat(4), "{seen:?}");
}

#[test]
fn the_band_sweep_times_where_the_reward_is_decided() {
    let evaluator = common::evaluator();
    let data = anneval::dataset::registry::make("embed-xs-32-euclidean", &|_| {}).unwrap();
    let opts = ScoreOptions {
        runs: 2,
        fuel: false,
        ..ScoreOptions::default()
    };
    assert_eq!(opts.sweep, Sweep::Band, "the band sweep is the default");

    // The reference crosses the band: several timed points inside it and
    // exactly one past it, the first; nothing timed below it.
    let eval = evaluator.evaluate(&Candidate::Reference, &data, &opts, &Quiet);
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    let inside = eval
        .curve
        .iter()
        .filter(|p| (0.85..0.95).contains(&p.recall))
        .count();
    let past: Vec<usize> = eval
        .curve
        .iter()
        .filter(|p| p.recall >= 0.95)
        .map(|p| p.ef)
        .collect();
    assert!(inside >= 3, "{:?}", eval.curve);
    assert_eq!(past.len(), 1, "{:?}", eval.curve);
    assert!(eval.curve.iter().all(|p| p.recall >= 0.85));
    assert!(
        eval.probed
            .iter()
            .all(|p| p.recall < 0.95 || p.ef >= past[0]),
        "the climb stops at the first ef past the band: {:?}",
        eval.probed
    );
    // Passes are made long enough by several fresh-instance calls.
    for p in &eval.curve {
        assert_eq!(p.queries_timed % data.n_test(), 0);
        assert_eq!(p.qps_passes.len(), 2);
    }
    assert!(eval.curve.iter().any(|p| p.queries_timed > data.n_test()));

    // A kernel that never reaches the band stops early with reward 0 and
    // says why, instead of climbing to the top of the sweep.
    let useless = common::hooked(&[("search", "out.extend(0..k as u32); return;")]);
    let eval = evaluator.evaluate(&useless, &data, &opts, &Quiet);
    assert_eq!((eval.verdict, eval.reward), (Verdict::Ok, 0.0));
    assert!(
        eval.message
            .contains("never reaches the recall band's bottom"),
        "{}",
        eval.message
    );
    assert!(eval.curve.is_empty());
    assert!(eval.probed.last().unwrap().ef <= 128, "{:?}", eval.probed);

    // An explicit list is honoured exactly, whatever the curve.
    let listed = ScoreOptions {
        sweep: Sweep::Efs(vec![50, 7, 13]),
        ..opts.clone()
    };
    let eval = evaluator.evaluate(&Candidate::Reference, &data, &listed, &Quiet);
    let efs: Vec<usize> = eval.curve.iter().map(|p| p.ef).collect();
    assert_eq!(efs, vec![7, 13, 50]);
    let probed: Vec<usize> = eval.probed.iter().map(|p| p.ef).collect();
    assert_eq!(probed, vec![7, 13, 50]);
}
