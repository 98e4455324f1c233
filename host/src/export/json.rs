//! The JSON report: the evaluation's serde form, written atomically so a
//! reader never sees half a file.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::paths::write_atomic;

/// Writes `value` as pretty JSON to `path` (temporary file, then rename).
pub fn write(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
