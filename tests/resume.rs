//! `-C` (resume from FILE.part with If-Range), `-N` (If-Modified-Since) and `-R`
//! (mtime from Last-Modified), against the test server's file resource.

use crate::support::server::{Recorded, Resource, Server};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn body() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 253) as u8).collect()
}

/// Serves `resource`, cutting the first connection at `cut` bytes.
fn cut_once(resource: Resource, cut: u64) -> Server {
    let count = Arc::new(AtomicUsize::new(0));
    Server::start(move |req: &Recorded| {
        let first = count.fetch_add(1, Ordering::SeqCst) == 0;
        resource.answer(req, first.then_some(cut))
    })
}

/// `fetch -s FLAGS URL -o FILE`, run to its end.
fn fetch_to(flags: &[&str], url: &str, file: &std::path::Path) -> assert_cmd::assert::Assert {
    fetch()
        .arg("-s")
        .args(flags)
        .arg(url)
        .arg("-o")
        .arg(file)
        .assert()
}

#[test]
fn continue_picks_up_where_a_cut_download_stopped() {
    let server = cut_once(Resource::new(body(), "v1"), 80_000);
    let dir = temp();
    let file = dir.path().join("data.bin");
    // The first run is cut: with -C, FILE.part and its meta stay for later.
    fetch_to(&["-C"], &server.url("/data.bin"), &file).code(56);
    assert_eq!(
        names_in(dir.path()),
        ["data.bin.part", "data.bin.part.meta"]
    );
    let held = fs::metadata(dir.path().join("data.bin.part"))
        .unwrap()
        .len();
    assert!(held > 0 && held <= 80_000, "{held}");

    // -w counts what this run downloaded: the rest, not what FILE.part held.
    let rest = body().len() as u64 - held;
    fetch_to(
        &["-C", "-w", "%{size_download}"],
        &server.url("/data.bin"),
        &file,
    )
    .success()
    .stdout(rest.to_string());
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(names_in(dir.path()), ["data.bin"]);
    let second = &server.requests()[1];
    assert_eq!(
        second.field("Range"),
        Some(format!("bytes={held}-").as_str())
    );
    assert_eq!(second.field("If-Range"), Some("\"v1\""));
}

#[test]
fn a_run_without_continue_clears_what_a_cut_continue_left() {
    let server = cut_once(Resource::new(body(), "v1"), 80_000);
    let dir = temp();
    let file = dir.path().join("data.bin");
    fetch_to(&["-C"], &server.url("/data.bin"), &file).code(56);
    assert_eq!(
        names_in(dir.path()),
        ["data.bin.part", "data.bin.part.meta"]
    );
    // Without -C the body starts over; FILE.part and its meta both go.
    fetch_to(&[], &server.url("/data.bin"), &file).success();
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(names_in(dir.path()), ["data.bin"]);
    assert_eq!(server.requests()[1].field("Range"), None);
}

#[test]
fn continue_never_stitches_two_versions() {
    let dir = temp();
    let file = dir.path().join("data.bin");
    let old = cut_once(Resource::new(body(), "v1"), 50_000);
    fetch_to(&["-C"], &old.url("/"), &file).code(56);
    // The file changed on the server: If-Range fails and the whole new
    // version arrives with a 200, replacing FILE.part's old bytes.
    let new_body = b"version two, shorter".to_vec();
    let new = Server::start(move |req: &Recorded| {
        Resource::new(new_body.clone(), "v2").answer(req, None)
    });
    fetch_to(&["-C"], &new.url("/"), &file).success();
    assert_eq!(fs::read(&file).unwrap(), b"version two, shorter");
    assert!(new.request().field("Range").is_some());
}

/// FILE a symlink to an older copy: the download replaces the file it names,
/// and `-C` continues the FILE.part beside that file, not beside the link.
#[test]
fn continue_through_a_symlink_continues_the_part_beside_its_target() {
    let server = Server::start(|req: &Recorded| Resource::new(body(), "v1").answer(req, None));
    let dir = temp();
    let target = dir.path().join("data.bin");
    fs::write(&target, "an older copy").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("data.bin", &link).unwrap();
    // What a cut `fetch -C -o link` left.
    left_by_continue(&target, &body()[..80_000], Some(200_000));
    fetch_to(&["-C"], &server.url("/data.bin"), &link).success();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "not taken for complete");
    assert_eq!(requests[0].field("Range"), Some("bytes=80000-"));
    assert!(fs::read(&target).unwrap() == body());
    assert_eq!(names_in(dir.path()), ["data.bin", "link"]);
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
}

