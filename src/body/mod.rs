//! Body framing (RFC 9112 §6.3, DESIGN §5): which framing a response uses, and one
//! `Read` adapter per framing that ends exactly where the body ends.

mod chunked;
mod close;
mod decode;
mod length;

pub use chunked::{ChunkedReader, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
pub use close::CloseReader;
pub use decode::{Coding, MAX_CODINGS, content_codings, decoder};
pub use length::LengthReader;

use crate::error::Error;
use crate::response::Head;
use std::io::{self, BufRead, Read};

/// How the end of a body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body, whatever the fields say (HEAD, 204, 304).
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: N`.
    Length(u64),
    /// Everything until the server closes the connection.
    UntilClose,
}

impl BodyKind {
    /// Decides the framing of a final response, in the order of RFC 9112 §6.3.
    pub fn of(head: &Head, request_was_head: bool) -> Result<BodyKind, Error> {
        if request_was_head || head.status == 204 || head.status == 304 {
            return Ok(BodyKind::Empty);
        }
        let mut codings = head
            .values("transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim)
            .filter(|c| !c.is_empty())
            .peekable();
        if codings.peek().is_some() {
            if head.minor_version == 0 {
                // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
                return Err(Error::Malformed(
                    "Transfer-Encoding in an HTTP/1.0 response".into(),
                ));
            }
            let codings: Vec<&[u8]> = codings.collect();
            return match codings.as_slice() {
                [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyKind::Chunked),
                _ => Err(Error::Malformed(format!(
                    "unsupported Transfer-Encoding '{}' (only chunked)",
                    crate::escape::for_message(&codings.join(&b", "[..]))
                ))),
            };
        }
        match content_length(head)? {
            Some(n) => Ok(BodyKind::Length(n)),
            None => Ok(BodyKind::UntilClose),
        }
    }
}

/// The one Content-Length value, if any: repeated equal values (in several fields
/// or a list, RFC 9110 §8.6) are one value; differing ones, signs, non-digits,
/// empty values and overflow are errors.
fn content_length(head: &Head) -> Result<Option<u64>, Error> {
    let mut found: Option<u64> = None;
    for field in head.values("content-length") {
        for item in field.split(|&b| b == b',').map(trim) {
            let n = parse_decimal(item).ok_or_else(|| {
                Error::Malformed(format!(
                    "invalid Content-Length '{}'",
                    crate::escape::for_message(field)
                ))
            })?;
            match found {
                Some(prev) if prev != n => {
                    return Err(Error::Malformed(format!(
                        "conflicting Content-Length values {prev} and {n}"
                    )));
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// Digits only, at least one, no overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// A body being read, framed by its [`BodyKind`]. Reads return 0 exactly when the
/// whole body has arrived; a body cut short is an error (exit 18).
pub enum Body<R> {
    Empty,
    Chunked(ChunkedReader<R>),
    Length(LengthReader<R>),
    UntilClose(CloseReader<R>),
}

impl<R: BufRead> Body<R> {
    pub fn new(kind: BodyKind, reader: R) -> Body<R> {
        match kind {
            BodyKind::Empty => Body::Empty,
            BodyKind::Chunked => Body::Chunked(ChunkedReader::new(reader)),
            BodyKind::Length(n) => Body::Length(LengthReader::new(reader, n)),
            BodyKind::UntilClose => Body::UntilClose(CloseReader::new(reader)),
        }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Empty => Ok(0),
            Body::Chunked(r) => r.read(buf),
            Body::Length(r) => r.read(buf),
            Body::UntilClose(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::parse_head;

    fn kind(fields: &str) -> Result<BodyKind, Error> {
        kind_of("HTTP/1.1 200 OK", fields, false)
    }

    fn kind_of(status_line: &str, fields: &str, head_request: bool) -> Result<BodyKind, Error> {
        let raw = format!("{status_line}\r\n{fields}\r\n").into_bytes();
        BodyKind::of(&parse_head(raw).unwrap(), head_request)
    }

    #[test]
    fn bodiless_responses() {
        let cl = "Content-Length: 10\r\n";
        assert_eq!(
            kind_of("HTTP/1.1 204 No Content", cl, false).unwrap(),
            BodyKind::Empty
        );
        assert_eq!(
            kind_of("HTTP/1.1 304 Not Modified", cl, false).unwrap(),
            BodyKind::Empty
        );
        assert_eq!(
            kind_of("HTTP/1.1 200 OK", cl, true).unwrap(),
            BodyKind::Empty
        );
        let te = "Transfer-Encoding: chunked\r\n";
        assert_eq!(
            kind_of("HTTP/1.1 200 OK", te, true).unwrap(),
            BodyKind::Empty
        );
    }

    #[test]
    fn chunked_wins_over_content_length() {
        assert_eq!(
            kind("Transfer-Encoding: CHUNKED\r\nContent-Length: 5\r\n").unwrap(),
            BodyKind::Chunked
        );
    }

    #[test]
    fn other_transfer_codings_are_8() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "identity",
        ] {
            let err = kind(&format!("Transfer-Encoding: {te}\r\n")).unwrap_err();
            assert_eq!(err.exit_code(), 8, "{te}");
        }
        // Split over two fields is the same list.
        let err = kind("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n").unwrap_err();
        assert_eq!(err.exit_code(), 8);
    }

    #[test]
    fn transfer_encoding_in_http_1_0_is_8() {
        let err = kind_of("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n", false).unwrap_err();
        assert_eq!(err.exit_code(), 8);
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            kind("Content-Length: 42\r\n").unwrap(),
            BodyKind::Length(42)
        );
        assert_eq!(kind("Content-Length: 0\r\n").unwrap(), BodyKind::Length(0));
        assert_eq!(
            kind("Content-Length: 42\r\nContent-Length: 42\r\n").unwrap(),
            BodyKind::Length(42)
        );
        assert_eq!(
            kind("Content-Length: 42, 42\r\n").unwrap(),
            BodyKind::Length(42)
        );
        assert_eq!(
            kind("Content-Length: 18446744073709551615\r\n").unwrap(),
            BodyKind::Length(u64::MAX)
        );
        for bad in [
            "Content-Length: 42\r\nContent-Length: 43\r\n",
            "Content-Length: 42, 43\r\n",
            "Content-Length: +42\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 4 2\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: \r\n",
            "Content-Length: 42,\r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            assert_eq!(kind(bad).unwrap_err().exit_code(), 8, "{bad:?}");
        }
    }

    #[test]
    fn no_framing_means_until_close() {
        assert_eq!(kind("").unwrap(), BodyKind::UntilClose);
        assert_eq!(
            kind("Transfer-Encoding: \r\n").unwrap(),
            BodyKind::UntilClose
        );
    }
}
