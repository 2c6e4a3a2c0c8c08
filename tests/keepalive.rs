//! Keep-alive within a batch: a worker sends its next request on the connection
//! of its last transfer when that response allows it, replaces a kept
//! connection the server closed, and never reuses one it cannot trust. A
//! single URL still says `Connection: close`.

use crate::support::server::{Recorded, Server, Step, raw, response};
use crate::support::tls::identity;
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::time::Duration;

/// `/<name>` answers `<name>` with Content-Length and keeps the connection.
fn keeping_server() -> Server {
    Server::start(|req: &Recorded| {
        let name = req.target().trim_start_matches('/');
        vec![
            Step::Send(response("200 OK", &[], name.as_bytes())),
            Step::KeepOpen,
        ]
    })
}

/// The connection each request came on, in the order received.
fn connections(server: &Server) -> Vec<usize> {
    server.requests().iter().map(|r| r.connection).collect()
}

#[test]
fn a_batch_sends_its_requests_on_one_connection() {
    let server = keeping_server();
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([
            "-v",
            &server.url("/a"),
            &server.url("/b"),
            &server.url("/c"),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Reusing the connection to http://{}",
            server.addr()
        )));
    assert_eq!(connections(&server), [0, 0, 0]);
    let nth: Vec<usize> = server.requests().iter().map(|r| r.nth).collect();
    assert_eq!(nth, [0, 1, 2]);
    for req in server.requests() {
        assert_eq!(req.field("Connection"), None, "{}", req.raw);
    }
    assert_eq!(names_in(dir.path()), ["a", "b", "c"]);
    assert_eq!(fs::read(dir.path().join("c")).unwrap(), b"c");
}

#[test]
fn a_single_url_still_says_connection_close() {
    let server = keeping_server();
    fetch()
        .arg(server.url("/one"))
        .assert()
        .success()
        .stdout("one");
    assert_eq!(server.request().field("Connection"), Some("close"));
}

#[test]
fn chunked_bodies_and_checked_bodies_leave_the_connection_usable() {
    let server = Server::start(|req: &Recorded| {
        let body = match req.target() {
            t if t.starts_with("/chunked") => raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n",
            ),
            _ => response("200 OK", &[], b"plain"),
        };
        vec![Step::Send(body), Step::KeepOpen]
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([
            "-s",
            "-w",
            "%{digest_sha256}\n",
            &server.url("/chunked-1"),
            &server.url("/plain"),
            &server.url("/chunked-2"),
        ])
        .assert()
        .success();
    assert_eq!(connections(&server), [0, 0, 0]);
    assert_eq!(fs::read(dir.path().join("chunked-2")).unwrap(), b"abc");
    assert_eq!(fs::read(dir.path().join("plain")).unwrap(), b"plain");
}

#[test]
fn responses_that_end_their_connection_are_not_reused() {
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "Connection: close",
            response("200 OK", &["Connection: close"], b"x"),
        ),
        (
            "Transfer-Encoding and Content-Length",
            raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 1\n\n",
                b"1\r\nx\r\n0\r\n\r\n",
            ),
        ),
        (
            "HTTP/1.0",
            raw("HTTP/1.0 200 OK\nContent-Length: 1\n\n", b"x"),
        ),
        (
            "bytes past Content-Length",
            raw(
                "HTTP/1.1 200 OK\nContent-Length: 1\n\n",
                b"xHTTP/1.1 200 OK\r\n",
            ),
        ),
    ];
    for (name, answer) in cases {
        // The server would take another request on each; fetch must not send one.
        let server = Server::start(move |_| vec![Step::Send(answer.clone()), Step::KeepOpen]);
        let dir = temp();
        fetch()
            .current_dir(dir.path())
            .args([
                "-s",
                &server.url("/a"),
                &server.url("/b"),
                &server.url("/c"),
            ])
            .assert()
            .success();
        assert_eq!(connections(&server), [0, 1, 2], "{name}");
        for file in ["a", "b", "c"] {
            assert_eq!(fs::read(dir.path().join(file)).unwrap(), b"x", "{name}");
        }
    }
}

