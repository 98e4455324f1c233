//! The sandbox: every wasmtime setting and every limit a guest runs under, in
//! one place.
//!
//! Two engines share one configuration but for fuel: the *timing* engine
//! (epoch interruption only, which costs no measurable speed) runs the timed
//! passes, and the *metering* engine (fuel on) runs the untimed pass that
//! counts instructions. A ticker thread advances both engines' epochs, which
//! is how a wall-clock deadline reaches a guest stuck in a loop.
//!
//! wasmtime is built without its `threads` feature, so no guest can create
//! shared memory or threads: a guest is one thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel, ResourceLimiter, Store, Strategy};

/// The limits of one evaluation.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Linear memory a guest may grow to (all its memories together).
    pub memory_bytes: usize,
    /// WebAssembly stack; deeper recursion traps.
    pub stack_bytes: usize,
    /// Wall-clock deadline of the `build` call.
    pub build_timeout: Duration,
    /// Wall-clock deadline of each restore and each search pass.
    pub call_timeout: Duration,
    /// Instructions the metering pass may execute per query before it counts
    /// as a timeout (a second guard behind the wall clock).
    pub fuel_per_query: u64,
    /// Components larger than this are refused unread.
    pub max_component_bytes: usize,
    /// Diagnostic log kept per evaluation.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 2 << 30,
            stack_bytes: 1 << 20,
            build_timeout: Duration::from_secs(900),
            call_timeout: Duration::from_secs(120),
            fuel_per_query: 20_000_000_000,
            max_component_bytes: 64 << 20,
            max_log_bytes: 64 << 10,
        }
    }
}

/// How often the epoch advances: the granularity of every deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Which engine a store belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metering {
    /// Timed passes: no fuel, epoch deadlines only.
    Timing,
    /// The instruction-counting pass: fuel on.
    Fuel,
}

pub struct Sandbox {
    timing: Engine,
    metering: Engine,
    limits: Limits,
    ticker: Option<Ticker>,
}

