//! Downloading the standard ann-benchmarks files: the only network access
//! anneval ever makes, and only when asked (`anneval datasets fetch`).
//!
//! The body streams into a temporary file beside the destination while its
//! SHA-256 is computed; the checksum is compared when the registry knows it,
//! and the file is always opened and validated as an ann-benchmarks dataset
//! before a rename publishes it. Any failure leaves nothing behind.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::hdf5;
use crate::template::hex;

/// What a finished download was.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: u64,
    pub sha256: String,
}

/// Downloads `url` to `dest`. `progress(done, total)` follows the bytes.
pub fn fetch(
    url: &str,
    expected_sha256: Option<&str>,
    dest: &Path,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Fetched> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::paths::ensure_dir(dir)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| {
        anyhow::anyhow!(
            "could not download {url}: {e}\n\
             anneval needs the network only for `datasets fetch`. If this machine is offline, \
             download the file elsewhere and copy it to {}, or pass --url with a reachable mirror.",
            dest.display()
        )
    })?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = response.into_body().into_reader();

    let mut tmp = tempfile::Builder::new()
        .prefix(".anneval-")
        .suffix(".download")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body.read(&mut buf).with_context(|| {
            format!("downloading {url}: the connection broke after {done} bytes")
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .with_context(|| format!("writing the download to {}", tmp.path().display()))?;
        done += n as u64;
        progress(done, total);
    }
    if let Some(total) = total
        && done != total
    {
        bail!("downloading {url}: got {done} of {total} bytes");
    }
    tmp.as_file().sync_all().context("flushing the download")?;
    let sha256 = hex(&hasher.finalize());
    if let Some(expected) = expected_sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        bail!(
            "downloading {url}: SHA-256 is {sha256}, expected {expected}; the file was discarded"
        );
    }
    hdf5::read(tmp.path()).with_context(|| {
        format!(
            "the file downloaded from {url} is not a valid ann-benchmarks dataset; it was discarded"
        )
    })?;
    tmp.persist(dest)
        .with_context(|| format!("moving the download to {}", dest.display()))?;
    Ok(Fetched {
        bytes: done,
        sha256,
    })
}
