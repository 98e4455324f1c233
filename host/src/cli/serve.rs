//! `anneval serve`: the reward service for RL trainers (see `serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::paths;
use crate::sandbox::Limits;
use crate::serve::{self, ServeConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Only loopback by default: put a proxy with
    /// authentication in front before exposing it.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Worker threads measuring at once (at most one per core) [default:
    /// the number of cores].
    #[arg(long)]
    workers: Option<usize>,
    /// Jobs that may wait for a worker; more are refused with 429.
    #[arg(long, default_value_t = 32)]
    queue: usize,
    /// The ledger (SQLite) [default: <cache dir>/ledger.sqlite].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    max_body: usize,
    /// Wall-clock budget of one evaluation in seconds (then `timeout`).
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    budget: u64,
    /// Seconds running work may take to finish when stopping.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    grace: u64,
    /// Guest memory limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory_mib: usize,
    /// Deadline of each restore and search pass, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
    /// A codebase requests may name as their template (`"template":
    /// NAME`, the name in its anneval.toml), repeatable.
    #[arg(long = "template", value_name = "DIR")]
    templates: Vec<PathBuf>,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let cache_dir = paths::cache_dir()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = ServeConfig {
        addr: a.addr,
        workers: a.workers.unwrap_or(cores),
        queue: a.queue,
        db: a.db.unwrap_or_else(|| cache_dir.join("ledger.sqlite")),
        max_body: a.max_body,
        budget: Duration::from_secs(a.budget),
        grace: Duration::from_secs(a.grace),
        limits: Limits {
            memory_bytes: a.memory_mib << 20,
            call_timeout: Duration::from_secs(a.timeout),
            ..Limits::default()
        },
        data_dir: paths::data_dir()?,
        cache_dir,
        templates: a.templates,
    };
    serve::run(config)?;
    Ok(ExitCode::SUCCESS)
}
