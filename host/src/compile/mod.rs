//! The compile step: a candidate's `kernel.rs` becomes a WebAssembly component.
//!
//! The source is first checked against the [`policy`] (what a kernel never
//! needs is `rejected` with its line), then replaces `kernel.rs` in a private
//! copy of the template; one jailed `rustc` run turns the crate into a core
//! wasm module (see [`toolchain`]) under CPU, memory, file-size and
//! wall-clock limits, and the `wit-component` crate wraps it as a component
//! in-process. Components are cached by a digest of the source and
//! everything else that shapes the output, so an unchanged candidate is never
//! compiled twice.

pub mod policy;
pub mod toolchain;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::jail::{self, ResourceLimits};
use crate::paths::{ensure_dir, write_atomic};
use crate::process::{run_bounded, truncate_text};
use crate::template;
use crate::verdict::{Failure, Verdict};
pub use toolchain::Toolchain;

/// Limits on one compilation.
#[derive(Clone, Debug)]
pub struct CompileLimits {
    /// Wall clock; the compiler's whole process tree is killed after it.
    pub timeout: Duration,
    /// CPU time of the compiler.
    pub cpu_seconds: u64,
    /// Virtual memory of the compiler.
    pub memory_bytes: u64,
    /// Largest file the compiler may write (the module among them).
    pub max_output: u64,
    /// Diagnostics beyond this many bytes are cut.
    pub max_diagnostics: usize,
    /// Candidate sources beyond this many bytes are refused unread.
    pub max_source: usize,
    /// Whether to refuse, before compiling, what the [`policy`] forbids. Only
    /// tests turn this off, to prove the OS sandbox holds on its own.
    pub check_source: bool,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            timeout: Duration::from_secs(120),
            cpu_seconds: 120,
            memory_bytes: 4 << 30,
            max_output: 64 << 20,
            max_diagnostics: 16 * 1024,
            max_source: 1 << 20,
            check_source: true,
        }
    }
}

/// A natively compiled candidate.
#[derive(Clone, Debug)]
pub struct CompiledNative {
    pub binary: PathBuf,
    pub digest: String,
    pub cached: bool,
    pub seconds: f64,
}

/// What makes a `target-cpu=native` build differ from machine to machine:
/// the CPU's model and feature flags.
fn cpu_identity() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("model name") || l.starts_with("flags"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A compiled candidate.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub component: Vec<u8>,
    /// Content digest (hex) of the source and toolchain: the cache key.
    pub digest: String,
    /// Whether it came from the cache.
    pub cached: bool,
    pub seconds: f64,
}

pub struct Compiler {
    toolchain: Toolchain,
    cache_dir: PathBuf,
    limits: CompileLimits,
}

