//! `anneval score`: one candidate, one dataset, a table and a verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::measure_args::{Defaults, MeasureArgs};
use super::progress::TerminalProgress;
use crate::dataset::split::QuerySet;
use crate::export;
use crate::verdict::Verdict;

#[derive(Args)]
pub struct ScoreArgs {
    /// A kernel (.rs replacing guest-template/src/kernel.rs; .cpp or .c
    /// against guest-template-cpp; a folder or .tar/.tar.gz of C or C++
    /// files), a WebAssembly component (.wasm), or a reference: `reference`
    /// (Rust, the default), `reference-cpp`, `reference-c`.
    candidate: Option<PathBuf>,
    #[command(flatten)]
    measure: MeasureArgs,
    /// Write the result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the QPS-recall plot to FILE (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print where the evaluation's wall time went: compile, load, build,
    /// restores, probes, timed calls, fuel, checks and the rest.
    #[arg(long)]
    breakdown: bool,
}

const DEFAULTS: Defaults = Defaults {
    queries: QuerySet::Dev,
    runs: 3,
};

pub fn run(a: ScoreArgs) -> Result<ExitCode> {
    let candidate = a.measure.candidate(a.candidate.as_deref())?;
    let progress = TerminalProgress::new(a.measure.quiet);
    let data = a.measure.dataset(&DEFAULTS, &progress)?;
    let opts = a.measure.options(&DEFAULTS, &data)?;
    let evaluator = a.measure.evaluator()?;
    let eval = evaluator.evaluate_on(&candidate, a.measure.engine, &data, &opts, &progress);
    progress.finish();
    if a.measure.quiet {
        println!("{}", export::table::one_line(&eval));
    } else {
        print!("{}", export::table::render(&eval));
    }
    if a.breakdown {
        print!("{}", export::table::breakdown(std::slice::from_ref(&eval)));
    }
    if let Some(path) = &a.json {
        export::json::write(path, &eval)?;
    }
    if let Some(path) = &a.plot {
        let title = format!("{} (k = {})", eval.dataset, eval.k);
        export::plot::write(path, &title, &[(eval.candidate.source.as_str(), &eval)])?;
    }
    Ok(if eval.verdict == Verdict::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
