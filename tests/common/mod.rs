//! Shared set-up for the end-to-end tests: one compile cache for every test
//! and every run (`target/tmp`), limits small enough that hostile cases end
//! quickly, and the small synthetic dataset.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anneval::compile::clang::{LLVM_DIR, WASM_FLAGS, WASM_LINK_FLAGS, wit_glue};
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

/// Serialises the tests of one binary that must not run side by side: those
/// that start native kernel processes (the hostile native test checks that
/// none outlives its evaluation, which another test's live runner would
/// break) or that compare speeds measured in one run.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The C++ reference kernel with each `old` replaced by its `new` (each
/// `old` must occur exactly once).
pub fn cpp_reference_with(origin: &str, replacements: &[(&str, &str)]) -> Candidate {
    source_in(Language::Cpp, origin, cpp_reference_text_with(replacements))
}

/// The text of [`cpp_reference_with`].
pub fn cpp_reference_text_with(replacements: &[(&str, &str)]) -> String {
    let mut text = Language::Cpp.reference().to_string();
    for (old, new) in replacements {
        assert_eq!(text.matches(old).count(), 1, "{old:?} occurs once");
        text = text.replace(old, new);
    }
    text
}

/// The C++ reference with a probe run at the start of `build`: it logs, as
/// its first line, what a kernel finds of the host's files (`/etc/passwd`,
/// the `canary`), environment (`HOME`), clocks and randomness, then floods
/// stdout with 100,000 lines.
pub fn cpp_wasi_probe(canary: &Path) -> String {
    let probe = format!(
        r#"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
static void probe() {{
  std::string s;
  s += std::string("passwd=") + (fopen("/etc/passwd", "r") ? "open" : "null");
  FILE* c = fopen("{canary}", "r");
  char buf[64] = {{0}};
  if (c) fread(buf, 1, sizeof buf - 1, c);
  s += std::string(" canary=") + (c ? buf : "null");
  s += std::string(" home=") + (getenv("HOME") ? getenv("HOME") : "null");
  s += " time=" + std::to_string(time(nullptr));
  s += " steady=" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  std::random_device rd;
  s += " random=" + std::to_string(rd());
  anneval::log(s);
  for (int i = 0; i < 100000; i++) printf("flooding stdout %d\n", i);
  fflush(stdout);
}}
"#,
        canary = canary.display()
    );
    cpp_reference_text_with(&[
        (
            "#include \"anneval.hpp\"\n",
            &format!("#include \"anneval.hpp\"\n{probe}"),
        ),
        (BUILD_START, &format!("    probe();\n{BUILD_START}")),
    ])
}

/// The first lines of the C++ reference's `build`, where code is spliced in.
pub const BUILD_START: &str =
    "    auto index = std::make_unique<Index>();\n    Index& x = *index;\n    x.dim = dim;\n";

/// What [`cpp_wasi_probe`] must log when nothing of the host is reachable
/// (the random number follows, the same on every run).
pub const PROBE_FINDS_NOTHING: &str = "passwd=null canary=null home=null time=0 steady=0 random=";

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

/// A kernel of `guest-template/variants/`, by file name.
pub fn variant(name: &str) -> PathBuf {
    repo_root().join("guest-template/variants").join(name)
}

/// The brute-force candidate with its `/* HOOK: name */` comments replaced.
pub fn hooked(hooks: &[(&str, &str)]) -> Candidate {
    let path = variant("brute_force.rs");
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

/// A WASI component of the C++ kernel `source`.
pub fn wasi_component(origin: &str, source: &str) -> Candidate {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    anneval::template::write_cpp_to(work, "kernel.cpp", source).unwrap();
    for (name, bytes) in wit_glue().unwrap() {
        std::fs::write(work.join(name), bytes).unwrap();
    }
    let sysroot = work.join("sysroot");
    std::fs::create_dir_all(sysroot.join("lib")).unwrap();
    std::os::unix::fs::symlink("/usr/include/wasm32-wasi", sysroot.join("include")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/wasm32-wasi", sysroot.join("lib/wasm32-wasi")).unwrap();
    std::fs::create_dir_all(work.join("simde")).unwrap();
    std::os::unix::fs::symlink(anneval::compile::clang::SIMDE, work.join("simde/simde")).unwrap();
    let out = std::process::Command::new(format!("{LLVM_DIR}/bin/clang++"))
        .current_dir(work)
        .args(WASM_FLAGS)
        .args(WASM_LINK_FLAGS)
        .arg(format!("--sysroot={}", sysroot.display()))
        .arg(format!("-fuse-ld={LLVM_DIR}/bin/wasm-ld"))
        .args(["-isystem", "include", "-isystem", "simde"])
        // No wasi.c: libc's calls stay WASI preview-1 imports.
        .args(["-x", "c++", "wasm_main.cpp", "-x", "c", "wit.c"])
        .args(["-x", "none", "wit_component_type.o", "-o", "core.wasm"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core = std::fs::read(work.join("core.wasm")).unwrap();
    let bytes = wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .unwrap()
        .validate(true)
        .encode()
        .unwrap();
    Candidate::Component {
        origin: origin.into(),
        bytes,
    }
}

/// Runs the Python tests in the files `pattern` matches under
/// `python/<dir>` with the interpreter of the virtual environment `venv`
/// (which scripts/setup makes), this build's binary and the tests' shared
/// compile cache; every test must run (none skipped) and pass.
#[allow(dead_code)]
pub fn python_tests(venv: &str, dir: &str, pattern: &str) {
    let root = repo_root();
    let python = root.join(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup --trainers, which makes it",
        python.display()
    );
    let out = std::process::Command::new(&python)
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root.join("python").join(dir))
        .arg("-t")
        .arg(root.join("python"))
        .args(["-p", pattern])
        // This checkout's package, whatever the environment holds (the
        // trainers' environments hold third-party packages only).
        .env("PYTHONPATH", root.join("python"))
        .env("ANNEVAL_BIN", env!("CARGO_BIN_EXE_anneval"))
        .env("ANNEVAL_CACHE", cache_dir())
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("HF_HUB_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "false")
        .output()
        .expect("running the Python tests");
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    println!("{report}");
    assert!(out.status.success(), "the Python tests failed:\n{report}");
    assert!(
        !report.contains("skipped"),
        "every Python test must run here:\n{report}"
    );
}
