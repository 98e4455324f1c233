//! Running a child process under a wall-clock deadline with bounded output:
//! the child gets its own process group, and at the deadline the whole group
//! is killed, so nothing it started outlives it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

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
