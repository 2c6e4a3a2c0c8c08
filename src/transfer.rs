//! One URL end to end: open the output, connect (directly, through a proxy, over
//! TLS), send the request, read the head, follow redirects, retry transient
//! failures (continuing with a range request when the server allows it), and pour
//! the body into the sink, which becomes FILE only when all is well.

use crate::body::{self, Body, BodyKind};
use crate::config::{Config, Job, Method, Output};
use crate::digest::{self, Algorithm, Hashes, Hashing, ServerDigest};
use crate::error::{Error, is_transient_status};
use crate::escape;
use crate::output::{Resume, Sink, stdout_error};
use crate::pool::{self, Pool, Route};
use crate::progress::{Bar, Meter};
use crate::proxy;
use crate::range;
use crate::redirect;
use crate::request::Request;
use crate::response::{self, Head, read_response_head};
use crate::tls;
use crate::trace::Trace;
use crate::transport::{self, Limits, Stream, seconds};
use crate::url::{Scheme, Target};
use crate::zerocopy;
use crate::{Facts, Sinks};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Size of the one buffer a body streams through, and of the connection's read
/// buffer, in bytes. Chosen by measurement: see BENCHMARKS.md.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// Longest wait before a retry, whatever the backoff or Retry-After says (curl's cap).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);

/// How a transfer ended, and what is known of it either way (for `-w`).
pub type Ended = (Result<State, Error>, Facts);

/// A transfer whose output is open, between its start and its end. A batch
/// may send its first request ahead (on a kept connection), wait for the
/// answer with others, and finish it on whichever thread is free.
pub struct Pending<'a> {
    transfer: Transfer<'a>,
    sink: Sink,
    guard_binary: bool,
    head_shown: bool,
}

impl<'a> Pending<'a> {
    /// Starts the transfer of `job`: checks whether `-C` has anything to do and
    /// opens the output. What ended it here (nothing to do, a bad output
    /// path) comes back as the transfer's result; errors say which URL failed.
    /// `show_head` is false in batches (no heads, DESIGN §2); `bar` shows
    /// progress.
    pub fn open(
        config: &'a Config,
        job: &'a Job,
        sinks: &mut Sinks<'_>,
        bar: Bar,
        show_head: bool,
    ) -> Result<Pending<'a>, Box<Ended>> {
        let mut transfer = Transfer::new(config, job, bar);
        let mut trace = Trace::new(
            &mut *sinks.stderr,
            config.display.verbose,
            sinks.stderr_is_terminal,
        );
        let opened = if let Err(e) = proxy::check(&config.proxies, &job.url) {
            Err(e.at(job.url.display()))
        } else if transfer.already_complete(&mut trace) {
            Ok(None)
        } else {
            transfer.open_output(&mut trace).map(Some)
        };
        match opened {
            Ok(Some(sink)) => Ok(Pending {
                transfer,
                guard_binary: matches!(sink, Sink::Stdout)
                    && sinks.stdout_is_terminal
                    && !config.display.binary_to_terminal,
                sink,
                head_shown: !show_head,
            }),
            Ok(None) => {
                let url = job.url.display();
                let checked = transfer.verify_kept(&mut trace).map_err(|e| e.at(url));
                let result = checked.map(|()| State::AlreadyComplete);
                Err(Box::new(transfer.end(result)))
            }
            Err(e) => Err(Box::new(transfer.end(Err(e)))),
        }
    }

    /// Sends the first request now if a kept plain-http connection can carry
    /// it; true if it went out. The caller waits until that connection
    /// [`answer_fd`](Self::answer_fd) has input, then calls
    /// [`read_whole_answer`](Self::read_whole_answer) or `finish`. Nothing is lost
    /// when it does not go out: `finish` connects as usual.
    pub fn send_ahead(&mut self, sinks: &mut Sinks<'_>, pool: &Pool) -> bool {
        let transfer = &mut self.transfer;
        // Not when finishing it could wait on more than the network: on the
        // reader of stdout or of a FIFO, or on reading FILE.part back for a
        // checksum.
        if !pool.enabled()
            || transfer.url.scheme() != Scheme::Http
            || self.sink.may_wait()
            || transfer.unhashed > 0
        {
            return false;
        }
        let (route, range) = transfer.next_request();
        let Some(mut conn) = pool.take(&route) else {
            return false;
        };
        if !matches!(conn.get_ref(), Stream::Plain(_)) {
            // A TLS connection to a proxy: its bytes cannot be looked at
            // before they are decrypted.
            pool.put(route, conn);
            return false;
        }
        let mut trace = Trace::new(
            &mut *sinks.stderr,
            transfer.config.display.verbose,
            sinks.stderr_is_terminal,
        );
        trace.step(format_args!("Reusing the connection to {route}"));
        conn.get_mut().socket_mut().renew(&transfer.limits());
        match transfer.send(conn.get_mut(), true, range.as_ref(), &mut trace) {
            Ok(()) => {
                transfer.sent = Some(conn);
                true
            }
            Err(e) => {
                trace.step(format_args!(
                    "The kept connection failed ({e}): connecting again"
                ));
                false
            }
        }
    }

    /// The socket the request sent ahead waits on for its answer.
    pub fn answer_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self.transfer.sent.as_ref()?.get_ref() {
            Stream::Plain(socket) => Some(socket.as_fd()),
            Stream::Tls(_) => None,
        }
    }

    /// Reads what has arrived of the answer to the request sent ahead (call it
    /// when `answer_fd` has input: the read does not wait); true when that is
    /// all of a 2xx response other than 206. Such an answer is neither
    /// followed nor retried and its body is all there, so `finish` then ends
    /// the transfer without waiting for the network.
    pub fn read_whole_answer(&mut self) -> bool {
        let transfer = &mut self.transfer;
        let head_request = transfer.config.method == Method::Head;
        let Some(conn) = transfer.sent.as_mut() else {
            return false;
        };
        let Ok(bytes) = conn.fill_buf() else {
            return false;
        };
        let Some((head, length)) = whole_success(bytes, head_request) else {
            return false;
        };
        // Parsed once: `exchange` takes this head. (With -v it reads it again,
        // to show any interim heads before it.)
        if !transfer.config.display.verbose {
            conn.consume(length);
            transfer.answered = Some(head);
        }
        true
    }

    /// Counts `waited`, the time the answer has been awaited already, against
    /// `--read-timeout` for the next read.
    pub fn count_silence(&mut self, waited: Duration) {
        if let Some(Stream::Plain(socket)) = self.transfer.sent.as_mut().map(|c| c.get_mut()) {
            socket.count_silence(waited);
        }
    }

    /// When the answer must have begun: `--read-timeout` after the request,
    /// or `--max-time`'s end if that comes first.
    pub fn answer_due(&self, sent_at: Instant) -> Instant {
        let quiet = sent_at + self.transfer.config.network.read_timeout;
        self.transfer.deadline.map_or(quiet, |d| d.min(quiet))
    }

    /// Runs the transfer to its end: requests (the first may be out already),
    /// redirects, retries, the body into the output.
    pub fn finish(self, sinks: &mut Sinks<'_>, pool: &Pool) -> Ended {
        let Pending {
            mut transfer,
            sink,
            guard_binary,
            head_shown,
        } = self;
        let mut trace = Trace::new(
            &mut *sinks.stderr,
            transfer.config.display.verbose,
            sinks.stderr_is_terminal,
        );
        let dest = Destination {
            stdout: &mut *sinks.stdout,
            stdout_is_terminal: sinks.stdout_is_terminal,
            guard_binary,
            sink,
            head_shown,
        };
        let result = transfer.complete(dest, &mut trace, pool);
        transfer.end(result)
    }
}

