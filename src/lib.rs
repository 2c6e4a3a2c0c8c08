//! fetch: an HTTP/1.1 download client that speaks the protocol itself over
//! `std::net::TcpStream` (rustls on top for https), streams bodies through one buffer, never leaves a
//! half-written file, and fails with curl's exit codes.
//!
//! The binary's `cli` builds a [`Config`]; [`run`] downloads it, writing only to
//! the [`Sinks`] it is handed and the files the config names.

#![forbid(unsafe_code)]

pub mod batch;
pub mod body;
pub mod config;
pub mod digest;
pub mod dispatch;
pub mod error;
pub mod escape;
pub mod output;
pub mod pool;
pub mod progress;
pub mod proxy;
pub mod range;
pub mod redirect;
pub mod report;
pub mod request;
pub mod response;
#[cfg(test)]
mod test_io;
pub mod tls;
pub mod trace;
pub mod transfer;
pub mod transport;
pub mod url;
pub mod zerocopy;

pub use config::Config;
pub use error::Error;
pub use transfer::State;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The process's standard streams, as the library may use them. (The progress
/// bar draws on the process's stderr itself, through indicatif, and only when
/// `stderr_is_terminal` or `--progress` says so.)
pub struct Sinks<'a> {
    /// Bodies sent to stdout and printed heads.
    pub stdout: &'a mut (dyn Write + Send),
    pub stdout_is_terminal: bool,
    /// `-v` lines and the batch summary (never errors: those are the caller's to print).
    pub stderr: &'a mut (dyn Write + Send),
    pub stderr_is_terminal: bool,
}

/// What is known of one transfer when it ends, whether it succeeded or not
/// (`-w` reports failed transfers too).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The last response's status code; 0 when no response arrived.
    pub status: u16,
    /// Body bytes received (head bytes with `-I`).
    pub bytes: u64,
    /// The last URL asked for, without credentials.
    pub url: String,
    /// The file the body goes to, when the output is a file.
    pub file: Option<PathBuf>,
    /// The last response's Content-Type.
    pub content_type: Option<String>,
    /// Redirects followed.
    pub redirects: u32,
    pub elapsed: Duration,
    /// Lowercase hex SHA-256 of a complete body, when `-w` uses `%{digest_sha256}`.
    pub digest_sha256: Option<String>,
}

/// What a successful transfer did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub facts: Facts,
    /// Downloaded, or found already complete (-C) or up to date (-N).
    pub state: State,
}

/// Runs every URL of `config`. `report` is told of each failure as it happens
/// (the caller prints it, once); the result is every outcome in input order, or
/// the first failure in input order (a reader of stdout that hung up, exit 0,
/// only when nothing else failed), whose `exit_code()` is the process's.
pub fn run(
    config: &Config,
    sinks: Sinks<'_>,
    report: &mut (dyn FnMut(&Error) + Send),
) -> Result<Vec<Outcome>, Error> {
    batch::run(config, sinks, report)
}
