//! Hostile candidates, compile-time and run-time: each must end in its exact
//! verdict, within its time, saying why, without ever showing a host secret
//! (a canary file) or a host path, and the host must score an honest kernel
//! identically afterwards.
//!
//! Run with `--nocapture` to print the table of case, verdict and time.

mod common;

use std::time::{Duration, Instant};

use anneval::compile::CompileLimits;
use anneval::evaluator::{Engine, Quiet};
use anneval::measure::sweep::Sweep;
use anneval::sandbox::Limits;
use anneval::{Candidate, Evaluation, Evaluator, ScoreOptions, Verdict};
use common::{hooked, quick, source, wat_component};

struct Case {
    name: &'static str,
    candidate: Candidate,
    verdict: Verdict,
    /// A piece of the message the verdict must carry.
    says: &'static str,
    /// Seconds the case may take once compiled.
    within: f64,
}

fn case(name: &'static str, candidate: Candidate, verdict: Verdict, says: &'static str) -> Case {
    Case {
        name,
        candidate,
        verdict,
        says,
        within: 6.0,
    }
}

/// Runs every case, then fails listing every case that went wrong.
fn run_cases(evaluator: &Evaluator, cases: Vec<Case>, secret: &str) {
    let cache = common::cache_dir().display().to_string();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut failures = Vec::new();
    println!("| case | verdict | seconds |\n|---|---|---|");
    for case in cases {
        let start = Instant::now();
        let eval = common::score(evaluator, &case.candidate, &quick());
        let seconds = start.elapsed().as_secs_f64();
        let after_compile = common::run_seconds(&eval);
        println!("| {} | {} | {seconds:.2} |", case.name, eval.verdict);
        let json = serde_json::to_string(&eval).unwrap();
        let mut problems = Vec::new();
        if eval.verdict != case.verdict {
            problems.push(format!("verdict {} (want {})", eval.verdict, case.verdict));
        }
        if !eval.message.contains(case.says) {
            problems.push(format!("message lacks {:?}", case.says));
        }
        if after_compile > case.within {
            problems.push(format!(
                "took {after_compile:.1} s after compiling (limit {})",
                case.within
            ));
        }
        if json.contains(secret) {
            problems.push("the canary's secret appears in the result".into());
        }
        if eval.message.contains(&cache) || eval.message.contains(&format!("{home}/")) {
            problems.push("a host path appears in the message".into());
        }
        if eval.verdict != Verdict::Ok && eval.reward != 0.0 {
            problems.push("a failed candidate earned a reward".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  message: {}",
                case.name,
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

fn honest(evaluator: &Evaluator) -> Evaluation {
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![10]),
        runs: 1,
        ..ScoreOptions::default()
    };
    let eval = common::score(evaluator, &hooked(&[]), &opts);
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    eval
}

fn assert_healthy(evaluator: &Evaluator, before: &Evaluation) {
    let after = honest(evaluator);
    assert_eq!(after.curve[0].recall, before.curve[0].recall);
    assert_eq!(
        after.curve[0].fuel_per_query,
        before.curve[0].fuel_per_query
    );
}

#[test]
fn compile_time_attacks() {
    let (canary, secret) = common::canary();
    let canary = canary.display().to_string();
    // Long enough for a gigabyte static to exhaust the compiler's memory
    // (the end it must meet) even with other tests running alongside.
    let compile = CompileLimits {
        timeout: Duration::from_secs(40),
        cpu_seconds: 40,
        ..CompileLimits::default()
    };
    let evaluator = common::evaluator_compiling_with(common::limits(), compile.clone());
    let before = honest(&evaluator);
    let item = |code: String| hooked(&[("items", Box::leak(code.into_boxed_str()))]);
    // A compile that is stopped counts from the start.
    let within_compile = |mut c: Case| {
        c.within = compile.timeout.as_secs_f64() + 3.0;
        c
    };
    let r = Verdict::Rejected;
    let cases = vec![
        case("include_str! of a host file", item(format!("pub const S: &str = include_str!({canary:?});")), r, "line"),
        case("include_bytes!", item("pub const B: &[u8] = include_bytes!(\"/etc/shadow\");".into()), r, "`include_bytes!` is not allowed"),
        case("include!", item("include!(\"/etc/passwd\");".into()), r, "`include!`"),
        case("env!", item("pub const H: &str = env!(\"HOME\");".into()), r, "`env!`"),
        case("option_env!", item("pub const P: Option<&str> = option_env!(\"PATH\");".into()), r, "`option_env!`"),
        case("#[path] module", item("#[path = \"/etc/passwd\"]\nmod stolen;".into()), r, "`#[path]`"),
        case("#![feature]", source("feature", "#![feature(core_intrinsics)]\n"), r, "`#![feature]`"),
        case("extern crate", item("extern crate alloc as a;".into()), r, "`extern crate`"),
        case("#![recursion_limit]", source("limit", "#![recursion_limit = \"100000\"]\n"), r, "`#![recursion_limit]`"),
        case("inline asm", hooked(&[("search", "unsafe { core::arch::asm!(\"nop\") }")]), r, "`asm!`"),
        case("#[no_mangle] export", item("#[unsafe(no_mangle)]\npub extern \"C\" fn cabi_realloc() {}".into()), r, "`#[no_mangle]`"),
        case("extern block import", item("unsafe extern \"C\" { fn fd_write(fd: i32) -> i32; }".into()), r, "`extern`"),
        case("std::fs", hooked(&[("build", "let _ = std::fs::read_to_string(\"/etc/passwd\");")]), r, "`std::fs`"),
        case("std::net", hooked(&[("build", "let _ = std::net::TcpStream::connect(\"10.0.0.1:80\");")]), r, "`std::net`"),
        case("std::process", hooked(&[("build", "std::process::exit(0);")]), r, "`std::process`"),
        case("std::time", hooked(&[("search", "let _t = std::time::Instant::now();")]), r, "`std::time`"),
        case(
            "include_str! assembled by a macro",
            item(format!("macro_rules! read {{ ($m:ident) => {{ $m!({canary:?}) }} }}\npub const S: &str = read!(include_str);")),
            r,
            "`include_str`",
        ),
        case("out-of-line module", item("mod elsewhere;".into()), r, "`mod elsewhere;`"),
        case("source over 1 MiB", item(format!("// {}", "x".repeat(1 << 20))), r, "limit is"),
        case("syntax error", hooked(&[("search", "let x = ;")]), Verdict::CompileError, "src/kernel.rs:"),
        case("type error", hooked(&[("search", "let x: u32 = \"text\";")]), Verdict::CompileError, "mismatched types"),
        case(
            "endless constant evaluation",
            item("pub const SPIN: u64 = { let mut i = 0u64; loop { i = i.wrapping_add(1); if i == 0 { break i; } } };".into()),
            Verdict::CompileError,
            "",
        ),
        within_compile(case(
            "gigabyte static",
            hooked(&[
                ("items", "static HUGE: [u8; 1 << 30] = [7u8; 1 << 30];"),
                ("search", "std::hint::black_box(HUGE[std::hint::black_box(k) << 20]);"),
            ]),
            Verdict::CompileError,
            "out of memory",
        )),
    ];
    run_cases(&evaluator, cases, &secret);
    assert_healthy(&evaluator, &before);

    // A compile that never ends meets the wall-clock deadline.
    let deadline = CompileLimits {
        timeout: Duration::from_secs(5),
        cpu_seconds: 5,
        ..CompileLimits::default()
    };
    let bombed = common::evaluator_compiling_with(common::limits(), deadline.clone());
    let bomb = case(
        "macro expansion bomb",
        item("macro_rules! b { () => {}; ($x:tt $($r:tt)*) => { b!($($r)*); b!($($r)*); }; }\nfn boom() { b!(a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a); }".into()),
        Verdict::Timeout,
        "did not finish within 5 s",
    );
    run_cases(
        &bombed,
        vec![Case {
            within: deadline.timeout.as_secs_f64() + 3.0,
            ..bomb
        }],
        &secret,
    );

    // With the source filter off, the OS sandbox alone keeps host files and
    // the environment out of reach.
    let unfiltered = common::evaluator_compiling_with(
        common::limits(),
        CompileLimits {
            check_source: false,
            ..deadline
        },
    );
    let c = Verdict::CompileError;
    let cases = vec![
        case(
            "sandbox: include_str! of the canary",
            item(format!("pub const S: &str = include_str!({canary:?});")),
            c,
            "No such file",
        ),
        case(
            "sandbox: macro-built include_str! of the canary",
            item(format!(
                "macro_rules! read {{ ($m:ident) => {{ $m!({canary:?}) }} }}\npub const S: &str = read!(include_str);"
            )),
            c,
            "No such file",
        ),
        case(
            "sandbox: home directory",
            item("pub const S: &[u8] = include_bytes!(\"/root/.bashrc\");".into()),
            c,
            "No such file",
        ),
        case(
            "sandbox: env!(HOME)",
            item("pub const H: &str = env!(\"HOME\");".into()),
            c,
            "not defined",
        ),
        case(
            "sandbox: #[path] to /etc",
            item("#[path = \"/etc/passwd\"]\nmod stolen;".into()),
            c,
            "",
        ),
        case(
            "sandbox: an import outside the world",
            hooked(&[
                (
                    "items",
                    "#[link(wasm_import_module = \"wasi_snapshot_preview1\")]\nunsafe extern \"C\" { fn fd_write(fd: i32) -> i32; }",
                ),
                ("search", "std::hint::black_box(unsafe { fd_write(1) });"),
            ]),
            Verdict::Rejected,
            "",
        ),
    ];
    run_cases(&unfiltered, cases, &secret);
    std::fs::remove_file(&canary).ok();
}

#[test]
fn run_time_attacks() {
    let (_, secret) = common::canary();
    let evaluator = common::evaluator();
    let timeout = evaluator.sandbox().limits().call_timeout.as_secs_f64();
    let before = honest(&evaluator);
    let spin = "let mut n = 0u64; loop { n = std::hint::black_box(n + 1); }";
    let hoard = "let mut hoard: Vec<Vec<u8>> = Vec::new(); loop { hoard.push(vec![1u8; 1 << 20]); std::hint::black_box(&hoard); }";
    let t = Verdict::Timeout;
    let m = Verdict::MemoryLimit;
    let i = Verdict::InvalidOutput;
    let within = |mut c: Case, s: f64| {
        c.within = s;
        c
    };
    let wasm = |name: &str, bytes: Vec<u8>| Candidate::Component {
        origin: name.to_string(),
        bytes,
    };
    let component_header = wat::parse_str("(component)").unwrap();
    let mut oversized = component_header.clone();
    // The size of a component that once took 34 s and 1.45 GB to refuse.
    oversized.resize(56 << 20, 0);
    let cases = vec![
        within(
            case(
                "endless loop in build",
                hooked(&[("build", spin)]),
                t,
                "deadline",
            ),
            10.0 + 3.0,
        ),
        within(
            case(
                "endless loop in load",
                hooked(&[("load", spin)]),
                t,
                "deadline",
            ),
            timeout + 3.0,
        ),
        within(
            case(
                "endless loop in search",
                hooked(&[("search", spin)]),
                t,
                "deadline",
            ),
            timeout + 3.0,
        ),
        case(
            "deep recursion",
            hooked(&[
                (
                    "items",
                    "fn deep(n: u64) -> u64 { if n == 0 { 0 } else { 1 + deep(std::hint::black_box(n - 1)) } }",
                ),
                ("search", "std::hint::black_box(deep(u64::MAX));"),
            ]),
            Verdict::Trap,
            "stack overflow",
        ),
        case(
            "unbounded memory in build",
            hooked(&[("build", hoard)]),
            m,
            "limit is 256 MiB",
        ),
        case(
            "unbounded memory in search",
            hooked(&[("search", hoard)]),
            m,
            "limit is 256 MiB",
        ),
        case(
            "one huge allocation",
            hooked(&[(
                "build",
                "let big: Vec<u8> = Vec::with_capacity(1 << 30); std::hint::black_box(&big);",
            )]),
            m,
            "limit is 256 MiB",
        ),
        case(
            "a gigabyte index",
            hooked(&[]).map_source(|s| {
                s.replace(
                    "w.f32s(&self.data);",
                    "w.f32s(&self.data); w.bytes(&vec![0u8; 1 << 30]);",
                )
            }),
            m,
            "limit is 256 MiB",
        ),
        case(
            "panic in build",
            hooked(&[("build", "panic!(\"no index for you\");")]),
            Verdict::Trap,
            "no index for you",
        ),
        case(
            "panic in search",
            hooked(&[("search", "panic!(\"query of {} floats\", query.len());")]),
            Verdict::Trap,
            "query of 20 floats",
        ),
        case(
            "panic in load",
            hooked(&[("load", "panic!(\"corrupt\");")]),
            Verdict::Trap,
            "corrupt",
        ),
        case(
            "unreachable trap",
            hooked(&[("search", "core::arch::wasm32::unreachable();")]),
            Verdict::Trap,
            "unreachable",
        ),
        case(
            "index out of bounds",
            hooked(&[(
                "search",
                "let v: Vec<u32> = Vec::new(); std::hint::black_box(v[k]);",
            )]),
            Verdict::Trap,
            "index out of bounds",
        ),
        case(
            "duplicate ids",
            hooked(&[("answer", "let first = out[0]; out[1] = first;")]),
            i,
            "more than once",
        ),
        case(
            "ids out of range",
            hooked(&[("answer", "out[3] = 1_000_000;")]),
            i,
            "id 1000000 is out of range",
        ),
        case(
            "negative-looking id",
            hooked(&[("answer", "out[0] = u32::MAX - 1;")]),
            i,
            "out of range",
        ),
        case(
            "too few ids",
            hooked(&[("answer", "out.pop();")]),
            i,
            "9 ids returned, k = 10",
        ),
        case(
            "no ids at all",
            hooked(&[("answer", "out.clear();")]),
            i,
            "0 ids returned, k = 10",
        ),
        case(
            "too many ids",
            hooked(&[("answer", "out.push(0);")]),
            i,
            "search returned 11 ids for k = 10",
        ),
        case(
            "oversized result list",
            hooked(&[(
                "methods",
                "fn search_batch(&self, _q: &[f32], _d: usize, _k: usize, _ef: usize, out: &mut Vec<u32>) -> Result<(), String> { out.resize(6_000_000, 0); Ok(()) }",
            )]),
            i,
            "more data than the call allows",
        ),
        case(
            "short batch",
            hooked(&[(
                "methods",
                "fn search_batch(&self, _q: &[f32], _d: usize, k: usize, _ef: usize, out: &mut Vec<u32>) -> Result<(), String> { out.extend(0..k as u32); Ok(()) }",
            )]),
            i,
            "got 10",
        ),
        case(
            "kernel-reported failure",
            hooked(&[(
                "methods",
                "fn search_batch(&self, _q: &[f32], _d: usize, _k: usize, _ef: usize, _out: &mut Vec<u32>) -> Result<(), String> { Err(\"gave up\".into()) }",
            )]),
            i,
            "gave up",
        ),
        case(
            "log flood",
            hooked(&[(
                "build",
                "for i in 0..200_000 { crate::sdk::log(&format!(\"line {i} {}\", \"x\".repeat(100))); }",
            )]),
            Verdict::Ok,
            "",
        ),
        case(
            "import of a clock",
            wat_component(
                "clock.wat",
                r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance (export "now" (func (result u64))))))"#,
            ),
            Verdict::Rejected,
            "wasi:clocks/wall-clock@0.2.0",
        ),
        case(
            "extra function in the host interface",
            wat_component(
                "extra.wat",
                r#"(component (import "anneval:kernel/host@0.1.0" (instance (export "log" (func (param "message" string))) (export "now" (func (result u64))))))"#,
            ),
            Verdict::Rejected,
            "do not match",
        ),
        case(
            "no exports",
            wasm("empty.wasm", component_header.clone()),
            Verdict::Rejected,
            "does not export",
        ),
        case(
            "core module",
            wat_component("core.wat", "(module (func (export \"build\")))"),
            Verdict::Rejected,
            "core WebAssembly module",
        ),
        case(
            "precompiled .cwasm (ELF)",
            wasm(
                "kernel.cwasm",
                b"\x7fELF\x02\x01\x01\0precompiled machine code".to_vec(),
            ),
            Verdict::Rejected,
            "precompiled",
        ),
        case(
            "garbage after the magic",
            wasm("junk.wasm", b"\0asm\x0d\0\x01\0\xff\xff\xff\xff".to_vec()),
            Verdict::Rejected,
            "not a valid WebAssembly component",
        ),
        within(
            case(
                "component over the size limit",
                wasm("big.wasm", oversized),
                Verdict::Rejected,
                "the limit is",
            ),
            2.0,
        ),
    ];
    run_cases(&evaluator, cases, &secret);
    assert_healthy(&evaluator, &before);
}

