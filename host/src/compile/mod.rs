//! The compile step: a candidate's source becomes a WebAssembly component (or
//! the native runner).
//!
//! Each [`Language`] has its front end: Rust ([`toolchain`], the template
//! crate compiled by `rustc`) and C/C++ ([`clang`], the C++ template compiled
//! by clang). The pipeline is shared: the source is first checked against
//! its language's policy ([`policy`], [`cpolicy`]: what a kernel never needs
//! is `rejected` with its line), then written beside the template in a
//! private work directory; jailed compiler runs turn it into a core wasm
//! module under CPU, memory, file-size and wall-clock limits (a C/C++
//! kernel's inline assembly is judged on the compiled IR between them), and the
//! `wit-component` crate wraps that as a component in-process. Components are
//! cached by a digest of the language, the source and everything else that
//! shapes the output, so an unchanged candidate is never compiled twice.

pub mod clang;
pub mod cpolicy;
pub mod policy;
pub mod toolchain;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::jail::{self, ResourceLimits};
use crate::paths::{ensure_dir, write_atomic};
use crate::process::{run_bounded, truncate_text};
use crate::template;
use crate::verdict::{Failure, Verdict};
pub use clang::Clang;
pub use toolchain::Toolchain;

/// A candidate's source language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// A `kernel.rs` for the Rust template.
    Rust,
    /// A `kernel.c` against `anneval.h`.
    C,
    /// A `kernel.cpp` against `anneval.hpp`.
    Cpp,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::C, Language::Cpp];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::Cpp => "cpp",
        }
    }

    /// The language of a source file, by its extension.
    pub fn from_extension(ext: &str) -> Option<Language> {
        match ext {
            "rs" => Some(Language::Rust),
            "c" => Some(Language::C),
            "cpp" | "cc" | "cxx" | "c++" => Some(Language::Cpp),
            _ => None,
        }
    }

    /// The language's reference kernel.
    pub fn reference(self) -> &'static str {
        match self {
            Language::Rust => template::reference_kernel(),
            Language::C => template::reference_c_kernel(),
            Language::Cpp => template::reference_cpp_kernel(),
        }
    }

    fn dialect(self) -> Option<clang::Dialect> {
        match self {
            Language::Rust => None,
            Language::C => Some(clang::Dialect::C),
            Language::Cpp => Some(clang::Dialect::Cpp),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rust" => Ok(Language::Rust),
            "c" => Ok(Language::C),
            "cpp" | "c++" => Ok(Language::Cpp),
            other => Err(format!("{other:?} is not a language (rust, c or cpp)")),
        }
    }
}

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

/// The environment variable naming the CPU native builds are compiled for.
pub const NATIVE_CPU_VAR: &str = "ANNEVAL_NATIVE_CPU";

