//! Bodies without framing: everything until the server closes the connection
//! (RFC 9112 §6.3 rule 8).

use crate::error::Error;
use std::io::{self, Read};

/// Reads until end of stream. A TLS stream that ends without close_notify
/// reports `UnexpectedEof`; then nothing proves the body complete (exit 18).
pub struct CloseReader<R> {
    inner: R,
    received: u64,
}

impl<R> CloseReader<R> {
    pub fn new(inner: R) -> CloseReader<R> {
        CloseReader { inner, received: 0 }
    }
}

impl<R: Read> Read for CloseReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.received += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::Truncated(format!(
                "the connection was cut after {} bytes without a TLS close_notify, \
                 and the body has no length to check it against",
                self.received
            ))
            .into_io()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_to_the_end() {
        let mut out = vec![];
        CloseReader::new(&b"all of it"[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"all of it");
    }

    struct UncleanEnd;
    impl Read for UncleanEnd {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    #[test]
    fn unclean_end_is_18() {
        let err = CloseReader::new(UncleanEnd).read(&mut [0; 4]).unwrap_err();
        assert_eq!(Error::from_read(err).exit_code(), 18);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_come_back_whole(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            cuts in crate::test_io::cuts(),
            capacity in 1usize..64,
            read_size in 1usize..64,
        ) {
            let mut r = CloseReader::new(crate::test_io::split_reader(&bytes, &cuts, capacity));
            let mut out = vec![];
            let mut buf = vec![0; read_size];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            proptest::prop_assert_eq!(out, bytes);
        }
    }
}
