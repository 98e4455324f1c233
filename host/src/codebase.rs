//! A team's own codebase as the template: a folder of C or C++ files with a
//! manifest ([`MANIFEST`]), registered by the operator (`--template DIR`,
//! `serve --template DIR`). A candidate then supplies only the files it
//! changes; the codebase as it is is the template's reference.
//!
//! ```toml
//! name = "glass-mini"          # how requests name it
//! language = "cpp"             # cpp or c
//! std = "c++20"                # optional: the language standard
//! replace = ["glass/search.hpp", "glass/quant/*.hpp"]  # a candidate may replace these
//! add = ["glass/quant/*.hpp"]  # and add files at these paths
//! ```
//!
//! The codebase's `kernel.cpp` (or `kernel.c`) at its root is its entry
//! point: it defines anneval's `Index` (or the C kernel functions) over the
//! codebase, as any C or C++ kernel does. A template is a front end like a
//! bundle: the codebase's files with the candidate's laid over them become
//! one translation unit ([`crate::bundle`]), so the policy, the compile jail,
//! the cache key and both engines are a single file's. The operator's files
//! are trusted but pass the same policy and jail; the candidate's are held
//! to the manifest: a file it may not replace or add is refused by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::compile::clang::Dialect;
use crate::compile::{CompileLimits, Language, cpolicy};
use crate::evaluator::Candidate;
use crate::template::hex;

/// The manifest's file name, at the codebase's root.
pub const MANIFEST: &str = "anneval.toml";
/// The most text a codebase may hold (the operator's, so larger than a
/// candidate's limit).
pub const MAX_CODEBASE_BYTES: usize = 8 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    language: Language,
    std: Option<String>,
    #[serde(default)]
    replace: Vec<String>,
    #[serde(default)]
    add: Vec<String>,
}

/// Paths a manifest names with globs (`*` within a part, `**` across parts).
#[derive(Debug)]
struct Paths {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Paths {
    fn new(patterns: Vec<String>, field: &str) -> Result<Paths> {
        let mut set = GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| anyhow!("{field}: {pattern:?} is not a glob: {e}"))?;
            set.add(glob);
        }
        Ok(Paths {
            set: set.build().with_context(|| format!("{field}: the globs"))?,
            patterns,
        })
    }

    fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    fn describe(&self) -> String {
        if self.patterns.is_empty() {
            "none".into()
        } else {
            self.patterns.join(", ")
        }
    }
}

/// A registered codebase.
#[derive(Debug)]
pub struct Codebase {
    pub name: String,
    pub language: Language,
    pub dir: PathBuf,
    /// The standard the manifest chooses, as the directive the compiler
    /// reads (`// anneval: std=c++20`), or nothing for the default.
    std_line: Option<String>,
    files: Bundle,
    replace: Paths,
    add: Paths,
    digest: String,
}

