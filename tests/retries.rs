//! `--retry` (DESIGN §6): which failures are retried, Retry-After, and cut bodies
//! that continue with Range + If-Range instead of starting over.

use crate::support::server::{Recorded, Server, Step, pattern, raw, response};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const FAST: [&str; 2] = ["--retry-delay", "0.01"];

/// A server whose script also gets the connection's number (0, 1, …).
fn numbered(script: impl Fn(usize, &Recorded) -> Vec<Step> + Send + Sync + 'static) -> Server {
    let count = Arc::new(AtomicUsize::new(0));
    Server::start(move |req| script(count.fetch_add(1, Ordering::SeqCst), req))
}

const LEN: u64 = 100_000;

/// The first connection sends part of the body with these fields and resets.
fn cut_after(n: usize, sent: u64, fields: &str) -> Option<Vec<Step>> {
    (n == 0).then(|| {
        vec![
            Step::Send(raw(
                &format!("HTTP/1.1 200 OK\n{fields}Content-Length: {LEN}\n\n"),
                b"",
            )),
            Step::Pattern { from: 0, len: sent },
            Step::Reset,
        ]
    })
}

/// A 206 with the rest of the body, if the request asks for it properly.
fn rest_from(req: &Recorded, validator: &str) -> Vec<Step> {
    let range = req.field("Range").expect("a Range request");
    assert_eq!(req.field("If-Range"), Some(validator));
    let from: u64 = range
        .strip_prefix("bytes=")
        .unwrap()
        .strip_suffix('-')
        .unwrap()
        .parse()
        .unwrap();
    vec![
        Step::Send(raw(
            &format!(
                "HTTP/1.1 206 Partial Content\nContent-Range: bytes {from}-{}/{LEN}\nContent-Length: {}\n\n",
                LEN - 1,
                LEN - from
            ),
            b"",
        )),
        Step::Pattern {
            from,
            len: LEN - from,
        },
    ]
}

#[test]
fn a_cut_body_continues_with_range_and_if_range() {
    let server = numbered(|n, req| {
        cut_after(n, 30_000, "Accept-Ranges: bytes\nETag: \"v1\"\n")
            .unwrap_or_else(|| rest_from(req, "\"v1\""))
    });
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-v", "--retry", "2"])
        .args(FAST)
        .arg(server.url("/big"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success()
        .stderr(
            // The reset may discard bytes the kernel had queued, so the exact
            // offset is not known here.
            predicate::str::contains("* Retry 1 of 2 in ")
                .and(predicate::str::contains(", continuing at byte ")),
        );
    assert!(fs::read(&file).unwrap() == pattern(0, LEN));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].field("Range"), None);
    assert!(requests[1].field("Range").unwrap().starts_with("bytes="));
    assert_eq!(names_in(dir.path()), ["f"]);
}

#[test]
fn last_modified_is_the_validator_without_an_etag() {
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let server = numbered(move |n, req| {
        cut_after(
            n,
            5_000,
            &format!("Accept-Ranges: bytes\nLast-Modified: {date}\n"),
        )
        .unwrap_or_else(|| rest_from(req, date))
    });
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout(predicate::function(|out: &[u8]| {
            out == pattern(0, LEN).as_slice()
        }));
}

#[test]
fn without_range_support_the_file_starts_over() {
    let server = numbered(|n, req| {
        cut_after(n, 20_000, "").unwrap_or_else(|| {
            assert_eq!(req.field("Range"), None);
            vec![
                Step::Send(raw(
                    &format!("HTTP/1.1 200 OK\nContent-Length: {LEN}\n\n"),
                    b"",
                )),
                Step::Pattern { from: 0, len: LEN },
            ]
        })
    });
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", "--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert!(fs::read(&file).unwrap() == pattern(0, LEN));
}

#[test]
fn a_changed_resource_answering_200_starts_over() {
    // If-Range failed: the server sends the new version whole.
    let server = numbered(|n, _| {
        cut_after(n, 20_000, "Accept-Ranges: bytes\nETag: \"v1\"\n").unwrap_or_else(|| {
            vec![Step::Send(response(
                "200 OK",
                &["ETag: \"v2\""],
                b"version two",
            ))]
        })
    });
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", "--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(fs::read(&file).unwrap(), b"version two");
}

