//! `--compressed` (DESIGN §1): which content codings a response applied
//! (RFC 9110 §8.4) and a streaming `Read` adapter that undoes them.

use crate::error::Error;
use crate::response::Head;
use brotli_decompressor::{BrotliDecoderParameter, Decompressor};
use flate2::bufread::{DeflateDecoder, GzDecoder, ZlibDecoder};
use std::fmt;
use std::io::{self, BufRead, Read};
use std::mem;

/// A content coding fetch can undo (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// RFC 1952 gzip (RFC 9110 §8.4.1.3); `x-gzip` is the same.
    Gzip,
    /// The zlib format (RFC 1950, RFC 9110 §8.4.1.2), or raw RFC 1951 deflate
    /// from servers that get it wrong.
    Deflate,
    /// Brotli (RFC 7932), token `br`.
    Brotli,
}

impl Coding {
    /// The coding a Content-Encoding token names, if fetch can undo it.
    fn from_token(token: &[u8]) -> Option<Coding> {
        // RFC 9110 §8.4.1: coding names are case-insensitive; §8.4.1.3 makes
        // x-gzip an alias of gzip.
        [
            (&b"gzip"[..], Coding::Gzip),
            (b"x-gzip", Coding::Gzip),
            (b"deflate", Coding::Deflate),
            (b"br", Coding::Brotli),
        ]
        .into_iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|(_, coding)| coding)
    }
}

impl fmt::Display for Coding {
    /// The registered token, as a Content-Encoding field carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        })
    }
}

/// Most content codings one response may stack, in codings.
pub const MAX_CODINGS: usize = 2;

/// Compressed bytes read from the body at once, per coding, in bytes. The body
/// below is itself buffered (`transfer::BUFFER_SIZE`), so this only sets how often
/// a decoder asks it for more, not how often the kernel is called. Measured
/// (release build, 90 MiB of text decoded from memory, gzip and br): every size
/// from 4 to 64 KiB decodes within 1% of the others; 16 KiB is a middle one.
const INPUT_BUFFER_SIZE: usize = 16 * 1024;

/// Size of brotli's own input buffer, in bytes: it copies from [`Input`].
const BROTLI_BUFFER_SIZE: usize = 4 * 1024;

/// The codings a response applied, in the order they were applied, from every
/// Content-Encoding field (comma lists, case-insensitive; `x-gzip` is gzip;
/// `identity` and empty items are skipped). Unknown codings or more than
/// MAX_CODINGS: Err(Error::Decode(..)) naming the offender.
pub fn content_codings(head: &Head) -> Result<Vec<Coding>, Error> {
    // RFC 9110 §8.4: several fields are one list, in the order applied; §5.6.1
    // allows empty list items. `identity` means "no coding" (§8.4.1).
    let tokens: Vec<&[u8]> = head
        .values("content-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"identity"))
        .collect();
    let mut codings = Vec::with_capacity(tokens.len().min(MAX_CODINGS));
    for token in &tokens {
        let coding = Coding::from_token(token).ok_or_else(|| {
            Error::Decode(format!(
                "unsupported Content-Encoding '{}' (only gzip, deflate and br)",
                crate::escape::for_message(token)
            ))
        })?;
        codings.push(coding);
    }
    if codings.len() > MAX_CODINGS {
        // Each layer costs a decoder's memory; real servers apply one coding.
        // The message names one coding too many, not a whole hostile list.
        let named = tokens[..=MAX_CODINGS].join(&b", "[..]);
        let more = if tokens.len() > MAX_CODINGS + 1 {
            ", ..."
        } else {
            ""
        };
        return Err(Error::Decode(format!(
            "Content-Encoding '{}{more}' stacks more than {MAX_CODINGS} codings",
            crate::escape::for_message(&named)
        )));
    }
    Ok(codings)
}

/// Wraps a body reader in decoders, undoing the last-applied coding first.
/// Contract on `body`: every io::Error it returns carries a crate::Error
/// (Error::into_io), e.g. a truncation (18) or a reset (56); those pass through
/// unchanged. Any other error, which can only come from a decoder, becomes
/// Error::Decode (61) via into_io. With no codings, returns the body as is (boxed).
pub fn decoder<'a>(body: impl Read + 'a, codings: &[Coding]) -> Box<dyn Read + 'a> {
    let mut reader: Box<dyn Read + 'a> = Box::new(body);
    // RFC 9110 §8.4: codings are listed in the order applied, so the last one
    // is the outermost and is undone first (nearest the body).
    for &coding in codings.iter().rev() {
        reader = Box::new(DecodingReader::new(reader, coding));
    }
    reader
}

