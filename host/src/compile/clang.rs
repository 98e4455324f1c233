//! The C and C++ front end: clang for `wasm32-wasi` (the sandbox) and for this
//! CPU (the native engine), against the C/C++ template
//! (`guest-template-cpp/`, embedded: see [`crate::template::CPP_FILES`]).
//!
//! The glue between the template and the WIT world is generated from
//! `wit/kernel.wit` by the `wit-bindgen-c` crate, in-process, for every
//! compile: `wit.h`, `wit.c` and the world's type as an object file. Jailed
//! clang runs compile the glue's C files, write the translation unit that
//! holds the candidate as LLVM IR (which [`super::cpolicy::check_compiled`]
//! reads), then optimise it and link it with the glue, the WASI answers
//! (`wasi.c`: the module imports no WASI function) and the prebuilt
//! wasi-libc and libc++ into a reactor module, which [`super::Compiler`]
//! wraps as a component like a Rust one.
//!
//! The WebAssembly compile runs in a jail that has no `/usr` and no `/etc`:
//! only LLVM's own directory (the compiler, the linker and clang's resource
//! headers), each shared library they load (bound one file at a time), the
//! wasm32 sysroot (wasi-libc, libc++; clang sees it as [`JAIL_SYSROOT`]),
//! SIMDe at [`JAIL_SIMDE`], and the candidate's work directory. No host header is on any include path, and none is reachable
//! by an absolute path. The native compile needs the host's C library and
//! C++ standard library headers, so it sees `/usr` (read-only, as the Rust
//! native compile does) and nothing else of the host.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::toolchain::JAIL_WORK;
use crate::jail::{Jail, ResourceLimits};
use crate::template;

/// The LLVM release whose Debian packages provide clang, lld, and the wasm32
/// builds of libc++ and compiler-rt (scripts/setup installs them).
pub const LLVM_DIR: &str = "/usr/lib/llvm-16";
const WASI_INCLUDE: &str = "/usr/include/wasm32-wasi";
const WASI_LIB: &str = "/usr/lib/wasm32-wasi";
/// SIMDe, which translates x86 intrinsics to simd128: 0.8.2, the newest the
/// registries carry (Debian has 0.7.4, whose wasm paths miss even
/// `_mm_mullo_epi16` and `_mm_shuffle_epi8`); scripts/setup unpacks it here
/// from PyPI's `simde-py`.
pub const SIMDE: &str = "/usr/local/share/anneval/simde-0.8.2/simde";

/// Where the jailed compiler sees the wasm32 sysroot and SIMDe.
pub const JAIL_SYSROOT: &str = "/toolchain/sysroot";
const JAIL_SIMDE: &str = "/toolchain/simde";

/// Flags of every WebAssembly compile: optimised, simd128 and relaxed SIMD
/// (whose fused multiply-add the sandbox runs deterministically).
pub const WASM_FLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    "-O3",
    "-msimd128",
    "-mrelaxed-simd",
    // The source policy reads `#` only: no trigraph or digraph spells it.
    "-fno-trigraphs",
    "-fno-digraphs",
    "-fdiagnostics-color=never",
    "-ferror-limit=20",
    // One thread: `#pragma omp simd` is honoured, every other OpenMP pragma
    // runs as a team of one would (guest-template-cpp/openmp/omp.h).
    "-fopenmp-simd",
    // The x86 features guest-template-cpp/include translates to simd128 with
    // every intrinsic vectorised (tests/intrinsics.rs), so that code which
    // dispatches on them takes its vector path.
    "-D__SSE__",
    "-D__SSE2__",
    "-D__SSE3__",
    "-D__SSSE3__",
    "-D__SSE4_1__",
    "-D__SSE4_2__",
    "-D__POPCNT__",
    "-D__LZCNT__",
    "-D__BMI__",
    "-D__AVX__",
    "-D__AVX2__",
    "-D__FMA__",
    "-D__F16C__",
    "-D__AVX512F__",
    "-D__AVX512BW__",
    "-D__AVX512DQ__",
    "-D__AVX512VL__",
    "-D__AVX512VNNI__",
    "-D__AVX512VPOPCNTDQ__",
];

