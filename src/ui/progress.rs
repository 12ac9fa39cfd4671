//! Progress on stderr: one line per step; while waiting, a spinner on a terminal and one line
//! per state change elsewhere. `-q` silences all of it. Results go to stdout, not here.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::terminal::printable;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub struct Progress {
    quiet: bool,
    verbose: bool,
    /// With --timings: each phase and how long it took, in order.
    timings: Option<Vec<(&'static str, Duration)>>,
    started: Instant,
    tty: bool,
    /// The waiting state currently shown, and since when.
    state: Option<(String, Instant)>,
    frame: usize,
    /// `captured()`: the warnings, kept for the caller instead of printed.
    captured: Option<Vec<String>>,
}

impl Progress {
    pub fn new(quiet: bool, verbose: bool, timings: bool) -> Self {
        Progress {
            quiet,
            verbose: verbose && !quiet,
            timings: timings.then(Vec::new),
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            state: None,
            frame: 0,
            captured: None,
        }
    }

    /// Prints nothing and keeps the warnings for `take_warnings`: for work that runs next to
    /// other work (batch), whose owner reports it.
    pub fn captured() -> Self {
        Progress {
            captured: Some(Vec::new()),
            ..Progress::new(true, false, false)
        }
    }

    /// The warnings kept so far (`captured()` only).
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.captured
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A step that is done.
    pub fn step(&mut self, message: &str) {
        self.line(message);
    }

    /// With -v: what the command looks at and decides. Never key material.
    pub fn detail(&mut self, message: &str) {
        if self.verbose {
            self.clear();
            eprintln!("  {}", printable(message));
        }
    }

    /// Records that `phase` took from `since` until now (shown with --timings).
    pub fn phase(&mut self, phase: &'static str, since: Instant) {
        let took = since.elapsed();
        if let Some(t) = &mut self.timings {
            t.push((phase, took));
        }
        self.detail(&format!("{phase}: {:.1} ms", took.as_secs_f64() * 1000.0));
    }

    /// The --timings table, on stderr.
    pub fn print_timings(&mut self) {
        let Some(timings) = &self.timings else {
            return;
        };
        let mut table = String::from("timings:\n");
        for (phase, took) in timings {
            table += &format!("  {phase:<22} {:>9.1} ms\n", took.as_secs_f64() * 1000.0);
        }
        table += &format!(
            "  {:<22} {:>9.1} ms",
            "total",
            self.started.elapsed().as_secs_f64() * 1000.0
        );
        eprintln!("{table}");
    }

    /// Something the user should know but that does not stop the command.
    pub fn warn(&mut self, message: &str) {
        if let Some(kept) = &mut self.captured {
            kept.push(message.to_string());
            return;
        }
        // Warnings show even with -q.
        self.clear();
        eprintln!("warning: {}", printable(message));
    }

    /// The waiting state; shown again only when it changes (or animated on a terminal).
    pub fn waiting(&mut self, message: &str) {
        if self.quiet {
            return;
        }
        let changed = self.state.as_ref().is_none_or(|(m, _)| m != message);
        if changed {
            if !self.tty {
                eprintln!("{}", printable(message));
            }
            self.state = Some((message.to_string(), Instant::now()));
        }
        self.tick();
    }

    /// Redraws the spinner; call it a few times a second while waiting.
    pub fn tick(&mut self) {
        if self.quiet || !self.tty {
            return;
        }
        if let Some((message, since)) = &self.state {
            let frame = FRAMES[self.frame % FRAMES.len()];
            self.frame += 1;
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{frame} {message} ({})",
                elapsed(since.elapsed())
            );
            let _ = err.flush();
        }
    }

    fn line(&mut self, message: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        eprintln!("{}", printable(message));
    }

    /// Ends the spinner line so that the next output starts clean.
    pub fn clear(&mut self) {
        if self.state.take().is_some() && self.tty && !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_naturally() {
        assert_eq!(elapsed(Duration::from_secs(7)), "7s");
        assert_eq!(elapsed(Duration::from_secs(125)), "2m05s");
    }
}
