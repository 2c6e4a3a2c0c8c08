//! Keep-alive within a batch: the next request to an origin goes on the
//! connection of an earlier transfer when that response allows it (with `-j`,
//! sent ahead by the dispatcher), a kept connection the server closed is
//! replaced, and one it cannot trust is never reused. A single URL still says
//! `Connection: close`.

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

/// Answers the first request on each connection as `keeping_server` does;
/// every later one gets `ending` (nothing: a close without a word).
fn first_request_only(ending: Option<Step>) -> Server {
    Server::start(move |req: &Recorded| {
        if req.nth == 0 {
            let name = req.target().trim_start_matches('/');
            vec![
                Step::Send(response("200 OK", &[], name.as_bytes())),
                Step::KeepOpen,
            ]
        } else {
            ending.clone().into_iter().collect()
        }
    })
}

/// What a server that times out an idle connection may send before closing it.
fn idle_timeout() -> Vec<u8> {
    response("408 Request Timeout", &["Connection: close"], b"")
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
    // The second request on a connection gets no answer: a close, a reset,
    // or the 408 of a server that timed the idle connection out.
    for ending in [None, Some(Step::Reset), Some(Step::Send(idle_timeout()))] {
        let server = first_request_only(ending);
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
    // Every request after the first on any connection is left unanswered (or
    // answered 408), and a new connection's first request too, except the
    // very first: b fails once on the kept connection and once on a new one,
    // and that is b's answer: 52 (or the 408, 22).
    for (ending, code) in [(vec![], 52), (vec![Step::Send(idle_timeout())], 22)] {
        let server = Server::start(move |req: &Recorded| {
            if req.connection == 0 && req.nth == 0 {
                vec![Step::Send(response("200 OK", &[], b"a")), Step::KeepOpen]
            } else {
                ending.clone()
            }
        });
        let dir = temp();
        fetch()
            .current_dir(dir.path())
            .args(["-s", &server.url("/a"), &server.url("/b")])
            .assert()
            .code(code)
            .stderr(predicate::str::contains("/b"));
        assert_eq!(connections(&server), [0, 0, 1]);
        assert_eq!(names_in(dir.path()), ["a"]);
    }
}

#[test]
fn a_parallel_batch_uses_no_more_connections_than_transfers_at_once() {
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

/// With `-j` above 1 a request to an origin with a kept connection goes out
/// ahead on it, and one thread finishes the answers that arrived whole; any
/// other answer (in pieces, long, chunked, a redirect, an error, a retry)
/// goes on as it would alone. All of them, on kept connections:
#[test]
fn parallel_batches_take_every_kind_of_answer_on_kept_connections() {
    use crate::support::server::pattern;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let big = pattern(0, 300_000);
    let served = big.clone();
    let busy = AtomicUsize::new(0);
    let server = Server::start(move |req: &Recorded| {
        let path = req.target();
        let mut steps = match path.trim_end_matches(char::is_numeric) {
            "/piece" => vec![
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 5\n\n", b"")),
                Step::Pause(Duration::from_millis(30)),
                Step::Send(b"piece".to_vec()),
            ],
            "/big" => vec![Step::Send(response("200 OK", &[], &served))],
            "/chunked" => vec![Step::Send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n",
            ))],
            "/moved" => vec![Step::Send(response(
                "302 Found",
                &["Location: /small9"],
                b"",
            ))],
            "/missing" => vec![Step::Send(response("404 Not Found", &[], b"no"))],
            "/busy" if busy.fetch_add(1, Ordering::SeqCst) == 0 => vec![Step::Send(response(
                "503 Service Unavailable",
                &["Retry-After: 0"],
                b"",
            ))],
            _ => vec![Step::Send(response("200 OK", &[], path.as_bytes()))],
        };
        steps.push(Step::KeepOpen);
        steps
    });
    let dir = temp();
    let names = [
        "small1", "small2", "small3", "piece1", "big1", "chunked1", "small4", "moved1", "piece2",
        "missing1", "small5", "busy1", "big2", "chunked2", "small6", "piece3",
    ];
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-j", "3", "--retry", "1"])
        .args(names.iter().map(|n| server.url(&format!("/{n}"))))
        .assert()
        .code(22)
        .stderr(predicate::str::contains("/missing1").and(predicate::str::contains("404")));
    for name in names {
        let got = fs::read(dir.path().join(name));
        let want: Vec<u8> = match name.trim_end_matches(char::is_numeric) {
            "missing" => {
                assert!(got.is_err(), "{name} was written");
                continue;
            }
            "piece" => b"piece".to_vec(),
            "big" => big.clone(),
            "chunked" => b"chunked".to_vec(),
            "moved" => b"/small9".to_vec(),
            _ => format!("/{name}").into_bytes(),
        };
        assert_eq!(got.unwrap(), want, "{name}");
    }
    let used = connections(&server);
    let mut distinct = used.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() < used.len(),
        "no connection carried a second request: {used:?}"
    );
}

