//! `-w/--write-out` (DESIGN §1): the template, its variables and escapes, and the
//! one-line JSON of `%{json}`.

use crate::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

/// What one transfer reports, success or failure.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The final status code; 0 when no response arrived.
    pub http_code: u16,
    /// Body bytes this run wrote (not those a resumed FILE.part held).
    pub size_download: u64,
    pub time_total: Duration,
    /// The last URL asked for, without credentials.
    pub url_effective: String,
    /// The file written, when the output was a file.
    pub filename_effective: Option<String>,
    pub num_redirects: u32,
    pub content_type: Option<String>,
    /// The exit code this transfer alone would give (DESIGN §4).
    pub exitcode: u8,
    pub errormsg: Option<String>,
    /// Lowercase hex of the body's SHA-256, when [`WriteOut::needs_sha256`] asked for it.
    pub digest_sha256: Option<String>,
}

/// One `%{name}` a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variable {
    HttpCode,
    SizeDownload,
    TimeTotal,
    UrlEffective,
    FilenameEffective,
    NumRedirects,
    ContentType,
    Exitcode,
    Errormsg,
    DigestSha256,
    Json,
}

/// Every variable by name. The order is also the key order of `%{json}` (which
/// leaves out only itself), so it is part of the interface: add, never reorder.
const VARIABLES: [(&str, Variable); 11] = [
    ("http_code", Variable::HttpCode),
    ("size_download", Variable::SizeDownload),
    ("time_total", Variable::TimeTotal),
    ("url_effective", Variable::UrlEffective),
    ("filename_effective", Variable::FilenameEffective),
    ("num_redirects", Variable::NumRedirects),
    ("content_type", Variable::ContentType),
    ("exitcode", Variable::Exitcode),
    ("errormsg", Variable::Errormsg),
    ("digest_sha256", Variable::DigestSha256),
    ("json", Variable::Json),
];

/// curl's other `%` directives (`%header{name}`, `%output{file}`, `%stderr`,
/// `%stdout`). fetch has none of them; naming them is a usage error rather than
/// literal text, so a script carried over from curl fails loudly, not quietly.
const CURL_DIRECTIVES: [&str; 4] = ["header{", "output{", "stderr", "stdout"];

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(Variable),
}

/// A parsed `-w` template.
#[derive(Debug, Clone)]
pub struct WriteOut {
    pieces: Vec<Piece>,
}

impl WriteOut {
    /// Parses a template: `%{name}` variables, `%%` for a literal `%`, and the
    /// escapes `\n`, `\t`, `\r`, `\\`. Any other `%` or `\` is kept as it is, as
    /// curl does. An unknown variable, a `%{` without its `}`, or one of curl's
    /// directives fetch lacks (`%header{…}` and the like) is a usage error (exit 2) naming it.
    pub fn parse(template: &str) -> Result<WriteOut, Error> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '%' if rest.starts_with('%') => {
                    text.push('%');
                    rest = &rest[1..];
                }
                '%' if rest.starts_with('{') => {
                    let Some(end) = rest.find('}') else {
                        return Err(usage(format!(
                            "unterminated %{{{} (no closing '}}')",
                            crate::escape::for_message(&rest.as_bytes()[1..])
                        )));
                    };
                    let name = &rest[1..end];
                    let Some(&(_, variable)) = VARIABLES.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
                        return Err(usage(format!(
                            "unknown variable %{{{}}} (known: {})",
                            crate::escape::for_message(name.as_bytes()),
                            known.join(", ")
                        )));
                    };
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Variable(variable));
                    rest = &rest[end + 1..];
                }
                '%' if CURL_DIRECTIVES.iter().any(|d| rest.starts_with(d)) => {
                    let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
                    return Err(usage(format!("curl's %{word} is not supported")));
                }
                '\\' => {
                    let escaped = match rest.chars().next() {
                        Some('n') => Some('\n'),
                        Some('t') => Some('\t'),
                        Some('r') => Some('\r'),
                        Some('\\') => Some('\\'),
                        _ => None,
                    };
                    match escaped {
                        Some(e) => {
                            text.push(e);
                            rest = &rest[1..];
                        }
                        None => text.push('\\'),
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(WriteOut { pieces })
    }

    /// Whether the template uses `%{digest_sha256}` (or `%{json}`, which includes
    /// it), so the caller hashes the body only when the answer is shown.
    pub fn needs_sha256(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Variable(Variable::DigestSha256 | Variable::Json)))
    }

    /// The template filled in from `r`; missing values are empty. The text is as
    /// the report holds it: the caller escapes it for a terminal if it must
    /// (a Content-Type comes from the server).
    pub fn render(&self, r: &Report) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Variable(Variable::Json) => write_json(&mut out, r),
                Piece::Variable(v) => write_text(&mut out, *v, r),
            }
        }
        out
    }
}

