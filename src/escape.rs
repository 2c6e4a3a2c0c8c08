//! Making bytes from the server safe to show: control bytes escaped before they
//! reach a terminal or an error line (a reason phrase must not recolour a shell).

use std::borrow::Cow;

/// True for bytes a terminal would act on rather than show. TAB, CR and LF are
/// left alone here: a printed head keeps its line structure.
fn is_active(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f
}

/// True when `bytes[i..]` starts a UTF-8 encoded C1 control (U+0080..U+009F),
/// which terminals treat like ESC sequences (U+009B is CSI).
fn is_c1(bytes: &[u8], i: usize) -> bool {
    bytes[i] == 0xc2 && bytes.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b))
}

/// Bytes for a terminal: control bytes other than TAB, CR and LF, and C1
/// controls, become `\xNN`; everything else is unchanged.
pub fn for_terminal(bytes: &[u8]) -> Cow<'_, [u8]> {
    let clean = (0..bytes.len()).all(|i| !is_active(bytes[i]) && !is_c1(bytes, i));
    if clean {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        if is_c1(bytes, i) {
            out.extend_from_slice(format!("\\xc2\\x{:02x}", bytes[i + 1]).as_bytes());
            i += 2;
        } else if is_active(bytes[i]) {
            out.extend_from_slice(format!("\\x{:02x}", bytes[i]).as_bytes());
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
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
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(for_message(b"a\r\nb\x1b\r\n"), "a\\r\\nb\\x1b");
    }
}
