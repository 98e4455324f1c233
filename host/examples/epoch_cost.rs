//! What epoch interruption costs a kernel: the same search call, each time on
//! a fresh instance restored from the same index, timed on the sandbox's
//! deadline engine (a check at every loop header and function entry) and on
//! its replay engine (no checks, the one timed passes use), alternating.
//! Prints, per ef, the median over the rounds of deadline seconds ÷ replay
//! seconds.
//!
//!     cargo run --release --example epoch_cost -- DATASET [MAX_BASE] [ROUNDS]
//!
//! DATASET is a registered name or an .hdf5 path (as for `anneval score`);
//! MAX_BASE keeps the first base points (default all); ROUNDS defaults to 7.
//! The reference kernel is measured on the first 1,000 queries at ef 10, 32
//! and 128. Run it with nothing else on the machine.

use std::time::Duration;

use anneval::compile::CompileLimits;
use anneval::dataset::{Metric, registry};
use anneval::guest::{KernelComponent, WitMetric};
use anneval::sandbox::{Limits, Metering};
use anneval::{Candidate, Evaluator, paths};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(spec) = args.first() else {
        anyhow::bail!("usage: epoch_cost DATASET [MAX_BASE] [ROUNDS]");
    };
    let max_base: Option<usize> = args.get(1).map(|s| s.parse()).transpose()?;
    let rounds: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(7)
        .max(1);

    let mut data = registry::open(spec, &paths::data_dir()?, &|_| {})?;
    if let Some(n) = max_base {
        data.train.truncate(n * data.dim);
    }
    let queries = &data.test[..data.test.len().min(1000 * data.dim)];
    let metric = match data.metric {
        Metric::Euclidean => WitMetric::Euclidean,
        Metric::Angular => WitMetric::Angular,
    };

    let limits = Limits {
        call_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let evaluator = Evaluator::new(limits, CompileLimits::default(), &paths::cache_dir()?)?;
    let sandbox = evaluator.sandbox();
    let bytes = evaluator
        .component(&Candidate::Reference)
        .0
        .map_err(|f| anyhow::anyhow!("{}", f.message))?;
    let kernel =
        KernelComponent::load(sandbox, &bytes).map_err(|f| anyhow::anyhow!("{}", f.message))?;
    let index = kernel
        .build(sandbox, &data.train, data.dim, metric, &[])
        .map_err(|f| anyhow::anyhow!("{}", f.message))?
        .index;
    let seconds = |metering, ef| -> anyhow::Result<f64> {
        kernel
            .restore(sandbox, metering, &index)
            .and_then(|s| s.search_batch(sandbox, queries, data.dim, 10, ef))
            .map(|out| out.seconds)
            .map_err(|f| anyhow::anyhow!("{}", f.message))
    };

    println!(
        "{}: {} base points, {} queries, reference kernel",
        data.name,
        data.train.len() / data.dim,
        queries.len() / data.dim
    );
    for ef in [10, 32, 128] {
        seconds(Metering::Deadline, ef)?; // the probe: a warm-up
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (deadline, replay) = if round % 2 == 0 {
                let d = seconds(Metering::Deadline, ef)?;
                (d, seconds(Metering::Replay, ef)?)
            } else {
                let r = seconds(Metering::Replay, ef)?;
                (seconds(Metering::Deadline, ef)?, r)
            };
            ratios.push(deadline / replay);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "ef {ef:>3}: deadline-engine seconds / replay-engine seconds, median of {rounds}: {:.3} (range {:.3}-{:.3})",
            ratios[rounds / 2],
            ratios[0],
            ratios[rounds - 1]
        );
    }
    Ok(())
}