#[test]
fn an_http_1_0_keep_alive_response_is_reused() {
    let server = Server::start(|_| {
        vec![
            Step::Send(raw(
                "HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 2\n\n",
                b"ok",
            )),
            Step::KeepOpen,
        ]
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", &server.url("/a"), &server.url("/b")])
        .assert()
        .success();
    assert_eq!(connections(&server), [0, 0]);
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced() {
    // The server closes after each response without saying so in advance.
    let server = Server::start(|req: &Recorded| {
        let name = req.target().trim_start_matches('/');
        vec![Step::Send(response("200 OK", &[], name.as_bytes()))]
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([
            "-s",
            &server.url("/a"),
            &server.url("/b"),
            &server.url("/c"),
        ])
        .assert()
        .success()
        .stderr("");
    assert_eq!(connections(&server), [0, 1, 2]);
    assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"b");
}

#[test]
fn a_kept_connection_that_fails_before_answering_is_replaced_once() {
    // The second request on a connection gets no answer: a close, or a reset.
    for ending in [None, Some(Step::Reset)] {
        let server = Server::start(move |req: &Recorded| {
            if req.nth == 0 {
                let name = req.target().trim_start_matches('/');
                vec![
                    Step::Send(response("200 OK", &[], name.as_bytes())),
                    Step::KeepOpen,
                ]
            } else {
                ending.clone().into_iter().collect()
            }
        });
        let dir = temp();
        fetch()
            .current_dir(dir.path())
            .args(["-v", &server.url("/a"), &server.url("/b")])
            .assert()
            .success()
            .stderr(predicate::str::contains("The kept connection failed ("));
        // a on 0; b first on 0 (unanswered), then on a new connection.
        assert_eq!(connections(&server), [0, 0, 1]);
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"a");
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"b");
    }
}

#[test]
fn a_second_failure_on_the_new_connection_is_the_transfers_error() {
    // Every request after the first on any connection is left unanswered, and
    // a new connection's first request too, except the very first: b fails
    // once on the kept connection and once on a new one, and that is 52.
    let server = Server::start(|req: &Recorded| {
        if req.connection == 0 && req.nth == 0 {
            vec![Step::Send(response("200 OK", &[], b"a")), Step::KeepOpen]
        } else {
            vec![]
        }
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", &server.url("/a"), &server.url("/b")])
        .assert()
        .code(52)
        .stderr(predicate::str::contains("/b"));
    assert_eq!(connections(&server), [0, 0, 1]);
    assert_eq!(names_in(dir.path()), ["a"]);
}

#[test]
fn each_worker_keeps_its_own_connection() {
    let server = keeping_server();
    let dir = temp();
    let urls: Vec<String> = (0..8).map(|i| server.url(&format!("/f{i}"))).collect();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-j", "2"])
        .args(&urls)
        .assert()
        .success();
    let mut used = connections(&server);
    assert_eq!(used.len(), 8);
    used.sort();
    used.dedup();
    assert!(used.len() <= 2, "connections used: {used:?}");
    assert_eq!(names_in(dir.path()).len(), 8);
}

#[test]
fn max_time_counts_for_each_transfer_on_a_kept_connection() {
    let server = Server::start(|req: &Recorded| {
        let mut steps = vec![];
        if req.nth == 1 {
            steps.push(Step::Pause(Duration::from_secs(3)));
        }
        steps.push(Step::Send(response("200 OK", &[], b"x")));
        steps.push(Step::KeepOpen);
        steps
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-m", "1", &server.url("/a"), &server.url("/b")])
        .assert()
        .code(28)
        .stderr(predicate::str::contains("--max-time"));
    assert_eq!(connections(&server), [0, 0]);
    assert_eq!(names_in(dir.path()), ["a"]);
}

#[test]
fn https_connections_are_kept_too() {
    let id = identity(&["localhost"]);
    let server = Server::start_tls(id.config.clone(), |req: &Recorded| {
        let name = req.target().trim_start_matches('/');
        vec![
            Step::Send(response("200 OK", &[], name.as_bytes())),
            Step::KeepOpen,
        ]
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([
            "-s",
            &server.localhost_url("/a"),
            &server.localhost_url("/b"),
            "--cacert",
        ])
        .arg(&id.ca_file)
        .assert()
        .success();
    assert_eq!(connections(&server), [0, 0]);
    assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"b");
}

#[test]
fn connection_close_from_the_user_gives_each_url_its_own_connection() {
    // Like a real server: a request that says close gets a response that says so.
    let server = Server::start(|req: &Recorded| {
        if req.field("Connection") == Some("close") {
            vec![Step::Send(response("200 OK", &["Connection: close"], b"x"))]
        } else {
            vec![Step::Send(response("200 OK", &[], b"x")), Step::KeepOpen]
        }
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-H", "Connection: close"])
        .args([server.url("/a"), server.url("/b"), server.url("/c")])
        .assert()
        .success();
    assert_eq!(connections(&server), [0, 1, 2]);
    for req in server.requests() {
        let fields = req.fields();
        let said: Vec<_> = fields.iter().filter(|(n, _)| *n == "Connection").collect();
        assert_eq!(said, [&("Connection", "close")], "{}", req.raw);
    }

    // A server that does not answer `close` in kind still gets no second
    // request on the connection (RFC 9112 §9.6).
    let server = keeping_server();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-H", "connection: Close", "-j", "1"])
        .args([server.url("/d"), server.url("/e"), server.url("/f")])
        .assert()
        .success();
    assert_eq!(connections(&server), [0, 1, 2]);
}