/// Where one coding's decoding stands.
enum Stage<R: Read> {
    /// Nothing read yet: the first bytes (whether there are any; for deflate,
    /// which format) choose the decoder.
    Start(Input<R>),
    Gzip(GzDecoder<Input<R>>),
    /// A gzip member ended: another may follow (RFC 1952 §2.2), or not.
    BetweenMembers(Input<R>),
    Zlib(ZlibDecoder<Input<R>>),
    RawDeflate(DeflateDecoder<Input<R>>),
    // Boxed: the brotli state is far larger than any other stage.
    Brotli(Box<Decompressor<Input<R>>>),
    /// The coded stream ended before the body did: the rest is read, so the
    /// body's own framing is still checked to its end, and may only be zero
    /// padding. Anything else (a second zlib or brotli stream, garbage) would
    /// be content silently lost: 61, as curl fails it too.
    Draining(Input<R>),
    Done,
    /// An error was returned: the output so far cannot be trusted to go on.
    Failed,
}

/// Undoes one content coding while streaming. Its memory is fixed: an input
/// buffer plus the decoder's state (inflate: a 32 KiB window and its tables;
/// gzip header fields are capped at 64 KiB by flate2; brotli: see
/// [`brotli_decoder`]).
struct DecodingReader<R: Read> {
    coding: Coding,
    stage: Stage<R>,
}

impl<R: Read> DecodingReader<R> {
    fn new(body: R, coding: Coding) -> DecodingReader<R> {
        DecodingReader {
            coding,
            stage: Stage::Start(Input::new(body)),
        }
    }

    /// Reads decoded bytes; `Ok(0)` only once the body itself has ended.
    fn advance(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = match &mut self.stage {
                Stage::Gzip(d) => d.read(buf)?,
                Stage::Zlib(d) => d.read(buf)?,
                Stage::RawDeflate(d) => d.read(buf)?,
                Stage::Brotli(d) => d.read(buf)?,
                Stage::Done => return Ok(0),
                Stage::Failed => {
                    return Err(Error::Decode(format!(
                        "{}: read again after an error",
                        self.coding
                    ))
                    .into_io());
                }
                Stage::Start(_) | Stage::BetweenMembers(_) | Stage::Draining(_) => 0,
            };
            // `buf` is not empty, so 0 means the current stage has no more to give.
            if n > 0 {
                return Ok(n);
            }
            // Failed while the next stage is being chosen: an error leaves it so.
            let stage = mem::replace(&mut self.stage, Stage::Failed);
            self.stage = self.next_stage(stage)?;
        }
    }

    /// The stage after `stage`, which has run out of output.
    fn next_stage(&self, stage: Stage<R>) -> io::Result<Stage<R>> {
        Ok(match stage {
            Stage::Start(mut input) => {
                let first = input.peek(2)?;
                let zlib = is_zlib_header(first);
                if first.is_empty() {
                    // Nothing was coded: an empty body is an empty
                    // representation, as curl and browsers take it.
                    return Ok(Stage::Done);
                }
                match self.coding {
                    Coding::Gzip => Stage::Gzip(GzDecoder::new(input)),
                    // RFC 9110 §8.4.1.2: "deflate" is the zlib format, but some
                    // servers send raw deflate. A zlib header (RFC 1950 §2.2) has
                    // CM = 8 and a check making CMF*256 + FLG a multiple of 31;
                    // anything else is taken as raw deflate, whose first block
                    // header seldom passes both tests by chance.
                    Coding::Deflate if zlib => Stage::Zlib(ZlibDecoder::new(input)),
                    Coding::Deflate => Stage::RawDeflate(DeflateDecoder::new(input)),
                    Coding::Brotli => Stage::Brotli(Box::new(brotli_decoder(input))),
                }
            }
            Stage::Gzip(d) => Stage::BetweenMembers(d.into_inner()),
            Stage::BetweenMembers(mut input) => match input.peek(2)? {
                [] => Stage::Done,
                // Concatenated members are one stream (RFC 1952 §2.2), as gzip(1)
                // and zlib's gunzip read them.
                [0x1f, 0x8b] => Stage::Gzip(GzDecoder::new(input)),
                // Anything else must be zero padding (gzip(1) ignores it).
                _ => Stage::Draining(input),
            },
            Stage::Zlib(d) => Stage::Draining(d.into_inner()),
            Stage::RawDeflate(d) => Stage::Draining(d.into_inner()),
            // brotli holds input of its own, which into_inner drops: bytes
            // after the stream that it already read are found by reading once
            // more (it reports them as an error), and only then is the rest
            // of the body looked at.
            // Whether it sees padding depends on how far it read ahead, so
            // after brotli the body must simply end.
            Stage::Brotli(mut d) => match d.read(&mut [0; 1]) {
                Ok(0) if d.into_inner().fill_buf()?.is_empty() => Stage::Done,
                Err(e) if e.get_ref().is_some_and(|inner| inner.is::<Error>()) => return Err(e),
                _ => {
                    return Err(Error::Decode(format!(
                        "{}: data after the end of the compressed stream",
                        self.coding
                    ))
                    .into_io());
                }
            },
            Stage::Draining(mut input) => {
                input.drain_padding(self.coding)?;
                Stage::Done
            }
            Stage::Done | Stage::Failed => stage,
        })
    }

    /// Errors carrying our own type come from the body (a truncation, a reset):
    /// they pass unchanged. Any other one can only be a decoder's.
    fn classify(&self, e: io::Error) -> io::Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return e;
        }
        let why = match (e.kind(), self.coding) {
            (io::ErrorKind::UnexpectedEof, _) => "the compressed data ends early".to_owned(),
            // brotli_decompressor has one error for every failure.
            (_, Coding::Brotli) => "invalid or incomplete brotli data".to_owned(),
            _ => e.to_string(),
        };
        Error::Decode(format!("{}: {why}", self.coding)).into_io()
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Decoders answer an empty buffer with 0, which would read as "ended".
        if buf.is_empty() {
            return Ok(0);
        }
        self.advance(buf).map_err(|e| {
            // Decoders are not fused: after an error some answer 0, which a
            // caller could take for a clean end.
            self.stage = Stage::Failed;
            self.classify(e)
        })
    }
}

