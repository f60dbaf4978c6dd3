//! Progress of long commands on stderr: an indicatif bar with rate and ETA on a terminal,
//! one plain line every few seconds otherwise (logs, CI, `| tee`).

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Progress as Mode;

/// How often the plain mode prints a line.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// A progress display.
pub enum Progress {
    /// The bar.
    Bar(ProgressBar),
    /// Lines.
    Lines {
        what: &'static str,
        total: u64,
        done: u64,
        start: Instant,
        last: Instant,
    },
    /// Nothing.
    Quiet,
}

impl Progress {
    /// A display for `total` items of `what`, in the asked mode (`auto`: a bar when stderr is
    /// a terminal).
    pub fn new(mode: Mode, what: &'static str, total: u64) -> Self {
        let mode = match mode {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Bar,
            Mode::Auto => Mode::Lines,
            other => other,
        };
        match mode {
            Mode::Bar => {
                // Drawn even when stderr is not a terminal, when asked for explicitly.
                let target = if std::io::stderr().is_terminal() {
                    ProgressDrawTarget::stderr_with_hz(10)
                } else {
                    ProgressDrawTarget::term_like_with_hz(Box::new(StderrTerm), 10)
                };
                let bar = ProgressBar::with_draw_target(Some(total), target);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(what);
                Progress::Bar(bar)
            }
            Mode::Lines => {
                let now = Instant::now();
                Progress::Lines {
                    what,
                    total,
                    done: 0,
                    start: now,
                    last: now,
                }
            }
            Mode::None | Mode::Auto => Progress::Quiet,
        }
    }

    /// `n` more items done. The total grows to what is done when more came than it said (sessions
    /// created after it was counted).
    pub fn advance(&mut self, n: u64) {
        match self {
            Progress::Bar(bar) => {
                let done = bar.position() + n;
                if bar.length().is_some_and(|total| done > total) {
                    bar.set_length(done);
                }
                bar.inc(n);
            }
            Progress::Lines {
                what,
                total,
                done,
                start,
                last,
            } => {
                *done += n;
                *total = (*total).max(*done);
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    err!("{}", line(what, *done, *total, start.elapsed()));
                }
            }
            Progress::Quiet => {}
        }
    }

    /// The last line (lines mode) or the finished bar.
    pub fn finish(self) {
        match self {
            Progress::Bar(bar) => {
                bar.finish();
                // The finished bar stays; what follows starts on its own line.
                err!("");
            }
            Progress::Lines {
                what,
                total,
                done,
                start,
                ..
            } => err!("{}", line(what, done, total, start.elapsed())),
            Progress::Quiet => {}
        }
    }
}

fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let eta = if rate > 0.0 {
        format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
    } else {
        "unknown".into()
    };
    format!("{what}: {done}/{total} ({percent:.0}%), {rate:.0}/s, ETA {eta}")
}

/// stderr as indicatif's terminal, whether or not it is one (for `--progress bar`).
#[derive(Debug)]
struct StderrTerm;

impl indicatif::TermLike for StderrTerm {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.write_str(&format!("\x1b[{n}A"))
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.write_str(&format!("\x1b[{n}B"))
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.write_str(&format!("\x1b[{n}C"))
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.write_str(&format!("\x1b[{n}D"))
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().write_all(s.as_bytes())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.write_str("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}
