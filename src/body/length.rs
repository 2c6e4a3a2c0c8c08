//! `Content-Length` bodies: exactly N bytes; fewer is a truncation (exit 18).

use crate::error::Error;
use std::io::{self, Read};

/// Reads exactly `expected` bytes from `inner`, then reports the end.
pub struct LengthReader<R> {
    inner: R,
    expected: u64,
    remaining: u64,
}

impl<R> LengthReader<R> {
    pub fn new(inner: R, expected: u64) -> LengthReader<R> {
        LengthReader {
            inner,
            expected,
            remaining: expected,
        }
    }

    /// Whether all `expected` bytes have been read.
    pub fn is_finished(&self) -> bool {
        self.remaining == 0
    }
}

impl<R: Read> Read for LengthReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        // A TLS stream cut without close_notify says UnexpectedEof: the same
        // truncation as a plain end of stream, here.
        let n = match self.inner.read(&mut buf[..want]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            other => other?,
        };
        if n == 0 {
            let received = self.expected - self.remaining;
            return Err(Error::Truncated(format!(
                "the body ended after {received} of {} bytes (Content-Length)",
                self.expected
            ))
            .into_io());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_n_and_leaves_the_rest() {
        let mut src: &[u8] = b"hello world";
        let mut r = LengthReader::new(&mut src, 5);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        assert_eq!(src, b" world");
    }

    #[test]
    fn zero_length() {
        let mut r = LengthReader::new(&b"ignored"[..], 0);
        assert_eq!(r.read(&mut [0; 8]).unwrap(), 0);
    }

    #[test]
    fn fewer_bytes_is_18() {
        let mut r = LengthReader::new(&b"abc"[..], 10);
        let mut out = vec![];
        let err = Error::from_read(r.read_to_end(&mut out).unwrap_err());
        assert_eq!(err.exit_code(), 18);
        assert_eq!(out, b"abc");
        assert!(err.to_string().contains("3 of 10"), "{err}");
    }

    use crate::test_io::{consumed, cuts, split_reader};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn takes_exactly_its_length_or_reports_the_cut(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            expected in prop_oneof![0u64..600, any::<u64>()],
            cuts in cuts(),
            capacity in 1usize..64,
            read_size in 0usize..64,
        ) {
            let mut src = split_reader(&bytes, &cuts, capacity);
            let mut out = vec![];
            let result = {
                let mut r = LengthReader::new(&mut src, expected);
                // A zero-byte buffer is asked once, then real reads follow.
                prop_assert_eq!(r.read(&mut []).unwrap(), 0);
                let mut buf = vec![0; read_size.max(1)];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) => break Err(Error::from_read(e)),
                    }
                }
            };
            let want = usize::try_from(expected).map_or(bytes.len(), |e| e.min(bytes.len()));
            prop_assert_eq!(&out[..], &bytes[..want]);
            // Not one byte past the body is taken from below.
            prop_assert_eq!(consumed(&src), want);
            match result {
                Ok(()) => prop_assert!(expected <= bytes.len() as u64),
                Err(e) => {
                    prop_assert!(expected > bytes.len() as u64);
                    prop_assert_eq!(e.exit_code(), 18);
                }
            }
        }
    }
}
