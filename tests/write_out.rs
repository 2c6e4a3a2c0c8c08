//! `-w/--write-out`: one rendering per transfer on stdout, failures included,
//! and `%{json}` lines a script can consume.

use crate::support::server::{Server, response};
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;

#[test]
fn variables_after_a_download() {
    let server = Server::bytes(response(
        "200 OK",
        &["Content-Type: text/plain"],
        b"hello world",
    ));
    let dir = temp();
    let file = dir.path().join("out.txt");
    let out = fetch()
        .args(["-s", &server.url("/x"), "-o"])
        .arg(&file)
        .args(["-w", "%{http_code} %{size_download} %{content_type} %{num_redirects} %{exitcode} %{filename_effective} %{url_effective}\\n%{digest_sha256}\\n"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        stdout,
        format!(
            "200 11 text/plain 0 0 {} {}\nb94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9\n",
            file.display(),
            server.url("/x")
        )
    );
}

#[test]
fn json_lines_for_a_batch_with_a_failure() {
    let server = Server::start(|req: &crate::support::server::Recorded| {
        if req.target() == "/missing" {
            vec![crate::support::server::Step::Send(response(
                "404 Not Found",
                &[],
                b"",
            ))]
        } else {
            vec![crate::support::server::Step::Send(response(
                "200 OK",
                &[],
                b"ok",
            ))]
        }
    });
    let dir = temp();
    let out = fetch()
        .current_dir(dir.path())
        .args([
            "-s",
            &server.url("/present"),
            &server.url("/missing"),
            "-w",
            "%{json}\\n",
        ])
        .assert()
        .code(22);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let ok = lines.iter().find(|l| l.contains("/present")).unwrap();
    let failed = lines.iter().find(|l| l.contains("/missing")).unwrap();
    assert!(
        ok.starts_with("{\"http_code\":200,\"size_download\":2,"),
        "{ok}"
    );
    assert!(ok.contains("\"exitcode\":0,\"errormsg\":null"), "{ok}");
    assert!(failed.starts_with("{\"http_code\":404,"), "{failed}");
    assert!(
        failed.contains("\"exitcode\":22,\"errormsg\":\"http://"),
        "{failed}"
    );
}

/// A failed transfer reports what happened before it failed, as curl does:
/// the last response's status and type, the redirects followed, the last URL
/// and the bytes that arrived.
#[test]
fn failed_transfers_report_what_happened_before_the_failure() {
    use crate::support::server::{Recorded, Step, raw};
    let server = Server::start(|req: &Recorded| {
        let answer = match req.target() {
            "/one" => response("302 Found", &["Location: /two"], b""),
            "/two" => response("301 Moved", &["Location: /gone"], b""),
            "/gone" => response("404 Not Found", &["Content-Type: text/html"], b"no"),
            _ => raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"abc"),
        };
        vec![Step::Send(answer)]
    });
    let format = "%{http_code} %{size_download} %{num_redirects} %{content_type} %{url_effective} %{exitcode} %{digest_sha256}\n";
    let out = fetch()
        .args(["-s", &server.url("/one"), "-o", "-", "-w", format])
        .assert()
        .code(22);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        stdout,
        format!("404 0 2 text/html {} 22 \n", server.url("/gone"))
    );

    let out = fetch()
        .args(["-s", &server.url("/short"), "-w", format])
        .assert()
        .code(18);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        stdout,
        format!("abc200 3 0  {} 18 \n", server.url("/short"))
    );
}

/// Nothing downloaded, nothing hashed: a FILE found complete (`-C`) has no
/// digest to report.
#[test]
fn no_digest_without_a_download() {
    let server = Server::body("new");
    let dir = temp();
    let file = dir.path().join("done");
    std::fs::write(&file, "hi\n").unwrap();
    fetch()
        .args([
            "-s",
            "-C",
            &server.url("/"),
            "-w",
            "[%{digest_sha256}]",
            "-o",
        ])
        .arg(&file)
        .assert()
        .success()
        .stdout("[]");
}

#[test]
fn unknown_variables_are_usage_errors() {
    fetch()
        .args(["http://127.0.0.1:9/", "-w", "%{nonsense}"])
        .assert()
        .code(2);
}

/// The `-w` line could not be written (a full disk): the script that asked
/// for it gets 23, not 0; a reader that left is its own choice (0).
#[test]
fn a_write_out_line_that_cannot_be_written_is_23() {
    let server = Server::bytes(response("200 OK", &[], b"hello"));
    let dir = temp();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    fetch()
        .args(["-s", &server.url("/x"), "-o"])
        .arg(dir.path().join("out"))
        .args(["-w", "%{http_code}\n"])
        .stdout(full)
        .assert()
        .code(23)
        .stderr(predicates::str::starts_with("fetch: stdout: "));
    assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), b"hello");
}

/// `-w @FILE` reads the template from FILE (`@-` from stdin), as with curl.
#[test]
fn the_template_can_come_from_a_file_or_stdin() {
    let server = Server::bytes(response("200 OK", &[], b"hello"));
    let dir = temp();
    let template = dir.path().join("fmt");
    std::fs::write(&template, "code %{http_code}\nsize %{size_download}\n").unwrap();
    let out = dir.path().join("out");
    fetch()
        .args(["-s", &server.url("/x"), "-o"])
        .arg(&out)
        .arg("-w")
        .arg(format!("@{}", template.display()))
        .assert()
        .success()
        .stdout("code 200\nsize 5\n");
    let mut cmd = fetch();
    cmd.args(["-s", &server.url("/x"), "-o"])
        .arg(&out)
        .args(["-w", "@-"]);
    assert_cmd::Command::from_std(cmd)
        .write_stdin("from stdin %{http_code}")
        .assert()
        .success()
        .stdout("from stdin 200");
    fetch()
        .args(["-s", &server.url("/x"), "-w", "@/nonexistent/fmt"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("-w @/nonexistent/fmt: "));
    let mut cmd = fetch();
    cmd.args(["-s", "--input-file", "-", "-w", "@-"]);
    assert_cmd::Command::from_std(cmd)
        .write_stdin(server.url("/x"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot both read stdin"));
}
