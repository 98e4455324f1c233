//! A candidate component inside the sandbox: what it may import and must
//! export, and the three calls the host makes (build, restore, search).
//!
//! Every failure of the guest becomes a [`Failure`] with the right verdict;
//! nothing a guest does can panic the host.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use wasmtime::Trap;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Instance, InstancePre, Linker, Lower,
    ResourceAny, WasmStr,
};
use wasmtime::{Store, StoreContextMut};

use crate::sandbox::{
    GuestLog, GuestState, MemoryLimitExceeded, Metering, Sandbox, StoppedClockWait, is_sealed_wasi,
};
use crate::verdict::{Failure, Verdict};

/// The only interface a kernel may import.
pub const HOST_INTERFACE: &str = "anneval:kernel/host@0.1.0";
/// The interface a kernel must export.
pub const INDEX_INTERFACE: &str = "anneval:kernel/index@0.1.0";

const BUILD: &str = "build";
const CONSTRUCTOR: &str = "[constructor]searcher";
const SEARCH: &str = "[method]searcher.search-batch";

/// Extra bytes a call may hand the host beyond its expected result: room for
/// log lines (of which the host reads only the first few KiB) and an error
/// string.
const HOSTCALL_ALLOWANCE: usize = 16 << 20;

/// The WIT `metric` enum, as lowered into the guest.
#[derive(ComponentType, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum WitMetric {
    #[component(name = "euclidean")]
    Euclidean,
    #[component(name = "angular")]
    Angular,
}

/// A validated component, compiled for each engine. Cloning it is cheap
/// (the compiled code is shared).
#[derive(Clone)]
pub struct KernelComponent {
    deadline: Prepared,
    replay: Prepared,
    metering: Prepared,
}

/// A component compiled for one engine, linked, with its exports located.
#[derive(Clone)]
struct Prepared {
    pre: InstancePre<GuestState>,
    build: ComponentExportIndex,
    constructor: ComponentExportIndex,
    search: ComponentExportIndex,
}

/// What `build` returned.
pub struct Built {
    pub index: Vec<u8>,
    pub seconds: f64,
    pub log: GuestLog,
}

/// What one search pass returned.
pub struct PassOutput {
    /// Exactly `queries × k` ids once validated by the caller.
    pub ids: Vec<u32>,
    /// Host-measured duration of the search call alone.
    pub seconds: f64,
    /// Host-measured duration of restoring the searcher from the saved
    /// index before the call (untimed for the reward; reported).
    pub restore_seconds: f64,
    /// Instructions executed, on the metering engine.
    pub fuel: Option<u64>,
    pub log: GuestLog,
}

/// Components already compiled for a sandbox's engines, by the digest of
/// their bytes: a component evaluated again (the reference beside every
/// gathering and batch, a kernel scored with another seed) is not compiled
/// again. At most [`ComponentCache::CAPACITY`] are kept, the least recently
/// used dropped first; a component that failed to load is not kept.
/// Sharing one is safe: a `KernelComponent` is immutable compiled code,
/// and every call still runs in an instance of its own.
pub struct ComponentCache {
    capacity: usize,
    entries: Mutex<VecDeque<([u8; 32], KernelComponent)>>,
}

impl Default for ComponentCache {
    fn default() -> Self {
        ComponentCache::new(ComponentCache::CAPACITY)
    }
}

impl ComponentCache {
    /// How many compiled components an evaluator keeps.
    pub const CAPACITY: usize = 16;

