//! fetch: an HTTP/1.1 download client that speaks the protocol itself over
//! `std::net::TcpStream` (rustls on top for https), streams bodies through one buffer, never leaves a
//! half-written file, and fails with curl's exit codes.
//!
//! The binary's `cli` builds a [`Config`]; [`run`] downloads it, writing only to
//! the [`Sinks`] it is handed and the files the config names.

#![forbid(unsafe_code)]

pub mod body;
pub mod config;
pub mod digest;
pub mod error;
pub mod escape;
pub mod output;
pub mod proxy;
pub mod redirect;
pub mod report;
pub mod request;
pub mod response;
pub mod tls;
pub mod trace;
pub mod transfer;
pub mod transport;
pub mod url;

pub use config::Config;
pub use error::Error;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The process's standard streams, as the library may use them.
pub struct Sinks<'a> {
    /// Bodies sent to stdout and printed heads.
    pub stdout: &'a mut dyn Write,
    pub stdout_is_terminal: bool,
    /// `-v` lines (never errors: those are the caller's to print).
    pub stderr: &'a mut dyn Write,
    pub stderr_is_terminal: bool,
}

/// What a successful transfer did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The final status code.
    pub status: u16,
    /// Body bytes written (head bytes with `-I`).
    pub bytes: u64,
    /// The final URL, without credentials.
    pub url: String,
    /// The file written, when the output was a file.
    pub file: Option<PathBuf>,
    pub content_type: Option<String>,
    /// Redirects followed.
    pub redirects: u32,
    pub elapsed: Duration,
}

/// Runs what `config` asks for.
pub fn run(config: &Config, sinks: &mut Sinks<'_>) -> Result<Outcome, Error> {
    transfer::run(config, sinks)
}
