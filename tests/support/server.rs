//! The project's test server: a thread-per-connection `TcpListener` on a free
//! loopback port that answers each request with a script of raw steps (any
//! framing, any breakage, pauses in the middle) and records what it received.

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use socket2::SockRef;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest a connection thread waits for a request or for the client to close.
const PATIENCE: Duration = Duration::from_secs(30);
/// Largest request head the server accepts.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// One thing the server does on a connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write these bytes one `write` call each, so the client sees tiny reads.
    Dribble(Vec<u8>),
    /// Write `len` bytes of [`pattern`] starting at `from`, in large blocks.
    Pattern { from: u64, len: u64 },
    /// Write `len` bytes of [`pattern`] as chunks of `chunk` bytes, then the last chunk.
    ChunkedPattern { len: u64, chunk: usize },
    /// Write `bytes` `times` times over (`u64::MAX`: until the client goes
    /// away), in large writes, without building the whole stream in memory.
    Repeat { bytes: Vec<u8>, times: u64 },
    /// Wait this long (to exercise timeouts, never to synchronise).
    Pause(Duration),
    /// Tell the test (through [`Server::reached`]) that the script got here.
    Signal,
    /// Wait until the test opens this gate (or `PATIENCE` runs out): lets the
    /// test do something between two steps, without sleeping.
    WaitFor(Gate),
    /// Wait until the client closes its end (or `PATIENCE` runs out).
    AwaitClose,
    /// Read (and drop) at least this many bytes from the client, such as its
    /// TLS ClientHello: what follows then happens in the middle of the
    /// handshake, not while the client may still be connecting.
    AwaitBytes(usize),
    /// Abort the connection with a TCP RST instead of a clean close.
    Reset,
    /// End the connection without a TLS close_notify (a plain close for http).
    EndWithoutNotify,
    /// Keep the connection open after the script and answer the next request
    /// on it (the script runs again for that request).
    KeepOpen,
}

/// A gate a script waits at ([`Step::WaitFor`]) until the test opens it.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every script waiting at this gate (now or later) go on.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }

    /// Waits until the gate is open; false if `patience` ran out first.
    fn wait(&self, patience: Duration) -> bool {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, patience, |open| !*open)
            .unwrap();
        *guard
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request head, exactly as received.
    pub raw: String,
    /// Which connection it came on: 0 for the server's first, and so on.
    pub connection: usize,
    /// Its place on that connection: 0 for the first request.
    pub nth: usize,
}

impl Recorded {
    pub fn request_line(&self) -> &str {
        self.raw.lines().next().unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.request_line().split(' ').next().unwrap_or("")
    }

    pub fn target(&self) -> &str {
        self.request_line().split(' ').nth(1).unwrap_or("")
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All fields in order.
    pub fn fields(&self) -> Vec<(&str, &str)> {
        self.raw
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n, v.trim()))
            .collect()
    }
}

type Script = dyn Fn(&Recorded) -> Vec<Step> + Send + Sync;
type Prelude = dyn Fn(usize) -> Vec<Step> + Send + Sync;

