//! Fuzz target `head`: `read_response_head` over arbitrary bytes, checking the
//! limits it promises (DESIGN §5) and that it fails only with 8 or 52.

#![no_main]

use fetch::body::{BodyKind, content_codings};
use fetch::response::{MAX_FIELDS, MAX_HEAD_BYTES, read_response_head};
use libfuzzer_sys::fuzz_target;
use std::io::BufReader;

fuzz_target!(|data: &[u8]| {
    // A small buffer, its size varying with the input, puts read boundaries
    // inside lines and fields, where a parser that forgot one would go wrong.
    let capacity = 1 + data.len() % 61;
    let mut r = BufReader::with_capacity(capacity, data);
    let result = read_response_head(&mut r, |h| assert!(h.raw.len() <= MAX_HEAD_BYTES));
    // Bytes taken out of the reader: the slice's bytes read less what is still buffered.
    let used = data.len() - r.get_ref().len() - r.buffer().len();
    // The byte budget counts every line end, so not one byte more.
    assert!(used <= MAX_HEAD_BYTES, "took {used} bytes");
    match result {
        Ok(head) => {
            assert!(data[..used].ends_with(&head.raw));
            assert!(head.raw.ends_with(b"\n\r\n") || head.raw.ends_with(b"\n\n"));
            assert!((200..=999).contains(&head.status), "{}", head.status);
            assert!(head.fields.len() <= MAX_FIELDS);
            // What transfer asks of every final head.
            if let Err(e) = BodyKind::of(&head, false) {
                assert_eq!(e.exit_code(), 8, "{e}");
            }
            if let Err(e) = content_codings(&head) {
                assert_eq!(e.exit_code(), 61, "{e}");
            }
        }
        Err(e) => {
            let code = e.exit_code();
            assert!(code == 8 || (code == 52 && data.is_empty()), "{code}: {e}");
        }
    }
});
