//! A real tinyproxy (Debian package), started by a test on a free loopback port
//! with a config written to a temp dir; stopped when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// True when CI demands the real servers instead of skipping without them.
pub fn required() -> bool {
    std::env::var("FETCH_REQUIRE_REAL_SERVERS").is_ok_and(|v| v == "1")
}

impl Tinyproxy {
    /// Starts tinyproxy; `None` (with a note) when it is not installed, unless
    /// `FETCH_REQUIRE_REAL_SERVERS=1`, which makes its absence a failure.
    pub fn start() -> Option<Tinyproxy> {
        if Command::new("tinyproxy").arg("-v").output().is_err() {
            assert!(
                !required(),
                "tinyproxy is not installed and FETCH_REQUIRE_REAL_SERVERS=1"
            );
            eprintln!("tinyproxy is not installed: skipping (.ci/run installs it)");
            return None;
        }
        // The port is chosen free, then handed to tinyproxy; another process may
        // take it in between, so a few tries.
        for _ in 0..5 {
            if let Some(proxy) = Tinyproxy::try_start() {
                return Some(proxy);
            }
        }
        panic!("tinyproxy did not start");
    }

    fn try_start() -> Option<Tinyproxy> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 50\n\
                 LogLevel Info\nLogFile \"{log}\"\nPidFile \"{pid}\"\nDisableViaHeader Yes\n",
                log = dir.path().join("log").display(),
                pid = dir.path().join("pid").display(),
            ),
        )
        .unwrap();
        let mut child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        super::await_listening(&mut child, port).then_some(Tinyproxy { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines tinyproxy received, from its log (`LogLevel Info`
    /// logs each before it forwards it): proof that a transfer went through
    /// the proxy, which a byte-exact body alone is not.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                line.split_once("): ")
                    .filter(|_| line.contains("Request ("))
            })
            .map(|(_, request)| request.to_owned())
            .collect()
    }

    /// Panics unless tinyproxy received this request line.
    pub fn assert_forwarded(&self, request_line: &str) {
        let requests = self.requests();
        assert!(
            requests.iter().any(|r| r == request_line),
            "tinyproxy did not get {request_line:?}; it got {requests:?}"
        );
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
