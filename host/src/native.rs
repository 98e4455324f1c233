//! The native engine: the candidate's `kernel.rs` compiled for this CPU
//! (see `guest-template/src/native_main.rs`) and run as a child process in
//! the OS sandbox, one process per call, fed over pipes and timed from the
//! outside.
//!
//! The child sees nothing but its own statically linked binary (and
//! `/usr`, `/proc`, `/dev` of bubblewrap's making): no network, no host
//! files, a cleared environment. A seccomp filter refuses every system call
//! but memory management, reading its standard input, writing its standard
//! output and error, signals and exit: no files, sockets, processes or
//! threads. Memory (address space), CPU time and file sizes are limited, and
//! the whole process is killed at the deadline.
//!
//! A timed pass: the host starts the process and sends the saved index; the
//! kernel loads it and says it is ready (untimed); then the host starts its
//! clock, sends the queries, and stops it when the last id has arrived. No
//! query is in the process, or in a pipe it can read, before the clock
//! starts: whatever the kernel does before it says ready (and whatever it
//! reads from its input itself), it cannot have begun on the queries. The
//! runner answers on a copy of its standard output and points standard
//! output at standard error, so a kernel's prints are diagnostics; a kernel
//! that writes a forged answer itself could only write answers it computed
//! from queries it received after the clock started.

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::dataset::Metric;
use crate::guest::{Built, PassOutput};
use crate::jail::{Jail, ResourceLimits};
use crate::process::truncate_text;
use crate::sandbox::{GuestLog, Limits};
use crate::verdict::{Failure, Verdict};

/// Where the binary is inside the jail.
const JAIL_BINARY: &str = "/kernel/native";
/// The runner's answer once the index is loaded (see the guest's
/// `native.rs`).
const READY: u8 = b'R';
/// The host's signal to search, sent with its clock started.
const GO: u8 = b'G';
/// Address space beyond the memory limit, for the binary and its stacks.
const OVERHEAD: u64 = 256 << 20;

/// A natively compiled kernel.
pub struct NativeKernel {
    binary: PathBuf,
    limits: Limits,
    filter: Vec<u8>,
}

impl NativeKernel {
    pub fn new(binary: &Path, limits: Limits) -> Result<NativeKernel, Failure> {
        Ok(NativeKernel {
            binary: binary.to_path_buf(),
            limits,
            filter: seccomp_filter()
                .map_err(|e| Failure::internal(format!("building the seccomp filter: {e}")))?,
        })
    }