/// Edits a Rust candidate's source.
trait CandidateExt {
    fn map_source(self, f: impl FnOnce(String) -> String) -> Candidate;
}

impl CandidateExt for Candidate {
    fn map_source(self, f: impl FnOnce(String) -> String) -> Candidate {
        match self {
            Candidate::Source {
                origin,
                text,
                language,
            } => Candidate::Source {
                origin,
                text: f(text),
                language,
            },
            other => other,
        }
    }
}

#[test]
fn a_precompiled_component_is_never_deserialised() {
    // Even a genuine wasmtime-serialised kernel is refused: only components
    // anneval compiles itself ever run.
    let evaluator = common::evaluator();
    let Candidate::Component { bytes, .. } = wat_component("k.wat", "(component)") else {
        unreachable!()
    };
    let serialised = evaluator
        .sandbox()
        .engine(anneval::sandbox::Metering::Deadline)
        .precompile_component(&bytes)
        .unwrap();
    let eval = evaluator.evaluate(
        &Candidate::Component {
            origin: "kernel.cwasm".into(),
            bytes: serialised,
        },
        common::xs20("random-xs-20-euclidean"),
        &quick(),
        &Quiet,
    );
    assert_eq!(eval.verdict, Verdict::Rejected);
    assert!(eval.message.contains("precompiled"), "{}", eval.message);
}

