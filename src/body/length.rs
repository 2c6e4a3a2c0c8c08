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
}
