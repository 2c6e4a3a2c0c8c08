//! Proxies: which one a URL goes through (`--proxy`, `http_proxy`, `https_proxy`,
//! `no_proxy`), and the CONNECT tunnel for https (RFC 9110 §9.3.6).

use crate::config::{Proxies, UnusableProxy};
use crate::error::Error;
use crate::response::read_response_head;
use crate::url::{Host, Scheme, Target};
use std::io::{BufReader, Read, Write};
use std::net::IpAddr;

/// The proxy `target` must go through, if any.
/// (One that cannot be used counts as none here: [`check`] fails the
/// transfer before anything goes out.)
pub fn for_target<'a>(proxies: &'a Proxies, target: &Target) -> Option<&'a Target> {
    setting(proxies, target)?.as_ref().ok()
}

/// Where the proxy for `target` was set, for a message about it: the flag, or
/// the variable and how to go around it.
pub fn named(proxies: &Proxies, target: &Target) -> String {
    let from = match target.scheme() {
        Scheme::Http => &proxies.http_from,
        Scheme::Https => &proxies.https_from,
    };
    match from.as_str() {
        "--proxy" => "--proxy".into(),
        variable => format!("{variable}; --proxy '' or no_proxy goes around it"),
    }
}

/// Fails when `target` would go through a proxy that cannot be used. Checked
/// before each URL of a chain is asked for.
pub fn check(proxies: &Proxies, target: &Target) -> Result<(), Error> {
    match setting(proxies, target) {
        Some(Err(unusable)) => Err(Error::UnusableProxy(unusable.clone())),
        _ => Ok(()),
    }
}

/// The proxy setting for `target`'s scheme, unless `no_proxy` bypasses it.
fn setting<'a>(proxies: &'a Proxies, target: &Target) -> Option<&'a Result<Target, UnusableProxy>> {
    let setting = match target.scheme() {
        Scheme::Http => proxies.http.as_ref(),
        Scheme::Https => proxies.https.as_ref(),
    }?;
    (!bypasses(&proxies.no_proxy, &target.host())).then_some(setting)
}

/// `no_proxy` matching, as curl (7.86 and later) does it: `*` matches every
/// host; a name matches itself and its subdomains (`example.com` and
/// `.example.com` both match `www.example.com`); an address host matches only
/// the same address or a CIDR block holding it (`127.0.0.0/8`, `::1/128`),
/// never by suffix (`0.0.1` does not match `127.0.0.1`). Case-insensitive; a
/// trailing dot on either side is ignored; ports in entries are ignored.
pub fn bypasses(no_proxy: &[String], host: &Host) -> bool {
    no_proxy.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        entry == "*"
            || match host {
                Host::Ip(ip) => matches_address(&entry, *ip),
                Host::ScopedIpv6(ip, _) => matches_address(&entry, (*ip).into()),
                Host::Name(name) => matches_name(&entry, &name.to_ascii_lowercase()),
            }
    })
}