/// The LLVM CPU native builds are compiled for: `native` (this CPU, the
/// default), or the one `ANNEVAL_NATIVE_CPU` names, for example
/// `x86-64-v2` (SSE4.2, 128-bit vectors only), `x86-64-v3` (AVX2 and FMA) or
/// `x86-64-v4` (AVX-512), to ask what a kernel earns natively without this
/// CPU's widest vectors. A name rustc does not know is an error here, not a
/// candidate's compile error later.
pub fn native_cpu() -> anyhow::Result<String> {
    let Some(value) = std::env::var_os(NATIVE_CPU_VAR) else {
        return Ok("native".into());
    };
    let cpu = value
        .to_str()
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if cpu == "native" {
        return Ok(cpu);
    }
    let known = toolchain::target_cpus()?;
    if !known.contains(&cpu) {
        anyhow::bail!(
            "{NATIVE_CPU_VAR}={value:?} is not a CPU rustc can compile for: \
             `rustc --print target-cpus` lists them (x86-64-v2, x86-64-v3 and x86-64-v4 \
             are the x86-64 levels); unset it to compile for this CPU"
        );
    }
    Ok(cpu)
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

/// What a front end produces.
#[derive(Clone, Copy, Debug)]
enum Output {
    /// A core wasm module, to be wrapped as a component.
    Module,
    /// The native runner for this CPU.
    NativeRunner,
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
    /// Found on the first C or C++ compile, so Rust users need no clang.
    clang: OnceLock<Result<Clang, String>>,
    cache_dir: PathBuf,
    limits: CompileLimits,
    /// The LLVM CPU of native builds (`native_cpu`).
    native_cpu: String,
}

impl Compiler {
    /// Checks the OS sandbox and prepares the toolchain (the first time on a
    /// machine this builds the template's dependencies, about half a minute).
    pub fn new(cache_dir: &Path, limits: CompileLimits) -> anyhow::Result<Compiler> {
        jail::check_available().context("the compile step runs in bubblewrap")?;
        let toolchain = Toolchain::prepare(cache_dir).context("preparing the guest toolchain")?;
        Ok(Compiler {
            toolchain,
            clang: OnceLock::new(),
            cache_dir: cache_dir.to_path_buf(),
            limits,
            native_cpu: native_cpu()?,
        })
    }

    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    /// The clang toolchain, or why C and C++ cannot be compiled here (not
    /// the candidate's fault: an `internal_error` naming what to install).
    fn clang(&self) -> Result<&Clang, Failure> {
        self.clang
            .get_or_init(|| self.find_clang().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| Failure::internal(e.clone()))
    }

    /// clang, able to compile for the native CPU chosen.
    fn find_clang(&self) -> anyhow::Result<Clang> {
        let clang = Clang::find()?;
        if self.native_cpu != "native" {
            clang
                .knows_cpu(&self.native_cpu)
                .with_context(|| format!("{NATIVE_CPU_VAR}={}", self.native_cpu))?;
        }
        Ok(clang)
    }

    /// What shapes compiled output besides the source, for `language`. A
    /// C/C++ compile with the source check off skips the check of its IR
    /// too, so its output is cached apart: a checked compile never finds it.
    fn fingerprint(&self, language: Language) -> Result<String, Failure> {
        Ok(match language {
            Language::Rust => self.toolchain.fingerprint(),
            Language::C | Language::Cpp if self.limits.check_source => self.clang()?.fingerprint(),
            Language::C | Language::Cpp => format!("{}|unchecked", self.clang()?.fingerprint()),
        })
    }

    /// The cache key of `source` in `language`.
    pub fn digest(&self, source: &str, language: Language) -> Result<String, Failure> {
        let mut h = Sha256::new();
        h.update(b"anneval-component-v1\0");
        // Rust keys are unchanged from before other languages existed.
        if language != Language::Rust {
            h.update(language.as_str());
            h.update([0]);
        }
        h.update(self.fingerprint(language)?);
        h.update([0]);
        h.update(source);
        Ok(template::hex(&h.finalize()))
    }

    /// Refuses, before any compiler runs, sources over the size limit and
    /// (unless turned off) what the policy forbids.
    fn admit(&self, source: &str, language: Language) -> Result<(), Failure> {
        if source.len() > self.limits.max_source {
            return Err(Failure::rejected(format!(
                "the kernel source is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_source
            )));
        }
        if !self.limits.check_source {
            return Ok(());
        }
        let checked = match language.dialect() {
            None => policy::check(source),
            Some(dialect) => cpolicy::check(source, dialect.file_name()),
        };
        checked.map_err(|v| Failure::rejected(v.to_string()))
    }

    /// Compiles `source` (the text of a `kernel.rs`, `kernel.c` or
    /// `kernel.cpp`) to a component.
    pub fn compile(&self, source: &str, language: Language) -> Result<Compiled, Failure> {
        let start = Instant::now();
        self.admit(source, language)?;
        let digest = self.digest(source, language)?;
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
        let core = self.front_end(source, language, Output::Module)?;
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
    /// `guest-template/src/native_main.rs` and
    /// `guest-template-cpp/native_glue.hpp`); returns the cached binary's path.
    pub fn compile_native(
        &self,
        source: &str,
        language: Language,
    ) -> Result<CompiledNative, Failure> {
        let start = Instant::now();
        self.admit(source, language)?;
        let digest = {
            let mut h = Sha256::new();
            h.update(b"anneval-native-v1\0");
            if language != Language::Rust {
                h.update(language.as_str());
                h.update([0]);
            }
            h.update(self.fingerprint(language)?);
            h.update(toolchain::NATIVE_FLAGS.join(" "));
            h.update(&self.native_cpu);
            h.update([0]);
            h.update(cpu_identity());
            h.update([0]);
            h.update(source);
            template::hex(&h.finalize())
        };
        let binary = self.cache_dir.join("native").join(&digest);
        let cached = binary.exists();
        if !cached {
            let bytes = self.front_end(source, language, Output::NativeRunner)?;
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

    /// `language`'s front end: writes `source` beside its template in a
    /// fresh work directory and runs its jailed compiler for `output`.
    fn front_end(
        &self,
        source: &str,
        language: Language,
        output: Output,
    ) -> Result<Vec<u8>, Failure> {
        let file = match output {
            Output::Module => "kernel.wasm",
            Output::NativeRunner => "kernel-native",
        };
        match language.dialect() {
            None => {
                let t = &self.toolchain;
                self.run_compiler(
                    |work| template::write_to(work, source),
                    |_| Ok(()),
                    file,
                    |work, limits| {
                        vec![match output {
                            Output::Module => t.wasm_command(work, limits),
                            Output::NativeRunner => {
                                t.native_command(work, &self.native_cpu, limits)
                            }
                        }]
                    },
                )
            }
            Some(dialect) => {
                let clang = self.clang()?;
                let standard = dialect.standard(source).map_err(Failure::rejected)?;
                let check_source = self.limits.check_source;
                self.run_compiler(
                    |work| clang.write_work(work, dialect, source),
                    |work| {
                        if !check_source {
                            return Ok(());
                        }
                        let ir = std::fs::read_to_string(work.join(clang::KERNEL_IR))
                            .context("reading the kernel's LLVM IR")
                            .map_err(Failure::internal_from)?;
                        cpolicy::check_compiled(&ir, source, dialect.file_name())
                            .map_err(Failure::rejected)
                    },
                    file,
                    |work, limits| match output {
                        Output::Module => clang.wasm_commands(work, dialect, standard, limits),
                        Output::NativeRunner => {
                            clang.native_commands(work, dialect, standard, &self.native_cpu, limits)
                        }
                    },
                )
            }
        }
    }

    /// Jailed compiler runs, one after the other, in a fresh work directory
    /// that `write` fills; before the last run (the link) `check` judges
    /// what the others wrote there; returns the file the last wrote as
    /// `output`. The wall-clock limit covers them all.
    fn run_compiler(
        &self,
        write: impl FnOnce(&Path) -> anyhow::Result<()>,
        check: impl FnOnce(&Path) -> Result<(), Failure>,
        output: &str,
        commands: impl FnOnce(&Path, ResourceLimits) -> Vec<std::process::Command>,
    ) -> Result<Vec<u8>, Failure> {
        let work_root = self.cache_dir.join("work");
        ensure_dir(&work_root).map_err(Failure::internal_from)?;
        let work = tempfile::tempdir_in(&work_root)
            .context("creating a compile work directory")
            .map_err(Failure::internal_from)?;
        write(work.path()).map_err(Failure::internal_from)?;
        let limits = ResourceLimits {
            cpu_seconds: self.limits.cpu_seconds,
            address_space: self.limits.memory_bytes,
            file_size: self.limits.max_output,
            open_files: 256,
        };
        let deadline = Instant::now() + self.limits.timeout;
        let commands = commands(work.path(), limits);
        let last = commands.len().saturating_sub(1);
        let mut check = Some(check);
        for (i, mut cmd) in commands.into_iter().enumerate() {
            if i == last
                && let Some(check) = check.take()
            {
                check(work.path())?;
            }
            let done = run_bounded(
                &mut cmd,
                deadline.saturating_duration_since(Instant::now()),
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
                let diagnostics =
                    self.sanitise(&String::from_utf8_lossy(&done.stderr), work.path());
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