impl Compiler {
    /// Checks the OS sandbox and prepares the toolchain (the first time on a
    /// machine this builds the template's dependencies, about half a minute).
    pub fn new(cache_dir: &Path, limits: CompileLimits) -> anyhow::Result<Compiler> {
        jail::check_available().context("the compile step runs in bubblewrap")?;
        let toolchain = Toolchain::prepare(cache_dir).context("preparing the guest toolchain")?;
        Ok(Compiler {
            toolchain,
            cache_dir: cache_dir.to_path_buf(),
            limits,
        })
    }

    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    /// The cache key of `source`.
    pub fn digest(&self, source: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"anneval-component-v1\0");
        h.update(self.toolchain.fingerprint());
        h.update([0]);
        h.update(source);
        template::hex(&h.finalize())
    }

    /// Refuses, before any compiler runs, sources over the size limit and
    /// (unless turned off) what the policy forbids.
    fn admit(&self, source: &str) -> Result<(), Failure> {
        if source.len() > self.limits.max_source {
            return Err(Failure::rejected(format!(
                "the kernel source is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_source
            )));
        }
        if self.limits.check_source
            && let Err(violation) = policy::check(source)
        {
            return Err(Failure::rejected(violation.to_string()));
        }
        Ok(())
    }

    /// Compiles `source` (the text of a `kernel.rs`) to a component.
    pub fn compile(&self, source: &str) -> Result<Compiled, Failure> {
        let start = Instant::now();
        self.admit(source)?;
        let digest = self.digest(source);
        let cached_path = self
            .cache_dir
            .join("components")
            .join(format!("{digest}.wasm"));
        if let Ok(component) = std::fs::read(&cached_path) {
            return Ok(Compiled {
                component,
                digest,
                cached: true,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        let core = self.run_compiler(source, "kernel.wasm", |t, work, limits| {
            t.wasm_command(work, limits)
        })?;
        let component = wit_component::ComponentEncoder::default()
            .module(&core)
            .and_then(|enc| enc.validate(true).encode())
            .map_err(|e| {
                Failure::rejected(format!(
                    "the compiled module does not fit the kernel world: {e:#}"
                ))
            })?;
        write_atomic(&cached_path, &component).map_err(Failure::internal_from)?;
        Ok(Compiled {
            component,
            digest,
            cached: false,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Compiles `source` as the native runner for this CPU (see
    /// `guest-template/src/native_main.rs`); returns the cached binary's path.
    pub fn compile_native(&self, source: &str) -> Result<CompiledNative, Failure> {
        let start = Instant::now();
        self.admit(source)?;
        let digest = {
            let mut h = Sha256::new();
            h.update(b"anneval-native-v1\0");
            h.update(self.toolchain.fingerprint());
            h.update(toolchain::NATIVE_FLAGS.join(" "));
            h.update(cpu_identity());
            h.update([0]);
            h.update(source);
            template::hex(&h.finalize())
        };
        let binary = self.cache_dir.join("native").join(&digest);
        let cached = binary.exists();
        if !cached {
            let bytes = self.run_compiler(source, "kernel-native", |t, work, limits| {
                t.native_command(work, limits)
            })?;
            write_atomic(&binary, &bytes).map_err(Failure::internal_from)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o555))
                .context("making the native kernel executable")
                .map_err(Failure::internal_from)?;
        }
        Ok(CompiledNative {
            binary,
            digest,
            cached,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// One jailed compiler run in a fresh work directory; returns the file
    /// it wrote as `output`.
    fn run_compiler(
        &self,
        source: &str,
        output: &str,
        command: impl FnOnce(&Toolchain, &Path, ResourceLimits) -> std::process::Command,
    ) -> Result<Vec<u8>, Failure> {
        let work_root = self.cache_dir.join("work");
        ensure_dir(&work_root).map_err(Failure::internal_from)?;
        let work = tempfile::tempdir_in(&work_root)
            .context("creating a compile work directory")
            .map_err(Failure::internal_from)?;
        template::write_to(work.path(), source).map_err(Failure::internal_from)?;
        let limits = ResourceLimits {
            cpu_seconds: self.limits.cpu_seconds,
            address_space: self.limits.memory_bytes,
            file_size: self.limits.max_output,
            open_files: 256,
        };
        let mut cmd = command(&self.toolchain, work.path(), limits);
        let done = run_bounded(
            &mut cmd,
            self.limits.timeout,
            self.limits.max_diagnostics * 4,
        )
        .map_err(Failure::internal_from)?;
        if done.timed_out {
            return Err(Failure::new(
                Verdict::Timeout,
                format!(
                    "compilation did not finish within {} s",
                    self.limits.timeout.as_secs()
                ),
            ));
        }
        if !done.status.success() {
            let diagnostics = self.sanitise(&String::from_utf8_lossy(&done.stderr), work.path());
            let text = truncate_text(diagnostics.trim(), self.limits.max_diagnostics);
            return Err(Failure::compile_error(if text.is_empty() {
                format!(
                    "the compiler was stopped ({}): CPU, memory or output limit",
                    done.status
                )
            } else {
                text
            }));
        }
        let output = work.path().join(output);
        std::fs::read(&output)
            .with_context(|| format!("reading compiler output {}", output.display()))
            .map_err(Failure::internal_from)
    }

    /// Replaces host paths in compiler output with the neutral names the
    /// jail uses, so diagnostics reveal nothing of the host.
    fn sanitise(&self, text: &str, work: &Path) -> String {
        let mut out = text.to_string();
        let mut paths = vec![(work.to_path_buf(), toolchain::JAIL_WORK)];
        paths.extend(self.toolchain.private_paths());
        for (path, neutral) in paths {
            let path = path.display().to_string();
            if !path.is_empty() && path != "/" {
                out = out.replace(&path, neutral);
            }
        }
        out
    }
}
