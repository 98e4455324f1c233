//! Running a child process under a wall-clock deadline with bounded output:
//! the child gets its own process group, and at the deadline the whole group
//! is killed, so nothing it started outlives it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Marks every descriptor from 3 up close-on-exec, so that no program
/// started after it inherits a descriptor it was not handed on purpose (a
/// file the caller of anneval left open, say, which a jailed compiler could
/// otherwise read through `/proc/self/fd`). One system call, async-signal-
/// safe: callable in a `pre_exec` hook, where it covers only that child, or
/// at the start of the process, where it covers every child.
pub fn cloexec_inherited() -> std::io::Result<()> {
    /// `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
    const CLOEXEC: libc::c_uint = 4;
    // SAFETY: close_range only changes flags of this process's descriptors.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOEXEC,
        )
    };
    if marked == 0 {
        return Ok(());
    }
    // Older kernels: every descriptor below the limit, one by one.
    // SAFETY: getrlimit fills the struct; fcntl on a closed descriptor only
    // fails with EBADF.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as libc::c_int
        } else {
            1024
        };
        for fd in 3..top {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// What a bounded run produced.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The first `max_output` bytes of standard output.
    pub stdout: Vec<u8>,
    /// The first `max_output` bytes of standard error.
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at `max_output`.
    pub truncated: bool,
    /// Whether the deadline passed and the process group was killed.
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// Runs `cmd` to completion or until `timeout`, keeping at most `max_output`
/// bytes of each output stream (the rest is read and dropped, so the child
/// never blocks on a full pipe). Standard input is closed.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, max_output: usize) -> Result<Finished> {
    let start = Instant::now();
    // SAFETY: the hook makes one async-signal-safe system call.
    unsafe { cmd.pre_exec(cloexec_inherited) };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pgid = child.id() as libc::pid_t;
    let out = child.stdout.take().map(|s| drain(s, max_output));
    let err = child.stderr.take().map(|s| drain(s, max_output));

    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for child process")? {
            break status;
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            kill_group(pgid);
            break child.wait().context("reaping killed child process")?;
        }
        thread::sleep(Duration::from_millis(5));
    };
    // Anything the child left running in its group goes too, so the pipes
    // close and the readers finish.
    kill_group(pgid);
    let (stdout, t1) = out.map(join).unwrap_or_default();
    let (stderr, t2) = err.map(join).unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
        truncated: t1 || t2,
        timed_out,
        elapsed: start.elapsed(),
    })
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no
    // memory-safety preconditions. Failure (the group is gone) is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

type Drain = thread::JoinHandle<(Vec<u8>, bool)>;

fn drain(mut stream: impl Read + Send + 'static, max: usize) -> Drain {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = max.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
            }
        }
        (kept, truncated)
    })
}

fn join(handle: Drain) -> (Vec<u8>, bool) {
    handle.join().unwrap_or_default()
}

/// Cuts `text` to at most `max` bytes on a character boundary, saying so.
pub fn truncate_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[... {} more bytes cut]",
        &text[..end],
        text.len() - end
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_and_status_kept() {
        let done = run_bounded(
            Command::new("sh").args(["-c", "yes | head -c 100000; echo oops >&2; exit 3"]),
            Duration::from_secs(10),
            1000,
        )
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout.len(), 1000);
        assert!(done.truncated);
        assert_eq!(done.stderr, b"oops\n");
        assert!(!done.timed_out);
    }

    #[test]
    fn deadline_kills_the_whole_group() {
        let start = Instant::now();
        // The background sleep would hold the pipe open for a minute if only
        // the shell were killed.
        let done = run_bounded(
            Command::new("sh").args(["-c", "sleep 60 & sleep 60"]),
            Duration::from_millis(300),
            1000,
        )
        .unwrap();
        assert!(done.timed_out);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let cut = truncate_text("ééé", 3);
        assert!(cut.starts_with('é') && cut.contains("more bytes cut"));
        assert_eq!(truncate_text("short", 10), "short");
    }
}
