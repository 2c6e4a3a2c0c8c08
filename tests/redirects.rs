//! Redirects (DESIGN §6): chains of every kind of Location, limits and loops,
//! scheme rules, and credentials that never leave their origin.

use crate::support::server::{Recorded, Server, Step, raw, response};
use crate::support::{fetch, temp};
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::sync::{Arc, OnceLock};

fn redirect(status: &str, location: &str) -> Vec<Step> {
    vec![Step::Send(response(
        status,
        &[&format!("Location: {location}")],
        b"redirect body",
    ))]
}

#[test]
fn a_chain_of_every_location_form_ends_at_the_final_body() {
    let server = Server::start(|req: &Recorded| match req.target() {
        "/start" => redirect("301 Moved Permanently", "/dir/a"),
        "/dir/a" => redirect("302 Found", "b?x=1"),
        "/dir/b?x=1" => redirect("303 See Other", "../c"),
        "/c" => {
            let port = req
                .field("Host")
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_owned();
            redirect("307 Temporary Redirect", &format!("//127.0.0.1:{port}/d"))
        }
        "/d" => redirect("308 Permanent Redirect", "/final#fragment"),
        "/final" => vec![Step::Send(response(
            "200 OK",
            &["X-Final: yes"],
            b"the end",
        ))],
        other => panic!("unexpected {other}"),
    });
    let dir = temp();
    let out = fetch()
        .args(["-v", &server.url("/start"), "-o"])
        .arg(dir.path().join("f"))
        .assert()
        .success()
        .stderr(
            predicate::str::contains("* Redirect 301 to ")
                .and(predicate::str::contains("* Redirect 308 to "))
                .and(predicate::str::contains("< HTTP/1.1 302 Found")),
        );
    // The printed head is the final response's alone.
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.starts_with("HTTP/1.1 200 OK\r\nX-Final: yes\r\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("301"), "{stdout}");
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"the end");
    let targets: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.target().to_owned())
        .collect();
    assert_eq!(
        targets,
        ["/start", "/dir/a", "/dir/b?x=1", "/c", "/d", "/final"]
    );
}

