//! Fuzz target `response`: the whole response path over one byte stream, as
//! `transfer` takes it: head, framing, body, content codings and decoders,
//! copied into a bounded in-memory sink. Fails only with a response's codes.

#![no_main]

use fetch::body::{Body, BodyKind, content_codings, decoder};
use fetch::response::read_response_head;
use libfuzzer_sys::fuzz_target;
use std::io::{BufReader, Read};

/// Decoded output kept at most, in bytes: a few KiB of brotli or deflate can
/// decode to far more, and past this there is nothing new to learn.
const MAX_OUTPUT: usize = 2 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    // Buffer and read sizes vary with the input, so boundaries fall everywhere.
    let capacity = 1 + data.len() % 61;
    let read_size = [7, 512, 16 * 1024, 64 * 1024][(data.len() / 61) % 4];
    let mut conn = BufReader::with_capacity(capacity, data);
    let head = match read_response_head(&mut conn, |_| {}) {
        Ok(head) => head,
        Err(e) => {
            assert!(matches!(e.exit_code(), 8 | 52), "{e}");
            return;
        }
    };
    let kind = match BodyKind::of(&head, false) {
        Ok(kind) => kind,
        Err(e) => {
            assert_eq!(e.exit_code(), 8, "{e}");
            return;
        }
    };
    // Codings fetch cannot undo: go on without --compressed's decoding.
    let codings = content_codings(&head).unwrap_or_else(|e| {
        assert_eq!(e.exit_code(), 61, "{e}");
        vec![]
    });
    let mut decoded = decoder(Body::new(kind, &mut conn), &codings);
    let mut sink = Vec::new();
    let mut buf = vec![0; read_size];
    while sink.len() < MAX_OUTPUT {
        match decoded.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sink.extend_from_slice(&buf[..n]),
            Err(e) => {
                let e = e
                    .into_inner()
                    .and_then(|e| e.downcast::<fetch::Error>().ok())
                    .expect("body and decoder errors are fetch's own");
                assert!(matches!(e.exit_code(), 8 | 18 | 61), "{e}");
                break;
            }
        }
    }
});