#[test]
fn continue_with_a_finished_file_does_nothing() {
    let server = Server::body("never asked");
    let dir = temp();
    let file = dir.path().join("done.txt");
    fs::write(&file, "finished earlier").unwrap();
    fetch_to(&["-C"], &server.url("/"), &file).success();
    assert!(server.requests().is_empty());
    assert_eq!(fs::read_to_string(&file).unwrap(), "finished earlier");
}

#[test]
fn a_part_without_meta_starts_over() {
    let server = Server::start(|req: &Recorded| Resource::new(body(), "v1").answer(req, None));
    let dir = temp();
    let file = dir.path().join("f");
    fs::write(dir.path().join("f.part"), "who knows what this is").unwrap();
    fetch_to(&["-C"], &server.url("/"), &file).success();
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(server.request().field("Range"), None);
}

#[test]
fn a_part_that_is_already_whole_is_finished_by_a_416() {
    let server = cut_once(Resource::new(body(), "v1"), 200_000 - 1);
    let dir = temp();
    let file = dir.path().join("f");
    fetch_to(&["-C"], &server.url("/"), &file).failure();
    // Make FILE.part whole, as if the last byte had arrived before the cut.
    fs::write(dir.path().join("f.part"), body()).unwrap();
    fetch_to(&["-C"], &server.url("/"), &file).success();
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(names_in(dir.path()), ["f"]);
}

#[test]
fn continue_needs_a_file() {
    fetch().args(["-C", "http://127.0.0.1:9/"]).assert().code(2);
}

#[test]
fn remote_time_sets_the_mtime() {
    let resource = Resource::new(b"dated".to_vec(), "d");
    let expected = resource.last_modified.unwrap();
    let server = Server::start(move |req: &Recorded| resource.answer(req, None));
    let dir = temp();
    let file = dir.path().join("f");
    fetch_to(&["-R"], &server.url("/"), &file).success();
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), expected);

    // Without -R the mtime is the time of the download.
    let other = dir.path().join("g");
    fetch_to(&[], &server.url("/"), &other).success();
    assert_ne!(fs::metadata(&other).unwrap().modified().unwrap(), expected);
}