impl Sandbox {
    pub fn new(limits: Limits) -> anyhow::Result<Sandbox> {
        let timing = Engine::new(&config(&limits, Metering::Timing))?;
        let metering = Engine::new(&config(&limits, Metering::Fuel))?;
        let ticker = Ticker::start(vec![timing.clone(), metering.clone()]);
        Ok(Sandbox {
            timing,
            metering,
            limits,
            ticker: Some(ticker),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn engine(&self, metering: Metering) -> &Engine {
        match metering {
            Metering::Timing => &self.timing,
            Metering::Fuel => &self.metering,
        }
    }

    /// A fresh store: its own memory limit and log, no deadline armed yet.
    pub fn store(&self, metering: Metering) -> Store<GuestState> {
        let mut store = Store::new(
            self.engine(metering),
            GuestState {
                limiter: GuestLimiter {
                    memory_bytes: self.limits.memory_bytes,
                },
                log: GuestLog::new(self.limits.max_log_bytes),
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store
    }

    /// Arms `store` for one call: a wall-clock deadline, and a cap on the
    /// bytes the call may hand back to the host (checked by wasmtime before
    /// it allocates anything, so an oversized result costs the host nothing).
    pub fn arm(&self, store: &mut Store<GuestState>, timeout: Duration, max_result_bytes: usize) {
        let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.set_hostcall_fuel(max_result_bytes);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

fn config(limits: &Limits, metering: Metering) -> Config {
    let mut c = Config::new();
    c.strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_component_model(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        // Relaxed SIMD gives the same answer on every CPU, so a score never
        // depends on which machine ran it.
        .relaxed_simd_deterministic(true)
        .epoch_interruption(true)
        .consume_fuel(metering == Metering::Fuel)
        .max_wasm_stack(limits.stack_bytes);
    c
}

/// State each store carries: the limiter and the guest's log.
pub struct GuestState {
    limiter: GuestLimiter,
    pub log: GuestLog,
}

/// Refuses memory beyond the limit with a typed error, so the verdict is
/// `memory_limit` however the guest would have handled a failed allocation.
struct GuestLimiter {
    memory_bytes: usize,
}

/// The error a guest gets (as a trap) when it asks for too much memory.
#[derive(Debug)]
pub struct MemoryLimitExceeded {
    pub requested: usize,
    pub limit: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the guest asked for {} MiB of linear memory; the limit is {} MiB",
            self.requested >> 20,
            self.limit >> 20
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                requested: desired,
                limit: self.memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A kernel needs a function table, not a large one.
        Ok(desired <= 1 << 20)
    }

    // A wit-bindgen component needs a handful of core instances and one
    // memory; these bounds only stop a crafted component from piling them up.
    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        4
    }
}

/// The guest's diagnostic log: bounded, with the last panic message and the
/// last few lines kept apart (even when the budget is spent) so a trap can
/// say why it happened.
#[derive(Debug, Default)]
pub struct GuestLog {
    lines: Vec<String>,
    bytes: usize,
    max_bytes: usize,
    dropped: usize,
    last_panic: Option<String>,
    tail: std::collections::VecDeque<String>,
}

/// Lines kept for a trap's message when the guest left no panic: a C or C++
/// kernel's "kernel failed: ..." line, a failed assertion, libc++'s abort
/// message, the last thing it printed.
const TAIL_LINES: usize = 4;

/// Longest log line kept; the rest of a line is cut.
const MAX_LINE: usize = 4096;

impl GuestLog {
    pub fn new(max_bytes: usize) -> Self {
        GuestLog {
            max_bytes,
            ..Default::default()
        }
    }

    pub fn push(&mut self, line: &str) {
        let line = crate::process::truncate_text(line, MAX_LINE);
        if line.starts_with("panicked at ") {
            self.last_panic = Some(line.clone());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail
            .push_back(crate::process::truncate_text(&line, MAX_LINE / 4));
        if self.bytes + line.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += line.len();
        self.lines.push(line);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn dropped(&self) -> usize {
        self.dropped
    }

    pub fn last_panic(&self) -> Option<&str> {
        self.last_panic.as_deref()
    }

    /// Why the guest stopped, as far as its log says: its last panic, or
    /// else its last few lines.
    pub fn last_words(&self) -> Option<String> {
        match &self.last_panic {
            Some(panic) => Some(panic.clone()),
            None if self.tail.is_empty() => None,
            None => Some(self.tail.iter().cloned().collect::<Vec<_>>().join("\n")),
        }
    }
}

/// Advances engines' epochs every [`EPOCH_TICK`] until stopped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<()>,
}

impl Ticker {
    fn start(engines: Vec<Engine>) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::Builder::new()
            .name("anneval-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    engines.iter().for_each(Engine::increment_epoch);
                }
            })
            .expect("spawning the epoch ticker thread");
        Ticker { stop, handle }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_bounded_and_keeps_the_panic() {
        let mut log = GuestLog::new(100);
        log.push("hello");
        for _ in 0..50 {
            log.push("0123456789");
        }
        log.push("panicked at src/kernel.rs:1:1:\nboom");
        assert!(log.lines().iter().map(String::len).sum::<usize>() <= 100);
        assert!(log.dropped() > 0);
        assert_eq!(
            log.last_panic(),
            Some("panicked at src/kernel.rs:1:1:\nboom")
        );
        log.push("after the panic");
        assert_eq!(
            log.last_words().as_deref(),
            Some("panicked at src/kernel.rs:1:1:\nboom"),
            "a panic is the reason even when lines follow it"
        );
    }

    #[test]
    fn without_a_panic_the_last_lines_are_kept_past_the_budget() {
        let mut log = GuestLog::new(10);
        assert_eq!(log.last_words(), None);
        for i in 0..10 {
            log.push(&format!("line {i}"));
        }
        log.push("kernel failed: threw std::runtime_error: bad");
        assert_eq!(
            log.last_words().as_deref(),
            Some("line 7\nline 8\nline 9\nkernel failed: threw std::runtime_error: bad")
        );
    }
}
