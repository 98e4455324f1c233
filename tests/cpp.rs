//! C and C++ candidates: the references on both engines, x86 intrinsics
//! through the translation layer at the SDK's cost, the WASI calls a C++
//! kernel can make answered with nothing, and hostile C++ at compile and run
//! time, each with its exact verdict, its message kept, and no canary or
//! host path in anything reported.

mod common;

use std::time::Duration;

use anneval::compile::{CompileLimits, Language};
use anneval::evaluator::{Engine, Quiet};
use anneval::measure::sweep::Sweep;
use anneval::{Candidate, Evaluation, Evaluator, ScoreOptions, Verdict};
use common::{cpp_reference_with, source_in};

fn opts(efs: Vec<usize>) -> ScoreOptions {
    ScoreOptions {
        sweep: Sweep::Efs(efs),
        runs: 1,
        ..ScoreOptions::default()
    }
}

fn reference(language: Language) -> Candidate {
    Candidate::from_arg(std::path::Path::new(&format!("reference-{language}"))).unwrap()
}

fn cpp(origin: &str, text: impl Into<String>) -> Candidate {
    source_in(Language::Cpp, origin, text)
}

fn assert_ok(eval: &Evaluation) {
    assert_eq!(
        eval.verdict,
        Verdict::Ok,
        "{}: {}",
        eval.candidate.source,
        eval.message
    );
}

#[test]
fn the_c_and_cpp_references_find_neighbours_on_both_engines() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let entries = [
        (Candidate::Reference, Engine::Wasm),
        (reference(Language::Cpp), Engine::Wasm),
        (reference(Language::Cpp), Engine::Native),
        (reference(Language::C), Engine::Wasm),
        (reference(Language::C), Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![4, 16, 64]), &Quiet);
    for eval in &evals {
        assert_ok(eval);
        assert!(eval.max_recall.unwrap() > 0.99, "{}", eval.candidate.source);
    }
    assert_eq!(evals[1].candidate.kind, "cpp");
    assert_eq!(evals[3].candidate.kind, "c");
    // Every timed pass ran on an index restored from the saved bytes, on
    // both engines; wasm and native agree on what those bytes answer.
    for (wasm, native) in [(&evals[1], &evals[2]), (&evals[3], &evals[4])] {
        for (w, n) in wasm.curve.iter().zip(&native.curve) {
            assert!(
                (w.recall - n.recall).abs() <= 0.01,
                "{} ef {}: wasm {} native {}",
                wasm.candidate.source,
                w.ef,
                w.recall,
                n.recall
            );
        }
    }
    // The C++ reference is the Rust reference's algorithm: the same work per
    // query, within the difference of two compilers.
    let fuel = |e: &Evaluation| e.curve[1].fuel_per_query.unwrap();
    let ratio = fuel(&evals[1]) / fuel(&evals[0]);
    assert!(
        (0.7..1.3).contains(&ratio),
        "C++/Rust instructions per query {ratio:.2}"
    );
}

/// GLASS-style distances: AVX2 loads and fused multiply-adds on 8 lanes.
const X86_DISTANCES: &str = include_str!("kernels/x86_distances.inc");

const SDK_DISTANCE: &str = "return anneval::distance(metric, query, vector(id), stride);";
const X86_DISTANCE: &str = "return metric == anneval::Metric::Angular ? 1.0f - ip_avx2(query, vector(id), stride) : l2_avx2(query, vector(id), stride);";
const HEADER: &str = "#include \"anneval.hpp\"\n";

/// The C++ reference with its distances written in x86 intrinsics; with
/// `exact_fma`, SIMDe's own fused multiply-add (exact, lane by lane) instead
/// of the translation layer's multiply-then-add.
fn x86_kernel(exact_fma: bool) -> Candidate {
    let (prefix, origin) = if exact_fma {
        (
            "#include <immintrin.h>\n#undef _mm256_fmadd_ps\n#define _mm256_fmadd_ps simde_mm256_fmadd_ps\n",
            "x86 intrinsics, SIMDe's exact FMA",
        )
    } else {
        ("", "x86 intrinsics")
    };
    cpp_reference_with(
        origin,
        &[
            (HEADER, &format!("{HEADER}{prefix}{X86_DISTANCES}")),
            (SDK_DISTANCE, X86_DISTANCE),
        ],
    )
}

