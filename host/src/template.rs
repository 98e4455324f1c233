//! The guest templates and the WIT world, embedded in the binary so that
//! `anneval` needs no source checkout to compile a candidate: the Rust crate
//! ([`FILES`], a candidate's source replaces [`KERNEL_PATH`] in a private
//! copy) and the C/C++ template ([`CPP_FILES`], written beside a candidate's
//! `kernel.cpp` or `kernel.c`).

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// One file of the template, by its path relative to the layout root (which
/// holds `guest-template/` and `wit/` side by side, as the repository does).
pub struct TemplateFile {
    pub path: &'static str,
    pub contents: &'static str,
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(TemplateFile { path: $path, contents: include_str!(concat!("../../", $path)) }),*]
    };
}

/// Every file of the template, the candidate's `kernel.rs` included.
pub const FILES: &[TemplateFile] = embed![
    "Cargo.lock",
    "guest-template/Cargo.toml",
    "guest-template/src/lib.rs",
    "guest-template/src/glue.rs",
    "guest-template/src/kernel.rs",
    "guest-template/src/native.rs",
    "guest-template/src/native_main.rs",
    "guest-template/src/sdk/mod.rs",
    "guest-template/src/sdk/bytes.rs",
    "guest-template/src/sdk/params.rs",
    "guest-template/src/sdk/pool.rs",
    "guest-template/src/sdk/quant.rs",
    "guest-template/src/sdk/rng.rs",
    "guest-template/src/sdk/simd.rs",
    "guest-template/src/sdk/visited.rs",
    "wit/kernel.wit",
];

/// The C/C++ template: the SDK (`anneval.h` for C, `anneval.hpp` for C++),
/// the glue of both engines, the WASI answers, the x86 translation layer,
/// and what one thread makes of OpenMP (`openmp/`, both engines) and of the
/// thread library and of memory advice (`include/`, the sandbox's).
/// Paths are relative to `guest-template-cpp/`; the WIT bindings the glue
/// includes are generated at compile time from [`wit`].
pub const CPP_FILES: &[TemplateFile] = &cpp_files();

const fn cpp_files() -> [TemplateFile; 30] {
    macro_rules! cpp {
        ($($path:literal),* $(,)?) => {
            [$(TemplateFile { path: $path, contents: include_str!(concat!("../../guest-template-cpp/", $path)) }),*]
        };
    }
    cpp![
        "anneval.h",
        "anneval_quant.h",
        "anneval.hpp",
        "runtime.hpp",
        "wasm_glue.hpp",
        "native_glue.hpp",
        "c_kernel.hpp",
        "wasm_main.cpp",
        "wasm_main_c.cpp",
        "native_main.cpp",
        "native_main_c.cpp",
        "wasi.c",
        "kernel.cpp",
        "kernel.c",
        "include/anneval_x86.h",
        "include/anneval_x86_int.h",
        "include/immintrin.h",
        "include/x86intrin.h",
        "include/xmmintrin.h",
        "include/emmintrin.h",
        "include/pmmintrin.h",
        "include/tmmintrin.h",
        "include/smmintrin.h",
        "include/nmmintrin.h",
        "include/wmmintrin.h",
        "include/mutex",
        "include/shared_mutex",
        "include/thread",
        "include/sys/mman.h",
        "openmp/omp.h",
    ]
}

/// The C++ reference kernel (HNSW), the C++ candidates' starting point.
pub fn reference_cpp_kernel() -> &'static str {
    cpp_file("kernel.cpp")
}

/// The C reference kernel, the C candidates' starting point.
pub fn reference_c_kernel() -> &'static str {
    cpp_file("kernel.c")
}

fn cpp_file(path: &str) -> &'static str {
    CPP_FILES
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.contents)
        .unwrap_or_else(|| panic!("guest-template-cpp/{path} is embedded"))
}

