//! Test-only readers and strategies for the property tests of the protocol
//! modules: input handed out in chosen pieces, with a count of what was taken.

use proptest::prelude::*;
use std::collections::VecDeque;
use std::io::{self, BufReader, Read};

/// Hands out its input one piece per read at most, so every cut the test chose
/// is a real boundary between two reads, and counts the bytes it gave away.
pub struct Pieces {
    pieces: VecDeque<Vec<u8>>,
    /// How much of the first piece was handed out (an offset, not a drain: a
    /// long piece read in small bites would otherwise be moved once per bite).
    offset: usize,
    /// Bytes handed out so far.
    pub taken: usize,
    /// Reads that found the input at its end.
    pub ends: usize,
}

impl Pieces {
    /// `bytes` cut after each length in `cuts` in turn (the rest is one last piece).
    pub fn new(bytes: &[u8], cuts: &[usize]) -> Pieces {
        let mut pieces = VecDeque::new();
        let mut rest = bytes;
        for &cut in cuts {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(cut.clamp(1, rest.len()));
            pieces.push_back(piece.to_vec());
            rest = after;
        }
        if !rest.is_empty() {
            pieces.push_back(rest.to_vec());
        }
        Pieces::from_pieces(pieces.into())
    }

    /// Exactly these pieces, one read's worth each at most.
    pub fn from_pieces(pieces: Vec<Vec<u8>>) -> Pieces {
        Pieces {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
            offset: 0,
            taken: 0,
            ends: 0,
        }
    }

    /// Whether every piece was handed out.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(first) = self.pieces.front() else {
            self.ends += 1;
            return Ok(0);
        };
        let left = &first[self.offset..];
        let n = buf.len().min(left.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.offset += n;
        if self.offset == first.len() {
            self.pieces.pop_front();
            self.offset = 0;
        }
        self.taken += n;
        Ok(n)
    }
}

/// A buffered reader over `bytes` cut at `cuts`, with a buffer of `capacity` bytes.
pub fn split_reader(bytes: &[u8], cuts: &[usize], capacity: usize) -> BufReader<Pieces> {
    BufReader::with_capacity(capacity, Pieces::new(bytes, cuts))
}

/// Bytes taken out of `r` by its user: what `Pieces` gave away less what still
/// waits in the buffer.
pub fn consumed(r: &BufReader<Pieces>) -> usize {
    r.get_ref().taken - r.buffer().len()
}

/// The rest of `r`, read to its end.
pub fn rest(r: &mut BufReader<Pieces>) -> Vec<u8> {
    let mut out = vec![];
    r.read_to_end(&mut out).expect("Pieces never fails");
    out
}

/// Cut lengths for [`Pieces::new`]: many small reads, so boundaries fall everywhere.
pub fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..64, 0..40)
}

/// Bytes that are often the ones HTTP framing is made of, so random input gets
/// past the first check more often than uniform bytes would.
pub fn wire_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"HTP/1.0 2\r\n\r\n\t:;,-0123456789aAfF".to_vec()),
    ]
}

/// `len` bytes of `unit` repeated: input long enough to reach the limits
/// (hundreds of KiB) without generating every byte.
pub fn repeated(unit: &[u8], len: usize) -> Vec<u8> {
    unit.iter().copied().cycle().take(len).collect()
}

/// A response head from lines joined by `\n` (sent with CRLF), for unit tests
/// of what a head decides.
pub fn head(text: &str) -> crate::response::Head {
    let raw = format!("{}\r\n\r\n", text.replace('\n', "\r\n"));
    crate::response::parse_head(raw.into_bytes()).unwrap()
}

/// Reads `r` in reads of `read_size` bytes until it ends, fails, or has given
/// at least `cap` bytes (a decoder can make much out of little).
pub fn read_capped(r: &mut impl Read, read_size: usize, cap: usize) -> (Vec<u8>, io::Result<()>) {
    let mut out = vec![];
    let mut buf = vec![0; read_size];
    while out.len() < cap {
        match r.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
    (out, Ok(()))
}

/// One edit to valid input: at a position, a byte inserted (0), flipped (1) or
/// removed (2).
pub type Edit = (proptest::sample::Index, u8, u8);

/// A few edits, each with a byte that is often one of HTTP's own.
pub fn edits(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        (any::<proptest::sample::Index>(), 0u8..3, wire_byte()),
        count,
    )
}

/// Applies one [`Edit`] to `wire`.
pub fn edit(wire: &mut Vec<u8>, (at, kind, byte): Edit) {
    let len = wire.len();
    match kind {
        0 => wire.insert(at.index(len + 1), byte),
        _ if len == 0 => {}
        1 => wire[at.index(len)] ^= byte | 1,
        _ => {
            wire.remove(at.index(len));
        }
    }
}