/// The head of the final 2xx response (not 206, whose range is checked
/// against what was asked and may be retried) `bytes` begin with, and the
/// length of all heads read, when the whole of its body (framed by
/// Content-Length, or empty) follows.
fn whole_success(bytes: &[u8], head_request: bool) -> Option<(Head, usize)> {
    let mut rest = bytes;
    let head = read_response_head(&mut rest, |_| ()).ok()?;
    let length = bytes.len() - rest.len();
    let whole = (200..300).contains(&head.status)
        && head.status != 206
        && match BodyKind::of(&head, head_request) {
            Ok(BodyKind::Empty) => true,
            Ok(BodyKind::Length(n)) => rest.len() as u64 >= n,
            _ => false,
        };
    whole.then_some((head, length))
}

/// Where the head and body go, and whether the head was shown already (a
/// retried transfer shows it once).
struct Destination<'s> {
    stdout: &'s mut dyn Write,
    stdout_is_terminal: bool,
    /// The body goes to a terminal that did not ask for it with `-o -`: a
    /// binary one (a NUL byte in it) stops the transfer rather than garble
    /// the terminal, as curl does.
    guard_binary: bool,
    sink: Sink,
    head_shown: bool,
}

impl Destination<'_> {
    /// Shows the head on stdout when the body goes elsewhere (unless -s), or
    /// before the body with -i. With -I the head is the content, not shown here.
    fn show_head(&mut self, config: &Config, head: &Head) -> Result<(), Error> {
        if self.head_shown || config.method == Method::Head {
            return Ok(());
        }
        self.head_shown = true;
        let show = if matches!(self.sink, Sink::Stdout) {
            config.display.include
        } else {
            !config.display.silent
        };
        if !show {
            return Ok(());
        }
        let bytes = self.for_stdout(&head.raw);
        let shown = self
            .stdout
            .write_all(&bytes)
            .and_then(|()| self.stdout.flush());
        match shown {
            // The head is only for show when the body goes elsewhere: a reader
            // that took what it wanted of it (`| head -1`) and left takes
            // nothing from the download.
            Err(e)
                if e.kind() == std::io::ErrorKind::BrokenPipe
                    && !matches!(self.sink, Sink::Stdout) =>
            {
                Ok(())
            }
            shown => shown.map_err(stdout_error),
        }
    }

    /// Bytes from the server, escaped when they are headed for a terminal.
    fn for_stdout<'b>(&self, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        if self.stdout_is_terminal {
            escape::for_terminal(bytes)
        } else {
            bytes.into()
        }
    }
}

/// How a transfer that succeeded ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The body was written (and FILE renamed into place).
    Downloaded,
    /// `-C` found FILE complete and FILE.part gone: nothing to do.
    AlreadyComplete,
    /// `-N` and a 304: FILE is up to date and untouched.
    NotModified,
}

/// The state of one URL's transfer across redirects and retries.
struct Transfer<'a> {
    config: &'a Config,
    job: &'a Job,
    bar: Bar,
    started: Instant,
    deadline: Option<Instant>,
    /// The URL being requested: the original, then each redirect target.
    url: Target,
    /// False once the chain has left the original origin: from then on,
    /// credentials (and a `-H` Host) stay home for the rest of the chain.
    at_origin: bool,
    /// The route to `url`: its origin and the proxy on the way.
    route: Route,
    /// Every URL requested in this chain, to recognise loops (empty until the
    /// first redirect).
    visited: Vec<String>,
    redirects: u32,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Body bytes in the sink, across attempts.
    written: u64,
    /// Of those, the bytes an earlier run left in FILE.part (`-C`): not
    /// downloaded by this one.
    resumed: u64,
    /// Set when the response that delivered `written` allows a range request.
    resume: Option<Resume>,
    /// The last response's Retry-After.
    retry_after: Option<Duration>,
    /// The wait before a retry already decided on (for a transient status).
    planned_wait: Option<Duration>,
    /// The last response's status and Content-Type, for `-w`.
    response: Option<(u16, Option<String>)>,
    /// Retries so far (the backoff's exponent).
    retries: u32,
    /// `-N`: FILE's mtime as an HTTP-date, for If-Modified-Since.
    if_modified_since: Option<String>,
    /// Digests of the body written so far: for `--checksum`, `%{digest_sha256}`
    /// and the server's Content-Digest / Repr-Digest.
    hashes: Hashes,
    /// A kept connection the next request has gone out on already.
    sent: Option<BufReader<Stream>>,
    /// The head of the answer on `sent`, read from it already.
    answered: Option<Head>,
    /// Bytes of FILE.part (`-C`) that the checksums have yet to cover.
    unhashed: u64,
}

