//! Connecting: resolve within the connect timeout, race the addresses (RFC 8305
//! Happy Eyeballs), a socket that enforces `--read-timeout` and `--max-time`, and
//! the `Stream` (plain or TLS) that the request and response travel over.

use crate::config::IpVersion;
use crate::error::Error;
use crate::tls::TlsStream;
use crate::url::Host;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV6, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// RFC 8305 §5 "Connection Attempt Delay": the next address gets its chance after this.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The limits a connection works under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// When `--max-time` runs out, if given.
    pub deadline: Option<Instant>,
}

impl Limits {
    /// The instant connecting must be done by, and whether `--max-time` (rather
    /// than `--connect-timeout`) is what sets it.
    fn connect_deadline(&self, now: Instant) -> (Instant, bool) {
        let own = now + self.connect_timeout;
        match self.deadline {
            Some(d) if d < own => (d, true),
            _ => (own, false),
        }
    }

    fn connect_timed_out(&self, by_max_time: bool) -> Error {
        connect_timed_out(self.connect_timeout, by_max_time, None)
    }
}

/// The error for a connect phase that ran out of time; `step` says which part
/// of it (after the TCP connection) did not finish.
fn connect_timed_out(timeout: Duration, by_max_time: bool, step: Option<&str>) -> Error {
    if by_max_time {
        return max_time_error();
    }
    let after = step
        .map(|s| format!(": {s} did not finish"))
        .unwrap_or_default();
    Error::Timeout(format!(
        "no connection within {} (--connect-timeout){after}",
        seconds(timeout)
    ))
}

fn max_time_error() -> Error {
    Error::Timeout("the transfer took longer than --max-time allows".into())
}

/// "1.5 s", "30 s".
pub(crate) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Resolves `host`, keeps the addresses `ip` allows, and connects to the first
/// that answers. `trace` receives one line per step for `-v`.
///
/// The socket comes back still in its connect phase: until [`Socket::connected`]
/// its reads and writes share the one deadline of `--connect-timeout` (and
/// `--max-time`) with resolving and connecting, so that a proxy's CONNECT answer
/// and the TLS handshake count as connecting, as in curl.
pub fn connect(
    host: &Host,
    port: u16,
    ip: IpVersion,
    limits: &Limits,
    trace: &mut dyn FnMut(String),
) -> Result<Socket, Error> {
    let (until, by_max_time) = limits.connect_deadline(Instant::now());
    let addrs = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::ScopedIpv6(ip, zone) => vec![SocketAddr::V6(SocketAddrV6::new(*ip, port, 0, *zone))],
        Host::Name(name) => resolve(name, port, until)
            .map_err(|e| e.unwrap_or_else(|| limits.connect_timed_out(by_max_time)))?,
    };
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match ip {
            IpVersion::Any => true,
            IpVersion::V4 => a.is_ipv4(),
            IpVersion::V6 => a.is_ipv6(),
        })
        .collect();
    if addrs.is_empty() {
        let (family, flag) = if ip == IpVersion::V6 {
            ("IPv6", "-6")
        } else {
            ("IPv4", "-4")
        };
        return Err(Error::Resolve {
            host: host_name(host),
            why: format!("no {family} address ({flag} asks for {family} only)"),
        });
    }
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    trace(format!("Connecting to port {port} of {}", list.join(", ")));
    let tcp = race(&addrs, ATTEMPT_DELAY, until, |addr, until| {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        TcpStream::connect_timeout(&addr, left)
    })
    .map_err(|failure| match failure {
        RaceFailure::TimedOut => limits.connect_timed_out(by_max_time),
        RaceFailure::Failed(addr, source) => Error::Connect {
            addr: addr.to_string(),
            source,
        },
    })?;
    if let Ok(peer) = tcp.peer_addr() {
        trace(format!("Connected to {peer}"));
    }
    Ok(Socket::new(
        tcp,
        limits,
        ConnectPhase {
            until,
            by_max_time,
            timeout: limits.connect_timeout,
            step: None,
        },
    ))
}

fn host_name(host: &Host) -> String {
    match host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
        Host::ScopedIpv6(ip, zone) => format!("{ip}%{zone}"),
    }
}