/// How the WebAssembly module is linked: a reactor module (its
/// `_initialize` runs static constructors when the component is
/// instantiated), the 1 MiB stack placed first so that an overflow traps
/// instead of running into static data, and wasi-libc's mmap emulation
/// (guest-template-cpp/include/sys/mman.h).
pub const WASM_LINK_FLAGS: &[&str] = &[
    "-mexec-model=reactor",
    "-Wl,--stack-first",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--strip-debug",
    "-lwasi-emulated-mman",
];

/// Flags of the native runner besides its CPU (`-march`, see
/// `compile::native_cpu`).
pub const NATIVE_FLAGS: &[&str] = &[
    "-O3",
    "-fno-trigraphs",
    "-fno-digraphs",
    "-fdiagnostics-color=never",
    "-ferror-limit=20",
    "-fopenmp-simd",
];

/// The native runner is linked statically, so that it needs nothing of the
/// host at run time.
pub const NATIVE_LINK_FLAGS: &[&str] = &["-static"];

/// The language standards a C++ candidate may choose; the first is the
/// default. A candidate chooses with a line `// anneval: std=c++17`.
pub const CPP_STANDARDS: &[&str] = &["gnu++20", "c++20", "gnu++17", "c++17"];
/// The language standards a C candidate may choose; the first is the
/// default.
pub const C_STANDARDS: &[&str] = &["gnu17", "c17", "gnu11", "c11"];

/// Where each compile writes the translation unit that holds the kernel as
/// LLVM IR, before it is optimised and linked.
pub const KERNEL_IR: &str = "kernel.ll";

/// The comment that starts a directive to anneval in a C or C++ source.
const DIRECTIVE: &str = "anneval:";

/// C or C++.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    C,
    Cpp,
}

impl Dialect {
    /// The candidate's file name in the work directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Dialect::C => "kernel.c",
            Dialect::Cpp => "kernel.cpp",
        }
    }

    /// The standards a candidate of this dialect may choose, the default
    /// first.
    pub fn standards(self) -> &'static [&'static str] {
        match self {
            Dialect::C => C_STANDARDS,
            Dialect::Cpp => CPP_STANDARDS,
        }
    }

    /// The language standard `source` is compiled as: the one its
    /// `// anneval: std=NAME` line chooses, or the dialect's default; an
    /// unknown standard, two that differ, or any other `// anneval:`
    /// directive is refused with what is allowed.
    pub fn standard(self, source: &str) -> Result<&'static str, String> {
        let allowed = self.standards();
        let mut chosen: Option<&'static str> = None;
        for (i, line) in source.lines().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("//") else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix(DIRECTIVE) else {
                continue;
            };
            let line = i + 1;
            let value = rest
                .trim()
                .strip_prefix("std")
                .and_then(|r| r.trim_start().strip_prefix('='))
                .map(str::trim)
                .ok_or_else(|| {
                    format!(
                        "line {line}: `//{rest}` is not a directive anneval knows; the one \
                         directive is `// anneval: std=NAME` (NAME one of {})",
                        allowed.join(", ")
                    )
                })?;
            let Some(&standard) = allowed.iter().find(|s| **s == value) else {
                return Err(format!(
                    "line {line}: std={value} is not a standard a {} kernel may choose: {} \
                     (the default is {})",
                    self.name(),
                    allowed.join(", "),
                    allowed[0]
                ));
            };
            if chosen.is_some_and(|c| c != standard) {
                return Err(format!(
                    "line {line}: std={standard} differs from the std={} chosen before it",
                    chosen.unwrap_or_default()
                ));
            }
            chosen = Some(standard);
        }
        Ok(chosen.unwrap_or(allowed[0]))
    }

    fn name(self) -> &'static str {
        match self {
            Dialect::C => "C",
            Dialect::Cpp => "C++",
        }
    }
}

