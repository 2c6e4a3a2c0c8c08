//! User input -> `Target`: scheme, host, port, request target and credentials, validated
//! (exit 1 for other schemes, 3 for malformed input).

use crate::error::Error;
use std::net::{IpAddr, Ipv6Addr};

/// The two schemes fetch speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where to connect: a name to resolve or an address to use as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
    /// An IPv6 address with the zone (network interface) it is reached
    /// through, by index: `[fe80::1%25eth0]` (RFC 6874).
    ScopedIpv6(Ipv6Addr, u32),
}

/// User name and password, from `-u` or the URL's userinfo (percent-decoded).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never let a password reach a log through `{:?}`.
        write!(f, "Credentials({:?}, ***)", self.user)
    }
}

/// A parsed, validated http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: ::url::Url,
    /// The interface index of an IPv6 zone the user gave (`%25eth0`), which
    /// the url crate does not keep: it is where to connect, and is never sent.
    zone: Option<u32>,
}

/// Takes an IPv6 zone out of `url`'s host (`[fe80::1%25eth0]`, RFC 6874, or
/// with a bare `%` as curl also accepts), since the url crate refuses them;
/// returns the URL without it and the zone's interface index (a name, or a
/// number).
fn split_zone(url: &str) -> Result<(String, Option<u32>), Error> {
    let start = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| start + at);
    let authority = &url[start..authority_end];
    let (Some(open), Some(close)) = (authority.find('['), authority.rfind(']')) else {
        return Ok((url.to_owned(), None));
    };
    let literal = &authority[open + 1..close.max(open + 1)];
    let Some((address, zone)) = literal.split_once('%') else {
        return Ok((url.to_owned(), None));
    };
    // `%25` is RFC 6874's delimiter (an escaped `%`); a bare `%` is curl's.
    let zone = zone.strip_prefix("25").unwrap_or(zone);
    let zone = percent_decode(zone);
    if zone.is_empty() {
        return Err(Error::Url("an empty IPv6 zone".into()));
    }
    let index = match zone.parse::<u32>() {
        Ok(index) => index,
        Err(_) => nix::net::if_::if_nametoindex(zone.as_str())
            .map_err(|_| Error::Url(format!("no network interface '{zone}' for the IPv6 zone")))?,
    };
    let at = start + open + 1;
    let without = format!("{}{address}{}", &url[..at], &url[at + literal.len()..]);
    Ok((without, Some(index)))
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `input` as it may be shown in a message: without the userinfo (a password)
/// of its authority, like `Target::display`, for input that may not parse.
/// A password may hold `/`, `?` or `#` unescaped (that is often why the URL
/// does not parse), so when a `:` that is not a port's comes before the first
/// of them, everything up to the last `@` is taken for userinfo: better a
/// message that shows too little than one that shows a password.
pub fn without_userinfo(input: &str) -> String {
    let (prefix, rest) = match input.split_once("://") {
        Some((scheme, rest)) if is_scheme_name(scheme) => (&input[..scheme.len() + 3], rest),
        // `file:/x`, `data:,x` (no `@` before a `/`): no userinfo to hide.
        _ if known_scheme(input).is_some_and(|s| !is_http(s)) => return input.to_owned(),
        _ => ("", input),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let password_before_end = authority
        .split_once(':')
        .is_some_and(|(_, after)| !after.bytes().all(|b| b.is_ascii_digit()));
    let userinfo_end = match authority.rfind('@') {
        Some(at) => Some(at),
        None if password_before_end => rest.rfind('@'),
        None => None,
    };
    match userinfo_end {
        Some(at) => format!("{prefix}{}", &rest[at + 1..]),
        None => input.to_owned(),
    }
}

impl Target {
    /// Parses what the user typed: `http://…`, `https://…`, or a bare
    /// `host[:port][/path]`, which means `http://`.
    pub fn parse(input: &str) -> Result<Target, Error> {
        if input.is_empty() {
            return Err(Error::Url("empty URL".into()));
        }
        // The url crate would silently drop tabs and newlines and percent-encode
        // spaces; a URL that holds them is a mistake (or an attack), not a request.
        if let Some(b) = input.bytes().find(|&b| b <= b' ' || b == 0x7f) {
            let what = match b {
                b' ' => "a space".to_owned(),
                b'\r' => "a carriage return".to_owned(),
                b'\n' => "a line feed".to_owned(),
                other => format!("the control byte 0x{other:02x}"),
            };
            return Err(Error::Url(format!("it contains {what}")));
        }
        // A scheme is what comes before the first `://` when that is a scheme
        // name (RFC 3986 §3.1); `host/login?next=http://other/` is bare.
        // Without `//`, `name:` is a scheme only when it is a well-known one
        // (`file:/etc/passwd`, `data:,x`): `host:8080/x` and
        // `user:pass@host` are bare.
        let scheme = input
            .split_once("://")
            .map(|(scheme, _)| scheme)
            .filter(|s| is_scheme_name(s))
            .or_else(|| known_scheme(input));
        let full = match scheme {
            Some(scheme) => {
                if !is_http(scheme) {
                    return Err(Error::Scheme(scheme.to_owned()));
                }
                input.to_owned()
            }
            None => format!("http://{input}"),
        };
        let (full, zone) = split_zone(&full)?;
        let url = ::url::Url::parse(&full).map_err(|e| Error::Url(e.to_string()))?;
        let mut target = Target::from_url(url)?;
        if zone.is_some() && !matches!(target.url.host(), Some(::url::Host::Ipv6(_))) {
            return Err(Error::Url("a zone belongs to an IPv6 address".into()));
        }
        target.zone = zone;
        Ok(target)
    }

    /// The same URL's next hop: `next` keeps this one's zone if it names the
    /// same address (a relative redirect on a link-local server).
    pub fn keep_zone(&self, mut next: Target) -> Target {
        if next.url.host() == self.url.host() {
            next.zone = self.zone;
        }
        next
    }

    /// Accepts an already parsed URL if fetch can speak to it (redirect targets).
    pub fn from_url(url: ::url::Url) -> Result<Target, Error> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(Error::Scheme(other.to_owned())),
        }
        if url.host().is_none() {
            return Err(Error::Url("no host".into()));
        }
        Ok(Target { url, zone: None })
    }

    pub fn scheme(&self) -> Scheme {
        if self.url.scheme() == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }

    /// The host to connect to.
    pub fn host(&self) -> Host {
        match self.url.host() {
            Some(::url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(::url::Host::Ipv6(ip)) => match self.zone {
                Some(zone) => Host::ScopedIpv6(ip, zone),
                None => Host::Ip(IpAddr::V6(ip)),
            },
            Some(::url::Host::Domain(name)) => Host::Name(name.to_owned()),
            None => Host::Name(String::new()), // from_url refuses host-less URLs
        }
    }

    /// The port, with the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or(match self.scheme() {
                Scheme::Http => 80,
                Scheme::Https => 443,
            })
    }

    /// The `Host` field: the host (IPv6 in brackets), and the port when it is
    /// not the scheme's default (RFC 9110 §7.2).
    pub fn host_field(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The origin-form request target: path and query, never the fragment.
    pub fn request_target(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }

    /// Credentials given in the URL's userinfo, percent-decoded.
    pub fn credentials(&self) -> Option<Credentials> {
        let user = self.url.username();
        let password = self.url.password();
        if user.is_empty() && password.is_none() {
            return None;
        }
        Some(Credentials {
            user: percent_decode(user),
            password: percent_decode(password.unwrap_or("")),
        })
    }

    /// The parsed URL (for resolving redirects against it).
    pub fn as_url(&self) -> &::url::Url {
        &self.url
    }

    /// The same URL with its userinfo removed.
    pub fn without_credentials(mut self) -> Target {
        // Both calls only fail for URLs that cannot have credentials.
        let _ = self.url.set_username("");
        let _ = self.url.set_password(None);
        self
    }

    /// The absolute-form request target for a proxy (RFC 9112 §3.2.2):
    /// scheme, authority, path and query, never userinfo or fragment.
    pub fn absolute_form(&self) -> String {
        let scheme = match self.scheme() {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.host_field(), self.request_target())
    }

    /// `host:port` for CONNECT (RFC 9110 §9.3.6), IPv6 in brackets.
    pub fn authority(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.port()
        )
    }

    /// The file name `-O` uses: the last path segment, percent-decoded, with
    /// `/`, `\`, NUL and other control characters removed and leading dots
    /// stripped (no `..`, no hidden files, no paths), at most `MAX_NAME_BYTES`;
    /// `index.html` when nothing is left. Only ever the URL the user gave:
    /// never Content-Disposition or a redirect target (the CVEs of wget and
    /// curl came from trusting the server here).
    pub fn remote_name(&self) -> String {
        let last = self.url.path().rsplit('/').next().unwrap_or_default();
        let decoded = percent_decode(last);
        let cleaned: String = decoded
            .chars()
            .filter(|c| !matches!(c, '/' | '\\') && !c.is_control())
            .collect();
        let mut name = cleaned.trim_start_matches('.').to_owned();
        while name.len() > MAX_NAME_BYTES {
            name.pop();
        }
        if name.is_empty() {
            "index.html".to_owned()
        } else {
            name
        }
    }

    /// `scheme://host[:port]` (the port when not the scheme's default).
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The URL as it may be shown to people and logs: without userinfo.
    pub fn display(&self) -> String {
        if self.url.username().is_empty() && self.url.password().is_none() {
            return self.url.as_str().to_owned();
        }
        self.clone().without_credentials().url.as_str().to_owned()
    }
}

