//! The compile step: a candidate's `kernel.rs` becomes a WebAssembly component.
//!
//! The source replaces `kernel.rs` in a private copy of the template, one
//! `rustc` run turns the crate into a core wasm module (see [`toolchain`]),
//! and the `wit-component` crate wraps it as a component in-process.
//! Components are cached by a digest of the source and everything else that
//! shapes the output, so an unchanged candidate is never compiled twice.

pub mod toolchain;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::paths::{ensure_dir, write_atomic};
use crate::process::{run_bounded, truncate_text};
use crate::template;
use crate::verdict::Failure;
pub use toolchain::Toolchain;

/// Limits on one compilation.
#[derive(Clone, Debug)]
pub struct CompileLimits {
    pub timeout: Duration,
    /// Diagnostics beyond this many bytes are cut.
    pub max_diagnostics: usize,
    /// Candidate sources beyond this many bytes are refused unread.
    pub max_source: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            timeout: Duration::from_secs(180),
            max_diagnostics: 16 * 1024,
            max_source: 1 << 20,
        }
    }
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
    /// Prepares the toolchain (the first time on a machine this builds the
    /// template's dependencies, about half a minute).
    pub fn new(cache_dir: &Path, limits: CompileLimits) -> anyhow::Result<Compiler> {
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

    /// Compiles `source` (the text of a `kernel.rs`) to a component.
    pub fn compile(&self, source: &str) -> Result<Compiled, Failure> {
        let start = Instant::now();
        if source.len() > self.limits.max_source {
            return Err(Failure::rejected(format!(
                "the kernel source is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_source
            )));
        }
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
        let core = self.compile_core(source)?;
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

    /// One rustc run in a fresh work directory; returns the core module.
    fn compile_core(&self, source: &str) -> Result<Vec<u8>, Failure> {
        let work_root = self.cache_dir.join("work");
        ensure_dir(&work_root).map_err(Failure::internal_from)?;
        let work = tempfile::tempdir_in(&work_root)
            .context("creating a compile work directory")
            .map_err(Failure::internal_from)?;
        template::write_to(work.path(), source).map_err(Failure::internal_from)?;
        let crate_dir = work.path().join(template::CRATE_DIR);
        let output = work.path().join("kernel.wasm");
        let mut cmd = self.toolchain.wasm_command(&crate_dir, &output);
        cmd.env("TMPDIR", work.path());
        let done = run_bounded(
            &mut cmd,
            self.limits.timeout,
            self.limits.max_diagnostics * 4,
        )
        .map_err(Failure::internal_from)?;
        let diagnostics = String::from_utf8_lossy(&done.stderr);
        if done.timed_out {
            return Err(Failure::compile_error(format!(
                "compilation did not finish within {} s",
                self.limits.timeout.as_secs()
            )));
        }
        if !done.status.success() {
            let text = truncate_text(diagnostics.trim(), self.limits.max_diagnostics);
            return Err(Failure::compile_error(if text.is_empty() {
                format!("the compiler exited with {}", done.status)
            } else {
                text
            }));
        }
        std::fs::read(&output)
            .with_context(|| format!("reading compiler output {}", output.display()))
            .map_err(Failure::internal_from)
    }
}
