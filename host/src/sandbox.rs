//! The sandbox: every wasmtime setting and every limit a guest runs under, in
//! one place.
//!
//! Three engines share one configuration but for how a call is stopped:
//! - the *deadline* engine (epoch interruption: a check at every loop header
//!   and function entry) runs the build, and each probe: the first call of a
//!   kernel at an ef. A ticker thread advances its epoch, which is how a
//!   wall-clock deadline reaches a guest stuck in a loop;
//! - the *replay* engine has no checks at all, and runs the timed passes.
//!   Epoch checks cost a kernel 15–25% of its speed (BENCHMARKS.md, "Where
//!   the wasm-native gap comes from"), and more in loop-heavy code than in
//!   unrolled code: a tax no native build pays, which a policy would learn
//!   to dodge. A timed call only ever *replays* a call that has already
//!   finished on the deadline engine: the same component, the same saved
//!   index, the same queries and arguments, on a fresh instance. WebAssembly
//!   is deterministic here (no clock, no randomness, no threads, relaxed SIMD
//!   deterministic, one memory limit), so the replay takes the same path and
//!   finishes too, with the same answers (the measurement checks that every
//!   timed call answers exactly as its probe did). Should a replay ever run
//!   on regardless, it runs on a thread of its own ([`Sandbox::replay`]):
//!   past [`replay_allowance`] the evaluation gives up on it with a verdict
//!   and goes on, and the thread, which nothing can interrupt, is left to
//!   finish at the lowest priority. The process never stops for it;
//! - the *metering* engine (fuel on) runs the untimed pass that counts
//!   instructions.
//!
//! wasmtime is built without its `threads` feature, so no guest can create
//! shared memory or threads: a guest is one thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, ResourceLimiter,
    Store, Strategy,
};

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
    /// How long a timed (replayed) call may run before the evaluation gives
    /// up on it; `None`: [`replay_allowance`] of `call_timeout`.
    pub replay_allowance: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 2 << 30,
            stack_bytes: 1 << 20,
            build_timeout: Duration::from_secs(900),
            call_timeout: Duration::from_secs(120),
            fuel_per_query: 20_000_000_000,
            max_component_bytes: 16 << 20,
            max_log_bytes: 64 << 10,
            replay_allowance: None,
        }
    }
}

/// How often the epoch advances: the granularity of every deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Which engine a store belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metering {
    /// Build, restores before probes, probes: epoch deadlines.
    Deadline,
    /// Timed passes, each replaying a call that finished on the deadline
    /// engine: no checks, no fuel.
    Replay,
    /// The instruction-counting pass: fuel on.
    Fuel,
}

/// How long a replay may run before it counts as stuck: four times the
/// call's deadline, and at least a minute more than it. The call it replays
/// finished within the deadline; a slow spell of the machine may stretch a
/// replay (BENCHMARKS.md, "The machine's own noise"), never this far.
pub fn replay_allowance(timeout: Duration) -> Duration {
    (timeout * 4).max(timeout + Duration::from_secs(60))
}

/// Calls the evaluations gave up on ([`abandonable`]) whose threads still
/// run, process-wide.
static ABANDONED_REPLAYS: AtomicUsize = AtomicUsize::new(0);

/// How many calls that ran past their allowance (replays, compiles) are
/// still running, on threads of their own at the lowest priority.
pub fn abandoned_replays() -> usize {
    ABANDONED_REPLAYS.load(Ordering::Relaxed)
}

/// Why a call run by [`abandonable`] has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayLost {
    /// It ran past its allowance, and was given up on.
    Stuck(Duration),
    /// No thread could be started for it.
    NoThread(String),
}

