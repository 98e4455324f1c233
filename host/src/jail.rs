//! The OS sandbox for what runs outside wasmtime (the compiler, and native
//! kernels): bubblewrap with every namespace unshared (no network but an
//! unconnected loopback, own PID space, no host users), a cleared
//! environment, only `/usr` and explicitly bound paths visible, a private
//! `/tmp`, and resource limits set on the process before it starts.
//!
//! Everything a jailed process may see is listed by the caller with
//! [`Jail::ro`] and [`Jail::rw`] under neutral paths (`/toolchain`,
//! `/candidate`), so neither the host's paths nor its files (home, datasets,
//! ground truth, other candidates) are reachable or even named.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Resource limits applied with setrlimit before bubblewrap starts; the
/// jailed process inherits them.
#[derive(Clone, Copy, Debug)]
pub struct ResourceLimits {
    /// CPU seconds (SIGXCPU, then SIGKILL).
    pub cpu_seconds: u64,
    /// Virtual address space in bytes.
    pub address_space: u64,
    /// Largest file the process may write, in bytes.
    pub file_size: u64,
    /// Open file descriptors.
    pub open_files: u64,
}

/// A bubblewrap invocation being put together.
#[derive(Clone, Debug)]
pub struct Jail {
    binds: Vec<(bool, PathBuf, String)>,
    env: Vec<(String, String)>,
    chdir: String,
    limits: ResourceLimits,
    /// A compiled seccomp filter (classic BPF) installed before the jailed
    /// program starts.
    seccomp: Option<Vec<u8>>,
    /// Whether the host's `/usr` is visible (read-only).
    usr: bool,
    /// Symbolic links made inside: (target, where).
    links: Vec<(String, String)>,
}