/// The clang toolchain, found on this machine.
#[derive(Clone, Debug)]
pub struct Clang {
    /// `clang --version`, part of every cache key.
    pub version: String,
    /// Sizes and modification times of the libraries and headers linked or
    /// included besides clang's own, so that a package update changes every
    /// cache key too.
    stamp: String,
    /// The shared libraries clang and lld load from outside LLVM's directory:
    /// (the file, where the dynamic loader looks for it). Each is bound
    /// into the jail on its own.
    libraries: Vec<(PathBuf, String)>,
}

impl Clang {
    /// Finds clang, lld and the wasm32 libraries, or says what to install.
    pub fn find() -> Result<Clang> {
        let needed = [
            (format!("{LLVM_DIR}/bin/clang"), "clang-16"),
            (format!("{LLVM_DIR}/bin/wasm-ld"), "lld-16"),
            (format!("{WASI_LIB}/libc.a"), "wasi-libc"),
            (format!("{WASI_LIB}/libc++.a"), "libc++-16-dev-wasm32"),
            (format!("{WASI_LIB}/libc++abi.a"), "libc++abi-16-dev-wasm32"),
            (
                format!("{LLVM_DIR}/lib/clang/16/lib/wasi/libclang_rt.builtins-wasm32.a"),
                "libclang-rt-16-dev-wasm32",
            ),
            (format!("{SIMDE}/x86/avx2.h"), "SIMDe 0.8.2"),
        ];
        let missing: Vec<&str> = needed
            .iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(_, package)| *package)
            .collect();
        if !missing.is_empty() {
            bail!(
                "C and C++ candidates need {}: run scripts/setup, which installs \
                 the Debian packages with apt-get and SIMDe from PyPI's simde-py",
                missing.join(", ")
            );
        }
        let out = Command::new(format!("{LLVM_DIR}/bin/clang"))
            .arg("--version")
            .output()
            .context("running clang --version")?;
        if !out.status.success() {
            bail!(
                "clang --version failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut libraries = Vec::new();
        for binary in ["clang", "lld"] {
            for library in shared_libraries(&Path::new(LLVM_DIR).join("bin").join(binary))? {
                if !libraries.contains(&library) {
                    libraries.push(library);
                }
            }
        }
        let stamp = needed
            .iter()
            .map(|(path, _)| {
                let meta = std::fs::metadata(path).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                let modified = meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                format!("{path}:{len}:{modified}")
            })
            .collect::<Vec<_>>()
            .join(",");
        Ok(Clang {
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stamp,
            libraries,
        })
    }

    /// Whether this clang can compile for the LLVM CPU `cpu` (it may be
    /// older than rustc's LLVM, which `compile::native_cpu` checked).
    pub fn knows_cpu(&self, cpu: &str) -> Result<()> {
        let out = Command::new(format!("{LLVM_DIR}/bin/clang"))
            .args([
                &format!("-march={cpu}"),
                "-x",
                "c",
                "-E",
                "/dev/null",
                "-o",
                "/dev/null",
            ])
            .output()
            .context("running clang")?;
        if !out.status.success() {
            bail!(
                "{} does not know the CPU {cpu}: {}",
                self.version.lines().next().unwrap_or("clang"),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// A short string that changes whenever compiled output could change.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.version,
            // Compiled through IR that the assembly check reads.
            KERNEL_IR,
            self.stamp,
            template::cpp_digest(),
            WASM_FLAGS.join(" "),
            WASM_LINK_FLAGS.join(" "),
            NATIVE_FLAGS.join(" "),
            NATIVE_LINK_FLAGS.join(" "),
            CPP_STANDARDS[0],
            C_STANDARDS[0]
        )
    }

    /// Writes what a compile of `source` needs into `work`: the template,
    /// the candidate, and the WIT glue generated from the world.
    pub fn write_work(&self, work: &Path, dialect: Dialect, source: &str) -> Result<()> {
        template::write_cpp_to(work, dialect.file_name(), source)?;
        for (name, bytes) in wit_glue()? {
            std::fs::write(work.join(&name), bytes)
                .with_context(|| format!("writing {name} into the work directory"))?;
        }
        Ok(())
    }

    /// The jailed clang runs that compile the candidate written in `work`,
    /// as standard `standard`, to a core wasm module at `work/kernel.wasm`:
    /// the C files first (each language's standard is one flag of a run, and
    /// clang refuses a C++ standard for C), then the C++ and the link.
    pub fn wasm_commands(
        &self,
        work: &Path,
        dialect: Dialect,
        standard: &str,
        limits: ResourceLimits,
    ) -> Vec<Command> {
        let mut common: Vec<String> = WASM_FLAGS.iter().map(|s| s.to_string()).collect();
        common.extend([
            format!("--sysroot={JAIL_SYSROOT}"),
            "-isystem".into(),
            format!("{JAIL_WORK}/include"),
            "-isystem".into(),
            format!("{JAIL_WORK}/openmp"),
            "-isystem".into(),
            JAIL_SIMDE.into(),
        ]);
        let cxx = if dialect == Dialect::Cpp {
            standard
        } else {
            CPP_STANDARDS[0]
        };
        let mut runs = vec![compile_c(&common, C_STANDARDS[0], &["wit.c", "wasi.c"])];
        let mut link = common.clone();
        match dialect {
            Dialect::Cpp => {
                runs.push(to_ir(&common, standard, "c++", "wasm_main.cpp"));
                link.extend(["-x".into(), "ir".into(), KERNEL_IR.into()]);
            }
            Dialect::C => {
                runs.push(to_ir(&common, standard, "c", "kernel.c"));
                link.extend(
                    [
                        &format!("-std={cxx}"),
                        "-x",
                        "c++",
                        "wasm_main_c.cpp",
                        "-x",
                        "ir",
                        KERNEL_IR,
                    ]
                    .map(String::from),
                );
            }
        }
        link.extend(WASM_LINK_FLAGS.iter().map(|s| s.to_string()));
        link.extend(
            [
                &format!("-fuse-ld={LLVM_DIR}/bin/wasm-ld"),
                "-Wno-unused-command-line-argument",
                "-x",
                "none",
                "wit.o",
                "wasi.o",
                "wit_component_type.o",
                "-o",
                &format!("{JAIL_WORK}/kernel.wasm"),
            ]
            .map(String::from),
        );
        runs.push(link);
        runs.into_iter()
            .map(|args| {
                self.wasm_jail(work, limits)
                    .command(&format!("{LLVM_DIR}/bin/clang++"), &args)
            })
            .collect()
    }

    /// The jail of a WebAssembly compile: LLVM, the libraries it loads, the
    /// wasm32 sysroot, SIMDe and the work directory, and nothing else.
    fn wasm_jail(&self, work: &Path, limits: ResourceLimits) -> Jail {
        let mut jail = Jail::new(limits)
            .without_usr()
            .ro(Path::new(LLVM_DIR), LLVM_DIR);
        for (file, inside) in &self.libraries {
            jail = jail.ro(file, inside);
        }
        // The sysroot's directories keep their own paths (libc++'s headers
        // and libraries are relative links into LLVM's directory); the
        // sysroot clang is given links to them.
        jail.ro(Path::new(WASI_INCLUDE), WASI_INCLUDE)
            .ro(Path::new(WASI_LIB), WASI_LIB)
            .symlink(WASI_INCLUDE, &format!("{JAIL_SYSROOT}/include"))
            .symlink(WASI_LIB, &format!("{JAIL_SYSROOT}/lib/wasm32-wasi"))
            .ro(Path::new(SIMDE), &format!("{JAIL_SIMDE}/simde"))
            .rw(work, JAIL_WORK)
            .chdir(JAIL_WORK)
    }

    /// The jailed clang runs that compile the candidate written in `work`,
    /// as standard `standard`, as the native runner for the LLVM CPU `cpu`,
    /// to `work/kernel-native`.
    pub fn native_commands(
        &self,
        work: &Path,
        dialect: Dialect,
        standard: &str,
        cpu: &str,
        limits: ResourceLimits,
    ) -> Vec<Command> {
        let mut common: Vec<String> = NATIVE_FLAGS.iter().map(|s| s.to_string()).collect();
        common.push(format!("-march={cpu}"));
        common.extend(["-isystem".into(), format!("{JAIL_WORK}/openmp")]);
        let mut link = common.clone();
        link.extend(NATIVE_LINK_FLAGS.iter().map(|s| s.to_string()));
        let mut runs = match dialect {
            Dialect::Cpp => {
                link.extend(
                    ["-Wno-unused-command-line-argument", "-x", "ir", KERNEL_IR].map(String::from),
                );
                vec![to_ir(&common, standard, "c++", "native_main.cpp")]
            }
            Dialect::C => {
                link.extend(
                    [
                        &format!("-std={}", CPP_STANDARDS[0]),
                        "-x",
                        "c++",
                        "native_main_c.cpp",
                        "-x",
                        "ir",
                        KERNEL_IR,
                    ]
                    .map(String::from),
                );
                vec![to_ir(&common, standard, "c", "kernel.c")]
            }
        };
        link.extend(["-o".into(), format!("{JAIL_WORK}/kernel-native")]);
        runs.push(link);
        runs.into_iter()
            .map(|args| {
                Jail::new(limits)
                    .rw(work, JAIL_WORK)
                    .chdir(JAIL_WORK)
                    .command(&format!("{LLVM_DIR}/bin/clang++"), &args)
            })
            .collect()
    }
}

/// The arguments of a run that writes the translation unit holding the
/// kernel, `file` in `language` (`c`, `c++`) as `standard`, as LLVM IR at
/// [`KERNEL_IR`]: preprocessed and turned into IR, not yet optimised (the
/// link run optimises it with the same flags, as a compile from source
/// would), so that [`super::cpolicy::check_compiled`] judges exactly what
/// is compiled.
fn to_ir(common: &[String], standard: &str, language: &str, file: &str) -> Vec<String> {
    let mut args = common.to_vec();
    args.extend(
        [
            &format!("-std={standard}"),
            "-S",
            "-emit-llvm",
            "-Xclang",
            "-disable-llvm-passes",
            "-x",
            language,
            file,
            "-o",
            KERNEL_IR,
        ]
        .map(String::from),
    );
    args
}

/// The arguments of a run that compiles C `files` as `standard` to objects
/// beside them (`wit.c` to `wit.o`).
fn compile_c(common: &[String], standard: &str, files: &[&str]) -> Vec<String> {
    let mut args = common.to_vec();
    args.extend([
        format!("-std={standard}"),
        "-c".into(),
        "-x".into(),
        "c".into(),
    ]);
    args.extend(files.iter().map(|f| f.to_string()));
    args
}

/// The shared libraries `binary` loads from outside LLVM's directory, as
/// `ldd` reports them: each file (symbolic links resolved) and the path
/// under `/usr` where the dynamic loader of a jail without `/etc` finds it.
fn shared_libraries(binary: &Path) -> Result<Vec<(PathBuf, String)>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .with_context(|| format!("running ldd on {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
        // "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let file = std::fs::canonicalize(path)
            .with_context(|| format!("resolving {path}, which {} loads", binary.display()))?;
        // Found inside LLVM's directory (through the binary's run path),
        // which the jail has anyway.
        let folder = Path::new(path)
            .parent()
            .and_then(|d| std::fs::canonicalize(d).ok());
        if folder.is_some_and(|d| d.starts_with(LLVM_DIR)) {
            continue;
        }
        // /lib and /lib64 are links into /usr inside the jail.
        let inside = match path.strip_prefix("/lib") {
            Some(rest) if rest.starts_with('/') || rest.starts_with("64/") => {
                format!("/usr/lib{rest}")
            }
            _ => path.to_string(),
        };
        found.push((file, inside));
    }
    if found.is_empty() {
        bail!("ldd found no shared library of {}", binary.display());
    }
    Ok(found)
}

/// The C bindings of the WIT world (`wit.h`, `wit.c`,
/// `wit_component_type.o`), generated from the embedded `wit/kernel.wit`.
pub fn wit_glue() -> Result<Vec<(String, Vec<u8>)>> {
    use wit_bindgen_core::wit_parser::Resolve;
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("kernel.wit", template::wit())
        .context("parsing wit/kernel.wit")?;
    let world = resolve
        .select_world(&[package], Some("kernel"))
        .context("finding the kernel world")?;
    let opts = wit_bindgen_c::Opts {
        rename_world: Some("wit".into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    opts.build()
        .generate(&mut resolve, world, &mut files)
        .context("generating the C bindings of the kernel world")?;
    Ok(files
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_library_clang_loads_is_bound_where_the_loader_looks() {
        let clang = Clang::find().expect("clang-16 is installed (scripts/setup)");
        let inside: Vec<&str> = clang.libraries.iter().map(|(_, i)| i.as_str()).collect();
        assert!(
            inside.contains(&"/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "{inside:?}"
        );
        for (file, inside) in &clang.libraries {
            assert!(file.is_file(), "{}", file.display());
            assert!(inside.starts_with("/usr/lib"), "{inside}");
        }
        // A Debian update of libc++ alone changes every cache key.
        assert!(
            clang
                .fingerprint()
                .contains("/usr/lib/wasm32-wasi/libc++.a:"),
            "{}",
            clang.fingerprint()
        );
    }

    #[test]
    fn a_kernel_chooses_its_standard_with_one_directive() {
        assert_eq!(Dialect::Cpp.standard("int x;\n"), Ok("gnu++20"));
        assert_eq!(Dialect::C.standard(""), Ok("gnu17"));
        assert_eq!(
            Dialect::Cpp.standard("#include <vector>\n// anneval: std=c++17\n"),
            Ok("c++17")
        );
        assert_eq!(
            Dialect::C.standard("  //anneval:std = c11\n// anneval: std=c11\n"),
            Ok("c11")
        );
        // Not a directive: prose that mentions anneval, a block comment.
        assert_eq!(
            Dialect::Cpp.standard("// for anneval: std=c++17\n/* anneval: std=c++17 */\n"),
            Ok("gnu++20")
        );
        for (dialect, source, says) in [
            (
                Dialect::Cpp,
                "// anneval: std=c++23\n",
                "line 1: std=c++23 is not a standard a C++ kernel may choose: gnu++20, c++20",
            ),
            (
                Dialect::C,
                "int x;\n// anneval: std=gnu++20\n",
                "line 2: std=gnu++20 is not a standard a C kernel may choose",
            ),
            (
                Dialect::Cpp,
                "// anneval: std=c++17\n// anneval: std=c++20\n",
                "line 2: std=c++20 differs from the std=c++17",
            ),
            (
                Dialect::Cpp,
                "// anneval: optimise=max\n",
                "is not a directive anneval knows",
            ),
        ] {
            let error = dialect.standard(source).expect_err(source);
            assert!(error.contains(says), "{source}: {error}");
        }
    }

    #[test]
    fn the_glue_is_generated_from_the_world() {
        let files = wit_glue().unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["wit.c", "wit.h", "wit_component_type.o"]);
        let header = String::from_utf8(files[1].1.clone()).unwrap();
        for export in [
            "exports_anneval_kernel_index_build",
            "exports_anneval_kernel_index_constructor_searcher",
            "exports_anneval_kernel_index_method_searcher_search_batch",
            "anneval_kernel_host_log",
        ] {
            assert!(header.contains(export), "wit.h lacks {export}");
        }
    }
}
