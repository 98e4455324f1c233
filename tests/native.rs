//! The native engine: the same kernel compiled for this CPU and run in the OS
//! sandbox, one process per pass. Its results match the wasm engine's, and
//! hostile native code (with the source filter off, so the sandbox alone
//! must hold) ends in the right verdict with the host unharmed.

mod common;

use std::time::Duration;

use anneval::compile::CompileLimits;
use anneval::evaluator::{Engine, Quiet};
use anneval::measure::sweep::Sweep;
use anneval::sandbox::Limits;
use anneval::{Candidate, ScoreOptions, Verdict};
use common::hooked;

fn opts(efs: Vec<usize>) -> ScoreOptions {
    ScoreOptions {
        sweep: Sweep::Efs(efs),
        runs: 1,
        ..ScoreOptions::default()
    }
}

#[test]
fn the_reference_scores_ok_natively_with_the_recall_of_the_wasm_engine() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let entries = [
        (Candidate::Reference, Engine::Wasm),
        (Candidate::Reference, Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![4, 16, 64]), &Quiet);
    let (wasm, native) = (&evals[0], &evals[1]);
    assert_eq!(native.verdict, Verdict::Ok, "{}", native.message);
    assert_eq!(
        (wasm.engine.as_str(), native.engine.as_str()),
        ("wasm", "native")
    );
    assert!(native.reward > 0.0 && native.build_seconds.unwrap() > 0.0);
    assert!(
        native.curve.iter().all(|p| p.fuel_per_query.is_none()),
        "no fuel natively"
    );
    // Fused multiply-add and wider lanes round differently, so a distance
    // tie can break the other way: recall agrees closely, not bit for bit.
    for (w, n) in wasm.curve.iter().zip(&native.curve) {
        assert!(
            (w.recall - n.recall).abs() <= 0.01,
            "ef {}: wasm {} native {}",
            w.ef,
            w.recall,
            n.recall
        );
    }
    assert!(native.max_recall.unwrap() > 0.99);
}

#[test]
fn a_ready_component_cannot_run_natively() {
    let evaluator = common::evaluator();
    let component = common::wat_component("k.wat", "(component)");
    let eval = evaluator.evaluate_on(
        &component,
        Engine::Native,
        common::xs20("random-xs-20-euclidean"),
        &opts(vec![10]),
        &Quiet,
    );
    assert_eq!(eval.verdict, Verdict::Rejected);
    assert!(
        eval.message.contains("the native engine compiles source"),
        "{}",
        eval.message
    );
}

#[test]
fn hostile_native_kernels_are_contained() {
    let _serial = common::one_at_a_time();
    let (canary, secret) = common::canary();
    let evaluator = common::evaluator_compiling_with(
        Limits {
            call_timeout: Duration::from_secs(2),
            ..common::limits()
        },
        CompileLimits {
            check_source: false,
            ..CompileLimits::default()
        },
    );
    let data = common::xs20("random-xs-20-euclidean");
    let escape = std::env::temp_dir().join(format!("anneval-escape-{}", std::process::id()));
    let read_canary = format!(
        "let s = std::fs::read_to_string({:?}).unwrap(); panic!(\"read {{s}}\");",
        canary.display().to_string()
    );
    let write_outside = format!(
        "std::fs::write({:?}, b\"escaped\").unwrap();",
        escape.display().to_string()
    );
    let cases: Vec<(&str, Candidate, Verdict, &str)> = vec![
        (
            "endless loop",
            hooked(&[("search", "loop { std::hint::black_box(0); }")]),
            Verdict::Timeout,
            "deadline",
        ),
        (
            "fork bomb",
            hooked(&[
                ("items", "unsafe extern \"C\" { fn fork() -> i32; }"),
                (
                    "search",
                    "loop { unsafe { std::hint::black_box(fork()); } }",
                ),
            ]),
            Verdict::Timeout,
            "deadline",
        ),
        (
            "network attempt",
            hooked(&[(
                "search",
                "std::net::TcpStream::connect(\"127.0.0.1:9\").expect(\"no network\");",
            )]),
            Verdict::Trap,
            "no network",
        ),
        (
            "reading a host file",
            hooked(&[("search", Box::leak(read_canary.into_boxed_str()))]),
            Verdict::Trap,
            "panicked at",
        ),
        (
            "writing outside its directory",
            hooked(&[("build", Box::leak(write_outside.into_boxed_str()))]),
            Verdict::Trap,
            "panicked at",
        ),
        (
            "starting a thread",
            hooked(&[("search", "std::thread::spawn(|| ()).join().unwrap();")]),
            Verdict::Trap,
            "panicked at",
        ),
        (
            "unbounded memory",
            hooked(&[(
                "build",
                "let v = vec![7u8; 3 << 30]; std::hint::black_box(&v);",
            )]),
            Verdict::MemoryLimit,
            "memory",
        ),
        (
            "panic",
            hooked(&[("search", "panic!(\"native boom\");")]),
            Verdict::Trap,
            "native boom",
        ),
        (
            "duplicate ids",
            hooked(&[("answer", "let first = out[0]; out[1] = first;")]),
            Verdict::InvalidOutput,
            "more than once",
        ),
    ];
    for (name, candidate, verdict, says) in cases {
        let start = std::time::Instant::now();
        let eval = evaluator.evaluate_on(&candidate, Engine::Native, data, &opts(vec![10]), &Quiet);
        let seconds = start.elapsed().as_secs_f64() - eval.candidate.compile_seconds.unwrap_or(0.0);
        println!("| native: {name} | {} | {seconds:.2} |", eval.verdict);
        assert_eq!(eval.verdict, verdict, "{name}: {}", eval.message);
        assert!(eval.message.contains(says), "{name}: {}", eval.message);
        assert!(seconds < 8.0, "{name}: took {seconds:.1} s");
        let json = serde_json::to_string(&eval).unwrap();
        assert!(!json.contains(&secret), "{name}: the canary leaked");
    }
    assert!(
        !escape.exists(),
        "a native kernel wrote outside its sandbox"
    );
    // No kernel process was left behind (a fork bomb would leave many).
    let runners = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| cmd.starts_with(b"/kernel/native"))
        .count();
    assert_eq!(
        runners, 0,
        "native kernel processes outlived their evaluation"
    );
    std::fs::remove_file(&canary).ok();
}

#[test]
fn confirm_ranks_kernels_on_both_engines() {
    let _serial = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("confirm.json");
    let brute = common::variant("brute_force.rs");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anneval"))
        .args(["confirm", "reference", brute.to_str().unwrap()])
        .args([
            "--ef",
            "10,40",
            "--runs",
            "1",
            "--max-queries",
            "100",
            "-q",
            "--json",
        ])
        .arg(&json)
        .env("ANNEVAL_CACHE", common::cache_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let candidates = v["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    for c in candidates {
        assert_eq!(c["wasm"]["engine"], "wasm");
        assert_eq!(c["native"]["engine"], "native");
        assert!(c["native_over_wasm"].as_f64().unwrap() > 0.0);
    }
    // HNSW beats a scan on both engines: the orderings agree.
    assert_eq!(v["spearman"], 1.0);
}
