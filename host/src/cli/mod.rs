//! The `anneval` command line: parse, call the library, print. Exit codes:
//! 0 when the verdict is `ok` (gate: passed), 1 for any other verdict (gate:
//! failed), 2 for usage and internal errors.

mod args;
mod datasets;
mod gate;
mod measure_args;
mod progress;
mod score;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anneval",
    version,
    about = "Safely score untrusted approximate-nearest-neighbour search kernels",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a candidate kernel, run it in the sandbox and score it.
    Score(score::ScoreArgs),
    /// Score a baseline and a candidate in one interleaved run; pass when
    /// the candidate is shown faster (exit 0), fail otherwise (exit 1).
    Gate(gate::GateArgs),
    /// List, make, fetch, import and inspect datasets.
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
}

/// Exit code for usage errors (clap uses it too).
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Datasets(command) => datasets::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(USAGE)
        }
    }
}
