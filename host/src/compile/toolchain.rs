//! The guest toolchain: the Rust compiler for `wasm32-unknown-unknown` and the
//! template's prebuilt dependencies (wit-bindgen).
//!
//! Prepared once per template and compiler version with cargo (offline, from
//! the local registry cache), and recorded in `toolchain.json`. Afterwards a
//! candidate compiles with one direct `rustc` invocation against those
//! prebuilt libraries: no cargo, no registry, no network, no rebuild of
//! unchanged dependencies. That invocation runs in the OS sandbox
//! ([`crate::jail`]): it sees the Rust sysroot at `/toolchain/rust` and the
//! prebuilt dependencies at `/toolchain/target`, both read-only, and the
//! candidate's work directory at `/candidate`, nothing else of the host.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::jail::{Jail, ResourceLimits};
use crate::paths::ensure_dir;
use crate::process::{run_bounded, truncate_text};
use crate::template;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Flags every candidate is compiled with: opt-level 3 with SIMD and relaxed
/// SIMD (whose fused multiply-add the sandbox runs deterministically), one
/// codegen unit (best inlining, and stable performance from build to build).
pub const WASM_FLAGS: &[&str] = &[
    "-Copt-level=3",
    "-Ctarget-feature=+simd128,+relaxed-simd",
    "-Ccodegen-units=1",
    "-Cdebuginfo=0",
    "-Cstrip=debuginfo",
];

/// Flags of the native runner besides its CPU (`-Ctarget-cpu`, see
/// `compile::native_cpu`): one codegen unit, and static linking.
pub const NATIVE_FLAGS: &[&str] = &[
    "-Copt-level=3",
    "-Ccodegen-units=1",
    "-Cdebuginfo=0",
    "-Ctarget-feature=+crt-static",
];

/// Bumped when the way dependencies are prepared changes.
const PREPARATION: &str = "2";

/// Where the jailed compiler sees the sysroot, the dependencies and the
/// candidate.
const JAIL_SYSROOT: &str = "/toolchain/rust";
const JAIL_TARGET: &str = "/toolchain/target";
pub const JAIL_WORK: &str = "/candidate";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Toolchain {
    pub sysroot: PathBuf,
    /// `rustc -vV`, part of every cache key.
    pub rustc_version: String,
    /// cargo's target directory holding the prebuilt dependencies.
    pub target_dir: PathBuf,
    /// `--extern` crates for the template: name, and rlib relative to
    /// `target_dir`.
    pub externs: Vec<(String, PathBuf)>,
}

impl Toolchain {
    /// Finds or prepares the toolchain for the embedded template.
    pub fn prepare(cache_dir: &Path) -> Result<Toolchain> {
        let (sysroot, rustc_version) = find_rustc()?;
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
            h.update(PREPARATION);
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
        let toolchain = build_dependencies(&dir, sysroot, rustc_version)?;
        let json = serde_json::to_vec_pretty(&toolchain).expect("toolchain serialises");
        crate::paths::write_atomic(&record, &json)?;
        Ok(toolchain)
    }

