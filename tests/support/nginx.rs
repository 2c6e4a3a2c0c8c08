//! A real nginx (Debian package), started by a test on a free loopback port with
//! a config and a document root in a temp dir; stopped when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const BINARIES: [&str; 2] = ["/usr/sbin/nginx", "nginx"];

pub struct Nginx {
    child: Child,
    port: u16,
    root: PathBuf,
    scheme: &'static str,
    _dir: tempfile::TempDir,
}

fn binary() -> Option<&'static str> {
    BINARIES.into_iter().find(|b| {
        Command::new(b)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

impl Nginx {
    /// Starts nginx serving an empty document root; `None` (with a note) when
    /// nginx is not installed, unless `FETCH_REQUIRE_REAL_SERVERS=1` makes its
    /// absence a failure. `extra` goes into the `server` block.
    pub fn start(extra: &str) -> Option<Nginx> {
        Nginx::start_with(extra, None)
    }

    /// The same over https, with this certificate chain and key (PEM files).
    pub fn start_tls(extra: &str, cert: &std::path::Path, key: &std::path::Path) -> Option<Nginx> {
        Nginx::start_with(extra, Some((cert, key)))
    }

    fn start_with(extra: &str, tls: Option<(&std::path::Path, &std::path::Path)>) -> Option<Nginx> {
        let Some(nginx) = binary() else {
            assert!(
                !super::tinyproxy::required(),
                "nginx is not installed and FETCH_REQUIRE_REAL_SERVERS=1"
            );
            eprintln!("nginx is not installed: skipping (.ci/run installs it)");
            return None;
        };
        let (listen, extra) = match tls {
            None => (String::new(), extra.to_owned()),
            Some((cert, key)) => (
                " ssl".to_owned(),
                format!(
                    "ssl_certificate {};\n    ssl_certificate_key {};\n    {extra}",
                    cert.display(),
                    key.display()
                ),
            ),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        for _ in 0..5 {
            if let Some(server) = Nginx::try_start(nginx, &listen, &extra, scheme) {
                return Some(server);
            }
        }
        panic!("nginx did not start");
    }

    fn try_start(nginx: &str, listen: &str, extra: &str, scheme: &'static str) -> Option<Nginx> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = tempfile::tempdir().unwrap();
        // nginx started as root serves as an unprivileged worker user, which
        // must be able to read the document root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path().display();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  default_type application/octet-stream;\n\
                 client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
                 uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port}{listen};\n    root {root};\n    {extra}\n  }}\n}}\n",
                root = root.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        super::await_listening(&mut child, port).then_some(Nginx {
            child,
            port,
            root,
            scheme,
            _dir: dir,
        })
    }

    /// Makes a directory in the document root (readable by nginx's worker).
    pub fn mkdir(&self, name: &str) {
        let path = self.root.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Puts a file into the document root (readable by nginx's worker).
    pub fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// The URL with `localhost` as the host (what test certificates are for).
    pub fn localhost_url(&self, path: &str) -> String {
        format!("{}://localhost:{}{path}", self.scheme, self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
