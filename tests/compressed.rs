//! `--compressed`: Accept-Encoding only when asked, gzip / deflate / br (and two
//! stacked) decoded while streaming, corrupt or unknown codings are 61, and
//! without the flag the bytes are written exactly as received.

use crate::support::server::{Server, raw, response};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::io::Write;

fn text() -> Vec<u8> {
    "All happy families are alike; each unhappy family is unhappy in its own way.\n"
        .repeat(2000)
        .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
    }
    out
}

fn encoded(coding: &str, body: Vec<u8>) -> Server {
    Server::bytes(response(
        "200 OK",
        &[&format!("Content-Encoding: {coding}")],
        &body,
    ))
}

#[test]
fn each_coding_is_decoded_with_the_flag() {
    for (coding, body) in [
        ("gzip", gzip(&text())),
        ("x-gzip", gzip(&text())),
        ("deflate", zlib(&text())),
        ("br", br(&text())),
        ("gzip, br", br(&gzip(&text()))),
    ] {
        let server = encoded(coding, body);
        fetch()
            .args(["--compressed", &server.url("/")])
            .assert()
            .success()
            .stdout(predicate::function(|out: &[u8]| out == text().as_slice()));
        assert_eq!(
            server.request().field("Accept-Encoding"),
            Some("gzip, deflate, br"),
            "{coding}"
        );
    }
}

#[test]
fn without_the_flag_nothing_is_asked_for_or_decoded() {
    let compressed = gzip(&text());
    let server = encoded("gzip", compressed.clone());
    fetch()
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout(predicate::function(move |out: &[u8]| {
            out == compressed.as_slice()
        }));
    assert_eq!(server.request().field("Accept-Encoding"), None);
}

#[test]
fn corrupt_unknown_and_too_many_codings_are_61() {
    let mut corrupt = gzip(&text());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    for (coding, body) in [
        ("gzip", corrupt),
        ("gzip", gzip(&text())[..100].to_vec()),
        ("zstd", b"whatever".to_vec()),
        ("gzip, gzip, gzip", gzip(&gzip(&gzip(b"x")))),
    ] {
        let server = encoded(coding, body);
        let dir = temp();
        fetch()
            .args(["--compressed", &server.url("/"), "-o"])
            .arg(dir.path().join("f"))
            .assert()
            .code(61)
            .stderr(predicate::str::contains("cannot decode the body"));
        assert!(names_in(dir.path()).is_empty(), "{coding}");
    }
}

/// A response without a body (204, 304, HEAD) has nothing to decode, so the
/// coding it names does not matter.
#[test]
fn a_coding_on_a_response_without_a_body_is_not_an_error() {
    let server = Server::bytes(response("204 No Content", &["Content-Encoding: zstd"], b""));
    fetch()
        .args(["-s", "--compressed", &server.url("/")])
        .assert()
        .success()
        .stdout("");
    let server = Server::bytes(raw(
        "HTTP/1.1 200 OK\nContent-Encoding: zstd\nContent-Length: 7\n\n",
        b"",
    ));
    fetch()
        .args(["-s", "-I", "--compressed", &server.url("/")])
        .args(["-w", "[%{digest_sha256}]"])
        .assert()
        .success()
        .stdout(predicate::str::ends_with("\r\n\r\n[]"));
}

/// A 206 the user asked for (`-H Range`) is decoded like a 200: its
/// Content-Range counts the bytes as sent, not the decoded ones.
#[test]
fn a_compressed_range_is_decoded() {
    let sent = gzip(&text());
    let range = format!("Content-Range: bytes 0-{}/{}", sent.len() - 1, sent.len());
    let server = Server::bytes(response(
        "206 Partial Content",
        &["Content-Encoding: gzip", &range],
        &sent,
    ));
    fetch()
        .args([
            "-s",
            "--compressed",
            "-H",
            "Range: bytes=0-",
            &server.url("/"),
        ])
        .assert()
        .success()
        .stdout(text());
}

#[test]
fn a_cut_compressed_body_is_still_18() {
    let body = gzip(&text());
    let server = Server::bytes(crate::support::server::raw(
        &format!(
            "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {}\n\n",
            body.len()
        ),
        &body[..body.len() / 2],
    ));
    fetch()
        .args(["--compressed", &server.url("/")])
        .assert()
        .code(18);
}

#[test]
fn content_digest_covers_the_bytes_as_sent() {
    let body = gzip(b"hello world");
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&body);
        // Standard base64 of the digest, as RFC 9530 puts it between colons.
        base64(&d)
    };
    let server = Server::bytes(response(
        "200 OK",
        &[
            "Content-Encoding: gzip",
            &format!("Content-Digest: sha-256=:{digest}:"),
        ],
        &body,
    ));
    fetch()
        .args(["-v", "--compressed", &server.url("/")])
        .assert()
        .success()
        .stdout("hello world")
        .stderr(predicate::str::contains("Content-Digest sha256 verified"));
}

#[test]
fn a_trailer_digest_covers_the_bytes_as_sent_too() {
    let gz = gzip(b"hello world");
    let digest = {
        use sha2::Digest;
        base64(&sha2::Sha256::digest(&gz))
    };
    let mut body = format!("{:x}\r\n", gz.len()).into_bytes();
    body.extend_from_slice(&gz);
    body.extend_from_slice(
        format!("\r\n0\r\nContent-Digest: sha-256=:{digest}:\r\n\r\n").as_bytes(),
    );
    let server = Server::bytes(raw(
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Encoding: gzip\nTrailer: Content-Digest\n\n",
        &body,
    ));
    fetch()
        .args(["-v", "--compressed", &server.url("/")])
        .assert()
        .success()
        .stdout("hello world")
        .stderr(predicate::str::contains(
            "Content-Digest trailer sha256 verified",
        ));
}

#[test]
fn compressed_and_continue_do_not_mix() {
    fetch()
        .args(["--compressed", "-C", "http://127.0.0.1:9/", "-o", "f"])
        .assert()
        .code(2);
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for g in bytes.chunks(3) {
        let n = (u32::from(g[0]) << 16)
            | (u32::from(*g.get(1).unwrap_or(&0)) << 8)
            | u32::from(*g.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= g.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}