/// Runs `call` on a thread of its own and waits for it for `allowance`.
/// Past it, the call is given up on ([`ReplayLost::Stuck`]), and the
/// thread, which nothing can interrupt (a replay has no checks; wasmtime
/// cannot stop a compile), goes on at the lowest priority until the call
/// ends by itself; its result is dropped.
pub fn abandonable<R: Send + 'static>(
    allowance: Duration,
    call: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ReplayLost> {
    const RUNNING: u8 = 0;
    const DONE: u8 = 1;
    const ABANDONED: u8 = 2;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let tid = Arc::new(AtomicI32::new(0));
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (thread_tid, thread_state) = (tid.clone(), state.clone());
    thread::Builder::new()
        .name("anneval-bounded".into())
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            thread_tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            let result = call();
            if thread_state.swap(DONE, Ordering::SeqCst) == ABANDONED {
                ABANDONED_REPLAYS.fetch_sub(1, Ordering::Relaxed);
            }
            let _ = tx.send(result);
        })
        .map_err(|e| ReplayLost::NoThread(e.to_string()))?;
    match rx.recv_timeout(allowance) {
        Ok(result) => Ok(result),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ReplayLost::NoThread(
            "the call's thread ended without a result (it panicked)".into(),
        )),
        // The call ended just as the allowance did: its result is on its way.
        Err(_)
            if state
                .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_err() =>
        {
            rx.recv().map_err(|_| ReplayLost::Stuck(allowance))
        }
        Err(_) => {
            ABANDONED_REPLAYS.fetch_add(1, Ordering::Relaxed);
            let tid = tid.load(Ordering::SeqCst);
            if tid > 0 {
                // SAFETY: setpriority on a thread id of this process changes
                // only that thread's nice value.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
            }
            Err(ReplayLost::Stuck(allowance))
        }
    }
}

/// The sandbox: the three engines and the limits. Cloning it is cheap and
/// shares the engines (and their epoch ticker, which stops with the last
/// clone).
#[derive(Clone)]
pub struct Sandbox {
    deadline: Engine,
    replay: Engine,
    metering: Engine,
    limits: Limits,
    _ticker: Arc<Ticker>,
}

impl Sandbox {
    pub fn new(limits: Limits) -> anyhow::Result<Sandbox> {
        let deadline = Engine::new(&config(&limits, Metering::Deadline))?;
        let replay = Engine::new(&config(&limits, Metering::Replay))?;
        let metering = Engine::new(&config(&limits, Metering::Fuel))?;
        let ticker = Ticker::start(vec![deadline.clone(), metering.clone()]);
        Ok(Sandbox {
            deadline,
            replay,
            metering,
            limits,
            _ticker: Arc::new(ticker),
        })
    }

    /// The replay allowance of a call under these limits.
    pub fn replay_allowance(&self) -> Duration {
        self.limits
            .replay_allowance
            .unwrap_or_else(|| replay_allowance(self.limits.call_timeout))
    }

    /// Runs `call`, a replayed call, on a thread of its own and waits for it
    /// for the replay allowance (see [`abandonable`]).
    pub fn replay<R: Send + 'static>(
        &self,
        call: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ReplayLost> {
        abandonable(self.replay_allowance(), call)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn engine(&self, metering: Metering) -> &Engine {
        match metering {
            Metering::Deadline => &self.deadline,
            Metering::Replay => &self.replay,
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
                wasi: None,
                metering,
            },
        );
        store.limiter(|state| &mut state.limiter);
        if metering != Metering::Replay {
            store.epoch_deadline_trap();
        }
        store
    }

    /// Arms `store` for one call: a wall-clock deadline, and a cap on the
    /// bytes the call may hand back to the host (checked by wasmtime before
    /// it allocates anything, so an oversized result costs the host nothing).
    /// On the replay engine there is no deadline: the call runs under
    /// [`Sandbox::replay`]'s allowance instead (see the module's
    /// documentation).
    pub fn arm(&self, store: &mut Store<GuestState>, timeout: Duration, max_result_bytes: usize) {
        store.set_hostcall_fuel(max_result_bytes);
        if store.data().metering == Metering::Replay {
            return;
        }
        let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    }
}

/// The one engine configuration; `metering` decides only how a call is
/// stopped (epoch deadline, nothing, or fuel).
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
        // The defaults keep every bounds check out of compiled code: a
        // 32-bit memory is reserved in full (4 GiB) with guard pages behind
        // it, so an out-of-bounds access faults and becomes a trap.
        .epoch_interruption(metering != Metering::Replay)
        .consume_fuel(metering == Metering::Fuel)
        .max_wasm_stack(limits.stack_bytes)
        // Compiled on the calling thread, which is a measurement's, on the
        // core it has claimed: wasmtime's own threads would run on any core,
        // including one where another worker is timing a kernel.
        .parallel_compilation(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
    c
}

/// Instances a pool holds at once, per engine: a worker's build or call,
/// a timed call's thread, and calls abandoned past their allowance (which
/// hold their slot until they end) fit many times over.
pub const POOL_INSTANCES: u32 = 32;

/// Bytes of a memory slot that stay mapped after its instance ends, set to
/// zero by `memset` instead of being unmapped: the next instance in the
/// slot (a kernel restores into the same slot call after call) takes no
/// page fault on them. Enough for the default set's restores (an 8 MB index
/// handed over, then read into the searcher's own structures).
pub const POOL_KEEP_RESIDENT: usize = 32 << 20;