    fn spawn(&self, timeout: Duration) -> Result<Running, Failure> {
        let limits = ResourceLimits {
            cpu_seconds: timeout.as_secs() + 1,
            address_space: self.limits.memory_bytes as u64 + OVERHEAD,
            file_size: 0,
            open_files: 16,
        };
        let mut cmd = Jail::new(limits)
            .ro(&self.binary, JAIL_BINARY)
            .seccomp(self.filter.clone())
            .command(JAIL_BINARY, &[]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            Failure::internal(format!("starting the native kernel in bubblewrap: {e}"))
        })?;
        let stderr = child.stderr.take().expect("piped");
        let diagnostics = std::thread::spawn(move || drain_diagnostics(stderr));
        let expired = Arc::new(AtomicBool::new(false));
        let (cancel, deadline) = mpsc::channel::<()>();
        let pgid = child.id() as libc::pid_t;
        let flag = expired.clone();
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = deadline.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                // SAFETY: signalling the process group of our own child.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        });
        let input = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
        let output = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped"));
        Ok(Running {
            child,
            input: Some(input),
            output,
            diagnostics: Some(diagnostics),
            watchdog: Some((cancel, watchdog)),
            expired,
            timeout,
        })
    }

    /// Builds the index in a fresh process and returns its saved bytes.
    pub fn build(
        &self,
        base: &[f32],
        dim: usize,
        metric: Metric,
        params: &[(String, String)],
    ) -> Result<Built, Failure> {
        let mut run = self.spawn(self.limits.build_timeout)?;
        let start = Instant::now();
        let exchange = (|| -> std::io::Result<Vec<u8>> {
            let w = run.input.as_mut().expect("open");
            w.write_all(b"B")?;
            w.write_all(&(dim as u32).to_le_bytes())?;
            w.write_all(&[u8::from(metric == Metric::Angular)])?;
            w.write_all(&(params.len() as u32).to_le_bytes())?;
            for (k, v) in params {
                for s in [k, v] {
                    w.write_all(&(s.len() as u32).to_le_bytes())?;
                    w.write_all(s.as_bytes())?;
                }
            }
            w.write_all(&(base.len() as u64).to_le_bytes())?;
            w.write_all(bytemuck::cast_slice(base))?;
            w.flush()?;
            run.input = None;
            let len = run.answer()?;
            if len > self.limits.memory_bytes as u64 {
                return Err(refuse(Refusal::TooLarge(format!(
                    "the saved index of {len} bytes is larger than the memory limit"
                ))));
            }
            let mut index = vec![0u8; len as usize];
            run.output.read_exact(&mut index)?;
            Ok(index)
        })();
        let seconds = start.elapsed().as_secs_f64();
        let index = run.finish(exchange)?;
        Ok(Built {
            index,
            seconds,
            log: GuestLog::new(0),
        })
    }

    /// One timed pass in a fresh process: the index is loaded untimed, then
    /// the clock runs from sending the queries to receiving the last id.
    pub fn pass(
        &self,
        index: &[u8],
        queries: &[f32],
        dim: usize,
        k: usize,
        ef: usize,
    ) -> Result<PassOutput, Failure> {
        self.pass_within(index, queries, dim, k, ef, self.limits.call_timeout)
    }

    /// [`NativeKernel::pass`] with `timeout` as the process's deadline.
    pub fn pass_within(
        &self,
        index: &[u8],
        queries: &[f32],
        dim: usize,
        k: usize,
        ef: usize,
        timeout: Duration,
    ) -> Result<PassOutput, Failure> {
        let started = Instant::now();
        let mut run = self.spawn(timeout)?;
        let expected = queries.len() / dim * k;
        let exchange = (|| -> std::io::Result<(Vec<u32>, f64, f64)> {
            let w = run.input.as_mut().expect("open");
            w.write_all(b"S")?;
            w.write_all(&(index.len() as u64).to_le_bytes())?;
            w.write_all(index)?;
            for v in [dim as u32, k as u32, ef as u32] {
                w.write_all(&v.to_le_bytes())?;
            }
            w.flush()?;
            let mut ready = [0u8; 1];
            run.output.read_exact(&mut ready)?;
            if ready[0] != READY {
                return Err(std::io::Error::other("the kernel did not say it was ready"));
            }

            // The timed part: the go signal and the queries, the search, the
            // answer.
            let start = Instant::now();
            let restore_seconds = started.elapsed().as_secs_f64();
            let w = run.input.as_mut().expect("open");
            w.write_all(&[GO])?;
            w.write_all(&(queries.len() as u64).to_le_bytes())?;
            w.write_all(bytemuck::cast_slice(queries))?;
            w.flush()?;
            let count = run.answer()? as usize;
            if count != expected {
                return Err(refuse(Refusal::Invalid(format!(
                    "expected {} queries × k = {k} ids ({expected}), got {count}",
                    queries.len() / dim
                ))));
            }
            let mut ids = vec![0u32; count];
            run.output.read_exact(bytemuck::cast_slice_mut(&mut ids))?;
            Ok((ids, start.elapsed().as_secs_f64(), restore_seconds))
        })();
        let (ids, seconds, restore_seconds) = run.finish(exchange)?;
        Ok(PassOutput {
            ids,
            seconds,
            restore_seconds,
            fuel: None,
            log: GuestLog::new(0),
        })
    }
}

/// Bytes of a runner's standard error kept from its start, and from its end.
const DIAGNOSTICS_HEAD: usize = 16 << 10;
const DIAGNOSTICS_TAIL: usize = 48 << 10;