#[test]
fn x86_intrinsics_build_for_the_sandbox_at_the_sdks_cost() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let entries = [
        (reference(Language::Cpp), Engine::Wasm),
        (x86_kernel(false), Engine::Wasm),
        (x86_kernel(true), Engine::Wasm),
        (x86_kernel(false), Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![16, 64]), &Quiet);
    for eval in &evals {
        assert_ok(eval);
        assert!(eval.max_recall.unwrap() > 0.99, "{}", eval.candidate.source);
    }
    // Instructions per query are exact: the translated intrinsics cost what
    // the SDK's simd128 costs, and the layer is what makes them so.
    let fuel = |e: &Evaluation| e.curve[1].fuel_per_query.unwrap();
    let translated = fuel(&evals[1]) / fuel(&evals[0]);
    let exact = fuel(&evals[2]) / fuel(&evals[0]);
    assert!(
        translated < 1.2,
        "x86 intrinsics cost {translated:.2}x the SDK's instructions"
    );
    assert!(
        exact > 2.0,
        "SIMDe's exact FMA costs only {exact:.2}x: the test no longer shows the layer matters"
    );
}

#[test]
fn an_intrinsic_without_a_fast_sandbox_form_is_a_compile_error_that_names_it() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let kernel = skeleton(
        "truncating half conversion",
        "#include <immintrin.h>",
        "volatile __m128i h = _mm_cvtps_ph(_mm_set1_ps(1.7f), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);\n    (void)h;",
    );
    let eval = evaluator
        .evaluate_entries(&[(kernel, Engine::Wasm)], data, &common::quick(), &Quiet)
        .remove(0);
    assert_eq!(eval.verdict, Verdict::CompileError, "{}", eval.message);
    assert!(
        eval.message.contains("rounds to nearest only"),
        "{}",
        eval.message
    );
}

#[test]
fn wasi_calls_of_a_cpp_kernel_are_answered_with_nothing() {
    let (canary, secret) = common::canary();
    let evaluator = common::evaluator();
    let probe = common::cpp_wasi_probe(&canary);
    let first = common::score(&evaluator, &cpp("probe", probe.clone()), &common::quick());
    let second = common::score(&evaluator, &cpp("probe again", probe), &common::quick());
    assert_eq!(first.verdict, Verdict::Ok, "{}", first.message);
    let said = &first.log[0];
    assert!(said.starts_with(common::PROBE_FINDS_NOTHING), "{said}");
    assert_eq!(
        said, &second.log[0],
        "randomness is seeded: the same on every run"
    );
    let json = serde_json::to_string(&first).unwrap();
    assert!(!json.contains(&secret));
    // A hundred thousand lines of stdout end in the bounded log.
    assert!(
        first.log[1].starts_with("flooding stdout 0"),
        "{:?}",
        &first.log[..2]
    );
    assert!(
        first.log.len() < 10_000,
        "{} log lines kept",
        first.log.len()
    );
}

struct Case {
    name: &'static str,
    candidate: Candidate,
    verdict: Verdict,
    says: &'static str,
}