/// True when the first two bytes are a zlib header (RFC 1950 §2.2): CM = 8
/// (deflate) and FCHECK making CMF*256 + FLG a multiple of 31.
fn is_zlib_header(first: &[u8]) -> bool {
    match *first {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0,
        _ => false,
    }
}

/// A brotli decoder whose memory the format bounds: a window of at most
/// 16 MiB - 16 bytes (WBITS ≤ 24, RFC 7932 §9.1), allocated only as far as the
/// output needs it, and at most 256 prefix-code trees per category (§9.2).
/// brotli_decompressor also accepts the non-standard "large window" variant
/// (windows up to 1 GiB, which a hostile server could make us allocate) unless
/// told not to: RFC 7932 streams are all HTTP may carry.
fn brotli_decoder<R: Read>(input: Input<R>) -> Decompressor<Input<R>> {
    let mut decoder = Decompressor::new(input, BROTLI_BUFFER_SIZE);
    // Refused only once decoding has begun, which it has not.
    let set = decoder.set_parameter(BrotliDecoderParameter::BROTLI_DECODER_PARAM_LARGE_WINDOW, 0);
    debug_assert!(set, "a fresh brotli decoder takes parameters");
    decoder
}

/// Compressed bytes on their way from the body to a decoder: a `BufRead` over
/// one fixed buffer that can also look at the next few bytes without taking
/// them (to tell zlib from raw deflate, or find another gzip member), which
/// `BufReader` cannot do once it holds fewer than asked for.
struct Input<R> {
    body: R,
    buf: Box<[u8]>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The body said it ended: it is not asked again.
    ended: bool,
}

impl<R: Read> Input<R> {
    fn new(body: R) -> Input<R> {
        Input {
            body,
            buf: vec![0; INPUT_BUFFER_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            ended: false,
        }
    }

    /// Reads more of the body into the free end of the buffer; 0 at its end.
    fn read_body(&mut self) -> io::Result<usize> {
        while !self.ended {
            match self.body.read(&mut self.buf[self.end..]) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    // A reader that claims more than it was given is not trusted.
                    let n = n.min(self.buf.len() - self.end);
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The contract says the body's errors carry our type; making sure
                // here means no error from below can pass for a decoder's (61).
                Err(e) => return Err(Error::from_read(e).into_io()),
            }
        }
        Ok(0)
    }