/// A running test server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    requests: Arc<Mutex<Vec<Recorded>>>,
    signals: Mutex<mpsc::Receiver<()>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `script(request)` to every connection, on 127.0.0.1.
    pub fn start(script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static) -> Server {
        Server::start_on("127.0.0.1:0", script)
    }

    /// Serves the same steps to every connection.
    pub fn steps(steps: Vec<Step>) -> Server {
        Server::start(move |_| steps.clone())
    }

    /// Sends these bytes to every connection, then closes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Server {
        Server::steps(vec![Step::Send(bytes.into())])
    }

    /// A 200 response with this body and its Content-Length.
    pub fn body(body: impl Into<Vec<u8>>) -> Server {
        Server::bytes(ok(&body.into()))
    }

    /// A response with this status, this body and its Content-Length.
    pub fn body_with_status(status: &str, body: &[u8]) -> Server {
        Server::bytes(response(status, &[], body))
    }

    pub fn start_on(
        bind: &str,
        script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        Server::start_inner(bind, None, script)
    }

    /// Serves https on 127.0.0.1 with this TLS configuration.
    pub fn start_tls(
        tls: Arc<ServerConfig>,
        script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        Server::start_inner("127.0.0.1:0", Some(tls), script)
    }

    /// Serves https like [`Server::start_tls`], but first plays
    /// `before_tls(connection number)` on the bare TCP connection, before the
    /// TLS handshake: a server that stays silent ([`Step::AwaitClose`]),
    /// resets ([`Step::Reset`]) or closes ([`Step::EndWithoutNotify`]) in the
    /// middle of the handshake. An empty prelude goes straight to TLS.
    pub fn start_tls_with_prelude(
        tls: Arc<ServerConfig>,
        before_tls: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static,
        script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        Server::start_full("127.0.0.1:0", Some(tls), Arc::new(before_tls), script)
    }

    fn start_inner(
        bind: &str,
        tls: Option<Arc<ServerConfig>>,
        script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        Server::start_full(bind, tls, Arc::new(|_| Vec::new()), script)
    }

    fn start_full(
        bind: &str,
        tls: Option<Arc<ServerConfig>>,
        before_tls: Arc<Prelude>,
        script: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static,
    ) -> Server {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind(bind).expect("bind the test server");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (signal_tx, signal_rx) = mpsc::channel();
        let script: Arc<Script> = Arc::new(script);
        let acceptor = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for (serial, conn) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = conn else { continue };
                    let tls = tls.clone();
                    let before_tls = Arc::clone(&before_tls);
                    let script = Arc::clone(&script);
                    let requests = Arc::clone(&requests);
                    let signal_tx = signal_tx.clone();
                    thread::spawn(move || {
                        let conn = match &tls {
                            None => Conn::Plain(tcp),
                            Some(config) => {
                                let mut bare = Conn::Plain(tcp);
                                for step in before_tls(serial) {
                                    if !matches!(
                                        play(&mut bare, step, &signal_tx),
                                        Played::Next | Played::KeepOpen
                                    ) {
                                        return;
                                    }
                                }
                                let Conn::Plain(tcp) = bare else { return };
                                match ServerConnection::new(Arc::clone(config)) {
                                    Ok(session) => {
                                        Conn::Tls(Box::new(StreamOwned::new(session, tcp)))
                                    }
                                    Err(_) => return,
                                }
                            }
                        };
                        serve(conn, serial, &*script, &requests, &signal_tx)
                    });
                }
            })
        };
        Server {
            addr,
            scheme,
            requests,
            signals: Mutex::new(signal_rx),
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>` (https for a TLS server).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The URL with `localhost` as the host (what test certificates are for).
    pub fn localhost_url(&self, path: &str) -> String {
        format!("{}://localhost:{}{path}", self.scheme, self.addr.port())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The only request received; panics unless there was exactly one.
    pub fn request(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected one request, got {all:#?}");
        all.into_iter().next().unwrap()
    }

    /// Blocks until a connection reaches a [`Step::Signal`] (at most `PATIENCE`).
    pub fn reached(&self) {
        self.signals
            .lock()
            .unwrap()
            .recv_timeout(PATIENCE)
            .expect("the server script never reached its Signal step");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// A connection, plain or TLS, and the socket under it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => &tls.sock,
        }
    }

    /// Ends the connection cleanly: close_notify for TLS, then FIN.
    fn end(&mut self, notify: bool) {
        if let (Conn::Tls(tls), true) = (&mut *self, notify) {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn serve(
    mut conn: Conn,
    serial: usize,
    script: &Script,
    requests: &Mutex<Vec<Recorded>>,
    signal: &mpsc::Sender<()>,
) {
    let _ = conn.tcp().set_read_timeout(Some(PATIENCE));
    let _ = conn.tcp().set_write_timeout(Some(PATIENCE));
    let _ = conn.tcp().set_nodelay(true);
    let mut unread = Vec::new();
    for nth in 0.. {
        let raw = match read_request(&mut conn, &mut unread) {
            Some(Ok(raw)) => raw,
            Some(Err(())) => {
                // What real servers do with a TLS ClientHello on a plain port.
                let _ = conn.write_all(&response("400 Bad Request", &["Connection: close"], b""));
                conn.end(true);
                return;
            }
            None => return,
        };
        let request = Recorded {
            raw,
            connection: serial,
            nth,
        };
        requests.lock().unwrap().push(request.clone());
        let mut keep_open = false;
        for step in script(&request) {
            match play(&mut conn, step, signal) {
                Played::Next => {}
                Played::KeepOpen => keep_open = true,
                Played::Stop => return,
            }
        }
        if !keep_open {
            break;
        }
    }
    conn.end(true);
}

/// What the script does after a step.
enum Played {
    Next,
    KeepOpen,
    /// The connection ended (or failed): stop here.
    Stop,
}

/// Plays one step on `conn`.
fn play(conn: &mut Conn, step: Step, signal: &mpsc::Sender<()>) -> Played {
    let ok = match step {
        Step::Send(bytes) => conn.write_all(&bytes).and_then(|()| conn.flush()).is_ok(),
        Step::Dribble(bytes) => bytes
            .iter()
            .all(|b| conn.write_all(&[*b]).and_then(|()| conn.flush()).is_ok()),
        Step::Pattern { from, len } => write_pattern(conn, from, len),
        Step::ChunkedPattern { len, chunk } => write_chunked_pattern(conn, len, chunk),
        Step::Repeat { bytes, times } => write_repeated(conn, &bytes, times),
        Step::Pause(d) => {
            thread::sleep(d);
            true
        }
        Step::Signal => signal.send(()).is_ok(),
        Step::WaitFor(gate) => gate.wait(PATIENCE),
        Step::AwaitClose => {
            let until = Instant::now() + PATIENCE;
            let mut sink = [0u8; 1024];
            while Instant::now() < until {
                match conn.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            true
        }
        Step::AwaitBytes(n) => {
            let until = Instant::now() + PATIENCE;
            let (mut got, mut sink) = (0, [0u8; 1024]);
            while got < n && Instant::now() < until {
                match conn.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got += k,
                }
            }
            got >= n
        }
        Step::Reset => {
            let _ = SockRef::from(conn.tcp()).set_linger(Some(Duration::ZERO));
            return Played::Stop;
        }
        Step::EndWithoutNotify => {
            conn.end(false);
            return Played::Stop;
        }
        Step::KeepOpen => return Played::KeepOpen,
    };
    if ok { Played::Next } else { Played::Stop }
}

/// The next request head (bytes after it stay in `unread` for the next
/// call); `Some(Err(()))` for bytes that cannot start an HTTP request, `None`
/// when the client went away first.
fn read_request(conn: &mut impl Read, unread: &mut Vec<u8>) -> Option<Result<String, ()>> {
    let mut raw = std::mem::take(unread);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            *unread = raw.split_off(end + 4);
            return Some(Ok(String::from_utf8_lossy(&raw).into_owned()));
        }
        if raw.len() > MAX_REQUEST_HEAD {
            return None;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if !raw[0].is_ascii_uppercase() {
            return Some(Err(()));
        }
    }
}

/// The byte at `offset` of the endless test pattern (period 251, a prime, so
/// shifted or repeated blocks never line up by accident).
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `len` bytes of the pattern from `from`.
pub fn pattern(from: u64, len: u64) -> Vec<u8> {
    (from..from + len).map(pattern_byte).collect()
}

fn write_pattern(conn: &mut impl Write, from: u64, len: u64) -> bool {
    const BLOCK: u64 = 251 * 1024;
    let block = pattern(0, BLOCK + 251);
    let mut at = from;
    let end = from + len;
    while at < end {
        let n = (end - at).min(BLOCK);
        let start = (at % 251) as usize;
        if conn.write_all(&block[start..start + n as usize]).is_err() {
            return false;
        }
        at += n;
    }
    conn.flush().is_ok()
}

fn write_repeated(conn: &mut impl Write, bytes: &[u8], times: u64) -> bool {
    if bytes.is_empty() {
        return true;
    }
    // Batch small pieces into writes of about 64 KiB.
    let per_write = (64 * 1024 / bytes.len()).max(1) as u64;
    let batch = bytes.repeat(per_write as usize);
    let mut left = times;
    while left > 0 {
        let n = left.min(per_write);
        if conn.write_all(&batch[..n as usize * bytes.len()]).is_err() {
            return false;
        }
        left -= n;
    }
    conn.flush().is_ok()
}

fn write_chunked_pattern(conn: &mut impl Write, len: u64, chunk: usize) -> bool {
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(chunk as u64);
        let mut frame = format!("{n:x}\r\n").into_bytes();
        frame.extend(pattern(at, n));
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).is_err() {
            return false;
        }
        at += n;
    }
    conn.write_all(b"0\r\n\r\n")
        .and_then(|()| conn.flush())
        .is_ok()
}

/// A complete `200 OK` response with Content-Length.
pub fn ok(body: &[u8]) -> Vec<u8> {
    response("200 OK", &[], body)
}

/// A response with this status, extra fields, Content-Length and body.
pub fn response(status: &str, fields: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for f in fields {
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).bytes());
    out.extend_from_slice(body);
    out
}

/// A head followed by raw body bytes, framing left to the caller.
pub fn raw(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// A resource served the way a static file server serves a file (RFC 9110):
/// HEAD, `Range: bytes=N-` / `N-M` with If-Range, If-Modified-Since.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<std::time::SystemTime>,
    /// Whether ranges are honoured (and `Accept-Ranges: bytes` sent).
    pub ranges: bool,
}

impl Resource {
    /// A resource with a strong ETag, a Last-Modified date, and ranges.
    pub fn new(body: impl Into<Vec<u8>>, etag: &str) -> Resource {
        Resource {
            body: body.into(),
            etag: Some(format!("\"{etag}\"")),
            last_modified: Some(std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000)),
            ranges: true,
        }
    }

    fn date(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }

    /// The steps that answer `req` for this resource; `cut_at` (a body offset)
    /// ends the connection there with a reset, to simulate a cut download.
    pub fn answer(&self, req: &Recorded, cut_at: Option<u64>) -> Vec<Step> {
        let len = self.body.len() as u64;
        let mut fields = vec![];
        if let Some(etag) = &self.etag {
            fields.push(format!("ETag: {etag}"));
        }
        if let Some(date) = self.date() {
            fields.push(format!("Last-Modified: {date}"));
        }
        if self.ranges {
            fields.push("Accept-Ranges: bytes".into());
        }
        if let (Some(since), Some(modified)) = (req.field("If-Modified-Since"), self.last_modified)
            && httpdate::parse_http_date(since).is_ok_and(|since| modified <= since)
        {
            return vec![Step::Send(head("304 Not Modified", &fields, None))];
        }
        let mut status = "200 OK";
        let mut range = 0..len;
        if let Some(spec) = req.field("Range").filter(|_| self.ranges)
            && self.if_range_holds(req.field("If-Range"))
        {
            let (first, last) = parse_range(spec).expect("a range the test server understands");
            if first >= len {
                fields.push(format!("Content-Range: bytes */{len}"));
                return vec![Step::Send(head(
                    "416 Range Not Satisfiable",
                    &fields,
                    Some(0),
                ))];
            }
            let last = last.unwrap_or(len - 1).min(len - 1);
            status = "206 Partial Content";
            fields.push(format!("Content-Range: bytes {first}-{last}/{len}"));
            range = first..last + 1;
        }
        let body = &self.body[range.start as usize..range.end as usize];
        let mut steps = vec![Step::Send(head(status, &fields, Some(body.len() as u64)))];
        if req.method() == "HEAD" {
            return steps;
        }
        match cut_at.map(|c| c.saturating_sub(range.start) as usize) {
            Some(cut) if cut < body.len() => {
                steps.push(Step::Send(body[..cut].to_vec()));
                steps.push(Step::Reset);
            }
            _ => steps.push(Step::Send(body.to_vec())),
        }
        steps
    }

    /// If-Range holds when it names the current strong ETag or exact date.
    fn if_range_holds(&self, if_range: Option<&str>) -> bool {
        match if_range {
            None => true,
            Some(v) if v.starts_with('"') => self.etag.as_deref() == Some(v),
            Some(v) => self.date().as_deref() == Some(v),
        }
    }
}

/// `bytes=N-` or `bytes=N-M`.
fn parse_range(spec: &str) -> Option<(u64, Option<u64>)> {
    let (first, last) = spec.strip_prefix("bytes=")?.split_once('-')?;
    let last = if last.is_empty() {
        None
    } else {
        Some(last.parse().ok()?)
    };
    Some((first.parse().ok()?, last))
}

/// A head with these fields and, if given, a Content-Length.
fn head(status: &str, fields: &[String], length: Option<u64>) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for f in fields {
        out.push_str(f);
        out.push_str("\r\n");
    }
    if let Some(n) = length {
        out.push_str(&format!("Content-Length: {n}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}
