//! Downloading from a real nginx: resume with its ranges and ETags (-C),
//! freshness with its Last-Modified (-N, -R), and a 100-URL parallel batch.

use crate::support::nginx::Nginx;
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
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

/// What an interrupted `fetch -C` leaves behind: the first `held` bytes and
/// the validator they belong to.
fn leave_part(file: &std::path::Path, body: &[u8], held: usize, validator: &str) {
    let mut part = file.as_os_str().to_owned();
    part.push(".part");
    fs::write(&part, &body[..held]).unwrap();
    part.push(".meta");
    fs::write(
        &part,
        format!(
            "fetch resume 1\nvalidator {validator}\ntotal {}\n",
            body.len()
        ),
    )
    .unwrap();
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

    leave_part(&file, &body, 1_234_567, &etag(&url));
    fetch()
        .args(["-v", "-s", "-C", &url, "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("> Range: bytes=1234567-")
                .and(predicate::str::contains("< HTTP/1.1 206 Partial Content")),
        );
    assert!(fs::read(&file).unwrap() == body);
    assert_eq!(names_in(dir.path()), ["big.bin"]);

    // The file changed on the server since the part was written: nginx's
    // If-Range check fails, the whole new version comes with a 200.
    let file2 = dir.path().join("changed.bin");
    leave_part(&file2, &body, 1_000_000, &etag(&url));
    // nginx's ETag is its mtime and size in hex: another size is another ETag.
    let new_body = data(2_000_000, 13);
    nginx.put("big.bin", &new_body);
    fetch()
        .args(["-v", "-s", "-C", &url, "-o"])
        .arg(&file2)
        .assert()
        .success()
        .stderr(predicate::str::contains("< HTTP/1.1 200 OK"));
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
