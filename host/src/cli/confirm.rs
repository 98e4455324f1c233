//! `anneval confirm`: do the sandbox's rankings hold on the real CPU? Each
//! candidate is scored on both engines in one interleaved run; the table
//! shows each one's wasm and native rewards and their ratio, and the rank
//! agreement of the two orderings.

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
}

pub fn run(a: ConfirmArgs) -> Result<ExitCode> {
    if a.measure.engine != Engine::Wasm {
        bail!("confirm runs every candidate on both engines; --engine does not apply");
    }
    let candidates = a
        .candidates
        .iter()
        .map(|p| Candidate::from_arg(p))
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
        confirmed.push(Confirmed {
            source: wasm.candidate.source.clone(),
            native_over_wasm: ok.then(|| native.reward / wasm.reward),
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
            "{:<32} {:>14} {:>14} {:>12}",
            "candidate", "wasm reward", "native reward", "native/wasm"
        );
        for c in &confirmed {
            let cell = |e: &Evaluation| {
                if e.verdict == Verdict::Ok {
                    thousands(e.reward)
                } else {
                    e.verdict.to_string()
                }
            };
            let ratio = c.native_over_wasm.map_or("-".into(), |r| format!("{r:.2}"));
            println!(
                "{:<32} {:>14} {:>14} {:>12}",
                short(&c.source),
                cell(&c.wasm),
                cell(&c.native),
                ratio
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

/// The file name of a path, for the table.
fn short(source: &str) -> &str {
    source.rsplit('/').next().unwrap_or(source)
}
