//! The corpus (`tests/corpus/`): kernels written the way the field writes
//! them, from the published descriptions of their methods rather than from
//! our reference, in x86 intrinsics. Each compiles for both engines, through
//! the x86 layer in the sandbox and as the CPU's own code natively, and finds
//! the true neighbours on both. A folder (`hnswlib_style/`) is a kernel of
//! several files.

mod common;

use anneval::evaluator::{Engine, Quiet};
use anneval::measure::sweep::Sweep;
use anneval::{Candidate, ScoreOptions, Verdict};

#[test]
fn every_corpus_kernel_finds_neighbours_on_both_engines() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let dir = common::repo_root().join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            // A folder is a kernel of several files.
            p.is_dir()
                || p.extension()
                    .is_some_and(|e| e == "cpp" || e == "c" || e == "rs")
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no kernel in {}", dir.display());
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![16, 1024]),
        runs: 1,
        ..ScoreOptions::default()
    };
    let mut entries = Vec::new();
    for path in &paths {
        let candidate = Candidate::from_path(path).unwrap();
        entries.push((candidate.clone(), Engine::Wasm));
        entries.push((candidate, Engine::Native));
    }
    let evals = evaluator.evaluate_entries(&entries, data, &opts, &Quiet);
    for eval in &evals {
        assert_eq!(
            eval.verdict,
            Verdict::Ok,
            "{} [{}]: {}",
            eval.candidate.source,
            eval.engine,
            eval.message
        );
        assert!(
            eval.max_recall.unwrap() > 0.95,
            "{} [{}]: recall {:?}",
            eval.candidate.source,
            eval.engine,
            eval.max_recall
        );
    }
}
