//! Writing the request head (RFC 9112 §3): request line, default fields, `-H` fields.

use crate::config::Method;
use crate::url::Credentials;

/// What goes into one request head.
pub struct Request<'a> {
    pub method: Method,
    /// Origin-form (`/path?query`), or absolute-form for a proxy.
    pub target: &'a str,
    pub host: &'a str,
    pub user_agent: &'a str,
    pub credentials: Option<&'a Credentials>,
    /// For a proxy that forwards plain http: its `Proxy-Authorization`.
    pub proxy_credentials: Option<&'a Credentials>,
    /// `--compressed`: send `Accept-Encoding` for the codings fetch decodes.
    pub compressed: bool,
    /// In a batch, the connection may carry the next request: no
    /// `Connection: close` (HTTP/1.1 connections persist by default).
    pub keep_alive: bool,
    /// Extra fields; one whose name matches a default field replaces it, and an
    /// empty value removes it (curl's `-H 'Name:'`).
    pub extra: &'a [(String, String)],
}

impl Request<'_> {
    /// The whole head, ready for one write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut fields: Vec<(&str, String)> = vec![("Host", self.host.to_owned())];
        // `-A ''` sends none, as with curl.
        if !self.user_agent.is_empty() {
            fields.push(("User-Agent", self.user_agent.to_owned()));
        }
        fields.push(("Accept", "*/*".to_owned()));
        if self.compressed {
            fields.push(("Accept-Encoding", "gzip, deflate, br".to_owned()));
        }
        if let Some(c) = self.credentials {
            fields.push(("Authorization", basic_auth(c)));
        }
        if let Some(c) = self.proxy_credentials {
            fields.push(("Proxy-Authorization", basic_auth(c)));
        }
        if !self.keep_alive {
            fields.push(("Connection", "close".to_owned()));
        }

        for (name, value) in self.extra {
            let existing = fields
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(name));
            match (existing, value.is_empty()) {
                (Some(i), true) => {
                    fields.remove(i);
                }
                (Some(i), false) => fields[i] = (name, value.clone()),
                (None, true) => {}
                (None, false) => fields.push((name, value.clone())),
            }
        }

        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// `Basic base64(user:password)` (RFC 7617).
pub(crate) fn basic_auth(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", c.user, c.password).as_bytes())
    )
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &[(String, String)], credentials: Option<&Credentials>) -> String {
        head(extra, credentials, false)
    }

    fn head(
        extra: &[(String, String)],
        credentials: Option<&Credentials>,
        keep_alive: bool,
    ) -> String {
        let r = Request {
            method: Method::Get,
            target: "/a?b",
            host: "h:8080",
            user_agent: "fetch/1",
            credentials,
            proxy_credentials: None,
            compressed: false,
            keep_alive,
            extra,
        };
        String::from_utf8(r.to_bytes()).unwrap()
    }

    #[test]
    fn default_head() {
        assert_eq!(
            request(&[], None),
            "GET /a?b HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: fetch/1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn keep_alive_leaves_out_connection_close() {
        assert_eq!(
            head(&[], None, true),
            "GET /a?b HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: fetch/1\r\nAccept: */*\r\n\r\n"
        );
        // The user's own field still goes out.
        let extra = [("Connection".to_owned(), "close".to_owned())];
        assert!(head(&extra, None, true).contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn extra_fields_replace_remove_and_append() {
        let extra = [
            ("accept".to_owned(), "text/html".to_owned()),
            ("User-Agent".to_owned(), String::new()),
            ("X-One".to_owned(), "1".to_owned()),
            ("X-Gone".to_owned(), String::new()),
        ];
        assert_eq!(
            request(&extra, None),
            "GET /a?b HTTP/1.1\r\nHost: h:8080\r\naccept: text/html\r\nConnection: close\r\nX-One: 1\r\n\r\n"
        );
    }

    #[test]
    fn basic_auth_field() {
        let c = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert!(
            request(&[], Some(&c))
                .contains("Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n")
        );
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
