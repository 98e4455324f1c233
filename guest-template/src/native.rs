//! Fixed glue for the native engine: the same kernel compiled for the host's
//! CPU, driven by the host over standard input and output.
//!
//! One request per process, little-endian throughout:
//!
//! - build: `b'B'`, dim u32, metric u8, the parameters (count u32, then for
//!   each key and value a u32 length and UTF-8 bytes), the base vectors
//!   (count u64, then f32s). Answer: `0`, the saved index (length u64, bytes).
//! - search: `b'S'`, the saved index (length u64, bytes), dim u32, k u32 and
//!   ef u32. The kernel loads the index and answers [`READY`]; the host
//!   starts its clock and sends [`GO`] and the queries (count u64, then
//!   f32s), so no query exists in the process before the clock runs; the
//!   answer is `0`, then the ids (count u64, then u32s).
//!
//! A kernel-reported error answers `1`, a length u32 and the message. A
//! panic ends the process with its message on standard error.
//!
//! Answers go out on a copy of standard output made before any kernel code
//! runs; standard output itself then points at standard error, so whatever
//! the kernel prints is a diagnostic and never part of an answer.

use std::io::{self, BufReader, BufWriter, Read, Write};

use crate::kernel::Index;
use crate::sdk::{Kernel, Metric, Params};

/// Sent once the index is loaded.
pub const READY: u8 = b'R';
/// Sent by the host, its clock started: search now.
pub const GO: u8 = b'G';

fn u32_from(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn u64_from(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn bytes_from(r: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn string_from(r: &mut impl Read) -> io::Result<String> {
    let len = u32_from(r)? as usize;
    String::from_utf8(bytes_from(r, len)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn f32s_from(r: &mut impl Read) -> io::Result<Vec<f32>> {
    let n = u64_from(r)? as usize;
    let raw = bytes_from(r, n * 4)?;
    Ok(raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn failure(out: &mut impl Write, message: &str) -> io::Result<()> {
    out.write_all(&[1])?;
    out.write_all(&(message.len() as u32).to_le_bytes())?;
    out.write_all(message.as_bytes())
}

unsafe extern "C" {
    fn dup(fd: i32) -> i32;
    fn dup2(old: i32, new: i32) -> i32;
}

/// The answers' channel: a copy of standard output, which then points at
/// standard error, so that the kernel's prints cannot mix into answers.
fn answers() -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup and dup2 on the process's own standard descriptors; the
    // new descriptor is owned by the returned File alone.
    unsafe {
        let fd = dup(1);
        if fd < 0 || dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// Serves one request from standard input.
pub fn serve() -> io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 20, answers()?);
    let mut op = [0u8; 1];
    input.read_exact(&mut op)?;
    match op[0] {
        b'B' => {
            let dim = u32_from(&mut input)? as usize;
            let mut tag = [0u8; 1];
            input.read_exact(&mut tag)?;
            let metric = Metric::from_u8(tag[0]);
            let count = u32_from(&mut input)?;
            let mut pairs = Vec::new();
            for _ in 0..count {
                pairs.push((string_from(&mut input)?, string_from(&mut input)?));
            }
            let base = f32s_from(&mut input)?;
            let index = Index::build(&base, dim, metric, &Params::new(pairs));
            drop(base);
            let mut saved = Vec::new();
            index.save(&mut saved);
            out.write_all(&[0])?;
            out.write_all(&(saved.len() as u64).to_le_bytes())?;
            out.write_all(&saved)?;
        }
        b'S' => {
            let len = u64_from(&mut input)? as usize;
            let index = Index::load(&bytes_from(&mut input, len)?);
            let dim = u32_from(&mut input)? as usize;
            let k = u32_from(&mut input)? as usize;
            let ef = u32_from(&mut input)? as usize;
            out.write_all(&[READY])?;
            out.flush()?;
            let mut go = [0u8; 1];
            input.read_exact(&mut go)?;
            let queries = if go[0] == GO {
                f32s_from(&mut input)?
            } else {
                Vec::new()
            };
            if go[0] != GO {
                failure(&mut out, "the host did not say go")?;
            } else if dim == 0 || !queries.len().is_multiple_of(dim) {
                failure(&mut out, "query floats do not divide into rows of dim")?;
            } else {
                let mut ids = Vec::with_capacity(queries.len() / dim * k);
                match index.search_batch(&queries, dim, k, ef, &mut ids) {
                    Ok(()) => {
                        out.write_all(&[0])?;
                        out.write_all(&(ids.len() as u64).to_le_bytes())?;
                        for id in ids {
                            out.write_all(&id.to_le_bytes())?;
                        }
                    }
                    Err(message) => failure(&mut out, &message)?,
                }
            }
        }
        other => failure(&mut out, &format!("unknown request {other}"))?,
    }
    out.flush()
}