/// A digest of the C/C++ template but its reference kernels.
pub fn cpp_digest() -> String {
    let mut h = Sha256::new();
    h.update(wit().as_bytes());
    for f in CPP_FILES
        .iter()
        .filter(|f| f.path != "kernel.cpp" && f.path != "kernel.c")
    {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.contents.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// Writes the C/C++ template under `root` with `kernel` as `file_name`
/// (`kernel.cpp` or `kernel.c`; the other reference kernel is left out).
pub fn write_cpp_to(root: &Path, file_name: &str, kernel: &str) -> Result<()> {
    for f in CPP_FILES
        .iter()
        .filter(|f| f.path != "kernel.cpp" && f.path != "kernel.c")
    {
        let path = root.join(f.path);
        if let Some(parent) = path.parent() {
            crate::paths::ensure_dir(parent)?;
        }
        std::fs::write(&path, f.contents).with_context(|| format!("writing {}", path.display()))?;
    }
    let path = root.join(file_name);
    std::fs::write(&path, kernel).with_context(|| format!("writing {}", path.display()))
}

/// The file a candidate replaces.
pub const KERNEL_PATH: &str = "guest-template/src/kernel.rs";

/// The crate directory inside the layout.
pub const CRATE_DIR: &str = "guest-template";

/// The WIT world's text.
pub fn wit() -> &'static str {
    file("wit/kernel.wit")
}

/// The reference kernel (HNSW), the default candidate.
pub fn reference_kernel() -> &'static str {
    file(KERNEL_PATH)
}

fn file(path: &str) -> &'static str {
    FILES
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.contents)
        .unwrap_or_else(|| panic!("{path} is embedded"))
}

/// A digest of everything but the kernel: the toolchain prepared for one
/// template is reused until the template changes.
pub fn digest() -> String {
    let mut h = Sha256::new();
    for f in FILES.iter().filter(|f| f.path != KERNEL_PATH) {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.contents.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// Writes the template under `root`, with `kernel` as `kernel.rs`.
pub fn write_to(root: &Path, kernel: &str) -> Result<()> {
    for f in FILES {
        let path = root.join(f.path);
        if let Some(parent) = path.parent() {
            crate::paths::ensure_dir(parent)?;
        }
        let contents = if f.path == KERNEL_PATH {
            kernel
        } else {
            f.contents
        };
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    // The copy is built on its own: its own workspace root (wherever it is
    // written, even inside another workspace) with the pinned lock file.
    let manifest = root.join(CRATE_DIR).join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    text.push_str("\n[workspace]\n");
    std::fs::write(&manifest, text).with_context(|| format!("writing {}", manifest.display()))?;
    let lock = root.join("Cargo.lock");
    std::fs::rename(&lock, root.join(CRATE_DIR).join("Cargo.lock"))
        .with_context(|| format!("placing {}", lock.display()))?;
    Ok(())
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_under(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }

    #[test]
    fn every_template_source_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut on_disk = Vec::new();
        files_under(&root.join("guest-template/src"), root, &mut on_disk);
        files_under(&root.join("wit"), root, &mut on_disk);
        for path in on_disk {
            assert!(
                FILES.iter().any(|f| f.path == path),
                "{path} is not embedded in template::FILES"
            );
        }
        let cpp_root = root.join("guest-template-cpp");
        let mut cpp = Vec::new();
        files_under(&cpp_root, &cpp_root, &mut cpp);
        for path in cpp {
            assert!(
                CPP_FILES.iter().any(|f| f.path == path),
                "guest-template-cpp/{path} is not embedded in template::CPP_FILES"
            );
        }
    }

    #[test]
    fn written_template_has_the_candidate_kernel() {
        let dir = tempfile::tempdir().unwrap();
        write_to(dir.path(), "// candidate").unwrap();
        let kernel = std::fs::read_to_string(dir.path().join(KERNEL_PATH)).unwrap();
        assert_eq!(kernel, "// candidate");
        assert!(dir.path().join("guest-template/Cargo.lock").exists());
        assert!(dir.path().join("wit/kernel.wit").exists());
    }
}
