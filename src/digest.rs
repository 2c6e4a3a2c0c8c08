//! Checksums computed while streaming: `--checksum ALGO:HEX`, the incremental
//! [`Hasher`], and the server's own RFC 9530 Content-Digest / Repr-Digest fields.

use crate::response::{Field, Head, field_values};
use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Longest Content-Digest or Repr-Digest field line we parse, in bytes. A sha-512
/// member is about 100 bytes; anything near this size is not a digest we can use,
/// and skipping it keeps a hostile field from costing more than this much work.
pub const MAX_DIGEST_FIELD_BYTES: usize = 4 * 1024;

/// The hash functions fetch can check. Both are SHA-2 (FIPS 180-4), the two that
/// RFC 9530 §5 registers as "Active".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used by `--checksum` and in messages: `sha256`, `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The key in a Content-Digest / Repr-Digest dictionary (RFC 9530 §5, the
    /// "Hash Algorithms for HTTP Digest Fields" registry).
    pub fn field_key(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha-256",
            Algorithm::Sha512 => "sha-512",
        }
    }

    /// Length of a digest, in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        [Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn from_field_key(key: &[u8]) -> Option<Algorithm> {
        [Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.field_key().as_bytes().eq_ignore_ascii_case(key))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--checksum ALGO:HEX`: parsed and validated at the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub expected: Vec<u8>,
}

impl FromStr for Checksum {
    type Err = String;

    /// `sha256:<64 hex digits>` or `sha512:<128 hex digits>`; the algorithm name
    /// and the hex digits may be in either case (sha256sum prints lowercase,
    /// some release pages uppercase).
    fn from_str(s: &str) -> Result<Checksum, String> {
        let Some((name, hex)) = s.split_once(':') else {
            return Err("expected ALGO:HEX, such as sha256:<64 hex digits>".into());
        };
        let algorithm = Algorithm::from_name(name).ok_or_else(|| {
            format!(
                "unknown checksum algorithm '{}' (sha256 or sha512)",
                crate::escape::for_message(name.as_bytes())
            )
        })?;
        let want = algorithm.digest_len() * 2;
        if let Some((at, c)) = hex
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(format!(
                "'{}' at position {} of the {algorithm} checksum is not a hex digit",
                crate::escape::for_message(c.to_string().as_bytes()),
                at + 1
            ));
        }
        // All ASCII now, so bytes are characters.
        if hex.len() != want {
            return Err(format!(
                "a {algorithm} checksum has {want} hex digits, not {}",
                hex.len()
            ));
        }
        let expected = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| hex_value(pair[0]) << 4 | hex_value(pair[1]))
            .collect();
        Ok(Checksum {
            algorithm,
            expected,
        })
    }
}

/// The value of one hex digit; only called on bytes that passed `is_ascii_hexdigit`.
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Incremental hash (sha2 under the hood): fed each buffer of the body as it
/// streams past, so memory does not grow with the body (DESIGN §5).
#[derive(Clone)]
pub struct Hasher {
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Hasher { state }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything passed to [`update`](Hasher::update).
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// Running hashes of one byte stream, at most one per algorithm.
#[derive(Debug, Clone, Default)]
pub struct Hashes {
    running: Vec<Hasher>,
}

impl Hashes {
    /// Also computes `algorithm` from now on (a no-op if it already does).
    pub fn add(&mut self, algorithm: Algorithm) {
        if !self.running.iter().any(|h| h.algorithm() == algorithm) {
            self.running.push(Hasher::new(algorithm));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for h in &mut self.running {
            h.update(bytes);
        }
    }

    /// Forgets everything hashed so far (a body that starts over).
    pub fn reset(&mut self) {
        for h in &mut self.running {
            *h = Hasher::new(h.algorithm());
        }
    }

    /// The digest so far, if `algorithm` is being computed.
    pub fn digest(&self, algorithm: Algorithm) -> Option<Vec<u8>> {
        self.running
            .iter()
            .find(|h| h.algorithm() == algorithm)
            .map(|h| h.clone().finish())
    }
}

/// A reader that hashes what passes through it.
pub struct Hashing<'h, R> {
    inner: R,
    hashes: &'h mut Hashes,
}

impl<'h, R> Hashing<'h, R> {
    pub fn new(inner: R, hashes: &'h mut Hashes) -> Hashing<'h, R> {
        Hashing { inner, hashes }
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hashes.update(&buf[..n]);
        Ok(n)
    }
}

/// A digest the server sent for the body: RFC 9530 Content-Digest or Repr-Digest.
///
/// They cover different bytes (RFC 9530 §2, §3): Content-Digest the content as
/// framed, after transfer codings are removed but before any content coding
/// (`--compressed`) is decoded; Repr-Digest the whole selected representation,
/// which for a 206 (a resumed download) is more than this response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDigest {
    /// `"Content-Digest"` or `"Repr-Digest"`.
    pub field: &'static str,
    pub algorithm: Algorithm,
    pub expected: Vec<u8>,
    /// Sent after a chunked body, as a trailer field (RFC 9110 §6.5).
    pub in_trailer: bool,
}

/// The digest fields we read, with the spelling used in [`ServerDigest::field`].
const DIGEST_FIELDS: [&str; 2] = ["Content-Digest", "Repr-Digest"];

/// Every sha-256 / sha-512 entry of Content-Digest and Repr-Digest.
///
/// Both fields are Structured Field Dictionaries (RFC 9530 §2–3, RFC 8941 §3.2):
/// `sha-256=:BASE64:, sha-512=:BASE64:`. Several lines of one field form one
/// dictionary (RFC 8941 §4.2), in which a repeated key overrides the earlier one
/// (§4.2.2). Where RFC 8941 would reject the whole field, this parser is more
/// forgiving, because a digest is a check we add, not something the transfer
/// needs: keys match case-insensitively, other algorithms (md5, sha, unixsum:
/// "Deprecated" in RFC 9530 §5) are ignored, parameters after `;` are ignored, and a
/// malformed member (bad base64, wrong length, not a byte sequence) is skipped
/// rather than failing the field. Field lines longer than
/// [`MAX_DIGEST_FIELD_BYTES`] are skipped. `fields` are a head's, or with
/// `in_trailer` a chunked body's trailer fields.
pub fn server_digests(fields: &[Field], in_trailer: bool) -> Vec<ServerDigest> {
    let mut found: Vec<ServerDigest> = Vec::new();
    for field in DIGEST_FIELDS {
        for line in field_values(fields, field) {
            if line.len() > MAX_DIGEST_FIELD_BYTES {
                continue;
            }
            for (algorithm, expected) in split_members(line).filter_map(parse_member) {
                let digest = ServerDigest {
                    field,
                    algorithm,
                    expected,
                    in_trailer,
                };
                match found
                    .iter_mut()
                    .find(|d| d.field == field && d.algorithm == algorithm)
                {
                    Some(earlier) => *earlier = digest,
                    None => found.push(digest),
                }
            }
        }
    }
    found
}

/// Whether the head's `Trailer` field announces Content-Digest or Repr-Digest
/// (RFC 9110 §6.6.2): then the body must be hashed while it streams, before
/// the trailer says with which algorithm.
pub fn announced_in_trailer(head: &Head) -> bool {
    head.values("trailer")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|name| {
            DIGEST_FIELDS
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
        })
}

/// Splits a dictionary at the commas between members: those outside a String
/// (`"…"`, with `\` escapes, RFC 8941 §3.3.3), where a parameter of a member we do
/// not know may hide one.
fn split_members(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in text.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b',' && !quoted {
                rest = Some(&text[i + 1..]);
                return Some(&text[..i]);
            }
        }
        rest = None;
        Some(text)
    })
}

/// One dictionary member, `key=:BASE64:` with optional `;parameters`, when it is a
/// digest we can check. Optional whitespace surrounds members (RFC 8941 §4.2.2);
/// none is allowed around the `=`.
fn parse_member(member: &[u8]) -> Option<(Algorithm, Vec<u8>)> {
    let member = member.trim_ascii();
    let (key, value) = member.split_at(member.iter().position(|&b| b == b'=')?);
    let algorithm = Algorithm::from_field_key(key)?;
    let value = &value[1..];
    // A byte sequence runs to its closing ':' (RFC 8941 §3.3.5); parameters follow.
    let inner = value.strip_prefix(b":")?;
    let end = inner.iter().position(|&b| b == b':')?;
    let after = &inner[end + 1..];
    if !(after.is_empty() || after.starts_with(b";")) {
        return None;
    }
    let expected = decode_base64(&inner[..end])?;
    (expected.len() == algorithm.digest_len()).then_some((algorithm, expected))
}

/// Decodes standard base64 (RFC 4648 §4), rejecting any byte outside its alphabet
/// and misplaced or excess `=`. Missing padding and non-zero pad bits are accepted,
/// as RFC 8941 §4.2.7 asks of byte-sequence parsers; the caller's length check
/// still catches a truncated digest.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let data = match text.iter().position(|&b| b == b'=') {
        Some(at) => {
            let padding = &text[at..];
            // Padding only completes the last group of four, and only with '='.
            if !text.len().is_multiple_of(4)
                || padding.len() > 2
                || padding.iter().any(|&b| b != b'=')
            {
                return None;
            }
            &text[..at]
        }
        None => text,
    };
    // One character left over carries only 6 bits: not even one byte.
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    for group in data.chunks(4) {
        let mut n: u32 = 0;
        for &c in group {
            n = n << 6 | u32::from(base64_value(c)?);
        }
        // Left-align the group's bits in 24, then take the whole bytes.
        n <<= 6 * (4 - group.len());
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

/// The 6-bit value of one base64 character (RFC 4648 §4, Table 1).
fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Lowercase hex, as sha256sum prints it.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_sets_restart_and_add_once() {
        let mut hashes = super::Hashes::default();
        assert!(hashes.is_empty());
        hashes.add(super::Algorithm::Sha256);
        hashes.add(super::Algorithm::Sha256);
        hashes.update(b"garbage");
        hashes.reset();
        hashes.update(b"abc");
        assert_eq!(
            super::to_hex(&hashes.digest(super::Algorithm::Sha256).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hashes.digest(super::Algorithm::Sha512), None);
    }

    use super::*;
    use crate::response::Field;

    // FIPS 180-2 Appendix B.1 and C.1: the digests of "abc".
    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const SHA512_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn head(fields: &[(&str, &str)]) -> Head {
        Head {
            raw: Vec::new(),
            minor_version: 1,
            status: 200,
            reason: "OK".into(),
            fields: fields
                .iter()
                .map(|(name, value)| Field {
                    name: (*name).into(),
                    value: value.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn hash(algorithm: Algorithm, pieces: &[&[u8]]) -> String {
        let mut h = Hasher::new(algorithm);
        for piece in pieces {
            h.update(piece);
        }
        assert_eq!(h.algorithm(), algorithm);
        to_hex(&h.finish())
    }

    #[test]
    fn checksums_that_parse() {
        let c: Checksum = format!("sha256:{SHA256_ABC}").parse().unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(to_hex(&c.expected), SHA256_ABC);

        let upper = format!("SHA512:{}", SHA512_ABC.to_uppercase());
        let c: Checksum = upper.parse().unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha512);
        assert_eq!(to_hex(&c.expected), SHA512_ABC);
    }

    #[test]
    fn checksums_that_do_not() {
        let err = |s: &str| s.parse::<Checksum>().unwrap_err();
        assert!(err(SHA256_ABC).contains("ALGO:HEX"));
        assert!(err(&format!("md5:{SHA256_ABC}")).contains("unknown checksum algorithm 'md5'"));
        assert!(err(&format!("sha-256:{SHA256_ABC}")).contains("unknown"));
        assert_eq!(
            err(&format!("sha256:{}", &SHA256_ABC[1..])),
            "a sha256 checksum has 64 hex digits, not 63"
        );
        assert!(err(&format!("sha256:{SHA256_ABC}00")).contains("not 66"));
        // A sha512 length under sha256 and the other way round.
        assert!(err(&format!("sha256:{SHA512_ABC}")).contains("not 128"));
        assert!(err(&format!("sha512:{SHA256_ABC}")).contains("not 64"));
        assert_eq!(
            err(&format!("sha256:{}g", &SHA256_ABC[1..])),
            "'g' at position 64 of the sha256 checksum is not a hex digit"
        );
        assert!(err(&format!("sha256: {}", &SHA256_ABC[1..])).contains("' ' at position 1"));
        assert!(err("sha256:").contains("not 0"));
        assert!(err(&format!("sha256:é{}", &SHA256_ABC[1..])).contains("'é'"));
        // A control byte in the input does not reach the terminal raw.
        assert!(err("\x1b[31m:00").contains("\\x1b"));
    }

    #[test]
    fn fips_180_known_answers_in_pieces() {
        assert_eq!(hash(Algorithm::Sha256, &[b"abc"]), SHA256_ABC);
        assert_eq!(
            hash(Algorithm::Sha256, &[b"a", b"", b"b", b"c"]),
            SHA256_ABC
        );
        assert_eq!(hash(Algorithm::Sha512, &[b"ab", b"c"]), SHA512_ABC);
        assert_eq!(hash(Algorithm::Sha512, &[b"a", b"bc", b""]), SHA512_ABC);
        // The empty message.
        assert_eq!(
            hash(Algorithm::Sha256, &[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn pieces_across_block_boundaries() {
        // FIPS 180-2 B.2: a two-block message, cut at every position.
        let msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let want = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
        for cut in 0..=msg.len() {
            let (a, b) = msg.split_at(cut);
            assert_eq!(hash(Algorithm::Sha256, &[a, b]), want, "cut at {cut}");
        }
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(to_hex(&[]), "");
    }

    #[test]
    fn digest_trailers_are_announced_by_name() {
        assert!(announced_in_trailer(&head(&[(
            "Trailer",
            "Content-Digest"
        )])));
        assert!(announced_in_trailer(&head(&[(
            "Trailer",
            "expires, repr-digest"
        )])));
        assert!(!announced_in_trailer(&head(&[("Trailer", "Expires")])));
        assert!(!announced_in_trailer(&head(&[])));
        let trailer = [Field {
            name: "content-digest".into(),
            value: format!("sha-256=:{}:", "A".repeat(43) + "=").into_bytes(),
        }];
        let found = server_digests(&trailer, true);
        assert_eq!(found.len(), 1);
        assert!(found[0].in_trailer);
    }

    #[test]
    fn rfc_9530_examples() {
        // RFC 9530 Appendix B.1: the content is `{"hello": "world"}` and a line
        // feed (Content-Length: 19), with these digests (also in §2 and §3).
        let content = b"{\"hello\": \"world\"}\n";
        let h = head(&[
            (
                "Content-Digest",
                "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:",
            ),
            (
                "Repr-Digest",
                "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8\
                 MjkM7iw7yZ/WkppmM44T3qg==:",
            ),
        ]);
        let digests = server_digests(&h.fields, false);
        assert_eq!(digests.len(), 2);
        for (digest, field, algorithm) in [
            (&digests[0], "Content-Digest", Algorithm::Sha256),
            (&digests[1], "Repr-Digest", Algorithm::Sha512),
        ] {
            assert_eq!((digest.field, digest.algorithm), (field, algorithm));
            let mut hasher = Hasher::new(algorithm);
            hasher.update(content);
            assert_eq!(digest.expected, hasher.finish());
        }
        // Appendix B.2: empty content.
        let h = head(&[(
            "Content-Digest",
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
        )]);
        assert_eq!(
            server_digests(&h.fields, false)[0].expected,
            Hasher::new(Algorithm::Sha256).finish()
        );
    }

    #[test]
    fn both_fields_and_both_algorithms() {
        let b64_256 = crate::request::base64(&[7; 32]);
        let b64_512 = crate::request::base64(&[9; 64]);
        let h = head(&[
            (
                "content-digest",
                &format!("sha-256=:{b64_256}:, sha-512=:{b64_512}:"),
            ),
            ("REPR-DIGEST", &format!("sha-512=:{b64_512}:")),
        ]);
        assert_eq!(
            server_digests(&h.fields, false),
            vec![
                ServerDigest {
                    field: "Content-Digest",
                    algorithm: Algorithm::Sha256,
                    expected: vec![7; 32],
                    in_trailer: false,
                },
                ServerDigest {
                    field: "Content-Digest",
                    algorithm: Algorithm::Sha512,
                    expected: vec![9; 64],
                    in_trailer: false,
                },
                ServerDigest {
                    field: "Repr-Digest",
                    algorithm: Algorithm::Sha512,
                    expected: vec![9; 64],
                    in_trailer: false,
                },
            ]
        );
    }

    #[test]
    fn other_algorithms_and_malformed_members_are_ignored() {
        let good = crate::request::base64(&[1; 32]);
        let short = crate::request::base64(&[1; 31]);
        let value = format!(
            "md5=:HUXZLQLMuI/KZ5KDcJPcOA==:, unixsum=30637, sha-256=:{good}!:, \
             sha-256=\"{good}\", sha-256={good}, sha-256=:{short}:, sha-256=:{good}, \
             id-sha-256=:{good}:, sha-512, =:{good}:, sha-256=:{good}:x, \
             SHA-256=:{good}:;p=\"a,b\";q"
        );
        let h = head(&[("Content-Digest", &value)]);
        assert_eq!(
            server_digests(&h.fields, false),
            vec![ServerDigest {
                field: "Content-Digest",
                algorithm: Algorithm::Sha256,
                expected: vec![1; 32],
                in_trailer: false,
            }]
        );
        // Nothing usable at all.
        let h = head(&[("Content-Digest", "sha-256=:!!!!:"), ("Repr-Digest", "")]);
        assert!(server_digests(&h.fields, false).is_empty());
        assert!(server_digests(&head(&[]).fields, false).is_empty());
    }

    #[test]
    fn whitespace_around_members() {
        let good = crate::request::base64(&[2; 32]);
        let h = head(&[("Repr-Digest", &format!(" \t sha-256=:{good}: \t,  "))]);
        assert_eq!(server_digests(&h.fields, false)[0].expected, vec![2; 32]);
        // None is allowed inside a member.
        let h = head(&[("Repr-Digest", &format!("sha-256 =:{good}:"))]);
        assert!(server_digests(&h.fields, false).is_empty());
        let h = head(&[("Repr-Digest", &format!("sha-256=: {good}:"))]);
        assert!(server_digests(&h.fields, false).is_empty());
    }

    #[test]
    fn several_lines_are_one_dictionary_and_the_last_key_wins() {
        let first = crate::request::base64(&[3; 32]);
        let last = crate::request::base64(&[4; 32]);
        let h = head(&[
            ("Content-Digest", &format!("sha-256=:{first}:")),
            ("Content-Type", "text/plain"),
            ("Content-Digest", &format!("sha-256=:{last}:")),
        ]);
        let digests = server_digests(&h.fields, false);
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].expected, vec![4; 32]);
    }

    #[test]
    fn overlong_field_lines_are_skipped() {
        let good = crate::request::base64(&[5; 32]);
        let member = format!("sha-256=:{good}:");
        let pad = " ".repeat(MAX_DIGEST_FIELD_BYTES - member.len());
        let h = head(&[("Content-Digest", &format!("{pad}{member}"))]);
        assert_eq!(server_digests(&h.fields, false).len(), 1);
        let h = head(&[("Content-Digest", &format!(" {pad}{member}"))]);
        assert!(server_digests(&h.fields, false).is_empty());
    }

    #[test]
    fn base64_decoding() {
        let decode = |s: &str| decode_base64(s.as_bytes());
        for input in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let encoded = crate::request::base64(input);
            assert_eq!(decode(&encoded).as_deref(), Some(input), "{encoded}");
            // Unpadded is accepted (RFC 8941 §4.2.7).
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(decode(unpadded).as_deref(), Some(input), "{unpadded}");
        }
        assert_eq!(decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        // Non-zero pad bits are tolerated (RFC 8941 §4.2.7).
        assert_eq!(decode("Zh==").unwrap(), b"f");
        for bad in [
            "Zg=",
            "Zg===",
            "Z===",
            "====",
            "Zm9v=",
            "Z",
            "Zm9vY",
            "Zg==Zg==",
            "Z=g=",
            "Zm 9v",
            "Zm9v\n",
            "Zm-_",
            "Zm9\u{e9}",
            "Zm.v",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
