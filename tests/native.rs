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

/// An evaluator with the source filter off (so the sandbox alone must hold)
/// and calls bounded by `call_seconds`.
fn unfiltered(call_seconds: u64) -> anneval::Evaluator {
    common::evaluator_compiling_with(
        Limits {
            call_timeout: Duration::from_secs(call_seconds),
            ..common::limits()
        },
        CompileLimits {
            check_source: false,
            ..CompileLimits::default()
        },
    )
}

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
    let evaluator = unfiltered(2);
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
    // The table: each engine's reward, QPS at recall 0.9 and build seconds.
    let table = String::from_utf8_lossy(&out.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "candidate",
            "wasm reward",
            "native reward",
            "native/wasm",
            "wasm QPS@0.9",
            "native @0.9",
            "wasm build s",
            "native build"
        ],
        "{table}"
    );
    for row in lines.take(2) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(cells.len() >= 8, "{table}");
        for build in &cells[cells.len() - 2..] {
            assert!(build.parse::<f64>().is_ok_and(|s| s >= 0.0), "{table}");
        }
    }
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

/// The C++ reference with `code` at the start of `load` and of `search`.
fn cpp_hooked(origin: &str, load: &str, search: &str) -> Candidate {
    const LOAD: &str = "  static std::unique_ptr<Index> load(anneval::ByteReader& r) {\n";
    const SEARCH: &str =
        "  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {\n";
    let with = |anchor: &str, code: &str| format!("{anchor}{code}\n");
    common::cpp_reference_with(
        origin,
        &[
            (
                "#include \"anneval.hpp\"\n",
                "#include \"anneval.hpp\"\n#include <cstdio>\n#include <unistd.h>\n",
            ),
            (LOAD, &with(LOAD, load)),
            (SEARCH, &with(SEARCH, search)),
        ],
    )
}

#[test]
fn a_native_kernel_sees_no_query_before_the_clock_and_its_prints_are_not_answers() {
    let _serial = common::one_at_a_time();
    let evaluator = unfiltered(3);
    let data = common::xs20("random-xs-20-euclidean");
    let flood = "{ static char junk[4096]; for (int i = 0; i < 64; i++) fwrite(junk, 1, sizeof junk, stderr); }";
    let cases = [
        // Reading ahead in the untimed load finds nothing: the queries are
        // sent only once the kernel has said it is ready and the clock runs,
        // so the kernel waits for input that never comes.
        (
            "reads its input in load",
            cpp_hooked(
                "read ahead",
                "{ char c; if (read(0, &c, 1) == 1) anneval::log(\"read ahead\"); }",
                "",
            ),
            Verdict::Timeout,
        ),
        // What a kernel prints, even a well-formed answer, is a diagnostic.
        (
            "prints answers of its own",
            cpp_hooked(
                "prints",
                "",
                "{ static bool once; if (!once) { once = true; fputc(0, stdout); uint64_t n = 1; fwrite(&n, 8, 1, stdout); fflush(stdout); } }",
            ),
            Verdict::Ok,
        ),
        // A kernel that writes much to standard error is drained, not killed.
        (
            "floods standard error",
            cpp_hooked("flood", flood, flood),
            Verdict::Ok,
        ),
        // A 32-bit system call slips past no filter: the process is ended,
        // and the verdict says why.
        (
            "makes a 32-bit system call",
            cpp_hooked(
                "int 0x80",
                "{ long r; asm volatile(\"int $0x80\" : \"=a\"(r) : \"a\"(20L)); }",
                "",
            ),
            Verdict::Trap,
        ),
    ];
    let entries: Vec<_> = cases
        .iter()
        .map(|(_, candidate, _)| (candidate.clone(), Engine::Native))
        .collect();
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![16, 64]), &Quiet);
    for ((name, _, verdict), eval) in cases.iter().zip(&evals) {
        assert_eq!(eval.verdict, *verdict, "{name}: {}", eval.message);
        if *verdict == Verdict::Ok {
            assert!(
                eval.max_recall.unwrap() > 0.9,
                "{name}: {:?}",
                eval.max_recall
            );
        } else if *verdict == Verdict::Trap {
            assert!(
                eval.message.contains("a forbidden system call"),
                "{name}: {}",
                eval.message
            );
        } else {
            assert!(
                eval.message.contains("deadline"),
                "{name}: {}",
                eval.message
            );
        }
    }
}

