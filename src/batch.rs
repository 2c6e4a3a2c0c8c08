//! Several URLs: `-j` transfers at once (the dispatcher's), a failure that does
//! not stop the others, outcomes handled as they finish, and the one-line
//! summary.

use crate::config::{Config, Job, Output, ProgressMode};
use crate::dispatch::{self, Transfers};
use crate::error::Error;
use crate::escape;
use crate::pool::Pool;
use crate::progress::{Bar, Progress};
use crate::report::Report;
use crate::transfer::{Ended, Pending, State};
use crate::{Facts, Outcome, Sinks};
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Runs every job of `config`, `config.parallel` at a time. `report` sees each
/// failure as it happens (the caller prints it). Returns the outcomes in input
/// order, or the first failure in input order (a hung-up stdout reader only
/// when nothing else failed).
pub fn run(
    config: &Config,
    sinks: Sinks<'_>,
    report: &mut (dyn FnMut(&Error) + Send),
) -> Result<Vec<Outcome>, Error> {
    let started = Instant::now();
    let single = config.jobs.len() == 1;
    let progress = if config.display.silent || config.display.verbose {
        match config.display.progress {
            ProgressMode::Always => Progress::new(ProgressMode::Always, sinks.stderr_is_terminal),
            _ => Progress::off(),
        }
    } else {
        Progress::new(config.display.progress, sinks.stderr_is_terminal)
    };
    // A body that goes to the terminal is its own progress.
    let bar_for = |job: &Job| {
        let to_terminal = job.output == Output::Stdout && sinks.stdout_is_terminal;
        if to_terminal && config.display.progress != ProgressMode::Always {
            Bar::hidden()
        } else {
            progress.bar(&label(job))
        }
    };

    let Sinks {
        stdout,
        stdout_is_terminal,
        stderr,
        stderr_is_terminal,
    } = sinks;
    let stdout = Mutex::new(stdout);
    let stderr = Mutex::new(stderr);
    let mut results: Vec<Option<Result<Outcome, Error>>> = Vec::new();
    results.resize_with(config.jobs.len(), || None);

    // Connections stay open between the transfers of a batch; a single URL
    // says `Connection: close` (DESIGN §5), and so may the user, for every URL
    // (RFC 9112 §9.6: then no second request).
    let parallel = config.parallel.clamp(1, config.jobs.len().max(1));
    let keep = !single && !asks_to_close(&config.headers);
    let finished = |i: usize, (mut result, facts): Ended| {
        if let Err(e) = &result {
            progress.suspend(|| report(e));
        }
        if let Some(write_out) = &config.write_out {
            let text = write_out.render(&report_of(&facts, &result));
            let text = if stdout_is_terminal {
                escape::for_terminal(text.as_bytes()).into_owned()
            } else {
                text.into_bytes()
            };
            let mut out = Shared(&stdout);
            let mut write = || out.write_all(&text).and_then(|()| out.flush());
            // Bars (on stderr) step aside only when stdout may be where they
            // are drawn: a terminal, or anything when --progress forces them
            // (`2>&1 | ...`). The finished ones are lines above them by now,
            // and stay.
            let shares_the_bars =
                stdout_is_terminal || config.display.progress == ProgressMode::Always;
            let written = if shares_the_bars {
                progress.suspend(write)
            } else {
                write()
            };
            // A closed stdout is the reader's choice, and the transfer's
            // result stands; any other failure (a full disk) lost the line
            // the script asked for: 23, unless the transfer failed already.
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
                && result.is_ok()
            {
                let e = crate::output::stdout_error(e);
                progress.suspend(|| report(&e));
                result = Err(e);
            }
        }
        results[i] = Some(result.map(|state| Outcome { facts, state }));
    };
    let batch = Batch {
        config,
        pool: Pool::for_batch(keep, parallel),
        stdout: &stdout,
        stdout_is_terminal,
        stderr: &stderr,
        stderr_is_terminal,
        single,
        bar_for: &bar_for,
        finished: Mutex::new(finished),
    };
    if parallel == 1 {
        for i in 0..config.jobs.len() {
            if let Some(pending) = batch.open(i) {
                batch.finish(i, pending);
            }
        }
    } else {
        dispatch::run(&batch, config.jobs.len(), parallel);
    }
    drop(batch);

    let results: Vec<Result<Outcome, Error>> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Usage("a transfer did not run".into()))))
        .collect();
    if !single && !config.display.silent {
        let stderr = stderr.into_inner().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(stderr, "fetch: {}", summary(&results, started.elapsed()));
    }
    // The first failure in input order decides, but a reader of stdout that
    // hung up (exit 0) is no failure: a later real one still counts.
    let mut failure: Option<Error> = None;
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                if failure
                    .as_ref()
                    .is_none_or(|first| first.exit_code() == 0 && e.exit_code() != 0)
                {
                    failure = Some(e);
                }
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// A batch's transfers as the dispatcher (or a plain loop, for `-j 1`) runs
/// them: each writes through the shared sinks and records its result.
struct Batch<'a, 'w, Finished> {
    config: &'a Config,
    pool: Pool,
    stdout: &'a Mutex<&'w mut (dyn Write + Send)>,
    stdout_is_terminal: bool,
    stderr: &'a Mutex<&'w mut (dyn Write + Send)>,
    stderr_is_terminal: bool,
    single: bool,
    bar_for: &'a (dyn Fn(&Job) -> Bar + Sync),
    finished: Mutex<Finished>,
}