#[test]
fn no_follow_makes_the_redirect_final() {
    let server = Server::steps(redirect("301 Moved", "/elsewhere"));
    fetch()
        .args(["--no-follow", &server.url("/")])
        .assert()
        .success()
        .stdout("redirect body");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_redirect_without_location_is_final() {
    let server = Server::body_with_status("302 Found", b"no location");
    fetch()
        .arg(server.url("/"))
        .assert()
        .success()
        .stdout("no location");
}

#[test]
fn an_empty_location_is_final_too() {
    for field in ["Location:", "Location:   "] {
        let server = Server::bytes(response("301 Moved", &[field], b"empty location"));
        fetch()
            .arg(server.url("/"))
            .assert()
            .success()
            .stdout("empty location");
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn head_requests_stay_head_through_redirects() {
    let server = Server::start(|req: &Recorded| match req.target() {
        "/a" => redirect("302 Found", "/b"),
        _ => vec![Step::Send(raw(
            "HTTP/1.1 200 OK\nContent-Length: 9\n\n",
            b"",
        ))],
    });
    fetch()
        .args(["-I", &server.url("/a")])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("HTTP/1.1 200 OK"));
    let requests = server.requests();
    let asked: Vec<(&str, &str)> = requests.iter().map(|r| (r.method(), r.target())).collect();
    assert_eq!(asked, [("HEAD", "/a"), ("HEAD", "/b")]);
}

#[test]
fn too_many_redirects_is_47() {
    let server = Server::start(|req: &Recorded| {
        let n: u32 = req.target().trim_start_matches('/').parse().unwrap();
        redirect("302 Found", &format!("/{}", n + 1))
    });
    fetch()
        .args([&server.url("/0"), "--max-redirs", "3"])
        .assert()
        .code(47)
        .stderr(predicate::str::contains("more than 3 redirects"));
    assert_eq!(server.requests().len(), 4);
    fetch()
        .args([&server.url("/0"), "--max-redirs", "0"])
        .assert()
        .code(47);
}

/// The default is 10 (DESIGN §1): ten redirects are followed, the eleventh
/// is 47; `-L` (curl's habit) changes nothing.
#[test]
fn ten_redirects_by_default_with_or_without_l() {
    // /ten/N ends at /ten/10; /endless/N never ends.
    let server = Server::start(|req: &Recorded| {
        let (chain, n) = req.target()[1..].split_once('/').unwrap();
        let n: u32 = n.parse().unwrap();
        match (chain, n) {
            ("ten", 10) => vec![Step::Send(response("200 OK", &[], b"arrived"))],
            _ => redirect("302 Found", &format!("/{chain}/{}", n + 1)),
        }
    });
    for flags in [&[][..], &["-L"]] {
        let before = server.requests().len();
        fetch()
            .args(flags)
            .arg(server.url("/ten/0"))
            .assert()
            .success()
            .stdout("arrived");
        assert_eq!(server.requests().len() - before, 11, "{flags:?}");
        let before = server.requests().len();
        fetch()
            .args(flags)
            .arg(server.url("/endless/0"))
            .assert()
            .code(47)
            .stderr(predicate::str::contains("more than 10 redirects"));
        assert_eq!(server.requests().len() - before, 11, "{flags:?}");
    }
}

#[test]
fn loops_are_47() {
    let server = Server::start(|req: &Recorded| match req.target() {
        "/self" => redirect("301 Moved", "/self"),
        "/a" => redirect("302 Found", "/b"),
        _ => redirect("302 Found", "/a"),
    });
    fetch()
        .arg(server.url("/self"))
        .assert()
        .code(47)
        .stderr(predicate::str::contains("redirect loop"));
    fetch()
        .arg(server.url("/a"))
        .assert()
        .code(47)
        .stderr(predicate::str::contains("/a -> ").and(predicate::str::contains("/b -> ")));
}

#[test]
fn non_http_targets_are_1() {
    for location in [
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "data:text/plain,hi",
    ] {
        let server = Server::steps(redirect("302 Found", location));
        let dir = temp();
        fetch()
            .arg(server.url("/"))
            .arg("-o")
            .arg(dir.path().join("f"))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("refusing to follow a redirect to"));
        assert!(crate::support::names_in(dir.path()).is_empty());
    }
}

#[test]
fn a_head_cut_off_mid_redirect_is_8() {
    let server = Server::bytes(&b"HTTP/1.1 301 Moved\r\nLocation: /next\r\n"[..]);
    fetch().arg(server.url("/")).assert().code(8);
}

#[test]
fn credentials_never_reach_another_origin_and_stay_stripped() {
    // origin -> same origin -> other origin -> back to origin -> final
    let origin_url: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let back = Arc::clone(&origin_url);
    let other = Server::start(move |_: &Recorded| {
        redirect("302 Found", &format!("{}/final", back.get().unwrap()))
    });
    let other_url = other.url("/elsewhere");
    let origin = Server::start(move |req: &Recorded| match req.target() {
        "/start" => redirect("302 Found", "/same"),
        "/same" => redirect("302 Found", &other_url),
        _ => vec![Step::Send(response("200 OK", &[], b"done"))],
    });
    origin_url.set(origin.url("")).unwrap();
    let url = origin
        .url("/start")
        .replace("http://", "http://user:secret@");
    fetch()
        .args([&url, "-H", "Cookie: session=1", "-H", "X-Other: kept"])
        .assert()
        .success()
        .stdout("done");

    let at_origin = origin.requests();
    assert_eq!(at_origin.len(), 3);
    for req in &at_origin[..2] {
        assert!(req.field("Authorization").is_some(), "{}", req.raw);
        assert_eq!(req.field("Cookie"), Some("session=1"));
    }
    let at_other = other.request();
    let back_home = &at_origin[2];
    for req in [&at_other, back_home] {
        assert_eq!(req.field("Authorization"), None, "{}", req.raw);
        assert_eq!(req.field("Cookie"), None, "{}", req.raw);
        assert_eq!(req.field("X-Other"), Some("kept"));
    }
}

#[test]
fn explicit_authorization_headers_and_u_are_stripped_too() {
    let other = Server::body("other");
    let other_url = other.url("/");
    let origin = Server::start(move |_: &Recorded| redirect("301 Moved", &other_url));
    fetch()
        .args([&origin.url("/"), "-H", "Authorization: Bearer token"])
        .assert()
        .success();
    assert_eq!(
        origin.request().field("Authorization"),
        Some("Bearer token")
    );
    assert_eq!(other.request().field("Authorization"), None);

    fetch()
        .args([&origin.url("/"), "-u", "a:b"])
        .assert()
        .success();
    assert_eq!(other.requests()[1].field("Authorization"), None);
}

/// A `-H Host` names a site on the server it was given for; the next server
/// is asked for its own (as curl does), here and for the rest of the chain.
#[test]
fn a_custom_host_field_stays_with_its_origin() {
    let other = Server::body("other");
    let other_url = other.url("/");
    let origin = Server::start(move |_: &Recorded| redirect("301 Moved", &other_url));
    fetch()
        .args([&origin.url("/"), "-H", "Host: custom.example"])
        .assert()
        .success()
        .stdout("other");
    assert_eq!(origin.request().field("Host"), Some("custom.example"));
    let own = format!("127.0.0.1:{}", other.addr().port());
    assert_eq!(other.request().field("Host"), Some(own.as_str()));
}

#[test]
fn userinfo_in_a_location_is_not_used() {
    let other = Server::body("other");
    let location = other.url("/").replace("http://", "http://evil:pw@");
    let origin = Server::start(move |_: &Recorded| redirect("302 Found", &location));
    fetch().arg(origin.url("/")).assert().success();
    assert_eq!(other.request().field("Authorization"), None);
}

/// Raw 8-bit bytes in a Location (a Latin-1 name) are percent-encoded, as curl
/// and browsers do, and the redirect is followed.
#[test]
fn a_location_with_raw_8_bit_bytes_is_followed_percent_encoded() {
    let server = Server::start(|req: &Recorded| match req.target() {
        "/start" => vec![Step::Send(
            b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: /caf\xe9\r\n\r\n".to_vec(),
        )],
        "/caf%E9" => vec![Step::Send(response("200 OK", &[], b"latin-1 name"))],
        _ => vec![Step::Send(response("404 Not Found", &[], b""))],
    });
    fetch()
        .arg(server.url("/start"))
        .assert()
        .success()
        .stdout("latin-1 name");
}

/// An error at the end of a chain names the URL the user gave (in a batch,
/// the line must tell which input failed) and where the redirects led.
#[test]
fn an_error_after_redirects_names_the_given_url_and_where_it_led() {
    let server = Server::start(|req: &Recorded| match req.target() {
        "/given" => redirect("302 Found", "/moved"),
        _ => vec![Step::Send(response("404 Not Found", &[], b"gone"))],
    });
    let given = server.url("/given");
    fetch().arg(&given).assert().code(22).stderr(format!(
        "fetch: {given} (redirected to {}): HTTP 404 Not Found (use --no-fail to keep the body)\n",
        server.url("/moved")
    ));
}
