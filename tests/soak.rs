//! One process, 100 evaluations mixing hostile and honest candidates: the
//! host's memory and file descriptors stay flat and honest results never
//! change. Run with `--nocapture` for the figures.

mod common;

use std::time::Duration;

use anneval::measure::sweep::Sweep;
use anneval::sandbox::Limits;
use anneval::{ScoreOptions, Verdict};
use common::hooked;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_hundred_mixed_evaluations_leave_the_host_as_it_was() {
    let evaluator = common::evaluator_with(Limits {
        call_timeout: Duration::from_millis(400),
        ..common::limits()
    });
    let honest = hooked(&[]);
    let reference = anneval::Candidate::Reference;
    let hostile = [
        (hooked(&[("search", "panic!(\"boom\");")]), Verdict::Trap),
        (
            hooked(&[(
                "build",
                "let mut v: Vec<Vec<u8>> = Vec::new(); loop { v.push(vec![1; 1 << 20]); std::hint::black_box(&v); }",
            )]),
            Verdict::MemoryLimit,
        ),
        (
            hooked(&[("answer", "out[0] = out[1];")]),
            Verdict::InvalidOutput,
        ),
        (
            hooked(&[("search", "loop { std::hint::black_box(0); }")]),
            Verdict::Timeout,
        ),
        (
            hooked(&[(
                "items",
                "pub const X: &str = include_str!(\"/etc/passwd\");",
            )]),
            Verdict::Rejected,
        ),
    ];
    let opts = ScoreOptions {
        sweep: Sweep::Efs(vec![10]),
        runs: 1,
        ..ScoreOptions::default()
    };
    let first_honest = common::score(&evaluator, &honest, &opts);
    let first_reference = common::score(&evaluator, &reference, &opts);
    let mut rss_after_warmup = 0;
    let mut fds_after_warmup = 0;
    let mut evaluations = 2;
    for round in 0..14 {
        for (candidate, verdict) in &hostile {
            let eval = common::score(&evaluator, candidate, &opts);
            assert_eq!(eval.verdict, *verdict, "round {round}: {}", eval.message);
        }
        let h = common::score(&evaluator, &honest, &opts);
        let r = common::score(&evaluator, &reference, &opts);
        for (now, first) in [(&h, &first_honest), (&r, &first_reference)] {
            assert_eq!(now.verdict, Verdict::Ok, "round {round}: {}", now.message);
            assert_eq!(now.curve[0].recall, first.curve[0].recall, "round {round}");
            assert_eq!(
                now.curve[0].fuel_per_query, first.curve[0].fuel_per_query,
                "round {round}"
            );
        }
        evaluations += hostile.len() + 2;
        if round == 1 {
            rss_after_warmup = resident_kib();
            fds_after_warmup = open_fds();
        }
    }
    let (rss, fds) = (resident_kib(), open_fds());
    println!(
        "{evaluations} evaluations: resident memory {} MiB after 2 rounds, {} MiB at the end; open fds {fds_after_warmup} -> {fds}",
        rss_after_warmup / 1024,
        rss / 1024
    );
    assert!(evaluations >= 100);
    assert!(
        rss < rss_after_warmup + 64 * 1024,
        "resident memory grew from {rss_after_warmup} KiB to {rss} KiB"
    );
    assert!(
        fds <= fds_after_warmup + 2,
        "fds grew from {fds_after_warmup} to {fds}"
    );
}
