//! Reading a response head: lines within limits, httparse, obs-fold, interim (1xx)
//! responses (RFC 9112 §2–§5, DESIGN §5).

use crate::error::Error;
use std::io::{self, BufRead};

/// Most bytes all heads of one response may take, interim responses included, in bytes.
pub const MAX_HEAD_BYTES: usize = 256 * 1024;
/// Most fields one head may have, in fields.
pub const MAX_FIELDS: usize = 256;

/// One response head: the bytes as received and what was parsed from them.
#[derive(Debug, Clone)]
pub struct Head {
    /// Exactly the bytes received, through the blank line (printed verbatim).
    pub raw: Vec<u8>,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    pub reason: String,
    pub fields: Vec<Field>,
}

/// One header field; obs-fold already replaced by a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Vec<u8>,
}

impl Head {
    /// Values of every field called `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        field_values(&self.fields, name)
    }

    /// The first field called `name`, when it is text.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .and_then(|f| std::str::from_utf8(&f.value).ok())
    }
}

/// Values of every field in `fields` called `name` (case-insensitive), in order.
pub fn field_values<'a>(fields: &'a [Field], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_slice())
}

/// The fields of a chunked body's trailer section (RFC 9112 §7.1.2), given
/// as the chunked reader kept it (the lines before the blank one). A section
/// that does not parse gives no fields: the body is complete either way, and
/// fetch reads trailers only for the digests it can check.
pub fn parse_trailers(section: &[u8]) -> Vec<Field> {
    if section.is_empty() {
        return Vec::new();
    }
    let mut block = section.to_vec();
    block.extend_from_slice(b"\r\n");
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    match httparse::parse_headers(&block, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => fields
            .iter()
            .map(|h| Field {
                name: h.name.to_owned(),
                value: h.value.to_vec(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// How a line read with [`read_line`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineEnd {
    /// The line, through its LF, was appended.
    Lf,
    /// The stream ended; whatever came before it was appended.
    Eof,
    /// `limit` bytes were appended without finding an LF.
    Limit,
}

/// Appends one line (through its LF) from `r` to `out`, taking at most `limit`
/// bytes, so a peer that never sends an LF costs `limit` bytes of memory, no more.
pub(crate) fn read_line<R: BufRead + ?Sized>(
    r: &mut R,
    out: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineEnd> {
    let mut taken = 0;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(LineEnd::Eof);
        }
        let window = &available[..available.len().min(limit - taken)];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&window[..=i]);
            r.consume(i + 1);
            return Ok(LineEnd::Lf);
        }
        let n = window.len();
        out.extend_from_slice(window);
        r.consume(n);
        taken += n;
        if taken == limit {
            return Ok(LineEnd::Limit);
        }
    }
}

/// True for the empty line that ends a head: CRLF, or a bare LF (RFC 9112 §2.2).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// Reads heads until a final (non-1xx) one and returns it. `on_head` sees every
/// head, interim ones included (for `-v`). Interim responses share one byte
/// budget with the final head, so a flood of `100 Continue` ends at the limit.
pub fn read_response_head<R: BufRead + ?Sized>(
    r: &mut R,
    mut on_head: impl FnMut(&Head),
) -> Result<Head, Error> {
    let mut budget = MAX_HEAD_BYTES;
    let mut first = true;
    loop {
        let head = read_one_head(r, &mut budget, first)?;
        first = false;
        on_head(&head);
        match head.status {
            101 => {
                return Err(Error::Malformed(
                    "101 Switching Protocols, but no upgrade was asked for".into(),
                ));
            }
            100..=199 => continue,
            _ => return Ok(head),
        }
    }
}

fn read_one_head<R: BufRead + ?Sized>(
    r: &mut R,
    budget: &mut usize,
    first: bool,
) -> Result<Head, Error> {
    let mut raw = Vec::new();
    loop {
        let start = raw.len();
        let end = match read_line(r, &mut raw, *budget) {
            Ok(end) => end,
            // rustls's word for a close without close_notify. Before or inside
            // the head it means what a plain close means there (52 or 8): only
            // a body that runs until the close needs close_notify to be whole.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => LineEnd::Eof,
            Err(e) => return Err(Error::from_read(e)),
        };
        *budget -= raw.len() - start;
        match end {
            LineEnd::Lf => {}
            LineEnd::Limit => {
                return Err(Error::Malformed(format!(
                    "response head larger than {} KiB",
                    MAX_HEAD_BYTES / 1024
                )));
            }
            LineEnd::Eof if raw.is_empty() && first => return Err(Error::EmptyReply),
            LineEnd::Eof => return Err(Error::HeadCut),
        }
        let line = &raw[start..];
        if start == 0 && !line.starts_with(b"HTTP/") {
            return Err(Error::Malformed(format!(
                "not an HTTP/1.x status line: {}",
                crate::escape::for_message(line)
            )));
        }
        if start > 0 && is_blank(line) {
            break;
        }
    }
    parse_head(raw)
}

/// Parses a complete head (status line through the blank line).
pub fn parse_head(raw: Vec<u8>) -> Result<Head, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut slots);
    let mut config = httparse::ParserConfig::default();
    // obs-fold is accepted and replaced by a space below (RFC 9112 §5.2);
    // whitespace before the colon stays an error (§5.1).
    config.allow_obsolete_multiline_headers_in_responses(true);
    match config.parse_response(&mut response, &raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Error::Malformed("incomplete response head".into()));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::Malformed(format!(
                "more than {MAX_FIELDS} header fields"
            )));
        }
        Err(e) => return Err(Error::Malformed(describe(e).into())),
    }
    let status = response.code.unwrap_or(0);
    if !(100..=999).contains(&status) {
        return Err(Error::Malformed(format!("status code {status:03}")));
    }
    let minor_version = response.version.unwrap_or(1);
    // httparse hides reasons with obs-text; the status line has them as sent.
    let status_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let reason = status_line
        .splitn(3, |&b| b == b' ')
        .nth(2)
        .map(|r| String::from_utf8_lossy(r.strip_suffix(b"\r").unwrap_or(r)).into_owned())
        .unwrap_or_default();
    let fields = response
        .headers
        .iter()
        .map(|h| Field {
            name: h.name.to_owned(),
            value: unfold(h.value),
        })
        .collect();
    Ok(Head {
        minor_version,
        status,
        reason,
        fields,
        raw,
    })
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header field name (or whitespace before its colon)",
        httparse::Error::HeaderValue => "invalid byte in a header field value (NUL, CR or control)",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "not HTTP/1.0 or HTTP/1.1",
    }
}