    /// A cache keeping at most `capacity` components.
    pub fn new(capacity: usize) -> ComponentCache {
        ComponentCache {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// [`KernelComponent::load`], or the component compiled before from the
    /// same bytes on the same sandbox.
    pub fn load(&self, sandbox: &Sandbox, bytes: &[u8]) -> Result<KernelComponent, Failure> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(hit) = self.hit(&digest) {
            return Ok(hit);
        }
        let loaded = KernelComponent::load(sandbox, bytes)?;
        self.keep(digest, loaded.clone());
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<([u8; 32], KernelComponent)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept component of `digest`, now the most recently used.
    fn hit(&self, digest: &[u8; 32]) -> Option<KernelComponent> {
        let mut entries = self.lock();
        let at = entries.iter().position(|(d, _)| d == digest)?;
        let entry = entries.remove(at)?;
        let kernel = entry.1.clone();
        entries.push_front(entry);
        Some(kernel)
    }

    fn keep(&self, digest: [u8; 32], kernel: KernelComponent) {
        let mut entries = self.lock();
        entries.retain(|(d, _)| *d != digest);
        entries.push_front((digest, kernel));
        entries.truncate(self.capacity);
    }

    /// Whether the component of `bytes` is kept.
    pub fn contains(&self, bytes: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.lock().iter().any(|(d, _)| *d == digest)
    }

    /// How many components are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no component is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KernelComponent {
    /// Validates `bytes` as a kernel component and compiles it. Anything that
    /// is not a component of the kernel world is `rejected` here, before any
    /// of its code runs.
    pub fn load(sandbox: &Sandbox, bytes: &[u8]) -> Result<KernelComponent, Failure> {
        let max = sandbox.limits().max_component_bytes;
        if bytes.len() > max {
            return Err(Failure::rejected(format!(
                "the component is {} bytes; the limit is {max}",
                bytes.len()
            )));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(Failure::rejected(
                "not a WebAssembly binary (precompiled .cwasm files and other formats are \
                 refused: anneval compiles every component itself)",
            ));
        }
        if !wasmparser::Parser::is_component(bytes) {
            return Err(Failure::rejected(
                "a core WebAssembly module, not a component: build the kernel with \
                 `anneval score kernel.rs`, or wrap the module with wit-component",
            ));
        }
        // Compiling cannot be interrupted: it runs on a thread of its own,
        // given up on past the build deadline.
        let timeout = sandbox.limits().build_timeout;
        let engines = [Metering::Deadline, Metering::Replay, Metering::Fuel]
            .map(|m| sandbox.engine(m).clone());
        let bytes = bytes.to_vec();
        let compiled = crate::sandbox::abandonable(timeout, move || {
            let [deadline, replay, metering] = engines;
            Ok(KernelComponent {
                deadline: Prepared::new(&deadline, &bytes)?,
                replay: Prepared::new(&replay, &bytes)?,
                metering: Prepared::new(&metering, &bytes)?,
            })
        });
        match compiled {
            Ok(result) => result,
            Err(crate::sandbox::ReplayLost::Stuck(t)) => Err(Failure::rejected(format!(
                "compiling the component took more than {:.0} s (the build deadline)",
                t.as_secs_f64()
            ))),
            Err(crate::sandbox::ReplayLost::NoThread(e)) => Err(Failure::internal(format!(
                "starting the thread that compiles the component: {e}"
            ))),
        }
    }

    fn prepared(&self, metering: Metering) -> &Prepared {
        match metering {
            Metering::Deadline => &self.deadline,
            Metering::Replay => &self.replay,
            Metering::Fuel => &self.metering,
        }
    }

    /// Builds the index in a fresh instance and returns its saved bytes.
    pub fn build(
        &self,
        sandbox: &Sandbox,
        base: &[f32],
        dim: usize,
        metric: WitMetric,
        params: &[(String, String)],
    ) -> Result<Built, Failure> {
        let limits = sandbox.limits();
        let prepared = &self.deadline;
        let mut store = sandbox.store(Metering::Deadline);
        sandbox.arm(&mut store, limits.build_timeout, limits.memory_bytes);
        let instance = instantiate(prepared, &mut store, limits.build_timeout)?;
        let build = instance
            .get_typed_func::<(&[f32], u32, WitMetric, &[(String, String)]), (Vec<u8>,)>(
                &mut store,
                &prepared.build,
            )
            .map_err(|e| wrong_type(BUILD, e))?;
        let start = Instant::now();
        let result = build.call(&mut store, (base, dim as u32, metric, params));
        let seconds = start.elapsed().as_secs_f64();
        let (index,) = result.map_err(|e| classify(e, &store, limits.build_timeout))?;
        Ok(Built {
            index,
            seconds,
            log: store.into_data().into_log(),
        })
    }

    /// A fresh instance with a searcher restored from `index` (untimed). On
    /// the replay engine, only an `index` a deadline-engine restore has
    /// already come back from (see `sandbox`).
    pub fn restore(
        &self,
        sandbox: &Sandbox,
        metering: Metering,
        index: &[u8],
    ) -> Result<Searcher, Failure> {
        let timeout = sandbox.limits().call_timeout;
        self.restore_within(sandbox, metering, index, timeout, timeout)
    }

    /// [`KernelComponent::restore`] with `restore_timeout` as the deadline
    /// of the restore and `timeout` as that of the searcher's call (on the
    /// engines that have deadlines).
    pub fn restore_within(
        &self,
        sandbox: &Sandbox,
        metering: Metering,
        index: &[u8],
        restore_timeout: Duration,
        timeout: Duration,
    ) -> Result<Searcher, Failure> {
        let started = Instant::now();
        let prepared = self.prepared(metering);
        let mut store = sandbox.store(metering);
        if metering == Metering::Fuel {
            // Restoring is not what the fuel figure counts; give it plenty.
            store
                .set_fuel(u64::MAX)
                .map_err(|e| Failure::internal(format!("setting fuel: {e}")))?;
        }
        sandbox.arm(&mut store, restore_timeout, HOSTCALL_ALLOWANCE);
        let instance = instantiate(prepared, &mut store, restore_timeout)?;
        let constructor = instance
            .get_typed_func::<(&[u8],), (ResourceAny,)>(&mut store, &prepared.constructor)
            .map_err(|e| wrong_type(CONSTRUCTOR, e))?;
        let (searcher,) = constructor
            .call(&mut store, (index,))
            .map_err(|e| classify(e, &store, restore_timeout))?;
        Ok(Searcher {
            restore_seconds: started.elapsed().as_secs_f64(),
            store,
            instance,
            searcher,
            search: prepared.search,
            metering,
            timeout,
        })
    }
}

/// One restored searcher in its own instance: good for exactly one pass, so
/// no state survives from one pass to the next.
pub struct Searcher {
    store: Store<GuestState>,
    instance: Instance,
    searcher: ResourceAny,
    search: ComponentExportIndex,
    metering: Metering,
    timeout: Duration,
    /// Seconds from the fresh instance to the restored searcher.
    restore_seconds: f64,
}

impl Searcher {
    /// Answers the whole batch: the timed call. Only the call itself is
    /// inside the timer; the returned ids are validated by the caller. On
    /// the replay engine, only a call already made on the deadline engine.
    pub fn search_batch(
        mut self,
        sandbox: &Sandbox,
        queries: &[f32],
        dim: usize,
        k: usize,
        ef: usize,
    ) -> Result<PassOutput, Failure> {
        let n_queries = queries.len() / dim;
        let expected_bytes = n_queries.saturating_mul(k).saturating_mul(4);
        sandbox.arm(
            &mut self.store,
            self.timeout,
            expected_bytes.saturating_add(HOSTCALL_ALLOWANCE),
        );
        let fuel_budget = (n_queries as u64 + 1).saturating_mul(sandbox.limits().fuel_per_query);
        if self.metering == Metering::Fuel {
            self.store
                .set_fuel(fuel_budget)
                .map_err(|e| Failure::internal(format!("setting fuel: {e}")))?;
        }
        let search = self
            .instance
            .get_typed_func::<(ResourceAny, &[f32], u32, u32, u32), (Result<Vec<u32>, String>,)>(
                &mut self.store,
                &self.search,
            )
            .map_err(|e| wrong_type(SEARCH, e))?;
        let args = (self.searcher, queries, dim as u32, k as u32, ef as u32);

        let start = Instant::now();
        let result = search.call(&mut self.store, args);
        let seconds = start.elapsed().as_secs_f64();

        let fuel = match self.metering {
            Metering::Fuel => Some(fuel_budget - self.store.get_fuel().unwrap_or(0)),
            Metering::Deadline | Metering::Replay => None,
        };
        match result {
            Err(e) => Err(classify(e, &self.store, self.timeout)),
            Ok((Err(message),)) => Err(Failure::invalid_output(format!(
                "the kernel reported invalid output: {}",
                crate::process::truncate_text(&message, 2048)
            ))),
            Ok((Ok(ids),)) => Ok(PassOutput {
                ids,
                seconds,
                restore_seconds: self.restore_seconds,
                fuel,
                log: self.store.into_data().into_log(),
            }),
        }
    }
}

impl Prepared {
    fn new(engine: &wasmtime::Engine, bytes: &[u8]) -> Result<Prepared, Failure> {
        let component = Component::new(engine, bytes)
            .map_err(|e| Failure::rejected(format!("not a valid WebAssembly component: {e:#}")))?;
        let mut wasi = false;
        for (name, _) in component.component_type().imports(engine) {
            if is_sealed_wasi(name) {
                wasi = true;
            } else if name != HOST_INTERFACE {
                return Err(Failure::rejected(format!(
                    "the component imports `{name}`; a kernel may import only \
                     `{HOST_INTERFACE}` and the sealed WASI 0.2 interfaces (no clock, \
                     randomness, files or network reach it: see SECURITY.md)"
                )));
            }
        }
        let mut linker = host_linker(engine)?;
        // Only a component that imports WASI gets it, sealed; a kernel
        // compiled by anneval imports none, and its linker stays empty.
        if wasi {
            crate::sandbox::link_sealed_wasi(&mut linker)
                .map_err(|e| Failure::internal(format!("defining the sealed WASI: {e:#}")))?;
        }
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            Failure::rejected(format!(
                "the component's imports do not match what the host offers: {e:#}"
            ))
        })?;
        let interface = component
            .get_export_index(None, INDEX_INTERFACE)
            .ok_or_else(|| {
                Failure::rejected(format!("the component does not export `{INDEX_INTERFACE}`"))
            })?;
        let export = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| {
                    Failure::rejected(format!(
                        "the component's `{INDEX_INTERFACE}` has no `{name}`"
                    ))
                })
        };
        Ok(Prepared {
            build: export(BUILD)?,
            constructor: export(CONSTRUCTOR)?,
            search: export(SEARCH)?,
            pre,
        })
    }
}

