//! Candidates that misbehave, each ending in its verdict, in bounded time,
//! with the host unharmed.

mod common;

use anneval::{ScoreOptions, Verdict};
use common::{hooked, quick, run_seconds, score, wat_component};

#[test]
fn syntax_error_is_a_compile_error_naming_the_line() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[("search", "let x = ;")]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::CompileError);
    assert!(eval.message.contains("src/kernel.rs:"), "{}", eval.message);
    assert!(
        eval.message.contains("expected expression"),
        "{}",
        eval.message
    );
    assert_eq!(eval.reward, 0.0);
}

#[test]
fn panic_in_search_is_a_trap_with_the_message() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[(
            "search",
            r#"panic!("the kernel gave up on query {}", query.len());"#,
        )]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::Trap);
    assert!(
        eval.message.contains("the kernel gave up on query 20"),
        "{}",
        eval.message
    );
    assert!(eval.message.contains("src/kernel.rs"), "{}", eval.message);
}

#[test]
fn endless_loop_in_search_times_out_at_the_deadline() {
    let evaluator = common::evaluator();
    let timeout = evaluator.sandbox().limits().call_timeout.as_secs_f64();
    let eval = score(
        &evaluator,
        &hooked(&[(
            "search",
            "let mut n = 0u64; loop { n = std::hint::black_box(n + 1); }",
        )]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::Timeout, "{}", eval.message);
    assert!(eval.message.contains("deadline"), "{}", eval.message);
    // One warm-up pass hits the deadline; the build and restore are quick.
    assert!(
        run_seconds(&eval) < timeout + 3.0,
        "took {} s",
        run_seconds(&eval)
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[(
            "build",
            "let mut hoard: Vec<Vec<u8>> = Vec::new(); loop { hoard.push(vec![1u8; 1 << 20]); std::hint::black_box(&hoard); }",
        )]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::MemoryLimit, "{}", eval.message);
    assert!(
        eval.message.contains("limit is 256 MiB"),
        "{}",
        eval.message
    );
}

#[test]
fn duplicate_ids_are_invalid_output() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[("answer", "let first = out[0]; out[1] = first;")]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::InvalidOutput);
    assert!(eval.message.contains("query 0: id"), "{}", eval.message);
    assert!(eval.message.contains("more than once"), "{}", eval.message);
}

#[test]
fn out_of_range_ids_are_invalid_output() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[("answer", "out[3] = 1_000_000;")]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::InvalidOutput);
    assert!(
        eval.message.contains("query 0: id 1000000 is out of range"),
        "{}",
        eval.message
    );
}

#[test]
fn too_few_ids_are_invalid_output() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[("answer", "out.pop();")]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::InvalidOutput);
    assert!(
        eval.message.contains("query 0: 9 ids returned, k = 10"),
        "{}",
        eval.message
    );
}

#[test]
fn too_many_ids_are_invalid_output() {
    let eval = score(
        &common::evaluator(),
        &hooked(&[("answer", "out.push(0);")]),
        &quick(),
    );
    assert_eq!(eval.verdict, Verdict::InvalidOutput);
    assert!(
        eval.message
            .contains("query 0: search returned 11 ids for k = 10"),
        "{}",
        eval.message
    );
}

#[test]
fn a_component_importing_a_clock_is_rejected() {
    let candidate = wat_component(
        "clock.wat",
        r#"(component
            (import "wasi:clocks/wall-clock@0.2.0" (instance
                (export "now" (func (result u64)))))
        )"#,
    );
    let eval = score(&common::evaluator(), &candidate, &quick());
    assert_eq!(eval.verdict, Verdict::Rejected);
    assert!(
        eval.message.contains("wasi:clocks/wall-clock@0.2.0"),
        "{}",
        eval.message
    );
}

#[test]
fn the_host_is_healthy_after_hostile_candidates() {
    // The same evaluator, after a trap and a timeout, still scores correctly.
    let evaluator = common::evaluator();
    let opts = ScoreOptions {
        efs: vec![10],
        runs: 1,
        fuel: true,
        ..ScoreOptions::default()
    };
    let honest = score(&evaluator, &hooked(&[]), &opts);
    assert_eq!(honest.verdict, Verdict::Ok, "{}", honest.message);
    score(
        &evaluator,
        &hooked(&[("search", "panic!(\"x\");")]),
        &quick(),
    );
    score(&evaluator, &hooked(&[("load", "loop {}")]), &quick());
    let again = score(&evaluator, &hooked(&[]), &opts);
    assert_eq!(again.verdict, Verdict::Ok);
    assert_eq!(again.curve[0].recall, 1.0, "brute force is exact");
    assert_eq!(
        again.curve[0].fuel_per_query,
        honest.curve[0].fuel_per_query
    );
}
