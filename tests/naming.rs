//! `-O` and `--output-dir`: file names come from the URL the user gave, made
//! safe, and never from the server (Content-Disposition, redirect targets).

use crate::support::server::{Recorded, Server, Step, response};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use std::fs;

#[test]
fn remote_name_is_the_last_path_segment() {
    let server = Server::body("tarball");
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([
            "-s",
            "-O",
            &server.url("/dir/release-1.0.tar.gz?token=x#frag"),
        ])
        .assert()
        .success()
        .stdout("");
    assert_eq!(names_in(dir.path()), ["release-1.0.tar.gz"]);
    assert_eq!(
        fs::read(dir.path().join("release-1.0.tar.gz")).unwrap(),
        b"tarball"
    );
}

#[test]
fn empty_and_hostile_segments_get_safe_names() {
    let server = Server::body("x");
    for (path, name) in [
        ("/", "index.html"),
        ("/dir/", "index.html"),
        ("/..%2F..%2Fetc%2Fpasswd", "etcpasswd"),
        ("/.hidden", "hidden"),
        ("/a%5Cb", "ab"),
        ("/my%20file.txt", "my file.txt"),
    ] {
        let dir = temp();
        fetch()
            .current_dir(dir.path())
            .args(["-s", "-O", &server.url(path)])
            .assert()
            .success();
        assert_eq!(names_in(dir.path()), [name], "{path}");
    }
}

#[test]
fn the_server_never_chooses_the_name() {
    // Content-Disposition is ignored, and so is the redirect target's name.
    let server = Server::start(|req: &Recorded| match req.target() {
        "/download" => vec![Step::Send(response(
            "302 Found",
            &["Location: /elsewhere/evil.sh"],
            b"",
        ))],
        _ => vec![Step::Send(response(
            "200 OK",
            &["Content-Disposition: attachment; filename=\"../../.bashrc\""],
            b"payload",
        ))],
    });
    let dir = temp();
    let inner = dir.path().join("inner");
    fs::create_dir(&inner).unwrap();
    fetch()
        .current_dir(&inner)
        .args(["-s", "-O", &server.url("/download")])
        .assert()
        .success();
    assert_eq!(names_in(&inner), ["download"]);
    assert_eq!(names_in(dir.path()), ["inner"]);
}

#[test]
fn output_dir_is_created_and_implies_remote_names() {
    let server = Server::body("in a dir");
    let dir = temp();
    let target = dir.path().join("new").join("dir");
    fetch()
        .args(["-s", &server.url("/file.bin"), "--output-dir"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(fs::read(target.join("file.bin")).unwrap(), b"in a dir");
}

/// As with curl, `--output-dir` holds `-o` files too; it is made only once the
/// whole command line is known to be good; a file in its way is named so.
#[test]
fn output_dir_holds_o_files_and_is_made_only_for_a_good_command_line() {
    let server = Server::body("in a dir");
    let dir = temp();
    let target = dir.path().join("dl");
    fetch()
        .args([
            "-s",
            &server.url("/file.bin"),
            "-o",
            "named.bin",
            "--output-dir",
        ])
        .arg(&target)
        .current_dir(dir.path())
        .assert()
        .success();
    assert_eq!(fs::read(target.join("named.bin")).unwrap(), b"in a dir");
    assert_eq!(names_in(dir.path()), ["dl"]);

    let unmade = dir.path().join("unmade");
    fetch()
        .args(["-s", &server.url("/f"), "-w", "%{bogus}", "--output-dir"])
        .arg(&unmade)
        .assert()
        .code(2);
    assert!(!unmade.exists());

    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    fetch()
        .args(["-s", &server.url("/f"), "--output-dir"])
        .arg(&file)
        .assert()
        .code(23)
        .stderr(predicates::str::contains("not a directory (--output-dir)"));
}