/// Resolves on a helper thread so that a hung resolver costs at most the time
/// left until `until` (`None` as the error means the time ran out).
fn resolve(name: &str, port: u16, until: Instant) -> Result<Vec<SocketAddr>, Option<Error>> {
    let (tx, rx) = mpsc::channel();
    let owned = name.to_owned();
    let spawned = thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let result = (owned.as_str(), port)
                .to_socket_addrs()
                .map(|it| it.collect::<Vec<_>>());
            let _ = tx.send(result);
        });
    let failed = |why: String| {
        Some(Error::Resolve {
            host: name.to_owned(),
            why,
        })
    };
    if let Err(e) = spawned {
        return Err(failed(crate::error::plain(&e)));
    }
    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => {
            let why = crate::error::plain(&e);
            let why = why
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&why)
                .to_owned();
            Err(failed(why))
        }
        Err(_) => Err(None),
    }
}

/// Why no attempt of a race produced a connection.
#[derive(Debug)]
pub(crate) enum RaceFailure {
    /// `until` passed first.
    TimedOut,
    /// Every attempt failed; the last failure.
    Failed(SocketAddr, io::Error),
}

/// RFC 8305 §5: attempt `addrs` in order, starting the next one when the
/// previous has failed or after `delay`, whichever is first; the first success
/// wins and later ones are dropped. One address needs no thread.
pub(crate) fn race<T, F>(
    addrs: &[SocketAddr],
    delay: Duration,
    until: Instant,
    attempt: F,
) -> Result<T, RaceFailure>
where
    T: Send + 'static,
    F: Fn(SocketAddr, Instant) -> io::Result<T> + Send + Sync + Clone + 'static,
{
    if let [only] = addrs {
        return attempt(*only, until).map_err(|e| classify(*only, e));
    }
    let (tx, rx) = mpsc::channel::<(SocketAddr, io::Result<T>)>();
    let mut next = 0;
    let mut running = 0;
    let mut last_failure = RaceFailure::TimedOut;
    loop {
        if next < addrs.len() {
            let addr = addrs[next];
            let tx = tx.clone();
            let attempt = attempt.clone();
            // A thread that cannot be spawned is an attempt that failed.
            if let Err(e) = thread::Builder::new()
                .name("connect".into())
                .spawn(move || {
                    let _ = tx.send((addr, attempt(addr, until)));
                })
            {
                last_failure = RaceFailure::Failed(addr, e);
            } else {
                running += 1;
            }
            next += 1;
        }
        if running == 0 && next == addrs.len() {
            return Err(last_failure);
        }
        let now = Instant::now();
        if now >= until {
            return Err(RaceFailure::TimedOut);
        }
        let wait = if next < addrs.len() {
            delay.min(until - now)
        } else {
            until - now
        };
        match rx.recv_timeout(wait) {
            Ok((_, Ok(conn))) => return Ok(conn),
            Ok((addr, Err(e))) => {
                running -= 1;
                last_failure = classify(addr, e);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(last_failure),
        }
    }
}

fn classify(addr: SocketAddr, e: io::Error) -> RaceFailure {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => RaceFailure::TimedOut,
        _ => RaceFailure::Failed(addr, e),
    }
}

/// What a request and its response travel over.
pub enum Stream {
    Plain(Socket),
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP connection under the stream.
    pub fn socket(&self) -> &Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    pub fn socket_mut(&mut self) -> &mut Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The rest of the connect phase: what follows the TCP connection before the
/// request (a proxy's CONNECT answer, the TLS handshake) must be done by `until`.
#[derive(Debug, Clone, Copy)]
struct ConnectPhase {
    until: Instant,
    /// Whether `--max-time` (rather than `--connect-timeout`) set `until`.
    by_max_time: bool,
    timeout: Duration,
    /// What is under way, for the timeout's message.
    step: Option<&'static str>,
}

/// A connected socket whose reads give up after `--read-timeout` of silence or
/// when `--max-time` runs out, with an error that says which. While it is in
/// its connect phase, the connect deadline is its only limit.
#[derive(Debug)]
pub struct Socket {
    tcp: TcpStream,
    read_timeout: Duration,
    deadline: Option<Instant>,
    connecting: Option<ConnectPhase>,
    /// The timeout currently set on the socket, to avoid a syscall per read.
    armed: Option<Duration>,
    /// The write timeout currently set (a kept connection keeps it).
    write_armed: Option<Duration>,
    /// Silence already waited out elsewhere (by a batch's poll), which the
    /// next read counts against `--read-timeout`.
    waited: Duration,
}

impl Socket {
    fn new(tcp: TcpStream, limits: &Limits, connecting: ConnectPhase) -> Socket {
        Socket {
            tcp,
            read_timeout: limits.read_timeout,
            deadline: limits.deadline,
            connecting: Some(connecting),
            armed: None,
            write_armed: None,
            waited: Duration::ZERO,
        }
    }

