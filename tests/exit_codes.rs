//! Each exit code of DESIGN §4 this build can produce, with its one stderr line.

use crate::support::server::{Server, Step, raw};
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One line, `fetch: ` first, containing `text`.
fn one_line_with(text: &str) -> impl predicates::Predicate<str> {
    predicate::str::starts_with("fetch: ")
        .and(predicate::str::contains(text.to_owned()))
        .and(predicate::function(|s: &str| {
            s.lines().count() == 1 && s.ends_with('\n')
        }))
}

#[test]
fn other_schemes_are_1() {
    fetch()
        .arg("ftp://127.0.0.1/file")
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_line_with(
            "ftp://127.0.0.1/file: unsupported scheme 'ftp'",
        ));
}

#[test]
fn usage_errors_are_2() {
    fetch().arg("--no-such-flag").assert().code(2);
    fetch().assert().code(2);
    fetch()
        .args(["http://127.0.0.1/", "--connect-timeout", "0"])
        .assert()
        .code(2);
    fetch()
        .args(["http://127.0.0.1/", "-4", "-6"])
        .assert()
        .code(2);
    for header in ["NoColon", "X: a\r\nInjected: yes", "Bad Name: x"] {
        fetch()
            .args(["http://127.0.0.1/", "-H", header])
            .assert()
            .code(2)
            .stderr(one_line_with("-H"));
    }
    fetch()
        .args(["http://127.0.0.1/", "-A", "a\nb"])
        .assert()
        .code(2);
    // A list with no URL in it names the list.
    let mut list = fetch();
    list.args(["--input-file", "-"]);
    assert_cmd::Command::from_std(list)
        .write_stdin("# only a comment\n\n")
        .assert()
        .code(2)
        .stderr(one_line_with(
            "no URL given: --input-file - (stdin) holds none",
        ));
}

#[test]
fn malformed_urls_are_3() {
    for url in [
        "http://a b/",
        "http://h/\r\nX: y",
        "http://127.0.0.1:99999/",
        "http://[::1/",
        "http://",
    ] {
        fetch()
            .arg(url)
            .assert()
            .code(3)
            .stderr(one_line_with("malformed URL"));
    }
}

#[test]
fn no_address_of_the_asked_family_is_6() {
    fetch()
        .args(["-6", "http://127.0.0.1:9/"])
        .assert()
        .code(6)
        .stderr(one_line_with("no IPv6 address"));
    fetch()
        .args(["-4", "http://[::1]:9/"])
        .assert()
        .code(6)
        .stderr(one_line_with("no IPv4 address"));
}

#[test]
fn refused_connection_is_7() {
    let (_reserved, addr) = crate::support::refusing_address();
    fetch()
        .arg(format!("http://{addr}/"))
        .assert()
        .code(7)
        .stderr(one_line_with(&format!("could not connect to {addr}")));
}

#[test]
fn status_400_and_up_is_22() {
    for status in [
        "404 Not Found",
        "500 Internal Server Error",
        "418 I'm a teapot",
    ] {
        let server = Server::bytes(raw(
            &format!("HTTP/1.1 {status}\nContent-Length: 4\n\n"),
            b"oops",
        ));
        fetch()
            .arg(server.url("/x"))
            .assert()
            .code(22)
            .stdout("")
            .stderr(one_line_with(&format!("/x: HTTP {status} (use --no-fail")));
    }
}

#[test]
fn reason_phrase_bytes_are_escaped_in_the_error() {
    let server =
        Server::bytes(&b"HTTP/1.1 404 Not\xc2\x9b31m Here\r\nContent-Length: 0\r\n\r\n"[..]);
    fetch()
        .arg(server.url("/"))
        .assert()
        .code(22)
        .stderr(one_line_with("HTTP 404 Not\\xc2\\x9b31m Here"));
}

#[test]
fn unwritable_outputs_are_23() {
    let server = Server::body("data");
    let dir = temp();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    for target in [
        dir.path().to_owned(),
        dir.path().join("missing").join("f"),
        blocker.join("f"),
        "/dev/full".into(),
    ] {
        fetch()
            .arg(server.url("/"))
            .arg("-o")
            .arg(&target)
            .assert()
            .code(23)
            .stderr(one_line_with(&target.display().to_string()));
    }
}

#[test]
fn read_timeout_is_28() {
    let server = Server::steps(vec![
        Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 10\n\n", b"12345")),
        Step::AwaitClose,
    ]);
    fetch()
        .args([&server.url("/"), "--read-timeout", "0.3"])
        .assert()
        .code(28)
        .stdout("12345")
        .stderr(one_line_with("no data for 0.3 s (--read-timeout)"));
}

#[test]
fn silence_before_the_head_is_28_too() {
    let server = Server::steps(vec![Step::AwaitClose]);
    fetch()
        .args([&server.url("/"), "--read-timeout", "0.2"])
        .assert()
        .code(28);
}

#[test]
fn max_time_is_28() {
    // Bytes keep coming, so only --max-time can end this.
    let mut steps = vec![Step::Send(raw(
        "HTTP/1.1 200 OK\nContent-Length: 1000\n\n",
        b"",
    ))];
    for _ in 0..100 {
        steps.push(Step::Send(b"x".to_vec()));
        steps.push(Step::Pause(Duration::from_millis(50)));
    }
    let server = Server::steps(steps);
    fetch()
        .args([&server.url("/"), "-m", "0.5", "--read-timeout", "10"])
        .assert()
        .code(28)
        .stderr(one_line_with("--max-time"));
}

#[test]
fn connect_timeout_is_28() {
    // A listener whose accept queue is full drops further SYNs, so a connect
    // to it hangs: the loopback stand-in for an unreachable host.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut held = vec![];
    let mut saturated = false;
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => {
                saturated = true;
                break;
            }
        }
    }
    assert!(
        saturated,
        "could not fill the accept queue of a loopback listener"
    );
    fetch()
        .arg(format!("http://{addr}/"))
        .args(["--connect-timeout", "0.3"])
        .assert()
        .code(28)
        .stderr(one_line_with("--connect-timeout"));
}

#[test]
fn nothing_at_all_is_52() {
    let server = Server::steps(vec![]);
    fetch()
        .arg(server.url("/"))
        .assert()
        .code(52)
        .stderr(one_line_with("without sending a response"));
}

#[test]
fn reset_is_56() {
    let server = Server::steps(vec![
        Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"part")),
        Step::Reset,
    ]);
    fetch()
        .arg(server.url("/"))
        .assert()
        .code(56)
        .stderr(one_line_with("connection reset"));
    let server = Server::steps(vec![Step::Reset]);
    fetch().arg(server.url("/")).assert().code(56);
}
