//! `anneval confirm`: do the sandbox's rankings hold on the real CPU? Each
//! candidate is scored on both engines in one interleaved run; the table
//! shows each one's wasm and native rewards and their ratio, and the rank
//! agreement of the two orderings. A candidate that earns natively far more
//! than the same source earns in the sandbox ([`SUSPECT_NATIVE_OVER_WASM`])
//! is marked suspect: either the sandbox misses what pays on this CPU, or
//! the native build found something the measurement should not reward.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::measure_args::{Defaults, MeasureArgs};
use super::progress::TerminalProgress;
use crate::dataset::split::QuerySet;
use crate::evaluation::Evaluation;
use crate::evaluator::{Candidate, Engine};
use crate::export::{self, table::thousands};
use crate::stats;
use crate::verdict::Verdict;

#[derive(Args)]
pub struct ConfirmArgs {
    /// Kernels (.rs, .cpp, .c) to score on both engines; `reference`,
    /// `reference-cpp` or `reference-c` for a reference.
    #[arg(required = true)]
    candidates: Vec<PathBuf>,
    #[command(flatten)]
    measure: MeasureArgs,
    /// Write every evaluation and the rank agreement as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

const DEFAULTS: Defaults = Defaults {
    queries: QuerySet::Dev,
    runs: 3,
};

/// A native ÷ wasm reward above this marks a candidate suspect. Honest
/// kernels stay well below it: the sandbox's vectors are 128 bits against
/// the CPU's 256 or 512, and the references and the corpus run at 1.1–2.3×
/// natively (BENCHMARKS.md, "Do the sandbox's rankings hold…").
pub const SUSPECT_NATIVE_OVER_WASM: f64 = 16.0;

#[derive(Serialize)]
struct Confirmation {
    candidates: Vec<Confirmed>,
    /// Spearman's rank correlation of the wasm and native rewards.
    spearman: Option<f64>,
}

#[derive(Serialize)]
struct Confirmed {
    source: String,
    wasm: Evaluation,
    native: Evaluation,
    /// native reward / wasm reward.
    native_over_wasm: Option<f64>,
    /// The ratio is above [`SUSPECT_NATIVE_OVER_WASM`].
    suspect: bool,
}

pub fn run(a: ConfirmArgs) -> Result<ExitCode> {
    if a.measure.engine != Engine::Wasm {
        bail!("confirm runs every candidate on both engines; --engine does not apply");
    }
    let candidates = a
        .candidates
        .iter()
        .map(|p| a.measure.candidate(Some(p)))
        .collect::<Result<Vec<_>>>()?;
    let progress = TerminalProgress::new(a.measure.quiet);
    let data = a.measure.dataset(&DEFAULTS, &progress)?;
    let opts = a.measure.options(&DEFAULTS, &data)?;
    let evaluator = a.measure.evaluator()?;
    let entries: Vec<(Candidate, Engine)> = candidates
        .iter()
        .flat_map(|c| [(c.clone(), Engine::Wasm), (c.clone(), Engine::Native)])
        .collect();
    let evals = evaluator.evaluate_entries(&entries, &data, &opts, &progress);
    progress.finish();

    let mut confirmed = Vec::new();
    let mut pairs = evals.into_iter();
    while let (Some(wasm), Some(native)) = (pairs.next(), pairs.next()) {
        let ok = wasm.verdict == Verdict::Ok && native.verdict == Verdict::Ok && wasm.reward > 0.0;
        let native_over_wasm = ok.then(|| native.reward / wasm.reward);
        confirmed.push(Confirmed {
            source: wasm.candidate.source.clone(),
            suspect: suspect(native_over_wasm),
            native_over_wasm,
            wasm,
            native,
        });
    }
    let scored: Vec<&Confirmed> = confirmed
        .iter()
        .filter(|c| c.native_over_wasm.is_some())
        .collect();
    let spearman = stats::spearman(
        &scored.iter().map(|c| c.wasm.reward).collect::<Vec<_>>(),
        &scored.iter().map(|c| c.native.reward).collect::<Vec<_>>(),
    );
    if !a.measure.quiet {
        println!(
            "{:<32} {:>14} {:>14} {:>12} {:>13} {:>13} {:>13} {:>13}",
            "candidate",
            "wasm reward",
            "native reward",
            "native/wasm",
            "wasm QPS@0.9",
            "native @0.9",
            "wasm build s",
            "native build"
        );
        for c in &confirmed {
            let cell = |e: &Evaluation| {
                if e.verdict == Verdict::Ok {
                    thousands(e.reward)
                } else {
                    e.verdict.to_string()
                }
            };
            let ratio = match c.native_over_wasm {
                Some(r) if c.suspect => format!("{r:.2} suspect"),
                Some(r) => format!("{r:.2}"),
                None => "-".into(),
            };
            let at = |e: &Evaluation| {
                e.qps_at_recall
                    .get("0.9")
                    .copied()
                    .flatten()
                    .map_or("-".into(), thousands)
            };
            // The index's build call, in seconds.
            let build = |e: &Evaluation| e.build_seconds.map_or("-".into(), |s| format!("{s:.2}"));
            println!(
                "{:<32} {:>14} {:>14} {:>12} {:>13} {:>13} {:>13} {:>13}",
                short(&c.source),
                cell(&c.wasm),
                cell(&c.native),
                ratio,
                at(&c.wasm),
                at(&c.native),
                build(&c.wasm),
                build(&c.native)
            );
        }
        match spearman {
            Some(rho) => println!(
                "\nrank agreement of wasm and native rewards (Spearman) over {} candidates: {rho:.3}",
                scored.len()
            ),
            None => {
                println!("\nrank agreement needs at least two candidates scored on both engines")
            }
        }
        if confirmed.iter().any(|c| c.suspect) {
            println!(
                "suspect: earns more than {SUSPECT_NATIVE_OVER_WASM}x natively what it earns in \
                 the sandbox: the sandbox misses what pays on this CPU, or the native build \
                 found something the measurement should not reward (SECURITY.md, \"The native \
                 engine\")"
            );
        }
    }
    let all_ok = confirmed.iter().all(|c| c.native_over_wasm.is_some());
    if let Some(path) = &a.json {
        export::json::write(
            path,
            &Confirmation {
                candidates: confirmed,
                spearman,
            },
        )?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether a native ÷ wasm reward marks its candidate suspect.
fn suspect(native_over_wasm: Option<f64>) -> bool {
    native_over_wasm.is_some_and(|r| r > SUSPECT_NATIVE_OVER_WASM)
}

/// The file name of a path, for the table.
fn short(source: &str) -> &str {
    source.rsplit('/').next().unwrap_or(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_native_reward_far_beyond_the_sandboxs_is_suspect() {
        // The references and the corpus run at 1.1–2.3x natively; the native
        // exploit of the protocol that queries-after-the-clock closed ran at
        // 960x.
        for honest in [1.2, 1.6, 3.0, 12.0] {
            assert!(!suspect(Some(honest)), "{honest}");
        }
        assert!(suspect(Some(960.0)));
        assert!(suspect(Some(SUSPECT_NATIVE_OVER_WASM * 1.01)));
        assert!(!suspect(None), "a candidate not scored on both engines");
    }
}