    /// A short string that changes whenever compiled output could change.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{PREPARATION}",
            self.rustc_version,
            template::digest(),
            WASM_FLAGS.join(" ")
        )
    }

    /// The jailed `rustc` command that compiles the template written in
    /// `work` (holding `guest-template/` and `wit/`) to a core wasm module at
    /// `work/kernel.wasm`. Only what is passed here exists for the compiler.
    pub fn wasm_command(&self, work: &Path, limits: ResourceLimits) -> Command {
        let crate_dir = format!("{JAIL_WORK}/{}", template::CRATE_DIR);
        let mut args = rustc_args("anneval_guest", "cdylib", WASM_FLAGS);
        args.extend(["--target".into(), WASM_TARGET.into()]);
        for deps in [format!("{WASM_TARGET}/release/deps"), "release/deps".into()] {
            args.push("-L".into());
            args.push(format!("dependency={JAIL_TARGET}/{deps}"));
        }
        for (name, rlib) in &self.externs {
            args.push("--extern".into());
            args.push(format!("{name}={JAIL_TARGET}/{}", rlib.display()));
        }
        args.extend([
            "src/lib.rs".into(),
            "-o".into(),
            format!("{JAIL_WORK}/kernel.wasm"),
        ]);
        Jail::new(limits)
            .ro(&self.sysroot, JAIL_SYSROOT)
            .ro(&self.target_dir, JAIL_TARGET)
            .rw(work, JAIL_WORK)
            .env("CARGO_MANIFEST_DIR", &crate_dir)
            .env("CARGO_PKG_NAME", "anneval-guest")
            .chdir(&crate_dir)
            .command(&format!("{JAIL_SYSROOT}/bin/rustc"), &args)
    }

    /// The jailed `rustc` command that compiles the template written in
    /// `work` as the native runner (`src/native_main.rs`) for the LLVM CPU
    /// `cpu`, to `work/kernel-native`: statically linked, so it needs
    /// nothing of the host's filesystem when it runs.
    pub fn native_command(&self, work: &Path, cpu: &str, limits: ResourceLimits) -> Command {
        let crate_dir = format!("{JAIL_WORK}/{}", template::CRATE_DIR);
        let mut args = rustc_args("anneval_native", "bin", NATIVE_FLAGS);
        args.extend([
            format!("-Ctarget-cpu={cpu}"),
            "src/native_main.rs".into(),
            "-o".into(),
            format!("{JAIL_WORK}/kernel-native"),
        ]);
        let mut jail = Jail::new(limits)
            .ro(&self.sysroot, JAIL_SYSROOT)
            .rw(work, JAIL_WORK)
            .chdir(&crate_dir);
        // Debian reaches the system linker (`cc`) through /etc/alternatives.
        let alternatives = Path::new("/etc/alternatives");
        if alternatives.is_dir() {
            jail = jail.ro(alternatives, "/etc/alternatives");
        }
        jail.command(&format!("{JAIL_SYSROOT}/bin/rustc"), &args)
    }

    /// Host paths that must never appear in what a candidate is shown.
    pub fn private_paths(&self) -> Vec<(PathBuf, &'static str)> {
        let mut paths = vec![
            (self.target_dir.clone(), JAIL_TARGET),
            (self.sysroot.clone(), JAIL_SYSROOT),
        ];
        if let Some(home) = dirs::home_dir() {
            paths.push((home, "~"));
        }
        paths
    }
}

/// The arguments every candidate compile starts with.
fn rustc_args(crate_name: &str, crate_type: &str, flags: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--crate-name",
        crate_name,
        "--edition",
        "2024",
        "--crate-type",
        crate_type,
    ]
    .iter()
    .chain(&["--error-format", "human", "--color", "never"])
    .map(|s| s.to_string())
    .collect();
    args.extend(flags.iter().map(|s| s.to_string()));
    args
}

fn read_record(path: &Path) -> Option<Toolchain> {
    let bytes = std::fs::read(path).ok()?;
    let found: Toolchain = serde_json::from_slice(&bytes).ok()?;
    let complete = found.sysroot.join("bin/rustc").exists()
        && found
            .externs
            .iter()
            .all(|(_, p)| found.target_dir.join(p).exists());
    complete.then_some(found)
}

/// The CPUs the active `rustc` can compile for (`rustc --print
/// target-cpus`), `native` among them.
pub fn target_cpus() -> Result<Vec<String>> {
    Ok(rustc(&["--print", "target-cpus"])?
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(String::from)
        .collect())
}

/// The active toolchain's sysroot and version, through the `rustc` on PATH.
fn find_rustc() -> Result<(PathBuf, String)> {
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?);
    let version = rustc(&["-vV"])?;
    Ok((sysroot, version))
}

/// What the `rustc` on PATH prints for `args`, trimmed.
fn rustc(args: &[&str]) -> Result<String> {
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
}

/// Builds the template once with cargo to get its dependencies compiled for
/// the wasm target, and records where they are.
fn build_dependencies(dir: &Path, sysroot: PathBuf, rustc_version: String) -> Result<Toolchain> {
    let tree = dir.join("template");
    let _ = std::fs::remove_dir_all(&tree);
    template::write_to(&tree, template::reference_kernel())?;
    let target_dir = dir.join("target");
    let manifest = tree.join(template::CRATE_DIR).join("Cargo.toml");
    // Dependency sources are named by neutral paths inside the compiled
    // libraries, so no diagnostic shows where the host keeps them.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")))
        .unwrap_or_default();
    let rustflags = format!("--remap-path-prefix={}=/cargo", cargo_home.display());
    let rustc = sysroot.join("bin/rustc");
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
            .env("CARGO_ENCODED_RUSTFLAGS", &rustflags);
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
        if let Some(rlib) = rlib.and_then(|r| Path::new(r).strip_prefix(&target_dir).ok()) {
            externs.push(("wit_bindgen".to_string(), rlib.to_path_buf()));
        }
    }
    if externs.is_empty() {
        bail!("preparing the guest toolchain: cargo built no wit_bindgen library");
    }
    Ok(Toolchain {
        sysroot,
        rustc_version,
        target_dir,
        externs,
    })
}
