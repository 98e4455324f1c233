//! `anneval gate`: does a proposed kernel beat the current one? Exit 0 when
//! it is shown faster, 1 when not (or it failed), 2 when the comparison
//! cannot be made (usage, a failing baseline, an internal error).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;

use super::measure_args::{Defaults, MeasureArgs};
use super::progress::TerminalProgress;
use crate::dataset::split::QuerySet;
use crate::export;
use crate::gate::{self, GateMetric, GateOptions};

#[derive(Args)]
pub struct GateArgs {
    /// The current kernel: a .rs kernel, a .wasm component, or `reference`.
    #[arg(long, value_name = "CANDIDATE")]
    baseline: PathBuf,
    /// The proposed kernel: a .rs, .cpp or .c kernel, a .wasm component, or a
    /// reference (`reference`, `reference-cpp`, `reference-c`).
    #[arg(long, value_name = "CANDIDATE")]
    candidate: PathBuf,
    #[command(flatten)]
    measure: MeasureArgs,
    /// The ratio candidate / baseline the interval's lower end must exceed.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    min_speedup: f64,
    /// Two-sided confidence of the ratio's interval.
    #[arg(long, value_name = "C", default_value_t = 0.95)]
    confidence: f64,
    /// Compare measured time, or instructions (exact, the same on every machine).
    #[arg(long, default_value = "time")]
    metric: GateMetric,
    /// How far the candidate's best recall may fall below the baseline's.
    #[arg(long, value_name = "R", default_value_t = 0.002)]
    recall_tolerance: f64,
    /// Write the decision and both evaluations as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Markdown summary to FILE (also appended to
    /// $GITHUB_STEP_SUMMARY when that is set).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write both curves' plot to FILE (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

const DEFAULTS: Defaults = Defaults {
    queries: QuerySet::Holdout,
    runs: 5,
};

pub fn run(a: GateArgs) -> Result<ExitCode> {
    if !(a.confidence > 0.0 && a.confidence < 1.0) {
        return Err(anyhow!("--confidence must be between 0 and 1 (like 0.95)"));
    }
    if a.min_speedup.is_nan() || a.min_speedup <= 0.0 {
        return Err(anyhow!("--min-speedup must be positive (like 1.0)"));
    }
    let candidates = [
        a.measure.candidate(Some(&a.baseline))?,
        a.measure.candidate(Some(&a.candidate))?,
    ];
    let progress = TerminalProgress::new(a.measure.quiet);
    let data = a.measure.dataset(&DEFAULTS, &progress)?;
    let opts = a.measure.options(&DEFAULTS, &data)?;
    let evaluator = a.measure.evaluator()?;
    let entries = candidates.map(|c| (c, a.measure.engine));
    let mut evals = evaluator.evaluate_entries(&entries, &data, &opts, &progress);
    progress.finish();
    let candidate = evals.pop().expect("two evaluations");
    let baseline = evals.pop().expect("two evaluations");
    let options = GateOptions {
        min_speedup: a.min_speedup,
        confidence: a.confidence,
        metric: a.metric,
        recall_tolerance: a.recall_tolerance,
    };
    let report = gate::decide(baseline, candidate, &options).map_err(|e| anyhow!(e))?;

    if let Some(path) = &a.plot {
        let title = format!("{} (k = {})", report.baseline.dataset, report.baseline.k);
        let series = [
            ("baseline", &report.baseline),
            ("candidate", &report.candidate),
        ];
        export::plot::write(path, &title, &series)?;
    }
    let plot_link = a
        .plot
        .as_deref()
        .map(|p| relative_to(p, a.markdown.as_deref()));
    let markdown = export::markdown::gate(&report, plot_link.as_deref());
    if let Some(path) = &a.markdown {
        crate::paths::write_atomic(path, markdown.as_bytes())?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        // A CI step summary cannot show a local image: the plot stays out.
        let text = export::markdown::gate(&report, None);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| {
                format!(
                    "appending to $GITHUB_STEP_SUMMARY ({})",
                    Path::new(&summary).display()
                )
            })?;
    }
    if let Some(path) = &a.json {
        export::json::write(path, &report)?;
    }
    // The decision, quiet or not: a script reads it.
    println!("{}", report.summary);
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `plot` as the Markdown file next to it would link it.
fn relative_to(plot: &Path, markdown: Option<&Path>) -> String {
    let same_dir = markdown.and_then(Path::parent) == plot.parent();
    match plot.file_name() {
        Some(name) if same_dir => name.to_string_lossy().into_owned(),
        _ => plot.display().to_string(),
    }
}