/// Schemes recognised without `//` after them: the ones people paste from
/// elsewhere. Any other `name:` before the host is a port or userinfo.
/// (http and https need their `//`: `http:8080` is the host `http`.)
const KNOWN_SCHEMES: [&str; 15] = [
    "file",
    "ftp",
    "ftps",
    "sftp",
    "scp",
    "ssh",
    "data",
    "mailto",
    "javascript",
    "about",
    "blob",
    "ws",
    "wss",
    "tel",
    "urn",
];

/// The well-known scheme `input` starts with (`name:`), if any. What follows
/// the colon decides: a port (`ftp:2121/x`) or userinfo (`ftp:pass@host`)
/// make it a bare host, as they always did.
fn known_scheme(input: &str) -> Option<&str> {
    let (name, rest) = input.split_once(':')?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let bare = rest.starts_with(|c: char| c.is_ascii_digit()) || authority.contains('@');
    let known = KNOWN_SCHEMES.iter().any(|k| name.eq_ignore_ascii_case(k));
    (known && !bare).then_some(name)
}

fn is_http(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// Longest `-O` name, in bytes: NAME_MAX on Linux and most file systems
/// (255) less the 10 of `.part.meta`, so that replacing and `-C` work too.
pub const MAX_NAME_BYTES: usize = 255 - ".part.meta".len();

/// A URL given as raw bytes (a Location field, a line of `--input-file`, an
/// argument), as text: bytes that are not UTF-8 (a Latin-1 file name) are
/// percent-encoded, as curl and browsers do, and name the same resource
/// (RFC 3986 §2.1). Valid UTF-8 the URL parser encodes itself.
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => bytes
            .iter()
            .map(|&b| match b {
                0x80.. => format!("%{b:02X}"),
                _ => char::from(b).to_string(),
            })
            .collect::<String>()
            .into(),
    }
}

