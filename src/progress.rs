//! Progress of long work (`driftd backtest`, `driftd generate`): on a terminal an indicatif
//! bar with rows/s and ETA; otherwise (CI logs, pipes) one plain line per update, at most one a
//! second and always the last. The work calls [`report`], which does nothing unless the CLI
//! installed a reporter on the current thread ([`with_terminal_reporter`]), so library code,
//! tests and the daemon stay silent.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

thread_local! {
    static REPORTER: RefCell<Option<Reporter>> = const { RefCell::new(None) };
}

/// `done` of `total` rows of the current pass are finished. A `done` smaller than the last one
/// starts a new pass (`backtest --compare` replays the history three times).
pub fn report(done: usize, total: usize) {
    REPORTER.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut() {
            r.update(done as u64, total as u64);
        }
    });
}

/// Runs `f` with progress reported on stderr as `label`: a bar when stderr is a terminal,
/// lines otherwise.
pub fn with_terminal_reporter<R>(label: &str, f: impl FnOnce() -> R) -> R {
    let mode = if std::io::stderr().is_terminal() {
        Mode::Bar(None)
    } else {
        Mode::Lines {
            every: Duration::from_secs(1),
            last: None,
        }
    };
    REPORTER.with(|r| *r.borrow_mut() = Some(Reporter::new(label, mode)));
    let out = f();
    if let Some(mut r) = REPORTER.with(|r| r.borrow_mut().take()) {
        r.finish();
    }
    out
}

enum Mode {
    Bar(Option<ProgressBar>),
    Lines {
        every: Duration,
        last: Option<Instant>,
    },
}

struct Reporter {
    label: String,
    mode: Mode,
    started: Instant,
    done: u64,
    total: u64,
}

impl Reporter {
    fn new(label: &str, mode: Mode) -> Self {
        Reporter {
            label: label.to_string(),
            mode,
            started: Instant::now(),
            done: 0,
            total: 0,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if done < self.done || total != self.total {
            // The first pass started with the reporter (its first rows may arrive at once,
            // after the input was read); a later pass starts now.
            let first = self.total == 0;
            self.finish();
            if !first {
                self.started = Instant::now();
            }
        }
        (self.done, self.total) = (done, total);
        match &mut self.mode {
            Mode::Bar(bar) => {
                let bar = bar.get_or_insert_with(|| new_bar(&self.label, total));
                bar.set_position(done);
            }
            Mode::Lines { every, last } => {
                // The first line too waits a period: a rate over a few microseconds is noise.
                let due = last.unwrap_or(self.started).elapsed() >= *every;
                if due && done < total {
                    *last = Some(Instant::now());
                    let line = progress_line(&self.label, done, total, self.started.elapsed());
                    eprintln!("{line}");
                }
            }
        }
    }

    /// Ends the current pass: clears the bar, or prints its last line.
    fn finish(&mut self) {
        match &mut self.mode {
            Mode::Bar(bar) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Mode::Lines { last, .. } => {
                if last.is_some() || self.done > 0 {
                    let elapsed = self.started.elapsed();
                    eprintln!(
                        "{}",
                        progress_line(&self.label, self.done, self.total, elapsed)
                    );
                }
                *last = None;
            }
        }
        (self.done, self.total) = (0, 0);
    }
}

fn new_bar(label: &str, total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:20}] {human_pos}/{human_len} rows, {rate} rows/s, ETA {eta}",
    )
    .expect("a valid template")
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}", state.per_sec());
        },
    )
    .progress_chars("=> ");
    let bar = ProgressBar::new(total).with_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// `backtest: 4000/10000 rows (40%), 2000 rows/s, ETA 3 s`.
pub fn progress_line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let pct = (100 * done).checked_div(total).unwrap_or(100);
    let eta = if rate > 0.0 {
        format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
    } else {
        "?".into()
    };
    format!("{label}: {done}/{total} rows ({pct}%), {rate:.0} rows/s, ETA {eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_rows_rate_and_eta() {
        let l = progress_line("backtest", 4_000, 10_000, Duration::from_secs(2));
        assert_eq!(l, "backtest: 4000/10000 rows (40%), 2000 rows/s, ETA 3 s");
        let l = progress_line("generate", 0, 10, Duration::ZERO);
        assert_eq!(l, "generate: 0/10 rows (0%), 0 rows/s, ETA ?");
    }

    #[test]
    fn report_without_a_reporter_does_nothing_and_passes_restart() {
        report(5, 10); // no reporter installed: silent
        let mut r = Reporter::new(
            "t",
            Mode::Lines {
                every: Duration::from_secs(3600),
                last: None,
            },
        );
        r.update(10, 100);
        r.update(50, 100);
        assert_eq!((r.done, r.total), (50, 100));
        // Not a period since the start: no line yet, so no rate over microseconds.
        assert!(matches!(r.mode, Mode::Lines { last: None, .. }));
        r.update(5, 100); // a new pass
        assert_eq!((r.done, r.total), (5, 100));
    }
}
