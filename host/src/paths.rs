//! Where anneval keeps things: compiled components and the guest toolchain in
//! the cache directory, datasets in the data directory. Both can be moved with
//! environment variables, which tests use to share one cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `$ANNEVAL_CACHE`, else `<user cache dir>/anneval`.
pub fn cache_dir() -> Result<PathBuf> {
    dir_from_env("ANNEVAL_CACHE", "cache")
}

/// `$ANNEVAL_DATA`, else `<user cache dir>/anneval/data`.
pub fn data_dir() -> Result<PathBuf> {
    match std::env::var_os("ANNEVAL_DATA") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(default_root()?.join("data")),
    }
}

fn dir_from_env(var: &str, what: &str) -> Result<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => default_root().with_context(|| format!("choosing a {what} directory")),
    }
}

fn default_root() -> Result<PathBuf> {
    let base = dirs::cache_dir().context(
        "no cache directory for this user (set ANNEVAL_CACHE and ANNEVAL_DATA to choose one)",
    )?;
    Ok(base.join("anneval"))
}

/// Creates `dir` (and parents) with a message naming it on failure.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then a rename, so a reader never sees half a file and a crash
/// leaves none behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("moving the finished file to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
