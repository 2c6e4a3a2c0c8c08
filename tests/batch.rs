//! Several URLs (DESIGN §1, §4): remote names, `--input-file`, `-j`, failures that
//! do not stop the others, the first failure's exit code, and the summary line.

use crate::support::server::{Recorded, Server, Step, response};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::time::Duration;

/// Serves `/<name>` with the body `<name>`; `slow-<rest>` answers after a
/// pause, `fail-<code>` with that status, `garbage` with a malformed head.
fn files_server() -> Server {
    Server::start(|req: &Recorded| {
        let name = req.target().trim_start_matches('/').to_owned();
        let mut steps = vec![];
        let rest = match name.strip_prefix("slow-") {
            Some(rest) => {
                steps.push(Step::Pause(Duration::from_millis(300)));
                rest
            }
            None => name.as_str(),
        };
        steps.push(Step::Send(match rest.strip_prefix("fail-") {
            Some(code) => response(&format!("{code} Failed"), &[], b""),
            None if rest == "garbage" => b"garbage\r\n\r\n".to_vec(),
            None => response("200 OK", &[], name.as_bytes()),
        }));
        steps
    })
}

#[test]
fn several_urls_go_to_their_names_with_a_summary_and_no_heads() {
    let server = files_server();
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args([server.url("/a.txt"), server.url("/b.txt")])
        .assert()
        .success()
        .stdout("")
        .stderr(
            predicate::str::is_match("^fetch: 2 URLs: 2 downloaded \\(10 bytes in [0-9.]+ s\\)\n$")
                .unwrap(),
        );
    assert_eq!(names_in(dir.path()), ["a.txt", "b.txt"]);
    assert_eq!(fs::read(dir.path().join("b.txt")).unwrap(), b"b.txt");
}

#[test]
fn each_output_flag_names_one_url_in_order() {
    let server = files_server();
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", &server.url("/a"), &server.url("/b"), "-o", "first"])
        .assert()
        .success();
    assert_eq!(names_in(dir.path()), ["b", "first"]);
    assert_eq!(fs::read(dir.path().join("first")).unwrap(), b"a");
}