#[test]
fn a_parallel_batch_replaces_kept_connections_that_fail_before_answering() {
    // Each connection answers its first request only, then closes (or resets)
    // without a word (or with a 408): every request sent ahead on a kept
    // connection goes again on a new one.
    for ending in [None, Some(Step::Reset), Some(Step::Send(idle_timeout()))] {
        let server = first_request_only(ending);
        let dir = temp();
        let names = ["a", "b", "c", "d", "e", "f"];
        fetch()
            .current_dir(dir.path())
            .args(["-v", "-j", "2"])
            .args(names.iter().map(|n| server.url(&format!("/{n}"))))
            .assert()
            .success()
            .stderr(predicate::str::contains("The kept connection failed ("));
        for name in names {
            assert_eq!(fs::read(dir.path().join(name)).unwrap(), name.as_bytes());
        }
    }
}

#[test]
fn a_silent_kept_connection_in_a_parallel_batch_is_a_read_timeout() {
    // a and b come on two new connections (a is answered once b has asked);
    // any later request on them gets no answer, and the connection stays
    // open. c goes on one of them.
    use crate::support::server::Gate;
    let b_asked = Gate::new();
    let server = Server::start(move |req: &Recorded| match (req.nth, req.target()) {
        (0, "/a") => vec![
            Step::WaitFor(b_asked.clone()),
            Step::Send(response("200 OK", &[], b"a")),
            Step::KeepOpen,
        ],
        (0, "/b") => {
            b_asked.open();
            vec![Step::Send(response("200 OK", &[], b"b")), Step::KeepOpen]
        }
        _ => vec![Step::KeepOpen],
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-j", "2", "--read-timeout", "1"])
        .args(["a", "b", "c"].map(|n| server.url(&format!("/{n}"))))
        .assert()
        .code(28)
        .stderr(predicate::str::contains(
            "/c: no data for 1 s (--read-timeout)",
        ));
    assert_eq!(names_in(dir.path()), ["a", "b"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let c = requests.iter().find(|r| r.target() == "/c").unwrap();
    assert_eq!(c.nth, 1, "c on a kept connection");
}

#[test]
fn redirects_errors_and_retried_answers_leave_their_connection_usable() {
    // Their bodies are not wanted, but they came whole with the head: the
    // connection carries the next request. One that is still arriving is not
    // waited for: that connection is closed.
    use std::sync::atomic::{AtomicUsize, Ordering};
    let busy = AtomicUsize::new(0);
    let server = Server::start(move |req: &Recorded| {
        let mut steps = match req.target() {
            "/moved" => vec![Step::Send(response(
                "302 Found",
                &["Location: /a"],
                b"see /a",
            ))],
            "/missing" => vec![Step::Send(response("404 Not Found", &[], b"no such file"))],
            "/busy" if busy.fetch_add(1, Ordering::SeqCst) == 0 => {
                vec![Step::Send(response(
                    "503 Busy",
                    &["Retry-After: 0"],
                    b"later",
                ))]
            }
            "/slow-missing" => vec![
                Step::Send(raw("HTTP/1.1 404 Not Found\nContent-Length: 9\n\n", b"not")),
                Step::Pause(Duration::from_millis(200)),
                Step::Send(b" here!".to_vec()),
            ],
            path => vec![Step::Send(response("200 OK", &[], path.as_bytes()))],
        };
        steps.push(Step::KeepOpen);
        steps
    });
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "--retry", "1"])
        .args(["/moved", "/missing", "/busy", "/b", "/slow-missing", "/c"].map(|p| server.url(p)))
        .assert()
        .code(22);
    let requests: Vec<(String, usize)> = server
        .requests()
        .iter()
        .map(|r| (r.target().to_owned(), r.connection))
        .collect();
    let on = |conn: usize, path: &str| (path.to_owned(), conn);
    assert_eq!(
        requests,
        [
            on(0, "/moved"),
            on(0, "/a"),
            on(0, "/missing"),
            on(0, "/busy"),
            on(0, "/busy"),
            on(0, "/b"),
            on(0, "/slow-missing"),
            on(1, "/c"),
        ]
    );
    assert_eq!(fs::read(dir.path().join("moved")).unwrap(), b"/a");
    assert_eq!(fs::read(dir.path().join("busy")).unwrap(), b"/busy");
}
