//! Python's `http.server` (HTTP/1.0 answers), started by a test on a free
//! loopback port over a temp directory; stopped when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct PythonHttp {
    child: Child,
    port: u16,
}

impl PythonHttp {
    /// Serves `dir`; `None` when python3 is missing (a failure when
    /// `FETCH_REQUIRE_REAL_SERVERS=1`).
    pub fn start(dir: &Path) -> Option<PythonHttp> {
        if Command::new("python3").arg("--version").output().is_err() {
            assert!(
                !super::tinyproxy::required(),
                "python3 is missing and FETCH_REQUIRE_REAL_SERVERS=1"
            );
            eprintln!("python3 is missing: skipping");
            return None;
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let mut child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                .arg(dir)
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            if super::await_listening(&mut child, port) {
                return Some(PythonHttp { child, port });
            }
        }
        panic!("python3 -m http.server did not start");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PythonHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
