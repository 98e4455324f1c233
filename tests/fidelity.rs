//! What the sandbox does to make its reward track native speed: the SDK's
//! prefetch in wasm (real loads, harmless at any address, invisible in the
//! answers), and timed calls replayed without deadline checks only after the
//! same call finished under them.

mod common;

use std::time::Duration;

use anneval::dataset::Metric;
use anneval::evaluator::{Engine, Prepared};
use anneval::guest::{KernelComponent, WitMetric};
use anneval::native::NativeKernel;
use anneval::sandbox::{Metering, Sandbox};
use anneval::{Candidate, Verdict};

fn variant(name: &str) -> Candidate {
    Candidate::from_path(&common::variant(name)).unwrap()
}

/// The index bytes a kernel builds on random-xs-20, and its answers (and
/// instructions) at each of `efs` on the wasm engine.
fn wasm_run(sandbox: &Sandbox, bytes: &[u8], efs: &[usize]) -> (Vec<u8>, Vec<(Vec<u32>, u64)>) {
    let data = common::xs20("random-xs-20-euclidean");
    let kernel = KernelComponent::load(sandbox, bytes).unwrap();
    let built = kernel
        .build(sandbox, &data.train, data.dim, WitMetric::Euclidean, &[])
        .unwrap();
    let answers = efs
        .iter()
        .map(|&ef| {
            let out = kernel
                .restore(sandbox, Metering::Fuel, &built.index)
                .and_then(|s| s.search_batch(sandbox, &data.test, data.dim, 10, ef))
                .unwrap();
            (out.ids, out.fuel.unwrap())
        })
        .collect();
    (built.index, answers)
}

#[test]
fn prefetch_changes_no_answer_on_either_engine_and_costs_real_loads_in_wasm() {
    let evaluator = common::evaluator();
    let sandbox = evaluator.sandbox();
    let data = common::xs20("random-xs-20-euclidean");
    let efs = [10, 40, 160];
    let with = Candidate::Reference;
    let without = variant("hnsw_no_prefetch.rs");

    let wasm = |c: &Candidate| wasm_run(sandbox, &evaluator.component(c).0.unwrap(), &efs);
    let (index_with, answers_with) = wasm(&with);
    let (index_without, answers_without) = wasm(&without);
    assert_eq!(
        index_with, index_without,
        "prefetching changed the graph built in wasm"
    );
    for (ef, (a, b)) in efs.iter().zip(answers_with.iter().zip(&answers_without)) {
        assert_eq!(
            a.0, b.0,
            "prefetching changed the answers in wasm at ef {ef}"
        );
        // Each prefetch is a real load (and a clamp), not compiled away:
        // the reference executes more instructions than its copy without.
        assert!(
            a.1 > b.1,
            "ef {ef}: {} instructions with prefetch, {} without: the prefetches are gone",
            a.1,
            b.1
        );
    }

    let native = |c: &Candidate| {
        let Prepared::Native(binary) = evaluator.prepare(c, Engine::Native).0.unwrap() else {
            unreachable!("prepared for the native engine")
        };
        let kernel = NativeKernel::new(&binary, sandbox.limits().clone()).unwrap();
        let built = kernel
            .build(&data.train, data.dim, Metric::Euclidean, &[])
            .unwrap();
        let answers: Vec<Vec<u32>> = efs
            .iter()
            .map(|&ef| {
                kernel
                    .pass(&built.index, &data.test, data.dim, 10, ef)
                    .unwrap()
                    .ids
            })
            .collect();
        (built.index, answers)
    };
    let (index_with, answers_with) = native(&with);
    let (index_without, answers_without) = native(&without);
    assert_eq!(
        index_with, index_without,
        "prefetching changed the native graph"
    );
    assert_eq!(
        answers_with, answers_without,
        "prefetching changed native answers"
    );
}

/// Prefetches aimed anywhere: null, the last byte of memory, just past it,
/// far past it, the top of the address space.
const WILD_PREFETCHES: &str = "for p in [0usize, (core::arch::wasm32::memory_size::<0>() << 16) - 1, \
    core::arch::wasm32::memory_size::<0>() << 16, (core::arch::wasm32::memory_size::<0>() << 16) + (1 << 30), \
    usize::MAX - 15, usize::MAX] { prefetch(core::ptr::without_provenance::<u8>(p)); } \
    prefetch(self.data.as_ptr().wrapping_add(self.data.len() * 64));";

