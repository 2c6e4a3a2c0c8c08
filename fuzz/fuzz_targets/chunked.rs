//! Fuzz target `chunked`: a `ChunkedReader` over arbitrary bytes, read to its
//! end with a small caller buffer, checking that one read takes no more than
//! the limits allow beyond the data it returns, fails only with 8 or 18, and
//! keeps at most the trailer section's bound of trailer lines.

#![no_main]

use fetch::body::{ChunkedReader, MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use libfuzzer_sys::fuzz_target;
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

/// A `BufRead` that counts the bytes its user took (consumed or read).
struct Counted<R> {
    inner: R,
    taken: Rc<Cell<usize>>,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.taken.set(self.taken.get() + amount);
        self.inner.consume(amount);
    }
}

fuzz_target!(|data: &[u8]| {
    // A small buffer, its size varying with the input, puts read boundaries
    // inside size lines and line ends.
    let capacity = 1 + data.len() % 61;
    let taken = Rc::new(Cell::new(0));
    let mut reader = ChunkedReader::new(Counted {
        inner: BufReader::with_capacity(capacity, data),
        taken: taken.clone(),
    });
    let mut buf = [0; 7];
    let mut total = 0;
    loop {
        let before = taken.get();
        let result = reader.read(&mut buf);
        let returned = *result.as_ref().unwrap_or(&0);
        // Beyond its data, one read takes at most: the line end after the
        // previous chunk, one chunk-size line, and (after the last chunk) the
        // trailer section.
        let overhead = taken.get() - before - returned;
        let most = 2 + MAX_CHUNK_LINE + if returned > 0 { 0 } else { MAX_TRAILER_BYTES };
        assert!(
            overhead <= most,
            "took {overhead} bytes of framing in one read"
        );
        match result {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                let e = e
                    .into_inner()
                    .and_then(|e| e.downcast::<fetch::Error>().ok())
                    .expect("the reader's errors are fetch's own");
                let code = e.exit_code();
                assert!(code == 8 || code == 18, "{code}: {e}");
                break;
            }
        }
    }
    assert!(total <= data.len());
    // The trailer lines kept for digests stay within the section's bound, and
    // turning them into fields never panics.
    assert!(reader.trailers().len() <= MAX_TRAILER_BYTES);
    let _ = fetch::response::parse_trailers(reader.trailers());
});