#[test]
fn descriptors_the_host_inherited_reach_no_child() {
    let _serial = common::one_at_a_time();
    let (canary, secret) = common::canary();
    let path = std::ffi::CString::new(canary.to_str().unwrap()).unwrap();
    // Open as a shell's `9< file` would leave it for anneval: inheritable.
    // SAFETY: open with a valid path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2, "opening the canary");
    let evaluator = unfiltered(3);
    let data = common::xs20("random-xs-20-euclidean");
    let include = common::cpp_reference_with(
        "include of an inherited descriptor",
        &[(
            "#include \"anneval.hpp\"\n",
            &format!("#include \"anneval.hpp\"\n#include \"/proc/self/fd/{fd}\"\n"),
        )],
    );
    let read = cpp_hooked(
        "read of an inherited descriptor",
        &format!("{{ char b[128] = {{0}}; if (read({fd}, b, 127) > 0) anneval::fail(b); }}"),
        "",
    );
    let entries = [
        (include.clone(), Engine::Wasm),
        (include, Engine::Native),
        (read, Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![16]), &Quiet);
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd) };
    for (eval, verdict) in
        evals
            .iter()
            .zip([Verdict::CompileError, Verdict::CompileError, Verdict::Ok])
    {
        assert_eq!(
            eval.verdict, verdict,
            "{} [{}]: {}",
            eval.candidate.source, eval.engine, eval.message
        );
        assert!(
            !serde_json::to_string(eval).unwrap().contains(&secret),
            "{} [{}] shows the inherited file",
            eval.candidate.source,
            eval.engine
        );
    }
    assert!(
        evals[0].message.contains("not found"),
        "{}",
        evals[0].message
    );
}

/// `ANNEVAL_NATIVE_CPU` chooses the CPU native builds are compiled for, in
/// both front ends: a kernel that refuses to compile with AVX compiles and
/// scores for `x86-64-v2` (SSE4.2, 128-bit vectors), is refused for this CPU
/// where it has AVX, and a name no compiler knows is the operator's error,
/// not a candidate's.
#[test]
fn the_native_cpu_chosen_is_the_one_compiled_for() {
    let _serial = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let rust = dir.path().join("no_avx.rs");
    std::fs::write(
        &rust,
        format!(
            "{}\n#[cfg(target_feature = \"avx\")]\ncompile_error!(\"compiled with AVX\");\n",
            anneval::template::reference_kernel()
        ),
    )
    .unwrap();
    let cpp = dir.path().join("no_avx.cpp");
    std::fs::write(
        &cpp,
        format!(
            "#ifdef __AVX__\n#error \"compiled with AVX\"\n#endif\n{}",
            common::cpp_reference_text_with(&[])
        ),
    )
    .unwrap();
    // The verdict and its message, or what the command printed when it
    // wrote no result.
    let score = |kernel: &std::path::Path, cpu: Option<&str>| {
        let json = dir.path().join("score.json");
        let _ = std::fs::remove_file(&json);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_anneval"));
        cmd.arg("score")
            .arg(kernel)
            .args(["--engine", "native", "--ef", "10", "--runs", "1"])
            .args(["--max-queries", "50", "--no-fuel", "-q", "--json"])
            .arg(&json)
            .env("ANNEVAL_CACHE", common::cache_dir())
            .env_remove("ANNEVAL_NATIVE_CPU");
        if let Some(cpu) = cpu {
            cmd.env("ANNEVAL_NATIVE_CPU", cpu);
        }
        let out = cmd.output().unwrap();
        match std::fs::read(&json) {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                format!("{} {}", v["verdict"].as_str().unwrap(), v["message"])
            }
            Err(_) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    };
    let has_avx = std::arch::is_x86_feature_detected!("avx");
    for kernel in [&rust, &cpp] {
        let out = score(kernel, Some("x86-64-v2"));
        assert!(out.starts_with("ok "), "{}: {out}", kernel.display());
        if has_avx {
            let out = score(kernel, None);
            assert!(
                out.starts_with("compile_error") && out.contains("compiled with AVX"),
                "{}: {out}",
                kernel.display()
            );
        }
    }
    let out = score(&rust, Some("pentium-9000"));
    assert!(
        out.starts_with("internal_error")
            && out.contains("ANNEVAL_NATIVE_CPU")
            && out.contains("pentium-9000"),
        "{out}"
    );
}