fn run_cases(evaluator: &Evaluator, cases: Vec<Case>, engine: Engine, secret: &str) {
    let cache = common::cache_dir().display().to_string();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let data = common::xs20("random-xs-20-euclidean");
    let mut failures = Vec::new();
    for case in cases {
        let eval = evaluator
            .evaluate_entries(&[(case.candidate, engine)], data, &common::quick(), &Quiet)
            .remove(0);
        println!("| {} | {} | {} |", case.name, engine.as_str(), eval.verdict);
        let json = serde_json::to_string(&eval).unwrap();
        let mut problems = Vec::new();
        if eval.verdict != case.verdict {
            problems.push(format!("verdict {} (want {})", eval.verdict, case.verdict));
        }
        if !eval.message.contains(case.says) {
            problems.push(format!("message lacks {:?}", case.says));
        }
        if json.contains(secret) {
            problems.push("the canary's secret appears in the result".into());
        }
        for path in [cache.as_str(), &format!("{home}/"), "/usr/include/x86_64"] {
            if eval.message.contains(path) {
                problems.push(format!("the host path {path} appears in the message"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} [{}]: {}\n  message: {}",
                case.name,
                engine.as_str(),
                problems.join("; "),
                eval.message
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A C++ kernel that answers nothing useful, with `code` run at the start of
/// `build` and `items` at file scope.
fn skeleton(name: &str, items: &str, code: &str) -> Candidate {
    cpp(
        name,
        format!(
            r#"#include "anneval.hpp"
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>
{items}
struct Index {{
  static std::unique_ptr<Index> build(const float*, size_t, size_t, anneval::Metric,
                                      const anneval::Params&) {{
    {code}
    return std::make_unique<Index>();
  }}
  void save(anneval::ByteWriter& w) const {{ w.u32(1); }}
  static std::unique_ptr<Index> load(anneval::ByteReader& r) {{
    r.u32();
    return std::make_unique<Index>();
  }}
  void search(const float*, size_t k, size_t, std::vector<uint32_t>& out) {{
    for (size_t i = 0; i < k; i++) out.push_back(uint32_t(i));
  }}
}};
"#
        ),
    )
}

#[test]
fn hostile_cpp_at_compile_time() {
    let (canary, secret) = common::canary();
    let canary = canary.display().to_string();
    let compile = CompileLimits {
        timeout: Duration::from_secs(40),
        cpu_seconds: 40,
        ..CompileLimits::default()
    };
    let unfiltered = CompileLimits {
        check_source: false,
        ..compile.clone()
    };
    let filtered = common::evaluator_compiling_with(common::limits(), compile);
    let jail_only = common::evaluator_compiling_with(common::limits(), unfiltered);
    let leak = |name: &'static str, items: String| skeleton(name, &items, "");
    let (r, ce) = (Verdict::Rejected, Verdict::CompileError);
    let policy = vec![
        Case {
            name: "include of a host header by path",
            candidate: leak("host header", "#include \"/usr/include/stdio.h\"".into()),
            verdict: r,
            says: "`#include \"/usr/include/stdio.h\"` is not allowed",
        },
        Case {
            name: "include of the canary",
            candidate: leak("canary", format!("#include \"{canary}\"")),
            verdict: r,
            says: "is not allowed: a kernel includes the SDK",
        },
        Case {
            name: "inline assembly",
            candidate: skeleton("asm", "", "asm volatile(\"nop\");"),
            verdict: r,
            says: "`asm` is not allowed",
        },
        Case {
            name: "an import of its own",
            candidate: leak(
                "import",
                "__attribute__((import_module(\"env\"), import_name(\"peek\"))) int peek();".into(),
            ),
            verdict: r,
            says: "`import_module` is not allowed",
        },
        Case {
            name: "replacing the WASI answers",
            candidate: leak(
                "wasi",
                "extern \"C\" int __imported_wasi_snapshot_preview1_sched_yield() { return 1; }"
                    .into(),
            ),
            verdict: r,
            says: "`__imported_wasi_snapshot_preview1_sched_yield` is not allowed",
        },
    ];
    run_cases(&filtered, policy, Engine::Wasm, &secret);
    // With the filter off the jail alone must hold: nothing of the host can
    // be included, and the component refuses an import it does not know.
    let jail = vec![
        Case {
            name: "host header, unfiltered",
            candidate: leak("host header", "#include \"/usr/include/stdio.h\"".into()),
            verdict: ce,
            says: "'/usr/include/stdio.h' file not found",
        },
        Case {
            name: "system header of the host, unfiltered",
            candidate: leak("host system header", "#include <linux/fs.h>".into()),
            verdict: ce,
            says: "file not found",
        },
        Case {
            name: "canary, unfiltered",
            candidate: leak("canary", format!("#include \"{canary}\"")),
            verdict: ce,
            says: "file not found",
        },
        Case {
            name: "computed include of the canary, unfiltered",
            candidate: leak("computed", format!("#define F \"{canary}\"\n#include F")),
            verdict: ce,
            says: "file not found",
        },
        Case {
            name: "an import of its own, unfiltered",
            candidate: skeleton(
                "import",
                "__attribute__((import_module(\"env\"), import_name(\"peek\"))) int peek();",
                "anneval::check(peek() == 0, \"peeked\");",
            ),
            verdict: r,
            says: "does not fit the kernel world",
        },
        Case {
            name: "deep template recursion",
            candidate: leak(
                "template bomb",
                "template <int N> struct Deep { static constexpr int v = Deep<N + 1>::v; };\nint deep = Deep<0>::v;".into(),
            ),
            verdict: ce,
            says: "recursive template instantiation exceeded maximum depth",
        },
        Case {
            name: "endless constant evaluation",
            candidate: leak(
                "constexpr bomb",
                "constexpr long long spin() { long long s = 0; for (long long i = 0; i < (1LL << 40); i++) s += i; return s; }\nstatic_assert(spin() != 1, \"\");".into(),
            ),
            verdict: ce,
            says: "constexpr evaluation hit maximum step limit",
        },
        Case {
            name: "a quarter-gigabyte static",
            candidate: leak("big static", "static char big[1 << 28] = {1};\nchar* keep = big;".into()),
            verdict: ce,
            says: "",
        },
    ];
    run_cases(&jail_only, jail, Engine::Wasm, &secret);
}

#[test]
fn hostile_cpp_at_run_time() {
    let _serial = common::one_at_a_time();
    let (_, secret) = common::canary();
    let evaluator = common::evaluator();
    let cases = |engine: Engine| {
        let case = |name, code: &str, verdict, says| Case {
            name,
            candidate: skeleton(
                name,
                "static int depth(int n) { volatile int a[64]; a[0] = n; return n == 0 ? 0 : depth(n + 1) + a[0]; }",
                code,
            ),
            verdict,
            says,
        };
        let t = Verdict::Trap;
        let mut all = vec![
            case(
                "anneval::fail",
                "anneval::fail(\"the graph is empty\");",
                t,
                "kernel failed: the graph is empty",
            ),
            case(
                "exit",
                "exit(3);",
                t,
                if engine == Engine::Wasm {
                    "kernel failed: called exit(3)"
                } else {
                    "exited with exit status: 3"
                },
            ),
            case(
                "abort",
                "fprintf(stderr, \"giving up\\n\"); abort();",
                t,
                "giving up",
            ),
            case(
                "out-of-bounds write",
                "fprintf(stderr, \"writing far away\\n\"); *(volatile int*)uintptr_t(0xfffffff0u) = 1;",
                t,
                "writing far away",
            ),
            case(
                "stack overflow",
                "depth(1);",
                t,
                if engine == Engine::Wasm {
                    "stack overflow"
                } else {
                    "signal 11"
                },
            ),
            case(
                "memory exhaustion",
                "std::vector<std::vector<char>> hoard; for (;;) hoard.emplace_back(size_t(1) << 20, 'x');",
                Verdict::MemoryLimit,
                "",
            ),
        ];
        if engine == Engine::Wasm {
            all.push(case(
                "throw",
                "throw std::runtime_error(\"no graph today\");",
                t,
                "kernel failed: threw std::runtime_error: no graph today (C++ exceptions cannot be caught in the sandbox",
            ));
            all.push(case(
                "throw of a non-standard type",
                "struct Oops {}; throw Oops{};",
                t,
                "kernel failed: threw Index::build",
            ));
        } else {
            all.push(case(
                "throw",
                "throw std::runtime_error(\"no graph today\");",
                t,
                "no graph today",
            ));
        }
        all
    };
    run_cases(&evaluator, cases(Engine::Wasm), Engine::Wasm, &secret);
    run_cases(&evaluator, cases(Engine::Native), Engine::Native, &secret);
}

/// A copy of the bundle tests/corpus/hnswlib_style with `file` edited.
fn hnswlib_bundle_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let from = common::repo_root().join("tests/corpus/hnswlib_style");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "kernel.cpp",
        "hnswlib/hnswlib.h",
        "hnswlib/space_l2.h",
        "hnswlib/visited_list.h",
    ] {
        let text = std::fs::read_to_string(from.join(name)).unwrap();
        let text = if name == file { edit(&text) } else { text };
        std::fs::create_dir_all(dir.path().join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_bundle_of_headers_scores_on_both_engines_and_its_errors_name_their_file() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let bundle =
        Candidate::from_arg(&common::repo_root().join("tests/corpus/hnswlib_style")).unwrap();
    let entries = [(bundle.clone(), Engine::Wasm), (bundle, Engine::Native)];
    for eval in evaluator.evaluate_entries(&entries, data, &opts(vec![16, 64]), &Quiet) {
        assert_ok(&eval);
        assert_eq!(eval.candidate.kind, "cpp");
        assert!(eval.max_recall.unwrap() > 0.95, "{}", eval.message);
    }
    // A header's mistakes are reported at that header's own line.
    let cases = [
        (
            "hnswlib/space_l2.h",
            Verdict::CompileError,
            "hnswlib/space_l2.h:9",
        ),
        (
            "hnswlib/visited_list.h",
            Verdict::Rejected,
            "hnswlib/visited_list.h line 9: `asm`",
        ),
    ];
    for (file, verdict, said) in cases {
        let broken = hnswlib_bundle_with(file, |text| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            lines.insert(
                8,
                if verdict == Verdict::Rejected {
                    "void f() { asm(\"nop\"); } int f_called = (f(), 0);"
                } else {
                    "int broken("
                }
                .into(),
            );
            lines.join("\n") + "\n"
        });
        let candidate = Candidate::from_arg(broken.path()).unwrap();
        let eval = common::score(&evaluator, &candidate, &common::quick());
        assert_eq!(eval.verdict, verdict, "{file}: {}", eval.message);
        assert!(
            eval.message.contains(said),
            "{file}: want {said:?} in {}",
            eval.message
        );
    }
    // An include that leaves the bundle is refused, as in a single file.
    let escapes = hnswlib_bundle_with("hnswlib/hnswlib.h", |text| {
        format!("#include \"../../secret.h\"\n{text}")
    });
    let eval = common::score(
        &evaluator,
        &Candidate::from_arg(escapes.path()).unwrap(),
        &common::quick(),
    );
    assert_eq!(eval.verdict, Verdict::Rejected, "{}", eval.message);
    assert!(
        eval.message.contains("hnswlib/hnswlib.h line 1"),
        "{}",
        eval.message
    );
}

/// Inline assembly is judged on what each engine compiles: `asm` in a
/// branch the sandbox never compiles scores there and is refused natively,
/// where it is compiled; `asm` in `#if 0` passes both; `asm` a macro pastes
/// together is refused on both. Each refusal names its line or, with none to
/// name, the function.
#[test]
fn inline_assembly_is_judged_on_what_each_engine_compiles() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let reference = anneval::template::reference_cpp_kernel();
    let with = |name: &str, prefix: &str| cpp(name, format!("{prefix}\n{reference}"));
    let x86_only = with(
        "x86_only.cpp",
        "#include <cstdint>\n#ifdef __x86_64__\nstatic inline void relax() { __asm__ volatile(\"pause\"); }\n\
         #else\nstatic inline void relax() {}\n#endif\nstatic int relaxed = (relax(), 0);",
    );
    let never = with(
        "never.cpp",
        "#if 0\nasm(\"int $0x80\");\n#endif\nvoid g() {\n#ifdef ANNEVAL_NEVER\n  __asm__(\"ud2\");\n#endif\n}",
    );
    let pasted = with(
        "pasted.cpp",
        "#define CAT(a, b) a##b\nvoid relax() { CAT(__as, m__) volatile(\"nop\"); }",
    );
    let entries = [
        (x86_only.clone(), Engine::Wasm),
        (x86_only, Engine::Native),
        (never.clone(), Engine::Wasm),
        (never, Engine::Native),
        (pasted.clone(), Engine::Wasm),
        (pasted, Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &common::quick(), &Quiet);
    let verdicts: Vec<Verdict> = evals.iter().map(|e| e.verdict).collect();
    use Verdict::{Ok, Rejected};
    assert_eq!(
        verdicts,
        [Ok, Rejected, Ok, Ok, Rejected, Rejected],
        "{:#?}",
        evals.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
    assert!(
        evals[1].message.starts_with(
            "kernel.cpp line 3: `__asm__` is not allowed: kernels do not use inline assembly"
        ) && evals[1]
            .message
            .contains("\"pause\" is compiled in function `_ZL5relaxv`"),
        "{}",
        evals[1].message
    );
    for eval in &evals[4..] {
        assert!(
            eval.message
                .contains("no line spells `asm`, so a macro makes it"),
            "{}",
            eval.message
        );
    }
}

/// Multi-threaded ANN code as it is written (OpenMP loops, per-thread
/// scratch, `std::mutex`, `std::shared_mutex`) compiles unchanged for both
/// engines and answers alike: with one thread it is exact. What needs a
/// second thread is a compile error that says so.
#[test]
fn openmp_and_lock_code_runs_as_one_thread_on_both_engines() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let kernel = cpp(
        "one_thread_omp.cpp",
        include_str!("kernels/one_thread_omp.cpp"),
    );
    let entries = [(kernel.clone(), Engine::Wasm), (kernel, Engine::Native)];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![10]), &Quiet);
    for eval in &evals {
        assert_ok(eval);
        assert!(eval.max_recall.unwrap() > 0.999, "an exact scan: {eval:?}");
    }
    assert_eq!(evals[0].curve[0].recall, evals[1].curve[0].recall);

    for (name, code, says) in [
        (
            "std::thread",
            "std::thread worker([] {}); worker.join();",
            "std::thread needs a second one",
        ),
        (
            "sleep_for",
            "std::this_thread::sleep_for(std::chrono::milliseconds(1));",
            "sleeping waits for another thread",
        ),
    ] {
        let eval = common::score(
            &evaluator,
            &skeleton(name, "#include <thread>", code),
            &common::quick(),
        );
        assert_eq!(
            eval.verdict,
            Verdict::CompileError,
            "{name}: {}",
            eval.message
        );
        assert!(eval.message.contains(says), "{name}: {}", eval.message);
    }
}

/// C++20 as ANN codebases write it (concepts, `auto` parameters, span,
/// ranges, designated initialisers) compiles by default for both engines,
/// its arena an anonymous mapping advised MADV_HUGEPAGE, and answers alike;
/// a kernel that asks for C++17 is compiled as C++17, and what it may ask
/// for is a short list.
#[test]
fn cxx20_is_the_default_and_a_kernel_chooses_its_standard() {
    let _serial = common::one_at_a_time();
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let source = include_str!("kernels/cxx20_flat.cpp");
    let kernel = cpp("cxx20_flat.cpp", source);
    let entries = [(kernel.clone(), Engine::Wasm), (kernel, Engine::Native)];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![10]), &Quiet);
    for eval in &evals {
        assert_ok(eval);
        assert!(eval.max_recall.unwrap() > 0.999, "an exact scan: {eval:?}");
    }
    assert_eq!(evals[0].curve[0].recall, evals[1].curve[0].recall);

    let as_17 = common::score(
        &evaluator,
        &cpp("cxx17.cpp", format!("// anneval: std=c++17\n{source}")),
        &common::quick(),
    );
    assert_eq!(as_17.verdict, Verdict::CompileError, "{}", as_17.message);
    assert!(as_17.message.contains("concept"), "{}", as_17.message);

    let c11 = common::score(
        &evaluator,
        &source_in(
            Language::C,
            "c11.c",
            format!(
                "// anneval: std=c11\n{}",
                anneval::template::reference_c_kernel()
            ),
        ),
        &common::quick(),
    );
    assert_ok(&c11);

    for (name, text, says) in [
        (
            "c++23.cpp",
            format!("// anneval: std=c++23\n{source}"),
            "gnu++20, c++20, gnu++17, c++17",
        ),
        (
            "header_unit.cpp",
            source.replace("#include <span>", "import <span>;"),
            "header unit",
        ),
    ] {
        let eval = common::score(&evaluator, &cpp(name, text), &common::quick());
        assert_eq!(eval.verdict, Verdict::Rejected, "{name}: {}", eval.message);
        assert!(eval.message.contains(says), "{name}: {}", eval.message);
    }
}