#[test]
fn newer_skips_an_up_to_date_file_and_fetches_a_newer_one() {
    let resource = Resource::new(b"server copy".to_vec(), "n");
    let server_time = resource.last_modified.unwrap();
    let server = Server::start(move |req: &Recorded| resource.answer(req, None));
    let dir = temp();
    let file = dir.path().join("f");

    // Local copy as new as the server's: 304, untouched; its head printed
    // as any final response's is when the body would go to a file.
    fs::write(&file, "local copy").unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(server_time)
        .unwrap();
    fetch()
        .args(["-N", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("HTTP/1.1 304 Not Modified\r\n"));
    assert_eq!(fs::read_to_string(&file).unwrap(), "local copy");
    assert_eq!(names_in(dir.path()), ["f"]);
    assert_eq!(
        server.requests()[0].field("If-Modified-Since"),
        Some(httpdate::fmt_http_date(server_time).as_str())
    );

    // An older local copy is replaced and gets the server's time.
    let old = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fetch_to(&["-N"], &server.url("/"), &file).success();
    assert_eq!(fs::read_to_string(&file).unwrap(), "server copy");
    assert_eq!(
        fs::metadata(&file).unwrap().modified().unwrap(),
        server_time
    );

    // No local copy: an ordinary download, no condition sent.
    let fresh = dir.path().join("fresh");
    fetch_to(&["-N"], &server.url("/"), &fresh).success();
    assert_eq!(
        server.requests().last().unwrap().field("If-Modified-Since"),
        None
    );
    let _ = SystemTime::now();
}

#[test]
fn continue_reports_an_inconsistent_answer_as_33() {
    let count = Arc::new(AtomicUsize::new(0));
    let resource = Resource::new(body(), "v1");
    let server = Server::start(move |req: &Recorded| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            resource.answer(req, Some(1000))
        } else {
            // A 206 for bytes that were not asked for.
            vec![crate::support::server::Step::Send(
                crate::support::server::raw(
                    "HTTP/1.1 206 Partial Content\nContent-Range: bytes 0-4/200000\nContent-Length: 5\n\n",
                    b"01234",
                ),
            )]
        }
    });
    let dir = temp();
    let file = dir.path().join("f");
    fetch_to(&["-C"], &server.url("/"), &file).code(56);
    fetch()
        .args(["-C", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .code(33)
        .stderr(
            predicate::str::contains("cannot resume").and(predicate::str::contains(format!(
                "(remove {}.part, or drop -C, to start over)",
                file.display()
            ))),
        );
    assert!(!file.exists());
}

/// FILE.part holding `held`, and the meta an earlier `-C` run left: validator
/// `"v1"` and, if given, the whole length.
fn left_by_continue(file: &std::path::Path, held: &[u8], total: Option<u64>) {
    let beside = |suffix: &str| format!("{}{suffix}", file.display());
    fs::write(beside(".part"), held).unwrap();
    let mut meta = "fetch resume 1\nvalidator \"v1\"\n".to_owned();
    if let Some(total) = total {
        meta.push_str(&format!("total {total}\n"));
    }
    fs::write(beside(".part.meta"), meta).unwrap();
}

/// A server that answers every request with this head (LF line ends) and body.
fn always(head: &'static str, body: &'static [u8]) -> Server {
    Server::bytes(crate::support::server::raw(head, body))
}

#[test]
fn continue_refuses_a_206_that_is_not_exactly_the_rest() {
    for head in [
        "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-7/10\nContent-Length: 3\n\n",
        "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-9/10\nContent-Length: 8\n\n",
        // A last byte at the end of u64 (no total) is no overflow either.
        "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-18446744073709551615/*\nContent-Length: 3\n\n",
    ] {
        let server = always(head, b"567");
        let dir = temp();
        let file = dir.path().join("f");
        left_by_continue(&file, b"01234", Some(10));
        fetch_to(&["-C"], &server.url("/"), &file).code(33);
        assert!(!file.exists(), "{head}");
        // FILE.part is as it was, for a later -C.
        assert_eq!(fs::read(dir.path().join("f.part")).unwrap(), b"01234");
    }
}

#[test]
fn continue_refuses_a_206_of_another_version() {
    // A server that ignores If-Range answers with the new version's bytes.
    let server = always(
        "HTTP/1.1 206 Partial Content\nETag: \"v2\"\nContent-Range: bytes 5-9/10\nContent-Length: 5\n\n",
        b"abcde",
    );
    let dir = temp();
    let file = dir.path().join("f");
    left_by_continue(&file, b"01234", Some(10));
    fetch_to(&["-C"], &server.url("/"), &file)
        .code(33)
        .stderr(predicate::str::contains("\"v2\""));
    assert!(!file.exists());
    assert_eq!(server.request().field("If-Range"), Some("\"v1\""));
}

#[test]
fn a_part_finished_by_a_416_is_checked_like_any_body() {
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let head = "HTTP/1.1 416 Range Not Satisfiable\nContent-Range: bytes */10\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\nContent-Length: 0\n\n";
    let x_sha256 = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
    let right_sha256 = "sha256:84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";

    // A --checksum mismatch: 110, and bytes known to be wrong are not kept.
    let server = always(head, b"");
    let dir = temp();
    let file = dir.path().join("f");
    left_by_continue(&file, b"0123456789", Some(10));
    fetch_to(&["-C", "--checksum", x_sha256], &server.url("/"), &file).code(110);
    assert!(names_in(dir.path()).is_empty());

    // A match: FILE, with -R the 416's Last-Modified as its time.
    left_by_continue(&file, b"0123456789", Some(10));
    fetch_to(
        &["-C", "-R", "--checksum", right_sha256],
        &server.url("/"),
        &file,
    )
    .success();
    assert_eq!(fs::read(&file).unwrap(), b"0123456789");
    assert_eq!(names_in(dir.path()), ["f"]);
    assert_eq!(
        fs::metadata(&file).unwrap().modified().unwrap(),
        httpdate::parse_http_date(date).unwrap()
    );

    // A length other than the one the meta recorded: 33, no FILE.
    let other = dir.path().join("g");
    left_by_continue(&other, b"0123456789", Some(12));
    fetch_to(&["-C"], &server.url("/"), &other).code(33);
    assert!(!other.exists());
}

#[test]
fn newer_keeps_the_file_when_the_server_ignores_if_modified_since() {
    // The server answers 200 whatever If-Modified-Since says, with a copy
    // older than FILE: FILE stays as it is (as curl -z and wget -N do).
    let server = always(
        "HTTP/1.1 200 OK\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\nContent-Length: 5\n\n",
        b"older",
    );
    let dir = temp();
    let file = dir.path().join("f");
    fs::write(&file, "local copy").unwrap();
    let mtime = httpdate::parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT").unwrap();
    let set_mtime = |time| {
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(time)
            .unwrap()
    };
    set_mtime(mtime);
    fetch()
        .args(["-v", "-N", &server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("ignored If-Modified-Since"));
    assert_eq!(fs::read_to_string(&file).unwrap(), "local copy");
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(names_in(dir.path()), ["f"]);

    // Without Last-Modified the 200 is taken as newer.
    let server = always("HTTP/1.1 200 OK\nContent-Length: 5\n\n", b"fresh");
    fetch_to(&["-N"], &server.url("/"), &file).success();
    assert_eq!(fs::read_to_string(&file).unwrap(), "fresh");
}

#[test]
fn a_206_whose_body_runs_past_its_content_range_is_33_and_not_kept() {
    // Framed by the connection's close, the 206 brings 3 bytes more than
    // its Content-Range: not the file, and not kept for a later -C either.
    let server = always(
        "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-9/10\nConnection: close\n\n",
        b"56789abc",
    );
    let dir = temp();
    let file = dir.path().join("f");
    left_by_continue(&file, b"01234", Some(10));
    fetch_to(&["-C"], &server.url("/"), &file)
        .code(33)
        .stderr(predicate::str::contains("past byte 10"));
    assert!(names_in(dir.path()).is_empty());
}

/// An error status answering a range request is the answer, as it would be
/// without one: 22, FILE.part kept for a later -C; with --no-fail its body
/// becomes FILE (a 416 is about the range: 33, tested above).
#[test]
fn an_error_status_answering_continue_is_22_or_with_no_fail_the_new_body() {
    for status in ["404 Not Found", "503 Service Unavailable"] {
        let head = format!("HTTP/1.1 {status}\nContent-Length: 4\n\n");
        let server = Server::bytes(crate::support::server::raw(&head, b"gone"));
        let dir = temp();
        let file = dir.path().join("f");
        left_by_continue(&file, b"01234", Some(10));
        fetch()
            .args(["-C", &server.url("/"), "-o"])
            .arg(&file)
            .assert()
            .code(22)
            .stderr(predicate::str::contains(&status[..3]));
        assert_eq!(fs::read(dir.path().join("f.part")).unwrap(), b"01234");
        assert!(!file.exists());

        fetch_to(&["-C", "--no-fail"], &server.url("/"), &file).success();
        assert_eq!(fs::read(&file).unwrap(), b"gone");
        assert_eq!(names_in(dir.path()), ["f"]);
    }
}

/// A retry that continues a cut body (the same -C machinery) and meets an
/// error status ends with it: 22, not 33; with --retry left for the 503, it
/// is retried first.
#[test]
fn a_retry_continuing_a_cut_body_ends_with_the_error_it_gets() {
    for (status, asked) in [("404 Not Found", 2), ("503 Service Unavailable", 3)] {
        let count = Arc::new(AtomicUsize::new(0));
        let resource = Resource::new(body(), "v1");
        let server = Server::start(move |req: &Recorded| {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                resource.answer(req, Some(1000))
            } else {
                let head = format!("HTTP/1.1 {status}\nContent-Length: 4\n\n");
                vec![crate::support::server::Step::Send(
                    crate::support::server::raw(&head, b"gone"),
                )]
            }
        });
        let dir = temp();
        let file = dir.path().join("f");
        fetch()
            .args([
                "--retry",
                "2",
                "--retry-delay",
                "0.01",
                &server.url("/"),
                "-o",
            ])
            .arg(&file)
            .assert()
            .code(22)
            .stderr(predicate::str::contains(&status[..3]));
        assert_eq!(server.requests().len(), asked, "{status}");
        assert!(server.requests()[1].field("Range").is_some());
        assert_eq!(names_in(dir.path()), Vec::<String>::new());
    }
}

/// A FILE.part whose validator is a date continues only from the URL that
/// started it: another resource of the same age and length would be stitched
/// on. An entity tag names the bytes themselves, and is trusted across URLs
/// (a renewed presigned URL, a mirror).
#[test]
fn a_dated_part_continues_only_from_its_own_url() {
    use crate::support::server::{Step, raw};
    for validator in [
        "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT",
        "ETag: \"same\"",
    ] {
        let server = Server::start(move |req: &Recorded| {
            let name = req.target().trim_start_matches('/').to_owned();
            let body = name.repeat(100).into_bytes();
            let head = |status: &str, more: &str| {
                format!("HTTP/1.1 {status}\nAccept-Ranges: bytes\n{validator}\n{more}")
            };
            match (name.as_str(), req.field("Range")) {
                // /a is cut at 40 of its 100 bytes.
                ("a", None) => vec![Step::Send(raw(
                    &head("200 OK", "Content-Length: 100\n\n"),
                    &body[..40],
                ))],
                (_, None) => vec![Step::Send(raw(
                    &head("200 OK", "Content-Length: 100\n\n"),
                    &body,
                ))],
                (_, Some(_)) => vec![Step::Send(raw(
                    &head(
                        "206 Partial Content",
                        "Content-Range: bytes 40-99/100\nContent-Length: 60\n\n",
                    ),
                    &body[40..],
                ))],
            }
        });
        let dir = temp();
        let file = dir.path().join("f");
        fetch_to(&["-C"], &server.url("/a"), &file).code(18);
        fetch_to(&["-C", "-v"], &server.url("/b"), &file).success();
        let got = fs::read(&file).unwrap();
        let asked = server.requests()[1].field("Range").map(str::to_owned);
        if validator.starts_with("ETag") {
            assert_eq!(asked.as_deref(), Some("bytes=40-"));
            assert_eq!(&got[..40], &b"a".repeat(40)[..]);
        } else {
            assert_eq!(asked, None, "a dated part from /a is not continued from /b");
            assert_eq!(got, b"b".repeat(100));
        }
        assert_eq!(names_in(dir.path()), ["f"]);
    }
}

/// `--checksum` vouches for FILE even when nothing was downloaded: `-C` found
/// it complete, or `-N` up to date. A FILE that does not match is 110, and is
/// left as it is (it is the user's, not a download of this run).
#[test]
fn checksum_checks_a_file_that_continue_or_newer_left_as_it_was() {
    use sha2::Digest;
    let resource = Resource::new(b"server copy".to_vec(), "n");
    let server_time = resource.last_modified.unwrap();
    let server = Server::start(move |req: &Recorded| resource.answer(req, None));
    let checksum = |of: &[u8]| {
        let hex: String = sha2::Sha256::digest(of)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    };
    for flag in ["-C", "-N"] {
        let dir = temp();
        let file = dir.path().join("f");
        fs::write(&file, "local copy").unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(server_time)
            .unwrap();
        let wrong = checksum(b"server copy");
        fetch_to(&[flag, "--checksum", &wrong], &server.url("/"), &file)
            .code(110)
            .stderr(predicate::str::contains("not downloaded again"));
        assert_eq!(fs::read_to_string(&file).unwrap(), "local copy");
        assert_eq!(names_in(dir.path()), ["f"]);

        let right = checksum(b"local copy");
        fetch_to(&[flag, "--checksum", &right], &server.url("/"), &file).success();
        assert_eq!(fs::read_to_string(&file).unwrap(), "local copy");
        assert_eq!(names_in(dir.path()), ["f"]);
    }
}

/// A FILE whose name is too long for `NAME.part.meta` (up to the 255 bytes a
/// name may have) can still be replaced and continued: its part gets a
/// shortened name of its own.
#[test]
fn a_file_with_a_255_byte_name_is_replaced_and_continued() {
    let server = cut_once(Resource::new(body(), "v1"), 80_000);
    let dir = temp();
    let name = "n".repeat(255);
    let file = dir.path().join(&name);
    fetch_to(&["-C"], &server.url("/data.bin"), &file).code(56);
    let left = names_in(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|n| n.contains(".part")), "{left:?}");
    fetch_to(&["-C"], &server.url("/data.bin"), &file).success();
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(names_in(dir.path()), [name.as_str()]);
    assert!(server.requests()[1].field("Range").is_some());

    // Replacing it goes through the same shortened part.
    fs::write(&file, "old").unwrap();
    fetch_to(&[], &server.url("/data.bin"), &file).success();
    assert!(fs::read(&file).unwrap() == body());
    assert_eq!(names_in(dir.path()), [name.as_str()]);
}