    /// Sets the limits of the transfer that uses the connection (a kept-alive
    /// one serves several).
    pub fn renew(&mut self, limits: &Limits) {
        self.read_timeout = limits.read_timeout;
        self.deadline = limits.deadline;
    }

    /// Names what the connect phase is doing now, for its timeout's message.
    pub fn connect_step(&mut self, step: &'static str) {
        if let Some(phase) = &mut self.connecting {
            phase.step = Some(step);
        }
    }

    /// Counts `waited`, silence of the peer waited out already, against
    /// `--read-timeout` for the next read: it waits only what is left.
    pub fn count_silence(&mut self, waited: Duration) {
        self.waited = waited;
    }

    /// Ends the connect phase: from now on `--read-timeout` (and `--max-time`)
    /// limit the socket.
    pub fn connected(&mut self) {
        self.connecting = None;
    }

    /// Whether a read would return at once (data, the peer's close, an error):
    /// for an idle connection, a sign that it cannot carry another request.
    pub fn has_input(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.tcp.as_fd(), PollFlags::POLLIN)];
        !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }

    /// The time this read may wait, and whether `--max-time` limits it.
    fn left(&self) -> io::Result<(Duration, bool)> {
        if let Some(phase) = &self.connecting {
            let left = phase.until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(phase.by_max_time));
            }
            return Ok((left, phase.by_max_time));
        }
        let quiet = self.read_timeout.saturating_sub(self.waited);
        match self.deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(max_time_error().into_io())
                } else if left < quiet {
                    Ok((left, true))
                } else if quiet.is_zero() {
                    Err(self.timed_out(false))
                } else {
                    Ok((quiet, false))
                }
            }
            None if quiet.is_zero() => Err(self.timed_out(false)),
            None => Ok((quiet, false)),
        }
    }

    fn timed_out(&self, by_max_time: bool) -> io::Error {
        if let Some(phase) = &self.connecting {
            connect_timed_out(phase.timeout, by_max_time, phase.step).into_io()
        } else if by_max_time {
            max_time_error().into_io()
        } else {
            Error::Timeout(format!(
                "no data for {} (--read-timeout)",
                seconds(self.read_timeout)
            ))
            .into_io()
        }
    }
}

impl std::os::fd::AsFd for Socket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.tcp.as_fd()
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Socket {
    /// Moves up to `len` bytes of what the socket receives into `pipe`
    /// (splice(2)), under the same read timeouts as `read`. One call moves
    /// what has arrived and fits, so the caller drains the pipe in between.
    pub fn splice_into(&mut self, pipe: &std::io::PipeWriter, len: usize) -> io::Result<usize> {
        use nix::fcntl::{SpliceFFlags, splice};
        let (wait, by_max_time) = self.left()?;
        self.waited = Duration::ZERO;
        if needs_arming(self.armed, wait) {
            self.tcp.set_read_timeout(Some(wait))?;
            self.armed = Some(wait);
        }
        loop {
            match splice(
                &self.tcp,
                None,
                pipe,
                None,
                len,
                SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => {
                    let e = io::Error::from(errno);
                    return Err(if is_timeout(&e) {
                        self.timed_out(by_max_time)
                    } else {
                        e
                    });
                }
            }
        }
    }
}

/// How far past what the limits leave a timeout set earlier may reach before
/// it is set again: against a deadline (`--max-time`, the connect phase) the
/// time left shrinks with every read, and a system call per read to follow it
/// would cost more than the read.
const ARM_SLACK: Duration = Duration::from_millis(10);

/// Whether a socket timeout now `armed` must be set to `wait`: it may not be
/// shorter (it would fire before the limit) nor longer by more than `ARM_SLACK`.
fn needs_arming(armed: Option<Duration>, wait: Duration) -> bool {
    armed.is_none_or(|armed| armed < wait || armed > wait + ARM_SLACK)
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (wait, by_max_time) = self.left()?;
        self.waited = Duration::ZERO;
        if needs_arming(self.armed, wait) {
            self.tcp.set_read_timeout(Some(wait))?;
            self.armed = Some(wait);
        }
        self.tcp.read(buf).map_err(|e| {
            if is_timeout(&e) {
                self.timed_out(by_max_time)
            } else {
                e
            }
        })
    }
}

