//! `-v` on stderr: steps (`* `), the request head (`> `) and response heads (`< `),
//! with control bytes escaped when stderr is a terminal.

use crate::escape;
use std::io::Write;

/// Where `-v` lines go; a no-op when `-v` is off. Write errors are ignored:
/// a closed stderr must not fail a download.
pub struct Trace<'a> {
    out: Option<&'a mut dyn Write>,
    escape: bool,
}

impl<'a> Trace<'a> {
    pub fn new(out: &'a mut dyn Write, enabled: bool, is_terminal: bool) -> Trace<'a> {
        Trace {
            out: enabled.then_some(out),
            escape: is_terminal,
        }
    }

    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    /// One `* ` line. Formatted only when `-v` is on: pass `format_args!`,
    /// not a `format!`ed string, so that a batch without `-v` does not pay
    /// for its lines.
    pub fn step(&mut self, text: impl std::fmt::Display) {
        if let Some(out) = self.out.as_mut() {
            let text = text.to_string();
            // One write_all per line: a batch's threads share stderr.
            let line = format!("* {}\n", escape::for_message(text.as_bytes()));
            let _ = out.write_all(line.as_bytes());
        }
    }

    /// A head, line by line, each behind `prefix` and without its line end.
    pub fn head(&mut self, prefix: &str, head: &[u8]) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let mut text = Vec::with_capacity(head.len() + 64);
        for line in head.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            text.extend_from_slice(prefix.as_bytes());
            if self.escape {
                text.extend_from_slice(&escape::for_terminal(line));
            } else {
                text.extend_from_slice(line);
            }
            text.push(b'\n');
        }
        let _ = out.write_all(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_prefixed_line_by_line() {
        let mut out = vec![];
        let mut t = Trace::new(&mut out, true, true);
        t.head("< ", b"HTTP/1.1 200 OK\r\nX: \x1b[2J\r\n\r\n");
        t.step("Connected");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "< HTTP/1.1 200 OK\n< X: \\x1b[2J\n< \n* Connected\n"
        );
    }

    #[test]
    fn disabled_writes_nothing() {
        let mut out = vec![];
        let mut t = Trace::new(&mut out, false, false);
        t.step("x");
        t.head("> ", b"GET / HTTP/1.1\r\n\r\n");
        assert!(out.is_empty());
    }
}