/// The C++-free way to make the Rust reference `times` slower: its search
/// repeated, answers unchanged.
fn reference_slowed(times: usize) -> Candidate {
    const AT: &str = "        padded[..self.dim].copy_from_slice(query);\n";
    let text = anneval::compile::Language::Rust.reference();
    assert_eq!(text.matches(AT).count(), 1);
    let again = format!(
        "{AT}        for _ in 1..{times} {{\n            let mut cur = Neighbor {{ id: self.entry, dist: self.distance_to(padded, self.entry) }};\n            for level in (1..=self.max_level).rev() {{ cur = self.greedy(padded, cur, level); }}\n            self.search_level(padded, cur, 0, ef.max(k), search);\n            std::hint::black_box(search.pool.iter().count());\n        }}\n"
    );
    common::source(
        &format!("reference {times}x slower"),
        text.replace(AT, &again),
    )
}

#[test]
fn a_hang_costs_seconds_and_a_slow_honest_kernel_is_not_cut() {
    let _serial = common::one_at_a_time();
    // The configured deadline is the default two minutes: the run's own
    // figures decide.
    let evaluator = common::evaluator_with(Limits {
        memory_bytes: 256 << 20,
        ..Limits::default()
    });
    let data = common::xs20("random-xs-20-euclidean");
    let opts = ScoreOptions {
        runs: 1,
        fuel: false,
        ..ScoreOptions::default()
    };
    let spin = "let mut n = 0u64; loop { n = std::hint::black_box(n + 1); }";
    // Compiled ahead, so that what is timed is the evaluation.
    let text = std::fs::read_to_string(common::variant("brute_force.rs"))
        .unwrap()
        .replace("/* HOOK: search */", spin);
    let compiler = evaluator.compiler().unwrap();
    compiler
        .compile(&text, anneval::compile::Language::Rust)
        .unwrap();
    let started = std::time::Instant::now();
    let hang = evaluator
        .evaluate_entries(
            &[(hooked(&[("search", spin)]), Engine::Wasm)],
            data,
            &opts,
            &Quiet,
        )
        .remove(0);
    let cost = started.elapsed();
    assert_eq!(hang.verdict, Verdict::Timeout, "{}", hang.message);
    assert!(
        hang.message
            .contains("this call's deadline: the floor of 5 s"),
        "{}",
        hang.message
    );
    assert!(
        cost < std::time::Duration::from_secs(15),
        "a hang cost {cost:?}"
    );
    let evals = evaluator.evaluate_entries(
        &[
            (Candidate::Reference, Engine::Wasm),
            (reference_slowed(20), Engine::Wasm),
        ],
        data,
        &opts,
        &Quiet,
    );
    for eval in &evals {
        assert_eq!(
            eval.verdict,
            Verdict::Ok,
            "{}: {}",
            eval.candidate.source,
            eval.message
        );
    }
    let ratio = evals[0].reward / evals[1].reward;
    assert!(ratio > 8.0, "the slowed kernel is only {ratio:.1}x slower");
}