    /// The next `n` bytes (n ≤ the buffer's size) without consuming them; fewer
    /// only when the body ends first.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < n && self.read_body()? > 0 {}
        }
        Ok(&self.buf[self.start..self.end.min(self.start + n)])
    }

    /// Reads the rest of the body and drops it.
    fn drain_padding(&mut self, coding: Coding) -> io::Result<()> {
        loop {
            let rest = self.fill_buf()?;
            let (len, zeros) = (rest.len(), rest.iter().all(|&b| b == 0));
            if len == 0 {
                return Ok(());
            }
            if !zeros {
                return Err(Error::Decode(format!(
                    "{coding}: data after the end of the compressed stream"
                ))
                .into_io());
            }
            self.consume(len);
        }
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.read_body()?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, amount: usize) {
        self.start = (self.start + amount).min(self.end);
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::parse_head;
    use crate::test_io::Pieces;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use proptest::prelude::*;
    use std::io::Write;

    fn head(fields: &str) -> Head {
        parse_head(format!("HTTP/1.1 200 OK\r\n{fields}\r\n").into_bytes()).unwrap()
    }

    fn codings(fields: &str) -> Result<Vec<Coding>, Error> {
        content_codings(&head(fields))
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(vec![], Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(vec![], Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(vec![], Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut e = brotli::CompressorWriter::new(vec![], 4096, 5, 22);
        e.write_all(data).unwrap();
        e.into_inner()
    }

    /// Applies `codings` in order, as a server would.
    fn encode(data: &[u8], codings: &[Coding]) -> Vec<u8> {
        codings.iter().fold(data.to_vec(), |d, c| match c {
            Coding::Gzip => gzip(&d),
            Coding::Deflate => zlib(&d),
            Coding::Brotli => brotli(&d),
        })
    }

    fn decode(body: impl Read, codings: &[Coding]) -> Result<Vec<u8>, Error> {
        let mut out = vec![];
        decoder(body, codings)
            .read_to_end(&mut out)
            .map_err(Error::from_read)?;
        Ok(out)
    }

    fn code(body: &[u8], codings: &[Coding]) -> u8 {
        decode(body, codings).unwrap_err().exit_code()
    }

    /// Text with repeats, so the encoders have something to find.
    fn sample() -> Vec<u8> {
        (0..20_000)
            .flat_map(|i| format!("line {} of the sample\n", i % 977).into_bytes())
            .collect()
    }

    /// Hands out its bytes, then fails the way a body cut short does.
    struct CutBody<'a>(&'a [u8]);
    impl Read for CutBody<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(Error::Truncated("cut".into()).into_io());
            }
            self.0.read(buf)
        }
    }

    #[test]
    fn tokens_are_case_insensitive_and_x_gzip_is_gzip() {
        for (field, coding) in [
            ("Content-Encoding: GZip\r\n", Coding::Gzip),
            ("Content-Encoding: x-gzip\r\n", Coding::Gzip),
            ("content-encoding: X-GZIP\r\n", Coding::Gzip),
            ("Content-Encoding: Deflate\r\n", Coding::Deflate),
            ("Content-Encoding: BR\r\n", Coding::Brotli),
        ] {
            assert_eq!(codings(field).unwrap(), [coding], "{field:?}");
        }
        assert_eq!(codings("").unwrap(), []);
    }

    #[test]
    fn stacked_codings_in_one_field_or_two_keep_their_order() {
        let applied = [Coding::Gzip, Coding::Brotli];
        assert_eq!(codings("Content-Encoding: gzip, br\r\n").unwrap(), applied);
        assert_eq!(
            codings("Content-Encoding: gzip\r\nContent-Encoding: br\r\n").unwrap(),
            applied
        );
        // br was applied last, so it is undone first.
        let data = sample();
        assert_eq!(
            decode(&encode(&data, &applied)[..], &applied).unwrap(),
            data
        );
    }

    #[test]
    fn identity_and_empty_items_are_skipped() {
        assert_eq!(
            codings("Content-Encoding: identity, gzip,, IDENTITY\r\nContent-Encoding: \r\n")
                .unwrap(),
            [Coding::Gzip]
        );
        assert_eq!(codings("Content-Encoding: identity\r\n").unwrap(), []);
        // identity does not count against the limit.
        assert_eq!(
            codings("Content-Encoding: gzip, identity, br\r\n").unwrap(),
            [Coding::Gzip, Coding::Brotli]
        );
    }

    #[test]
    fn unknown_codings_are_61_and_named() {
        for (field, name) in [
            ("Content-Encoding: zstd\r\n", "zstd"),
            ("Content-Encoding: gzip, compress\r\n", "compress"),
            ("Content-Encoding: x-deflate\r\n", "x-deflate"),
        ] {
            let err = codings(field).unwrap_err();
            assert_eq!(err.exit_code(), 61, "{field}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn more_than_max_codings_is_61_and_named() {
        let err =
            codings("Content-Encoding: gzip, br\r\nContent-Encoding: deflate\r\n").unwrap_err();
        assert_eq!(err.exit_code(), 61);
        assert!(err.to_string().contains("'gzip, br, deflate'"), "{err}");
        let many = format!("Content-Encoding: {}\r\n", ["gzip"; 1000].join(","));
        let err = codings(&many).unwrap_err().to_string();
        assert!(err.contains("'gzip, gzip, gzip, ...'"), "{err}");
        assert_eq!(
            codings("Content-Encoding: gzip, gzip\r\n").unwrap().len(),
            2
        );
    }

    #[test]
    fn each_coding_round_trips() {
        let data = sample();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let coded = encode(&data, &[coding]);
            assert!(coded.len() < data.len() / 4, "{coding}");
            assert_eq!(decode(&coded[..], &[coding]).unwrap(), data, "{coding}");
        }
    }

    #[test]
    fn no_codings_is_the_body_itself() {
        assert_eq!(decode(&b"plain"[..], &[]).unwrap(), b"plain");
    }

    #[test]
    fn an_empty_body_is_empty_whatever_the_coding() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            assert_eq!(decode(&b""[..], &[coding]).unwrap(), b"", "{coding}");
        }
    }

    #[test]
    fn deflate_is_zlib_or_raw() {
        let data = sample();
        assert!(is_zlib_header(&zlib(&data)));
        assert!(!is_zlib_header(&raw_deflate(&data)));
        assert_eq!(decode(&zlib(&data)[..], &[Coding::Deflate]).unwrap(), data);
        assert_eq!(
            decode(&raw_deflate(&data)[..], &[Coding::Deflate]).unwrap(),
            data
        );
        // Tiny streams too, where the first bytes are all there is.
        for small in [&b""[..], b"a", b"ab"] {
            assert_eq!(decode(&zlib(small)[..], &[Coding::Deflate]).unwrap(), small);
            assert_eq!(
                decode(&raw_deflate(small)[..], &[Coding::Deflate]).unwrap(),
                small
            );
        }
    }

    #[test]
    fn the_deflate_sniff_needs_no_second_byte_in_the_same_read() {
        let data = sample();
        for coded in [zlib(&data), raw_deflate(&data)] {
            let pieces = coded.iter().map(|&b| vec![b]).take(3).collect::<Vec<_>>();
            let mut body = Pieces::from_pieces([pieces, vec![coded[3..].to_vec()]].concat());
            assert_eq!(decode(&mut body, &[Coding::Deflate]).unwrap(), data);
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let coded = [gzip(b"hello, "), gzip(b""), gzip(b"world")].concat();
        assert_eq!(
            decode(&coded[..], &[Coding::Gzip]).unwrap(),
            b"hello, world"
        );
    }

    #[test]
    fn corrupt_data_is_61() {
        let data = sample();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut coded = encode(&data, &[coding]);
            let middle = coded.len() / 2;
            coded[middle] ^= 0x55;
            coded[middle + 1] ^= 0xaa;
            assert_eq!(code(&coded, &[coding]), 61, "{coding}");
            let err = decode(&coded[..], &[coding]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("cannot decode the body: {coding}: ")),
                "{err}"
            );
        }
        for garbage in [&b"not compressed at all"[..], &[0xff; 100]] {
            for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
                assert_eq!(code(garbage, &[coding]), 61, "{coding}");
            }
        }
        // A gzip body whose checksum does not match what was decoded.
        let mut coded = gzip(&data);
        let crc = coded.len() - 8;
        coded[crc] ^= 1;
        assert_eq!(code(&coded, &[Coding::Gzip]), 61);
    }

    #[test]
    fn truncated_streams_are_61() {
        let data = sample();
        for applied in [
            &[Coding::Gzip][..],
            &[Coding::Deflate],
            &[Coding::Brotli],
            &[Coding::Gzip, Coding::Brotli],
        ] {
            let coded = encode(&data, applied);
            for keep in [1, 2, 10, coded.len() / 2, coded.len() - 1] {
                assert_eq!(code(&coded[..keep], applied), 61, "{applied:?} {keep}");
            }
        }
        let raw = raw_deflate(&data);
        assert_eq!(code(&raw[..raw.len() / 2], &[Coding::Deflate]), 61);
    }

    #[test]
    fn the_bodys_own_errors_pass_through() {
        let data = sample();
        for applied in [
            &[Coding::Gzip][..],
            &[Coding::Deflate],
            &[Coding::Brotli],
            &[Coding::Gzip, Coding::Brotli],
        ] {
            let coded = encode(&data, applied);
            let err = decode(CutBody(&coded[..coded.len() / 2]), applied).unwrap_err();
            assert_eq!(err.exit_code(), 18, "{applied:?}: {err}");
            assert_eq!(err.to_string(), "cut");
            // Even when the compressed stream itself is complete.
            assert_eq!(
                decode(CutBody(&coded), applied).unwrap_err().exit_code(),
                18
            );
        }
        // A reset that did not go through our type still is not a decode error.
        struct Reset;
        impl Read for Reset {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        assert_eq!(decode(Reset, &[Coding::Gzip]).unwrap_err().exit_code(), 56);
    }

    #[test]
    fn zero_padding_is_read_to_the_bodys_end_and_anything_else_is_61() {
        let data = sample();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let coded = encode(&data, &[coding]);
            // Not after brotli, which sees it or not as it reads ahead.
            let padding = match coding {
                Coding::Brotli => vec![],
                _ => vec![0; 3 * INPUT_BUFFER_SIZE],
            };
            let mut body = Pieces::from_pieces(vec![coded.clone(), padding.clone()]);
            let mut reader = decoder(&mut body, &[coding]);
            let mut out = vec![];
            reader.read_to_end(&mut out).unwrap();
            drop(reader);
            assert_eq!(out, data, "{coding}");
            assert!(body.is_empty(), "{coding}");
            assert_eq!(body.ends, 1, "{coding}: the body saw its end once");
            // So a body cut short after the stream's end is still caught.
            let cut = [coded.clone(), padding].concat();
            assert_eq!(
                decode(CutBody(&cut), &[coding]).unwrap_err().exit_code(),
                18
            );
            // A second stream (but a gzip member: those are one stream), or
            // garbage, after the first is content that would be lost.
            let mut afters = vec![b"garbage".to_vec(), [&[0; 9][..], b"x"].concat()];
            if coding == Coding::Brotli {
                afters.push(vec![0; 4]);
            }
            if coding != Coding::Gzip {
                afters.push(coded.clone());
            }
            for after in afters {
                // In a read of its own, and in the same read as the stream's
                // end (brotli holds what it read ahead).
                for body in [
                    Pieces::from_pieces(vec![coded.clone(), after.clone()]),
                    Pieces::from_pieces(vec![[coded.clone(), after].concat()]),
                ] {
                    let e = decode(body, &[coding]).unwrap_err();
                    assert_eq!(e.exit_code(), 61, "{coding}");
                    assert!(e.to_string().contains("data after the end"), "{e}");
                }
            }
        }
    }

    #[test]
    fn stacked_decoders_read_the_body_to_its_end_once() {
        let data = sample();
        for applied in [
            [Coding::Deflate, Coding::Gzip],
            [Coding::Gzip, Coding::Brotli],
            [Coding::Brotli, Coding::Deflate],
        ] {
            let mut body = Pieces::from_pieces(vec![encode(&data, &applied)]);
            assert_eq!(decode(&mut body, &applied).unwrap(), data, "{applied:?}");
            assert_eq!(body.ends, 1, "{applied:?}");
        }
    }

    #[test]
    fn reads_after_an_error_do_not_look_like_the_end() {
        let mut reader = decoder(&b"garbage that is not gzip"[..], &[Coding::Brotli]);
        let mut buf = [0; 64];
        assert!(reader.read(&mut buf).is_err());
        let again = reader.read(&mut buf).unwrap_err();
        assert_eq!(Error::from_read(again).exit_code(), 61);
    }

    #[test]
    fn large_window_brotli_is_refused() {
        let params = brotli::enc::BrotliEncoderParams {
            large_window: true,
            lgwin: 26,
            ..Default::default()
        };
        let mut e = brotli::CompressorWriter::with_params(vec![], 4096, &params);
        e.write_all(&sample()).unwrap();
        let coded = e.into_inner();
        assert_eq!(code(&coded, &[Coding::Brotli]), 61);
    }

    #[test]
    fn an_empty_read_buffer_is_not_the_end() {
        let data = sample();
        let coded = gzip(&data);
        let mut reader = decoder(&coded[..], &[Coding::Gzip]);
        assert_eq!(reader.read(&mut []).unwrap(), 0);
        let mut out = vec![];
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    fn stacks() -> impl Strategy<Value = Vec<Coding>> {
        prop_oneof![
            Just(vec![Coding::Gzip]),
            Just(vec![Coding::Deflate]),
            Just(vec![Coding::Brotli]),
            Just(vec![Coding::Gzip, Coding::Brotli]),
            Just(vec![Coding::Deflate, Coding::Gzip]),
        ]
    }

    proptest! {
        #[test]
        fn any_split_and_buffer_decode_the_same(
            words in proptest::collection::vec(0u8..16, 0..3000),
            applied in stacks(),
            raw in any::<bool>(),
            members in 1usize..3,
            cuts in proptest::collection::vec(1usize..200, 0..60),
            read_size in 1usize..300,
        ) {
            // Few distinct bytes, so back-references happen.
            let data: Vec<u8> = words.iter().map(|w| b'a' + w).collect();
            let coded = match applied.as_slice() {
                [Coding::Deflate] if raw => raw_deflate(&data),
                [Coding::Gzip] => {
                    // The data split over `members` concatenated members.
                    let part = data.len().div_ceil(members).max(1);
                    let mut coded: Vec<u8> = data.chunks(part).flat_map(gzip).collect();
                    if coded.is_empty() { coded = gzip(b""); }
                    coded
                }
                _ => encode(&data, &applied),
            };
            let mut body = Pieces::new(&coded, &cuts);
            let mut reader = decoder(&mut body, &applied);
            let (out, end) = crate::test_io::read_capped(&mut reader, read_size, usize::MAX);
            end.unwrap();
            drop(reader);
            prop_assert_eq!(out, data);
            prop_assert_eq!(body.ends, 1);
        }
    }

    proptest! {
        #[test]
        fn junk_and_edited_streams_never_panic_and_are_61(
            applied in stacks(),
            start in prop_oneof![
                // Valid coded data, then edited below.
                proptest::collection::vec(0u8..16, 0..2000).prop_map(Some),
                Just(None),
            ],
            magic in proptest::sample::select(vec![&b""[..], b"\x1f\x8b\x08", b"\x78\x9c", b"\x0b"]),
            junk in proptest::collection::vec(any::<u8>(), 0..512),
            edits in crate::test_io::edits(0..6),
            cuts in crate::test_io::cuts(),
            read_size in 1usize..300,
        ) {
            let mut coded = match start {
                Some(words) => {
                    let data: Vec<u8> = words.iter().map(|w| b'a' + w).collect();
                    encode(&data, &applied)
                }
                // The first bytes of a format, then anything.
                None => [magic, &junk[..]].concat(),
            };
            for e in edits {
                crate::test_io::edit(&mut coded, e);
            }
            let mut reader = decoder(crate::test_io::Pieces::new(&coded, &cuts), &applied);
            // Tiny input can decode to a lot: stop at 1 MiB.
            let (_, result) = crate::test_io::read_capped(&mut reader, read_size, 1 << 20);
            if let Err(e) = result {
                let e = Error::from_read(e);
                prop_assert_eq!(e.exit_code(), 61, "{}", e);
                // And it stays failed.
                let again = reader.read(&mut [0; 16]).unwrap_err();
                prop_assert_eq!(Error::from_read(again).exit_code(), 61);
            }
        }
    }
}