fn flatscan() -> std::path::PathBuf {
    common::repo_root().join("tests/templates/flatscan")
}

/// The changed module of `tests/templates/flatscan-sdk`: the distance with
/// the SDK's vector code.
fn sdk_distance() -> std::collections::BTreeMap<String, String> {
    let path = "flatscan/distance.hpp";
    let text = std::fs::read_to_string(
        common::repo_root()
            .join("tests/templates/flatscan-sdk")
            .join(path),
    )
    .unwrap();
    std::collections::BTreeMap::from([(path.to_string(), text)])
}

/// A team's codebase as the template: its own code is the reference, a
/// candidate is the module it rewrites, and both score on both engines and
/// find the same neighbours (an exact scan either way). What the manifest
/// does not let a candidate touch is refused by its file.
#[test]
fn a_codebase_template_scores_its_reference_and_a_changed_module_on_both_engines() {
    use anneval::codebase::Codebase;
    let _serial = common::one_at_a_time();
    let codebase = Codebase::load(&flatscan()).unwrap();
    let reference = codebase.reference();
    let changed = codebase.candidate(sdk_distance(), 1 << 20).unwrap();
    assert_eq!(reference.origin(), "template:flatscan");
    assert!(changed.origin().starts_with("template:flatscan+"));
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");
    let entries = [
        (reference.clone(), Engine::Wasm),
        (changed.clone(), Engine::Wasm),
        (reference, Engine::Native),
        (changed, Engine::Native),
    ];
    let evals = evaluator.evaluate_entries(&entries, data, &opts(vec![10]), &Quiet);
    for eval in &evals {
        assert_ok(eval);
        assert!(eval.max_recall.unwrap() > 0.999, "an exact scan: {eval:?}");
        assert_eq!(eval.curve[0].recall, evals[0].curve[0].recall);
    }

    let text = |path: &str| (path.to_string(), "#pragma once\n".to_string());
    for (change, says) in [
        (
            vec![text("kernel.cpp")],
            "kernel.cpp: template flatscan lets a candidate replace only flatscan/distance.hpp, flatscan/search.hpp",
        ),
        (
            vec![text("flatscan/store.hpp")],
            "flatscan/store.hpp: template flatscan lets a candidate replace only",
        ),
        (
            vec![text("flatscan/extra/deep/x.hpp")],
            "flatscan/extra/deep/x.hpp is not a file of template flatscan, which lets a candidate add only flatscan/extra/*.hpp",
        ),
        (vec![text("../flatscan/distance.hpp")], "no `..`"),
        (vec![text("/etc/passwd.h")], "are relative"),
        (vec![], "changes no file"),
    ] {
        let error = codebase
            .candidate(change.into_iter().collect(), 1 << 20)
            .expect_err(says);
        assert!(error.contains(says), "{says}: {error}");
    }
    // A helper added where the manifest allows, included by a replaced file.
    let mut added = sdk_distance();
    added.insert(
        "flatscan/extra/unroll.hpp".into(),
        "#pragma once\nconstexpr int UNROLL = 4;\n".into(),
    );
    let search = std::fs::read_to_string(flatscan().join("flatscan/search.hpp")).unwrap();
    added.insert(
        "flatscan/search.hpp".into(),
        search.replace(
            "#include \"store.hpp\"",
            "#include \"store.hpp\"\n#include \"extra/unroll.hpp\"\nstatic_assert(UNROLL == 4);",
        ),
    );
    let Candidate::Source { text, .. } = codebase.candidate(added, 1 << 20).unwrap() else {
        panic!("a source candidate");
    };
    assert!(text.contains("constexpr int UNROLL = 4;"), "{text}");
    // The manifest's standard is the template's: a candidate's own differs.
    let mut other_std = sdk_distance();
    other_std
        .values_mut()
        .for_each(|t| t.insert_str(0, "// anneval: std=c++17\n"));
    let eval = common::score(
        &evaluator,
        &codebase.candidate(other_std, 1 << 20).unwrap(),
        &common::quick(),
    );
    assert_eq!(eval.verdict, Verdict::Rejected, "{}", eval.message);
    assert!(eval.message.contains("differs"), "{}", eval.message);
}