impl Codebase {
    /// Reads the codebase in `dir` and its manifest, or says what is wrong.
    pub fn load(dir: &Path) -> Result<Codebase> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).with_context(|| {
            format!(
                "reading {}: a template is a folder with an {MANIFEST} manifest",
                manifest_path.display()
            )
        })?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", manifest_path.display()))?;
        let at = || manifest_path.display().to_string();
        let dialect = match manifest.language {
            Language::Cpp => Dialect::Cpp,
            Language::C => Dialect::C,
            Language::Rust => bail!("{}: a template's language is cpp or c", at()),
        };
        if manifest.name.is_empty()
            || !manifest
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "{}: name {:?} must be letters, digits, '-', '_' or '.'",
                at(),
                manifest.name
            );
        }
        let std_line = match &manifest.std {
            None => None,
            Some(std) => {
                let chosen = dialect
                    .standard(&format!("// anneval: std={std}"))
                    .map_err(|e| anyhow!("{}: std: {e}", at()))?;
                if chosen != std {
                    bail!(
                        "{}: std = {std:?} is not one of {}",
                        at(),
                        dialect.standards().join(", ")
                    );
                }
                // Rebuilt from the accepted name: nothing else of the field
                // reaches the source.
                Some(format!("// anneval: std={chosen}"))
            }
        };
        let replace =
            Paths::new(manifest.replace, "replace").map_err(|e| anyhow!("{}: {e}", at()))?;
        let add = Paths::new(manifest.add, "add").map_err(|e| anyhow!("{}: {e}", at()))?;
        if replace.patterns.is_empty() && add.patterns.is_empty() {
            bail!(
                "{}: lists no file a candidate may replace or add (replace = [...], add = [...])",
                at()
            );
        }
        let files = Bundle::from_dir(dir, MAX_CODEBASE_BYTES)?;
        let codebase = Codebase {
            name: manifest.name,
            language: manifest.language,
            dir: dir.to_path_buf(),
            std_line,
            digest: {
                let mut h = Sha256::new();
                h.update(text.as_bytes());
                for (path, text) in files.files() {
                    h.update([0]);
                    h.update(path.as_bytes());
                    h.update([0]);
                    h.update(text.as_bytes());
                }
                hex(&h.finalize())
            },
            files,
            replace,
            add,
        };
        // The template must be a kernel of its language as it is, one the
        // compile step admits (else every normalised reward of it is lost).
        let (text, language) = codebase
            .flatten(&codebase.files)
            .map_err(|e| anyhow!("template {}: {e}", dir.display()))?;
        if language != codebase.language {
            bail!(
                "{}: says language = {}, but the codebase's entry is a {language} kernel",
                at(),
                codebase.language
            );
        }
        let limit = CompileLimits::default().max_source;
        if text.len() > limit {
            bail!(
                "template {}: the codebase is {} bytes as one translation unit, over the \
                 compile step's limit of {limit}",
                dir.display(),
                text.len()
            );
        }
        cpolicy::check(&text, dialect.file_name())
            .map_err(|v| anyhow!("template {}: {v}", dir.display()))?;
        dialect
            .standard(&text)
            .map_err(|e| anyhow!("template {}: {e}", dir.display()))?;
        Ok(codebase)
    }

    /// A digest of the manifest and every file: what the template is.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The codebase as it is: the template's reference.
    pub fn reference(&self) -> Candidate {
        let (text, language) = self
            .flatten(&self.files)
            .expect("the codebase flattened when it was loaded");
        Candidate::Source {
            origin: format!("template:{}", self.name),
            text,
            language,
        }
    }

    /// The codebase with `changes` (relative path → text) laid over it, as
    /// a candidate; a change the manifest does not allow is refused naming
    /// its file.
    pub fn candidate(
        &self,
        changes: BTreeMap<String, String>,
        max_bytes: usize,
    ) -> Result<Candidate, String> {
        if changes.is_empty() {
            return Err("the candidate changes no file of the template".into());
        }
        let changes = Bundle::from_files(changes, max_bytes)?;
        let mut merged = self.files.files().clone();
        for (path, text) in changes.files() {
            let exists = merged.contains_key(path);
            let allowed = if exists {
                self.replace.matches(path)
            } else {
                self.add.matches(path)
            };
            if !allowed {
                return Err(if exists {
                    format!(
                        "{path}: template {} lets a candidate replace only {}",
                        self.name,
                        self.replace.describe()
                    )
                } else {
                    format!(
                        "{path} is not a file of template {}, which lets a candidate add only {}",
                        self.name,
                        self.add.describe()
                    )
                });
            }
            merged.insert(path.clone(), text.clone());
        }
        let merged = Bundle::from_files(merged, MAX_CODEBASE_BYTES + max_bytes)?;
        let (text, language) = self.flatten(&merged)?;
        Ok(Candidate::Source {
            origin: format!(
                "template:{}+{}",
                self.name,
                &hex(&Sha256::digest(text.as_bytes()))[..12]
            ),
            text,
            language,
        })
    }

    /// A command-line candidate for this template: `reference` (the
    /// codebase as it is), a folder or tar archive laid out as the codebase,
    /// or one file,
    /// placed where the one replaceable file of its name is.
    pub fn candidate_from_arg(&self, arg: &Path, max_bytes: usize) -> Result<Candidate> {
        if arg == Path::new("reference") {
            return Ok(self.reference());
        }
        let origin = arg.display().to_string();
        let changes = if arg.is_dir() {
            Bundle::from_dir(arg, max_bytes)?.files().clone()
        } else if Bundle::is_archive(arg) {
            Bundle::from_tar(arg, max_bytes)?.files().clone()
        } else {
            let text = std::fs::read_to_string(arg)
                .with_context(|| format!("reading candidate {origin}"))?;
            let name = arg.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let places: Vec<&String> = self
                .files
                .files()
                .keys()
                .filter(|p| p.rsplit('/').next() == Some(name) && self.replace.matches(p))
                .collect();
            match places.as_slice() {
                [path] => BTreeMap::from([((*path).clone(), text)]),
                [] => bail!(
                    "candidate {origin}: template {} has no replaceable file named {name:?} \
                     (it lets a candidate replace {}); give a folder laid out as the template \
                     to add files",
                    self.name,
                    self.replace.describe()
                ),
                _ => bail!(
                    "candidate {origin}: template {} has several replaceable files named \
                     {name:?} ({}); give a folder laid out as the template",
                    self.name,
                    places
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        };
        match self.candidate(changes, max_bytes) {
            Ok(Candidate::Source { text, language, .. }) => Ok(Candidate::Source {
                origin,
                text,
                language,
            }),
            Ok(other) => Ok(other),
            Err(e) => Err(anyhow!("candidate {origin}: {e}")),
        }
    }

    /// `files` as one translation unit, with the manifest's standard.
    fn flatten(&self, files: &Bundle) -> Result<(String, Language), String> {
        let (mut text, language) = files.flatten()?;
        if let Some(line) = &self.std_line {
            // Last, so that no line of the codebase changes its number.
            text.push('\n');
            text.push_str(line);
            text.push('\n');
        }
        Ok((text, language))
    }
}

/// The codebases a service was started with, by name.
#[derive(Debug, Default)]
pub struct Codebases(BTreeMap<String, std::sync::Arc<Codebase>>);

impl Codebases {
    /// Loads each folder; two with one name are refused.
    pub fn load(dirs: &[PathBuf]) -> Result<Codebases> {
        let mut out = BTreeMap::new();
        for dir in dirs {
            let codebase = Codebase::load(dir)?;
            if let Some(other) = out
                .get(&codebase.name)
                .map(|c: &std::sync::Arc<Codebase>| c.dir.clone())
            {
                bail!(
                    "templates {} and {} are both named {:?}",
                    other.display(),
                    dir.display(),
                    codebase.name
                );
            }
            out.insert(codebase.name.clone(), std::sync::Arc::new(codebase));
        }
        Ok(Codebases(out))
    }

    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<Codebase>> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
