//! Candidates of several files: a C or C++ kernel whose files include each
//! other by relative path (a folder, a tar archive, or in the service's JSON
//! a map of relative path → text), as a codebase such as GLASS is written.
//!
//! A bundle is a front end: it becomes one translation unit before anything
//! else sees it, so the policy, the compile jail, the cache key (which thus
//! covers every file) and both engines are the single file's. Each
//! `#include "path"` that names a file of the bundle (relative to the
//! including file, then to the bundle's root, as clang's `-I.` would) is
//! replaced by that file's text between `#line` markers, so the compiler's
//! messages and the policy name the bundle's own file and line. A file with
//! `#pragma once` is inlined once; include guards work as they always do.
//! Any other include is left as it is, for the policy to judge (the SDK and
//! system headers pass; nothing else does).
//!
//! Nothing escapes the bundle: paths are relative, without `..`, without
//! links (a folder's symbolic links are refused), at most [`MAX_FILES`]
//! files, at most the candidate size limit in total, and inlining stops at
//! [`MAX_DEPTH`] nested includes or [`MAX_FLAT_BYTES`] of text.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::compile::Language;

/// Files a bundle may hold.
pub const MAX_FILES: usize = 256;
/// Includes nested deeper than this are an include cycle without guards.
pub const MAX_DEPTH: usize = 64;
/// The translation unit a bundle may become.
pub const MAX_FLAT_BYTES: usize = 16 << 20;

/// Source files a bundle may hold, by extension.
const SOURCE_EXTENSIONS: &[&str] = &[
    "c", "cc", "cpp", "cxx", "h", "hh", "hpp", "hxx", "inc", "ipp",
];

/// A bundle's files, by normalised relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, String>,
}

/// A relative path inside a bundle, normalised (`./` and empty parts
/// dropped), or why it is not one.
fn normalise(path: &str) -> Result<String, String> {
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(format!(
            "{path:?}: a bundle's paths are relative, with `/` between parts"
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{path:?}: a bundle's paths stay inside it (no `..`)"
                ));
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(format!("{path:?} names no file"));
    }
    Ok(parts.join("/"))
}

