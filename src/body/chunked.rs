//! Chunked bodies (RFC 9112 §7.1): hex sizes in either case with checked
//! arithmetic, extensions ignored, trailers read and dropped, every line bounded.

use crate::error::Error;
use crate::response::{LineEnd, is_blank, read_line};
use std::io::{self, BufRead, Read};

/// Longest chunk-size line (size, extensions, line end), in bytes.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Most bytes the trailer section may take, in bytes.
pub const MAX_TRAILER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// Expecting the line end that follows chunk data.
    DataEnd,
    /// After the last chunk: trailer fields until a blank line.
    Trailers,
    Done,
}

/// Decodes a chunked body from a buffered reader. Chunk data is read straight
/// into the caller's buffer; only the small lines go through `line`.
pub struct ChunkedReader<R> {
    inner: R,
    state: State,
    line: Vec<u8>,
    trailer_bytes: usize,
    /// The trailer section's field lines, as received (at most
    /// `MAX_TRAILER_BYTES`).
    trailers: Vec<u8>,
    received: u64,
}

impl<R> ChunkedReader<R> {
    pub fn new(inner: R) -> ChunkedReader<R> {
        ChunkedReader {
            inner,
            state: State::Size,
            line: Vec::new(),
            trailer_bytes: 0,
            trailers: Vec::new(),
            received: 0,
        }
    }

    /// The trailer section's field lines (empty until the body has ended,
    /// and when it had none).
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// Whether the last chunk and the trailer section have been read: the
    /// body ended exactly here.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }
}

impl<R: BufRead> ChunkedReader<R> {
    fn truncated(&self) -> io::Error {
        Error::Truncated(format!(
            "the chunked body ended after {} bytes, before its last chunk",
            self.received
        ))
        .into_io()
    }

    /// Reads one line into `self.line` (replacing it); `Ok(false)` at end of stream.
    fn next_line(&mut self, limit: usize, what: &str) -> io::Result<bool> {
        self.line.clear();
        match read_line(&mut self.inner, &mut self.line, limit)? {
            LineEnd::Lf => Ok(true),
            LineEnd::Eof => Ok(false),
            LineEnd::Limit => {
                Err(Error::Malformed(format!("{what} longer than {limit} bytes")).into_io())
            }
        }
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Size => {
                    if !self.next_line(MAX_CHUNK_LINE, "chunk-size line")? {
                        return Err(self.truncated());
                    }
                    let size = parse_chunk_size(&self.line).map_err(Error::into_io)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(self.truncated());
                    }
                    self.received += n as u64;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(n);
                }
                State::DataEnd => {
                    // CRLF (or a bare LF) and nothing else; 2 bytes are enough to tell.
                    self.line.clear();
                    match read_line(&mut self.inner, &mut self.line, 2)? {
                        LineEnd::Lf if is_blank(&self.line) => self.state = State::Size,
                        LineEnd::Eof if self.line.is_empty() || self.line == b"\r" => {
                            return Err(self.truncated());
                        }
                        _ => {
                            return Err(Error::Malformed("chunk data not followed by CRLF".into())
                                .into_io());
                        }
                    }
                }
                State::Trailers => {
                    // One budget for the whole section, whatever its lines.
                    let too_long = || {
                        Error::Malformed(format!(
                            "trailer section longer than {} KiB",
                            MAX_TRAILER_BYTES / 1024
                        ))
                        .into_io()
                    };
                    let left = MAX_TRAILER_BYTES - self.trailer_bytes;
                    if left == 0 {
                        return Err(too_long());
                    }
                    self.line.clear();
                    match read_line(&mut self.inner, &mut self.line, left)? {
                        LineEnd::Lf => {}
                        LineEnd::Eof => {
                            return Err(Error::Truncated(format!(
                                "the chunked body ended in its trailer section, after its \
                                 last chunk ({} bytes), before the blank line that ends it",
                                self.received
                            ))
                            .into_io());
                        }
                        LineEnd::Limit => return Err(too_long()),
                    }
                    self.trailer_bytes += self.line.len();
                    if is_blank(&self.line) {
                        self.state = State::Done;
                    } else {
                        self.trailers.extend_from_slice(&self.line);
                    }
                }
                State::Done => return Ok(0),
            }
        }
    }
}