impl<'a> Transfer<'a> {
    fn new(config: &'a Config, job: &'a Job, bar: Bar) -> Transfer<'a> {
        let started = Instant::now();
        let url = job.url.clone();
        let if_modified_since = match (&job.output, config.files.newer) {
            (Output::File(path), true) => std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .map(httpdate::fmt_http_date),
            _ => None,
        };
        let mut hashes = Hashes::default();
        if let Some(c) = &config.checksum {
            hashes.add(c.algorithm);
        }
        if config.write_out.as_ref().is_some_and(|w| w.needs_sha256()) {
            hashes.add(Algorithm::Sha256);
        }
        Transfer {
            config,
            job,
            bar,
            started,
            hashes,
            deadline: config.network.max_time.map(|t| started + t),
            route: route_of(config, &url),
            visited: Vec::new(),
            url,
            at_origin: true,
            redirects: 0,
            tls: None,
            written: 0,
            resumed: 0,
            resume: None,
            retry_after: None,
            planned_wait: None,
            response: None,
            retries: 0,
            if_modified_since,
            sent: None,
            answered: None,
            unhashed: 0,
        }
    }

    /// Opens the output (FILE.part, or where a new FILE is made; stdout), and
    /// with `-C` continues what FILE.part holds.
    fn open_output(&mut self, trace: &mut Trace<'_>) -> Result<Sink, Error> {
        let (config, job) = (self.config, self.job);
        let (mut sink, resume) =
            Sink::open(&job.output, config.files.resume).map_err(|e| e.at(job.url.display()))?;
        if trace.enabled()
            && let Some(how) = sink.describe()
        {
            trace.step(how);
        }
        let given = job.url.display();
        let resume = match resume {
            // A date names no particular resource: a FILE.part started from
            // another URL could be another file of the same age (an entity
            // tag, the server's name for exactly those bytes, is trusted
            // across URLs: a presigned URL that was renewed, a mirror).
            Some((_, r)) if r.is_dated() && r.url.as_ref().is_some_and(|url| *url != given) => {
                trace.step(format_args!(
                    "{} was started from {}, with a date for a validator: starting over",
                    self.part_name(),
                    escape::for_message(r.url.as_deref().unwrap_or_default().as_bytes())
                ));
                sink.restart().map_err(|e| e.at(given))?;
                None
            }
            resume => resume,
        };
        if let Some((held, resume)) = resume {
            trace.step(format_args!(
                "Continuing {} from byte {held}",
                self.part_name()
            ));
            self.written = held;
            self.resumed = held;
            self.resume = Some(resume);
            // Checksums cover the whole file: the part an earlier run wrote
            // too, read back when the transfer runs (not where it is opened).
            if !self.hashes.is_empty() {
                self.unhashed = held;
            }
        }
        Ok(sink)
    }

    /// Tries (and retries) until the transfer ends; on success FILE is in place.
    fn complete(
        &mut self,
        mut dest: Destination<'_>,
        trace: &mut Trace<'_>,
        pool: &Pool,
    ) -> Result<State, Error> {
        let config = self.config;
        dest.sink
            .ready()
            .map_err(|e| e.at(self.job.url.display()))?;
        if self.unhashed > 0 {
            let hashes = &mut self.hashes;
            dest.sink
                .read_back(self.unhashed, |bytes| hashes.update(bytes))
                .map_err(|e| e.at(self.job.url.display()))?;
            self.unhashed = 0;
        }
        let mut retries_left = config.retry.count;
        loop {
            match self.attempt(&mut dest, trace, retries_left > 0, pool) {
                Ok((_, state)) => {
                    let Destination { sink, stdout, .. } = dest;
                    if state == State::Downloaded {
                        sink.finish(stdout).map_err(|e| e.at(self.subject()))?;
                    }
                    return Ok(state);
                }
                Err(e) => match self.plan_retry(&e, retries_left, &mut dest.sink, trace) {
                    Some(wait) => {
                        retries_left -= 1;
                        let done = config.retry.count - retries_left;
                        let from = match self.written {
                            0 => String::new(),
                            n => format!(", continuing at byte {n}"),
                        };
                        trace.step(format_args!(
                            "Retry {done} of {} in {}{from}: {e}",
                            config.retry.count,
                            seconds_rounded(wait)
                        ));
                        std::thread::sleep(wait);
                    }
                    None => return Err(e.at(self.subject())),
                },
            }
        }
    }

    /// What an error line names: the URL the user gave (in a batch, the one
    /// line that tells which input failed), and where its redirects led.
    fn subject(&self) -> String {
        let given = self.job.url.display();
        match self.redirects {
            0 => given,
            _ => format!("{given} (redirected to {})", self.url.display()),
        }
    }

    /// Ends the transfer with `result`: the bar finishes (or goes), and what
    /// `-w` reports is taken.
    fn end(&self, result: Result<State, Error>) -> Ended {
        match &result {
            Ok(_) => self.bar.finish(),
            Err(_) => self.bar.clear(),
        }
        let facts = self.facts(matches!(result, Ok(State::Downloaded)));
        (result, facts)
    }

    /// Where the next request goes, and the range it asks for (`plan_retry`
    /// keeps `written > 0` only together with `resume`).
    fn next_request(&self) -> (Route, Option<(u64, String)>) {
        let range = match (&self.resume, self.written) {
            (Some(r), from) if from > 0 => Some((from, r.validator.clone())),
            _ => None,
        };
        (self.route.clone(), range)
    }

    /// `-C` with FILE present and no FILE.part: an earlier run finished it.
    fn already_complete(&self, trace: &mut Trace<'_>) -> bool {
        let Output::File(path) = &self.job.output else {
            return false;
        };
        if !self.config.files.resume {
            return false;
        }
        let (path, metadata) = crate::output::resolve(path);
        let part = crate::output::part_path(&path);
        let complete = metadata.is_ok_and(|m| m.is_file()) && !part.exists();
        if complete {
            trace.step(format_args!(
                "{} is complete (no {}): nothing to do",
                path.display(),
                part.display()
            ));
        }
        complete
    }

    /// What `-w` reports: the last response's status and Content-Type, the
    /// bytes received, the last URL; the body's digest only when `complete`
    /// (downloaded now: not found complete or up to date, nothing was hashed).
    fn facts(&self, complete: bool) -> Facts {
        let (status, content_type) = match &self.response {
            Some((status, content_type)) => (*status, content_type.clone()),
            None => (0, None),
        };
        Facts {
            status,
            bytes: self.written.saturating_sub(self.resumed),
            url: self.url.display(),
            file: match &self.job.output {
                Output::File(path) => Some(path.clone()),
                Output::Stdout => None,
            },
            content_type,
            redirects: self.redirects,
            elapsed: self.started.elapsed(),
            // -I has no body to hash (its content, the head, is not hashed).
            digest_sha256: match (complete, self.config.method) {
                (true, Method::Get) => self.sha256_hex(),
                _ => None,
            },
        }
    }

    /// One try: requests until a final response (following redirects), then
    /// writes its body (or with -I its head) into the sink. A connection whose
    /// response was read to its end goes back to the pool.
    fn attempt(
        &mut self,
        dest: &mut Destination<'_>,
        trace: &mut Trace<'_>,
        may_retry: bool,
        pool: &Pool,
    ) -> Result<(Head, State), Error> {
        loop {
            self.retry_after = None;
            let (route, range) = self.next_request();
            let (mut conn, head) = self.exchange(pool, &route, range.as_ref(), trace)?;
            self.retry_after = retry_after(&head);
            self.response = Some((head.status, head.value("content-type").map(str::to_owned)));

            if self.config.redirects.follow
                && redirect::is_redirect(head.status)
                && let Some(location) = redirect::location(&head)
            {
                self.keep_unread(pool, route, conn, &head);
                self.follow(head.status, location, trace)?;
                continue;
            }
            if may_retry && is_transient_status(head.status) {
                // Decided here, before the body is read: a retry that cannot
                // happen (--max-time) leaves this as the final answer, which
                // --no-fail keeps as when the retries run out.
                match self.next_wait() {
                    Some(wait) => {
                        self.planned_wait = Some(wait);
                        self.keep_unread(pool, route, conn, &head);
                        return Err(status_error(&head));
                    }
                    None => {
                        trace.step("No retry could start before --max-time: this answer is final")
                    }
                }
            }
            // A 304 says the client's copy is current, whoever made the
            // request conditional (-N, or -H If-None-Match): it has no body
            // to replace that copy with.
            if head.status == 304 {
                trace.step(format_args!(
                    "Not modified: {} is {}",
                    self.file_name(),
                    match self.if_modified_since {
                        Some(_) => "up to date",
                        None => "left as it is",
                    }
                ));
                keep(pool, route, conn, &head, true);
                dest.show_head(self.config, &head)?;
                self.verify_kept(trace)?;
                return Ok((head, State::NotModified));
            }
            if self.is_not_newer(&head) {
                trace.step(format_args!(
                    "The server ignored If-Modified-Since, and its copy is not newer than {0}: {0} is left as it is",
                    self.file_name()
                ));
                dest.show_head(self.config, &head)?;
                self.verify_kept(trace)?;
                return Ok((head, State::NotModified));
            }
            if let Some((from, validator)) = &range {
                if self.asked(*from, validator).is_already_whole(&head) {
                    trace.step(format_args!(
                        "The server says {} already holds the whole body",
                        self.part_name()
                    ));
                    // Checked like a body that arrived: the hashes cover FILE.part.
                    self.verify(&[], &self.hashes, trace)
                        .inspect_err(|_| dest.sink.discard())?;
                    self.set_remote_time(&head, &mut dest.sink)?;
                    return Ok((head, State::Downloaded));
                }
                // An error status is the answer, as it would be without a
                // range (22, FILE.part kept with -C), or with --no-fail the
                // body that replaces it; a 416 says the range does not fit.
                match head.status {
                    400.. if head.status != 416 && self.config.no_fail => {
                        self.restart_body(&mut dest.sink)?;
                        trace.step(
                            "The server sent an error page, which --no-fail keeps: starting over",
                        );
                    }
                    400.. if head.status != 416 => {}
                    _ => self.check_range_answer(&head, *from, validator, &mut dest.sink, trace)?,
                }
            } else if head.status == 206 && !self.asks_for_a_range() {
                range::check_unasked_partial(&head)?;
            }
            dest.show_head(self.config, &head)?;
            if head.status >= 400 && !self.config.no_fail {
                self.keep_unread(pool, route, conn, &head);
                return Err(status_error(&head));
            }
            // A compressed stream cannot be continued from its middle.
            self.resume = if self.config.compressed && head.value("content-encoding").is_some() {
                None
            } else {
                range::resume_from(&head, self.resume.take(), self.job.url.display())
            };
            dest.sink.remember(self.resume.as_ref())?;

            let finished = if self.config.method == Method::Head {
                // The head is the content: escaped only where it is shown on
                // a terminal, never in FILE (its bytes must not depend on
                // where stdout goes).
                let bytes = match dest.sink {
                    Sink::Stdout => dest.for_stdout(&head.raw).into_owned(),
                    _ => head.raw.clone(),
                };
                dest.sink.write(dest.stdout, &bytes)?;
                self.written = bytes.len() as u64;
                true
            } else {
                // A continued body's own framing counts only this response's
                // bytes: the message says what there is in all.
                let continued_from = (head.status == 206).then_some(range.as_ref()).flatten();
                self.deliver(&head, &mut conn, dest, trace).map_err(|e| {
                    match (e, continued_from) {
                        (Error::Truncated(why), Some((from, _))) => Error::Truncated(format!(
                            "{why}, continuing from byte {from}: {} bytes in all",
                            self.written
                        )),
                        (e, _) => e,
                    }
                })?
            };
            self.set_remote_time(&head, &mut dest.sink)?;
            keep(pool, route, conn, &head, finished);
            return Ok((head, State::Downloaded));
        }
    }

    /// Keeps the connection of an answer whose body is not wanted (a redirect,
    /// an error status) when all of that body has arrived with the head: the
    /// next request to the origin then needs no new connection. A body still
    /// on its way is not waited for; the connection is closed.
    fn keep_unread(&self, pool: &Pool, route: Route, mut conn: BufReader<Stream>, head: &Head) {
        let length = match BodyKind::of(head, self.config.method == Method::Head) {
            Ok(BodyKind::Empty) => 0,
            Ok(BodyKind::Length(n)) => n,
            _ => return,
        };
        if let Ok(length) = usize::try_from(length)
            && conn.buffer().len() >= length
        {
            conn.consume(length);
            keep(pool, route, conn, head, true);
        }
    }

    /// Sends the request and reads the final response's head, on a connection
    /// the pool kept for this route if it has one (or the one the request was
    /// sent ahead on), else on a new one. A kept connection that fails before
    /// its response (the server closed it while it was idle, and we did not
    /// see that in time) is replaced once, quietly, as curl does: the request
    /// is a GET or HEAD, safe to send again. So is one that answers 408: a
    /// server that times out an idle connection may say so before it closes,
    /// and that answer, read as ours, was not about our request (browsers
    /// and Go's client do the same).
    fn exchange(
        &mut self,
        pool: &Pool,
        route: &Route,
        range: Option<&(u64, String)>,
        trace: &mut Trace<'_>,
    ) -> Result<(BufReader<Stream>, Head), Error> {
        let kept = match self.sent.take() {
            Some(conn) => Some(Ok(conn)),
            None => pool.take(route).map(|mut conn| {
                trace.step(format_args!("Reusing the connection to {route}"));
                conn.get_mut().socket_mut().renew(&self.limits());
                self.send(conn.get_mut(), true, range, trace).map(|()| conn)
            }),
        };
        let answer = kept.map(|sent| {
            sent.and_then(|mut conn| match self.answered.take() {
                Some(head) => Ok((conn, head)),
                None => read_response_head(&mut conn, |h| trace.head("< ", &h.raw))
                    .map(|head| (conn, head)),
            })
        });
        match answer {
            Some(Ok((_, head))) if head.status == 408 => {
                trace.step(format_args!(
                    "The kept connection failed (it answered 408 Request Timeout): connecting again"
                ));
            }
            Some(Ok(answered)) => return Ok(answered),
            Some(Err(
                e @ (Error::EmptyReply
                | Error::HeadCut
                | Error::Network { .. }
                | Error::Truncated(_)),
            )) => {
                trace.step(format_args!(
                    "The kept connection failed ({e}): connecting again"
                ));
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
        let mut conn = BufReader::with_capacity(BUFFER_SIZE, self.connect(trace)?);
        self.send(conn.get_mut(), pool.enabled(), range, trace)?;
        let head = read_response_head(&mut conn, |h| trace.head("< ", &h.raw))?;
        Ok((conn, head))
    }

    /// Streams the final response's body into the sink: framed, metered,
    /// decoded with --compressed, hashed, and checked against the digests.
    /// True when the body was read exactly to its framed end (the connection
    /// could carry another request).
    fn deliver(
        &mut self,
        head: &Head,
        conn: &mut BufReader<Stream>,
        dest: &mut Destination<'_>,
        trace: &mut Trace<'_>,
    ) -> Result<bool, Error> {
        let kind = BodyKind::of(head, false)?;
        let total = match (head.status, kind) {
            (206, _) => range::content_range(head).and_then(|(_, _, total)| total),
            (_, BodyKind::Length(n)) => Some(n),
            _ => None,
        };
        // --compressed: undo the content codings while streaming (a response
        // without a body has nothing to undo, whatever it names).
        let codings = if self.config.compressed && kind != BodyKind::Empty {
            body::content_codings(head)?
        } else {
            Vec::new()
        };
        // Where the body written so far must end: after the bytes of a 206's
        // Content-Range (for a resume, the whole length: `Asked::check_partial`
        // made sure). A Content-Length its reader holds the body to already;
        // decoded bytes (--compressed) are not counted against a range.
        let end = match range::content_range(head) {
            Some((first, last, _)) if head.status == 206 && codings.is_empty() => {
                Some(self.written.saturating_add(last - first + 1))
            }
            _ => None,
        };
        // The server's own digests describe the content as sent (before
        // decoding), and a body that came whole from this response; a range
        // (a resumed body) is not checked. A chunked body may bring them after
        // it, as trailer fields: when the head's Trailer field announces one,
        // the body is hashed with both algorithms, since the trailer says which
        // one only at the end.
        let whole = head.status == 200 && self.written == 0;
        let mut server_digests = if whole {
            digest::server_digests(&head.fields, false)
        } else {
            Vec::new()
        };
        let mut algorithms: Vec<Algorithm> = server_digests.iter().map(|d| d.algorithm).collect();
        let trailer_digests = whole && kind == BodyKind::Chunked;
        let announced = trailer_digests && digest::announced_in_trailer(head);
        if announced {
            algorithms.extend([Algorithm::Sha256, Algorithm::Sha512]);
        }
        let mut content = Hashes::default();
        for algorithm in algorithms {
            if codings.is_empty() {
                self.hashes.add(algorithm);
            } else {
                content.add(algorithm);
            }
        }
        self.bar.start(total, self.written);
        if codings.is_empty()
            && self.hashes.is_empty()
            && let Some(finished) = self.deliver_zero_copy(kind, conn, dest, trace)?
        {
            self.check_end(end, &mut dest.sink)?;
            return Ok(finished);
        }
        let mut body = Body::new(kind, conn);
        let wire = Meter::new(&mut body, self.bar.clone());
        let decoded = body::decoder(Hashing::new(wire, &mut content), &codings);
        copy_body(decoded, dest, &mut self.written, &mut self.hashes)?;
        self.check_end(end, &mut dest.sink)?;
        // An unannounced one is never checked, whatever else hashed the body
        // (-w, --checksum): what a transfer checks does not depend on them.
        if trailer_digests {
            let trailers = response::parse_trailers(body.trailers());
            for d in digest::server_digests(&trailers, true) {
                if announced {
                    server_digests.push(d);
                } else {
                    trace.step(format_args!(
                        "{} trailer {} not checked: the head's Trailer field did not announce it",
                        d.field, d.algorithm
                    ));
                }
            }
        }
        let content_hashes = if codings.is_empty() {
            &self.hashes
        } else {
            &content
        };
        self.verify(&server_digests, content_hashes, trace)
            .inspect_err(|_| dest.sink.discard())?;
        Ok(body.is_finished())
    }

    /// The zero-copy path (Linux splice) for a plain-http body with a length or
    /// running until close, going to a file that takes splice. `None` (and the
    /// connection untouched) when the body does not qualify; else whether the
    /// body ended at its framed end, as `deliver` says.
    fn deliver_zero_copy(
        &mut self,
        kind: BodyKind,
        conn: &mut BufReader<Stream>,
        dest: &mut Destination<'_>,
        trace: &mut Trace<'_>,
    ) -> Result<Option<bool>, Error> {
        let remaining = match kind {
            BodyKind::Length(n) => Some(n),
            BodyKind::UntilClose => None,
            _ => return Ok(None),
        };
        let plain = matches!(conn.get_ref(), Stream::Plain(_));
        if !plain || dest.sink.splice_target().is_none() {
            return Ok(None);
        }
        // What arrived with the head goes first; bytes past a Content-Length
        // are not part of the body (and stay in the buffer, where the pool
        // sees them and does not keep the connection). A body that arrived
        // whole with the head needs no pipe.
        let take = remaining.map_or(conn.buffer().len(), |r| {
            r.min(conn.buffer().len() as u64) as usize
        });
        let rest = remaining.map(|r| r - take as u64);
        let pipe = match rest {
            Some(0) => None,
            _ => match zerocopy::Pipe::new() {
                Some(pipe) => Some(pipe),
                None => return Ok(None),
            },
        };
        dest.sink.write(dest.stdout, &conn.buffer()[..take])?;
        conn.consume(take);
        self.bar.add(take as u64);
        self.written += take as u64;
        let Some(pipe) = pipe else {
            return Ok(Some(true));
        };
        trace.step("Zero-copy: the body goes from the socket to the file by splice(2)");
        let Stream::Plain(socket) = conn.get_mut() else {
            unreachable!("a plain stream was checked above");
        };
        let Some((file, path)) = dest.sink.splice_target() else {
            unreachable!("the sink was checked above and has not changed");
        };
        zerocopy::copy(
            &pipe,
            socket,
            rest,
            remaining,
            file,
            path,
            &self.bar,
            &mut self.written,
        )?;
        Ok(Some(remaining.is_some()))
    }

    /// Connects to the server or its proxy; for https, tunnels through the
    /// proxy and completes the TLS handshake.
    fn connect(&mut self, trace: &mut Trace<'_>) -> Result<Stream, Error> {
        let config = self.config;
        // A bad --cacert fails before any traffic.
        let tls_config = match self.url.scheme() {
            Scheme::Http => None,
            Scheme::Https => Some(self.tls_config(trace)?),
        };
        let proxy = proxy::for_target(&config.proxies, &self.url);
        let (host, port) = match proxy {
            Some(p) => {
                trace.step(format_args!("Using proxy {}", p.display()));
                (p.host(), p.port())
            }
            None => (self.url.host(), self.url.port()),
        };
        let limits = self.limits();
        let mut socket = transport::connect(
            &host,
            port,
            config.network.ip_version,
            &limits,
            &mut |line| trace.step(&line),
        )
        .map_err(|e| {
            let named = || proxy::named(&config.proxies, &self.url);
            match (proxy, e) {
                (Some(_), Error::Resolve { host, why }) => Error::ProxyResolve {
                    host: format!("{host} ({})", named()),
                    why,
                },
                (Some(_), Error::Connect { addr, source }) => Error::Connect {
                    addr: format!("proxy {addr} ({})", named()),
                    source,
                },
                (_, e) => e,
            }
        })?;
        let Some(tls_config) = tls_config else {
            socket.connected();
            return Ok(Stream::Plain(socket));
        };
        // The CONNECT exchange and the handshake are part of connecting: the
        // socket is still under the connect deadline.
        if let Some(p) = proxy {
            socket.connect_step("the proxy's CONNECT exchange");
            proxy::open_tunnel(
                &mut socket,
                &self.url,
                p,
                &config.user_agent,
                &mut |prefix, head| trace.head(prefix, head),
            )?;
        }
        let own_roots = config.tls.ca_file.is_some();
        let mut session = tls::handshake(
            socket,
            &self.url.host(),
            tls_config,
            own_roots,
            &mut |line| trace.step(&line),
        )?;
        session.sock.connected();
        Ok(Stream::Tls(Box::new(session)))
    }

    /// The timeouts of this transfer, for a new or a reused connection.
    fn limits(&self) -> Limits {
        Limits {
            connect_timeout: self.config.network.connect_timeout,
            read_timeout: self.config.network.read_timeout,
            deadline: self.deadline,
        }
    }

    /// The TLS client configuration, built on first use (roots are not free).
    fn tls_config(&mut self, trace: &mut Trace<'_>) -> Result<Arc<rustls::ClientConfig>, Error> {
        if let Some(c) = &self.tls {
            return Ok(Arc::clone(c));
        }
        if self.config.tls.insecure {
            trace.step("TLS certificate verification is off (-k)");
        }
        let c = tls::client_config(&self.config.tls, &mut |line| trace.step(&line))?;
        self.tls = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Writes the request head for the current URL.
    fn send(
        &self,
        stream: &mut Stream,
        keep_alive: bool,
        range: Option<&(u64, String)>,
        trace: &mut Trace<'_>,
    ) -> Result<(), Error> {
        let config = self.config;
        let url = &self.url;
        let forwarding_proxy =
            proxy::for_target(&config.proxies, url).filter(|_| url.scheme() == Scheme::Http);
        let target = match forwarding_proxy {
            Some(_) => url.absolute_form(),
            None => url.request_target(),
        };
        // Credentials come from -u or the original URL's userinfo, never from a
        // redirect target, and only while the chain is at home.
        let url_credentials = self.job.url.credentials();
        let credentials = if self.at_origin {
            config.credentials.as_ref().or(url_credentials.as_ref())
        } else {
            None
        };
        let proxy_credentials = forwarding_proxy.and_then(|p| p.credentials());
        let mut extra: Vec<(String, String)> = config
            .headers
            .iter()
            .filter(|(name, _)| self.at_origin || !redirect::is_origin_bound_field(name))
            .cloned()
            .collect();
        if let Some((from, validator)) = range {
            extra.push(("Range".into(), format!("bytes={from}-")));
            extra.push(("If-Range".into(), validator.clone()));
        }
        if let Some(date) = &self.if_modified_since {
            extra.push(("If-Modified-Since".into(), date.clone()));
        }
        let host = url.host_field();
        let request = Request {
            method: config.method,
            target: &target,
            host: &host,
            user_agent: &config.user_agent,
            credentials,
            proxy_credentials: proxy_credentials.as_ref(),
            compressed: config.compressed,
            keep_alive,
            extra: &extra,
        }
        .to_bytes();
        trace.head("> ", &request);
        stream
            .write_all(&request)
            .and_then(|()| stream.flush())
            .map_err(|e| match Error::from_read(e) {
                Error::Network { source, .. } => Error::Network {
                    what: "sending the request failed",
                    source,
                },
                other => other,
            })
    }

    /// Moves to a redirect's target, or says why not (1, 8, 47).
    fn follow(&mut self, status: u16, location: &[u8], trace: &mut Trace<'_>) -> Result<(), Error> {
        let next = redirect::next_target(&self.url, location)?;
        if self.visited.is_empty() {
            self.visited.push(self.job.url.absolute_form());
        }
        let key = next.absolute_form();
        if self.visited.contains(&key) {
            self.visited.push(key);
            return Err(Error::Redirects(format!(
                "redirect loop: {}",
                self.visited.join(" -> ")
            )));
        }
        let max = self.config.redirects.max;
        if self.redirects >= max {
            return Err(Error::Redirects(format!(
                "more than {max} redirects (--max-redirs {max})"
            )));
        }
        proxy::check(&self.config.proxies, &next)?;
        trace.step(format_args!("Redirect {status} to {}", next.display()));
        if self.at_origin && !redirect::same_origin(&self.job.url, &next) {
            self.at_origin = false;
            trace.step("Leaving the original origin: credentials, cookies and -H Host stay behind");
        }
        self.visited.push(key);
        self.redirects += 1;
        self.url = next;
        self.route = route_of(self.config, &self.url);
        Ok(())
    }

    /// Checks the content (as sent) against the server's digests, and the body
    /// (as written) against `--checksum` (110).
    fn verify(
        &self,
        server: &[ServerDigest],
        content: &Hashes,
        trace: &mut Trace<'_>,
    ) -> Result<(), Error> {
        for d in server {
            let place = if d.in_trailer { " trailer" } else { "" };
            let Some(got) = content.digest(d.algorithm) else {
                // Every algorithm of a checked digest was hashed (see `deliver`).
                trace.step(format_args!(
                    "{}{place} {} not checked: the body was not hashed with it",
                    d.field, d.algorithm
                ));
                continue;
            };
            if got != d.expected {
                return Err(Error::Checksum(format!(
                    "the body does not match the server's {}{place} ({})",
                    d.field, d.algorithm
                )));
            }
            trace.step(format_args!("{}{place} {} verified", d.field, d.algorithm));
        }
        if let Some(c) = &self.config.checksum {
            let got = self.hashes.digest(c.algorithm).unwrap_or_default();
            if got != c.expected {
                return Err(Error::Checksum(format!(
                    "the body's {} is {}, not {} (--checksum)",
                    c.algorithm,
                    digest::to_hex(&got),
                    digest::to_hex(&c.expected)
                )));
            }
            trace.step(format_args!("{} verified (--checksum)", c.algorithm));
        }
        Ok(())
    }

    /// `-C` found FILE complete, or `-N` up to date: it was not downloaded
    /// now, but exit 0 with `--checksum` still means FILE has that digest. It
    /// is read and checked, and left as it is either way.
    fn verify_kept(&mut self, trace: &mut Trace<'_>) -> Result<(), Error> {
        let (Some(_), Output::File(path)) = (&self.config.checksum, &self.job.output) else {
            return Ok(());
        };
        let (path, _) = crate::output::resolve(path);
        self.hashes.reset();
        let hashes = &mut self.hashes;
        crate::output::read_file(&path, |bytes| hashes.update(bytes))?;
        self.verify(&[], &self.hashes, trace).map_err(|e| match e {
            Error::Checksum(why) => Error::Checksum(format!(
                "{}, which was not downloaded again: {why}; it is left as it is",
                path.display()
            )),
            e => e,
        })
    }

    /// Lowercase hex SHA-256 of the body, when `-w` asked for it.
    fn sha256_hex(&self) -> Option<String> {
        let wanted = self.config.write_out.as_ref()?.needs_sha256();
        wanted
            .then(|| self.hashes.digest(Algorithm::Sha256))
            .flatten()
            .map(|d| digest::to_hex(&d))
    }

    /// `-N` and a 200 whose Last-Modified is not after FILE's time: the server
    /// ignored If-Modified-Since, and its copy is no newer (curl -z and wget
    /// -N keep FILE too). Without Last-Modified the 200 counts as newer.
    fn is_not_newer(&self, head: &Head) -> bool {
        let Some(since) = &self.if_modified_since else {
            return false;
        };
        // The date sent, whole seconds, as the server compared it.
        let since = httpdate::parse_http_date(since).ok();
        head.status == 200 && last_modified(head).is_some_and(|m| since.is_some_and(|s| m <= s))
    }

    /// `-R` (and `-N`): FILE gets the response's Last-Modified, else the date
    /// the resume was asked with (a 206 or 416 need not repeat it).
    fn set_remote_time(&self, head: &Head, sink: &mut Sink) -> Result<(), Error> {
        if !self.config.files.remote_time {
            return Ok(());
        }
        let asked_with = || {
            let validator = &self.resume.as_ref()?.validator;
            httpdate::parse_http_date(validator).ok()
        };
        match last_modified(head).or_else(asked_with) {
            Some(time) => sink.set_modified(time),
            None => Ok(()),
        }
    }

    /// The answer to a range request for the bytes from `from` with If-Range
    /// `validator`: a 206 that `Asked::check_partial` accepts continues the body; a
    /// 200 means the server sent all of it again (the resource changed, or
    /// ranges are not supported), so start over if the output allows;
    /// anything else is exit 33.
    fn check_range_answer(
        &mut self,
        head: &Head,
        from: u64,
        validator: &str,
        sink: &mut Sink,
        trace: &mut Trace<'_>,
    ) -> Result<(), Error> {
        let asked = self.asked(from, validator);
        match head.status {
            206 => asked.check_partial(head).map_err(|e| match e {
                Error::Resume(why) => Error::Resume(format!("{why}{}", self.start_over_hint())),
                e => e,
            }),
            200 => {
                self.restart_body(sink)?;
                trace.step("The server sent the whole body again: starting over");
                Ok(())
            }
            status => Err(Error::Resume(format!(
                "the server answered HTTP {status}{} to a range request for the bytes from {from}{}{}",
                match head.value("content-range") {
                    Some(v) => format!(" (Content-Range '{}')", escape::for_message(v.as_bytes())),
                    None => String::new(),
                },
                asked.of_total(),
                self.start_over_hint()
            ))),
        }
    }

    /// Whether the user asked for part of the resource (`-H 'Range: ...'`):
    /// then a 206 is the answer, whatever part it holds.
    fn asks_for_a_range(&self) -> bool {
        self.config
            .headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("range") && !value.is_empty())
    }

    /// Throws away the body written so far, to write it again from its start.
    fn restart_body(&mut self, sink: &mut Sink) -> Result<(), Error> {
        sink.restart()?;
        self.written = 0;
        self.resumed = 0;
        self.hashes.reset();
        self.bar.restart();
        Ok(())
    }

    /// The range request now being sent: the bytes from `from`, of the
    /// version `validator`, of the whole length known so far.
    fn asked<'v>(&self, from: u64, validator: &'v str) -> range::Asked<'v> {
        range::Asked {
            from,
            validator,
            total: self.resume.as_ref().and_then(|r| r.total),
        }
    }

    /// The body written so far must end at `end`, when that is known: short
    /// is a body cut short (18, a retry continues it); longer is a server that
    /// sent more than its Content-Range said (33, and the bytes are not kept).
    fn check_end(&self, end: Option<u64>, sink: &mut Sink) -> Result<(), Error> {
        let written = self.written;
        match end {
            Some(end) if written < end => Err(Error::Truncated(format!(
                "the body ended after byte {written}, before byte {end} (Content-Range)"
            ))),
            Some(end) if written > end => {
                sink.discard();
                Err(Error::Resume(format!(
                    "the body went on past byte {end}, where its Content-Range ends"
                )))
            }
            _ => Ok(()),
        }
    }

    /// With -C, how to get out of a resume that cannot work.
    fn start_over_hint(&self) -> String {
        match self.config.files.resume {
            true => format!(" (remove {}, or drop -C, to start over)", self.part_name()),
            false => String::new(),
        }
    }

    /// FILE.part as messages name it: beside the file FILE is (or links to).
    fn part_name(&self) -> String {
        match &self.job.output {
            Output::File(path) => {
                let (path, _) = crate::output::resolve(path);
                crate::output::part_path(&path).display().to_string()
            }
            Output::Stdout => "stdout".into(),
        }
    }

    /// FILE as messages name it: the path the user gave.
    fn file_name(&self) -> String {
        match &self.job.output {
            Output::File(path) => path.display().to_string(),
            Output::Stdout => "stdout".into(),
        }
    }

    /// How long to wait before the next retry: Retry-After, else the backoff,
    /// at most `MAX_RETRY_WAIT`; None when it could not start before
    /// `--max-time` runs out.
    fn next_wait(&mut self) -> Option<Duration> {
        let wait = self
            .retry_after
            .take()
            .unwrap_or_else(|| backoff(self.config.retry.delay, self.retries))
            .min(MAX_RETRY_WAIT);
        let late = self.deadline.is_some_and(|d| Instant::now() + wait >= d);
        (!late).then_some(wait)
    }

    /// Decides whether and when to try again after `error` (None: give up).
    /// A body that was cut continues with a range request when the server
    /// allows it, else starts over if the output can be rewound.
    /// `trace` hears why a failure that --retry would retry is not.
    fn plan_retry(
        &mut self,
        error: &Error,
        retries_left: u32,
        sink: &mut Sink,
        trace: &mut Trace<'_>,
    ) -> Option<Duration> {
        if retries_left == 0 || !error.is_transient() {
            return None;
        }
        let start_over = self.written > 0 && self.resume.is_none();
        if start_over && !sink.can_restart() {
            trace.step("No retry: the body cannot be continued, and what went to stdout cannot be taken back");
            return None;
        }
        // A status is retried only as `attempt` decided, on seeing it (and
        // said why not, if it was not).
        let wait = match (self.planned_wait.take(), error.status()) {
            (Some(wait), _) => wait,
            (None, Some(_final)) => return None,
            (None, None) => match self.next_wait() {
                Some(wait) => wait,
                None => {
                    trace.step("No retry could start before --max-time");
                    return None;
                }
            },
        };
        if start_over {
            self.restart_body(sink).ok()?;
        }
        self.retries += 1;
        Some(wait)
    }
}

