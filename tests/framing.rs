//! Every body framing of DESIGN §5 through the real binary: what arrives in the
//! file is exactly the body, and a broken framing is the right exit code.

use crate::support::server::{Server, Step, pattern, raw};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;

/// Runs fetch on a server sending `bytes`, body to stdout.
fn body_of(bytes: Vec<u8>) -> assert_cmd::assert::Assert {
    let server = Server::bytes(bytes);
    fetch().arg(server.url("/")).assert()
}

#[test]
fn chunked_body_is_decoded() {
    body_of(raw(
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
        b"5;ext=1\r\nhello\r\nB\r\n 0123456789\r\na\r\nabcdefghij\r\n0\r\nTrailer: x\r\n\r\n",
    ))
    .success()
    .stdout("hello 0123456789abcdefghij");
}

#[test]
fn chunked_body_dribbled_one_byte_per_write() {
    let server = Server::steps(vec![Step::Dribble(raw(
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
        b"3\r\nabc\r\n1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
    ))]);
    fetch()
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("abc0123456789012345678901234567890");
}

#[test]
fn big_chunked_body_is_exact() {
    let len = 3 * 1024 * 1024 + 11;
    let server = Server::steps(vec![
        Step::Send(raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", b"")),
        Step::ChunkedPattern { len, chunk: 40_000 },
    ]);
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success();
    assert!(fs::read(&file).unwrap() == pattern(0, len));
}

#[test]
fn chunked_ignores_content_length() {
    body_of(raw(
        "HTTP/1.1 200 OK\nContent-Length: 2\nTransfer-Encoding: chunked\n\n",
        b"4\r\nfour\r\n0\r\n\r\n",
    ))
    .success()
    .stdout("four");
}

#[test]
fn content_length_stops_at_the_length() {
    body_of(raw(
        "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
        b"helloTRAILING GARBAGE",
    ))
    .success()
    .stdout("hello");
}

#[test]
fn body_bytes_in_the_same_packet_as_the_head_are_kept() {
    // One write: the head and the whole body arrive in the first read.
    body_of(raw("HTTP/1.1 200 OK\nContent-Length: 3\n\n", b"abc"))
        .success()
        .stdout("abc");
}

#[test]
fn close_delimited_body_reads_until_close() {
    body_of(raw("HTTP/1.0 200 OK\n\n", b"until the end"))
        .success()
        .stdout("until the end");
}

#[test]
fn interim_responses_are_skipped() {
    body_of(raw(
        "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </s.css>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n",
        b"ok",
    ))
    .success()
    .stdout("ok");
}

#[test]
fn bodiless_statuses_ignore_their_fields() {
    for status in ["204 No Content", "304 Not Modified"] {
        let server = Server::steps(vec![
            Step::Send(raw(
                &format!("HTTP/1.1 {status}\nContent-Length: 10\n\n"),
                b"",
            )),
            Step::AwaitClose,
        ]);
        let dir = temp();
        let file = dir.path().join("f");
        // The server sends no body and keeps the connection open until we leave:
        // reading one would hang, and reading none is the rule.
        fetch()
            .args(["-s", &server.url("/"), "-o"])
            .arg(&file)
            .assert()
            .success();
        // A 204's body is empty; a 304 says the copy the client has is
        // current (whoever made the request conditional): nothing replaces it.
        match status {
            "204 No Content" => assert_eq!(fs::read(&file).unwrap(), b""),
            _ => assert!(!file.exists(), "{status}"),
        }
    }
}

/// A 304 to a request made conditional with -H (not -N) leaves FILE as it was.
#[test]
fn a_304_leaves_the_file_whoever_asked() {
    let server = Server::bytes(
        "HTTP/1.1 304 Not Modified
ETag: \"v1\"

",
    );
    let dir = temp();
    let file = dir.path().join("f");
    fs::write(&file, "my copy").unwrap();
    fetch()
        .args(["-s", "-H", "If-None-Match: \"v1\"", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stdout("");
    assert_eq!(fs::read(&file).unwrap(), b"my copy");
    assert_eq!(server.request().field("If-None-Match"), Some("\"v1\""));
}

#[test]
fn bare_lf_and_obs_fold_heads_are_accepted() {
    let server = Server::bytes(&b"HTTP/1.1 200 OK\nX-Long: a\n  b\nContent-Length: 2\n\nhi"[..]);
    fetch()
        .args(["-v", &server.url("/")])
        .assert()
        .success()
        .stdout("hi");
}

#[test]
fn truncated_content_length_is_18_and_leaves_no_file() {
    let dir = temp();
    let file = dir.path().join("f");
    let server = Server::bytes(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"short"));
    fetch()
        .args([&server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .code(18)
        .stderr(predicate::str::contains("5 of 100 bytes"));
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn truncated_chunked_is_18() {
    for cut in [&b"5\r\nhel"[..], b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n"] {
        body_of(raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", cut))
            .code(18)
            .stderr(predicate::str::contains("last chunk"));
    }
}

#[test]
fn broken_framings_are_8() {
    for (head, body) in [
        (
            "HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 6\n\n",
            &b"hello!"[..],
        ),
        ("HTTP/1.1 200 OK\nContent-Length: -5\n\n", b"hello"),
        (
            "HTTP/1.1 200 OK\nContent-Length: 99999999999999999999999\n\n",
            b"",
        ),
        ("HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n", b"xx"),
        (
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
            b"-1\r\nx\r\n0\r\n\r\n",
        ),
        (
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
            b"zz\r\nx\r\n0\r\n\r\n",
        ),
        (
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
            b"1\r\nxy\r\n0\r\n\r\n",
        ),
        ("HTTP/1.1 200 OK\nX : y\n\n", b""),
        (
            "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
            b"",
        ),
        ("HTTP/2 200\n\n", b""),
        ("garbage\n\n", b""),
    ] {
        body_of(raw(head, body)).code(8).stderr(
            predicate::str::starts_with("fetch: http://127.0.0.1:")
                .and(predicate::str::contains("malformed response")),
        );
    }
}
