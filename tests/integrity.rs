//! The number cannot be gamed: answers cached in one pass do not help the
//! next, a kernel that ignores `ef` gets an honest flat curve, and what a
//! kernel remembers never outlives its pass.

mod common;

use anneval::evaluator::{Engine, Prepared, Quiet};
use anneval::guest::ComponentCache;
use anneval::measure::sweep::Sweep;
use anneval::sandbox::Sandbox;
use anneval::{Candidate, ScoreOptions, Verdict};
use common::hooked;

fn opts(efs: Vec<usize>, runs: usize) -> ScoreOptions {
    ScoreOptions {
        sweep: Sweep::Efs(efs),
        runs,
        fuel: false,
        ..ScoreOptions::default()
    }
}

/// Timing comparisons run in one test, one after the other, and each
/// compares kernels measured together (interleaved): parallel tests would
/// otherwise share the cores being measured.
#[test]
fn timing_cannot_be_gamed() {
    let evaluator = common::evaluator();
    let data = common::xs20("random-xs-20-euclidean");

    // An answer cache keyed by the query's bits: a second sight of a query
    // would cost nothing if the cache survived from one pass to the next.
    let memo = hooked(&[
        (
            "items",
            "thread_local! { static SEEN: std::cell::RefCell<std::collections::HashMap<Vec<u32>, Vec<u32>>> = Default::default(); }",
        ),
        (
            "search",
            "let key: Vec<u32> = query.iter().map(|x| x.to_bits()).collect(); if let Some(hit) = SEEN.with(|s| s.borrow().get(&key).cloned()) { out.extend(hit); return; }",
        ),
        (
            "answer",
            "SEEN.with(|s| s.borrow_mut().insert(key, out.clone()));",
        ),
    ]);
    let plain = hooked(&[]);
    let evals = evaluator.evaluate_together(&[memo, plain], data, &opts(vec![10, 20], 4), &Quiet);
    let (memo, plain) = (&evals[0], &evals[1]);
    assert_eq!(memo.verdict, Verdict::Ok, "{}", memo.message);
    for (m, p) in memo.curve.iter().zip(&plain.curve) {
        let passes = &m.qps_passes;
        let (lo, hi) = passes
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), q| (lo.min(*q), hi.max(*q)));
        // A cache that survived would answer a pass in next to no time (a
        // lookup against a scan of 9,000 points: tens of times faster); the
        // machine's own drift moves passes seconds apart by up to about 2x.
        assert!(
            hi / lo < 3.0,
            "ef {}: passes {passes:?} differ as if a cache survived",
            m.ef
        );
        let ratio = m.qps / p.qps;
        assert!(
            (0.5..2.0).contains(&ratio),
            "ef {}: memo {} vs plain {} QPS",
            m.ef,
            m.qps,
            p.qps
        );
    }

    // Ignoring ef gives a flat curve: the same work at every ef.
    let eval = common::score(&evaluator, &hooked(&[]), &opts(vec![1, 10, 100, 700], 2));
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    assert!(
        eval.curve.iter().all(|p| p.recall == 1.0),
        "brute force is exact at every ef"
    );
    let qps: Vec<f64> = eval.curve.iter().map(|p| p.qps).collect();
    let (lo, hi) = qps
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), q| (lo.min(*q), hi.max(*q)));
    assert!(
        hi / lo < 2.0,
        "same work at every ef, so about the same speed: {qps:?}"
    );
    // The frontier collapses to the fastest point, and the reward is its QPS.
    assert_eq!(eval.frontier.len(), 1);
    assert!((eval.reward - hi).abs() < 1e-6 * hi);
}

#[test]
fn answers_depend_only_on_state_inside_a_pass() {
    // The kernel answers exactly for its first 500 calls, then garbage (but
    // valid ids). If any state survived from one pass to the next, later
    // passes would answer everything wrongly; as every pass starts fresh,
    // each pass answers half the queries right, and recall says so.
    let evaluator = common::evaluator();
    let sloppy = hooked(&[
        (
            "items",
            "thread_local! { static CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) }; }",
        ),
        (
            "answer",
            "let n = CALLS.with(|c| { c.set(c.get() + 1); c.get() }); if n > 500 { out.clear(); out.extend(0..k as u32); }",
        ),
    ]);
    let eval = common::score(&evaluator, &sloppy, &opts(vec![10], 3));
    assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    let recall = eval.curve[0].recall;
    assert!(
        recall > 0.45 && recall < 0.55,
        "half the queries answered wrongly: recall {recall}"
    );
}