/// The origin of `url` and the proxy on the way to it.
fn route_of(config: &Config, url: &Target) -> Route {
    let proxy = proxy::for_target(&config.proxies, url).map(|p| p.display());
    Route::new(&url.origin(), proxy.as_deref())
}

/// Gives the pool a connection whose response was read to its end
/// (`finished`), when the response lets the connection carry another request.
fn keep(pool: &Pool, route: Route, conn: BufReader<Stream>, head: &Head, finished: bool) {
    if finished && pool::keeps_alive(head) {
        pool.put(route, conn);
    }
}

fn status_error(head: &Head) -> Error {
    Error::Status {
        status: head.status,
        reason: escape::for_message(head.reason.as_bytes()),
    }
}

/// `delay * 2^n`, times a random factor in [0.5, 1.5) so that many clients
/// cut off together do not come back together.
fn backoff(delay: Duration, n: u32) -> Duration {
    let exponential = delay.saturating_mul(1u32 << n.min(20)).min(MAX_RETRY_WAIT);
    let random = RandomState::new().hash_one(n) as f64 / u64::MAX as f64;
    exponential.mul_f64(0.5 + random)
}

fn seconds_rounded(d: Duration) -> String {
    seconds(Duration::from_millis(d.as_millis() as u64))
}

/// Last-Modified as a time, when it is a valid HTTP-date.
fn last_modified(head: &Head) -> Option<SystemTime> {
    httpdate::parse_http_date(head.value("last-modified")?.trim()).ok()
}

/// Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// Only where RFC 9110 §10.2.3 gives it a meaning for a retry: a 503 or a
/// 429 (on a 200 whose body is cut it says nothing about when to come back).
/// A number too large for any clock is as good as the longest wait.
fn retry_after(head: &Head) -> Option<Duration> {
    if !matches!(head.status, 429 | 503) {
        return None;
    }
    let value = head.value("retry-after")?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Streams the body through one buffer into the sink, counting into `written`
/// as it goes (so a retry knows where the body stopped) and hashing what is
/// written.
fn copy_body(
    mut body: impl Read,
    dest: &mut Destination<'_>,
    written: &mut u64,
    hashes: &mut Hashes,
) -> Result<(), Error> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_read(e)),
        };
        if dest.guard_binary && buf[..n].contains(&0) {
            return Err(Error::Write {
                path: "stdout".into(),
                source: std::io::Error::other(
                    "the body is binary and stdout is a terminal \
                     (-o FILE saves it; -o - prints it anyway)",
                ),
            });
        }
        dest.sink.write(dest.stdout, &buf[..n])?;
        hashes.update(&buf[..n]);
        *written += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_io::head;

    #[test]
    fn a_whole_success_is_recognised_in_the_bytes_that_arrived() {
        let whole = |bytes: &[u8]| whole_success(bytes, false).is_some();
        assert!(whole(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
        // Bytes after it do not matter here (the pool does not keep such a
        // connection).
        assert!(whole(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef"));
        assert!(whole(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        ));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(whole_success(head, true).map(|(_, n)| n), Some(head.len()));
        // Not yet all there.
        assert!(!whole(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabc"));
        assert!(!whole(b"HTTP/1.1 200 OK\r\nContent-Len"));
        assert!(!whole(b""));
        // Framings whose end is not known from the head.
        assert!(!whole(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
        assert!(!whole(b"HTTP/1.1 200 OK\r\n\r\nuntil close"));
        // Answers that may lead to another request, or are errors.
        assert!(!whole(
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!whole(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"));
        assert!(!whole(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!whole(b"garbage\r\n\r\n"));
        assert!(!whole(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/9\r\nContent-Length: 3\r\n\r\nabc"
        ));
    }

    #[test]
    fn retry_after_forms() {
        let h = head("HTTP/1.1 503 Busy\nRetry-After: 7");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let h = head("HTTP/1.1 503 Busy\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let h = head("HTTP/1.1 503 Busy\nRetry-After: soon");
        assert_eq!(retry_after(&h), None);
        let h = head("HTTP/1.1 429 Slow down\nRetry-After: 99999999999999999999999");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(u64::MAX)));
        let h = head("HTTP/1.1 200 OK\nRetry-After: 5");
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(100);
        for n in 0..5 {
            let d = backoff(base, n);
            let nominal = base * (1 << n);
            assert!(d >= nominal / 2 && d < nominal * 3 / 2, "{n}: {d:?}");
        }
        assert!(backoff(Duration::from_secs(100), 30) <= MAX_RETRY_WAIT * 3 / 2);
    }
}