impl Bundle {
    /// A bundle from relative paths and their texts, `max_bytes` in all.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
        max_bytes: usize,
    ) -> Result<Bundle, String> {
        let mut out = BTreeMap::new();
        let mut total = 0usize;
        for (path, text) in files {
            let path = normalise(&path)?;
            let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            if !SOURCE_EXTENSIONS.contains(&ext) {
                return Err(format!(
                    "{path}: a bundle holds C and C++ sources and headers ({})",
                    SOURCE_EXTENSIONS
                        .iter()
                        .map(|e| format!(".{e}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            total += text.len();
            if out.insert(path.clone(), text).is_some() {
                return Err(format!("{path} is in the bundle twice"));
            }
            if out.len() > MAX_FILES {
                return Err(format!("a bundle holds at most {MAX_FILES} files"));
            }
        }
        if total > max_bytes {
            return Err(format!(
                "the bundle's files are {total} bytes, over the limit of {max_bytes}"
            ));
        }
        Ok(Bundle { files: out })
    }

    /// The bundle in folder `dir`: every file under it (hidden ones and
    /// those of other kinds, such as a README, are left out); a symbolic
    /// link is refused.
    pub fn from_dir(dir: &Path, max_bytes: usize) -> anyhow::Result<Bundle> {
        let mut files = Vec::new();
        let mut total = 0usize;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", folder.display()))?;
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let kind = entry.file_type()?;
                if kind.is_symlink() {
                    anyhow::bail!(
                        "{}: a bundle holds no symbolic links (copy the file in)",
                        path.display()
                    );
                }
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !SOURCE_EXTENSIONS.contains(&ext) {
                    continue;
                }
                if !kind.is_file() {
                    anyhow::bail!(
                        "{}: a bundle holds regular files only (this is a FIFO, socket or device)",
                        path.display()
                    );
                }
                if files.len() == MAX_FILES {
                    anyhow::bail!(
                        "{}: a bundle holds at most {MAX_FILES} files",
                        dir.display()
                    );
                }
                let relative = path
                    .strip_prefix(dir)
                    .map_err(|_| {
                        anyhow::anyhow!("{} is outside {}", path.display(), dir.display())
                    })?
                    .to_string_lossy()
                    .into_owned();
                let size = entry.metadata()?.len() as usize;
                if size > max_bytes.saturating_sub(total) {
                    anyhow::bail!(
                        "{}: the bundle's files are over the limit of {max_bytes} bytes",
                        path.display()
                    );
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                total += text.len();
                files.push((relative, text));
            }
        }
        Bundle::from_files(files, max_bytes)
            .map_err(|e| anyhow::anyhow!("bundle {}: {e}", dir.display()))
    }

    /// The files, by normalised relative path.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// Whether `path` names a tar archive (`.tar`, `.tar.gz`, `.tgz`).
    pub fn is_archive(path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|e| name.ends_with(e))
    }

    /// The bundle in the tar archive `path` (gzip-compressed if it ends in
    /// `.gz` or `.tgz`): its regular files, each path as in the archive. A
    /// link or device entry is refused, as are the paths a folder's bundle
    /// refuses; reading stops at `max_bytes` of files, so a compressed
    /// archive cannot unpack past the limit.
    pub fn from_tar(path: &Path, max_bytes: usize) -> anyhow::Result<Bundle> {
        use std::io::Read;
        let at = path.display();
        let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("reading {at}: {e}"))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stream: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        // The archiver reads long names and extended headers into memory
        // and skips what it does not keep by reading through it: the stream
        // itself ends past what a bundle within the limit can take (its
        // files, a header and padding for each).
        let over = std::rc::Rc::new(std::cell::Cell::new(false));
        let over_limit =
            || anyhow::anyhow!("{at}: the bundle's files are over the limit of {max_bytes} bytes");
        let stream = Capped {
            inner: stream,
            left: (max_bytes as u64) * 2 + ((MAX_FILES as u64 + 16) << 10),
            over: over.clone(),
        };
        let mut archive = tar::Archive::new(stream);
        let mut files = Vec::new();
        let mut total = 0usize;
        let entries = archive
            .entries()
            .map_err(|e| anyhow::anyhow!("{at} is not a tar archive: {e}"))?;
        for entry in entries {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(_) if over.get() => return Err(over_limit()),
                Err(e) => anyhow::bail!("{at} is not a tar archive: {e}"),
            };
            let relative = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() {
                anyhow::bail!(
                    "{at}: {relative}: a bundle holds regular files only (this entry is a {})",
                    match kind {
                        tar::EntryType::Symlink => "symbolic link",
                        tar::EntryType::Link => "hard link",
                        tar::EntryType::Char | tar::EntryType::Block => "device",
                        tar::EntryType::Fifo => "FIFO",
                        _ => "special entry",
                    }
                );
            }
            let size = entry.size();
            if size > (max_bytes - total) as u64 {
                return Err(over_limit());
            }
            if files.len() == MAX_FILES {
                anyhow::bail!("{at}: a bundle holds at most {MAX_FILES} files");
            }
            let mut text = String::new();
            if let Err(e) = entry.by_ref().take(size).read_to_string(&mut text) {
                if over.get() {
                    return Err(over_limit());
                }
                anyhow::bail!("{at}: {relative}: {e} (a bundle holds text)");
            }
            total += text.len();
            files.push((relative, text));
        }
        if over.get() {
            return Err(over_limit());
        }
        Bundle::from_files(files, max_bytes).map_err(|e| anyhow::anyhow!("bundle {at}: {e}"))
    }

    /// The kernel's file and language: `kernel.cpp` (C++) or `kernel.c`
    /// (C) at the bundle's root.
    pub fn entry(&self) -> Result<(&str, Language), String> {
        let found: Vec<_> = [("kernel.cpp", Language::Cpp), ("kernel.c", Language::C)]
            .into_iter()
            .filter(|(name, _)| self.files.contains_key(*name))
            .collect();
        match found.as_slice() {
            [(name, language)] => Ok((name, *language)),
            [] => Err(format!(
                "a bundle's kernel is kernel.cpp (C++) or kernel.c (C) at its root; it holds {}",
                self.files.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => Err("a bundle has one kernel: kernel.cpp or kernel.c, not both".into()),
        }
    }

    /// The bundle as one translation unit and its language.
    pub fn flatten(&self) -> Result<(String, Language), String> {
        let (entry, language) = self.entry()?;
        let mut flat = Flattener {
            bundle: self,
            once: HashSet::new(),
            out: String::new(),
        };
        flat.file(entry, 0)?;
        Ok((flat.out, language))
    }
}

/// A stream that ends after `left` bytes and says, in `over`, that it did.
struct Capped<R> {
    inner: R,
    left: u64,
    over: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            self.over.set(true);
            return Ok(0);
        }
        let room = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

struct Flattener<'a> {
    bundle: &'a Bundle,
    /// Files with `#pragma once` already inlined.
    once: HashSet<String>,
    out: String,
}

/// The quoted file of an `#include "…"` line (`%:` counts as `#`), if the
/// line is one.
fn quoted_include(line: &str) -> Option<&str> {
    let rest = line.trim_start();
    let rest = rest.strip_prefix('#').or_else(|| rest.strip_prefix("%:"))?;
    let rest = rest.trim_start().strip_prefix("include")?;
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(file, _)| file)
}

