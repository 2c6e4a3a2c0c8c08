//! Making bytes from the server safe to show: control bytes escaped before they
//! reach a terminal or an error line (a reason phrase must not recolour a shell).

use std::borrow::Cow;

/// True for bytes a terminal would act on rather than show. TAB, CR and LF are
/// left alone here: a printed head keeps its line structure.
fn is_active(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f
}

/// True for C1 controls (U+0080..U+009F), which terminals treat like ESC
/// sequences (U+009B is CSI); as raw bytes 0x80..0x9F outside UTF-8 too
/// (a terminal set to 8-bit controls or Latin-1 acts on those).
fn is_c1(c: u32) -> bool {
    (0x80..=0x9f).contains(&c)
}

/// Bytes for a terminal: control bytes other than TAB, CR and LF, and C1
/// controls (UTF-8 encoded or raw), become `\xNN`; everything else, valid
/// UTF-8 or not, is unchanged.
pub fn for_terminal(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.iter().all(|&b| b < 0x80 && !is_active(b)) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let escape = |out: &mut Vec<u8>, raw: &[u8]| {
        for b in raw {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut utf8 = [0u8; 4];
            let encoded = c.encode_utf8(&mut utf8).as_bytes();
            if is_c1(c as u32) || (c.is_ascii() && is_active(c as u8)) {
                escape(&mut out, encoded);
            } else {
                out.extend_from_slice(encoded);
            }
        }
        for &b in chunk.invalid() {
            if is_c1(u32::from(b)) {
                escape(&mut out, &[b]);
            } else {
                out.push(b);
            }
        }
    }
    if out == bytes {
        return Cow::Borrowed(bytes);
    }
    Cow::Owned(out)
}

/// Bytes for one line of an error message: like [`for_terminal`], and CR, LF and
/// TAB escaped too (a message is one line), invalid UTF-8 replaced.
pub fn for_message(bytes: &[u8]) -> String {
    let trimmed = bytes
        .strip_suffix(b"\n")
        .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
        .unwrap_or(bytes);
    let mut out = String::new();
    for c in String::from_utf8_lossy(&for_terminal(trimmed)).chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            for_terminal(b"HTTP/1.1 200 OK\r\n\tx\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escape_sequences_are_defused() {
        assert_eq!(
            &*for_terminal(b"a\x1b[31mb\x07\x7f"),
            b"a\\x1b[31mb\\x07\\x7f"
        );
        assert_eq!(&*for_terminal("x\u{9b}y".as_bytes()), b"x\\xc2\\x9by");
        // Other UTF-8 stays as it is.
        assert_eq!(&*for_terminal("é€".as_bytes()), "é€".as_bytes());
        // A raw C1 byte (8-bit CSI) is escaped; 0x9b inside UTF-8 ("ě") and
        // Latin-1 letters are not.
        assert_eq!(&*for_terminal(b"a\x9b31mb"), b"a\\x9b31mb");
        assert_eq!(&*for_terminal("ě".as_bytes()), "ě".as_bytes());
        assert_eq!(&*for_terminal(b"caf\xe9 \x85"), b"caf\xe9 \\x85");
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(for_message(b"a\r\nb\x1b\r\n"), "a\\r\\nb\\x1b");
    }
}
