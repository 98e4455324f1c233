//! The guest toolchain: the Rust compiler for `wasm32-unknown-unknown` and the
//! template's prebuilt dependencies (wit-bindgen).
//!
//! Prepared once per template and compiler version with cargo (offline, from
//! the local registry cache), and recorded in `toolchain.json`. Afterwards a
//! candidate compiles with one direct `rustc` invocation against those
//! prebuilt libraries: no cargo, no registry, no network, no rebuild of
//! unchanged dependencies, and nothing writable but the candidate's own work
//! directory, which is what lets the compile step run in an OS sandbox.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths::ensure_dir;
use crate::process::{run_bounded, truncate_text};
use crate::template;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Flags every candidate is compiled with: opt-level 3 with SIMD, one codegen
/// unit (best inlining, and stable performance from build to build).
pub const WASM_FLAGS: &[&str] = &[
    "-Copt-level=3",
    "-Ctarget-feature=+simd128",
    "-Ccodegen-units=1",
    "-Cdebuginfo=0",
    "-Cstrip=debuginfo",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Toolchain {
    /// The real compiler binary inside the sysroot (not the rustup proxy).
    pub rustc: PathBuf,
    pub sysroot: PathBuf,
    /// `rustc -vV`, part of every cache key.
    pub rustc_version: String,
    /// Directories holding the prebuilt dependencies (target and host).
    pub dependency_dirs: Vec<PathBuf>,
    /// `--extern` crates for the template: name and rlib.
    pub externs: Vec<(String, PathBuf)>,
}

impl Toolchain {
    /// Finds or prepares the toolchain for the embedded template.
    pub fn prepare(cache_dir: &Path) -> Result<Toolchain> {
        let (sysroot, rustc_version) = find_rustc()?;
        let rustc = sysroot.join("bin/rustc");
        if !sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
            bail!(
                "the Rust target {WASM_TARGET} is not installed for {}: \
                 run `rustup target add {WASM_TARGET}` (scripts/demo does this)",
                sysroot.display()
            );
        }
        let key = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(template::digest());
            h.update(&rustc_version);
            template::hex(&h.finalize())[..16].to_string()
        };
        let dir = cache_dir.join("toolchain").join(&key);
        ensure_dir(&dir)?;
        // Several processes (or test threads) may prepare at once: one does
        // the work, the others wait for it and read the record.
        let lock_path = dir.join("prepare.lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        let record = dir.join("toolchain.json");
        if let Some(found) = read_record(&record) {
            return Ok(found);
        }
        let toolchain = build_dependencies(&dir, sysroot, rustc, rustc_version)?;
        let json = serde_json::to_vec_pretty(&toolchain).expect("toolchain serialises");
        crate::paths::write_atomic(&record, &json)?;
        Ok(toolchain)
    }

    /// A short string that changes whenever compiled output could change.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            self.rustc_version,
            template::digest(),
            WASM_FLAGS.join(" ")
        )
    }

    /// The `rustc` command that compiles the template crate in `crate_dir`
    /// (holding `src/lib.rs`) to a core wasm module at `output`. The
    /// environment is cleared: the compiler sees only what is set here.
    pub fn wasm_command(&self, crate_dir: &Path, output: &Path) -> Command {
        let mut cmd = Command::new(&self.rustc);
        cmd.current_dir(crate_dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CARGO_MANIFEST_DIR", crate_dir)
            .env("CARGO_PKG_NAME", "anneval-guest")
            .args(["--crate-name", "anneval_guest", "--edition", "2024"])
            .args(["--crate-type", "cdylib", "--target", WASM_TARGET])
            .args(WASM_FLAGS)
            .args(["--error-format", "human", "--color", "never"]);
        for dir in &self.dependency_dirs {
            cmd.arg("-L").arg(format!("dependency={}", dir.display()));
        }
        for (name, rlib) in &self.externs {
            cmd.arg("--extern")
                .arg(format!("{name}={}", rlib.display()));
        }
        cmd.arg("src/lib.rs").arg("-o").arg(output);
        cmd
    }
}

fn read_record(path: &Path) -> Option<Toolchain> {
    let bytes = std::fs::read(path).ok()?;
    let found: Toolchain = serde_json::from_slice(&bytes).ok()?;
    let complete = found.rustc.exists() && found.externs.iter().all(|(_, p)| p.exists());
    complete.then_some(found)
}

/// The active toolchain's sysroot and version, through the `rustc` on PATH.
fn find_rustc() -> Result<(PathBuf, String)> {
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new("rustc").args(args).output().context(
            "running rustc: is Rust installed and on PATH? (https://rustup.rs; scripts/demo checks)",
        )?;
        if !out.status.success() {
            bail!(
                "rustc {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let sysroot = PathBuf::from(run(&["--print", "sysroot"])?);
    let version = run(&["-vV"])?;
    Ok((sysroot, version))
}

/// Builds the template once with cargo to get its dependencies compiled for
/// the wasm target, and records where they are.
fn build_dependencies(
    dir: &Path,
    sysroot: PathBuf,
    rustc: PathBuf,
    rustc_version: String,
) -> Result<Toolchain> {
    let tree = dir.join("template");
    let _ = std::fs::remove_dir_all(&tree);
    template::write_to(&tree, template::reference_kernel())?;
    let target_dir = dir.join("target");
    let manifest = tree.join(template::CRATE_DIR).join("Cargo.toml");
    let cargo = |offline: bool| -> Result<crate::process::Finished> {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--release", "--target", WASM_TARGET])
            .args(["--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTC", &rustc)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if offline {
            cmd.arg("--offline");
        }
        run_bounded(&mut cmd, Duration::from_secs(900), 8 << 20)
    };
    // Offline first: after set-up the registry cache has every crate. Only if
    // that fails is the registry asked (the first run on a new machine).
    let mut done = cargo(true)?;
    if !done.status.success() {
        done = cargo(false)?;
    }
    if !done.status.success() {
        bail!(
            "preparing the guest toolchain (cargo build of the template for {WASM_TARGET}) failed; \
             run `cargo fetch` in the anneval repository while online, then retry:\n{}",
            truncate_text(&String::from_utf8_lossy(&done.stderr), 8000)
        );
    }
    let mut externs = Vec::new();
    for line in done.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != "wit_bindgen" {
            continue;
        }
        let rlib = msg["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".rlib"));
        if let Some(rlib) = rlib {
            externs.push(("wit_bindgen".to_string(), PathBuf::from(rlib)));
        }
    }
    if externs.is_empty() {
        bail!("preparing the guest toolchain: cargo built no wit_bindgen library");
    }
    Ok(Toolchain {
        rustc,
        sysroot,
        rustc_version,
        dependency_dirs: vec![
            target_dir.join(WASM_TARGET).join("release/deps"),
            target_dir.join("release/deps"),
        ],
        externs,
    })
}