fn is_pragma_once(line: &str) -> bool {
    let rest = line.trim_start();
    let Some(rest) = rest.strip_prefix('#').or_else(|| rest.strip_prefix("%:")) else {
        return false;
    };
    let mut words = rest.split_whitespace();
    words.next() == Some("pragma") && words.next() == Some("once") && words.next().is_none()
}

impl Flattener<'_> {
    /// Appends `path`'s text, its bundle includes inlined.
    fn file(&mut self, path: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{path}: includes nested more than {MAX_DEPTH} deep (files that include each \
                 other without #pragma once or an include guard?)"
            ));
        }
        let text = &self.bundle.files[path];
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        if text.lines().any(is_pragma_once) {
            self.once.insert(path.to_string());
        }
        for (i, line) in text.lines().enumerate() {
            if is_pragma_once(line) {
                self.out.push('\n');
                continue;
            }
            let target = quoted_include(line).and_then(|file| self.resolve(dir, file));
            match target {
                Some(target) if self.once.contains(&target) => self.out.push('\n'),
                Some(target) => {
                    self.out.push_str(&format!("#line 1 \"{target}\"\n"));
                    self.file(&target, depth + 1)?;
                    self.out.push_str(&format!("#line {} \"{path}\"\n", i + 2));
                }
                None => {
                    self.out.push_str(line);
                    self.out.push('\n');
                }
            }
            if self.out.len() > MAX_FLAT_BYTES {
                return Err(format!(
                    "the bundle's includes make more than {} MiB of text (files included \
                     again and again?)",
                    MAX_FLAT_BYTES >> 20
                ));
            }
        }
        Ok(())
    }

    /// The bundle file `file` names from a file in `dir`: relative to it,
    /// then to the root.
    fn resolve(&self, dir: &str, file: &str) -> Option<String> {
        let beside = if dir.is_empty() {
            file.to_string()
        } else {
            format!("{dir}/{file}")
        };
        [beside, file.to_string()]
            .into_iter()
            .filter_map(|p| normalise(&p).ok())
            .find(|p| self.bundle.files.contains_key(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &str)]) -> Result<Bundle, String> {
        Bundle::from_files(
            files.iter().map(|(p, t)| (p.to_string(), t.to_string())),
            1 << 20,
        )
    }

    #[test]
    fn includes_of_the_bundle_are_inlined_between_line_markers() {
        let b = bundle(&[
            (
                "kernel.cpp",
                "#include \"anneval.hpp\"\n#include \"glass/hnsw.hpp\"\nint k;\n",
            ),
            (
                "glass/hnsw.hpp",
                "#pragma once\n#include \"quant.hpp\"\n#include \"glass/quant.hpp\"\nint h;\n",
            ),
            ("glass/quant.hpp", "#pragma once\nint q;\n"),
        ])
        .unwrap();
        let (flat, language) = b.flatten().unwrap();
        assert_eq!(language, Language::Cpp);
        assert_eq!(
            flat,
            "#include \"anneval.hpp\"\n\
             #line 1 \"glass/hnsw.hpp\"\n\
             \n\
             #line 1 \"glass/quant.hpp\"\n\
             \n\
             int q;\n\
             #line 3 \"glass/hnsw.hpp\"\n\
             \n\
             int h;\n\
             #line 3 \"kernel.cpp\"\n\
             int k;\n"
        );
    }

    #[test]
    fn nothing_escapes_the_bundle() {
        for (path, why) in [
            ("/etc/passwd.h", "relative"),
            ("../x.hpp", "no `..`"),
            ("a/../../x.hpp", "no `..`"),
            ("notes.txt", "C and C++ sources"),
        ] {
            let err = bundle(&[("kernel.cpp", ""), (path, "")]).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        // An include that leaves the bundle stays an include, for the
        // policy to refuse.
        let b = bundle(&[("kernel.cpp", "#include \"../secret.hpp\"\n")]).unwrap();
        assert_eq!(b.flatten().unwrap().0, "#include \"../secret.hpp\"\n");
        let big = bundle(&[
            ("kernel.cpp", &"x".repeat(600_000)),
            ("a.hpp", &"y".repeat(600_000)),
        ]);
        assert!(big.unwrap_err().contains("over the limit"));
    }

    #[test]
    fn a_cycle_without_guards_and_a_missing_kernel_are_named() {
        let b = bundle(&[
            ("kernel.cpp", "#include \"a.hpp\"\n"),
            ("a.hpp", "#include \"kernel.cpp\"\n"),
        ])
        .unwrap();
        assert!(b.flatten().unwrap_err().contains("nested more than"));
        let b = bundle(&[("main.cpp", "")]).unwrap();
        assert!(
            b.flatten()
                .unwrap_err()
                .contains("kernel.cpp (C++) or kernel.c (C)")
        );
        let b = bundle(&[("kernel.cpp", ""), ("kernel.c", "")]).unwrap();
        assert!(b.flatten().unwrap_err().contains("not both"));
    }

    #[test]
    fn a_folder_is_read_without_its_links_or_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("glass")).unwrap();
        std::fs::write(dir.path().join("kernel.cpp"), "#include \"glass/a.hpp\"\n").unwrap();
        std::fs::write(dir.path().join("glass/a.hpp"), "int a;\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        let b = Bundle::from_dir(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            b.flatten().unwrap().0,
            "#line 1 \"glass/a.hpp\"\nint a;\n#line 2 \"kernel.cpp\"\n"
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("glass/b.hpp")).unwrap();
        let err = Bundle::from_dir(dir.path(), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no symbolic links"), "{err}");
    }

    /// A tar archive of `entries` (path, kind, contents) written raw, so
    /// that it can hold what a well-behaved archiver refuses to write.
    fn archive(dir: &Path, name: &str, entries: &[(&str, tar::EntryType, &[u8])]) -> PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let out: Box<dyn std::io::Write> = if name.ends_with(".gz") || name.ends_with(".tgz") {
            Box::new(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(file)
        };
        let mut builder = tar::Builder::new(out);
        for (entry, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            let bytes = entry.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_entry_type(*kind);
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                header.as_old_mut().linkname[..10].copy_from_slice(b"/etc/passw");
            }
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().flush().unwrap();
        path
    }

    use std::io::Write as _;
    use std::path::PathBuf;

    #[test]
    fn a_tar_archive_is_the_folder_it_was_made_from_and_nothing_escapes_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/hnswlib_style");
        let folder = Bundle::from_dir(&root, 1 << 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<(String, String)> = folder
            .files()
            .iter()
            .map(|(p, t)| (format!("./{p}"), t.clone()))
            .collect();
        let entries: Vec<(&str, tar::EntryType, &[u8])> = texts
            .iter()
            .map(|(p, t)| (p.as_str(), tar::EntryType::Regular, t.as_bytes()))
            .collect();
        for name in ["kernel.tar", "kernel.tar.gz", "kernel.tgz"] {
            let path = archive(dir.path(), name, &entries);
            assert!(Bundle::is_archive(&path));
            assert_eq!(Bundle::from_tar(&path, 1 << 20).unwrap(), folder, "{name}");
        }
        let file = |kind| {
            vec![
                ("kernel.cpp", tar::EntryType::Regular, &b"int k;"[..]),
                ("a.h", kind, &b""[..]),
            ]
        };
        for (name, entries, says) in [
            (
                "link.tar",
                file(tar::EntryType::Symlink),
                "a.h: a bundle holds regular files only (this entry is a symbolic link)",
            ),
            ("hard.tar", file(tar::EntryType::Link), "hard link"),
            ("dev.tar", file(tar::EntryType::Char), "device"),
            (
                "up.tar",
                vec![("../a.h", tar::EntryType::Regular, &b""[..])],
                "no `..`",
            ),
            (
                "abs.tar",
                vec![("/etc/a.h", tar::EntryType::Regular, &b""[..])],
                "are relative",
            ),
            (
                "bin.tar",
                vec![("a.h", tar::EntryType::Regular, &[0xff, 0xfe][..])],
                "a bundle holds text",
            ),
        ] {
            let path = archive(dir.path(), name, &entries);
            let err = format!("{:#}", Bundle::from_tar(&path, 1 << 20).unwrap_err());
            assert!(err.contains(says), "{name}: {err}");
        }
        // A compressed archive unpacks no further than the limit.
        let zeros = vec![b' '; 4 << 20];
        let bomb = archive(
            dir.path(),
            "bomb.tar.gz",
            &[("kernel.cpp", tar::EntryType::Regular, &zeros[..])],
        );
        assert!(std::fs::metadata(&bomb).unwrap().len() < 64 << 10);
        let err = format!("{:#}", Bundle::from_tar(&bomb, 1 << 20).unwrap_err());
        assert!(err.contains("over the limit of 1048576 bytes"), "{err}");
        // A long name the archiver would read into memory whole.
        let name = vec![b'a'; 4 << 20];
        let long = archive(
            dir.path(),
            "long.tar.gz",
            &[("././@LongLink", tar::EntryType::GNULongName, &name[..])],
        );
        let err = format!("{:#}", Bundle::from_tar(&long, 1 << 20).unwrap_err());
        assert!(err.contains("over the limit of 1048576 bytes"), "{err}");
        let junk = dir.path().join("junk.tar");
        std::fs::write(&junk, vec![7u8; 1024]).unwrap();
        let err = format!("{:#}", Bundle::from_tar(&junk, 1 << 20).unwrap_err());
        assert!(err.contains("is not a tar archive"), "{err}");
    }

    #[test]
    fn a_folder_holding_a_fifo_or_too_much_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kernel.cpp"), "int k;\n").unwrap();
        std::fs::write(dir.path().join("big.h"), vec![b' '; 600 << 10]).unwrap();
        std::fs::write(dir.path().join("bigger.h"), vec![b' '; 600 << 10]).unwrap();
        let err = format!("{:#}", Bundle::from_dir(dir.path(), 1 << 20).unwrap_err());
        assert!(err.contains("over the limit of 1048576 bytes"), "{err}");
        std::fs::remove_file(dir.path().join("bigger.h")).unwrap();
        let fifo = std::ffi::CString::new(dir.path().join("pipe.hpp").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = format!("{:#}", Bundle::from_dir(dir.path(), 1 << 20).unwrap_err());
        assert!(
            err.contains("pipe.hpp: a bundle holds regular files only"),
            "{err}"
        );
    }
}