/// A lowercase name against a lowercase entry: the name itself or a subdomain.
fn matches_name(entry: &str, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let entry = strip_port(entry);
    let entry = entry.trim_start_matches("*.").trim_start_matches('.');
    let entry = entry.strip_suffix('.').unwrap_or(entry);
    !entry.is_empty()
        && (name == entry
            || name
                .strip_suffix(entry)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// An address against an entry that is an address (`127.0.0.1`, `[::1]:80`)
/// or a CIDR block (`10.0.0.0/8`, `fe80::/10`). Anything else, a prefix
/// longer than the address included, matches no address.
fn matches_address(entry: &str, ip: IpAddr) -> bool {
    let (address, prefix) = match entry.split_once('/') {
        Some((address, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (address, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(network) = strip_port(address).parse::<IpAddr>() else {
        return false;
    };
    match (prefix, ip, network) {
        (None, ip, network) => ip == network,
        (Some(bits), IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (Some(bits), IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// `host:port` -> `host`, `[v6]:port` or `[v6]` -> `v6`; a bare IPv6 stays whole.
fn strip_port(entry: &str) -> &str {
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => entry,
    }
}

/// Asks the proxy on `socket` for a tunnel to `target`. After a 2xx head the
/// socket belongs to TLS, so not a byte past the head may be consumed.
pub fn open_tunnel<S: Read + Write>(
    socket: &mut S,
    target: &Target,
    proxy: &Target,
    user_agent: &str,
    trace_head: &mut dyn FnMut(&str, &[u8]),
) -> Result<(), Error> {
    let authority = target.authority();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if !user_agent.is_empty() {
        request.push_str(&format!("User-Agent: {user_agent}\r\n"));
    }
    if let Some(c) = proxy.credentials() {
        request.push_str(&format!(
            "Proxy-Authorization: {}\r\n",
            crate::request::basic_auth(&c)
        ));
    }
    request.push_str("\r\n");
    trace_head("> ", request.as_bytes());
    socket
        .write_all(request.as_bytes())
        .and_then(|()| socket.flush())
        .map_err(Error::from_read)?;
    // One byte per read: a proxy's answer is small, and the bytes after it
    // belong to the TLS session.
    let mut reader = BufReader::with_capacity(1, socket);
    // What goes wrong in the proxy's answer is the proxy's, not the origin's.
    let head =
        read_response_head(&mut reader, |h| trace_head("< ", &h.raw)).map_err(|e| match e {
            Error::EmptyReply => Error::ProxyTunnel("it closed the connection".into()),
            Error::HeadCut => Error::ProxyTunnel("it closed the connection mid-answer".into()),
            Error::Malformed(why) => Error::ProxyTunnel(why),
            e => e,
        })?;
    if !(200..300).contains(&head.status) {
        return Err(Error::ProxyRefused {
            status: head.status,
            reason: crate::escape::for_message(head.reason.as_bytes()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Host {
        match s.parse() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(s.into()),
        }
    }

    fn list(s: &str) -> Vec<String> {
        s.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn no_proxy_domain_suffixes() {
        let rules = list("example.com, .internal,*.corp,localhost:8080");
        assert!(bypasses(&rules, &host("example.com")));
        assert!(bypasses(&rules, &host("www.EXAMPLE.com")));
        assert!(!bypasses(&rules, &host("notexample.com")));
        assert!(bypasses(&rules, &host("a.b.internal")));
        assert!(bypasses(&rules, &host("internal")));
        assert!(bypasses(&rules, &host("x.corp")));
        assert!(bypasses(&rules, &host("localhost")));
        assert!(!bypasses(&rules, &host("example.org")));
    }

    #[test]
    fn no_proxy_star_and_addresses() {
        assert!(bypasses(&list("*"), &host("anything")));
        let rules = list("127.0.0.1,[::1]:80,::2");
        assert!(bypasses(&rules, &host("127.0.0.1")));
        assert!(bypasses(&rules, &host("::1")));
        assert!(bypasses(&rules, &host("::2")));
        assert!(!bypasses(&rules, &host("127.0.0.2")));
        assert!(!bypasses(&list(""), &host("h")));
    }

    #[test]
    fn no_proxy_addresses_match_whole_never_by_suffix() {
        for entry in ["0.0.1", ".0.0.1", "0.1", "1"] {
            assert!(!bypasses(&list(entry), &host("127.0.0.1")), "{entry}");
        }
        assert!(!bypasses(&list("1"), &host("::1")));
        assert!(bypasses(&list("[::1]"), &host("::1")));
        assert!(bypasses(&list("0:0::1"), &host("::1")));
        // A name entry never matches an address, nor an address entry a name.
        assert!(!bypasses(&list("localhost"), &host("127.0.0.1")));
        assert!(!bypasses(&list("127.0.0.1"), &host("localhost")));
    }

    #[test]
    fn no_proxy_cidr_blocks() {
        let rules = list("127.0.0.0/8, 192.168.1.0/24, fe80::/10, ::1/128");
        for yes in [
            "127.0.0.1",
            "127.255.255.254",
            "192.168.1.77",
            "fe80::1",
            "::1",
        ] {
            assert!(bypasses(&rules, &host(yes)), "{yes}");
        }
        for no in ["128.0.0.1", "192.168.2.1", "fec0::1", "::2", "10.0.0.1"] {
            assert!(!bypasses(&rules, &host(no)), "{no}");
        }
        assert!(bypasses(&list("0.0.0.0/0"), &host("8.8.8.8")));
        assert!(!bypasses(&list("0.0.0.0/0"), &host("::1")));
        assert!(bypasses(&list("::/0"), &host("2001:db8::1")));
        assert!(bypasses(&list("10.1.2.3/32"), &host("10.1.2.3")));
        assert!(!bypasses(&list("10.1.2.3/32"), &host("10.1.2.4")));
        // Prefixes that are too long or not numbers match nothing.
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/x", "10.0.0.0/", "/8"] {
            assert!(!bypasses(&list(bad), &host("10.0.0.1")), "{bad}");
            assert!(!bypasses(&list(bad), &host("::1")), "{bad}");
        }
        // A block is no name suffix either.
        assert!(!bypasses(&list("127.0.0.0/8"), &host("localhost")));
    }

    #[test]
    fn no_proxy_ignores_trailing_dots() {
        assert!(bypasses(&list("localhost"), &host("localhost.")));
        assert!(bypasses(&list("localhost."), &host("localhost")));
        assert!(bypasses(&list(".example.com."), &host("www.example.com.")));
        assert!(!bypasses(&list("example.com."), &host("notexample.com")));
    }

    #[test]
    fn scheme_picks_the_proxy() {
        let proxies = Proxies {
            http: Some(Ok(Target::parse("http://p1:3128").unwrap())),
            https: None,
            no_proxy: list("direct.example"),
            http_from: "http_proxy".into(),
            ..Default::default()
        };
        let http = Target::parse("http://h/").unwrap();
        let https = Target::parse("https://h/").unwrap();
        let direct = Target::parse("http://direct.example/").unwrap();
        assert_eq!(for_target(&proxies, &http).unwrap().port(), 3128);
        assert!(for_target(&proxies, &https).is_none());
        assert!(for_target(&proxies, &direct).is_none());
        assert_eq!(
            named(&proxies, &http),
            "http_proxy; --proxy '' or no_proxy goes around it"
        );
        let flag = Proxies {
            https_from: "--proxy".into(),
            ..proxies
        };
        assert_eq!(named(&flag, &https), "--proxy");
    }

    #[test]
    fn an_unusable_proxy_fails_only_what_would_go_through_it() {
        let unusable = crate::config::UnusableProxy {
            why: "https_proxy 'socks5://p': unsupported proxy scheme".into(),
            exit_code: 1,
        };
        let proxies = Proxies {
            http: None,
            https: Some(Err(unusable)),
            no_proxy: list("direct.example"),
            ..Default::default()
        };
        let http = Target::parse("http://h/").unwrap();
        let https = Target::parse("https://h/").unwrap();
        let direct = Target::parse("https://direct.example/").unwrap();
        assert!(check(&proxies, &http).is_ok() && check(&proxies, &direct).is_ok());
        let e = check(&proxies, &https).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("socks5://p"), "{e}");
        assert!(for_target(&proxies, &https).is_none());
    }

    #[test]
    fn tunnel_request_and_refusal() {
        struct Fake {
            answer: &'static [u8],
            sent: Vec<u8>,
        }
        impl Read for Fake {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.answer.read(buf)
            }
        }
        impl Write for Fake {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.sent.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let target = Target::parse("https://[::1]:8443/x").unwrap();
        let proxy = Target::parse("http://u:p@proxy:3128").unwrap();
        let mut ok = Fake {
            answer: b"HTTP/1.1 200 Connection established\r\n\r\nTLS",
            sent: vec![],
        };
        open_tunnel(&mut ok, &target, &proxy, "ua", &mut |_, _| {}).unwrap();
        let sent = String::from_utf8(ok.sent).unwrap();
        assert!(sent.starts_with("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"));
        assert!(sent.contains("Proxy-Authorization: Basic dTpw\r\n"));
        // Not a byte past the head was taken.
        assert_eq!(ok.answer, b"TLS");

        let mut refused = Fake {
            answer: b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            sent: vec![],
        };
        let err = open_tunnel(&mut refused, &target, &proxy, "ua", &mut |_, _| {}).unwrap_err();
        assert_eq!(err.exit_code(), 56);
        assert!(err.to_string().contains("407"), "{err}");
    }
}
