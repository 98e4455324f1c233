//! The reference kernel, compiled to WebAssembly and scored in the sandbox.

mod common;

use anneval::evaluator::Quiet;
use anneval::{Candidate, ScoreOptions, Verdict};

#[test]
fn reference_kernel_scores_ok_on_both_small_sets() {
    let evaluator = common::evaluator();
    let opts = ScoreOptions {
        efs: vec![1, 10, 20, 40, 80],
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
        efs: vec![16],
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
    let first = compiler.compile(&text).unwrap();
    let second = compiler.compile(&text).unwrap();
    assert!(!first.cached && second.cached);
    assert_eq!(first.component, second.component);
    assert_eq!(first.digest, second.digest);
}

/// Records every progress step of the sweep phase.
#[derive(Default)]
struct SweepSteps(std::sync::Mutex<(bool, Vec<String>)>);

impl anneval::evaluator::Progress for SweepSteps {
    fn phase(&self, name: &str, _: u64) {
        self.0.lock().unwrap().0 = name == "sweep";
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
        efs: vec![10, 20],
        runs: 2,
        max_spread: 1.0,
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
    // Warm-up round, two timed rounds, the fuel round: each walks both efs,
    // and at each ef the two kernels take turns.
    let round = ["ef=10", "ef=10", "ef=20", "ef=20"];
    assert_eq!(seen, round.repeat(4), "{seen:?}");
}