/// Parses `chunk-size [BWS ; chunk-ext] CRLF`. Signs, `0x`, an empty size and
/// sizes beyond u64 are errors, never a wrapped or negative number.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let bad = || {
        Error::Malformed(format!(
            "invalid chunk-size line '{}'",
            crate::escape::for_message(line)
        ))
    };
    let body = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line);
    let digits = body.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad());
    }
    // Optional whitespace (BWS) before an extension, or trailing padding.
    let rest = &body[digits..];
    let after_ws = rest.iter().find(|&&b| b != b' ' && b != b'\t');
    if !matches!(after_ws, None | Some(b';')) || rest.contains(&b'\r') {
        return Err(bad());
    }
    body[..digits]
        .iter()
        .try_fold(0u64, |n, &b| {
            let d = (b as char).to_digit(16)?;
            n.checked_mul(16)?.checked_add(u64::from(d))
        })
        .ok_or_else(|| Error::Malformed("chunk size does not fit in 64 bits".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = vec![];
        ChunkedReader::new(bytes)
            .read_to_end(&mut out)
            .map_err(Error::from_read)?;
        Ok(out)
    }

    fn code(bytes: &[u8]) -> u8 {
        decode(bytes).unwrap_err().exit_code()
    }

    #[test]
    fn keeps_the_trailer_lines() {
        let mut src: &[u8] = b"3\r\nabc\r\n0\r\nA: 1\r\nB: 2\n\r\nNEXT";
        let mut reader = ChunkedReader::new(&mut src);
        let mut out = vec![];
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(reader.trailers(), b"A: 1\r\nB: 2\n");
        assert!(reader.is_finished());
        let mut none: &[u8] = b"0\r\n\r\n";
        let mut reader = ChunkedReader::new(&mut none);
        reader.read_to_end(&mut out).unwrap();
        assert!(reader.trailers().is_empty());
    }

    #[test]
    fn decodes_and_stops_at_the_end() {
        let mut src: &[u8] = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
        let mut out = vec![];
        ChunkedReader::new(&mut src).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(src, b"NEXT");
    }

    #[test]
    fn hex_in_either_case_extensions_and_bare_lf() {
        let body = b"a;name=value\r\n0123456789\r\nA ; x\r\n0123456789\r\nF\n0123456789abcde\n0;last\r\n\r\n";
        assert_eq!(decode(body).unwrap().len(), 35);
        assert_eq!(decode(b"1   \r\nx\r\n0\r\n\r\n").unwrap(), b"x");
    }

    #[test]
    fn trailers_are_read_and_dropped() {
        let body = b"3\r\nabc\r\n0\r\nDigest: x\r\nOther: y\r\n\r\n";
        assert_eq!(decode(body).unwrap(), b"abc");
    }

    #[test]
    fn bad_sizes_are_8() {
        for line in [
            &b"-5\r\n"[..],
            b"0x5\r\n",
            b"\r\n",
            b" 5\r\n",
            b"+5\r\n",
            b"5 5\r\n",
            b"g\r\n",
            b"5\rx\r\n",
            b"10000000000000000\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut body = line.to_vec();
            body.extend_from_slice(b"hello\r\n0\r\n\r\n");
            assert_eq!(code(&body), 8, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn largest_size_parses() {
        assert_eq!(parse_chunk_size(b"ffffffffffffffff\r\n").unwrap(), u64::MAX);
        assert_eq!(parse_chunk_size(b"00000000000000001\r\n").unwrap(), 1);
    }

    #[test]
    fn missing_crlf_after_data_is_8() {
        assert_eq!(code(b"3\r\nabcX\r\n0\r\n\r\n"), 8);
        assert_eq!(code(b"3\r\nabc\r0\r\n\r\n"), 8);
    }

    #[test]
    fn truncations_are_18() {
        for body in [
            &b""[..],
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r\n",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
            b"5",
        ] {
            assert_eq!(code(body), 18, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn line_limits_are_8() {
        let mut long_ext = b"5;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
        long_ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(code(&long_ext), 8);

        let mut fits = b"5;".to_vec();
        fits.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE - 4));
        fits.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode(&fits).unwrap(), b"hello");

        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILER_BYTES / 10 + 1) {
            trailers.extend_from_slice(b"X: 123456\r\n");
        }
        trailers.extend_from_slice(b"\r\n");
        assert_eq!(code(&trailers), 8);
    }

    fn encode(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![];
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend(format!("{:x};e=1\r\n", c.len()).bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\nT: v\r\n\r\n");
        out
    }

    proptest! {
        #[test]
        fn any_split_decodes_the_same(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(1usize..64, 0..40),
            capacity in 1usize..32,
            read_size in 1usize..100,
        ) {
            let wire = encode(&chunks);
            let mut reader = ChunkedReader::new(crate::test_io::split_reader(&wire, &cuts, capacity));
            let (out, end) = crate::test_io::read_capped(&mut reader, read_size, usize::MAX);
            end.unwrap();
            prop_assert_eq!(out, chunks.concat());
        }
    }

    /// Chunk framing for `chunks` without the last chunk: a valid start for junk.
    fn framed(chunks: &[Vec<u8>]) -> Vec<u8> {
        let wire = encode(chunks);
        wire[..wire.len() - b"0\r\nT: v\r\n\r\n".len()].to_vec()
    }

    /// Reads `wire` to its end or first error and checks, after every read, what
    /// bounds the memory and the bytes taken whatever the input: the line kept
    /// is at most MAX_CHUNK_LINE (a trailer line at most MAX_TRAILER_BYTES), the
    /// trailers counted stay within MAX_TRAILER_BYTES, and one read takes from
    /// the reader, beyond the data it returns, at most one line end after data,
    /// one chunk-size line and the trailer section. Only 8 and 18 are errors.
    fn read_bounded(wire: &[u8], cuts: &[usize], capacity: usize, read_size: usize) -> usize {
        let mut reader = ChunkedReader::new(crate::test_io::split_reader(wire, cuts, capacity));
        let mut buf = vec![0; read_size];
        let mut total = 0;
        loop {
            let before = crate::test_io::consumed(&reader.inner);
            let result = reader.read(&mut buf);
            let overhead = crate::test_io::consumed(&reader.inner)
                - before
                - result.as_ref().map_or(0, |n| *n);
            let line_limit = match reader.state {
                State::Trailers | State::Done => MAX_TRAILER_BYTES,
                _ => MAX_CHUNK_LINE,
            };
            assert!(
                reader.line.len() <= line_limit,
                "line of {}",
                reader.line.len()
            );
            assert!(reader.trailer_bytes <= MAX_TRAILER_BYTES);
            match result {
                Ok(0) => {
                    assert!(overhead <= 2 + MAX_CHUNK_LINE + MAX_TRAILER_BYTES);
                    assert_eq!(reader.state, State::Done);
                    return total;
                }
                Ok(n) => {
                    assert!(overhead <= 2 + MAX_CHUNK_LINE, "overhead {overhead}");
                    total += n;
                }
                Err(e) => {
                    assert!(overhead <= 2 + MAX_CHUNK_LINE + MAX_TRAILER_BYTES);
                    let code = Error::from_read(e).exit_code();
                    assert!(code == 8 || code == 18, "exit {code}");
                    return total;
                }
            }
        }
    }

    fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)
    }

    proptest! {
        #[test]
        fn junk_never_panics_and_stays_in_bounds(
            start in chunks(),
            opener in proptest::sample::select(vec![&b""[..], b"0\r\n", b"5", b"5;", b"3\r\nabc"]),
            junk in proptest::collection::vec(crate::test_io::wire_byte(), 0..512),
            cuts in crate::test_io::cuts(),
            capacity in 1usize..64,
            read_size in 1usize..64,
        ) {
            let wire = [framed(&start), opener.to_vec(), junk].concat();
            let total = read_bounded(&wire, &cuts, capacity, read_size);
            prop_assert!(total <= wire.len());
        }
    }

    proptest! {
        // Each case is up to 90 KiB, so fewer of them keep the suite quick.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn long_junk_is_cut_off_at_the_line_and_trailer_limits(
            start in chunks(),
            opener in proptest::sample::select(vec![&b""[..], b"0\r\n", b"5", b"5;"]),
            unit in prop_oneof![
                proptest::collection::vec(crate::test_io::wire_byte(), 1..16),
                Just(b"X: y\r\n".to_vec()),
                Just(b"1\r\nx\r\n".to_vec()),
                Just(b";x=y".to_vec()),
            ],
            len in 0usize..MAX_TRAILER_BYTES + 24 * 1024,
            cuts in crate::test_io::cuts(),
            capacity in 1usize..8192,
            read_size in 1usize..8192,
        ) {
            let wire = [framed(&start), opener.to_vec(), crate::test_io::repeated(&unit, len)].concat();
            read_bounded(&wire, &cuts, capacity, read_size);
        }
    }
}
