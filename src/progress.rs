//! The progress bar on stderr (indicatif): bytes, total, rate and ETA, or a
//! spinner and a byte count when the length is unknown; one bar per transfer.

use crate::config::ProgressMode;
use indicatif::{
    BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike,
};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Redraws per second, at most.
const REFRESH_HZ: u8 = 10;

/// Where the bars of one run are drawn; hands out one [`Bar`] per transfer.
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// No bars at all.
    pub fn off() -> Progress {
        Progress { multi: None }
    }

    /// Bars as `mode` asks. `Auto` draws only on a terminal stderr (and the
    /// caller drops bars for bodies that go to the terminal themselves), so a
    /// log of a CI job gets not a single byte of them.
    pub fn new(mode: ProgressMode, stderr_is_terminal: bool) -> Progress {
        if let (ProgressMode::Never, _) | (ProgressMode::Auto, false) = (mode, stderr_is_terminal) {
            return Progress::off();
        }
        let term = StderrTerm::new(stderr_is_terminal);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term), REFRESH_HZ);
        Progress {
            multi: Some(MultiProgress::with_draw_target(target)),
        }
    }

    /// A bar for one transfer, labelled `label`; hidden when bars are off.
    /// Nothing is drawn until the body starts, so a head printed before it
    /// never meets a half-drawn bar.
    pub fn bar(&self, label: &str) -> Bar {
        Bar(self.multi.as_ref().map(|multi| {
            Arc::new(Slot {
                multi: multi.clone(),
                label: label.to_owned(),
                bar: OnceLock::new(),
                body: Mutex::new(None),
            })
        }))
    }

    /// Runs `print` (an error line, say) with the bars out of its way.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(multi) => multi.suspend(print),
            None => print(),
        }
    }
}

/// One transfer's bar (or nothing).
#[derive(Clone)]
pub struct Bar(Option<Arc<Slot>>);

/// Where a transfer's bar goes, and the bar once the body has started.
struct Slot {
    multi: MultiProgress,
    label: String,
    bar: OnceLock<ProgressBar>,
    /// When the body (last) started, and the bytes already there then: what
    /// the finished line's time and rate count from.
    body: Mutex<Option<(Instant, u64)>>,
}

impl Bar {
    pub fn hidden() -> Bar {
        Bar(None)
    }

    fn drawn(&self) -> Option<&ProgressBar> {
        self.0.as_ref().and_then(|slot| slot.bar.get())
    }

    /// The body starts: `total` bytes when the length is known, of which
    /// `done` are already there (a resumed download).
    pub fn start(&self, total: Option<u64>, done: u64) {
        let Some(slot) = &self.0 else { return };
        let style = match total {
            Some(_) => bytes(),
            None => spinner(),
        };
        // Styled before it is added, so its first frame is its own.
        let bar = slot.bar.get_or_init(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
                .with_style(style.clone())
                .with_message(slot.label.clone());
            slot.multi.add(bar)
        });
        // A body that starts again (a retry) may have another length.
        match total {
            Some(total) => bar.set_length(total),
            None => bar.unset_length(),
        }
        bar.set_style(style);
        bar.set_position(done);
        bar.reset_eta();
        *slot.body.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), done));
    }

    pub fn add(&self, bytes: u64) {
        if let Some(bar) = self.drawn() {
            bar.inc(bytes);
        }
    }

    /// A body that starts over.
    pub fn restart(&self) {
        if let (Some(slot), Some(bar)) = (&self.0, self.drawn()) {
            bar.set_position(0);
            *slot.body.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), 0));
        }
    }

    /// Leaves the completed transfer on screen: its bar becomes a line of its
    /// own, ended, above the bars still running. (A finished bar left among
    /// them would be wiped by the next line printed above them, an error say:
    /// indicatif forgets the lines of bars that are gone.)
    pub fn finish(&self) {
        if let (Some(slot), Some(bar)) = (&self.0, self.drawn()) {
            let (since, from) = slot
                .body
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or((Instant::now(), 0));
            let done = bar.position();
            let line = finished_line(
                &slot.label,
                done,
                bar.length(),
                done.saturating_sub(from),
                since.elapsed(),
            );
            bar.finish_and_clear();
            slot.multi.suspend(|| {
                let _ = writeln!(io::stderr(), "{line}");
            });
        }
    }

    /// Takes the bar off the screen: the error line says what happened.
    pub fn clear(&self) {
        if let Some(bar) = self.drawn() {
            bar.finish_and_clear();
        }
    }
}

