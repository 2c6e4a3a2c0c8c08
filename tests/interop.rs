//! Interop with servers nobody here wrote (issue 5): byte-exact downloads from
//! nginx (plain, gzip-chunked, ranged, redirected, missing, TLS), HTTP/1.0 from
//! python's http.server, and all of it through a real tinyproxy.

use crate::support::nginx::Nginx;
use crate::support::python::PythonHttp;
use crate::support::tinyproxy::Tinyproxy;
use crate::support::tls::identity;
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::io::Read;

fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    "It was the best of times, it was the worst of times; "
        .repeat(len / 53 + 1)
        .into_bytes()[..len]
        .to_vec()
}

/// Downloads `url` (with `args`) into a temp file and returns its bytes.
fn download(url: &str, args: &[&str]) -> Vec<u8> {
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args(["-s"])
        .args(args)
        .arg(url)
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    fs::read(&file).unwrap()
}

const NGINX_EXTRA: &str = "\
    gzip on; gzip_types *; gzip_min_length 0;
    location = /old { return 301 /moved/new.bin; }
    location = /loop { return 302 /loop; }";

#[test]
fn nginx_plain_ranged_redirected_and_missing() {
    let Some(nginx) = Nginx::start(NGINX_EXTRA) else {
        return;
    };
    nginx.mkdir("moved");
    let body = data(5_000_003);
    nginx.put("plain.bin", &body);
    nginx.put("moved/new.bin", b"the new place");

    assert!(download(&nginx.url("/plain.bin"), &[]) == body);

    // An explicit range: nginx answers 206 with exactly those bytes.
    assert_eq!(
        download(&nginx.url("/plain.bin"), &["-H", "Range: bytes=1000-1999"]),
        &body[1000..2000]
    );

    assert_eq!(download(&nginx.url("/old"), &[]), b"the new place");
    let moved = download(&nginx.url("/old"), &["--no-follow"]);
    assert!(String::from_utf8_lossy(&moved).contains("301 Moved Permanently"));
    fetch().arg(nginx.url("/loop")).assert().code(47);

    let dir = temp();
    fetch()
        .arg(nginx.url("/missing"))
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(22)
        .stderr(predicate::str::contains("HTTP 404 Not Found"));
    assert!(names_in(dir.path()).is_empty());
    let page = download(&nginx.url("/missing"), &["--no-fail"]);
    assert!(String::from_utf8_lossy(&page).contains("404 Not Found"));
}

#[test]
fn nginx_gzip_chunked() {
    let Some(nginx) = Nginx::start(NGINX_EXTRA) else {
        return;
    };
    let body = text(2_000_000);
    nginx.put("book.txt", &body);
    let url = nginx.url("/book.txt");

    // Decoded while streaming; nginx sends it gzip-compressed and chunked.
    let dir = temp();
    let file = dir.path().join("book.txt");
    fetch()
        .args(["-v", "-s", "--compressed", &url, "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("< Content-Encoding: gzip")
                .and(predicate::str::contains("< Transfer-Encoding: chunked")),
        );
    assert!(fs::read(&file).unwrap() == body);

    // Without --compressed nothing is asked for: the plain bytes.
    assert!(download(&url, &[]) == body);

    // Asked for by hand, the gzip bytes are saved exactly as received.
    let raw = download(&url, &["-H", "Accept-Encoding: gzip"]);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut decoded)
        .unwrap();
    assert!(raw.len() < body.len() / 2 && decoded == body);
}

#[test]
fn nginx_over_tls_with_a_private_ca() {
    let id = identity(&["localhost", "127.0.0.1"]);
    let Some(nginx) = Nginx::start_tls("", &id.cert_file, &id.key_file) else {
        return;
    };
    let body = data(3_000_000);
    nginx.put("secure.bin", &body);
    let ca = id.ca_file.display().to_string();
    assert!(download(&nginx.localhost_url("/secure.bin"), &["--cacert", &ca]) == body);
    assert!(download(&nginx.url("/secure.bin"), &["--cacert", &ca]) == body);
    fetch()
        .arg(nginx.localhost_url("/secure.bin"))
        .assert()
        .code(60);
    assert!(download(&nginx.localhost_url("/secure.bin"), &["-k"]) == body);
}

#[test]
fn python_http_server_speaks_http_1_0() {
    let dir = temp();
    let body = data(1_234_567);
    fs::write(dir.path().join("py.bin"), &body).unwrap();
    let Some(python) = PythonHttp::start(dir.path()) else {
        return;
    };
    let url = python.url("/py.bin");
    let head = fetch().args(["-I", &url]).output().unwrap();
    assert!(String::from_utf8_lossy(&head.stdout).starts_with("HTTP/1.0 200 OK\r\n"));
    assert!(download(&url, &[]) == body);
    fetch().arg(python.url("/nothing-here")).assert().code(22);
}

#[test]
fn everything_through_tinyproxy() {
    let Some(proxy) = Tinyproxy::start() else {
        return;
    };
    let Some(nginx) = Nginx::start(NGINX_EXTRA) else {
        return;
    };
    let body = data(2_500_000);
    nginx.put("via.bin", &body);
    assert!(download(&nginx.url("/via.bin"), &["--proxy", &proxy.url()]) == body);
    proxy.assert_forwarded(&format!("GET {} HTTP/1.1", nginx.url("/via.bin")));

    let text_body = text(500_000);
    nginx.put("via.txt", &text_body);
    assert!(
        download(
            &nginx.url("/via.txt"),
            &["--proxy", &proxy.url(), "--compressed"]
        ) == text_body
    );
    proxy.assert_forwarded(&format!("GET {} HTTP/1.1", nginx.url("/via.txt")));

    let id = identity(&["localhost"]);
    let Some(secure) = Nginx::start_tls("", &id.cert_file, &id.key_file) else {
        return;
    };
    secure.put("tunnel.bin", &body);
    let ca = id.ca_file.display().to_string();
    assert!(
        download(
            &secure.localhost_url("/tunnel.bin"),
            &["--proxy", &proxy.url(), "--cacert", &ca]
        ) == body
    );
    let authority = secure.localhost_url("").replace("https://", "");
    proxy.assert_forwarded(&format!("CONNECT {authority} HTTP/1.1"));

    let dir = temp();
    fs::write(dir.path().join("py.bin"), &body).unwrap();
    let Some(python) = PythonHttp::start(dir.path()) else {
        return;
    };
    assert!(download(&python.url("/py.bin"), &["--proxy", &proxy.url()]) == body);
    proxy.assert_forwarded(&format!("GET {} HTTP/1.1", python.url("/py.bin")));
}
