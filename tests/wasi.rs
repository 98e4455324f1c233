//! Ready components built by a WASI toolchain: accepted through a sealed
//! `wasmtime-wasi` context, where files, the environment, clocks and
//! randomness read as nothing, stdout ends in the bounded log, and any
//! interface outside the sealed set is still `rejected`.
//!
//! The WASI components here are real: C++ kernels compiled by clang against
//! wasi-libc and libc++ *without* anneval's in-module WASI answers, and wrapped
//! with wasmtime's preview-1 adapter, as wasi-sdk users do.

mod common;

use anneval::compile::Language;
use anneval::{Candidate, Verdict};
use common::{wasi_component, wat_component};

/// The WASI imports of a component.
fn wasi_imports(candidate: &Candidate) -> Vec<String> {
    let Candidate::Component { bytes, .. } = candidate else {
        unreachable!()
    };
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, bytes).unwrap();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| name.starts_with("wasi:"))
        .collect()
}

#[test]
fn a_wasi_component_of_the_cpp_reference_scores_ok_under_the_seal() {
    let candidate = wasi_component("wasi reference", Language::Cpp.reference());
    let imports = wasi_imports(&candidate);
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:cli/")),
        "a real WASI component: {imports:?}"
    );
    let eval = common::score(&common::evaluator(), &candidate, &common::quick());
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    assert!(eval.max_recall.unwrap() > 0.9);
    assert_eq!(eval.candidate.kind, "component");
}

#[test]
fn files_environment_clocks_and_randomness_read_as_nothing() {
    let (canary, secret) = common::canary();
    let source = common::cpp_wasi_probe(&canary);
    let evaluator = common::evaluator();
    let first = common::score(
        &evaluator,
        &wasi_component("probe", &source),
        &common::quick(),
    );
    let second = common::score(
        &evaluator,
        &wasi_component("probe", &source),
        &common::quick(),
    );
    assert_eq!(first.verdict, Verdict::Ok, "{}", first.message);
    let said = &first.log[0];
    assert!(said.starts_with(common::PROBE_FINDS_NOTHING), "{said}");
    assert_eq!(said, &second.log[0], "randomness is seeded");
    assert!(
        first.log.iter().any(|l| l == "flooding stdout 0"),
        "stdout reaches the log: {:?}",
        &first.log[..first.log.len().min(3)]
    );
    let kept: usize = first.log.iter().map(String::len).sum();
    assert!(kept <= 64 << 10, "the log stays bounded: {kept} bytes");
    assert!(!serde_json::to_string(&first).unwrap().contains(&secret));
}

#[test]
fn exit_through_wasi_is_a_trap() {
    let source = common::cpp_reference_text_with(&[(
        common::BUILD_START,
        &format!(
            "    fprintf(stderr, \"leaving now\\n\");\n    exit(3);\n{}",
            common::BUILD_START
        ),
    )]);
    let source = format!("#include <cstdio>\n#include <cstdlib>\n{source}");
    let eval = common::score(
        &common::evaluator(),
        &wasi_component("exit", &source),
        &common::quick(),
    );
    assert_eq!(eval.verdict, Verdict::Trap, "{}", eval.message);
    assert!(eval.message.contains("through WASI"), "{}", eval.message);
    assert!(eval.message.contains("leaving now"), "{}", eval.message);
}

#[test]
fn interfaces_outside_the_seal_are_rejected() {
    let evaluator = common::evaluator();
    for import in [
        "wasi:http/outgoing-handler@0.2.0",
        "wasi:filesystem/types@0.3.0",
        "wasi:cli/environment",
        "wasi:keyvalue/store@0.2.0",
    ] {
        let wat = format!("(component (import \"{import}\" (instance)))");
        let eval = common::score(&evaluator, &wat_component(import, &wat), &common::quick());
        assert_eq!(
            eval.verdict,
            Verdict::Rejected,
            "{import}: {}",
            eval.message
        );
        assert!(
            eval.message.contains(&format!("imports `{import}`")),
            "{import}: {}",
            eval.message
        );
    }
    // A sealed interface is let in: the component then fails for what it
    // lacks, not for what it imports.
    let wat = "(component (import \"wasi:cli/environment@0.2.0\" (instance)))";
    let eval = common::score(&evaluator, &wat_component("env", wat), &common::quick());
    assert_eq!(eval.verdict, Verdict::Rejected, "{}", eval.message);
    assert!(!eval.message.contains("imports `"), "{}", eval.message);
}

#[test]
fn kernels_compiled_by_anneval_import_no_wasi() {
    let evaluator = common::evaluator();
    let compiler = evaluator.compiler().unwrap();
    for language in Language::ALL {
        let compiled = compiler.compile(language.reference(), language).unwrap();
        let candidate = Candidate::Component {
            origin: language.to_string(),
            bytes: compiled.component,
        };
        assert_eq!(wasi_imports(&candidate), Vec::<String>::new(), "{language}");
    }
}

/// The C++ reference as a WASI component with `code` at the start of `build`
/// and `search` (after `headers`).
fn wasi_reference_with(origin: &str, headers: &str, build: &str, search: &str) -> Candidate {
    use common::wasi_component;
    let source = common::cpp_reference_text_with(&[
        (
            common::BUILD_START,
            &format!("{build}\n{}", common::BUILD_START),
        ),
        (SEARCH_START, &format!("{SEARCH_START}\n{search}\n")),
    ]);
    wasi_component(origin, &format!("{headers}\n{source}"))
}

const SEARCH_START: &str =
    "  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {";

#[test]
fn timers_live_on_the_stopped_clock() {
    let evaluator = common::evaluator();
    let headers = "#include <unistd.h>\n#include <time.h>\n#include <poll.h>\n#include <cstdio>";
    // Waiting ends the call at once, as a timeout that says why, whichever
    // way the kernel waits and wherever.
    for (origin, build, search) in [
        ("sleep in build", "    usleep(100000000);", ""),
        (
            "nanosleep in search",
            "",
            "    { timespec t{100, 0}; nanosleep(&t, nullptr); }",
        ),
        ("poll timeout", "", "    poll(nullptr, 0, 2);"),
        (
            "absolute sleep",
            "    { timespec t{5, 0}; clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr); }",
            "",
        ),
    ] {
        let started = std::time::Instant::now();
        let eval = common::score(
            &evaluator,
            &wasi_reference_with(origin, headers, build, search),
            &common::quick(),
        );
        assert_eq!(eval.verdict, Verdict::Timeout, "{origin}: {}", eval.message);
        assert!(
            eval.message.contains("clocks are stopped"),
            "{origin}: {}",
            eval.message
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{origin} took {:?}",
            started.elapsed()
        );
    }
    // A zero wait is a yield, due at once on every call of every pass; and
    // an instant not after the clock's 0 has passed.
    let eval = common::score(
        &evaluator,
        &wasi_reference_with(
            "yields",
            headers,
            "    usleep(0); { timespec t{0, 0}; clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr); }",
            "    { timespec t{0, 0}; nanosleep(&t, nullptr); } poll(nullptr, 0, 0);",
        ),
        &common::quick(),
    );
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
}
