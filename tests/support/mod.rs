//! Shared helpers for the integration tests: the test server and a way to run
//! the real `fetch` binary.

pub mod nginx;
pub mod python;
pub mod server;
pub mod tinyproxy;
pub mod tls;

use std::process::Command;

/// The `fetch` binary built by cargo for these tests, with no proxy or trust
/// settings inherited from the machine.
pub fn fetch() -> Command {
    without_machine_settings(Command::new(env!("CARGO_BIN_EXE_fetch")))
}

/// `cmd` (fetch, or what runs it) without the proxy and trust settings of the
/// machine the tests run on.
fn without_machine_settings(mut cmd: Command) -> Command {
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "no_proxy",
        "NO_PROXY",
        "all_proxy",
        "ALL_PROXY",
        // The machine's own trust settings: a test that wants them sets them.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A fresh temporary directory, removed when dropped.
/// A loopback address that refuses connections, reserved while the returned
/// socket lives: bound but not listening, so no other test's server can take
/// the port meanwhile (a listener bound and dropped frees it for anyone).
pub fn refusing_address() -> (socket2::Socket, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// The names in `dir`, sorted: shows leftovers such as `FILE.part`.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether the file system of `dir` has anonymous files (O_TMPFILE), which
/// fetch writes a new FILE into; without them it uses FILE.part.
pub fn has_anonymous_files(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .is_ok()
}

/// Waits (at most 10 s) until `child`, a server just started, accepts
/// connections on `port` of 127.0.0.1. False, with the child stopped, when it
/// exited instead (the port was taken) or never listened.
pub fn await_listening(child: &mut std::process::Child, port: u16) -> bool {
    use std::time::{Duration, Instant};
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Runs fetch with these arguments on a pseudo-terminal (script(1) from
/// util-linux): stdout and stderr are a terminal, and what it showed comes
/// back as the output's stdout.
pub fn run_on_terminal(args: &[String]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let command = format!("'{}' {}", env!("CARGO_BIN_EXE_fetch"), quoted.join(" "));
    without_machine_settings(Command::new("script"))
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("run script(1) from util-linux")
}

/// What fetch did in a small file system of its own.
pub struct MountRun {
    pub code: Option<i32>,
    pub stderr: String,
    /// The names in the file system's root after the run, sorted.
    pub names: Vec<String>,
    /// What `out` held after the run, if it was there.
    pub out: Option<Vec<u8>>,
}

/// How a private mount namespace is made here: `unshare -m` as root,
/// `unshare -rm` (a user namespace) otherwise; `None` where neither works.
fn mount_namespace() -> Option<&'static [&'static str]> {
    static HOW: std::sync::OnceLock<Option<&'static [&'static str]>> = std::sync::OnceLock::new();
    *HOW.get_or_init(|| {
        let tries: [&'static [&'static str]; 2] = [&["-m"], &["-rm"]];
        let dir = temp();
        tries.into_iter().find(|flags| {
            Command::new("unshare")
                .args(*flags)
                .args(["sh", "-c", "mount -t tmpfs -o size=4k tmpfs \"$1\"", "sh"])
                .arg(dir.path())
                .output()
                .is_ok_and(|out| out.status.success())
        })
    })
}

/// Runs `fetch ARGS -o ROOT/out` in a tmpfs of `size` (`64k`) mounted in a
/// private mount namespace, so it exists for this run alone: `old`, when
/// given, is written to ROOT/out first, and with `read_only` the file system
/// is then made read-only. `None` (with a note) where this machine cannot
/// make mount namespaces.
pub fn run_in_tmpfs(
    size: &str,
    old: Option<&[u8]>,
    read_only: bool,
    args: &[String],
) -> Option<MountRun> {
    let Some(how) = mount_namespace() else {
        eprintln!("no mount namespace can be made here (unshare -m, unshare -rm)");
        return None;
    };
    let root = temp();
    let report = temp();
    let old_file = report.path().join("old");
    if let Some(old) = old {
        std::fs::write(&old_file, old).unwrap();
    }
    let script = r#"
        set -e
        mount -t tmpfs -o "size=$SIZE" tmpfs "$ROOT"
        if [ -e "$REPORT/old" ]; then cp "$REPORT/old" "$ROOT/out"; fi
        if [ "$READ_ONLY" = 1 ]; then mount -o remount,ro "$ROOT"; fi
        set +e
        timeout 20 "$FETCH" "$@" -o "$ROOT/out" 2> "$REPORT/stderr"
        echo $? > "$REPORT/code"
        ls -A "$ROOT" > "$REPORT/names"
        if [ -e "$ROOT/out" ]; then cp "$ROOT/out" "$REPORT/out"; fi
    "#;
    let status = without_machine_settings(Command::new("unshare"))
        .args(how)
        .args(["sh", "-c", script, "sh"])
        .args(args)
        .env("SIZE", size)
        .env("ROOT", root.path())
        .env("REPORT", report.path())
        .env("READ_ONLY", if read_only { "1" } else { "0" })
        .env("FETCH", env!("CARGO_BIN_EXE_fetch"))
        .status()
        .expect("run unshare");
    assert!(status.success(), "the tmpfs script failed: {status}");
    let read = |name: &str| std::fs::read(report.path().join(name)).ok();
    let text = |name: &str| String::from_utf8_lossy(&read(name).unwrap_or_default()).into_owned();
    Some(MountRun {
        code: text("code").trim().parse().ok(),
        stderr: text("stderr"),
        names: text("names").lines().map(str::to_owned).collect(),
        out: read("out"),
    })
}
