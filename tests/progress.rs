//! The progress bar: drawn on a terminal stderr (tested under a pseudo-terminal
//! from script(1)), never a byte of it otherwise unless --progress forces it.

use crate::support::server::{Server, Step, raw};
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;

fn big_server() -> Server {
    let len = 3 * 1024 * 1024;
    Server::steps(vec![
        Step::Send(raw(
            &format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n"),
            b"",
        )),
        Step::Pattern { from: 0, len },
    ])
}

/// Runs fetch with these arguments on a pseudo-terminal, to success; returns
/// what the terminal showed (stdout and stderr together).
fn on_terminal(args: &[String]) -> String {
    let out = crate::support::run_on_terminal(args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_terminal_gets_a_bar_with_bytes_and_total() {
    let server = big_server();
    let dir = temp();
    let file = dir.path().join("big.bin");
    let shown = on_terminal(&[
        "-s".into(),
        "--progress".into(),
        server.url("/"),
        "-o".into(),
        file.display().to_string(),
    ]);
    assert!(shown.contains("big.bin"), "{shown:?}");
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
    // A frame of the running bar: the bar, the rate, then the ETA.
    assert!(shown.contains("B/s ETA "), "{shown:?}");

    let shown = on_terminal(&[server.url("/"), "-o".into(), file.display().to_string()]);
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
}

/// `-w` after the transfer: its line goes below the finished bar, which stays.
#[test]
fn write_out_leaves_the_finished_bar_on_screen() {
    let server = big_server();
    let dir = temp();
    let file = dir.path().join("big.bin").display().to_string();
    let shown = on_terminal(&[
        server.url("/"),
        "-o".into(),
        file,
        "-w".into(),
        "code=%{http_code}\\n".into(),
    ]);
    let done = shown.rfind("3.00 MiB/3.00 MiB").expect("a finished bar");
    let after = &shown[done..];
    assert!(after.contains("code=200"), "{shown:?}");
    let before_line = &after[..after.find("code=200").unwrap()];
    assert!(
        !before_line.contains("\x1b[2K"),
        "the bar was erased: {shown:?}"
    );
    assert!(!after.contains("\r\n\r\n"), "a blank line: {shown:?}");
}

#[test]
fn no_bar_with_silent_no_progress_or_a_body_on_the_terminal() {
    let server = big_server();
    let dir = temp();
    let file = dir.path().join("big.bin").display().to_string();
    for args in [
        vec!["-s".to_string(), server.url("/"), "-o".into(), file.clone()],
        vec![
            "--no-progress".to_string(),
            server.url("/"),
            "-o".into(),
            file.clone(),
        ],
        vec!["-v".to_string(), server.url("/"), "-o".into(), file.clone()],
    ] {
        let shown = on_terminal(&args);
        assert!(!shown.contains("MiB"), "{args:?}: {shown:?}");
    }
    let small = Server::body("tiny body on the terminal");
    let shown = on_terminal(&[small.url("/")]);
    assert!(shown.contains("tiny body on the terminal"));
    assert!(
        !shown.contains(" B/") && !shown.contains("ETA"),
        "{shown:?}"
    );
}

#[test]
fn not_a_byte_of_it_when_stderr_is_not_a_terminal() {
    let server = big_server();
    let dir = temp();
    fetch()
        .args([&server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success()
        .stderr("");
}

#[test]
fn progress_forces_it_onto_a_pipe() {
    let server = big_server();
    let dir = temp();
    let out = fetch()
        .args(["--progress", &server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("3.00 MiB/3.00 MiB"), "{stderr:?}");
}

#[test]
fn unknown_length_shows_a_byte_count() {
    let server = Server::steps(vec![
        Step::Send(raw("HTTP/1.1 200 OK\n\n", b"")),
        Step::Pattern {
            from: 0,
            len: 2 * 1024 * 1024,
        },
    ]);
    let dir = temp();
    let out = fetch()
        .args(["--progress", &server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("2.00 MiB"), "{stderr:?}");
    // No total, no ETA: a spinner (a braille pattern), the bytes and the rate.
    let spinner = stderr
        .chars()
        .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    assert!(spinner, "{stderr:?}");
    assert!(
        stderr.contains("B/s") && !stderr.contains("ETA"),
        "{stderr:?}"
    );
}

/// With `-j`, a bar for each transfer, whichever thread runs it: the large
/// bodies arrive while the small ones are finished on kept connections.
#[test]
fn parallel_transfers_get_a_bar_each() {
    let server = Server::start(|req: &crate::support::server::Recorded| {
        let len: u64 = match req.target() {
            "/one" => 1 << 20,
            "/two" => 2 << 20,
            _ => 10 * 1024,
        };
        vec![
            Step::Send(raw(
                &format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n"),
                b"",
            )),
            Step::Pattern { from: 0, len },
            Step::KeepOpen,
        ]
    });
    let dir = temp();
    let names = ["one", "two", "s1", "s2", "s3"];
    let out = fetch()
        .args(["--progress", "-j", "2", "--output-dir"])
        .arg(dir.path())
        .args(names.map(|n| server.url(&format!("/{n}"))))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for (name, done) in [
        ("one", "1.00 MiB/1.00 MiB"),
        ("two", "2.00 MiB/2.00 MiB"),
        ("s1", "10.00 KiB/10.00 KiB"),
        ("s2", "10.00 KiB/10.00 KiB"),
        ("s3", "10.00 KiB/10.00 KiB"),
    ] {
        let bar = stderr
            .split(['\r', '\n'])
            .any(|line| line.contains(name) && line.contains(done));
        assert!(bar, "no finished bar for {name}: {stderr:?}");
    }
}

/// An error line in a batch goes below the transfers finished before it,
/// which stay on screen, each on a line of its own.
#[test]
fn finished_transfers_stay_above_an_error() {
    let server = Server::start(
        |req: &crate::support::server::Recorded| match req.target() {
            "/missing" => vec![Step::Send(crate::support::server::response(
                "404 Not Found",
                &[],
                b"",
            ))],
            _ => vec![
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 2048\n\n", b"")),
                Step::Pattern { from: 0, len: 2048 },
            ],
        },
    );
    let dir = temp();
    let out = crate::support::run_on_terminal(&[
        "--output-dir".into(),
        dir.path().display().to_string(),
        server.url("/first"),
        server.url("/missing"),
        server.url("/last"),
    ]);
    assert_eq!(out.status.code(), Some(22), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    // What stays is what follows the last clearing of each line.
    let lines: Vec<&str> = shown
        .split('\n')
        .map(|l| l.rsplit("\x1b[2K").next().unwrap_or(l))
        .map(|l| l.rsplit('\r').find(|part| !part.is_empty()).unwrap_or(""))
        .filter(|l| !l.is_empty())
        .collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("first") && l.contains("2.00 KiB/2.00 KiB in"));
    let error = lines.iter().position(|l| l.contains("/missing: HTTP 404"));
    let last = lines
        .iter()
        .position(|l| l.starts_with("last") && l.contains("2.00 KiB/2.00 KiB in"));
    assert!(
        matches!((first, error, last), (Some(f), Some(e), Some(l)) if f < e && e < l),
        "{lines:?}"
    );
}

/// `--progress` into a pipe whose reader has left: the bars' writes fail, and
/// the downloads go on regardless.
#[test]
fn a_reader_of_the_bars_that_left_fails_nothing() {
    let server = Server::start(|_: &crate::support::server::Recorded| {
        vec![
            Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 65536\n\n", b"")),
            Step::Pattern {
                from: 0,
                len: 65536,
            },
        ]
    });
    let dir = temp();
    let mut cmd = fetch();
    cmd.args(["--progress", "-j", "2", "--output-dir"])
        .arg(dir.path())
        .args(["a", "b", "c", "d"].map(|n| server.url(&format!("/{n}"))))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(crate::support::names_in(dir.path()), ["a", "b", "c", "d"]);
}

/// A terminal that goes away while its bar is drawn (the window closed, an ssh
/// session dropped): writes to it fail with EIO, and the download completes
/// regardless (indicatif's own terminal target panicked here). The rest of
/// the body comes in pieces, pauses between them, so that frames are drawn
/// onto the closed terminal, and cleared, before the bar finishes.
#[test]
fn a_terminal_that_went_away_fails_nothing() {
    use crate::support::server::Gate;
    use std::io::Read;
    use std::time::Duration;
    let (piece, pieces) = (64 * 1024, 4);
    let len = piece * (pieces + 1);
    let gate = Gate::new();
    let mut steps = vec![
        Step::Send(raw(
            &format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n"),
            b"",
        )),
        Step::Pattern {
            from: 0,
            len: piece,
        },
        Step::WaitFor(gate.clone()),
    ];
    for n in 1..=pieces {
        steps.push(Step::Pause(Duration::from_millis(150)));
        steps.push(Step::Pattern {
            from: n * piece,
            len: piece,
        });
    }
    let server = Server::steps(steps);
    let dir = temp();
    let file = dir.path().join("big.bin");
    // Both ends close-on-exec (openpty(3) leaves them inheritable): a copy of
    // the master in fetch, or in a child of another test, would keep the
    // terminal open.
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let mut terminal = nix::pty::posix_openpt(flags).expect("a pseudo-terminal");
    nix::pty::grantpt(&terminal).unwrap();
    nix::pty::unlockpt(&terminal).unwrap();
    use std::os::unix::fs::OpenOptionsExt;
    let slave = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(nix::pty::ptsname_r(&terminal).unwrap())
        .unwrap();
    let mut cmd = fetch();
    cmd.arg(server.url("/"))
        .arg("-o")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    // The first frame of the bar (or the end of fetch, which closes the
    // terminal's last slave end: the read then fails, and so does the test).
    let mut shown = [0; 64];
    assert!(matches!(terminal.read(&mut shown), Ok(n) if n > 0));
    drop(terminal);
    gate.open();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let body = std::fs::read(&file).unwrap();
    assert!(body == crate::support::server::pattern(0, len));
}
