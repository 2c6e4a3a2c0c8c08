//! A tiny HTTP/1.1 server for bench/compare.sh: one file, held in memory, served
//! two ways so that a client's cost of chunked decoding can be told apart from
//! the server's cost of producing chunks.
//!
//!   GET /chunked  the file as `Transfer-Encoding: chunked`, 64 KiB chunks
//!   GET /length   the same bytes with `Content-Length`
//!
//! Both responses are encoded once at start-up and sent with plain write(2)s
//! from memory, then the connection is closed (`Connection: close`); anything
//! else is a 404. One thread per connection.
//!
//! Usage: chunked_server FILE
//! Listens on a free port of 127.0.0.1 and prints it on stdout when ready.
//! Build: rustc --edition 2021 -O bench/chunked_server.rs

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

const CHUNK: usize = 64 * 1024;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: chunked_server FILE");
        std::process::exit(2)
    });
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("chunked_server: {path}: {e}");
        std::process::exit(1)
    });

    let mut chunked = Vec::with_capacity(data.len() + data.len() / CHUNK * 12 + 256);
    chunked.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for piece in data.chunks(CHUNK) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");

    let mut length = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .into_bytes();
    length.extend_from_slice(&data);
    drop(data);

    let chunked = Arc::new(chunked);
    let length = Arc::new(length);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    println!("{}", listener.local_addr().expect("local address").port());
    std::io::stdout().flush().ok();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (chunked, length) = (Arc::clone(&chunked), Arc::clone(&length));
        std::thread::spawn(move || serve(conn, &chunked, &length));
    }
}

fn serve(mut conn: TcpStream, chunked: &[u8], length: &[u8]) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let target = head.split(|&b| b == b' ').nth(1).unwrap_or(b"");
    let response: &[u8] = match target {
        b"/chunked" => chunked,
        b"/length" => length,
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    };
    // A client that hangs up early is its own business.
    let _ = conn.write_all(response);
    let _ = conn.shutdown(Shutdown::Write);
    // Let the client read to the end before the socket goes (no reset on unread input).
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}
