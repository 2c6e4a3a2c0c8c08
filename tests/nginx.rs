//! Downloading from a real nginx: resume with its ranges and ETags (-C),
//! freshness with its Last-Modified (-N, -R), and a 100-URL parallel batch.

use crate::support::nginx::Nginx;
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, SystemTime};

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) % 251) as u8)
        .collect()
}

/// The ETag nginx sends for `url`, read with `fetch -I`.
fn etag(url: &str) -> String {
    let out = fetch().args(["-I", url]).output().unwrap();
    let head = String::from_utf8(out.stdout).unwrap();
    head.lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("nginx sends an ETag")
        .trim()
        .to_owned()
}

/// A relay in front of `target` (nginx) on a free loopback port, for
/// `connections` connections one after another: each request is passed on
/// and its response passed back, the first cut after `cut_at` bytes (the
/// network failing mid-body), the others whole. Gives the relay's address.
fn cutting_relay(target: SocketAddr, cut_at: usize, connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for n in 0..connections {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let mut server = TcpStream::connect(target).unwrap();
            for s in [&client, &server] {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            }
            // The request: one head, no body (a GET).
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            server.write_all(&request).unwrap();
            let limit = if n == 0 { cut_at as u64 } else { u64::MAX };
            let _ = std::io::copy(&mut (&mut server).take(limit), &mut client);
            // Dropped: both connections close, the first mid-body.
        }
    });
    addr
}

#[test]
fn continue_against_nginx() {
    let Some(nginx) = Nginx::start("") else {
        return;
    };
    let body = data(3_000_000, 7);
    nginx.put("big.bin", &body);
    let url = nginx.url("/big.bin");
    let dir = temp();
    let file = dir.path().join("big.bin");

    // A download cut by the network: 18, and FILE.part with what arrived
    // and its meta with nginx's ETag, kept for the next -C.
    let nginx_addr: SocketAddr = url[7..].split('/').next().unwrap().parse().unwrap();
    let relay = cutting_relay(nginx_addr, 1_234_567, 2);
    let relayed = format!("http://{relay}/big.bin");
    fetch()
        .args(["-s", "-C", &relayed, "-o"])
        .arg(&file)
        .assert()
        .code(18);
    let part = dir.path().join("big.bin.part");
    let held = fs::read(&part).unwrap();
    assert!(!held.is_empty() && held.len() < 1_234_567, "{}", held.len());
    assert!(held[..] == body[..held.len()]);
    let meta = fs::read_to_string(dir.path().join("big.bin.part.meta")).unwrap();
    assert!(
        meta.contains(&format!("validator {}", etag(&url))),
        "{meta}"
    );

    // The next -C asks nginx for the rest, If-Range its ETag: a 206.
    fetch()
        .args(["-v", "-s", "-C", &relayed, "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(
            predicate::str::contains(format!("> Range: bytes={}-", held.len()))
                .and(predicate::str::contains(format!(
                    "> If-Range: {}",
                    etag(&url)
                )))
                .and(predicate::str::contains("< HTTP/1.1 206 Partial Content")),
        );
    assert!(fs::read(&file).unwrap() == body);
    assert_eq!(names_in(dir.path()), ["big.bin"]);

    // The file changed on the server since the part was written: nginx's
    // If-Range check fails, the whole new version comes with a 200.
    let file2 = dir.path().join("changed.bin");
    let relay = cutting_relay(nginx_addr, 1_000_000, 1);
    fetch()
        .args(["-s", "-C", &format!("http://{relay}/big.bin"), "-o"])
        .arg(&file2)
        .assert()
        .code(18);
    // nginx's ETag is its mtime and size in hex: another size is another ETag.
    let new_body = data(2_000_000, 13);
    nginx.put("big.bin", &new_body);
    fetch()
        .args(["-v", "-s", "-C", &url, "-o"])
        .arg(&file2)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("> If-Range: ")
                .and(predicate::str::contains("< HTTP/1.1 200 OK")),
        );
    assert!(fs::read(&file2).unwrap() == new_body);
}

