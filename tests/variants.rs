//! Every kernel variant in guest-template/variants compiles, runs and finds
//! the true neighbours: they are the fixtures of the measurement and
//! native-confirmation benchmarks.

mod common;

use anneval::measure::sweep::Sweep;
use anneval::{Candidate, ScoreOptions, Verdict};

#[test]
fn every_variant_scores_ok_with_high_recall() {
    let evaluator = common::evaluator();
    let dir = common::repo_root().join("guest-template/variants");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            names.push(path);
        }
    }
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![16, 256]),
        runs: 1,
        ..ScoreOptions::default()
    };
    for path in names {
        let eval = common::score(&evaluator, &Candidate::from_path(&path).unwrap(), &opts);
        assert_eq!(
            eval.verdict,
            Verdict::Ok,
            "{}: {}",
            path.display(),
            eval.message
        );
        assert!(
            eval.max_recall.unwrap() > 0.99,
            "{}: {:?}",
            path.display(),
            eval.max_recall
        );
    }
}