fn usage(why: String) -> Error {
    Error::Usage(format!("--write-out: {why}"))
}

/// Seconds with six decimals, as curl prints times; exact, no floating point.
fn seconds(d: Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// A variable as plain text.
fn write_text(out: &mut String, v: Variable, r: &Report) {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let value = match v {
        Variable::HttpCode => r.http_code.to_string(),
        Variable::SizeDownload => r.size_download.to_string(),
        Variable::TimeTotal => seconds(r.time_total),
        Variable::UrlEffective => r.url_effective.clone(),
        Variable::FilenameEffective => text(&r.filename_effective),
        Variable::NumRedirects => r.num_redirects.to_string(),
        Variable::ContentType => text(&r.content_type),
        Variable::Exitcode => r.exitcode.to_string(),
        Variable::Errormsg => text(&r.errormsg),
        Variable::DigestSha256 => text(&r.digest_sha256),
        // Not text; `render` handles it.
        Variable::Json => String::new(),
    };
    out.push_str(&value);
}

/// `%{json}`: one line, one key per variable in [`VARIABLES`] order, numbers as
/// JSON numbers (`time_total` too), absent strings as `null` (RFC 8259).
fn write_json(out: &mut String, r: &Report) {
    out.push('{');
    let mut first = true;
    for &(name, v) in &VARIABLES {
        if v == Variable::Json {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(out, name);
        out.push(':');
        let string = |out: &mut String, s: &Option<String>| match s {
            Some(s) => write_json_string(out, s),
            None => out.push_str("null"),
        };
        match v {
            Variable::HttpCode => write_display(out, r.http_code),
            Variable::SizeDownload => write_display(out, r.size_download),
            Variable::TimeTotal => out.push_str(&seconds(r.time_total)),
            Variable::UrlEffective => write_json_string(out, &r.url_effective),
            Variable::FilenameEffective => string(out, &r.filename_effective),
            Variable::NumRedirects => write_display(out, r.num_redirects),
            Variable::ContentType => string(out, &r.content_type),
            Variable::Exitcode => write_display(out, r.exitcode),
            Variable::Errormsg => string(out, &r.errormsg),
            Variable::DigestSha256 => string(out, &r.digest_sha256),
            Variable::Json => {}
        }
    }
    out.push('}');
}

fn write_display(out: &mut String, n: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{n}");
}

/// A JSON string (RFC 8259 §7). Quote and backslash are escaped as the RFC
/// requires, and so are all control characters as `\u00XX`: C0 (required), and
/// also DEL and C1, which JSON allows raw but a terminal would act on. Other
/// UTF-8 passes through.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Report {
        Report {
            http_code: 200,
            size_download: 1234,
            time_total: Duration::from_micros(1_500_042),
            url_effective: "http://example.com/a?b=c".into(),
            filename_effective: Some("out.bin".into()),
            num_redirects: 2,
            content_type: Some("text/html; charset=utf-8".into()),
            exitcode: 0,
            errormsg: None,
            digest_sha256: Some("ab".repeat(32)),
        }
    }

    fn render(template: &str, r: &Report) -> String {
        WriteOut::parse(template).unwrap().render(r)
    }

    fn usage_message(template: &str) -> String {
        let e = WriteOut::parse(template).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        e.to_string()
    }

    #[test]
    fn each_variable() {
        let r = Report {
            exitcode: 22,
            errormsg: Some("HTTP 404 Not Found".into()),
            ..full()
        };
        let cases = [
            ("http_code", "200"),
            ("size_download", "1234"),
            ("time_total", "1.500042"),
            ("url_effective", "http://example.com/a?b=c"),
            ("filename_effective", "out.bin"),
            ("num_redirects", "2"),
            ("content_type", "text/html; charset=utf-8"),
            ("exitcode", "22"),
            ("errormsg", "HTTP 404 Not Found"),
            ("digest_sha256", &"ab".repeat(32)),
        ];
        for (name, want) in cases {
            assert_eq!(render(&format!("<%{{{name}}}>"), &r), format!("<{want}>"));
        }
        // Every variable but json is covered above.
        assert_eq!(cases.len(), VARIABLES.len() - 1);
    }

    #[test]
    fn missing_values_are_empty() {
        let all: String = VARIABLES
            .iter()
            .filter(|(n, _)| *n != "json")
            .map(|(n, _)| format!("%{{{n}}}|"))
            .collect();
        assert_eq!(render(&all, &Report::default()), "0|0|0.000000|||0||0|||");
    }

    #[test]
    fn time_total_has_six_decimals() {
        let at = |d| {
            render(
                "%{time_total}",
                &Report {
                    time_total: d,
                    ..Report::default()
                },
            )
        };
        assert_eq!(at(Duration::ZERO), "0.000000");
        assert_eq!(at(Duration::from_nanos(999)), "0.000000");
        assert_eq!(at(Duration::from_micros(1)), "0.000001");
        assert_eq!(at(Duration::from_secs(61)), "61.000000");
    }

    #[test]
    fn escapes() {
        assert_eq!(render(r"a\nb\tc\rd\\e", &full()), "a\nb\tc\rd\\e");
        // Unknown escapes and a trailing backslash stay as they are.
        assert_eq!(render(r"\x\", &full()), r"\x\");
        assert_eq!(render(r"\\n", &full()), r"\n");
        assert_eq!(render("%{http_code}\\n", &full()), "200\n");
    }

    #[test]
    fn percent() {
        assert_eq!(render("100%%", &full()), "100%");
        assert_eq!(render("%%{http_code}", &full()), "%{http_code}");
        assert_eq!(render("%%%{http_code}", &full()), "%200");
        // A '%' that starts nothing is itself.
        assert_eq!(render("50% done %", &full()), "50% done %");
        assert_eq!(render("é%{num_redirects}€", &full()), "é2€");
        assert_eq!(render("", &full()), "");
    }

    #[test]
    fn unknown_variables_are_usage_errors() {
        let m = usage_message("code=%{http_status}\n");
        assert!(m.contains("unknown variable %{http_status}"), "{m}");
        assert!(m.contains("known: http_code,"), "{m}");
        assert!(usage_message("%{}").contains("%{}"));
        assert!(usage_message("%{HTTP_CODE}").contains("HTTP_CODE"));
        // A hostile name does not reach the terminal raw.
        assert!(usage_message("%{\x1b[2J}").contains("\\x1b"));
        assert!(usage_message("%header{x}").contains("%header"));
        assert!(usage_message("%{stdout}").contains("unknown"));
    }

    #[test]
    fn unterminated_is_a_usage_error() {
        let m = usage_message("%{http_code");
        assert!(m.contains("unterminated %{http_code"), "{m}");
        usage_message("ok %{http_code} %{");
    }

    #[test]
    fn needs_sha256() {
        let needs = |t: &str| WriteOut::parse(t).unwrap().needs_sha256();
        assert!(needs("%{digest_sha256}\\n"));
        assert!(needs("%{json}"));
        assert!(!needs("%{http_code} %%{digest_sha256} %%{json}"));
        assert!(!needs(""));
    }

    #[test]
    fn json_exactly() {
        assert_eq!(
            render("%{json}", &full()),
            r#"{"http_code":200,"size_download":1234,"time_total":1.500042,"url_effective":"http://example.com/a?b=c","filename_effective":"out.bin","num_redirects":2,"content_type":"text/html; charset=utf-8","exitcode":0,"errormsg":null,"digest_sha256":"abababababababababababababababababababababababababababababababab"}"#
        );
        assert_eq!(
            render("%{json}\\n", &Report::default()),
            "{\"http_code\":0,\"size_download\":0,\"time_total\":0.000000,\"url_effective\":\"\",\
             \"filename_effective\":null,\"num_redirects\":0,\"content_type\":null,\"exitcode\":0,\
             \"errormsg\":null,\"digest_sha256\":null}\n"
        );
    }

    #[test]
    fn json_escapes_hostile_strings() {
        let r = Report {
            url_effective: "http://h/\"quoted\"\\back".into(),
            content_type: Some("a\nb\r\tc\x1b[31m\x00\x7f\u{9b}".into()),
            errormsg: Some("é € 🦀 \u{2028}".into()),
            ..Report::default()
        };
        let json = render("%{json}", &r);
        assert!(json.contains(r#""url_effective":"http://h/\"quoted\"\\back""#));
        assert!(
            json.contains(r#""content_type":"a\u000ab\u000d\u0009c\u001b[31m\u0000\u007f\u009b""#)
        );
        assert!(json.contains("\"errormsg\":\"é € 🦀 \u{2028}\""));
        assert!(!json.chars().any(char::is_control), "{json:?}");
    }

    #[test]
    fn json_parses_back() {
        let r = Report {
            filename_effective: Some("dir/na\"me\n.txt".into()),
            errormsg: Some("\\\u{1}\u{1f}\u{80}ÿ日本".into()),
            ..full()
        };
        let parsed = json::parse(&render("%{json}", &r)).unwrap();
        let keys: Vec<&str> = parsed.iter().map(|(k, _)| k.as_str()).collect();
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        assert_eq!(keys, names[..names.len() - 1]);
        let get = |k: &str| parsed.iter().find(|(n, _)| n == k).unwrap().1.clone();
        use json::Value::*;
        assert_eq!(get("http_code"), Number("200".into()));
        assert_eq!(get("time_total"), Number("1.500042".into()));
        assert_eq!(get("filename_effective"), Str("dir/na\"me\n.txt".into()));
        assert_eq!(get("errormsg"), Str("\\\u{1}\u{1f}\u{80}ÿ日本".into()));
        assert_eq!(get("content_type"), Str("text/html; charset=utf-8".into()));
        assert_eq!(get("digest_sha256"), Str("ab".repeat(32)));
        let parsed = json::parse(&render("%{json}", &Report::default())).unwrap();
        assert_eq!(get_null_count(&parsed), 4);
    }

    fn get_null_count(parsed: &[(String, json::Value)]) -> usize {
        parsed
            .iter()
            .filter(|(_, v)| *v == json::Value::Null)
            .count()
    }

    proptest::proptest! {
        #[test]
        fn any_strings_survive_json(url in "(?s).*", file in proptest::option::of("(?s).*"),
                                    message in proptest::option::of("\\PC*|[\\x00-\\x7f]*")) {
            let r = Report {
                url_effective: url.clone(),
                filename_effective: file.clone(),
                errormsg: message.clone(),
                ..Report::default()
            };
            let parsed = json::parse(&render("%{json}", &r)).unwrap();
            let as_value = |s: Option<String>| s.map_or(json::Value::Null, json::Value::Str);
            proptest::prop_assert_eq!(&parsed[3].1, &json::Value::Str(url));
            proptest::prop_assert_eq!(&parsed[4].1, &as_value(file));
            proptest::prop_assert_eq!(&parsed[8].1, &as_value(message));
        }
    }

    /// Just enough of a JSON reader (RFC 8259) to check `%{json}`: one flat object
    /// of strings, numbers and nulls, strict about everything else.
    mod json {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Value {
            Null,
            Number(String),
            Str(String),
        }

        pub fn parse(text: &str) -> Result<Vec<(String, Value)>, String> {
            let mut p = Parser {
                chars: text.chars().collect(),
                at: 0,
            };
            p.expect('{')?;
            let mut members = Vec::new();
            if p.peek() == Some('}') {
                p.at += 1;
            } else {
                loop {
                    let key = p.string()?;
                    p.expect(':')?;
                    let value = p.value()?;
                    members.push((key, value));
                    match p.next() {
                        Some(',') => continue,
                        Some('}') => break,
                        other => return Err(format!("expected , or }} at {}: {other:?}", p.at)),
                    }
                }
            }
            match p.next() {
                None => Ok(members),
                Some(c) => Err(format!("trailing {c:?}")),
            }
        }

        struct Parser {
            chars: Vec<char>,
            at: usize,
        }

        impl Parser {
            fn peek(&self) -> Option<char> {
                self.chars.get(self.at).copied()
            }

            fn next(&mut self) -> Option<char> {
                let c = self.peek();
                self.at += 1;
                c
            }

            fn expect(&mut self, want: char) -> Result<(), String> {
                match self.next() {
                    Some(c) if c == want => Ok(()),
                    other => Err(format!("expected {want:?} at {}: {other:?}", self.at)),
                }
            }

            fn value(&mut self) -> Result<Value, String> {
                match self.peek() {
                    Some('"') => self.string().map(Value::Str),
                    Some('n') => {
                        for c in "null".chars() {
                            self.expect(c)?;
                        }
                        Ok(Value::Null)
                    }
                    _ => {
                        let start = self.at;
                        while self
                            .peek()
                            .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '-')
                        {
                            self.at += 1;
                        }
                        let n: String = self.chars[start..self.at].iter().collect();
                        // RFC 8259 §6: int [frac], no leading zeros.
                        let (int, frac) = n.split_once('.').unwrap_or((&n, "0"));
                        let int = int.strip_prefix('-').unwrap_or(int);
                        let digits =
                            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                        if !digits(int) || !digits(frac) || (int.len() > 1 && int.starts_with('0'))
                        {
                            return Err(format!("bad number {n:?}"));
                        }
                        Ok(Value::Number(n))
                    }
                }
            }

            fn string(&mut self) -> Result<String, String> {
                self.expect('"')?;
                let mut out = String::new();
                loop {
                    match self.next() {
                        None => return Err("unterminated string".into()),
                        Some('"') => return Ok(out),
                        Some('\\') => match self.next() {
                            Some('"') => out.push('"'),
                            Some('\\') => out.push('\\'),
                            Some('/') => out.push('/'),
                            Some('b') => out.push('\u{8}'),
                            Some('f') => out.push('\u{c}'),
                            Some('n') => out.push('\n'),
                            Some('r') => out.push('\r'),
                            Some('t') => out.push('\t'),
                            Some('u') => {
                                let hex: String = (0..4).filter_map(|_| self.next()).collect();
                                let code = u32::from_str_radix(&hex, 16)
                                    .map_err(|_| format!("bad \\u{hex}"))?;
                                // We never write surrogates; reject them here.
                                out.push(char::from_u32(code).ok_or("surrogate")?);
                            }
                            other => return Err(format!("bad escape {other:?}")),
                        },
                        Some(c) if u32::from(c) < 0x20 => {
                            return Err(format!("raw control {c:?} in a string"));
                        }
                        Some(c) => out.push(c),
                    }
                }
            }
        }
    }
}