/// A manifest that is wrong says what is wrong and where.
#[test]
fn a_wrong_template_manifest_is_refused_with_its_reason() {
    use anneval::codebase::Codebase;
    let kernel = std::fs::read_to_string(flatscan().join("kernel.cpp")).unwrap();
    for (manifest, says) in [
        (None, "a template is a folder with an anneval.toml manifest"),
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\nreplace = [\"kernel.cpp\"]\nowner = \"me\"\n"),
            "unknown field `owner`",
        ),
        (
            Some("name = \"x\"\nlanguage = \"rust\"\nreplace = [\"kernel.cpp\"]\n"),
            "a template's language is cpp or c",
        ),
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\n"),
            "lists no file a candidate may replace or add",
        ),
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\nstd = \"c++98\"\nreplace = [\"kernel.cpp\"]\n"),
            "std=c++98 is not a standard a C++ kernel may choose",
        ),
        (
            Some("name = \"x\"\nlanguage = \"c\"\nreplace = [\"kernel.cpp\"]\n"),
            "says language = c, but the codebase's entry is a cpp kernel",
        ),
        (
            Some("name = \"a b\"\nlanguage = \"cpp\"\nreplace = [\"kernel.cpp\"]\n"),
            "must be letters, digits",
        ),
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\nreplace = [\"[\"]\n"),
            "replace: \"[\" is not a glob",
        ),
        (
            Some(
                "name = \"x\"\nlanguage = \"cpp\"\nstd = \"c++20\\nint x;\"\nreplace = [\"kernel.cpp\"]\n",
            ),
            "std = \"c++20\\nint x;\" is not one of gnu++20, c++20, gnu++17, c++17",
        ),
        // The codebase itself must pass what every compile checks.
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\nreplace = [\"kernel.cpp\"]\n#import\n"),
            "kernel.cpp line 1: `import_module`",
        ),
        (
            Some("name = \"x\"\nlanguage = \"cpp\"\nreplace = [\"kernel.cpp\"]\n#note\n"),
            "is not a directive anneval knows",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let kernel = match manifest {
            Some(m) if m.ends_with("#import\n") => {
                format!("__attribute__((import_module(\"env\"))) void peek();\n{kernel}")
            }
            Some(m) if m.ends_with("#note\n") => format!("// anneval: note\n{kernel}"),
            _ => kernel.clone(),
        };
        std::fs::write(dir.path().join("kernel.cpp"), &kernel).unwrap();
        std::fs::create_dir(dir.path().join("flatscan")).unwrap();
        for header in ["store.hpp", "distance.hpp", "search.hpp"] {
            std::fs::copy(
                flatscan().join("flatscan").join(header),
                dir.path().join("flatscan").join(header),
            )
            .unwrap();
        }
        if let Some(manifest) = manifest {
            std::fs::write(dir.path().join("anneval.toml"), manifest).unwrap();
        }
        let error = format!("{:#}", Codebase::load(dir.path()).expect_err(says));
        assert!(error.contains(says), "{says}: {error}");
    }
}
