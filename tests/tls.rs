//! https (DESIGN §6): trust from --cacert, SSL_CERT_FILE or nothing, -k, the
//! failures 35, 60 and 77, close_notify rules, and no downgrade on redirect.

use crate::support::server::{Server, Step, raw, response};
use crate::support::tls::identity;
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;

fn tls_server(names: &[&str], steps: Vec<Step>) -> (Server, crate::support::tls::Identity) {
    let id = identity(names);
    let server = Server::start_tls(id.config.clone(), move |_| steps.clone());
    (server, id)
}

fn hello() -> Vec<Step> {
    vec![Step::Send(response("200 OK", &[], b"secure hello"))]
}

/// TLS 1.2 servers are still everywhere: fetch speaks it too.
#[test]
fn tls_1_2_is_spoken() {
    let id = identity(&["localhost"]);
    let server = Server::start_tls(id.tls12_config(), |_| hello());
    fetch()
        .args(["-v", &server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("secure hello")
        .stderr(predicate::str::contains("* TLSv1_2 handshake done"));
}

/// SNI names the host, so a server with many sites presents the right
/// certificate; an address names no host (RFC 6066 §3), so none is sent.
#[test]
fn sni_names_the_host() {
    let id = identity(&["localhost", "127.0.0.1"]);
    let server = Server::start_tls(id.sni_only_config("localhost"), |_| hello());
    fetch()
        .args([&server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("secure hello");
    // The control: without SNI this server has no certificate to present.
    fetch()
        .args([&server.url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .code(35);
}

#[test]
fn trusted_with_cacert_by_name_and_by_address() {
    let (server, id) = tls_server(&["localhost", "127.0.0.1"], hello());
    fetch()
        .args(["-v", &server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("secure hello")
        .stderr(
            predicate::str::contains("handshake done").and(predicate::str::contains(format!(
                "* Trusted roots: 1 from --cacert {}",
                id.ca_file.display()
            ))),
        );
    fetch()
        .args([&server.url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("secure hello");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn ssl_cert_file_is_honoured() {
    let (server, id) = tls_server(&["localhost"], hello());
    fetch()
        .arg(server.localhost_url("/"))
        .env("SSL_CERT_FILE", &id.ca_file)
        .assert()
        .success()
        .stdout("secure hello");
}

#[test]
fn ssl_cert_dir_is_honoured() {
    let (server, id) = tls_server(&["localhost"], hello());
    fetch()
        .args(["-v", &server.localhost_url("/")])
        .env("SSL_CERT_DIR", id.ca_file.parent().unwrap())
        .assert()
        .success()
        .stdout("secure hello")
        .stderr(predicate::str::contains("Trusted roots: "));
}

#[test]
fn ssl_cert_variables_naming_nothing_usable_are_77_not_the_bundled_roots() {
    // A typo in SSL_CERT_FILE must not quietly trust the public CAs instead.
    let (server, _id) = tls_server(&["localhost"], hello());
    let dir = temp();
    let missing = dir.path().join("typo.pem");
    for (var, needle) in [
        ("SSL_CERT_FILE", "SSL_CERT_FILE="),
        ("SSL_CERT_DIR", "SSL_CERT_DIR="),
    ] {
        fetch()
            .arg(server.localhost_url("/"))
            .env(var, &missing)
            .assert()
            .code(77)
            .stderr(predicate::str::contains(needle))
            .stderr(predicate::str::contains("No such file or directory"));
    }
    assert!(server.requests().is_empty());
}

#[test]
fn an_unknown_issuer_is_60() {
    let (server, _id) = tls_server(&["localhost"], hello());
    let dir = temp();
    fetch()
        .arg(server.localhost_url("/"))
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(60)
        .stderr(predicate::str::contains(
            "certificate not trusted: issued by an unknown authority",
        ));
    assert!(crate::support::names_in(dir.path()).is_empty());
    assert!(server.requests().is_empty());

    // With --cacert, the message says that file lacks the issuer: here it
    // holds the server's own certificate, a common mistake.
    let (server, id) = tls_server(&["localhost"], hello());
    fetch()
        .arg(server.localhost_url("/"))
        .arg("--cacert")
        .arg(&id.cert_file)
        .assert()
        .code(60)
        .stderr(predicate::str::contains(
            "issued by an authority the --cacert file does not hold",
        ));
}

#[test]
fn a_certificate_for_another_host_is_60() {
    let (server, id) = tls_server(&["localhost"], hello());
    fetch()
        .args([&server.url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .code(60)
        .stderr(predicate::str::contains("not valid for this host name"));
}

#[test]
fn insecure_skips_verification_and_says_so() {
    let (server, _id) = tls_server(&["localhost"], hello());
    fetch()
        .args(["-k", "-v", &server.url("/")])
        .assert()
        .success()
        .stdout("secure hello")
        .stderr(predicate::str::contains("verification is off (-k)"));
}

#[test]
fn https_to_a_plain_http_port_is_35() {
    let plain = Server::body("not tls");
    let url = plain.url("/").replace("http://", "https://");
    fetch()
        .arg(url)
        .assert()
        .code(35)
        .stderr(predicate::str::contains(
            "TLS handshake failed: the server did not answer in TLS (plain http on this port?)",
        ));
}

#[test]
fn unusable_cacert_is_77() {
    let dir = temp();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for file in [dir.path().join("missing.pem"), empty] {
        fetch()
            .args(["https://127.0.0.1:9/", "--cacert"])
            .arg(&file)
            .assert()
            .code(77)
            .stderr(predicate::str::contains("(--cacert)"));
    }
}

#[test]
fn close_without_close_notify() {
    // A body that ends only with the connection cannot prove it is complete.
    let (server, id) = tls_server(
        &["localhost"],
        vec![
            Step::Send(raw("HTTP/1.1 200 OK\n\n", b"maybe all")),
            Step::EndWithoutNotify,
        ],
    );
    let dir = temp();
    fetch()
        .args([&server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(18)
        .stderr(predicate::str::contains("close_notify"));
    assert!(crate::support::names_in(dir.path()).is_empty());

    // With a length or chunked framing, a complete body is complete.
    for steps in [
        vec![
            Step::Send(response("200 OK", &[], b"framed")),
            Step::EndWithoutNotify,
        ],
        vec![
            Step::Send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"6\r\nframed\r\n0\r\n\r\n",
            )),
            Step::EndWithoutNotify,
        ],
    ] {
        let (server, id) = tls_server(&["localhost"], steps);
        fetch()
            .args([&server.localhost_url("/"), "--cacert"])
            .arg(&id.ca_file)
            .assert()
            .success()
            .stdout("framed");
    }

    // And a close-delimited body with close_notify is complete too.
    let (server, id) = tls_server(
        &["localhost"],
        vec![Step::Send(raw("HTTP/1.1 200 OK\n\n", b"all of it"))],
    );
    fetch()
        .args([&server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("all of it");
}

#[test]
fn a_length_body_cut_without_close_notify_is_18() {
    let (server, id) = tls_server(
        &["localhost"],
        vec![
            Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 50\n\n", b"short")),
            Step::EndWithoutNotify,
        ],
    );
    fetch()
        .args([&server.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .code(18)
        .stderr(predicate::str::contains("5 of 50 bytes"));
}

#[test]
fn redirects_from_https_to_http_are_refused() {
    let plain = Server::body("downgraded");
    let location = plain.url("/");
    let id = identity(&["localhost"]);
    let secure = Server::start_tls(id.config.clone(), move |_| {
        vec![Step::Send(response(
            "302 Found",
            &[&format!("Location: {location}")],
            b"",
        ))]
    });
    fetch()
        .args([&secure.localhost_url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "refusing to follow a redirect from https to http",
        ));
    assert!(plain.requests().is_empty());
}

#[test]
fn http_to_https_redirects_are_followed() {
    let id = identity(&["localhost"]);
    let secure = Server::start_tls(id.config.clone(), |_| hello());
    let location = secure.localhost_url("/");
    let plain = Server::start(move |_| {
        vec![Step::Send(response(
            "301 Moved",
            &[&format!("Location: {location}")],
            b"",
        ))]
    });
    fetch()
        .args([&plain.url("/"), "--cacert"])
        .arg(&id.ca_file)
        .assert()
        .success()
        .stdout("secure hello");
}

#[test]
fn connect_timeout_covers_the_handshake() {
    // The server accepts the connection and never answers the ClientHello:
    // connecting is not over, so --connect-timeout ends it, not --read-timeout.
    let id = identity(&["localhost"]);
    let server =
        Server::start_tls_with_prelude(id.config.clone(), |_| vec![Step::AwaitClose], |_| hello());
    fetch()
        .args(["-s", "--connect-timeout", "0.3", "--read-timeout", "30"])
        .arg(server.url("/"))
        .assert()
        .code(28)
        .stderr(predicate::str::contains(
            "no connection within 0.3 s (--connect-timeout): the TLS handshake did not finish",
        ));
    // --max-time still bounds everything.
    fetch()
        .args(["-s", "--connect-timeout", "30", "--read-timeout", "30"])
        .args(["-m", "0.3"])
        .arg(server.url("/"))
        .assert()
        .code(28)
        .stderr(predicate::str::contains("--max-time"));
    assert!(server.requests().is_empty());
}

#[test]
fn a_connection_cut_in_the_handshake_is_35_and_retried() {
    // The first connection is reset (or closed) after the client's hello,
    // before the server's, and the next one works: --retry gets there. (The
    // ClientHello is read first, so the cut cannot reach the client while it
    // is still connecting, where it would be a connect failure, 7.)
    for cut in [Step::Reset, Step::EndWithoutNotify] {
        let id = identity(&["localhost"]);
        let first = cut.clone();
        let server = Server::start_tls_with_prelude(
            id.config.clone(),
            move |n| match n {
                0 => vec![Step::AwaitBytes(5), first.clone()],
                _ => vec![],
            },
            |_| hello(),
        );
        fetch()
            .args(["-v", "--retry", "1", "--retry-delay", "0.01"])
            .arg(server.localhost_url("/"))
            .arg("--cacert")
            .arg(&id.ca_file)
            .assert()
            .success()
            .stdout("secure hello")
            .stderr(predicate::str::contains("Retry 1 of 1"));
        assert_eq!(server.requests().len(), 1);

        // Without retries, it is a failed handshake: 35.
        let server = Server::start_tls_with_prelude(
            id.config.clone(),
            move |_| vec![Step::AwaitBytes(5), cut.clone()],
            |_| hello(),
        );
        fetch()
            .arg(server.localhost_url("/"))
            .arg("--cacert")
            .arg(&id.ca_file)
            .assert()
            .code(35)
            .stderr(predicate::str::contains("TLS handshake failed: the "));
    }
}

#[test]
fn a_close_without_close_notify_before_the_body_is_52_or_8() {
    // As over plain http: close_notify matters only to a body that runs
    // until the close.
    for (steps, code, message) in [
        (
            vec![Step::EndWithoutNotify],
            52,
            "closed the connection without sending a response",
        ),
        (
            vec![
                Step::Send(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()),
                Step::EndWithoutNotify,
            ],
            8,
            "closed in the middle of the response head",
        ),
    ] {
        let (server, id) = tls_server(&["localhost"], steps);
        fetch()
            .args([&server.localhost_url("/"), "--cacert"])
            .arg(&id.ca_file)
            .assert()
            .code(code)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains("close_notify").not());
    }
}