impl Jail {
    pub fn new(limits: ResourceLimits) -> Jail {
        Jail {
            binds: Vec::new(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            chdir: "/".into(),
            limits,
            seccomp: None,
            usr: true,
            links: Vec::new(),
        }
    }

    /// Installs `filter` (classic BPF, as `seccomp_export_bpf` writes it)
    /// in the jailed program: system calls outside it are refused.
    pub fn seccomp(mut self, filter: Vec<u8>) -> Jail {
        self.seccomp = Some(filter);
        self
    }

    /// Leaves the host's `/usr` out: only what is bound explicitly exists
    /// (`/bin`, `/lib` and `/lib64` still point into `/usr`, so a bound
    /// `/usr/lib/...` serves the dynamic loader).
    pub fn without_usr(mut self) -> Jail {
        self.usr = false;
        self
    }

    /// Makes a symbolic link at `inside` pointing to `target`.
    pub fn symlink(mut self, target: &str, inside: &str) -> Jail {
        self.links.push((target.into(), inside.into()));
        self
    }

    /// Makes host `path` visible, read-only, at `inside`.
    pub fn ro(mut self, path: &Path, inside: &str) -> Jail {
        self.binds
            .push((false, path.to_path_buf(), inside.to_string()));
        self
    }

    /// Makes host `path` visible, writable, at `inside`.
    pub fn rw(mut self, path: &Path, inside: &str) -> Jail {
        self.binds
            .push((true, path.to_path_buf(), inside.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Jail {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn chdir(mut self, inside: &str) -> Jail {
        self.chdir = inside.into();
        self
    }

    /// The command that runs `program` (a path inside the jail) with `args`.
    pub fn command(&self, program: &str, args: &[String]) -> Command {
        let mut cmd = Command::new("bwrap");
        cmd.env_clear()
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
            ])
            .args(if self.usr {
                &["--ro-bind", "/usr", "/usr"][..]
            } else {
                &[]
            })
            .args(["--symlink", "usr/bin", "/bin"])
            .args(["--symlink", "usr/lib", "/lib"])
            .args(["--symlink", "usr/lib64", "/lib64"])
            .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        for (writable, path, inside) in &self.binds {
            cmd.arg(if *writable { "--bind" } else { "--ro-bind" })
                .arg(path)
                .arg(inside);
        }
        for (target, inside) in &self.links {
            cmd.args(["--symlink", target, inside]);
        }
        for (k, v) in &self.env {
            cmd.args(["--setenv", k, v]);
        }
        // The filter reaches bubblewrap through a pipe whose read end the
        // child inherits at the same descriptor number (the parent's copy is
        // close-on-exec; the child clears that flag on its own copy). The
        // read end lives in the closure, so it stays open until the command
        // is spawned and dropped.
        let filter_fd = match self.seccomp.as_ref().map(|filter| filter_pipe(filter)) {
            Some(Err(e)) => {
                // Without its filter the program must not run: make spawning fail.
                let message = format!("preparing the seccomp filter: {e}");
                return failing_command(&message);
            }
            Some(Ok(fd)) => Some(fd),
            None => None,
        };
        if let Some(fd) = &filter_fd {
            use std::os::fd::AsRawFd;
            cmd.args(["--seccomp", &fd.as_raw_fd().to_string()]);
        }
        cmd.args(["--setenv", "TMPDIR", "/tmp", "--chdir", &self.chdir, "--"])
            .arg(program)
            .args(args);
        let limits = self.limits;
        // SAFETY: the closure runs in the forked child before exec and calls
        // only close_range, fcntl and setrlimit, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // bubblewrap, and so the jailed program, gets its three
                // standard streams and the filter: nothing else this process
                // holds or inherited.
                crate::process::cloexec_inherited()?;
                if let Some(fd) = &filter_fd {
                    use std::os::fd::AsRawFd;
                    // Not dup2 onto a fixed number: when the pipe already had
                    // that number, dup2 would do nothing and leave the flag
                    // set, and bubblewrap would find the descriptor closed.
                    if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                set_limit(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                set_limit(libc::RLIMIT_AS, limits.address_space)?;
                set_limit(libc::RLIMIT_FSIZE, limits.file_size)?;
                set_limit(libc::RLIMIT_NOFILE, limits.open_files)?;
                set_limit(libc::RLIMIT_CORE, 0)?;
                Ok(())
            });
        }
        cmd
    }
}

/// A pipe holding `filter`, ready to be read from its returned end.
fn filter_pipe(filter: &[u8]) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (read, write) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    // A filter is a few hundred bytes: it fits in the pipe's buffer.
    let mut write = write;
    write.write_all(filter)?;
    drop(write);
    Ok(read)
}

/// A command that fails to start, with `message` (a program that cannot
/// exist), so a jail that cannot be set up never runs unconfined.
fn failing_command(message: &str) -> Command {
    Command::new(format!("/nonexistent/anneval-jail-error: {message}"))
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit with a valid resource and a pointer to a live rlimit.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Checks that bubblewrap is installed and can create its namespaces here.
pub fn check_available() -> Result<()> {
    let jail = Jail::new(ResourceLimits {
        cpu_seconds: 10,
        address_space: 1 << 30,
        file_size: 1 << 20,
        open_files: 64,
    });
    let out = jail.command("/usr/bin/true", &[]).output().context(
        "running bwrap: install bubblewrap (`sudo apt-get install bubblewrap`; scripts/setup does)",
    )?;
    if !out.status.success() {
        bail!(
            "bubblewrap cannot create its sandbox on this machine (are user namespaces disabled?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ResourceLimits {
        ResourceLimits {
            cpu_seconds: 10,
            address_space: 1 << 30,
            file_size: 1 << 20,
            open_files: 64,
        }
    }

    #[test]
    fn only_bound_paths_are_visible_and_the_network_is_gone() {
        check_available().unwrap();
        let visible = tempfile::tempdir().unwrap();
        std::fs::write(visible.path().join("seen"), "yes").unwrap();
        let jail = Jail::new(limits()).ro(visible.path(), "/input");
        let script = "cat /input/seen; \
                      test -e /root && echo HOME-VISIBLE; \
                      test -e /etc/passwd && echo ETC-VISIBLE; \
                      ls /sys/class/net 2>/dev/null | grep -v '^lo$' && echo NETWORK; \
                      echo $HOME$USER; true";
        let out = jail
            .command("/bin/sh", &["-c".into(), script.into()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.trim(),
            "yes",
            "only the bound file is visible: {stdout}"
        );
    }

    #[test]
    fn read_only_binds_cannot_be_written_and_files_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let jail = Jail::new(limits())
            .ro(dir.path(), "/ro")
            .rw(dir.path(), "/rw");
        let out = jail
            .command(
                "/bin/sh",
                &["-c".into(), "echo x > /ro/f || echo REFUSED; head -c 2000000 /dev/zero > /rw/big; wc -c < /rw/big".into()],
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("REFUSED"), "{stdout}");
        assert!(
            stdout.trim().ends_with("1048576"),
            "file size capped at 1 MiB: {stdout}"
        );
    }

    /// A filter refusing `mkdir` and `mkdirat`, and nothing else.
    fn no_mkdir_filter() -> Vec<u8> {
        use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
        let rules = [libc::SYS_mkdir, libc::SYS_mkdirat]
            .iter()
            .map(|&sys| (sys, vec![]))
            .collect();
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            TargetArch::x86_64,
        )
        .unwrap();
        let program: BpfProgram = filter.try_into().unwrap();
        program
            .iter()
            .flat_map(|ins| {
                let mut b = ins.code.to_le_bytes().to_vec();
                b.extend([ins.jt, ins.jf]);
                b.extend(ins.k.to_le_bytes());
                b
            })
            .collect()
    }

    /// The filter reaches bubblewrap whatever descriptor number its pipe
    /// gets: the lowest free descriptor is moved from where it is to past
    /// 16 (a filter handed over by `dup2` onto a fixed number was lost when
    /// the pipe already had that number).
    #[test]
    fn the_filter_is_installed_whatever_descriptor_its_pipe_gets() {
        check_available().unwrap();
        let jail = Jail::new(limits()).seccomp(no_mkdir_filter());
        let mut held = Vec::new();
        let mut seen = Vec::new();
        loop {
            let probe = std::fs::File::open("/dev/null").unwrap();
            let next = {
                use std::os::fd::AsRawFd;
                probe.as_raw_fd()
            };
            drop(probe);
            seen.push(next);
            let out = jail
                .command(
                    "/bin/sh",
                    &[
                        "-c".into(),
                        "mkdir /tmp/d 2>/dev/null && echo MADE || echo REFUSED".into(),
                    ],
                )
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pipe near descriptor {next}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "REFUSED");
            if next > 16 {
                break;
            }
            held.push(std::fs::File::open("/dev/null").unwrap());
        }
        assert!(seen.len() > 1, "descriptors tried: {seen:?}");
    }
}
