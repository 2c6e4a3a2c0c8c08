//! DESIGN §3: FILE appears only complete; failures and Ctrl-C leave no FILE.part
//! and an old FILE untouched; a closed stdout pipe is a quiet success.

use crate::support::server::{Server, Step, raw, response};
use crate::support::{fetch, has_anonymous_files, names_in, temp};
use assert_cmd::prelude::*;
use std::fs;
use std::io::Read;
use std::process::Stdio;

#[test]
fn every_failure_leaves_the_old_file_and_no_part() {
    let failures: Vec<(Vec<Step>, i32)> = vec![
        (
            vec![Step::Send(response("404 Not Found", &[], b"nope"))],
            22,
        ),
        (
            vec![Step::Send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 9\n\n",
                b"cut",
            ))],
            18,
        ),
        (
            vec![Step::Send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"3\r\nabc\r\n",
            ))],
            18,
        ),
        (
            vec![Step::Send(raw(
                "HTTP/1.1 200 OK\nContent-Length: x\n\n",
                b"",
            ))],
            8,
        ),
        (
            vec![
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 9\n\n", b"abc")),
                Step::Reset,
            ],
            56,
        ),
        (vec![], 52),
    ];
    for (steps, code) in failures {
        let server = Server::steps(steps);
        let dir = temp();
        let file = dir.path().join("keep.txt");
        fs::write(&file, "old content").unwrap();
        fetch()
            .arg(server.url("/"))
            .arg("-o")
            .arg(&file)
            .assert()
            .code(code);
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "old content",
            "exit {code}"
        );
        assert_eq!(names_in(dir.path()), ["keep.txt"], "exit {code}");
    }
}

#[test]
fn success_replaces_the_old_file() {
    let server = Server::body("new content");
    let dir = temp();
    let file = dir.path().join("f.txt");
    fs::write(&file, "old content, longer than the new one").unwrap();
    fetch()
        .args(["-s", &server.url("/")])
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&file).unwrap(), "new content");
    assert_eq!(names_in(dir.path()), ["f.txt"]);
}

#[test]
fn a_refused_connection_leaves_nothing() {
    let (_reserved, refusing) = crate::support::refusing_address();
    let port = refusing.port();
    let dir = temp();
    fetch()
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg("-o")
        .arg(dir.path().join("f"))
        .assert()
        .code(7);
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn non_regular_files_are_written_directly() {
    let server = Server::body("into the void");
    fetch()
        .args(["-s", &server.url("/"), "-o", "/dev/null"])
        .assert()
        .success();
}

/// Any FILE that is a symlink to a regular file: the file it names gets the
/// body (the link stays a link), as with curl; `-o /dev/stdout` is stdout.
#[test]
fn a_symlink_to_a_file_is_written_through() {
    let server = Server::body("through the link");
    let dir = temp();
    let captured = dir.path().join("captured");
    let link = dir.path().join("so");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    fetch()
        .args(["-s", &server.url("/"), "-o"])
        .arg(&link)
        .stdout(fs::File::create(&captured).unwrap())
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&captured).unwrap(), "through the link");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(names_in(dir.path()), ["captured", "so"]);

    let server = Server::body("into a pipe");
    fetch()
        .args(["-s", &server.url("/"), "-o", "/dev/stdout"])
        .assert()
        .success()
        .stdout("into a pipe");

    // `-o /dev/stdout` is stdout itself: `>> log` appends.
    let server = Server::body("appended");
    let log = dir.path().join("log");
    fs::write(&log, "before\n").unwrap();
    let append = fs::OpenOptions::new().append(true).open(&log).unwrap();
    fetch()
        .args(["-s", &server.url("/"), "-o", "/dev/stdout"])
        .stdout(append)
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&log).unwrap(), "before\nappended");
}

/// Starts fetch on a server that sends part of a body and then waits; returns
/// once the server has sent it.
fn start_stalled_download(
    server: &Server,
    file: &std::path::Path,
    extra: &[&str],
) -> std::process::Child {
    let child = fetch()
        .args(["-s", &server.url("/")])
        .args(extra)
        .arg("-o")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.reached();
    child
}