/// What stays of a finished bar: label, bytes (of total), and the time and
/// rate of the `received` bytes of this run (a resumed body had the rest).
fn finished_line(
    label: &str,
    done: u64,
    total: Option<u64>,
    received: u64,
    elapsed: Duration,
) -> String {
    let label: String = label.chars().take(LABEL_WIDTH).collect();
    let secs = elapsed.as_secs_f64();
    let rate = match secs > 0.0 {
        true => format!(" ({}/s)", BinaryBytes((received as f64 / secs) as u64)),
        false => String::new(),
    };
    let bytes = match total {
        Some(total) => format!("{}/{}", BinaryBytes(done), BinaryBytes(total)),
        None => BinaryBytes(done).to_string(),
    };
    format!("{label:LABEL_WIDTH$} {bytes} in {secs:.2} s{rate}")
}

/// Columns of a bar's label (the file name), as the templates below have it.
const LABEL_WIDTH: usize = 20;

/// Label, bar, bytes of total, rate and ETA: for a known length. The bar takes
/// what the terminal's width leaves, so the line never wraps (a wrapped line
/// breaks every redraw).
fn bytes() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:20!} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Label, spinner, bytes so far and rate: for an unknown length.
fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{msg:20!} {spinner} {binary_bytes} {binary_bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A reader that moves a bar by the bytes read through it (the bytes on the
/// wire, before any content decoding, so they match the Content-Length).
pub struct Meter<R> {
    inner: R,
    bar: Bar,
}

impl<R> Meter<R> {
    pub fn new(inner: R, bar: Bar) -> Meter<R> {
        Meter { inner, bar }
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }
}

/// Where the bars are drawn: stderr, through one buffer written out whole at
/// each flush (so a frame reaches the terminal in one write, not flickering
/// piece by piece). On a terminal, cursor movement is ANSI and the width is
/// the terminal's; otherwise (`--progress` on a pipe or a log) each frame is a
/// plain line of text starting with a carriage return, no cursor movement.
///
/// Write errors (a terminal that went away, a reader of stderr that left) are
/// ignored: indicatif panics on some of them, and a progress bar must never
/// fail a download.
#[derive(Debug)]
struct StderrTerm {
    terminal: bool,
    pending: Mutex<Vec<u8>>,
}

/// The size bars get on a stderr that is not a terminal, or whose size is
/// not known.
const PLAIN_WIDTH: u16 = 80;
const PLAIN_HEIGHT: u16 = 24;

impl StderrTerm {
    fn new(terminal: bool) -> StderrTerm {
        StderrTerm {
            terminal,
            pending: Mutex::new(Vec::new()),
        }
    }

    fn put(&self, text: impl std::fmt::Display) -> io::Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write!(pending, "{text}");
        Ok(())
    }

    /// An ANSI cursor movement of `n` cells (none for 0: `ESC[0A` moves one).
    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        match self.terminal && n > 0 {
            true => self.put(format_args!("\x1b[{n}{direction}")),
            false => Ok(()),
        }
    }

    /// The terminal's (columns, rows), when stderr is one and says so.
    fn size(&self) -> Option<(u16, u16)> {
        match self.terminal {
            true => console::Term::stderr()
                .size_checked()
                .map(|(rows, cols)| (cols, rows)),
            false => None,
        }
    }
}

impl TermLike for StderrTerm {
    fn width(&self) -> u16 {
        self.size().map_or(PLAIN_WIDTH, |size| size.0)
    }

    fn height(&self) -> u16 {
        self.size().map_or(PLAIN_HEIGHT, |size| size.1)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(format_args!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }

    /// Back to the start of the line, over what was there: a line written
    /// next may be shorter than the frame before it.
    fn clear_line(&self) -> io::Result<()> {
        match self.terminal {
            true => self.put("\r\x1b[2K"),
            false => self.put(format_args!("\r{:w$}\r", "", w = usize::from(PLAIN_WIDTH))),
        }
    }

    fn flush(&self) -> io::Result<()> {
        let frame = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(&frame);
        let _ = stderr.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_line_counts_the_rate_of_this_run_only() {
        let half = Duration::from_millis(500);
        // A resumed body: 1,000 bytes of 10,000,000 arrived in 0.5 s.
        let line = finished_line("big.iso", 10_000_000, Some(10_000_000), 1_000, half);
        assert_eq!(
            line,
            "big.iso              9.54 MiB/9.54 MiB in 0.50 s (1.95 KiB/s)"
        );
        let line = finished_line("a-very-long-file-name.tar.gz", 2048, None, 2048, half);
        assert_eq!(line, "a-very-long-file-nam 2.00 KiB in 0.50 s (4.00 KiB/s)");
        let line = finished_line("empty", 0, Some(0), 0, Duration::ZERO);
        assert_eq!(line, "empty                0 B/0 B in 0.00 s");
    }
}
