//! `--checksum` and the server's own RFC 9530 digests: computed while streaming,
//! a mismatch leaves no file (exit 110), `-v` says what was verified.

use crate::support::server::{Recorded, Resource, Server, Step, raw, response};
use crate::support::{fetch, names_in, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const HELLO_SHA256: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const HELLO_SHA256_B64: &str = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";
const HELLO_SHA512: &str = "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f";
const HELLO_SHA512_B64: &str =
    "MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==";

#[test]
fn a_matching_checksum_keeps_the_file() {
    let server = Server::body("hello world");
    let dir = temp();
    let file = dir.path().join("f");
    fetch()
        .args([
            "-s",
            "-v",
            &server.url("/"),
            "--checksum",
            &format!("SHA256:{}", HELLO_SHA256.to_uppercase()),
            "-o",
        ])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("* sha256 verified (--checksum)"));
    assert_eq!(fs::read(&file).unwrap(), b"hello world");
}

#[test]
fn a_mismatched_checksum_is_110_and_leaves_no_file() {
    let server = Server::body("hello world, tampered");
    let dir = temp();
    let file = dir.path().join("f");
    fs::write(&file, "old").unwrap();
    fetch()
        .args([
            &server.url("/"),
            "--checksum",
            &format!("sha256:{HELLO_SHA256}"),
            "-o",
        ])
        .arg(&file)
        .assert()
        .code(110)
        .stderr(
            predicate::str::contains("checksum mismatch")
                .and(predicate::str::contains(HELLO_SHA256)),
        );
    assert_eq!(fs::read_to_string(&file).unwrap(), "old");
    assert_eq!(names_in(dir.path()), ["f"]);
}

/// sha512 as sha256: a match keeps the file, a mismatch leaves the old one.
#[test]
fn sha512_checksums_match_and_mismatch() {
    let checksum = format!("sha512:{HELLO_SHA512}");
    for (body, code) in [("hello world", 0), ("hello world, tampered", 110)] {
        let server = Server::body(body);
        let dir = temp();
        let file = dir.path().join("f");
        fs::write(&file, "old").unwrap();
        fetch()
            .args(["-s", "-v", &server.url("/"), "--checksum", &checksum, "-o"])
            .arg(&file)
            .assert()
            .code(code)
            .stderr(match code {
                0 => predicate::str::contains("* sha512 verified (--checksum)"),
                _ => predicate::str::contains(HELLO_SHA512),
            });
        let want = if code == 0 { body } else { "old" };
        assert_eq!(fs::read_to_string(&file).unwrap(), want);
        assert_eq!(names_in(dir.path()), ["f"]);
    }
}

#[test]
fn checksum_syntax_errors_are_usage_errors() {
    for bad in [
        "md5:abc",
        "sha256:abc",
        "sha256",
        &format!("sha512:{HELLO_SHA256}"),
        "sha256:zz",
    ] {
        fetch()
            .args(["http://127.0.0.1:9/", "--checksum", bad])
            .assert()
            .code(2);
    }
}

#[test]
fn the_servers_digests_are_verified() {
    for field in [
        format!("Content-Digest: sha-256=:{HELLO_SHA256_B64}:"),
        format!("Repr-Digest: sha-512=:{HELLO_SHA512_B64}:, sha-256=:{HELLO_SHA256_B64}:"),
    ] {
        let server = Server::bytes(response("200 OK", &[&field], b"hello world"));
        let dir = temp();
        fetch()
            .args(["-v", "-s", &server.url("/"), "-o"])
            .arg(dir.path().join("f"))
            .assert()
            .success()
            .stderr(predicate::str::contains(" verified\n"));
    }
}

#[test]
fn a_body_that_does_not_match_the_servers_digest_is_110() {
    let server = Server::bytes(response(
        "200 OK",
        &[&format!("Content-Digest: sha-256=:{HELLO_SHA256_B64}:")],
        b"hello wOrld",
    ));
    let dir = temp();
    fetch()
        .args([&server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .code(110)
        .stderr(predicate::str::contains(
            "does not match the server's Content-Digest (sha256)",
        ));
    assert!(names_in(dir.path()).is_empty());

    // Chunked framing does not change what the digest covers.
    let server = Server::bytes(raw(
        &format!(
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nRepr-Digest: sha-256=:{HELLO_SHA256_B64}:\n\n"
        ),
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    ));
    fetch()
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("hello world");
}

#[test]
fn a_checksum_covers_a_resumed_file_whole() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let expected = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&body);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let count = Arc::new(AtomicUsize::new(0));
    let resource = Resource::new(body.clone(), "v1");
    let server = Server::start(move |req: &Recorded| {
        let first = count.fetch_add(1, Ordering::SeqCst) == 0;
        resource.answer(req, first.then_some(40_000))
    });
    let dir = temp();
    let file = dir.path().join("f");
    let sum = format!("sha256:{expected}");
    fetch()
        .args(["-s", "-C", &server.url("/"), "--checksum", &sum, "-o"])
        .arg(&file)
        .assert()
        .code(56);
    fetch()
        .args(["-s", "-C", &server.url("/"), "--checksum", &sum, "-o"])
        .arg(&file)
        .assert()
        .success();
    assert!(fs::read(&file).unwrap() == body);

    // The same within one run: a retry that resumes.
    let count = Arc::new(AtomicUsize::new(0));
    let resource = Resource::new(body.clone(), "v1");
    let server = Server::start(move |req: &Recorded| {
        let first = count.fetch_add(1, Ordering::SeqCst) == 0;
        resource.answer(req, first.then_some(30_000))
    });
    let file = dir.path().join("g");
    fetch()
        .args([
            "-s",
            "--retry",
            "1",
            "--retry-delay",
            "0.01",
            &server.url("/"),
            "--checksum",
            &sum,
            "-o",
        ])
        .arg(&file)
        .assert()
        .success();
    assert!(server.requests()[1].field("Range").is_some());
}