#[test]
fn input_file_with_comments_and_stdin() {
    let server = files_server();
    let dir = temp();
    let list = dir.path().join("urls.txt");
    fs::write(
        &list,
        format!(
            "# a list\n\n{}\n   {}   \n# end\n",
            server.url("/one"),
            server.url("/two")
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    fetch()
        .args(["-s", "--input-file"])
        .arg(&list)
        .arg("--output-dir")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(names_in(&out), ["one", "two"]);

    let out = dir.path().join("from-stdin");
    let mut child = fetch()
        .args(["-s", "--input-file", "-", "--output-dir"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let list = format!("{}\n{}\n", server.url("/three"), server.url("/four"));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), list.as_bytes()).unwrap();
    child.wait_with_output().unwrap().assert().success();
    assert_eq!(names_in(&out), ["four", "three"]);
}

/// A list (or an argument) with raw 8-bit bytes, a Latin-1 file name, is not
/// a reason to stop: the bytes are percent-encoded, as a Location's are.
#[test]
fn urls_with_latin_1_bytes_are_fetched_percent_encoded() {
    use std::os::unix::ffi::OsStrExt;
    let server = files_server();
    let dir = temp();
    let list = dir.path().join("urls.txt");
    let mut bytes = server.url("/caf").into_bytes();
    bytes.extend(b"\xe9\r\n");
    bytes.extend(server.url("/two").into_bytes());
    bytes.push(b'\n');
    fs::write(&list, bytes).unwrap();
    let out = dir.path().join("out");
    fetch()
        .args(["-s", "--input-file"])
        .arg(&list)
        .arg("--output-dir")
        .arg(&out)
        .assert()
        .success();
    let mut arg = server.url("/na").into_bytes();
    arg.extend(b"\xefve");
    fetch()
        .arg("-s")
        .arg(std::ffi::OsStr::from_bytes(&arg))
        .arg("-o")
        .arg(out.join("three"))
        .assert()
        .success();
    let targets: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.target().to_owned())
        .collect();
    assert_eq!(targets, ["/caf%E9", "/two", "/na%EFve"]);
    assert_eq!(names_in(&out).len(), 3);
}

#[test]
fn failures_do_not_stop_the_others_and_the_first_in_input_order_decides() {
    let server = files_server();
    let dir = temp();
    // The 404 is earlier in the input but finishes later than the garbage.
    let urls = [
        server.url("/ok-1"),
        server.url("/slow-fail-404"),
        server.url("/garbage"),
        server.url("/ok-2"),
    ];
    let out = fetch()
        .current_dir(dir.path())
        .args(["-j", "4"])
        .args(&urls)
        .assert()
        .code(22);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    // Failures are reported as they happen: the garbage first.
    assert!(
        lines[0].ends_with("/garbage: malformed response: not an HTTP/1.x status line: garbage"),
        "{stderr}"
    );
    assert!(
        lines[1].ends_with("/slow-fail-404: HTTP 404 Failed (use --no-fail to keep the body)"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("fetch: 4 URLs: 2 downloaded (8 bytes in "),
        "{stderr}"
    );
    assert!(lines[2].ends_with(", 2 failed"), "{stderr}");
    assert_eq!(names_in(dir.path()), ["ok-1", "ok-2"]);
}

#[test]
fn a_list_saved_by_a_windows_editor_works() {
    let server = files_server();
    let dir = temp();
    let list = dir.path().join("urls.txt");
    let text = format!("\u{feff}{}\r\n{}\r\n", server.url("/w1"), server.url("/w2"));
    fs::write(&list, text).unwrap();
    let out = dir.path().join("out");
    fetch()
        .args(["-s", "--input-file"])
        .arg(&list)
        .arg("--output-dir")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(names_in(&out), ["w1", "w2"]);

    // A line '-' is one bad URL among the others (only on the command line
    // is it curl's `-C -` habit, a usage error).
    fs::write(&list, format!("-\n{}\n", server.url("/w3"))).unwrap();
    fetch()
        .args(["-s", "--connect-timeout", "2", "--input-file"])
        .arg(&list)
        .arg("--output-dir")
        .arg(&out)
        .assert()
        .code(predicate::eq(6).or(predicate::eq(28)))
        .stderr(predicate::str::starts_with("fetch: http://-/: "));
    assert_eq!(names_in(&out), ["w1", "w2", "w3"]);
}

/// A URL that does not parse is a failed transfer like any other: the rest
/// of the list is downloaded, and its exit code (3) counts in input order.
#[test]
fn a_bad_url_does_not_stop_the_others() {
    let server = files_server();
    let dir = temp();
    let bad_port = server
        .url("/c2")
        .replace(&server.addr().port().to_string(), "99999");
    let out = fetch()
        .current_dir(dir.path())
        .args([
            &server.url("/c1"),
            &bad_port,
            "ftp://u:s3cret@h/x",
            &server.url("/c3"),
        ])
        .args(["-w", "%{exitcode} %{url_effective}\n"])
        .assert()
        .code(3);
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].ends_with(":99999/c2: malformed URL: invalid port number"),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        "fetch: ftp://h/x: unsupported scheme 'ftp' (only http and https)"
    );
    assert!(
        lines[2].starts_with("fetch: 4 URLs: 2 downloaded") && lines[2].ends_with(", 2 failed")
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let codes: Vec<&str> = stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(codes, ["0", "3", "1", "0"], "{stdout}");
    assert_eq!(names_in(dir.path()), ["c1", "c3"]);
}

/// `-v` lines of transfers running at once never run into each other.
#[test]
fn verbose_lines_of_parallel_transfers_stay_whole() {
    let server = files_server();
    let dir = temp();
    let urls: Vec<String> = (0..64).map(|i| server.url(&format!("/v{i:02}"))).collect();
    let out = fetch()
        .current_dir(dir.path())
        .args(["-v", "-j", "8"])
        .args(&urls)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for line in stderr.lines() {
        let whole = ["* ", "> ", "< "].iter().any(|p| line.starts_with(p))
            && !line[2..].contains("* ")
            || line.starts_with("fetch: 64 URLs")
            || line == ">"
            || line == "<";
        assert!(whole, "{line:?} in\n{stderr}");
    }
    assert_eq!(names_in(dir.path()).len(), 64);
}

/// A reader of stdout that leaves is no failure (exit 0), but it does not
/// hide a real failure later in the list.
#[test]
fn a_reader_that_left_does_not_hide_a_later_failure() {
    let big = vec![b'x'; 8 << 20];
    let server = Server::start(move |req: &Recorded| match req.target() {
        "/big" => vec![Step::Send(response("200 OK", &[], &big))],
        _ => vec![Step::Send(response("404 Not Found", &[], b""))],
    });
    let dir = temp();
    let mut child = fetch()
        .current_dir(dir.path())
        .args(["-o", "-", &server.url("/big"), &server.url("/gone")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    std::io::Read::read_exact(&mut stdout, &mut [0u8; 1]).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{stderr}");
    assert!(stderr.contains("/gone: HTTP 404"), "{stderr}");
    assert!(
        stderr.ends_with(", 1 failed, 1 stopped (the reader of stdout left)\n"),
        "{stderr}"
    );
}

#[test]
fn parallel_downloads_all_arrive() {
    let server = files_server();
    let dir = temp();
    let urls: Vec<String> = (0..40)
        .map(|i| server.url(&format!("/slow-{i:02}")))
        .collect();
    fetch()
        .current_dir(dir.path())
        .args(["-s", "-j", "8"])
        .args(&urls)
        .assert()
        .success()
        .stderr("");
    let names = names_in(dir.path());
    assert_eq!(names.len(), 40);
    for name in names {
        assert_eq!(fs::read_to_string(dir.path().join(&name)).unwrap(), name);
    }
}

#[test]
fn silent_batches_print_only_errors() {
    let server = files_server();
    let dir = temp();
    fetch()
        .current_dir(dir.path())
        .args(["-s", &server.url("/x"), &server.url("/fail-500")])
        .assert()
        .code(22)
        .stderr(
            predicate::str::starts_with("fetch: http://")
                .and(predicate::str::contains("HTTP 500"))
                .and(predicate::str::contains("URLs:").not()),
        );
}

#[test]
fn colliding_outputs_are_usage_errors() {
    let server = files_server();
    fetch()
        .args([server.url("/dir1/same"), server.url("/dir2/same")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("two URLs would write"));
    fetch()
        .args([
            "-j",
            "2",
            &server.url("/a"),
            &server.url("/b"),
            "-o",
            "-",
            "-o",
            "-",
        ])
        .assert()
        .code(2);
    fetch()
        .args([&server.url("/a"), "-o", "x", "-o", "y", "-o", "z"])
        .assert()
        .code(2);
    // -w lines of the others would land inside the body on stdout.
    fetch()
        .args(["-j", "2", "-w", "%{http_code}\n", "-o", "-"])
        .args([server.url("/a"), server.url("/b")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "-w lines would land inside the body",
        ));
    // One file, spelt two ways: `.`, `..`, a symlinked directory, a symlink
    // to the file; existing or not.
    let dir = temp();
    fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("sub", dir.path().join("link")).unwrap();
    for (first, second, existing) in [
        ("./a", "a", None),
        ("out", "sub/../out", None),
        ("sub/f", "link/f", None),
        ("sub/g", "link/g", Some("sub/g")),
        ("sub/h", "alias", Some("sub/h")),
    ] {
        if let Some(file) = existing {
            fs::write(dir.path().join(file), "old").unwrap();
        }
        if second == "alias" {
            std::os::unix::fs::symlink("sub/h", dir.path().join("alias")).unwrap();
        }
        let before = names_in(dir.path());
        fetch()
            .current_dir(dir.path())
            .args(["-j", "2", &server.url("/x"), &server.url("/a")])
            .args(["-o", first, "-o", second])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("two URLs would write"));
        assert_eq!(names_in(dir.path()), before, "{first} {second}");
    }
}

#[test]
fn any_number_of_urls_may_write_dev_null() {
    let server = files_server();
    fetch()
        .args(["-s", "-j", "2", &server.url("/a"), &server.url("/b")])
        .args(["-o", "/dev/null", "-o", "/dev/null"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(server.requests().len(), 2);
}

/// A FIFO waits for its reader when it is opened: in a batch each is opened by
/// the thread that runs its transfer, so a reader that takes them in another
/// order than the batch's holds up nothing else.
#[test]
fn fifos_of_a_parallel_batch_may_be_read_in_any_order() {
    use std::io::Read;
    let server = files_server();
    let dir = temp();
    let fifos = [dir.path().join("f1"), dir.path().join("f2")];
    for fifo in &fifos {
        let made = std::process::Command::new("mkfifo")
            .arg(fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
    }
    let [first, second] = fifos.clone();
    let reader = std::thread::spawn(move || {
        let read = |path: &std::path::Path| {
            let mut text = String::new();
            fs::File::open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .unwrap();
            text
        };
        // The second one first.
        (read(&second), read(&first))
    });
    let mut cmd = fetch();
    cmd.args(["-s", "-j", "2", "-o"])
        .arg(&fifos[0])
        .arg(server.url("/one"))
        .arg("-o")
        .arg(&fifos[1])
        .arg(server.url("/two"));
    assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(20))
        .assert()
        .success();
    assert_eq!(reader.join().unwrap(), ("two".into(), "one".into()));
}
