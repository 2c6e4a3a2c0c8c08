//! The floor of an HTTP/1.1 download on this machine, for bench/compare.sh: connect,
//! send one GET, read the response with a plain 64 KiB read loop into nothing.
//! No parsing beyond finding the end of the head, no framing, no output: what is
//! left is the cost of the kernel handing the bytes over.
//!
//! Usage: rawread [--splice] HOST:PORT PATH [OUT]
//!
//!   --splice  after the head, move the body socket -> pipe -> /dev/null with
//!             splice(2) instead of reading it (the path fetch takes for
//!             `-o /dev/null` on Linux): the floor of a zero-copy client.
//!   OUT       write the body there (for checking the bytes; never when timing).
//!
//! The body must be exactly Content-Length bytes when the response has one; the
//! server is expected to close after the response (the request says
//! `Connection: close`). Exit 0 on success, 1 with a message otherwise.
//! Build: rustc --edition 2021 -O bench/rawread.rs

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::exit;

const BUF: usize = 64 * 1024;
const PIPE_BYTES: usize = 1 << 20;

extern "C" {
    fn pipe(fds: *mut i32) -> i32;
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn splice(
        fd_in: i32,
        off_in: *mut i64,
        fd_out: i32,
        off_out: *mut i64,
        len: usize,
        flags: u32,
    ) -> isize;
}
const F_SETPIPE_SZ: i32 = 1031;
const SPLICE_F_MOVE: u32 = 1;

fn die(msg: &str) -> ! {
    eprintln!("rawread: {msg}");
    exit(1)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let use_splice = args.first().is_some_and(|a| a == "--splice");
    if use_splice {
        args.remove(0);
    }
    if args.len() < 2 || args.len() > 3 {
        die("usage: rawread [--splice] HOST:PORT PATH [OUT]");
    }
    let (addr, path) = (&args[0], &args[1]);
    let mut out = args
        .get(2)
        .map(|p| File::create(p).unwrap_or_else(|e| die(&format!("{p}: {e}"))));
    if use_splice && out.is_some() {
        die("--splice writes to /dev/null only");
    }

    let mut sock =
        TcpStream::connect(addr.as_str()).unwrap_or_else(|e| die(&format!("{addr}: {e}")));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    sock.write_all(request.as_bytes())
        .unwrap_or_else(|e| die(&format!("send: {e}")));

    // Read until the end of the head; what follows it in the buffer is body.
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let head_end = loop {
        if filled == buf.len() {
            die("head longer than 64 KiB");
        }
        let n = sock
            .read(&mut buf[filled..])
            .unwrap_or_else(|e| die(&format!("read: {e}")));
        if n == 0 {
            die("connection closed inside the head");
        }
        filled += n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
        die(&format!("not a 200: {}", head.lines().next().unwrap_or("")));
    }
    let length: Option<u64> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| die("bad Content-Length"))
        });

    let mut body = (filled - head_end) as u64;
    if let Some(f) = out.as_mut() {
        f.write_all(&buf[head_end..filled])
            .unwrap_or_else(|e| die(&format!("write: {e}")));
    }
    if use_splice {
        body += splice_rest(&sock);
    } else {
        loop {
            let n = match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => die(&format!("read: {e}")),
            };
            if let Some(f) = out.as_mut() {
                f.write_all(&buf[..n])
                    .unwrap_or_else(|e| die(&format!("write: {e}")));
            }
            body += n as u64;
        }
    }
    if let Some(want) = length {
        if body != want {
            die(&format!(
                "got {body} body bytes, Content-Length says {want}"
            ));
        }
    }
}

/// Moves everything left on the socket to /dev/null through a pipe; returns the byte count.
fn splice_rest(sock: &TcpStream) -> u64 {
    let null = File::create("/dev/null").unwrap_or_else(|e| die(&format!("/dev/null: {e}")));
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
        die("pipe failed");
    }
    let (r, w) = (fds[0], fds[1]);
    // SAFETY: plain fcntl on a descriptor we own; failure only means a smaller pipe.
    unsafe { fcntl(w, F_SETPIPE_SZ, PIPE_BYTES as i32) };
    let s = sock.as_raw_fd();
    let mut total = 0u64;
    loop {
        // SAFETY: valid descriptors, null offsets (neither end is seekable here).
        let n = unsafe {
            splice(
                s,
                std::ptr::null_mut(),
                w,
                std::ptr::null_mut(),
                PIPE_BYTES,
                SPLICE_F_MOVE,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            die(&format!("splice from the socket: {e}"));
        }
        if n == 0 {
            return total;
        }
        let mut left = n as usize;
        while left > 0 {
            // SAFETY: as above.
            let m = unsafe {
                splice(
                    r,
                    std::ptr::null_mut(),
                    null.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    SPLICE_F_MOVE,
                )
            };
            if m <= 0 {
                die(&format!(
                    "splice to /dev/null: {}",
                    std::io::Error::last_os_error()
                ));
            }
            left -= m as usize;
        }
        total += n as u64;
    }
}