#[test]
fn a_prefetch_at_any_address_neither_traps_nor_changes_an_answer() {
    let evaluator = common::evaluator();
    let opts = common::quick();
    let honest = common::score(&evaluator, &common::hooked(&[]), &opts);
    assert_eq!(honest.verdict, Verdict::Ok, "{}", honest.message);
    let wild = common::score(
        &evaluator,
        &common::hooked(&[("search", WILD_PREFETCHES)]),
        &opts,
    );
    assert_eq!(wild.verdict, Verdict::Ok, "{}", wild.message);
    assert_eq!(wild.max_recall, honest.max_recall);
    assert_eq!(wild.max_recall, Some(1.0), "brute force is exact");

    // The same from C++, through anneval::prefetch.
    let cpp = common::cpp_reference_with(
        "kernel.cpp with wild prefetches",
        &[(
            "      if (next != anneval::NO_ID) anneval::prefetch(adjacency(next, level));",
            "      if (next != anneval::NO_ID) anneval::prefetch(adjacency(next, level));\n      for (uintptr_t p : {uintptr_t(0), \
             uintptr_t(__builtin_wasm_memory_size(0)) << 16, ~uintptr_t(0), ~uintptr_t(0) - 3}) \
             anneval::prefetch(reinterpret_cast<const void*>(p));",
        )],
    );
    let eval = common::score(&evaluator, &cpp, &opts);
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    assert!(eval.max_recall.unwrap() > 0.9, "{:?}", eval.max_recall);
}

#[test]
fn only_the_deadline_engine_interrupts_and_replays_run_unchecked() {
    // A call far longer than a 1 ms deadline: the deadline engine stops it,
    // the replay engine (used only for calls that already finished on the
    // deadline engine) runs it to the end, as it has no checks to slow it.
    let mut limits = common::limits();
    limits.call_timeout = Duration::from_millis(1);
    let evaluator = common::evaluator_with(limits);
    let sandbox = evaluator.sandbox();
    let data = common::xs20("random-xs-20-euclidean");
    let bytes = evaluator.component(&variant("brute_force.rs")).0.unwrap();
    let kernel = KernelComponent::load(sandbox, &bytes).unwrap();
    let built = kernel
        .build(sandbox, &data.train, data.dim, WitMetric::Euclidean, &[])
        .unwrap();
    let queries = &data.test;
    let search = |metering| {
        kernel
            .restore(sandbox, metering, &built.index)
            .and_then(|s| s.search_batch(sandbox, queries, data.dim, 10, 10))
    };
    let stopped = search(Metering::Deadline)
        .err()
        .expect("a 1 ms deadline stops it");
    assert_eq!(stopped.verdict, Verdict::Timeout, "{}", stopped.message);
    let replayed = search(Metering::Replay).unwrap();
    assert!(replayed.seconds > 0.001, "{} s", replayed.seconds);
    assert_eq!(replayed.ids.len(), queries.len() / data.dim * 10);
}

#[test]
fn a_kernel_that_hangs_at_one_ef_is_stopped_by_its_probe() {
    // The timed passes replay probes without deadline checks; a kernel that
    // hangs only at some ef must meet its deadline at that ef's probe, before
    // any replay, and end as a timeout with the other efs measured for
    // nothing.
    let mut limits = common::limits();
    limits.call_timeout = Duration::from_secs(2);
    let evaluator = common::evaluator_with(limits);
    let opts = anneval::ScoreOptions {
        sweep: anneval::measure::sweep::Sweep::Efs(vec![10, 20, 40]),
        runs: 2,
        fuel: false,
        ..anneval::ScoreOptions::default()
    };
    let started = std::time::Instant::now();
    let eval = common::score(
        &evaluator,
        &common::hooked(&[(
            "search",
            "if ef == 40 { let mut n = 0u64; loop { n = std::hint::black_box(n + 1); } }",
        )]),
        &opts,
    );
    assert_eq!(eval.verdict, Verdict::Timeout, "{}", eval.message);
    assert!(eval.message.contains("deadline"), "{}", eval.message);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
