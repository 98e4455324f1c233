//! Shared set-up for the end-to-end tests: one compile cache for every test
//! and every run (`target/tmp`), limits small enough that hostile cases end
//! quickly, and the small synthetic dataset.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anneval::compile::{CompileLimits, Language};
use anneval::dataset::{Dataset, registry};
use anneval::evaluator::Quiet;
use anneval::measure::sweep::Sweep;
use anneval::sandbox::Limits;
use anneval::{Candidate, Evaluation, Evaluator, ScoreOptions};

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The compile cache shared by all tests (and by the CLI tests' children).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("anneval-cache")
}

/// Limits for tests: small memory, short deadlines.
pub fn limits() -> Limits {
    Limits {
        memory_bytes: 256 << 20,
        build_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

pub fn evaluator_with(limits: Limits) -> Evaluator {
    Evaluator::new(limits, CompileLimits::default(), &cache_dir()).unwrap()
}

pub fn evaluator_compiling_with(limits: Limits, compile: CompileLimits) -> Evaluator {
    Evaluator::new(limits, compile, &cache_dir()).unwrap()
}

/// A file on the host holding a secret that must never appear in anything
/// anneval reports: (its path, the secret).
pub fn canary() -> (PathBuf, String) {
    let secret = format!(
        "anneval-canary-{:016x}",
        std::process::id() as u64 * 0x9e37_79b9_7f4a_7c15
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("canary-{}.txt", std::process::id()));
    std::fs::write(&path, &secret).unwrap();
    (path, secret)
}

/// A Rust candidate from literal source.
pub fn source(origin: &str, text: impl Into<String>) -> Candidate {
    source_in(Language::Rust, origin, text)
}

/// A candidate in `language` from literal source.
pub fn source_in(language: Language, origin: &str, text: impl Into<String>) -> Candidate {
    Candidate::Source {
        origin: origin.to_string(),
        text: text.into(),
        language,
    }
}

pub fn evaluator() -> Evaluator {
    evaluator_with(limits())
}

/// random-xs-20-euclidean or -angular, made once per test binary.
pub fn xs20(name: &str) -> &'static Dataset {
    static EUCLIDEAN: OnceLock<Dataset> = OnceLock::new();
    static ANGULAR: OnceLock<Dataset> = OnceLock::new();
    let cell = match name {
        "random-xs-20-euclidean" => &EUCLIDEAN,
        "random-xs-20-angular" => &ANGULAR,
        other => panic!("no such test dataset {other}"),
    };
    cell.get_or_init(|| registry::make(name, &|_| {}).unwrap())
}

/// One ef, one timed pass, no fuel: enough to reach a verdict.
pub fn quick() -> ScoreOptions {
    ScoreOptions {
        sweep: Sweep::Efs(vec![10]),
        runs: 1,
        fuel: false,
        ..ScoreOptions::default()
    }
}

/// The brute-force candidate with its `/* HOOK: name */` comments replaced.
pub fn hooked(hooks: &[(&str, &str)]) -> Candidate {
    let path = repo_root().join("guest-template/variants/brute_force.rs");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, code) in hooks {
        let marker = format!("/* HOOK: {name} */");
        assert!(text.contains(&marker), "no hook {name}");
        text = text.replace(&marker, code);
    }
    source(&format!("brute_force.rs with {hooks:?}"), text)
}

/// A component from WebAssembly text.
pub fn wat_component(origin: &str, wat: &str) -> Candidate {
    Candidate::Component {
        origin: origin.to_string(),
        bytes: wat::parse_str(wat).unwrap(),
    }
}

pub fn score(evaluator: &Evaluator, candidate: &Candidate, opts: &ScoreOptions) -> Evaluation {
    let data = xs20("random-xs-20-euclidean");
    opts.check(data).unwrap();
    evaluator.evaluate(candidate, data, opts, &Quiet)
}

/// Seconds the evaluation spent after compiling.
pub fn run_seconds(eval: &Evaluation) -> f64 {
    eval.seconds - eval.candidate.compile_seconds.unwrap_or(0.0)
}
