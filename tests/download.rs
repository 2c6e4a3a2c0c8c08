//! What a user sees on a good download: where the head and body go, what the
//! request looks like, and the display flags.

use crate::support::server::{Server, Step, ok, pattern, response};
use crate::support::{fetch, has_anonymous_files, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;

const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n";

#[test]
fn output_file_gets_the_body_and_stdout_the_head() {
    let server = Server::bytes(format!("{HEAD}hello"));
    let dir = temp();
    let file = dir.path().join("page.html");
    fetch()
        .arg(server.url("/page"))
        .arg("-o")
        .arg(&file)
        .assert()
        .success()
        .stdout(HEAD)
        .stderr("");
    assert_eq!(fs::read(&file).unwrap(), b"hello");
    assert_eq!(names_in(dir.path()), ["page.html"]);
}

#[test]
fn without_output_the_body_streams_to_stdout_binary_safe() {
    let body: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let server = Server::body(body.clone());
    fetch()
        .arg(server.url("/bin"))
        .assert()
        .success()
        .stdout(body)
        .stderr("");
}

#[test]
fn dash_output_is_stdout() {
    let server = Server::body("body");
    fetch()
        .args([&server.url("/"), "-o", "-"])
        .assert()
        .success()
        .stdout("body");
}

#[test]
fn include_puts_the_head_before_the_body() {
    let server = Server::bytes(format!("{HEAD}hello"));
    fetch()
        .args(["-i", &server.url("/")])
        .assert()
        .success()
        .stdout(format!("{HEAD}hello"));
}

#[test]
fn silent_hides_the_head() {
    let server = Server::bytes(format!("{HEAD}hello"));
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(fs::read(&file).unwrap(), b"hello");
}

#[test]
fn head_request_prints_the_head_and_no_body() {
    let server = Server::bytes(HEAD); // a HEAD response has no body, whatever CL says
    fetch()
        .args(["-I", &server.url("/x")])
        .assert()
        .success()
        .stdout(HEAD);
    assert_eq!(server.request().method(), "HEAD");
}

#[test]
fn head_request_to_a_file_writes_the_head_there() {
    let server = Server::bytes(HEAD);
    let dir = temp();
    let file = dir.path().join("head.txt");
    fetch()
        .args(["-I", &server.url("/x"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stdout("");
    assert_eq!(fs::read_to_string(&file).unwrap(), HEAD);
}

#[test]
fn the_request_is_one_get_with_the_default_fields() {
    let server = Server::body("x");
    fetch()
        .arg(server.url("/a/b?c=d&e#fragment"))
        .assert()
        .success();
    let req = server.request();
    let port = server.addr().port();
    assert_eq!(
        req.raw,
        format!(
            "GET /a/b?c=d&e HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: fetch/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn a_bare_host_and_port_means_http() {
    let server = Server::body("bare");
    fetch()
        .arg(format!("127.0.0.1:{}/p", server.addr().port()))
        .assert()
        .success()
        .stdout("bare");
    assert_eq!(server.request().target(), "/p");
}

#[test]
fn headers_user_agent_and_basic_auth() {
    let server = Server::body("x");
    fetch()
        .args([
            &server.url("/"),
            "-H",
            "X-Trace: 42",
            "-H",
            "Accept: text/html",
            "-H",
            "Connection:",
            "-A",
            "agent/1.0",
            "-u",
            "Aladdin:open sesame",
        ])
        .assert()
        .success();
    let req = server.request();
    assert_eq!(req.field("X-Trace"), Some("42"));
    assert_eq!(req.field("Accept"), Some("text/html"));
    assert_eq!(req.field("Connection"), None);
    assert_eq!(req.field("User-Agent"), Some("agent/1.0"));
    assert_eq!(
        req.field("Authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

/// A binary body to a terminal that did not ask for it stops, as with curl;
/// `-o -` asks for it, and text passes.
#[test]
fn binary_output_to_a_terminal_needs_o_dash() {
    let server = Server::body(&b"GIF89a\0\x01garbage"[..]);
    let out = crate::support::run_on_terminal(&[server.url("/")]);
    assert_eq!(out.status.code(), Some(23), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("the body is binary and stdout is a terminal"),
        "{shown}"
    );
    assert!(!shown.contains("garbage"), "{shown}");

    let out = crate::support::run_on_terminal(&[server.url("/"), "-o".into(), "-".into()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("garbage"));

    let text = Server::body("plain text\n");
    let out = crate::support::run_on_terminal(&[text.url("/")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("plain text"));
}

#[test]
fn an_empty_user_agent_sends_none() {
    let server = Server::body("x");
    fetch()
        .args([&server.url("/"), "-A", ""])
        .assert()
        .success();
    assert_eq!(server.request().field("User-Agent"), None);
}

#[test]
fn a_bare_host_may_carry_a_url_in_its_query() {
    let server = Server::body("x");
    let bare = server
        .url("/login?next=http://other/")
        .replacen("http://", "", 1);
    fetch().args(["-s", &bare]).assert().success().stdout("x");
    assert_eq!(server.request().target(), "/login?next=http://other/");
}

/// Usage errors and URLs that do not parse name what was given, never a
/// password or a header's value.
#[test]
fn messages_never_show_secrets() {
    let cases: &[&[&str]] = &[
        &["http://user:s3cret@127.0.0.1:99999/"],
        &["ftp://user:s3cret@h/"],
        &["--proxy", "http://user:s3cret@127.0.0.1:99999", "http://h/"],
        &["--proxy", "socks5://user:s3cret@h", "http://h/"],
        &["-u", "alice:s3cret\r", "http://h/"],
        &["-H", "Authorization: Bearer s3cret\r", "http://h/"],
        &["-H", "Bearer s3cret", "http://h/"],
    ];
    for args in cases {
        let out = fetch().args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1..=3)), "{args:?}: {err}");
        assert!(
            err.starts_with("fetch: ") && !err.contains("s3cret"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn userinfo_in_the_url_is_basic_auth_and_never_printed() {
    let server = Server::bytes(response("404 Not Found", &[], b""));
    let url = server.url("/").replace("http://", "http://us%65r:s3cret@");
    fetch()
        .arg(&url)
        .assert()
        .code(22)
        .stderr(predicate::str::contains("s3cret").not());
    // "user:s3cret"
    assert_eq!(
        server.request().field("Authorization"),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
}

#[test]
fn verbose_shows_request_and_response_heads_on_stderr() {
    let server = Server::bytes(format!("{HEAD}hello"));
    fetch()
        .args(["-v", &server.url("/v")])
        .assert()
        .success()
        .stdout("hello")
        .stderr(
            predicate::str::contains("* Connected to 127.0.0.1:")
                .and(predicate::str::contains("> GET /v HTTP/1.1\n"))
                .and(predicate::str::contains("> Connection: close\n"))
                .and(predicate::str::contains("< HTTP/1.1 200 OK\n"))
                .and(predicate::str::contains("< Content-Length: 5\n")),
        );
}

#[test]
fn ipv6_literal_urls_work() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback on this machine; skipping");
        return;
    };
    drop(probe);
    let server = Server::start_on("[::1]:0", |_| vec![Step::Send(ok(b"six"))]);
    let url = format!("http://[::1]:{}/", server.addr().port());
    fetch().arg(&url).assert().success().stdout("six");
    assert_eq!(
        server.request().field("Host"),
        Some(format!("[::1]:{}", server.addr().port()).as_str())
    );
    fetch().args(["-6", &url]).assert().success().stdout("six");

    // With a zone (RFC 6874, as link-local addresses need): connected through
    // that interface; the zone is not sent.
    let zoned = format!("http://[::1%25lo]:{}/", server.addr().port());
    fetch().arg(&zoned).assert().success().stdout("six");
    let host = server
        .requests()
        .last()
        .unwrap()
        .field("Host")
        .map(str::to_owned);
    assert_eq!(host, Some(format!("[::1]:{}", server.addr().port())));
}

#[test]
fn large_body_arrives_intact() {
    let len = 8 * 1024 * 1024 + 7;
    let server = Server::start(move |_| {
        vec![
            Step::Send(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()),
            Step::Pattern { from: 0, len },
        ]
    });
    let dir = temp();
    let file = dir.path().join("big");
    fetch()
        .args(["-s", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success();
    assert!(fs::read(&file).unwrap() == pattern(0, len));
}

#[test]
fn no_fail_keeps_an_error_body() {
    let server = Server::bytes(response("404 Not Found", &[], b"not here"));
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", "--no-fail", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(fs::read(&file).unwrap(), b"not here");
}

#[test]
fn printed_head_is_verbatim_in_a_pipe() {
    let head = "HTTP/1.1 200 OK\r\nX: caf\u{e9}\r\nContent-Length: 0\r\n\r\n";
    let server = Server::bytes(head);
    let dir = temp();
    fetch()
        .args([&server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success()
        .stdout(head);
}

/// A C1 control (CSI) in a field or the reason phrase reaches the terminal
/// escaped, never raw.
#[test]
fn printed_head_is_escaped_on_a_terminal() {
    for (head, shown_as) in [
        (
            &b"HTTP/1.1 200 OK\r\nX-Evil: a\xc2\x9b2Jb\r\nContent-Length: 0\r\n\r\n"[..],
            "X-Evil: a\\xc2\\x9b2Jb",
        ),
        (
            b"HTTP/1.1 200 O\xc2\x9b2JK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 O\\xc2\\x9b2JK",
        ),
    ] {
        // `script` gives fetch a pseudo-terminal as stdout.
        let server = Server::bytes(head);
        let dir = temp();
        let out = crate::support::run_on_terminal(&[
            server.url("/"),
            "-o".into(),
            dir.path().join("f").display().to_string(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains(shown_as), "{shown:?}");
        assert!(
            !out.stdout.windows(2).any(|w| w == b"\xc2\x9b"),
            "{shown:?}"
        );
    }
}

/// `-I -o FILE` makes the head the content of FILE: its bytes are the
/// server's whether or not stdout is a terminal (escaping is for display).
#[test]
fn a_head_saved_with_head_is_verbatim_whatever_stdout_is() {
    let head = b"HTTP/1.1 200 OK\r\nX-Evil: a\xc2\x9b2Jb\r\nContent-Length: 0\r\n\r\n";
    let server = Server::bytes(&head[..]);
    let dir = temp();
    let file = dir.path().join("h");
    let out = crate::support::run_on_terminal(&[
        "-I".into(),
        server.url("/"),
        "-o".into(),
        file.display().to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read(&file).unwrap(), head);
}

#[test]
fn huge_time_limits_mean_forever_not_a_crash() {
    let server = Server::body("patient");
    fetch()
        .args([
            "--connect-timeout",
            "inf",
            "-m",
            "1e300",
            "--read-timeout",
            "1e20",
        ])
        .args(["--retry-delay", "1e30", &server.url("/")])
        .assert()
        .success()
        .stdout("patient");
}

#[test]
fn plain_bodies_to_files_take_the_zero_copy_path_and_others_do_not() {
    let len = 5 * 1024 * 1024 + 3;
    let big = move || {
        vec![
            Step::Send(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()),
            Step::Pattern { from: 0, len },
        ]
    };
    let server = Server::start(move |_| big());
    let dir = temp();
    let file = dir.path().join("f");
    let zero_copy = predicates::str::contains("Zero-copy");
    let new_file = if has_anonymous_files(dir.path()) {
        "* Writing to an anonymous file, linked in as"
    } else {
        ".part, renamed onto"
    };
    fetch()
        .args(["-v", "-s", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(zero_copy.clone())
        .stderr(predicates::str::contains(new_file));
    assert!(fs::read(&file).unwrap() == pattern(0, len));
    // Again, onto the file that is there now.
    fetch()
        .args(["-v", "-s", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(zero_copy.clone())
        .stderr(predicates::str::contains(".part, renamed onto"));
    fetch()
        .args(["-v", "-s", &server.url("/"), "-o", "/dev/null"])
        .assert()
        .success()
        .stderr(zero_copy.clone())
        .stderr(predicates::str::contains(
            "* Writing to /dev/null directly (not a regular file)",
        ));

    // Bytes that must pass through fetch (a checksum, stdout) are copied.
    let sum = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(pattern(0, len));
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    fetch()
        .args([
            "-v",
            "-s",
            &server.url("/"),
            "--checksum",
            &format!("sha256:{sum}"),
            "-o",
        ])
        .arg(&file)
        .assert()
        .success()
        .stderr(zero_copy.clone().not());
    fetch()
        .args(["-v", &server.url("/")])
        .assert()
        .success()
        .stderr(zero_copy.not());
}

/// The memory goal (BENCHMARKS.md, row 7) counts every mapped page: fetch must
/// not map glibc's libm, whose one function it calls (`pow`) src/main.rs
/// defines instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_running_download_maps_no_libm() {
    let server = Server::steps(vec![
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf".to_vec()),
        Step::Signal,
        Step::AwaitClose,
    ]);
    let mut child = fetch()
        .args(["-s", &server.url("/"), "-o", "/dev/null"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    server.reached();
    let maps = fs::read_to_string(format!("/proc/{}/maps", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(maps.contains("/libc."), "not fetch's maps: {maps}");
    assert!(!maps.contains("/libm."), "libm is mapped: {maps}");
}
