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

impl<R> Body<R> {
    /// Whether the body has been read to its framed end, so that the
    /// connection is positioned at the next response. A body that runs until
    /// the close never is: that connection is spent.
    pub fn is_finished(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Chunked(r) => r.is_finished(),
            Body::Length(r) => r.is_finished(),
            Body::UntilClose(_) => false,
        }
    }

    /// A chunked body's trailer field lines, once it has ended.
    pub fn trailers(&self) -> &[u8] {
        match self {
            Body::Chunked(r) => r.trailers(),
            _ => &[],
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

    use crate::response::read_response_head;
    use crate::test_io::{cuts, edit, edits, read_capped, rest, split_reader, wire_byte};
    use proptest::prelude::*;
    use std::io::Write;

    /// How a generated response frames its body.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Framing {
        Length,
        Chunked,
        UntilClose,
        /// A 204 that claims a length anyway.
        NoContent,
        /// A response to HEAD that claims a length anyway.
        HeadRequest,
    }

    /// A valid response: `data` framed as `framing`, coded with `coding`, then
    /// `after`, bytes that are not the body's.
    #[derive(Debug, Clone)]
    struct Response {
        framing: Framing,
        coding: Option<Coding>,
        data: Vec<u8>,
        /// Chunk sizes (the last one repeats).
        sizes: Vec<usize>,
        after: Vec<u8>,
    }

    impl Response {
        fn coded(&self) -> Vec<u8> {
            let data = &self.data[..];
            match self.coding {
                None => data.to_vec(),
                Some(Coding::Gzip) => {
                    let mut e = flate2::write::GzEncoder::new(vec![], Default::default());
                    e.write_all(data).unwrap();
                    e.finish().unwrap()
                }
                Some(Coding::Deflate) => {
                    let mut e = flate2::write::ZlibEncoder::new(vec![], Default::default());
                    e.write_all(data).unwrap();
                    e.finish().unwrap()
                }
                Some(Coding::Brotli) => {
                    let mut e = brotli::CompressorWriter::new(vec![], 4096, 5, 22);
                    e.write_all(data).unwrap();
                    e.into_inner()
                }
            }
        }

        fn wire(&self) -> Vec<u8> {
            let body = self.coded();
            let mut out = match self.framing {
                Framing::NoContent => b"HTTP/1.1 204 No Content\r\n".to_vec(),
                _ => b"HTTP/1.1 200 OK\r\n".to_vec(),
            };
            if let Some(coding) = self.coding {
                out.extend(format!("Content-Encoding: {coding}\r\n").bytes());
            }
            match self.framing {
                Framing::Chunked => {
                    // A Content-Length beside it is ignored (RFC 9112 §6.3 rule 3).
                    out.extend_from_slice(
                        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                    );
                    let mut rest = &body[..];
                    let sizes = self.sizes.iter().chain(std::iter::repeat(&7));
                    for &size in sizes {
                        if rest.is_empty() {
                            break;
                        }
                        let (chunk, after) = rest.split_at(size.clamp(1, rest.len()));
                        out.extend(format!("{:X}\r\n", chunk.len()).bytes());
                        out.extend_from_slice(chunk);
                        out.extend_from_slice(b"\r\n");
                        rest = after;
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                Framing::UntilClose => {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&body);
                    return out;
                }
                Framing::Length => {
                    out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).bytes());
                    out.extend_from_slice(&body);
                }
                Framing::NoContent | Framing::HeadRequest => {
                    out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).bytes());
                }
            }
            out.extend_from_slice(&self.after);
            out
        }

        /// What the body decodes to, and what stays in the reader after it.
        fn expected(&self) -> (&[u8], &[u8]) {
            match self.framing {
                Framing::Length | Framing::Chunked => (&self.data, &self.after),
                Framing::UntilClose => (&self.data, b""),
                Framing::NoContent | Framing::HeadRequest => (b"", &self.after),
            }
        }
    }

    fn response() -> impl Strategy<Value = Response> {
        (
            proptest::sample::select(vec![
                Framing::Length,
                Framing::Chunked,
                Framing::UntilClose,
                Framing::NoContent,
                Framing::HeadRequest,
            ]),
            proptest::option::of(proptest::sample::select(vec![
                Coding::Gzip,
                Coding::Deflate,
                Coding::Brotli,
            ])),
            // Few distinct bytes, so the encoders find repeats.
            proptest::collection::vec(b'a'..b'e', 0..600),
            proptest::collection::vec(1usize..100, 0..8),
            proptest::collection::vec(any::<u8>(), 0..32),
        )
            .prop_map(|(framing, coding, data, sizes, after)| Response {
                framing,
                coding,
                data,
                sizes,
                after,
            })
    }

    /// The whole response path, as `transfer` takes it: head, framing, codings,
    /// decoders. Output past `cap` bytes is not read.
    fn read_response(
        r: &mut std::io::BufReader<crate::test_io::Pieces>,
        head_request: bool,
        read_size: usize,
    ) -> Result<Vec<u8>, Error> {
        let head = read_response_head(r, |_| {})?;
        let kind = BodyKind::of(&head, head_request)?;
        let codings = content_codings(&head)?;
        let mut decoded = decoder(Body::new(kind, &mut *r), &codings);
        let (out, result) = read_capped(&mut decoded, read_size, 1 << 20);
        result.map_err(Error::from_read)?;
        Ok(out)
    }

    /// Reads `body` framed by `kind` to its end or first error.
    fn read_body(
        kind: BodyKind,
        wire: &[u8],
        cuts: &[usize],
        capacity: usize,
        read_size: usize,
    ) -> Result<Vec<u8>, Error> {
        let mut body = Body::new(kind, split_reader(wire, cuts, capacity));
        let (out, result) = read_capped(&mut body, read_size, usize::MAX);
        result.map_err(Error::from_read)?;
        Ok(out)
    }

    fn kinds() -> impl Strategy<Value = BodyKind> {
        prop_oneof![
            Just(BodyKind::Empty),
            Just(BodyKind::Chunked),
            Just(BodyKind::UntilClose),
            (0u64..1200).prop_map(BodyKind::Length),
            any::<u64>().prop_map(BodyKind::Length),
        ]
    }

    proptest! {
        #[test]
        fn any_split_reads_the_same_response_with_each_framing(
            response in response(),
            cuts in cuts(),
            capacity in 1usize..64,
            read_size in 1usize..100,
        ) {
            let wire = response.wire();
            let mut r = split_reader(&wire, &cuts, capacity);
            let head_request = response.framing == Framing::HeadRequest;
            let out = read_response(&mut r, head_request, read_size).unwrap();
            let (data, after) = response.expected();
            prop_assert_eq!(&out[..], data);
            prop_assert_eq!(&rest(&mut r)[..], after);
        }

        #[test]
        fn any_body_bytes_never_panic(
            kind in kinds(),
            wire in proptest::collection::vec(wire_byte(), 0..1024),
            cuts in cuts(),
            capacity in 1usize..64,
            read_size in 1usize..100,
        ) {
            match read_body(kind, &wire, &cuts, capacity, read_size) {
                Ok(out) => prop_assert!(out.len() <= wire.len()),
                Err(e) => prop_assert!(matches!(e.exit_code(), 8 | 18), "{e}"),
            }
        }

        #[test]
        fn edited_responses_never_panic_and_fail_with_a_response_error(
            response in response(),
            edits in edits(0..4),
            cuts in cuts(),
            capacity in 1usize..64,
            read_size in 1usize..100,
        ) {
            let mut wire = response.wire();
            let unchanged = edits.is_empty();
            for e in edits {
                edit(&mut wire, e);
            }
            let mut r = split_reader(&wire, &cuts, capacity);
            let head_request = response.framing == Framing::HeadRequest;
            match read_response(&mut r, head_request, read_size) {
                Ok(out) if unchanged => prop_assert_eq!(&out[..], response.expected().0),
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(!unchanged, "{e}");
                    prop_assert!(matches!(e.exit_code(), 8 | 18 | 52 | 61), "{e}");
                }
            }
        }
    }
}
