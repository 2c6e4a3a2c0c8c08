//! Redirect policy (RFC 9110 §15.4, DESIGN §6): which responses are followed, where
//! to, and which credentials may travel along.

use crate::error::Error;
use crate::response::Head;
use crate::url::{Scheme, Target};

/// 301, 302, 303, 307 and 308 are followed; 300, 304 and 305 are final.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect response points: its first Location field, unless that
/// is empty. An empty Location names no target (resolved, it would be the
/// current URL, a loop): like a 3xx without Location, the response is final.
pub fn location(head: &Head) -> Option<&[u8]> {
    head.values("location")
        .next()
        .filter(|value| !value.trim_ascii().is_empty())
}

/// Resolves a Location value against the URL that returned it, and checks that
/// fetch may go there: http or https only (1), never https -> http (1).
/// Userinfo in the Location is dropped: a server does not get to choose
/// credentials.
pub fn next_target(current: &Target, location: &[u8]) -> Result<Target, Error> {
    // Servers now and then send raw 8-bit bytes (a Latin-1 file name).
    let text = crate::url::text_of(location);
    let url = current.as_url().join(text.trim()).map_err(|e| {
        Error::Malformed(format!(
            "invalid Location '{}': {e}",
            crate::escape::for_message(location)
        ))
    })?;
    // Parsed already: the parser knows the userinfo (`mailto:a@b` has none).
    let shown = {
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        crate::escape::for_message(shown.as_str().as_bytes())
    };
    let next = Target::from_url(url).map_err(|e| match e {
        Error::Scheme(_) => Error::RedirectScheme(shown),
        e => e,
    })?;
    let next = current.keep_zone(next.without_credentials());
    if current.scheme() == Scheme::Https && next.scheme() == Scheme::Http {
        return Err(Error::Downgrade(next.display()));
    }
    Ok(next)
}

/// Scheme, host and port: the boundary credentials must not cross (RFC 6454).
pub fn same_origin(a: &Target, b: &Target) -> bool {
    a.scheme() == b.scheme() && a.host() == b.host() && a.port() == b.port()
}

/// `-H` fields that belong to the origin they were given for, dropped once a
/// chain leaves it: credentials (Authorization, Cookie), and a Host, which
/// would ask the next server for the wrong site (curl drops it too).
pub fn is_origin_bound_field(name: &str) -> bool {
    ["authorization", "cookie", "host"]
        .iter()
        .any(|bound| name.eq_ignore_ascii_case(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(from: &str, location: &str) -> Result<String, Error> {
        next_target(&Target::parse(from).unwrap(), location.as_bytes()).map(|t| t.display())
    }

    #[test]
    fn relative_locations_resolve_against_the_current_url() {
        assert_eq!(next("http://h/a/b/c", "d").unwrap(), "http://h/a/b/d");
        assert_eq!(
            next("http://h/a/b/c", "../x?y=1").unwrap(),
            "http://h/a/x?y=1"
        );
        assert_eq!(next("http://h/a/b/c", "/root").unwrap(), "http://h/root");
        assert_eq!(
            next("http://h:81/a", "//other/p").unwrap(),
            "http://other/p"
        );
        assert_eq!(next("http://h/a", "https://s/").unwrap(), "https://s/");
    }

    #[test]
    fn raw_8_bit_bytes_are_percent_encoded() {
        let from = Target::parse("http://h/dir/").unwrap();
        let target = next_target(&from, b"caf\xe9 menu.txt?q=\xff").unwrap();
        assert_eq!(target.display(), "http://h/dir/caf%E9%20menu.txt?q=%FF");
        // Valid UTF-8 the parser encodes as UTF-8.
        assert_eq!(
            next("http://h/", "/caf\u{e9}").unwrap(),
            "http://h/caf%C3%A9"
        );
    }

    #[test]
    fn only_http_and_https_targets() {
        for location in [
            "ftp://h/x",
            "file:///etc/passwd",
            "data:text/plain,hi",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                next("http://h/", location).unwrap_err().exit_code(),
                1,
                "{location}"
            );
        }
        // The message shows the target as the parser read it, without a
        // password, and an address that has no userinfo whole.
        for (location, shown) in [
            ("mailto:a@b", "a redirect to mailto:a@b:"),
            ("ftp://u:secret@h/x", "a redirect to ftp://h/x:"),
        ] {
            let e = next("http://h/", location).unwrap_err().to_string();
            assert!(e.contains(shown) && !e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn https_to_http_is_refused() {
        let err = next("https://h/", "http://h/").unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(next("http://h/", "https://h/").is_ok());
    }

    #[test]
    fn userinfo_in_a_location_is_dropped() {
        let t = next_target(
            &Target::parse("http://h/").unwrap(),
            b"http://evil:pw@other/",
        )
        .unwrap();
        assert_eq!(t.credentials(), None);
    }

    #[test]
    fn an_empty_location_is_none() {
        use crate::test_io::head;
        let found = head("HTTP/1.1 302 Found\nLocation: /next");
        assert_eq!(location(&found), Some(&b"/next"[..]));
        for empty in [
            "HTTP/1.1 302 Found\nLocation:",
            "HTTP/1.1 301 Moved\nLocation:   ",
        ] {
            assert_eq!(location(&head(empty)), None, "{empty}");
        }
        assert_eq!(location(&head("HTTP/1.1 302 Found")), None);
    }

    #[test]
    fn origins() {
        let t = |s| Target::parse(s).unwrap();
        assert!(same_origin(&t("http://h/a"), &t("http://h:80/b")));
        assert!(!same_origin(&t("http://h/"), &t("https://h/")));
        assert!(!same_origin(&t("http://h/"), &t("http://h:81/")));
        assert!(!same_origin(&t("http://h/"), &t("http://sub.h/")));
    }
}