impl<Finished> Batch<'_, '_, Finished>
where
    Finished: FnMut(usize, Ended) + Send,
{
    /// Runs `f` with the sinks of one transfer.
    fn with_sinks<R>(&self, f: impl FnOnce(&mut Sinks<'_>) -> R) -> R {
        let mut out = Shared(self.stdout);
        let mut err = Shared(self.stderr);
        f(&mut Sinks {
            stdout: &mut out,
            stdout_is_terminal: self.stdout_is_terminal,
            stderr: &mut err,
            stderr_is_terminal: self.stderr_is_terminal,
        })
    }

    fn record(&self, i: usize, ended: Ended) {
        (self.finished.lock().unwrap_or_else(|e| e.into_inner()))(i, ended);
    }
}

impl<'a, Finished> Transfers<'a> for Batch<'a, '_, Finished>
where
    Finished: FnMut(usize, Ended) + Send,
{
    fn open(&self, i: usize) -> Option<Pending<'a>> {
        let job = match &self.config.jobs[i] {
            Ok(job) => job,
            Err(bad) => {
                let facts = Facts {
                    url: bad.shown.clone(),
                    ..Facts::default()
                };
                self.record(i, (Err(bad.error()), facts));
                return None;
            }
        };
        let opened = self.with_sinks(|sinks| {
            Pending::open(self.config, job, sinks, (self.bar_for)(job), self.single)
        });
        opened.map_err(|ended| self.record(i, *ended)).ok()
    }

    fn send_ahead(&self, pending: &mut Pending<'a>) -> bool {
        self.with_sinks(|sinks| pending.send_ahead(sinks, &self.pool))
    }

    fn finish(&self, i: usize, pending: Pending<'a>) {
        let ended = self.with_sinks(|sinks| pending.finish(sinks, &self.pool));
        self.record(i, ended);
    }
}

/// What `-w` says about one transfer, failed ones included.
fn report_of(facts: &Facts, result: &Result<State, Error>) -> Report {
    let (exitcode, errormsg) = match result {
        Ok(_) => (0, None),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    };
    Report {
        http_code: facts.status,
        size_download: facts.bytes,
        time_total: facts.elapsed,
        url_effective: facts.url.clone(),
        filename_effective: facts.file.as_ref().map(|p| p.display().to_string()),
        num_redirects: facts.redirects,
        content_type: facts.content_type.clone(),
        exitcode,
        errormsg,
        digest_sha256: facts.digest_sha256.clone(),
    }
}

/// Whether the user's `-H Connection: ...` asks for `close`.
fn asks_to_close(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
    })
}

/// The bar's label: the file name, else the URL.
fn label(job: &Job) -> String {
    match &job.output {
        Output::File(path) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        Output::Stdout => job.url.display(),
    }
}

/// "3 URLs: 2 downloaded (1.5 MiB in 0.4 s), 1 up to date, 1 failed".
fn summary(results: &[Result<Outcome, Error>], elapsed: std::time::Duration) -> String {
    let mut downloaded = 0;
    let mut current = 0;
    let mut failed = 0;
    let mut stopped = 0;
    let mut bytes = 0;
    for r in results {
        match r {
            Ok(o) if o.state == State::Downloaded => {
                downloaded += 1;
                bytes += o.facts.bytes;
            }
            Ok(_) => current += 1,
            Err(e) if e.exit_code() == 0 => stopped += 1,
            Err(_) => failed += 1,
        }
    }
    let mut text = format!(
        "{} URLs: {downloaded} downloaded ({} in {:.1} s)",
        results.len(),
        human_bytes(bytes),
        elapsed.as_secs_f64()
    );
    if current > 0 {
        text.push_str(&format!(", {current} up to date"));
    }
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    if stopped > 0 {
        text.push_str(&format!(", {stopped} stopped (the reader of stdout left)"));
    }
    text
}

/// 1536 -> "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A writer shared by the threads of a batch: each call holds the lock, so
/// lines written with one `write_all` never interleave.
struct Shared<'m, 'w>(&'m Mutex<&'w mut (dyn Write + Send)>);

impl Write for Shared<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
