//! Range requests (RFC 9110 §14, §13.1.5): what a cut body can continue from
//! (a validator for If-Range and the whole length), and whether a 206 or a 416
//! answers the range request that was sent.

use crate::body::BodyKind;
use crate::error::Error;
use crate::escape;
use crate::output::Resume;
use crate::response::Head;

/// A range request: the bytes from `from`, of the version `validator`
/// (If-Range), of a whole `total` bytes long when that is known.
pub struct Asked<'a> {
    pub from: u64,
    pub validator: &'a str,
    pub total: Option<u64>,
}

impl Asked<'_> {
    /// A 416 whose Content-Range says the whole length is exactly what is
    /// held, and is the whole length known before (if any): the body was
    /// complete, only not renamed.
    pub fn is_already_whole(&self, head: &Head) -> bool {
        head.status == 416
            && self.total.is_none_or(|total| total == self.from)
            && head
                .value("content-range")
                .and_then(|v| v.trim().strip_prefix("bytes */"))
                .and_then(|t| t.trim().parse::<u64>().ok())
                == Some(self.from)
    }

    /// The one check of a 206 (exit 33 if it fails): it must hold exactly the
    /// rest of the body, from `from` to the end of the whole length (the one
    /// known before, if any), with a Content-Length that agrees, and be of the
    /// version If-Range named: a server that ignores If-Range would otherwise
    /// have two versions stitched together.
    pub fn check_partial(&self, head: &Head) -> Result<(), Error> {
        let (from, known) = (self.from, self.total);
        let shown = escape::for_message(head.value("content-range").unwrap_or("").as_bytes());
        let why = match content_range(head) {
            Some((first, last, total))
                if first == from
                    && total.is_none_or(|t| known.is_none_or(|k| k == t))
                    && total.or(known).is_none_or(|t| last + 1 == t) =>
            {
                let length = last - first + 1;
                match (
                    BodyKind::of(head, false)?,
                    other_version(head, self.validator),
                ) {
                    (BodyKind::Length(n), _) if n != length => format!(
                        "Content-Range '{shown}' is {length} bytes, Content-Length says {n}"
                    ),
                    (_, Some(other)) => format!(
                        "the server ignored If-Range: it sent part of another version ({other}, not {})",
                        escape::for_message(self.validator.as_bytes())
                    ),
                    _ => return Ok(()),
                }
            }
            _ => format!(
                "asked for the bytes from {from}{}, got Content-Range '{shown}'",
                self.of_total()
            ),
        };
        Err(Error::Resume(why))
    }

    /// " of N" when the whole length is known, for messages.
    pub fn of_total(&self) -> String {
        match self.total {
            Some(total) => format!(" of {total}"),
            None => String::new(),
        }
    }
}

/// What a cut body could continue from, judged by the response that carried
/// it: the server must accept ranges and name a validator for If-Range. RFC
/// 9110 §13.1.5: that is a strong ETag, or Last-Modified when there is no
/// ETag at all; a weak ETag is neither sent nor a reason to send the date, so
/// then there is no resume. A 206 keeps the validator it was asked with.
/// `url` is the URL the body was asked from.
pub fn resume_from(head: &Head, previous: Option<Resume>, url: String) -> Option<Resume> {
    if head.status == 206 {
        let previous = previous?;
        let total = content_range(head).and_then(|(_, _, total)| total);
        return Some(Resume {
            validator: previous.validator,
            total: total.or(previous.total),
            url: Some(url),
        });
    }
    let accepts = head
        .value("accept-ranges")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes"));
    if !accepts {
        return None;
    }
    let validator = match head.value("etag").map(str::trim) {
        Some(etag) if etag.starts_with('"') => etag,
        Some(_weak) => return None,
        None => head.value("last-modified")?.trim(),
    };
    Some(Resume {
        validator: validator.to_owned(),
        total: head
            .value("content-length")
            .and_then(|v| v.trim().parse().ok()),
        url: Some(url),
    })
}

/// A 206 to a request that asked for no range: only one whose Content-Range
/// is the whole resource is the whole body; part of it would become a FILE
/// that is not the file.
pub fn check_unasked_partial(head: &Head) -> Result<(), Error> {
    match content_range(head) {
        Some((0, last, Some(total))) if last + 1 == total => Ok(()),
        _ => Err(Error::Malformed(format!(
            "HTTP 206 Partial Content to a request for the whole resource ({})",
            match head.value("content-range") {
                Some(v) => format!("Content-Range '{}'", escape::for_message(v.as_bytes())),
                None => "no Content-Range".into(),
            }
        ))),
    }
}

/// `Content-Range: bytes first-last/total` (total may be `*`), RFC 9110 §14.4.
pub fn content_range(head: &Head) -> Option<(u64, u64, Option<u64>)> {
    let value = head.value("content-range")?.trim();
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    // RFC 9110 §14.4: the last byte comes before the whole length's end (and
    // so `last + 1` is a length, never an overflow).
    let valid = first <= last && last < total.unwrap_or(u64::MAX);
    valid.then_some((first, last, total))
}

