//! Proxies (DESIGN §6): absolute-form requests, CONNECT tunnels, the environment
//! variables and no_proxy, against the test server and a real tinyproxy.

use crate::support::server::{Server, Step, pattern, raw, response};
use crate::support::tinyproxy::Tinyproxy;
use crate::support::tls::{Identity, identity};
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;

#[test]
fn plain_http_goes_to_the_proxy_in_absolute_form() {
    let proxy = Server::body("via proxy");
    let proxy_url = proxy.url("").replace("http://", "http://pu:pp@");
    fetch()
        .args([
            "--proxy",
            &proxy_url,
            "http://origin.invalid:8080/p?q=1#frag",
        ])
        .assert()
        .success()
        .stdout("via proxy");
    let req = proxy.request();
    assert_eq!(
        req.request_line(),
        "GET http://origin.invalid:8080/p?q=1 HTTP/1.1"
    );
    assert_eq!(req.field("Host"), Some("origin.invalid:8080"));
    assert_eq!(req.field("Proxy-Authorization"), Some("Basic cHU6cHA="));
}

#[test]
fn environment_variables_choose_the_proxy() {
    for var in ["http_proxy", "HTTP_PROXY"] {
        let proxy = Server::body("env proxy");
        fetch()
            .env(var, proxy.url(""))
            .arg("http://origin.invalid/")
            .assert()
            .success()
            .stdout("env proxy");
        assert_eq!(proxy.request().target(), "http://origin.invalid/");
    }
    // https URLs take https_proxy or HTTPS_PROXY, through CONNECT (this
    // proxy refuses the tunnel: 56, after the request reached it).
    for var in ["https_proxy", "HTTPS_PROXY"] {
        let proxy = Server::bytes(response("403 Forbidden", &[], b""));
        fetch()
            .env(var, proxy.url(""))
            .arg("https://origin.invalid/")
            .assert()
            .code(56);
        assert_eq!(
            proxy.request().request_line(),
            "CONNECT origin.invalid:443 HTTP/1.1"
        );
    }
    // NO_PROXY in upper case is honoured too.
    let proxy = Server::body("wrong way");
    let origin = Server::body("direct");
    fetch()
        .env("http_proxy", proxy.url(""))
        .env("NO_PROXY", "127.0.0.1")
        .arg(origin.url("/"))
        .assert()
        .success()
        .stdout("direct");
    assert!(proxy.requests().is_empty());
}

/// A proxy from the environment that fails is named by its variable, with
/// the ways around it; one from --proxy by the flag.
#[test]
fn a_failing_proxy_names_where_it_was_set() {
    let (_reserved, refusing) = crate::support::refusing_address();
    let refusing = format!("http://127.0.0.1:{}", refusing.port());
    fetch()
        .env("http_proxy", &refusing)
        .arg("http://origin.invalid/")
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "(http_proxy; --proxy '' or no_proxy goes around it): Connection refused",
        ));
    fetch()
        .args(["--proxy", &refusing, "http://origin.invalid/"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("(--proxy): Connection refused"));
    fetch()
        .args(["-4"])
        .env("HTTPS_PROXY", "http://[::1]:9")
        .arg("https://origin.invalid/")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "could not resolve proxy ::1 (HTTPS_PROXY; --proxy '' or no_proxy goes around it)",
        ));
}

#[test]
fn no_proxy_and_an_empty_proxy_flag_go_direct() {
    let proxy = Server::body("wrong way");
    let origin = Server::body("direct");
    for (no_proxy, flag) in [
        (Some("127.0.0.1"), None),
        (Some("example.com, *"), None),
        (None, Some("")),
    ] {
        let mut cmd = fetch();
        cmd.env("http_proxy", proxy.url(""));
        if let Some(list) = no_proxy {
            cmd.env("no_proxy", list);
        }
        if let Some(flag) = flag {
            cmd.args(["--proxy", flag]);
        }
        cmd.arg(origin.url("/")).assert().success().stdout("direct");
    }
    assert!(proxy.requests().is_empty());
    assert_eq!(origin.requests().len(), 3);
}

#[test]
fn no_proxy_matches_addresses_whole_or_by_cidr_block() {
    let proxy = Server::body("via proxy");
    let origin = Server::body("direct");
    // An address is not a domain: 0.0.1 is no suffix of 127.0.0.1.
    for (list, answer) in [
        ("0.0.1", "via proxy"),
        (".0.1", "via proxy"),
        ("127.0.0.0/33", "via proxy"),
        ("::1/128", "via proxy"),
        ("127.0.0.0/8", "direct"),
        ("10.0.0.0/8, 127.0.0.1/32", "direct"),
        ("[127.0.0.1]:80", "direct"),
    ] {
        fetch()
            .env("http_proxy", proxy.url(""))
            .env("no_proxy", list)
            .arg(origin.url("/"))
            .assert()
            .success()
            .stdout(answer);
    }
    assert_eq!(proxy.requests().len(), 4);
    assert_eq!(origin.requests().len(), 3);
}