/// Slots an engine keeps warm (mapped, for the kernel that used them last)
/// beyond those in use: past this many, a new kernel takes the least
/// recently used warm slot rather than a cold one, so the memory the pool
/// keeps resident stays near `(POOL_WARM_SLOTS + instances in use) ×
/// POOL_KEEP_RESIDENT` per engine however many kernels a service sees.
pub const POOL_WARM_SLOTS: usize = 2;

/// Every instance's memories, tables and instance state come from a pool
/// of slots reserved once per engine: a slot is reset when its instance
/// ends (memory to zero, then the module's data mapped copy-on-write again
/// when the next instance starts), so an instance sees nothing an earlier
/// one wrote, and an instance does not pay for fresh mappings and page
/// faults on every call. The per-module limits are those of
/// [`GuestLimiter`] (4 memories, 64 tables of up to 2^20 elements), which
/// still decides how far memory may grow; a full pool is an `internal`
/// failure, never the kernel's verdict.
fn pool() -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 16)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 16)
        .max_memories_per_module(4)
        .max_tables_per_module(64)
        .table_elements(1 << 20)
        .max_unused_warm_slots(POOL_WARM_SLOTS as u32)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(1 << 20);
    p
}

/// State each store carries: the limiter, the guest's log, and for a
/// component that imports WASI, its sealed context (made on first use).
pub struct GuestState {
    limiter: GuestLimiter,
    pub log: GuestLog,
    wasi: Option<Box<SealedWasi>>,
    metering: Metering,
}

impl GuestState {
    /// The log, with what the guest wrote to WASI's stdout and stderr after
    /// it (line by line, within the same byte budget).
    pub fn full_log(&self) -> std::borrow::Cow<'_, GuestLog> {
        match &self.wasi {
            None => std::borrow::Cow::Borrowed(&self.log),
            Some(wasi) => {
                let mut log = self.log.clone();
                for pipe in [&wasi.stdout, &wasi.stderr] {
                    let bytes = pipe.contents();
                    for line in String::from_utf8_lossy(&bytes).lines() {
                        log.push(line);
                    }
                }
                std::borrow::Cow::Owned(log)
            }
        }
    }

    /// The store's state taken apart: its full log.
    pub fn into_log(self) -> GuestLog {
        if self.wasi.is_none() {
            return self.log;
        }
        self.full_log().into_owned()
    }
}

/// The WASI interfaces a ready component may import (any 0.2 version), each
/// answered by [`SealedWasi`] with nothing of the outside world: see
/// SECURITY.md, "The WASI surface". Any other import is refused.
pub const SEALED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether `import` (a component import name) is a sealed WASI interface.
pub fn is_sealed_wasi(import: &str) -> bool {
    match import.split_once('@') {
        Some((name, version)) => SEALED_WASI.contains(&name) && version.starts_with("0.2."),
        None => false,
    }
}

/// Bytes of stdout, and of stderr, a WASI component may write per call;
/// past them the stream reports itself closed.
const STDIO_BYTES: usize = 64 << 10;
/// The fixed seed of a WASI component's "random" bytes.
const WASI_SEED: u64 = 0x616e_6e65_7661_6c00;

/// The WASI context of a ready component, sealed: no preopened directories,
/// no environment or arguments, stdin empty, stdout and stderr into bounded
/// buffers that end in the log, clocks that read 0, randomness from a fixed
/// seed, no sockets and no name lookups, and timers on the stopped clock
/// ([`StoppedClock`]).
struct SealedWasi {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime_wasi::ResourceTable,
    stdout: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
}

/// A clock stopped at 0.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The monotonic clock a sealed component sees, in place of wasmtime-wasi's:
/// it reads 0 (as [`FrozenClock`] does) and its timers live on that stopped
/// clock. A zero wait (or an instant not after 0) is due at once, as a yield
/// is; any other timer would never fire, so asking for one ends the call
/// with [`StoppedClockWait`] there and then. wasmtime-wasi's own timers run on
/// real time and park the host thread in `poll`, where no deadline reaches it:
/// a component could sleep past every limit, or read real time from which of
/// several timers fired first.
struct StoppedClock;

impl wasmtime::component::HasData for StoppedClock {
    type Data<'a> = StoppedClockView<'a>;
}

struct StoppedClockView<'a> {
    table: &'a mut wasmtime_wasi::ResourceTable,
}

/// A timer on the stopped clock that is due: ready whenever asked.
struct DueTimer;

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for DueTimer {
    async fn ready(&mut self) {}
}