/// The 206's own validator, when it is of the kind If-Range sent and differs
/// from it: an ETag against an ETag, a Last-Modified against a date.
fn other_version(head: &Head, sent: &str) -> Option<String> {
    let is_date = !sent.starts_with('"') && !sent.starts_with("W/");
    if is_date {
        let got = head.value("last-modified")?.trim();
        let same = match (
            httpdate::parse_http_date(got),
            httpdate::parse_http_date(sent),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => got == sent,
        };
        (!same).then(|| format!("Last-Modified {}", escape::for_message(got.as_bytes())))
    } else {
        let got = head.value("etag")?.trim();
        (got != sent).then(|| format!("ETag {}", escape::for_message(got.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_io::head;
    use proptest::prelude::*;

    const URL: &str = "http://h/f";

    proptest! {
        /// Whatever numbers a server puts in Content-Range and Content-Length,
        /// and whatever was asked, the checks answer without panicking (no
        /// arithmetic overflow), and accept only exactly the rest.
        #[test]
        fn range_answers_never_panic(
            first in prop_oneof![any::<u64>(), u64::MAX - 3..=u64::MAX],
            span in prop_oneof![0u64..4, any::<u64>()],
            total_kind in 0u8..3, length_kind in 0u8..3,
            other in any::<u64>(), asked_same in any::<bool>(), known_same in any::<bool>(),
        ) {
            // Often the consistent answer, often not: both sides get tried.
            let last = first.saturating_add(span);
            let total = match total_kind {
                0 => None,
                1 => last.checked_add(1),
                _ => Some(other),
            };
            let length = match length_kind {
                0 => None,
                1 => (last - first).checked_add(1),
                _ => Some(other),
            };
            let from = if asked_same { first } else { other };
            let known = if known_same { total } else { Some(other) };
            let total_text = total.map_or("*".to_owned(), |t| t.to_string());
            let mut text = format!(
                "HTTP/1.1 206 Partial\nETag: \"v\"\nContent-Range: bytes {first}-{last}/{total_text}"
            );
            if let Some(n) = length {
                text.push_str(&format!("\nContent-Length: {n}"));
            }
            let h = head(&text);
            let asked = Asked { from, validator: "\"v\"", total: known };
            let accepted = asked.check_partial(&h).is_ok();
            if accepted {
                prop_assert_eq!(first, from);
                prop_assert!(last < u64::MAX);
                if let Some(t) = total.or(known) {
                    prop_assert_eq!(last + 1, t);
                }
                if let Some(n) = length {
                    prop_assert_eq!(n, last - first + 1);
                }
            }
            let _ = asked.is_already_whole(&h);
            let _ = resume_from(&h, None, URL.into());
        }
    }

    #[test]
    fn resume_needs_ranges_and_a_strong_validator() {
        let h = head("HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"v1\"\nContent-Length: 10");
        let r = resume_from(&h, None, URL.into()).unwrap();
        assert_eq!(r.validator, "\"v1\"");
        assert_eq!(r.total, Some(10));
        let weak = head("HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: W/\"v1\"");
        assert!(resume_from(&weak, None, URL.into()).is_none());
        // Never a date when there is an entity tag, even a weak one.
        let weak_and_dated = head(
            "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: W/\"v1\"\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT",
        );
        assert!(resume_from(&weak_and_dated, None, URL.into()).is_none());
        let dated = head(
            "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT",
        );
        assert_eq!(
            resume_from(&dated, None, URL.into()).unwrap().validator,
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // A 200 that restarts a body is a new version: nothing of the old
        // validator or length carries over.
        let old = Some(Resume {
            validator: "\"v1\"".into(),
            total: Some(10),
            url: Some(URL.into()),
        });
        let new = head("HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: W/\"v2\"");
        assert!(resume_from(&new, old.clone(), URL.into()).is_none());
        let partial = head("HTTP/1.1 206 Partial\nContent-Range: bytes 5-9/*");
        assert_eq!(resume_from(&partial, old.clone(), URL.into()), old);
        let no_ranges = head("HTTP/1.1 200 OK\nETag: \"v1\"");
        assert!(resume_from(&no_ranges, None, URL.into()).is_none());
    }

    #[test]
    fn content_range_forms() {
        let h = head("HTTP/1.1 206 Partial\nContent-Range: bytes 5-9/10");
        assert_eq!(content_range(&h), Some((5, 9, Some(10))));
        let h = head("HTTP/1.1 206 Partial\nContent-Range: bytes 5-9/*");
        assert_eq!(content_range(&h), Some((5, 9, None)));
        for bad in [
            "bytes 9-5/10",
            "bytes */10",
            "items 1-2/3",
            "bytes 1-2",
            "bytes 5-20/10",
            "bytes 5-10/10",
            "bytes 0-18446744073709551615/*",
        ] {
            let h = head(&format!("HTTP/1.1 206 Partial\nContent-Range: {bad}"));
            assert_eq!(content_range(&h), None, "{bad}");
        }
    }
}
