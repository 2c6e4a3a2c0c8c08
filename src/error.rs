//! The library's one error type and `exit_code()`, the only place exit codes are chosen (DESIGN §4).

use std::io;
use std::path::PathBuf;

/// Everything that can make a transfer fail. `Display` is the "why" of the one line
/// `fetch: <what>: <why>` that `main` prints; `At` adds the "what".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value that makes no sense (exit 2).
    #[error("{0}")]
    Usage(String),

    /// A scheme other than http/https (exit 1).
    #[error("unsupported scheme '{0}' (only http and https)")]
    Scheme(String),

    /// A proxy URL whose scheme is not http (exit 1).
    #[error("unsupported proxy scheme '{0}' (only http:// proxies)")]
    ProxyScheme(String),

    /// A proxy variable that cannot be used, for a URL that would go through
    /// it (exit 1 or 3).
    #[error("{} (--proxy '' or no_proxy goes around it)", .0.why)]
    UnusableProxy(crate::config::UnusableProxy),

    /// A redirect from https to http (exit 1).
    #[error(
        "refusing to follow a redirect from https to http: {0} (--no-follow keeps the redirect)"
    )]
    Downgrade(String),

    /// A redirect to a scheme other than http/https (exit 1).
    #[error(
        "refusing to follow a redirect to {0}: only http and https (--no-follow keeps the redirect)"
    )]
    RedirectScheme(String),

    /// A URL that cannot be parsed or holds bytes a request line cannot carry (exit 3).
    #[error("malformed URL: {0}")]
    Url(String),

    /// The proxy's host name did not resolve (exit 5).
    #[error("could not resolve proxy {host}: {why}")]
    ProxyResolve { host: String, why: String },

    /// The host name did not resolve to a usable address (exit 6).
    #[error("could not resolve host {host}: {why}")]
    Resolve { host: String, why: String },

    /// No address accepted the connection (exit 7).
    #[error("could not connect to {addr}: {}", plain(source))]
    Connect { addr: String, source: io::Error },

    /// Connect timeout, read timeout or `--max-time` (exit 28).
    #[error("{0}")]
    Timeout(String),

    /// A response that breaks HTTP/1.1 or one of our limits (exit 8).
    #[error("malformed response: {0}")]
    Malformed(String),

    /// The body ended before its framing said it would (exit 18).
    #[error("{0}")]
    Truncated(String),

    /// A proxy answered CONNECT with something other than 2xx (exit 56).
    #[error("the proxy refused the tunnel: HTTP {status} {reason} (--proxy, https_proxy)")]
    ProxyRefused { status: u16, reason: String },

    /// The final status is >= 400 and `--no-fail` was not given (exit 22).
    #[error("HTTP {status} {reason} ({})", status_hint(*status))]
    Status { status: u16, reason: String },

    /// Writing the output failed (exit 23).
    #[error("{}: {}", path.display(), plain(source))]
    Write { path: PathBuf, source: io::Error },

    /// A resumed download cannot continue where it stopped (exit 33).
    #[error("cannot resume: {0}")]
    Resume(String),

    /// The TLS handshake failed (exit 35).
    #[error("TLS handshake failed: {0}")]
    Tls(String),

    /// The connection was reset or closed in the middle of the TLS handshake:
    /// a failed handshake (exit 35, as curl says), but a cut connection, so
    /// worth a retry.
    #[error("TLS handshake failed: {0}")]
    HandshakeCut(String),

    /// More redirects than `--max-redirs`, or a loop (exit 47).
    #[error("{0}")]
    Redirects(String),

    /// The server's certificate is not trusted for this host (exit 60).
    #[error("certificate not trusted: {0}")]
    Certificate(String),

    /// A `--compressed` body that cannot be decoded (exit 61).
    #[error("cannot decode the body: {0} (without --compressed it is saved as sent)")]
    Decode(String),

    /// The body's digest is not the one expected: `--checksum`, or the server's
    /// own Content-Digest / Repr-Digest (exit 110).
    #[error("checksum mismatch: {0}")]
    Checksum(String),

    /// The `--cacert` file cannot be used (exit 77).
    #[error("{}: {why} (--cacert)", path.display())]
    CaFile { path: PathBuf, why: String },

    /// `SSL_CERT_FILE` or `SSL_CERT_DIR` names roots that cannot be used (exit 77).
    #[error("{var}={}: {why} (fix or unset {var}, or use --cacert FILE)", path.display())]
    CertEnv {
        var: &'static str,
        path: PathBuf,
        why: String,
    },

    /// The server closed the connection before sending a single byte (exit 52).
    #[error("the server closed the connection without sending a response")]
    EmptyReply,

    /// The connection closed in the middle of the response head (exit 8, like
    /// any head that is not one; retried like a cut body).
    #[error("malformed response: the connection closed in the middle of the response head")]
    HeadCut,

    /// The proxy's answer to CONNECT never came whole: it closed, or sent
    /// something that is not a response head (exit 56).
    #[error("the proxy did not answer the tunnel request: {0} (--proxy, https_proxy)")]
    ProxyTunnel(String),

    /// A reset or other failure of the connection after it was established (exit 56).
    #[error("{what}: {}", plain(source))]
    Network {
        what: &'static str,
        source: io::Error,
    },

    /// Whoever reads our stdout stopped reading (`fetch URL | head`): quiet success.
    #[error("stdout was closed")]
    BrokenPipe,

    /// Another error, with what it happened to (a URL, usually).
    #[error("{what}: {source}")]
    At { what: String, source: Box<Error> },
}

