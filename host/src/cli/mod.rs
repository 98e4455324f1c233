//! The `anneval` command line: parse, call the library, print. Exit codes:
//! 0 when the verdict is `ok` (gate: passed), 1 for any other verdict (gate:
//! failed), 2 for usage and internal errors.

mod args;
mod confirm;
mod datasets;
mod gate;
mod measure_args;
mod progress;
mod score;
mod serve;

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
    /// Score candidates on both engines (wasm and native) in one run and
    /// show how faithfully the sandbox ranks them.
    Confirm(confirm::ConfirmArgs),
    /// The reward service for RL trainers: HTTP on loopback, a worker per
    /// core, a durable ledger.
    Serve(serve::ServeArgs),
    /// List, make, fetch, import and inspect datasets.
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
}

/// The command line's definition, its parser and every option: for checking
/// commands written elsewhere (the book's and README's, `tests/docs.rs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Exit code for usage errors (clap uses it too).
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    // Like any Unix filter, end quietly when the reader of our output goes
    // away (`anneval datasets list | head`), instead of failing to print.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Descriptors our caller left open are not ours to pass on: no program
    // anneval starts (compilers, runners, trainers' helpers) inherits one.
    if let Err(e) = crate::process::cloexec_inherited() {
        eprintln!("anneval: could not mark inherited descriptors close-on-exec: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(args) => score::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Confirm(args) => confirm::run(args),
        Command::Serve(args) => serve::run(args),
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