/// The host side of the world: one bounded log function, nothing else.
fn host_linker(engine: &wasmtime::Engine) -> Result<Linker<GuestState>, Failure> {
    let mut linker = Linker::new(engine);
    let defined = linker.instance(HOST_INTERFACE).and_then(|mut host| {
        host.func_wrap(
            "log",
            |mut store: StoreContextMut<'_, GuestState>, (message,): (WasmStr,)| {
                // Read in place (no copy of a huge string), keep a bounded line.
                let line = match message.to_str(&store) {
                    Ok(text) => crate::process::truncate_text(&text, 4096),
                    Err(_) => "<log line is not valid UTF-8>".to_string(),
                };
                store.data_mut().log.push(&line);
                Ok(())
            },
        )
    });
    defined.map_err(|e| Failure::internal(format!("defining the host interface: {e:#}")))?;
    Ok(linker)
}

fn instantiate(
    prepared: &Prepared,
    store: &mut Store<GuestState>,
    timeout: Duration,
) -> Result<Instance, Failure> {
    prepared.pre.instantiate(&mut *store).map_err(|e| {
        if let Some(full) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            // Not the kernel's doing: the pool is shared by every evaluation.
            return Failure::internal(format!(
                "the sandbox's pool of instances is full ({full}): calls abandoned past their \
                 allowance keep their slots until they end; restart the service if this persists"
            ));
        }
        classify(e, store, timeout).during("instantiation")
    })
}