/// Reads a runner's standard error to its end, so that a kernel that writes
/// much never blocks or dies on a full or closed pipe, and keeps its first
/// and last bytes (a panic's message comes last), marking what was dropped.
fn drain_diagnostics(mut stderr: impl Read) -> String {
    let (mut head, mut tail) = (Vec::new(), std::collections::VecDeque::new());
    let mut dropped = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        let room = DIAGNOSTICS_HEAD - head.len();
        if room > 0 {
            let take = room.min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        tail.extend(chunk);
        let excess = tail.len().saturating_sub(DIAGNOSTICS_TAIL);
        tail.drain(..excess);
        dropped += excess as u64;
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped > 0 {
        text.push_str(&format!(
            "\n[... {dropped} bytes of standard error dropped ...]\n"
        ));
    }
    text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    text
}

/// A started runner process.
struct Running {
    child: Child,
    input: Option<BufWriter<std::process::ChildStdin>>,
    output: BufReader<std::process::ChildStdout>,
    diagnostics: Option<std::thread::JoinHandle<String>>,
    watchdog: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    expired: Arc<AtomicBool>,
    timeout: Duration,
}

/// An answer refused before it was taken in.
#[derive(Debug)]
enum Refusal {
    /// Invalid output: reported by the kernel, or the wrong size.
    Invalid(String),
    /// More than the memory limit.
    TooLarge(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(m) | Refusal::TooLarge(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Refusal {}

fn refuse(refusal: Refusal) -> std::io::Error {
    std::io::Error::other(refusal)
}

impl Running {
    /// Reads an answer's status and length; a kernel-reported failure
    /// becomes an error carrying its message.
    fn answer(&mut self) -> std::io::Result<u64> {
        let mut status = [0u8; 1];
        self.output.read_exact(&mut status)?;
        if status[0] == 0 {
            let mut len = [0u8; 8];
            self.output.read_exact(&mut len)?;
            return Ok(u64::from_le_bytes(len));
        }
        let mut len = [0u8; 4];
        self.output.read_exact(&mut len)?;
        let mut message = Vec::new();
        (&mut self.output)
            .take(u32::from_le_bytes(len).min(4096) as u64)
            .read_to_end(&mut message)?;
        Err(refuse(Refusal::Invalid(format!(
            "the kernel reported invalid output: {}",
            truncate_text(&String::from_utf8_lossy(&message), 2048)
        ))))
    }

    /// Waits for the process and turns the exchange's outcome into a verdict.
    fn finish<T>(mut self, exchange: std::io::Result<T>) -> Result<T, Failure> {
        self.input = None;
        let status = if exchange.is_ok() {
            self.child.wait()
        } else {
            let _ = self.child.kill();
            self.child.wait()
        };
        if let Some((cancel, handle)) = self.watchdog.take() {
            let _ = cancel.send(());
            let _ = handle.join();
        }
        let diagnostics = self
            .diagnostics
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let err = match exchange {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if self.expired.load(Ordering::SeqCst) {
            return Err(Failure::new(
                Verdict::Timeout,
                format!(
                    "did not finish within the {:.1} s deadline",
                    self.timeout.as_secs_f64()
                ),
            ));
        }
        match err.get_ref().and_then(|e| e.downcast_ref::<Refusal>()) {
            Some(Refusal::Invalid(m)) => return Err(Failure::invalid_output(m.clone())),
            Some(Refusal::TooLarge(m)) => {
                return Err(Failure::new(Verdict::MemoryLimit, m.clone()));
            }
            None => {}
        }
        Err(classify_exit(status.ok(), &diagnostics, &err))
    }
}

/// Why a runner process ended without answering.
fn classify_exit(
    status: Option<std::process::ExitStatus>,
    diagnostics: &str,
    err: &std::io::Error,
) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    let text = truncate_text(diagnostics.trim(), 4096);
    // Rust's allocation failure, C++'s uncaught bad_alloc, the SDK's own.
    if [
        "memory allocation of",
        "std::bad_alloc",
        "kernel failed: out of memory",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        return Failure::new(
            Verdict::MemoryLimit,
            format!("the kernel ran out of its memory limit: {text}"),
        );
    }
    if text.contains("has overflowed its stack") {
        return Failure::new(Verdict::Trap, "stack overflow (deep recursion?)");
    }
    // A Rust panic, or a C/C++ kernel's own failure (anneval::fail, a
    // throw): the message from there on is the reason.
    if let Some(at) = text
        .find("panicked at")
        .or_else(|| text.find("kernel failed: "))
    {
        return Failure::new(Verdict::Trap, text[at..].to_string());
    }
    let how = match status {
        Some(s) if s.signal().is_some() => killed_by(s.signal().unwrap_or(0)),
        // bubblewrap's init passes on a signal's death as 128 + the signal.
        Some(s) if s.code().is_some_and(|c| c > 128 && c < 128 + 32) => {
            killed_by(s.code().unwrap_or(0) - 128)
        }
        Some(s) => format!("exited with {s}"),
        None => "could not be waited for".to_string(),
    };
    let detail = if text.is_empty() {
        err.to_string()
    } else {
        text
    };
    Failure::new(Verdict::Trap, format!("the native kernel {how}: {detail}"))
}

/// How a kernel killed by `signal` is described.
fn killed_by(signal: i32) -> String {
    let why = match signal {
        libc::SIGABRT => " (SIGABRT: it aborted)",
        libc::SIGSEGV => " (SIGSEGV: a bad memory access or a stack overflow)",
        libc::SIGBUS => " (SIGBUS: a bad memory access)",
        libc::SIGFPE => " (SIGFPE: an arithmetic error)",
        libc::SIGILL => " (SIGILL: an illegal instruction)",
        libc::SIGKILL => " (SIGKILL: a limit was reached)",
        libc::SIGXCPU => " (SIGXCPU: its CPU time ran out)",
        libc::SIGSYS => {
            " (SIGSYS: a forbidden system call, one the filter ends the process for: \
             a 32-bit system call, made with int 0x80, say)"
        }
        _ => "",
    };
    format!("was killed by signal {signal}{why}")
}

/// The system calls a runner may make: memory, its three standard streams,
/// signals, time, exit. Everything else (files, sockets, processes,
/// threads) fails with EPERM.
pub fn seccomp_filter() -> anyhow::Result<Vec<u8>> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let allowed = [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_brk,
        libc::SYS_madvise,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_futex,
        libc::SYS_getrandom,
        libc::SYS_arch_prctl,
        libc::SYS_set_tid_address,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_prlimit64,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_yield,
        libc::SYS_clock_gettime,
        libc::SYS_poll,
        libc::SYS_fcntl,
        // The glue's copy of standard output, before any kernel code runs.
        libc::SYS_dup,
        libc::SYS_dup2,
        libc::SYS_dup3,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_lseek,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_tgkill,
        // bubblewrap installs the filter, then starts the runner, and its
        // init process waits for it (no process can be created to wait for).
        libc::SYS_execve,
        libc::SYS_wait4,
    ];
    let rules = allowed.iter().map(|&sys| (sys, vec![])).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    let program: BpfProgram = filter.try_into()?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for ins in program {
        bytes.extend_from_slice(&ins.code.to_le_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_le_bytes());
    }
    Ok(bytes)
}
