//! A floor for BENCHMARKS.md's row 6: fetch's batch work per file with nothing
//! else. One thread polls N kept-alive connections, as fetch's dispatcher does
//! (and curl -Z's event loop); per file it does what fetch does: look FILE and
//! FILE.part up, open an anonymous file (O_TMPFILE) in DIR, send the GET, write
//! the body, link the file in as FILE. No TLS, no redirects, no chunked bodies,
//! no retries, no checks: Content-Length responses from one server only. What
//! it shows is how close fetch comes to the work it cannot avoid.
//!
//! Usage: rawbatch HOST:PORT LIST DIR [N]
//!
//!   LIST  one URL a line (`http://HOST:PORT/path`; only the path is used)
//!   DIR   an existing directory; each file is named after its path's last
//!         segment
//!   N     connections, default 8
//!
//! Exit 0 when every body arrived whole, 1 with a message otherwise.
//! Build: rustc --edition 2021 -O bench/rawbatch.rs

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::exit;

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

extern "C" {
    fn poll(fds: *mut PollFd, nfds: u64, timeout: i32) -> i32;
    fn linkat(olddirfd: i32, old: *const i8, newdirfd: i32, new: *const i8, flags: i32) -> i32;
}

const POLLIN: i16 = 1;
const O_TMPFILE: i32 = 0o20200000;
const AT_FDCWD: i32 = -100;
const AT_SYMLINK_FOLLOW: i32 = 0x400;
const BUF: usize = 64 * 1024;

fn fail(what: &str) -> ! {
    eprintln!("rawbatch: {what}");
    exit(1)
}

/// One file on its way.
struct Job {
    dest: String,
    file: File,
    /// The body's length, once the head is read.
    length: Option<usize>,
    written: usize,
}

/// One kept-alive connection and what it is fetching.
struct Slot {
    sock: TcpStream,
    /// Bytes read and not yet used (a head not yet complete).
    pending: Vec<u8>,
    job: Option<Job>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        fail("usage: rawbatch HOST:PORT LIST DIR [N]");
    }
    let addr = &args[1];
    let dir = &args[3];
    let n: usize = args.get(4).map_or(8, |s| s.parse().unwrap_or_else(|_| fail("bad N")));
    let list = fs::read_to_string(&args[2]).unwrap_or_else(|e| fail(&format!("{}: {e}", args[2])));
    let mut paths: VecDeque<String> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.find("://") {
            Some(i) => l[i + 3..].find('/').map_or("/".to_owned(), |j| l[i + 3 + j..].to_owned()),
            None => l.to_owned(),
        })
        .collect();
    let host = addr.clone();
    let mut slots: Vec<Slot> = Vec::new();
    let mut buf = vec![0u8; BUF];
    let mut done = 0usize;
    let total = paths.len();
    while done < total {
        // Give every idle connection the next path (connecting when needed).
        while slots.iter().filter(|s| s.job.is_some()).count() < n && !paths.is_empty() {
            let idle = slots.iter().position(|s| s.job.is_none());
            let i = match idle {
                Some(i) => i,
                None => {
                    let sock = TcpStream::connect(addr.as_str())
                        .unwrap_or_else(|e| fail(&format!("connect {addr}: {e}")));
                    sock.set_nonblocking(true).unwrap();
                    slots.push(Slot { sock, pending: Vec::new(), job: None });
                    slots.len() - 1
                }
            };
            let path = paths.pop_front().unwrap();
            start(&mut slots[i], &host, &path, dir);
        }
        let mut fds: Vec<PollFd> = slots
            .iter()
            .map(|s| PollFd {
                fd: if s.job.is_some() { s.sock.as_raw_fd() } else { -1 },
                events: POLLIN,
                revents: 0,
            })
            .collect();
        let ready = unsafe { poll(fds.as_mut_ptr(), fds.len() as u64, 10_000) };
        if ready <= 0 {
            fail("no progress for 10 s");
        }
        for (slot, fd) in slots.iter_mut().zip(&fds) {
            if fd.revents != 0 && advance(slot, &mut buf) {
                done += 1;
            }
        }
    }
}

/// The file work first (as fetch does: a bad path fails before the request),
/// then the request.
fn start(slot: &mut Slot, host: &str, path: &str, dir: &str) {
    let name = path.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("index.html");
    let dest = format!("{dir}/{name}");
    let part = format!("{dest}.part");
    if fs::metadata(&dest).is_ok() || fs::symlink_metadata(&part).is_ok() {
        fail(&format!("{dest} or {part} exists (give rawbatch an empty DIR)"));
    }
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(O_TMPFILE)
        .mode(0o666)
        .open(dir)
        .unwrap_or_else(|e| fail(&format!("O_TMPFILE in {dir}: {e}")));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rawbatch\r\nAccept: */*\r\n\r\n"
    );
    // A request this small goes out whole on an idle connection.
    slot.sock
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| fail(&format!("send: {e}")));
    slot.job = Some(Job { dest, file, length: None, written: 0 });
}

/// Reads what the connection has; true when that finished its file.
fn advance(slot: &mut Slot, buf: &mut [u8]) -> bool {
    loop {
        let n = match slot.sock.read(buf) {
            Ok(0) => fail("the server closed a kept connection"),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => fail(&format!("recv: {e}")),
        };
        let job = slot.job.as_mut().unwrap_or_else(|| fail("bytes on an idle connection"));
        let mut body: &[u8] = &buf[..n];
        if job.length.is_none() {
            slot.pending.extend_from_slice(body);
            let Some(end) = slot.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&slot.pending[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                fail(&format!("{}: {}", job.dest, head.lines().next().unwrap_or("")));
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| fail("no Content-Length"));
            job.length = Some(length);
            let rest = slot.pending.split_off(end + 4);
            slot.pending.clear();
            job.file.write_all(&rest).unwrap_or_else(|e| fail(&format!("write: {e}")));
            job.written += rest.len();
            body = &[];
        }
        job.file.write_all(body).unwrap_or_else(|e| fail(&format!("write: {e}")));
        job.written += body.len();
        let length = job.length.unwrap();
        if job.written > length {
            fail(&format!("{}: more bytes than Content-Length", job.dest));
        }
        if job.written == length {
            let job = slot.job.take().unwrap();
            let from = CString::new(format!("/proc/self/fd/{}", job.file.as_raw_fd())).unwrap();
            let to = CString::new(job.dest.clone()).unwrap();
            let linked = unsafe {
                linkat(AT_FDCWD, from.as_ptr(), AT_FDCWD, to.as_ptr(), AT_SYMLINK_FOLLOW)
            };
            if linked != 0 {
                fail(&format!("link {}: {}", job.dest, std::io::Error::last_os_error()));
            }
            return true;
        }
    }
}