/// Writes have the limits of reads: a server that never reads our request
/// cannot hang us either.
impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (wait, by_max_time) = self.left()?;
        if needs_arming(self.write_armed, wait) {
            self.tcp.set_write_timeout(Some(wait))?;
            self.write_armed = Some(wait);
        }
        self.tcp.write(buf).map_err(|e| {
            if is_timeout(&e) {
                self.timed_out(by_max_time)
            } else {
                e
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn timeouts_are_set_again_only_when_they_must_be() {
        let ms = Duration::from_millis;
        assert!(needs_arming(None, ms(100)));
        assert!(!needs_arming(Some(ms(100)), ms(100)));
        // A deadline coming closer: the old timeout may reach a little past it.
        assert!(!needs_arming(Some(ms(100)), ms(95)));
        assert!(needs_arming(Some(ms(100)), ms(80)));
        // Shorter than the limits allow would fire early.
        assert!(needs_arming(Some(ms(100)), ms(101)));
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A connected socket past its connect phase, and the peer's end.
    fn connected(read_timeout: Duration, deadline: Option<Instant>) -> (Socket, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        let limits = Limits {
            connect_timeout: Duration::from_secs(5),
            read_timeout,
            deadline,
        };
        let phase = ConnectPhase {
            until: Instant::now(),
            by_max_time: false,
            timeout: limits.connect_timeout,
            step: None,
        };
        let mut socket = Socket::new(tcp, &limits, phase);
        socket.connected();
        (socket, peer)
    }

    #[test]
    fn silence_waited_out_elsewhere_counts_once_against_the_read_timeout() {
        let minute = Duration::from_secs(60);
        let (mut socket, mut peer) = connected(minute, None);
        socket.count_silence(Duration::from_secs(45));
        assert_eq!(socket.left().unwrap(), (Duration::from_secs(15), false));
        peer.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(socket.read(&mut byte).unwrap(), 1);
        // The next read has the whole timeout again.
        assert_eq!(socket.left().unwrap(), (minute, false));
        // All of it waited out: the read fails at once, naming the limit.
        socket.count_silence(minute);
        let e = socket.read(&mut byte).unwrap_err();
        assert!(e.to_string().contains("--read-timeout"), "{e}");
        // --max-time, when it ends first, still says so.
        let (mut socket, _peer) = connected(minute, Some(Instant::now() + minute / 2));
        socket.count_silence(Duration::from_secs(10));
        let (left, by_max_time) = socket.left().unwrap();
        assert!(by_max_time && left <= minute / 2, "{left:?}");
    }

    #[test]
    fn a_hanging_first_address_does_not_block_the_second() {
        // The first attempt waits until the test ends (bounded by `until`);
        // the second answers at once.
        let until = Instant::now() + Duration::from_secs(20);
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let got = race(
            &[addr(1), addr(2)],
            Duration::from_millis(10),
            until,
            move |a, until| {
                if a.port() == 1 {
                    let _ = hold.lock().unwrap().recv_timeout(until - Instant::now());
                    Err(io::ErrorKind::TimedOut.into())
                } else {
                    Ok(a.port())
                }
            },
        );
        drop(release);
        assert_eq!(got.unwrap(), 2);
    }

    #[test]
    fn a_refused_address_moves_on_without_waiting_for_the_delay() {
        // With a delay far longer than the deadline, only failing fast can reach
        // the third address before time runs out.
        let until = Instant::now() + Duration::from_secs(20);
        let got = race(
            &[addr(1), addr(2), addr(3)],
            Duration::from_secs(3600),
            until,
            |a, _| {
                if a.port() == 3 {
                    Ok(a.port())
                } else {
                    Err(io::ErrorKind::ConnectionRefused.into())
                }
            },
        );
        assert_eq!(got.unwrap(), 3);
    }

    #[test]
    fn all_failing_reports_the_last_failure() {
        let until = Instant::now() + Duration::from_secs(20);
        let got = race(
            &[addr(1), addr(2)],
            Duration::from_secs(3600),
            until,
            |_, _| Err::<(), _>(io::ErrorKind::ConnectionRefused.into()),
        );
        assert!(matches!(got, Err(RaceFailure::Failed(a, _)) if a.port() == 2));
    }

    #[test]
    fn nothing_answering_times_out() {
        let until = Instant::now() + Duration::from_millis(50);
        let got = race(
            &[addr(1), addr(2)],
            Duration::from_millis(10),
            until,
            |_, until| {
                thread::sleep(until.saturating_duration_since(Instant::now()));
                Err::<(), _>(io::ErrorKind::TimedOut.into())
            },
        );
        assert!(matches!(got, Err(RaceFailure::TimedOut)));
    }
}