/// Replaces each obs-fold (optional CR, LF, then spaces or tabs) with one space.
fn unfold(value: &[u8]) -> Vec<u8> {
    if !value.contains(&b'\n') {
        return value.to_vec();
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' | b'\n' => {
                while i < value.len() && matches!(value[i], b'\r' | b'\n' | b' ' | b'\t') {
                    i += 1;
                }
                while out.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                    out.pop();
                }
                out.push(b' ');
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    fn head(bytes: &[u8]) -> Result<Head, Error> {
        read_response_head(&mut Cursor::new(bytes.to_vec()), |_| {})
    }

    fn code(bytes: &[u8]) -> u8 {
        head(bytes).unwrap_err().exit_code()
    }

    #[test]
    fn trailer_fields() {
        let fields = parse_trailers(b"Content-Digest: sha-256=:x:\r\nExpires: never\n");
        assert_eq!(fields.len(), 2);
        assert_eq!(
            field_values(&fields, "content-digest").collect::<Vec<_>>(),
            [b"sha-256=:x:".as_slice()]
        );
        assert!(parse_trailers(b"").is_empty());
        // A section that does not parse gives nothing, not an error.
        assert!(parse_trailers(b"no colon here\r\n").is_empty());
        assert!(parse_trailers(b"Bad Name: x\r\n").is_empty());
    }

    #[test]
    fn simple_head_and_the_body_stays_in_the_reader() {
        let mut r = Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody".to_vec());
        let h = read_response_head(&mut r, |_| {}).unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.value("content-length"), Some("4"));
        assert_eq!(h.raw, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "body");
    }

    #[test]
    fn bare_lf_lines() {
        let h = head(b"HTTP/1.0 404 Not Found\nA: b\n\nrest").unwrap();
        assert_eq!(h.status, 404);
        assert_eq!(h.minor_version, 0);
        assert_eq!(h.value("a"), Some("b"));
    }

    #[test]
    fn obs_fold_becomes_one_space() {
        let h = head(b"HTTP/1.1 200 OK\r\nX: a\r\n   b\r\n\tc\r\n\r\n").unwrap();
        assert_eq!(h.value("x"), Some("a b c"));
    }

    #[test]
    fn whitespace_before_colon_nul_and_cr_are_8() {
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 200 OK\r\n\rA: b\r\n\r\n"), 8);
    }

    #[test]
    fn garbage_and_http09_are_8() {
        assert_eq!(code(b"<html>hello</html>\n\n"), 8);
        assert_eq!(code(b"HTTP/2 200 OK\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 2000 OK\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 099 Low\r\n\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 abc OK\r\n\r\n"), 8);
    }

    #[test]
    fn nothing_at_all_is_52_and_a_cut_head_is_8() {
        assert_eq!(code(b""), 52);
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nA: b\r\n"), 8);
        assert_eq!(code(b"HTTP/1.1 100 Continue\r\n\r\n"), 8);
    }

    /// Gives `bytes`, then fails as rustls does when the peer closes without
    /// a TLS close_notify.
    struct NoCloseNotify(Cursor<Vec<u8>>);

    impl Read for NoCloseNotify {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::ErrorKind::UnexpectedEof.into()),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_tls_close_without_close_notify_in_the_head_is_52_or_8() {
        let cut = |bytes: &[u8]| {
            let mut r = BufReader::new(NoCloseNotify(Cursor::new(bytes.to_vec())));
            read_response_head(&mut r, |_| {}).unwrap_err()
        };
        let empty = cut(b"");
        assert_eq!(empty.exit_code(), 52, "{empty}");
        for partial in [
            &b"HTTP/1.1 200"[..],
            b"HTTP/1.1 200 OK
Content-Le",
        ] {
            let e = cut(partial);
            assert_eq!(e.exit_code(), 8, "{e}");
            assert!(e.to_string().contains("middle of the response head"), "{e}");
        }
    }

    #[test]
    fn interim_responses_are_skipped_and_seen() {
        let mut seen = vec![];
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let h =
            read_response_head(&mut Cursor::new(bytes.to_vec()), |h| seen.push(h.status)).unwrap();
        assert_eq!(h.status, 204);
        assert_eq!(seen, [100, 103, 204]);
    }

    #[test]
    fn unrequested_101_is_8() {
        assert_eq!(
            code(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
            8
        );
    }

    #[test]
    fn interim_flood_ends_at_the_head_limit() {
        let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_HEAD_BYTES / 25 + 10);
        let err = head(&flood).unwrap_err();
        assert_eq!(err.exit_code(), 8);
        assert!(err.to_string().contains("256 KiB"), "{err}");
    }

    #[test]
    fn head_limit_in_bytes() {
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(code(&big), 8);

        // A head of exactly the limit is fine.
        let mut exact = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        let fill = MAX_HEAD_BYTES - exact.len() - 4;
        exact.extend(std::iter::repeat_n(b'a', fill));
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), MAX_HEAD_BYTES);
        assert_eq!(head(&exact).unwrap().status, 200);
    }

    #[test]
    fn field_count_limit() {
        let mut ok = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_FIELDS {
            ok.extend(format!("X-{i}: v\r\n").bytes());
        }
        let mut too_many = ok.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(head(&ok).unwrap().fields.len(), MAX_FIELDS);
        too_many.extend_from_slice(b"X-last: v\r\n\r\n");
        let err = head(&too_many).unwrap_err();
        assert_eq!(err.exit_code(), 8);
        assert!(err.to_string().contains("256"), "{err}");
    }

    #[test]
    fn head_split_across_tiny_reads() {
        let bytes = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let mut r = BufReader::with_capacity(1, &bytes[..]);
        let h = read_response_head(&mut r, |_| {}).unwrap();
        assert_eq!(h.value("a"), Some("b"));
        let mut rest = vec![];
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"body");
    }

    #[test]
    fn read_line_limits() {
        let mut out = vec![];
        let mut r = Cursor::new(b"abcdef\n".to_vec());
        assert_eq!(read_line(&mut r, &mut out, 3).unwrap(), LineEnd::Limit);
        assert_eq!(out, b"abc");
        out.clear();
        let mut r = Cursor::new(b"ab\ncd".to_vec());
        assert_eq!(read_line(&mut r, &mut out, 3).unwrap(), LineEnd::Lf);
        assert_eq!(read_line(&mut r, &mut out, 3).unwrap(), LineEnd::Eof);
        assert_eq!(out, b"ab\ncd");
    }

    use crate::test_io::{consumed, cuts, edit, edits, repeated, rest, split_reader, wire_byte};
    use proptest::prelude::*;

    /// Reads a head from `wire` cut at `cuts` and checks what must hold whatever
    /// the bytes: no more than MAX_HEAD_BYTES taken from the reader (the byte
    /// budget includes every line end, so not one byte more), a head that is
    /// the last bytes taken and ends in a blank line, and only the errors a
    /// head can have.
    fn read_bounded(wire: &[u8], cuts: &[usize], capacity: usize) -> Result<Head, Error> {
        let mut r = split_reader(wire, cuts, capacity);
        let result = read_response_head(&mut r, |_| {});
        let used = consumed(&r);
        assert!(used <= MAX_HEAD_BYTES, "took {used} bytes");
        match &result {
            Ok(h) => {
                assert!(wire[..used].ends_with(&h.raw));
                assert!(h.raw.ends_with(b"\n\r\n") || h.raw.ends_with(b"\n\n"));
                assert!((200..=999).contains(&h.status), "{}", h.status);
                assert!(h.fields.len() <= MAX_FIELDS);
            }
            Err(Error::EmptyReply) => assert!(wire.is_empty()),
            Err(e) => assert_eq!(e.exit_code(), 8, "{e}"),
        }
        result
    }

    /// A response the parser must accept, and what it must find in it.
    #[derive(Debug, Clone)]
    struct Spec {
        interim: Vec<u16>,
        status: u16,
        reason: String,
        /// Name, value, and an obs-fold continuation of the value.
        fields: Vec<(String, String, Option<String>)>,
        bare_lf: bool,
        body: Vec<u8>,
    }

    impl Spec {
        fn wire(&self) -> Vec<u8> {
            let eol = if self.bare_lf { "\n" } else { "\r\n" };
            let mut out = String::new();
            for code in &self.interim {
                out += &format!("HTTP/1.1 {code} Interim{eol}{eol}");
            }
            out += &format!("HTTP/1.1 {} {}{eol}", self.status, self.reason);
            for (name, value, fold) in &self.fields {
                out += &format!("{name}: {value}");
                if let Some(more) = fold {
                    out += &format!("{eol} \t{more}");
                }
                out += eol;
            }
            out += eol;
            [out.into_bytes(), self.body.clone()].concat()
        }

        fn fields(&self) -> Vec<Field> {
            self.fields
                .iter()
                .map(|(name, value, fold)| Field {
                    name: name.clone(),
                    value: match fold {
                        Some(more) => format!("{value} {more}").into_bytes(),
                        None => value.clone().into_bytes(),
                    },
                })
                .collect()
        }
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let value = "[!-~]([ !-~]{0,20}[!-~])?";
        (
            proptest::collection::vec(proptest::sample::select(vec![100u16, 102, 103]), 0..3),
            200u16..1000,
            "[ -~]{0,20}",
            proptest::collection::vec(
                (
                    "[A-Za-z][A-Za-z0-9-]{0,11}",
                    value,
                    proptest::option::of(value),
                ),
                0..12,
            ),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(interim, status, reason, fields, bare_lf, body)| Spec {
                interim,
                status,
                reason,
                fields,
                bare_lf,
                body,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_in_bounds(
            wire in proptest::collection::vec(wire_byte(), 0..1024),
            cuts in cuts(),
            capacity in 1usize..64,
        ) {
            let _ = read_bounded(&wire, &cuts, capacity);
        }

        #[test]
        fn mutated_heads_never_panic_and_stay_in_bounds(
            spec in spec(),
            edits in edits(1..6),
            cuts in cuts(),
            capacity in 1usize..64,
        ) {
            let mut wire = spec.wire();
            for e in edits {
                edit(&mut wire, e);
            }
            let _ = read_bounded(&wire, &cuts, capacity);
        }

        #[test]
        fn any_split_reads_the_same_head_and_leaves_the_body(
            spec in spec(),
            cuts in cuts(),
            capacity in 1usize..64,
        ) {
            let wire = spec.wire();
            let mut r = split_reader(&wire, &cuts, capacity);
            let mut seen = vec![];
            let head = read_response_head(&mut r, |h| seen.push(h.status)).unwrap();
            prop_assert_eq!(head.status, spec.status);
            prop_assert_eq!(head.minor_version, 1);
            prop_assert_eq!(&head.reason, &spec.reason);
            prop_assert_eq!(&head.fields, &spec.fields());
            prop_assert!(wire.ends_with(&[&head.raw[..], &spec.body].concat()));
            prop_assert_eq!(seen, [&spec.interim[..], &[spec.status]].concat());
            prop_assert_eq!(rest(&mut r), spec.body);
        }
    }

    proptest! {
        // Each case is up to a few hundred KiB: fewer of them keep the suite quick.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn long_input_never_takes_more_than_the_head_limit(
            prefix in proptest::sample::select(vec![
                &b""[..],
                b"HTTP/1.1 200 OK\r\n",
                b"HTTP/1.1 100 Continue\r\n\r\n",
            ]),
            unit in prop_oneof![
                proptest::collection::vec(wire_byte(), 1..24),
                Just(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec()),
                Just(b"X: y\r\n".to_vec()),
                Just(b" folded\r\n".to_vec()),
            ],
            len in 0usize..MAX_HEAD_BYTES + 4096,
            cuts in cuts(),
            capacity in 1usize..8192,
        ) {
            let wire = [prefix, &repeated(&unit, len)].concat();
            let _ = read_bounded(&wire, &cuts, capacity);
        }
    }
}