fn stalled_server() -> Server {
    Server::steps(vec![
        Step::Send(raw(
            "HTTP/1.1 200 OK\nContent-Length: 100\n\n",
            b"some of it",
        )),
        Step::Signal,
        Step::AwaitClose,
    ])
}

#[test]
fn ctrl_c_removes_the_part_file_and_keeps_the_old_file() {
    let server = stalled_server();
    let dir = temp();
    let file = dir.path().join("f.bin");
    fs::write(&file, "old").unwrap();
    // What a cut `-C` run left, which a run without -C clears, even when
    // it is interrupted itself.
    fs::write(dir.path().join("f.bin.part"), "left by -C").unwrap();
    fs::write(
        dir.path().join("f.bin.part.meta"),
        "fetch resume 1\nvalidator \"v\"\n",
    )
    .unwrap();
    let child = start_stalled_download(&server, &file, &[]);
    // The leftover was emptied when fetch opened it, before it connected.
    assert_ne!(
        fs::read(dir.path().join("f.bin.part")).unwrap(),
        b"left by -C"
    );

    // A second fetch may not write the same FILE.part meanwhile.
    fetch()
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .code(23)
        .stderr(predicates::str::contains("another fetch"));

    let exit = signal(child, "-INT");
    assert_eq!(exit.code(), Some(130));
    assert_eq!(names_in(dir.path()), ["f.bin"]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "old");
}