#[test]
fn a_proxy_that_cannot_be_resolved_is_5_and_one_that_refuses_is_7() {
    fetch()
        .args(["-4", "--proxy", "http://[::1]:9", "http://127.0.0.1:9/"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("could not resolve proxy"));
    let (_reserved, refusing) = crate::support::refusing_address();
    let port = refusing.port();
    fetch()
        .args([
            "--proxy",
            &format!("http://127.0.0.1:{port}"),
            "http://origin.invalid/",
        ])
        .assert()
        .code(7);
}

#[test]
fn only_http_proxies_are_accepted() {
    fetch()
        .args(["--proxy", "socks5://127.0.0.1:1080", "http://h/"])
        .assert()
        .code(1);
    fetch()
        .args(["--proxy", "https://127.0.0.1:1080", "http://h/"])
        .assert()
        .code(1);
}

/// A proxy variable fetch cannot use fails the URLs that would go through it,
/// and only those (curl too): an http URL does not care about https_proxy,
/// and no_proxy goes around it.
#[test]
fn an_unusable_proxy_variable_fails_only_the_urls_it_would_carry() {
    let origin = Server::bytes(response("200 OK", &[], b"direct"));
    for bad in ["socks5h://127.0.0.1:1080", "https://127.0.0.1:1080"] {
        fetch()
            .env("https_proxy", bad)
            .arg(origin.url("/"))
            .args(["-s", "-o", "-"])
            .assert()
            .success()
            .stdout("direct");
        fetch()
            .env("https_proxy", bad)
            .arg("https://origin.invalid/")
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains(format!("https_proxy '{bad}'")).and(
                    predicate::str::contains("(--proxy '' or no_proxy goes around it)"),
                ),
            );
    }
    // A redirect from http to https meets it too.
    let redirecting = Server::bytes(response(
        "302 Found",
        &["Location: https://origin.invalid/"],
        b"",
    ));
    fetch()
        .env("https_proxy", "socks5://127.0.0.1:1080")
        .arg(redirecting.url("/"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "https_proxy 'socks5://127.0.0.1:1080'",
        ));
}

#[test]
fn a_refused_tunnel_is_56() {
    let proxy = Server::bytes(response("403 Forbidden", &[], b"no tunnels here"));
    fetch()
        .args(["--proxy", &proxy.url(""), "https://origin.invalid:8443/"])
        .assert()
        .code(56)
        .stderr(predicate::str::contains(
            "the proxy refused the tunnel: HTTP 403 Forbidden",
        ));
    let req = proxy.request();
    assert_eq!(req.request_line(), "CONNECT origin.invalid:8443 HTTP/1.1");
    assert_eq!(req.field("Host"), Some("origin.invalid:8443"));
}

#[test]
fn connect_timeout_covers_the_connect_exchange() {
    // A proxy that takes the CONNECT and never answers: the tunnel is part of
    // connecting, so --connect-timeout ends the wait, not --read-timeout.
    let proxy = Server::steps(vec![Step::AwaitClose]);
    fetch()
        .args(["-s", "--connect-timeout", "0.3", "--read-timeout", "30"])
        .args(["--proxy", &proxy.url(""), "https://origin.invalid/"])
        .assert()
        .code(28)
        .stderr(predicate::str::contains(
            "(--connect-timeout): the proxy's CONNECT exchange did not finish",
        ));
    assert!(proxy.request().request_line().starts_with("CONNECT "));
}

#[test]
fn https_proxy_variable_is_used_for_https() {
    let proxy = Server::bytes(response("407 Proxy Authentication Required", &[], b""));
    fetch()
        .env("https_proxy", proxy.url(""))
        .env("http_proxy", "http://127.0.0.1:9")
        .arg("https://origin.invalid/")
        .assert()
        .code(56);
    assert!(proxy.request().request_line().starts_with("CONNECT "));
}

#[test]
fn http_through_a_real_tinyproxy() {
    let Some(tinyproxy) = Tinyproxy::start() else {
        return;
    };
    let len = 2_000_000;
    let origin = Server::steps(vec![
        Step::Send(raw(
            &format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n"),
            b"",
        )),
        Step::Pattern { from: 0, len },
    ]);
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args([
            "-s",
            "--proxy",
            &tinyproxy.url(),
            &origin.url("/via-tinyproxy"),
        ])
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert!(std::fs::read(&file).unwrap() == pattern(0, len));
    assert_eq!(origin.request().target(), "/via-tinyproxy");
    tinyproxy.assert_forwarded(&format!("GET {} HTTP/1.1", origin.url("/via-tinyproxy")));
}

#[test]
fn https_through_a_real_tinyproxy_tunnel() {
    let Some(tinyproxy) = Tinyproxy::start() else {
        return;
    };
    let id = identity(&["localhost"]);
    let len = 1_000_000;
    let origin = Server::start_tls(id.config.clone(), move |_| {
        vec![
            Step::Send(raw(
                &format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n"),
                b"",
            )),
            Step::Pattern { from: 0, len },
        ]
    });
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s", "-v"])
        .env("https_proxy", tinyproxy.url())
        .arg(origin.localhost_url("/tunnelled"))
        .arg("--cacert")
        .arg(&id.ca_file)
        .arg("-o")
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("> CONNECT localhost:"));
    assert!(std::fs::read(&file).unwrap() == pattern(0, len));
    assert_eq!(origin.request().target(), "/tunnelled");
    let authority = origin.localhost_url("").replace("https://", "");
    tinyproxy.assert_forwarded(&format!("CONNECT {authority} HTTP/1.1"));
}

