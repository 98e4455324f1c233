//! Running a fragile C library on untrusted input in a forked child process.
//!
//! libhdf5 can crash (not just fail) on a corrupt file, or loop forever, and
//! either would take anneval down with it. [`in_child`] forks; the child runs
//! the work and streams its answer through a pipe, the parent reads it. A
//! child that dies, by a signal or otherwise, or that outlives its deadline
//! (it is then killed) becomes an ordinary error.
//!
//! Forking a multi-threaded process is safe here because the child only
//! runs the work, writes to the pipe and `_exit`s: glibc's allocator is
//! fork-safe, and the caller holds the library's own global lock across the
//! fork (see `dataset::hdf5`), so no other thread can be inside it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Result, bail};

/// How the child's answer starts.
const OK: u8 = 0;
const FAILED: u8 = 1;

/// Runs `work` in a forked child, which writes its answer to the given
/// writer; `read` parses the answer in the parent. `fork` performs the fork
/// (so the caller can hold a lock across it) and returns its result. The
/// child is killed if it has not finished after `timeout`.
pub fn in_child<T>(
    timeout: Duration,
    fork: impl FnOnce() -> libc::pid_t,
    work: impl FnOnce(&mut dyn Write) -> Result<()>,
    read: impl FnOnce(&mut dyn Read) -> std::io::Result<T>,
) -> Result<T> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two valid descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("creating a pipe: {}", std::io::Error::last_os_error());
    }
    let pid = fork();
    if pid < 0 {
        // SAFETY: closing the descriptors pipe2 just created.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        bail!(
            "forking a reader process: {}",
            std::io::Error::last_os_error()
        );
    }
    if pid == 0 {
        // The child: let go of every descriptor it inherited but its pipe
        // (another thread's open files, and the locks on them, must not
        // live on in the child), do the work, report, and leave without
        // running any of the parent's destructors or exit handlers.
        close_inherited(fds[1]);
        // SAFETY: the write end belongs to this process alone from here.
        let pipe = unsafe { File::from_raw_fd(fds[1]) };
        let mut out = BufWriter::with_capacity(1 << 20, pipe);
        // The work should fail, if it fails, before it writes: the FAILED
        // marker and message are only understood as the first byte.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut marked = MarkOk {
                started: false,
                out: &mut out,
            };
            let result = work(&mut marked).map_err(|e| format!("{e:#}"));
            (result, marked.started)
        }));
        let code = match outcome {
            Ok((Ok(()), started)) => {
                let marked = if started {
                    Ok(())
                } else {
                    out.write_all(&[OK])
                };
                marked.and_then(|()| out.flush()).map_or(3, |()| 0)
            }
            Ok((Err(message), _)) => {
                let _ = out
                    .write_all(&[FAILED])
                    .and_then(|()| out.write_all(message.as_bytes()));
                let _ = out.flush();
                0
            }
            Err(_) => 4,
        };
        // SAFETY: _exit ends the child immediately, as a forked child must.
        unsafe { libc::_exit(code) }
    }
    // The parent.
    // SAFETY: closing our copy of the write end, so EOF arrives when the
    // child exits; the read end is ours.
    unsafe { libc::close(fds[1]) };
    let (done, deadline) = mpsc::channel::<()>();
    let expired = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let expired = expired.clone();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = deadline.recv_timeout(timeout) {
                expired.store(true, Ordering::SeqCst);
                // SAFETY: signalling our own child, which has not been reaped
                // (the parent reaps it only after this thread is joined).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    };
    let mut input = BufReader::with_capacity(1 << 20, unsafe { File::from_raw_fd(fds[0]) });
    let mut marker = [0u8; 1];
    let answer = match input.read_exact(&mut marker) {
        Ok(()) if marker[0] == OK => Some(read(&mut input).map_err(|e| e.to_string())),
        Ok(()) => {
            let mut message = String::new();
            let _ = input.read_to_string(&mut message);
            Some(Err(message))
        }
        Err(_) => None,
    };
    drop(input);
    let _ = done.send(());
    let _ = watchdog.join();
    let status = wait(pid);
    if expired.load(Ordering::SeqCst) {
        bail!(
            "the reader process did not finish within {} s and was stopped: the library loops on this input",
            timeout.as_secs()
        );
    }
    match (answer, status) {
        (Some(Ok(value)), Ok(0)) => Ok(value),
        (Some(Err(message)), _) if !message.is_empty() => bail!("{message}"),
        (_, Err(signal)) => bail!(
            "the reader process was killed by signal {signal}: the library crashed on this input"
        ),
        (_, Ok(code)) => bail!("the reader process failed (exit status {code})"),
    }
}

/// The child's writer: puts the OK marker before the first byte.
struct MarkOk<'a> {
    started: bool,
    out: &'a mut dyn Write,
}

impl Write for MarkOk<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.started {
            self.out.write_all(&[OK])?;
            self.started = true;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Closes every descriptor from 3 up but `keep`.
fn close_inherited(keep: i32) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range on descriptor ranges of this (child) process; none
    // of the closed descriptors is used by the child afterwards.
    unsafe {
        if keep > 3 {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                keep - 1,
                0 as libc::c_uint,
            );
        }
        libc::syscall(
            libc::SYS_close_range,
            keep + 1,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
}

/// Waits for `pid`: its exit code, or the signal that killed it.
fn wait(pid: libc::pid_t) -> Result<i32, i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Ok(-1);
        }
    }
    if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fork() -> libc::pid_t {
        // SAFETY: the child only runs the test's work and _exits.
        unsafe { libc::fork() }
    }

    fn read_string(r: &mut dyn Read) -> std::io::Result<String> {
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn answers_errors_crashes_and_hangs_come_back_cleanly() {
        let ok = in_child(SECOND, fork, |w| Ok(w.write_all(b"hello")?), read_string).unwrap();
        assert_eq!(ok, "hello");
        let err = in_child(SECOND, fork, |_| bail!("no such dataset"), read_string).unwrap_err();
        assert_eq!(err.to_string(), "no such dataset");
        let hang = in_child(
            Duration::from_millis(200),
            fork,
            |_| loop {
                std::hint::spin_loop();
            },
            read_string,
        );
        assert!(hang.unwrap_err().to_string().contains("did not finish"));
        let crash = in_child(
            SECOND,
            fork,
            |w| {
                w.write_all(b"partial")?;
                // SAFETY: deliberately killing the child, as a crash in a C
                // library would (SIGKILL, since the test harness catches SIGSEGV).
                unsafe { libc::raise(libc::SIGKILL) };
                Ok(())
            },
            read_string,
        );
        assert!(crash.unwrap_err().to_string().contains("signal 9"));
    }
}