#[test]
fn a_mismatch_with_continue_keeps_no_part_either() {
    let server = Server::body("not what was promised");
    let dir = temp();
    fetch()
        .args([
            "-C",
            &server.url("/"),
            "--checksum",
            &format!("sha256:{HELLO_SHA256}"),
            "-o",
        ])
        .arg(dir.path().join("f"))
        .assert()
        .code(110);
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn several_urls_with_one_checksum_is_a_usage_error() {
    fetch()
        .args([
            "http://127.0.0.1:9/a",
            "http://127.0.0.1:9/b",
            "--checksum",
            &format!("sha256:{HELLO_SHA256}"),
        ])
        .assert()
        .code(2);
    // Nor with -I, which has no body to check.
    fetch()
        .args(["-I", "http://127.0.0.1:9/a", "--checksum"])
        .arg(format!("sha256:{HELLO_SHA256}"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-I asks for none"));
}

#[test]
fn a_206_is_not_checked_against_repr_digest() {
    // Repr-Digest covers the whole file; a range response carries only part.
    let count = Arc::new(AtomicUsize::new(0));
    let server = Server::start(move |req: &Recorded| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            vec![
                Step::Send(raw(
                    &format!(
                        "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"e\"\nRepr-Digest: sha-256=:{HELLO_SHA256_B64}:\nContent-Length: 11\n\n"
                    ),
                    b"hello",
                )),
                Step::Reset,
            ]
        } else {
            assert_eq!(req.field("Range"), Some("bytes=5-"));
            vec![Step::Send(raw(
                &format!(
                    "HTTP/1.1 206 Partial Content\nContent-Range: bytes 5-10/11\nRepr-Digest: sha-256=:{HELLO_SHA256_B64}:\nContent-Length: 6\n\n"
                ),
                b" world",
            ))]
        }
    });
    fetch()
        .args(["--retry", "1", "--retry-delay", "0.01", &server.url("/")])
        .assert()
        .success()
        .stdout("hello world");
}

/// "hello world", chunked, with these fields in the head and these trailer lines.
fn chunked_with_trailers(head_fields: &str, trailers: &str) -> Server {
    Server::bytes(raw(
        &format!("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n{head_fields}\n"),
        format!("5\r\nhello\r\n6\r\n world\r\n0\r\n{trailers}\r\n").as_bytes(),
    ))
}

#[test]
fn a_digest_in_an_announced_trailer_is_verified() {
    for (announce, trailer) in [
        (
            "Trailer: Content-Digest\n",
            format!("Content-Digest: sha-256=:{HELLO_SHA256_B64}:\r\n"),
        ),
        (
            "Trailer: expires, repr-digest\n",
            format!("Repr-Digest: sha-512=:{HELLO_SHA512_B64}:\r\n"),
        ),
    ] {
        let server = chunked_with_trailers(announce, &trailer);
        let dir = temp();
        fetch()
            .args(["-v", "-s", &server.url("/"), "-o"])
            .arg(dir.path().join("f"))
            .assert()
            .success()
            .stderr(predicate::str::contains("-Digest trailer sha"))
            .stderr(predicate::str::contains(" verified\n"));
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"hello world");
    }
}

#[test]
fn a_body_that_does_not_match_its_trailer_digest_is_110() {
    let server = chunked_with_trailers(
        "Trailer: Content-Digest\n",
        &format!("Content-Digest: sha-256=:{HELLO_SHA512_B64}:\r\n").replace(
            HELLO_SHA512_B64,
            // A valid sha-256 value, of other content.
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ),
    );
    let dir = temp();
    let file = dir.path().join("f");
    fs::write(&file, "old").unwrap();
    fetch()
        .args([&server.url("/"), "-o"])
        .arg(&file)
        .assert()
        .code(110)
        .stderr(predicate::str::contains(
            "does not match the server's Content-Digest trailer (sha256)",
        ));
    assert_eq!(fs::read_to_string(&file).unwrap(), "old");
    assert_eq!(names_in(dir.path()), ["f"]);
}

#[test]
fn an_unannounced_trailer_digest_is_reported_as_not_checked() {
    // Without a Trailer field fetch did not hash the body; it says so under -v.
    let server = chunked_with_trailers(
        "",
        "Content-Digest: sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\r\n",
    );
    let dir = temp();
    fetch()
        .args(["-v", "-s", &server.url("/"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Content-Digest trailer sha256 not checked: the head's Trailer field did not announce it",
        ));
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"hello world");

    // Nor when something else hashed the body with that algorithm: -w and
    // --checksum do not change what a transfer checks.
    let right = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    for extra in [["-w", "%{digest_sha256}"], ["--checksum", right]] {
        fetch()
            .args(["-s", &server.url("/"), "-o"])
            .arg(dir.path().join("g"))
            .args(extra)
            .assert()
            .success();
    }
}