/// A plain and an https server (for `localhost`, signed by `id`'s CA) that
/// answer `/<name>` with `<name>` and keep the connection.
fn name_servers(id: &Identity) -> (Server, Server) {
    let answer = |req: &crate::support::server::Recorded| {
        let name = req.target().trim_start_matches('/').to_owned();
        vec![
            Step::Send(response("200 OK", &[], name.as_bytes())),
            Step::KeepOpen,
        ]
    };
    (
        Server::start(answer),
        Server::start_tls(id.config.clone(), answer),
    )
}

/// A batch through tinyproxy: plain http is forwarded request by request (the
/// proxy decides about its connections), https tunnels stay open and carry
/// the next request to the same origin.
#[test]
fn a_batch_through_a_real_tinyproxy() {
    let Some(tinyproxy) = Tinyproxy::start() else {
        return;
    };
    let id = identity(&["localhost"]);
    let (plain, secure) = name_servers(&id);
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "--proxy", &tinyproxy.url(), "--cacert"])
        .arg(&id.ca_file)
        .args([
            plain.url("/p1"),
            plain.url("/p2"),
            secure.localhost_url("/s1"),
            secure.localhost_url("/s2"),
            secure.localhost_url("/s3"),
        ])
        .assert()
        .success();
    for name in ["p1", "p2", "s1", "s2", "s3"] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            name.as_bytes()
        );
    }
    let tunnels: Vec<usize> = secure.requests().iter().map(|r| r.connection).collect();
    assert_eq!(tunnels, [0, 0, 0], "one tunnel for the three https URLs");
    for name in ["p1", "p2"] {
        tinyproxy.assert_forwarded(&format!("GET {} HTTP/1.1", plain.url(&format!("/{name}"))));
    }
    let authority = secure.localhost_url("").replace("https://", "");
    let connects = tinyproxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("CONNECT "))
        .count();
    assert_eq!(connects, 1, "{:?}", tinyproxy.requests());
    tinyproxy.assert_forwarded(&format!("CONNECT {authority} HTTP/1.1"));
}

/// The same through `-j`: requests sent ahead on kept connections to the proxy
/// (plain http, in absolute form) and tunnels run by lanes.
#[test]
fn a_parallel_batch_through_a_real_tinyproxy() {
    let Some(tinyproxy) = Tinyproxy::start() else {
        return;
    };
    let id = identity(&["localhost"]);
    let (plain, secure) = name_servers(&id);
    let names = ["p1", "p2", "s1", "p3", "p4", "s2", "p5", "p6", "s3", "p7"];
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-j", "3", "--proxy", &tinyproxy.url(), "--cacert"])
        .arg(&id.ca_file)
        .args(names.map(|name| match name.starts_with('s') {
            true => secure.localhost_url(&format!("/{name}")),
            false => plain.url(&format!("/{name}")),
        }))
        .assert()
        .success()
        .stderr("");
    for name in names {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            name.as_bytes()
        );
        if name.starts_with('p') {
            tinyproxy.assert_forwarded(&format!("GET {} HTTP/1.1", plain.url(&format!("/{name}"))));
        }
    }
    assert!(
        tinyproxy
            .requests()
            .iter()
            .any(|r| r.starts_with("CONNECT localhost:"))
    );
}

/// A proxy that closes instead of answering CONNECT, or cuts its answer, is
/// the proxy's failure (56, naming it), not the origin's; like its 502, 503
/// or 504, it is retried with --retry.
#[test]
fn a_proxy_that_drops_the_tunnel_request_is_56_and_retried() {
    for (answer, says) in [
        (vec![], "it closed the connection"),
        (b"HTTP/1.1 200 Conn".to_vec(), "mid-answer"),
        (
            response("503 Service Unavailable", &[], b""),
            "refused the tunnel: HTTP 503",
        ),
    ] {
        let proxy = Server::bytes(answer);
        fetch()
            .args(["--retry", "1", "--retry-delay", "0.01"])
            .args(["--proxy", &proxy.url(""), "https://origin.invalid/"])
            .assert()
            .code(56)
            .stderr(predicate::str::contains(says).and(predicate::str::contains("--proxy")));
        assert_eq!(proxy.requests().len(), 2, "{says}: retried once");
    }
}

/// A forwarding proxy's 407 asks for proxy credentials, not for --no-fail.
#[test]
fn a_407_says_how_to_give_the_proxy_credentials() {
    let proxy = Server::bytes(response("407 Proxy Authentication Required", &[], b""));
    fetch()
        .args(["--proxy", &proxy.url(""), "http://origin.invalid/"])
        .assert()
        .code(22)
        .stderr(predicate::str::contains(
            "the proxy wants credentials: --proxy http://user:pass@host:port",
        ));
}