/// Decodes `%XX` escapes; anything that is not a valid escape stays as it is.
/// Invalid UTF-8 in the result is replaced, never an error.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_means_http() {
        let t = Target::parse("www.sina.com.cn").unwrap();
        assert_eq!(t.scheme(), Scheme::Http);
        assert_eq!(t.host(), Host::Name("www.sina.com.cn".into()));
        assert_eq!(t.port(), 80);
        assert_eq!(t.request_target(), "/");
        assert_eq!(t.host_field(), "www.sina.com.cn");
    }

    #[test]
    fn bare_host_with_port_and_path() {
        let t = Target::parse("localhost:8080/a/b?c=d#frag").unwrap();
        assert_eq!(t.port(), 8080);
        assert_eq!(t.request_target(), "/a/b?c=d");
        assert_eq!(t.host_field(), "localhost:8080");
    }

    #[test]
    fn a_url_in_the_query_of_a_bare_host_is_not_its_scheme() {
        let t = Target::parse("localhost:8080/login?next=http://other/&x=ftp://y").unwrap();
        assert_eq!(t.scheme(), Scheme::Http);
        assert_eq!(t.host_field(), "localhost:8080");
        assert_eq!(t.request_target(), "/login?next=http://other/&x=ftp://y");
        let t = Target::parse("h/a://b").unwrap();
        assert_eq!(t.request_target(), "/a://b");
        assert_eq!(Target::parse("svn+ssh://h/").unwrap_err().exit_code(), 1);
    }

    #[test]
    fn userinfo_is_left_out_of_what_is_shown() {
        for (input, shown) in [
            ("http://u:s3cret@h:99999/a@b", "http://h:99999/a@b"),
            ("u:p@w@h/x", "h/x"),
            ("ftp://u:p@h", "ftp://h"),
            ("h/a?u=x:y@z", "h/a?u=x:y@z"),
            ("http://h/", "http://h/"),
            ("http://bob:pa#ss@h:1/", "http://h:1/"),
            ("http://bob:pa?ss@h:1/", "http://h:1/"),
            ("http://bob:pa/ss@h:1/x", "http://h:1/x"),
            ("http://h:8080/a?u=x@y", "http://h:8080/a?u=x@y"),
        ] {
            assert_eq!(without_userinfo(input), shown, "{input}");
        }
    }

    #[test]
    fn ipv6_zones_are_kept_apart_from_the_url() {
        for input in [
            "http://[::1%25lo]:8080/x",
            "[::1%lo]:8080/x",
            "http://[::1%251]:8080/x",
        ] {
            let t = Target::parse(input).unwrap();
            assert!(
                matches!(t.host(), Host::ScopedIpv6(ip, index) if ip == Ipv6Addr::LOCALHOST && index > 0),
                "{input}: {:?}",
                t.host()
            );
            assert_eq!(t.host_field(), "[::1]:8080", "{input}");
            assert_eq!(t.request_target(), "/x");
        }
        for bad in ["http://[::1%25]/", "http://[::1%25no-such-if0]/"] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{bad}: {e}");
        }
        // Brackets outside the host are no zone.
        let t = Target::parse("http://h/%25[x%y]").unwrap();
        assert_eq!(t.host(), Host::Name("h".into()));
        // A redirect to the same address keeps the zone; to another, not.
        let t = Target::parse("http://[::1%25lo]/").unwrap();
        let same = t.keep_zone(Target::parse("http://[::1]/next").unwrap());
        assert!(matches!(same.host(), Host::ScopedIpv6(..)));
        let other = t.keep_zone(Target::parse("http://[::2]/").unwrap());
        assert!(matches!(other.host(), Host::Ip(_)));
    }

    #[test]
    fn ipv6_literal() {
        let t = Target::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(t.host(), Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.host_field(), "[::1]:8080");
    }

    #[test]
    fn default_port_is_left_out_of_host_field() {
        let t = Target::parse("http://example.com:80/").unwrap();
        assert_eq!(t.host_field(), "example.com");
        let t = Target::parse("https://example.com/").unwrap();
        assert_eq!(t.port(), 443);
    }

    #[test]
    fn other_schemes_are_exit_1() {
        for url in ["ftp://x/", "file:///etc/passwd", "FTP://x"] {
            assert_eq!(Target::parse(url).unwrap_err().exit_code(), 1, "{url}");
        }
        assert!(Target::parse("HTTPS://x/").is_ok());
        // Without `//`: a well-known scheme is one; a port or userinfo is not.
        for url in ["file:/etc/passwd", "data:,x", "javascript:x", "ftp:x/y"] {
            assert_eq!(Target::parse(url).unwrap_err().exit_code(), 1, "{url}");
            assert_eq!(without_userinfo(url), url);
        }
        for (bare, authority) in [
            ("h:8080/x", "h:8080"),
            ("user:pw@h/x", "h:80"),
            ("files:8/x", "files:8"),
            ("http:8080", "http:8080"),
            ("ftp:2121/x", "ftp:2121"),
            ("ftp:s3cret@h/x", "h:80"),
            ("ws:81", "ws:81"),
        ] {
            let t = Target::parse(bare).unwrap();
            assert_eq!(t.authority(), authority, "{bare}");
        }
        assert!(!without_userinfo("ftp:s3cret@h/x").contains("s3cret"));
    }

    #[test]
    fn control_bytes_and_spaces_are_exit_3() {
        for url in [
            "http://a b/",
            "http://h/a\r\nX: y",
            "http://h/\t",
            "http://h/\x7f",
            "",
        ] {
            assert_eq!(Target::parse(url).unwrap_err().exit_code(), 3, "{url:?}");
        }
    }

    #[test]
    fn malformed_is_exit_3() {
        for url in ["http://", "http://h:99999/", "http://[::1/", "http://h:x/"] {
            assert_eq!(Target::parse(url).unwrap_err().exit_code(), 3, "{url}");
        }
    }

    #[test]
    fn userinfo_is_decoded_and_never_displayed() {
        let t = Target::parse("http://us%40er:p%3Ass@h/x").unwrap();
        let c = t.credentials().unwrap();
        assert_eq!(c.user, "us@er");
        assert_eq!(c.password, "p:ss");
        assert_eq!(t.display(), "http://h/x");
        assert!(!format!("{c:?}").contains("p:ss"));
    }

    #[test]
    fn remote_names_are_safe() {
        let name = |u: &str| Target::parse(u).unwrap().remote_name();
        assert_eq!(name("http://h/a/b/file.tar.gz?x=1#f"), "file.tar.gz");
        assert_eq!(name("http://h/"), "index.html");
        assert_eq!(name("http://h"), "index.html");
        assert_eq!(name("http://h/dir/"), "index.html");
        assert_eq!(name("http://h/my%20file.txt"), "my file.txt");
        assert_eq!(
            name("http://h/..%2F..%2Fetc%2Fpasswd"),
            "....etcpasswd".trim_start_matches('.')
        );
        assert_eq!(name("http://h/x/%2e%2e"), "index.html");
        assert_eq!(name("http://h/.bashrc"), "bashrc");
        assert_eq!(name("http://h/a%5Cb%00c%1b[31m"), "abc[31m");
        assert_eq!(name("http://h/caf%C3%A9"), "café");
        let long = format!("http://h/{}", "é".repeat(300));
        let n = name(&long);
        assert!(
            n.len() <= MAX_NAME_BYTES && n.chars().all(|c| c == 'é'),
            "{}",
            n.len()
        );
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }
}