#[test]
fn a_mismatched_content_range_is_33() {
    let server = numbered(|n, _| {
        cut_after(n, 20_000, "Accept-Ranges: bytes\nETag: \"v1\"\n").unwrap_or_else(|| {
            vec![Step::Send(raw(
                &format!("HTTP/1.1 206 Partial Content\nContent-Range: bytes 0-9/{LEN}\nContent-Length: 10\n\n"),
                b"0123456789",
            ))]
        })
    });
    let dir = temp();
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(33)
        .stderr(predicate::str::contains("cannot resume"));
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn stdout_resumes_but_never_starts_over() {
    let server = numbered(|n, req| {
        cut_after(n, 10_000, "Accept-Ranges: bytes\nETag: \"v1\"\n")
            .unwrap_or_else(|| rest_from(req, "\"v1\""))
    });
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout(predicate::function(|out: &[u8]| {
            out == pattern(0, LEN).as_slice()
        }));

    // Bytes already on stdout and no way to ask for the rest: no retry.
    let server = numbered(|n, _| cut_after(n, 10_000, "").unwrap_or_default());
    fetch()
        .args(["--retry", "3"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .code(56);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn transient_statuses_are_retried_and_retry_after_is_honoured() {
    let server = numbered(|n, _| match n {
        0 => vec![Step::Send(response(
            "503 Service Unavailable",
            &["Retry-After: 0"],
            b"busy",
        ))],
        1 => vec![Step::Send(response(
            "429 Too Many Requests",
            &["Retry-After: 0"],
            b"slow down",
        ))],
        _ => vec![Step::Send(response("200 OK", &[], b"finally"))],
    });
    fetch()
        // -m: were Retry-After ignored, this would fail in 30 s, not wait 20 min.
        .args(["--retry", "2", "--retry-delay", "600", "-m", "30"])
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("finally");
    assert_eq!(server.requests().len(), 3);
}

/// Every status of the retry list (RFC 9110 §15.5.9, §15.6): each is asked
/// again, and what follows is the answer.
#[test]
fn each_transient_status_is_retried() {
    for status in [
        "408 Request Timeout",
        "429 Too Many Requests",
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
        "504 Gateway Timeout",
    ] {
        let server = numbered(move |n, _| match n {
            0 => vec![Step::Send(response(status, &[], b"not now"))],
            _ => vec![Step::Send(response("200 OK", &[], b"now"))],
        });
        fetch()
            .args(["--retry", "1"])
            .args(FAST)
            .arg(server.url("/"))
            .assert()
            .success()
            .stdout("now");
        assert_eq!(server.requests().len(), 2, "{status}");
    }
}

#[test]
fn retry_after_beyond_max_time_gives_up_at_once() {
    let server = Server::bytes(response(
        "503 Service Unavailable",
        &["Retry-After: 3600"],
        b"",
    ));
    fetch()
        .args(["--retry", "5", "-m", "20"])
        .arg(server.url("/"))
        .assert()
        .code(22)
        .stderr(predicate::str::contains("HTTP 503"));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn exhausted_retries_report_the_last_failure() {
    let server = Server::bytes(response("502 Bad Gateway", &[], b"bad"));
    fetch()
        .args(["--retry", "2"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .code(22);
    assert_eq!(server.requests().len(), 3);

    // With --no-fail the last answer is written after the retries.
    let server = Server::bytes(response("502 Bad Gateway", &[], b"bad"));
    fetch()
        .args(["--retry", "1", "--no-fail"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("bad");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn permanent_failures_and_no_retry_flag_are_not_retried() {
    let server = Server::bytes(response("404 Not Found", &[], b""));
    fetch()
        .args(["--retry", "3"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .code(22);
    assert_eq!(server.requests().len(), 1);

    let server = Server::bytes(response("503 Service Unavailable", &[], b""));
    fetch().arg(server.url("/")).assert().code(22);
    assert_eq!(server.requests().len(), 1);

    let server = Server::bytes(raw("HTTP/1.1 200 OK\nContent-Length: x\n\n", b""));
    fetch()
        .args(["--retry", "3"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .code(8);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn empty_replies_and_refused_connections_are_retried() {
    let server = numbered(|n, _| match n {
        0 => vec![],
        _ => vec![Step::Send(response("200 OK", &[], b"second time"))],
    });
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("second time");

    let (_reserved, refusing) = crate::support::refusing_address();
    let port = refusing.port();
    let out = fetch()
        .args(["-v", "--retry", "2"])
        .args(FAST)
        .arg(format!("http://127.0.0.1:{port}/"))
        .assert()
        .code(7);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("* Retry ").count(), 2, "{stderr}");
}

#[test]
fn a_read_timeout_is_retried() {
    let server = numbered(|n, _| match n {
        0 => vec![Step::AwaitClose],
        _ => vec![Step::Send(response("200 OK", &[], b"awake now"))],
    });
    fetch()
        .args(["--retry", "1", "--read-timeout", "0.2"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("awake now");
    assert_eq!(server.requests().len(), 2);
}

/// The first connection sends 5 of the 10 bytes of a 200 that allows ranges,
/// with `fields` in its head, and closes; the later ones get `then`'s bytes.
fn cut_at_5_of_10(
    fields: impl Into<String>,
    then: impl Fn(usize, &Recorded) -> Vec<u8> + Send + Sync + 'static,
) -> Server {
    let fields = fields.into();
    numbered(move |n, req| {
        let bytes = match n {
            0 => raw(
                &format!("HTTP/1.1 200 OK\nAccept-Ranges: bytes\n{fields}Content-Length: 10\n\n"),
                b"01234",
            ),
            n => then(n, req),
        };
        vec![Step::Send(bytes)]
    })
}

/// `fetch -s --retry N` (quick retries) into `file`.
fn retry_into(retries: &str, url: &str, file: &std::path::Path) -> assert_cmd::assert::Assert {
    fetch()
        .args(["-s", "--retry", retries])
        .args(FAST)
        .arg(url)
        .arg("-o")
        .arg(file)
        .assert()
}

#[test]
fn a_206_must_cover_exactly_the_rest() {
    for answer in [
        // Stops short of the end.
        "Content-Range: bytes 5-7/10\nContent-Length: 3\n\n567",
        // Content-Length disagrees with Content-Range, short or long.
        "Content-Range: bytes 5-9/10\nContent-Length: 3\n\n567",
        "Content-Range: bytes 5-9/10\nContent-Length: 8\n\n56789abc",
        // Ends past its own total.
        "Content-Range: bytes 5-20/10\nContent-Length: 16\n\n56789abcdefghijk",
        // A total other than the one the first response gave.
        "Content-Range: bytes 5-11/12\nContent-Length: 7\n\n56789ab",
    ] {
        let server = cut_at_5_of_10("ETag: \"v1\"\n", move |_, _| {
            raw(&format!("HTTP/1.1 206 Partial Content\n{answer}"), b"")
        });
        let dir = temp();
        retry_into("1", &server.url("/"), &dir.path().join("f"))
            .code(33)
            .stderr(predicate::str::contains("cannot resume"));
        assert!(names_in(dir.path()).is_empty(), "{answer}");
        assert_eq!(server.requests()[1].field("Range"), Some("bytes=5-"));
    }
}

#[test]
fn a_206_that_ends_before_its_content_range_is_cut_and_continues() {
    // Framed by the connection's close, the 206 stops 2 bytes short: a body
    // cut short (18), which the next retry continues from byte 8.
    let server = || {
        cut_at_5_of_10("ETag: \"v1\"\n", |n, _| match n {
            1 => raw(
                "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-9/10\nConnection: close\n\n",
                b"567",
            ),
            _ => raw(
                "HTTP/1.1 206 Partial Content\nContent-Range: bytes 8-9/10\nContent-Length: 2\n\n",
                b"89",
            ),
        })
    };
    let dir = temp();
    let file = dir.path().join("f");
    let first = server();
    retry_into("1", &first.url("/"), &file)
        .code(18)
        .stderr(predicate::str::contains("Content-Range"));
    assert!(names_in(dir.path()).is_empty());

    let server = server();
    retry_into("2", &server.url("/"), &file).success();
    assert_eq!(fs::read(&file).unwrap(), b"0123456789");
    assert_eq!(server.requests()[2].field("Range"), Some("bytes=8-"));
}

#[test]
fn a_206_of_another_version_is_33() {
    // The server ignored If-Range: its 206 names another validator.
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let other = "Mon, 07 Nov 1994 08:49:37 GMT";
    for (first, second) in [
        ("ETag: \"v1\"\n".to_owned(), "ETag: \"v2\"\n".to_owned()),
        (
            format!("Last-Modified: {date}\n"),
            format!("Last-Modified: {other}\n"),
        ),
    ] {
        let server = cut_at_5_of_10(first.clone(), move |_, _| {
            raw(
                &format!(
                    "HTTP/1.1 206 Partial Content\n{second}Content-Range: bytes 5-9/10\nContent-Length: 5\n\n"
                ),
                b"56789",
            )
        });
        let dir = temp();
        retry_into("1", &server.url("/"), &dir.path().join("f"))
            .code(33)
            .stderr(predicate::str::contains("cannot resume"));
        assert!(names_in(dir.path()).is_empty(), "{first}");
    }

    // The same validator again is the same version.
    let server = cut_at_5_of_10("ETag: \"v1\"\n", |_, _| {
        raw(
            "HTTP/1.1 206 Partial Content\nETag: \"v1\"\nContent-Range: bytes 5-9/10\nContent-Length: 5\n\n",
            b"56789",
        )
    });
    let dir = temp();
    let file = dir.path().join("f");
    retry_into("1", &server.url("/"), &file).success();
    assert_eq!(fs::read(&file).unwrap(), b"0123456789");
}

#[test]
fn a_weak_etag_means_no_resume_not_a_date_in_if_range() {
    // RFC 9110 §13.1.5: If-Range never carries a weak ETag, nor a date when
    // the representation has an entity tag. The retry starts over.
    let server = cut_at_5_of_10(
        "ETag: W/\"weak\"\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\n",
        |_, _| response("200 OK", &[], b"0123456789"),
    );
    let dir = temp();
    let file = dir.path().join("f");
    retry_into("1", &server.url("/"), &file).success();
    assert_eq!(fs::read(&file).unwrap(), b"0123456789");
    let second = &server.requests()[1];
    assert_eq!(second.field("Range"), None);
    assert_eq!(second.field("If-Range"), None);
}

#[test]
fn a_416_whose_length_contradicts_the_first_response_is_33() {
    // The first response said 10 bytes; FILE.part holds 5; a 416 saying the
    // whole is 5 does not make those 5 bytes the file.
    let server = cut_at_5_of_10("ETag: \"v1\"\n", |_, _| {
        raw(
            "HTTP/1.1 416 Range Not Satisfiable\nContent-Range: bytes */5\nContent-Length: 0\n\n",
            b"",
        )
    });
    let dir = temp();
    retry_into("1", &server.url("/"), &dir.path().join("f"))
        .code(33)
        .stderr(predicate::str::contains("cannot resume"));
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn no_fail_keeps_the_body_when_max_time_leaves_no_room_for_a_retry() {
    // Retry-After is beyond -m: no retry is attempted, so this answer is the
    // last one, kept with --no-fail as when the retries run out.
    let server = Server::bytes(response(
        "503 Service Unavailable",
        &["Retry-After: 100"],
        b"body",
    ));
    let dir = temp();
    let file = dir.path().join("out");
    fetch()
        .args(["-s", "--retry", "3", "-m", "5", "--no-fail"])
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(fs::read(&file).unwrap(), b"body");
    assert_eq!(server.requests().len(), 1);
}

/// A head the server cut off with a close (8) is retried like a cut body; a
/// Retry-After on a 200 whose body is then cut says nothing about when to
/// come back (RFC 9110 §10.2.3: 503 and 429 only), so the backoff decides.
#[test]
fn a_cut_head_is_retried_and_retry_after_on_a_200_is_not_a_wait() {
    let server = numbered(|n, _| match n {
        0 => vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Len".to_vec())],
        _ => vec![Step::Send(response("200 OK", &[], b"whole head"))],
    });
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("whole head");

    let server = numbered(|n, _| match n {
        0 => vec![Step::Send(raw(
            "HTTP/1.1 200 OK\nRetry-After: 3600\nContent-Length: 10\n\n",
            b"12345",
        ))],
        _ => vec![Step::Send(response("200 OK", &[], b"1234567890"))],
    });
    let dir = crate::support::temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-v", "--retry", "1", "-m", "20"])
        .args(FAST)
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("* Retry 1 of 1 in 0."));
    assert_eq!(std::fs::read(&file).unwrap(), b"1234567890");
}

/// When --retry would retry a failure but cannot, -v says why: no retry could
/// start before --max-time, or a body on stdout that cannot be continued.
#[test]
fn verbose_says_why_a_failure_is_not_retried() {
    let (_reserved, refusing) = crate::support::refusing_address();
    fetch()
        .args(["-v", "--retry", "1", "--retry-delay", "30", "-m", "5"])
        .arg(format!("http://{refusing}/"))
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "* No retry could start before --max-time",
        ));

    let server = Server::bytes(raw("HTTP/1.1 200 OK\nContent-Length: 10\n\n", b"12345"));
    fetch()
        .args(["-v", "--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .assert()
        .code(18)
        .stdout("12345")
        .stderr(predicate::str::contains(
            "* No retry: the body cannot be continued",
        ));
}

/// A continued body cut again: the message counts what there is in all, not
/// only the bytes of the last response.
#[test]
fn a_continued_body_cut_again_says_what_arrived_in_all() {
    let server = numbered(|n, _| match n {
        0 => vec![Step::Send(raw(
            "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"v\"\nContent-Length: 100\n\n",
            &[b'a'; 40],
        ))],
        _ => vec![Step::Send(raw(
            "HTTP/1.1 206 Partial Content\nETag: \"v\"\nContent-Range: bytes 40-99/100\nContent-Length: 60\n\n",
            &[b'a'; 20],
        ))],
    });
    let dir = temp();
    fetch()
        .args(["--retry", "1"])
        .args(FAST)
        .arg(server.url("/"))
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(18)
        .stderr(predicate::str::contains(
            "the body ended after 20 of 60 bytes (Content-Length), continuing from byte 40: 60 bytes in all",
        ));
    assert!(names_in(dir.path()).is_empty());
}