/// A kernel that, at each restore, looks for what an earlier instance left:
/// anything but zero in a static (the data segment's zeroed part) or in 16
/// pages it grows itself beyond the allocator's. Finding it ends the call
/// with a trap; and the same look a second time in one instance must find
/// its own `mark`, or the look proves nothing. Each `mark` is a distinct
/// component of the same layout.
fn snoop(mark: u64) -> anneval::Candidate {
    hooked(&[
        (
            "items",
            &format!(
                r#"
static mut LEFT: [u64; 4096] = [0; 4096];
const MARK: u64 = {mark:#x};
fn left_behind() -> bool {{
    use core::ptr::{{read_volatile, write_volatile}};
    let mut found = unsafe {{ read_volatile(&raw const LEFT[4095]) }} != 0;
    unsafe {{ write_volatile(&raw mut LEFT[4095], MARK) }};
    let pages = 16;
    let grown = core::arch::wasm32::memory_grow(0, pages);
    assert!(grown != usize::MAX, "memory.grow refused");
    let words = (grown * 65536) as *mut u64;
    for i in 0..pages * 65536 / 8 {{
        if unsafe {{ read_volatile(words.add(i)) }} != 0 {{
            found = true;
        }}
        unsafe {{ write_volatile(words.add(i), MARK) }};
    }}
    found
}}
"#
            ),
        ),
        (
            "load",
            r#"assert!(!left_behind(), "an earlier instance's marker survived into this one");
               assert!(left_behind(), "the look does not see what this instance wrote");"#,
        ),
    ])
}

#[test]
fn nothing_an_instance_writes_reaches_a_later_one() {
    // Every call (probe, timed, fuel) runs in an instance whose memory may
    // be a slot an earlier instance used: of the same kernel (the pool
    // prefers the slot a module had) or, when none of its own is free, of
    // another kernel measured beside it. Two snoops measured together, their
    // calls interleaved, must each find nothing of either.
    let evaluator = common::evaluator();
    let entries = [0xA11E_0000_5EED_u64, 0xB0B0_0000_5EED]
        .map(|mark| (snoop(mark), anneval::evaluator::Engine::Wasm));
    let opts = ScoreOptions {
        fuel: true,
        min_pass_seconds: 0.05,
        ..opts(vec![10, 20], 3)
    };
    let data = common::xs20("random-xs-20-euclidean");
    let evals = evaluator.evaluate_entries(&entries, data, &opts, &Quiet);
    for eval in &evals {
        assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
        assert!(
            eval.curve
                .iter()
                .all(|c| c.queries_timed >= 2 * data.n_test()),
            "several calls, so several instances, per timed pass: {:?}",
            eval.curve
        );
        assert!(eval.curve.iter().all(|c| c.fuel_per_query.is_some()));
    }
    assert_ne!(
        evals[0].candidate.digest, evals[1].candidate.digest,
        "two components"
    );
}

#[test]
fn a_component_compiled_once_serves_later_evaluations_in_fresh_instances() {
    // The evaluator keeps the components it compiled, by their bytes' digest:
    // evaluating the same snoop again reuses its compiled code and the slots
    // the first evaluation's instances used, and must find nothing of them.
    let evaluator = common::evaluator();
    let kernel = snoop(0xC0DE_0000_5EED);
    let opts = ScoreOptions {
        fuel: true,
        min_pass_seconds: 0.05,
        ..opts(vec![10, 20], 2)
    };
    let data = common::xs20("random-xs-20-euclidean");
    let first = evaluator.evaluate(&kernel, data, &opts, &Quiet);
    assert_eq!(evaluator.components().len(), 1);
    let second = evaluator.evaluate(&kernel, data, &opts, &Quiet);
    for eval in [&first, &second] {
        assert_eq!(eval.verdict, Verdict::Ok, "{}", eval.message);
    }
    assert_eq!(first.candidate.digest, second.candidate.digest);
    assert_eq!(evaluator.components().len(), 1, "compiled once, kept once");
}

#[test]
fn the_component_cache_keeps_the_most_recently_used_and_no_more() {
    let evaluator = common::evaluator();
    let (Ok(Prepared::Wasm(bytes)), _) = evaluator.prepare(&Candidate::Reference, Engine::Wasm)
    else {
        panic!("the reference compiles")
    };
    // The same component with a custom section of its own: other bytes,
    // compiled on their own.
    let tagged = |tag: u8| {
        let mut b = bytes.clone();
        b.extend_from_slice(&[0, 3, 2, b't', tag]);
        b
    };
    let (a, b, c) = (tagged(b'a'), tagged(b'b'), tagged(b'c'));
    let sandbox = &Sandbox::new(common::limits()).unwrap();
    let cache = ComponentCache::new(2);
    for bytes in [&a, &b, &a, &c] {
        cache.load(sandbox, bytes).unwrap();
    }
    assert_eq!(cache.len(), 2);
    assert!(
        cache.contains(&a) && cache.contains(&c),
        "a was used after b"
    );
    assert!(!cache.contains(&b), "the least recently used is dropped");
    // A component that fails to load is not kept.
    assert!(cache.load(sandbox, b"\0asm not a component").is_err());
    assert_eq!(cache.len(), 2);
}