impl Error {
    /// The process exit code for this error: curl's numbers (DESIGN §4).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scheme(_)
            | Error::ProxyScheme(_)
            | Error::Downgrade(_)
            | Error::RedirectScheme(_) => 1,
            Error::Usage(_) => 2,
            Error::Url(_) => 3,
            Error::ProxyResolve { .. } => 5,
            Error::Resolve { .. } => 6,
            Error::Connect { .. } => 7,
            Error::Malformed(_) | Error::HeadCut => 8,
            Error::Truncated(_) => 18,
            Error::Status { .. } => 22,
            Error::Write { .. } => 23,
            Error::Timeout(_) => 28,
            Error::Resume(_) => 33,
            Error::Tls(_) | Error::HandshakeCut(_) => 35,
            Error::Redirects(_) => 47,
            Error::EmptyReply => 52,
            Error::Network { .. } | Error::ProxyRefused { .. } | Error::ProxyTunnel(_) => 56,
            Error::Certificate(_) => 60,
            Error::Decode(_) => 61,
            Error::Checksum(_) => 110,
            Error::CaFile { .. } | Error::CertEnv { .. } => 77,
            Error::UnusableProxy(p) => p.exit_code,
            Error::BrokenPipe => 0,
            Error::At { source, .. } => source.exit_code(),
        }
    }

    /// The HTTP status behind this error, if a response said no.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::At { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Whether trying again may succeed (DESIGN §6 "Retries"): connection
    /// failures, resets, cut bodies, timeouts and the statuses servers use for
    /// "not now" (408, 429, 500, 502, 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout(_)
            | Error::Network { .. }
            | Error::Truncated(_)
            | Error::HandshakeCut(_)
            | Error::EmptyReply
            | Error::HeadCut
            | Error::ProxyTunnel(_) => true,
            Error::Status { status, .. } | Error::ProxyRefused { status, .. } => {
                is_transient_status(*status)
            }
            Error::At { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// Says what the error happened to, unless it already names its subject
    /// (a file path) or is not worth a message at all.
    pub fn at(self, what: impl Into<String>) -> Error {
        match self {
            Error::Write { .. } | Error::BrokenPipe | Error::At { .. } | Error::Usage(_) => self,
            other => Error::At {
                what: crate::escape::for_message(what.into().as_bytes()),
                source: Box::new(other),
            },
        }
    }

    /// Wraps this error so it can travel through `std::io::Read`.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// Turns an error from reading the connection (directly or through a body
    /// reader) back into our type: ours travel inside the `io::Error`; the rest
    /// are failures of the connection itself.
    pub(crate) fn from_read(e: io::Error) -> Error {
        match e.downcast::<Error>() {
            Ok(ours) => ours,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Error::Truncated(
                "the connection was cut without a TLS close_notify before the body ended".into(),
            ),
            Err(e) => {
                let what = match e.kind() {
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                        "connection reset while receiving"
                    }
                    _ => "receiving failed",
                };
                Error::Network { what, source: e }
            }
        }
    }
}

/// Statuses that mean "try again later" (RFC 9110 §15.5.9, §15.6; RFC 6585 §4).
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// What the user can do about a final status: keep the error's body, or for a
/// forwarding proxy's 407, give it credentials.
fn status_hint(status: u16) -> &'static str {
    match status {
        407 => "the proxy wants credentials: --proxy http://user:pass@host:port, or in http_proxy",
        _ => "use --no-fail to keep the body",
    }
}

/// An `io::Error` without Rust's " (os error N)" suffix: users want the reason.
pub fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_errors_survive_a_trip_through_io() {
        let e = Error::Truncated("cut".into()).into_io();
        assert_eq!(Error::from_read(e).exit_code(), 18);
    }

    #[test]
    fn resets_are_56() {
        let e = io::Error::from(io::ErrorKind::ConnectionReset);
        let ours = Error::from_read(e);
        assert_eq!(ours.exit_code(), 56);
        assert!(ours.to_string().starts_with("connection reset"));
    }

    #[test]
    fn context_keeps_the_code_and_names_the_subject() {
        let e = Error::EmptyReply.at("http://h/");
        assert_eq!(e.exit_code(), 52);
        assert_eq!(
            e.to_string(),
            "http://h/: the server closed the connection without sending a response"
        );
    }

    #[test]
    fn transient_errors() {
        assert!(Error::EmptyReply.is_transient());
        assert!(Error::EmptyReply.at("u").is_transient());
        let status = |status| Error::Status {
            status,
            reason: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        assert!(!Error::Malformed("x".into()).is_transient());
        assert!(!Error::Tls("x".into()).is_transient());
        assert!(Error::HandshakeCut("x".into()).is_transient());
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = io::Error::from_raw_os_error(111);
        assert!(!plain(&e).contains("os error"));
    }
}