/// `kill`, `timeout` and service managers send SIGTERM, a closed terminal
/// SIGHUP: each removes FILE.part as Ctrl-C does, and the exit code is the
/// shell's for the signal.
#[test]
fn sigterm_and_sighup_remove_the_part_file_too() {
    for (name, code) in [("-TERM", 143), ("-HUP", 129)] {
        let server = stalled_server();
        let dir = temp();
        let file = dir.path().join("f.bin");
        fs::write(&file, "old").unwrap();
        let child = start_stalled_download(&server, &file, &[]);
        assert!(dir.path().join("f.bin.part").exists());
        assert_eq!(signal(child, name).code(), Some(code), "{name}");
        assert_eq!(names_in(dir.path()), ["f.bin"], "{name}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "old");
    }
}

/// A signal the process was started with ignored stays ignored: `nohup`
/// (SIGHUP) and a script's `trap '' TERM` leave a download running.
#[test]
fn signals_ignored_by_the_parent_stay_ignored() {
    for (wrapper, signal) in [
        (&["nohup"][..], "-HUP"),
        (
            &["sh", "-c", "trap '' TERM; exec \"$0\" \"$@\""][..],
            "-TERM",
        ),
    ] {
        let gate = crate::support::server::Gate::new();
        let server = Server::steps(vec![
            Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 10\n\n", b"some ")),
            Step::Signal,
            Step::WaitFor(gate.clone()),
            Step::Send(b"of it".to_vec()),
        ]);
        let dir = temp();
        let file = dir.path().join("f.bin");
        fs::write(&file, "old").unwrap();
        let mut child = std::process::Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(env!("CARGO_BIN_EXE_fetch"))
            .args(["-s", &server.url("/"), "-o"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        server.reached();
        let sent = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        gate.open();
        let status = child.wait().unwrap();
        assert!(status.success(), "{signal}: {status:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "some of it", "{signal}");
    }
}

/// A new FILE is written into an anonymous file: nothing of it is visible
/// until it is complete, and however the process ends, nothing is left. (On
/// a file system without anonymous files, FILE.part, which a kill leaves.)
#[test]
fn an_unfinished_new_file_is_never_visible() {
    for signal in ["-INT", "-KILL"] {
        let server = stalled_server();
        let dir = temp();
        let anonymous = has_anonymous_files(dir.path());
        let file = dir.path().join("f.bin");
        let child = start_stalled_download(&server, &file, &[]);
        let while_running: &[&str] = if anonymous { &[] } else { &["f.bin.part"] };
        assert_eq!(names_in(dir.path()), while_running, "{signal}");
        let exit = self::signal(child, signal);
        let left: &[&str] = match signal {
            "-INT" => {
                assert_eq!(exit.code(), Some(130));
                &[]
            }
            _ => while_running,
        };
        assert_eq!(names_in(dir.path()), left, "{signal}");
    }
}

/// A new FILE whose FILE.part a `fetch -C` is writing is refused, as for a
/// FILE that exists: the second fetch looks for FILE.part before it chooses
/// an anonymous file.
#[test]
fn a_part_being_continued_is_not_overtaken() {
    let server = stalled_server();
    let dir = temp();
    let file = dir.path().join("f.bin");
    let mut child = start_stalled_download(&server, &file, &["-C"]);
    fetch()
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .assert()
        .code(23)
        .stderr(predicates::str::contains("another fetch"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!file.exists());
}

#[test]
fn a_closed_stdout_pipe_is_a_quiet_success() {
    let len = 64 * 1024 * 1024;
    let server = Server::start(move |_| {
        vec![
            Step::Send(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()),
            Step::Pattern { from: 0, len },
        ]
    });
    let mut child = fetch()
        .arg(server.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, then hang up like `| head -c 10` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

/// The head goes to stdout and the body to FILE: a reader of the head that
/// left (`fetch URL -o FILE | head -1`) takes nothing from the download.
#[test]
fn a_reader_of_the_head_that_left_leaves_the_download_alone() {
    let gate = crate::support::server::Gate::new();
    let server = Server::steps(vec![
        Step::Signal,
        Step::WaitFor(gate.clone()),
        Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 4\n\n", b"body")),
    ]);
    let dir = temp();
    let file = dir.path().join("f");
    let mut child = fetch()
        .arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.reached();
    drop(child.stdout.take());
    gate.open();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(fs::read(&file).unwrap(), b"body");
}

#[test]
fn ctrl_c_with_continue_keeps_the_part_for_the_next_run() {
    // The server says it accepts ranges and names a validator, so the part
    // gets its meta and can be continued.
    let server = Server::steps(vec![
        Step::Send(raw(
            "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"v1\"\nContent-Length: 100\n\n",
            b"some of it",
        )),
        Step::Signal,
        Step::AwaitClose,
    ]);
    let dir = temp();
    let file = dir.path().join("f.bin");
    interrupt_once_meta_is_written(&server, &file);
    assert_eq!(names_in(dir.path()), ["f.bin.part", "f.bin.part.meta"]);
}

/// With `-C` but no byte of the body yet, there is nothing to continue: an
/// interrupt leaves nothing, as a failure would.
#[test]
fn ctrl_c_with_continue_before_the_body_leaves_nothing() {
    let server = Server::steps(vec![
        Step::Send(raw(
            "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"v1\"\nContent-Length: 100\n\n",
            b"",
        )),
        Step::Signal,
        Step::AwaitClose,
    ]);
    let dir = temp();
    interrupt_once_meta_is_written(&server, &dir.path().join("f.bin"));
    assert!(names_in(dir.path()).is_empty());
}

/// Starts `fetch -C` into `file`, waits until it has written FILE.part.meta
/// (when it reads the head, a moment after the server sent it), and
/// interrupts it: exit 130.
fn interrupt_once_meta_is_written(server: &Server, file: &std::path::Path) {
    let child = start_stalled_download(server, file, &["-C"]);
    let mut meta = file.as_os_str().to_owned();
    meta.push(".part.meta");
    let meta = std::path::PathBuf::from(meta);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !meta.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(meta.exists(), "fetch -C wrote no FILE.part.meta");
    assert_eq!(signal(child, "-INT").code(), Some(130));
}

/// Sends `child` the signal (`-INT`, `-KILL`) and waits for it to end.
fn signal(mut child: std::process::Child, signal: &str) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap()
}