#[test]
fn remote_time_and_newer_against_nginx() {
    let Some(nginx) = Nginx::start("") else {
        return;
    };
    let served = nginx.put("page.html", b"<h1>first</h1>");
    let server_mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    fs::File::options()
        .write(true)
        .open(&served)
        .unwrap()
        .set_modified(server_mtime)
        .unwrap();
    let url = nginx.url("/page.html");
    let dir = temp();
    let file = dir.path().join("page.html");

    fetch()
        .args(["-s", "-R", &url, "-o"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        fs::metadata(&file).unwrap().modified().unwrap(),
        server_mtime
    );

    // Same age as the server's copy: 304, FILE untouched.
    fs::write(&file, "local edit").unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(server_mtime)
        .unwrap();
    fetch()
        .args(["-v", "-N", &url, "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("< HTTP/1.1 304 Not Modified"));
    assert_eq!(fs::read_to_string(&file).unwrap(), "local edit");
    assert_eq!(names_in(dir.path()), ["page.html"]);

    // The server's copy is newer: downloaded, with the server's time.
    let newer = server_mtime + Duration::from_secs(3600);
    nginx.put("page.html", b"<h1>second</h1>");
    fs::File::options()
        .write(true)
        .open(&served)
        .unwrap()
        .set_modified(newer)
        .unwrap();
    fetch()
        .args(["-s", "-N", &url, "-o"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&file).unwrap(), "<h1>second</h1>");
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), newer);
}

#[test]
fn a_hundred_urls_eight_at_a_time_from_nginx() {
    let Some(nginx) = Nginx::start("") else {
        return;
    };
    let mut list = String::from("# 100 files\n");
    for i in 0..100u32 {
        nginx.put(
            &format!("f{i:03}.bin"),
            &data(1000 + i as usize * 997, i + 1),
        );
        list.push_str(&nginx.url(&format!("/f{i:03}.bin")));
        list.push('\n');
    }
    let dir = temp();
    let list_file = dir.path().join("urls.txt");
    fs::write(&list_file, list).unwrap();
    let out = dir.path().join("out");
    fetch()
        .args(["--input-file"])
        .arg(&list_file)
        .args(["-j", "8", "--output-dir"])
        .arg(&out)
        .args(["-w", "%{http_code}\\n"])
        .assert()
        .success()
        .stdout(predicate::function(|s: &str| {
            s.lines().count() == 100 && s.lines().all(|l| l == "200")
        }))
        .stderr(predicate::str::starts_with(
            "fetch: 100 URLs: 100 downloaded",
        ));
    assert_eq!(names_in(&out).len(), 100);
    for i in 0..100u32 {
        let got = fs::read(out.join(format!("f{i:03}.bin"))).unwrap();
        assert!(got == data(1000 + i as usize * 997, i + 1), "f{i:03}.bin");
    }
}

/// nginx numbers its connections ($connection): a batch that keeps its
/// connections alive shows no more numbers than transfers it runs at once.
#[test]
fn a_batch_reuses_its_connections_to_nginx() {
    let Some(nginx) = Nginx::start("add_header X-Connection $connection;") else {
        return;
    };
    let mut urls = vec![];
    for i in 0..20u32 {
        nginx.put(&format!("k{i:02}"), &data(500 + i as usize * 300, i + 7));
        urls.push(nginx.url(&format!("/k{i:02}")));
    }
    let dir = temp();
    let out = dir.path().join("out");
    let run = fetch()
        .args(["-v", "-j", "2", "--output-dir"])
        .arg(&out)
        .args(&urls)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let mut connections: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("< X-Connection: "))
        .map(str::trim)
        .collect();
    assert_eq!(connections.len(), 20, "{stderr}");
    connections.sort();
    connections.dedup();
    assert!(
        connections.len() <= 2,
        "nginx saw connections {connections:?}"
    );
    assert!(stderr.contains("Reusing the connection to http://127.0.0.1:"));
    for i in 0..20u32 {
        let got = fs::read(out.join(format!("k{i:02}"))).unwrap();
        assert!(got == data(500 + i as usize * 300, i + 7), "k{i:02}");
    }
}