fn wrong_type(export: &str, err: wasmtime::Error) -> Failure {
    Failure::rejected(format!(
        "`{export}` of `{INDEX_INTERFACE}` does not have the kernel world's type: {err:#}"
    ))
}

/// Turns a failed guest call into a verdict.
fn classify(err: wasmtime::Error, store: &Store<GuestState>, timeout: Duration) -> Failure {
    let log = &*store.data().full_log();
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return trapped(with_panic(
            format!("the kernel called exit({}) through WASI", exit.0),
            log,
        ));
    }
    if let Some(wait) = err.downcast_ref::<StoppedClockWait>() {
        return Failure::new(Verdict::Timeout, wait.to_string());
    }
    if let Some(exceeded) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Failure::new(Verdict::MemoryLimit, exceeded.to_string());
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => Failure::new(
                Verdict::Timeout,
                format!(
                    "did not finish within the {:.1} s deadline",
                    timeout.as_secs_f64()
                ),
            ),
            Trap::OutOfFuel => Failure::new(
                Verdict::Timeout,
                "exceeded the instruction budget of the metering pass",
            ),
            Trap::StackOverflow => Failure::new(
                Verdict::Trap,
                "stack overflow: the WebAssembly stack is limited (deep recursion?)",
            ),
            // A C or C++ kernel's stack lives first in its linear memory,
            // so overflowing it wraps below address 0 and faults like any
            // access out of bounds.
            Trap::MemoryOutOfBounds => trapped(with_panic(
                format!(
                    "{trap} (an access out of bounds, or a C/C++ kernel overflowing its 1 MiB stack)"
                ),
                log,
            )),
            other => trapped(with_panic(other.to_string(), log)),
        };
    }
    let text = format!("{err:#}");
    if text.contains("too much data is being copied between the host and the guest") {
        return Failure::invalid_output(
            "the guest handed the host more data than the call allows \
             (a result list longer than queries × k ids?)",
        );
    }
    trapped(with_panic(text, log))
}

/// A trap, or `memory_limit` when the kernel said it ran out of memory (a
/// C or C++ allocation that failed below the memory limiter's ceiling).
fn trapped(message: String) -> Failure {
    let verdict = if message.contains("kernel failed: out of memory") {
        Verdict::MemoryLimit
    } else {
        Verdict::Trap
    };
    Failure::new(verdict, message)
}

/// Puts the guest's last words (its panic message, or its last log lines),
/// if it left any, before the trap's.
fn with_panic(trap: String, log: &GuestLog) -> String {
    match log.last_words() {
        Some(words) => format!("{words}\n({trap})"),
        None => trap,
    }
}