/// A component asked for a timer the stopped clock would never fire.
#[derive(Debug)]
pub struct StoppedClockWait {
    /// How long it asked to wait, in nanoseconds.
    pub nanos: u64,
}

impl std::fmt::Display for StoppedClockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the kernel asked WASI for a timer of {:.3} s (a sleep or a poll with a timeout); \
             the sandbox's clocks are stopped, so it would wait forever: a kernel has \
             nothing to wait for",
            self.nanos as f64 / 1e9
        )
    }
}

impl std::error::Error for StoppedClockWait {}

impl StoppedClockView<'_> {
    fn timer(
        &mut self,
        nanos: u64,
    ) -> wasmtime::Result<wasmtime::component::Resource<wasmtime_wasi::p2::DynPollable>> {
        if nanos > 0 {
            return Err(wasmtime::Error::new(StoppedClockWait { nanos }));
        }
        let due = self.table.push(DueTimer)?;
        wasmtime_wasi::p2::subscribe(self.table, due)
    }
}

impl wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host for StoppedClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(0)
    }
    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }
    fn subscribe_instant(
        &mut self,
        when: u64,
    ) -> wasmtime::Result<wasmtime::component::Resource<wasmtime_wasi::p2::DynPollable>> {
        self.timer(when)
    }
    fn subscribe_duration(
        &mut self,
        duration: u64,
    ) -> wasmtime::Result<wasmtime::component::Resource<wasmtime_wasi::p2::DynPollable>> {
        self.timer(duration)
    }
}

/// Defines the sealed WASI in `linker`: wasmtime-wasi's implementation of
/// every interface of [`SEALED_WASI`] over [`SealedWasi`]'s context, with the
/// monotonic clock replaced by [`StoppedClock`].
pub fn link_sealed_wasi(
    linker: &mut wasmtime::component::Linker<GuestState>,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let linked = wasmtime_wasi::p2::bindings::clocks::monotonic_clock::add_to_linker::<
        GuestState,
        StoppedClock,
    >(linker, |state| StoppedClockView {
        table: &mut state.sealed_wasi().table,
    });
    linker.allow_shadowing(false);
    linked
}

impl SealedWasi {
    fn new() -> SealedWasi {
        use rand::{RngCore, SeedableRng};
        let seeded = || {
            let mut bytes = vec![0u8; 4096];
            rand_chacha::ChaCha8Rng::seed_from_u64(WASI_SEED).fill_bytes(&mut bytes);
            wasmtime_wasi::Deterministic::new(bytes)
        };
        let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(STDIO_BYTES);
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(STDIO_BYTES);
        let ctx = wasmtime_wasi::WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(seeded())
            .insecure_random(seeded())
            .insecure_random_seed(u128::from(WASI_SEED))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        SealedWasi {
            ctx,
            table: wasmtime_wasi::ResourceTable::new(),
            stdout,
            stderr,
        }
    }
}

impl GuestState {
    fn sealed_wasi(&mut self) -> &mut SealedWasi {
        self.wasi.get_or_insert_with(|| Box::new(SealedWasi::new()))
    }
}

impl wasmtime_wasi::WasiView for GuestState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let wasi = self.sealed_wasi();
        wasmtime_wasi::WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
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
#[derive(Clone, Debug, Default)]
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

/// Advances engines' epochs every [`EPOCH_TICK`] until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
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
        Ticker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_past_its_allowance_is_given_up_on_and_left_to_finish() {
        let sandbox = Sandbox::new(Limits {
            replay_allowance: Some(Duration::from_millis(100)),
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(sandbox.replay(|| 7), Ok(7));
        let before = abandoned_replays();
        let (tx, rx) = std::sync::mpsc::channel();
        let lost = sandbox.replay(move || {
            let _ = rx.recv_timeout(Duration::from_secs(30));
            1
        });
        assert_eq!(lost, Err(ReplayLost::Stuck(Duration::from_millis(100))));
        assert!(abandoned_replays() > before);
        // The next replay is unaffected, and the abandoned thread, once its
        // call ends, is no longer counted.
        assert_eq!(sandbox.replay(|| 8), Ok(8));
        tx.send(()).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while abandoned_replays() > before && std::time::Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(abandoned_replays(), before);
        assert_eq!(
            replay_allowance(Duration::from_secs(120)),
            Duration::from_secs(480)
        );
        assert_eq!(
            replay_allowance(Duration::from_secs(1)),
            Duration::from_secs(61)
        );
    }

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
