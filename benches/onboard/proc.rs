//! Running a program and timing it from the outside: wall time from spawn to reaping, and the
//! peak resident set size the kernel reports for it (`wait4`'s `ru_maxrss`, what
//! `/usr/bin/time -v` shows as "Maximum resident set size").

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Ran {
    pub command: String,
    pub wall: Duration,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub max_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0
    }

    /// Panics with everything the program said unless it exited 0: a failed run is no figure.
    pub fn ok(self) -> Ran {
        assert_eq!(
            self.code,
            Some(0),
            "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The `--timings` table kubectl-onboard prints on stderr: (phase, ms), in order.
    pub fn timings(&self) -> Vec<(String, f64)> {
        let mut lines = self.stderr.lines().skip_while(|l| *l != "timings:");
        lines.next();
        lines
            .map_while(|l| {
                let l = l.strip_prefix("  ")?.strip_suffix(" ms")?;
                let (phase, ms) = l.trim_end().rsplit_once(' ')?;
                Some((phase.trim().to_string(), ms.parse().ok()?))
            })
            .collect()
    }
}

/// Runs `cmd` with stdout and stderr in files under `dir` (no pipe to drain), stdin empty.
pub fn run(mut cmd: Command, dir: &Path) -> Ran {
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let out = File::create(&out_path).expect("create stdout file");
    let err = File::create(&err_path).expect("create stderr file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let command = describe(&cmd);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child; pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    let wall = started.elapsed();
    // Reaped above; dropping the handle neither waits nor kills.
    drop(child);
    Ran {
        command,
        wall,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        max_rss_kib: usage.ru_maxrss as u64,
        stdout: fs::read_to_string(out_path).unwrap_or_default(),
        stderr: fs::read_to_string(err_path).unwrap_or_default(),
    }
}

/// Runs a short helper command and returns its stdout; "" when it cannot run.
pub fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}
