//! One URL end to end: open the output, connect, send the request, read the head,
//! pour the body into the sink, and make the file visible only when all is well.

use crate::body::{Body, BodyKind};
use crate::config::{Config, Method, Output};
use crate::error::Error;
use crate::escape;
use crate::output::{Sink, stdout_error};
use crate::request::Request;
use crate::response::{Head, read_response_head};
use crate::trace::Trace;
use crate::transport::{self, Limits};
use crate::{Outcome, Sinks};
use std::io::{BufReader, Read, Write};
use std::time::Instant;

/// Size of the one buffer a body streams through, and of the connection's read
/// buffer, in bytes. Chosen by measurement: see BENCHMARKS.md.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// Downloads `config.job`, writing to the sinks; errors say which URL failed.
pub fn run(config: &Config, sinks: &mut Sinks<'_>) -> Result<Outcome, Error> {
    let url = config.job.url.display();
    fetch(config, sinks).map_err(|e| e.at(url))
}

fn fetch(config: &Config, sinks: &mut Sinks<'_>) -> Result<Outcome, Error> {
    let started = Instant::now();
    let job = &config.job;
    let target = &job.url;
    let mut trace = Trace::new(
        &mut *sinks.stderr,
        config.display.verbose,
        sinks.stderr_is_terminal,
    );
    let stdout: &mut dyn Write = &mut *sinks.stdout;

    let mut sink = Sink::open(&job.output)?;

    let limits = Limits {
        connect_timeout: config.network.connect_timeout,
        read_timeout: config.network.read_timeout,
        deadline: config.network.max_time.map(|t| started + t),
    };
    let mut stream = transport::connect(
        &target.host(),
        target.port(),
        config.network.ip_version,
        &limits,
        &mut |line| trace.step(&line),
    )?;

    let url_credentials = target.credentials();
    let request_target = target.request_target();
    let host = target.host_field();
    let request = Request {
        method: config.method,
        target: &request_target,
        host: &host,
        user_agent: &config.user_agent,
        credentials: config.credentials.as_ref().or(url_credentials.as_ref()),
        extra: &config.headers,
    }
    .to_bytes();
    trace.head("> ", &request);
    stream
        .write_all(&request)
        .and_then(|()| stream.flush())
        .map_err(|e| match Error::from_read(e) {
            Error::Network { source, .. } => Error::Network {
                what: "sending the request failed",
                source,
            },
            other => other,
        })?;

    let mut conn = BufReader::with_capacity(BUFFER_SIZE, stream);
    let head = read_response_head(&mut conn, |h| trace.head("< ", &h.raw))?;

    let to_stdout = job.output == Output::Stdout;
    let is_head = config.method == Method::Head;
    // The head is shown on stdout when the body goes elsewhere (unless -s), or
    // before the body with -i. With -I the head is the content itself.
    let show_head = !is_head
        && if to_stdout {
            config.display.include
        } else {
            !config.display.silent
        };
    if show_head {
        print_head(stdout, sinks.stdout_is_terminal, &head)?;
    }

    if head.status >= 400 && !config.no_fail {
        return Err(Error::Status {
            status: head.status,
            reason: escape::for_message(head.reason.as_bytes()),
        });
    }

    let bytes = if is_head {
        let raw = if to_stdout && sinks.stdout_is_terminal {
            escape::for_terminal(&head.raw)
        } else {
            (&head.raw[..]).into()
        };
        sink.write(stdout, &raw)?;
        raw.len() as u64
    } else {
        let kind = BodyKind::of(&head, false)?;
        copy_body(Body::new(kind, conn), &mut sink, stdout)?
    };

    let file = sink.path().map(|p| p.to_owned());
    sink.finish(stdout)?;
    Ok(Outcome {
        status: head.status,
        bytes,
        url: target.display(),
        file,
        content_type: head.value("content-type").map(str::to_owned),
        elapsed: started.elapsed(),
    })
}

/// Prints a head to stdout verbatim, escaped when stdout is a terminal.
fn print_head(stdout: &mut dyn Write, is_terminal: bool, head: &Head) -> Result<(), Error> {
    let bytes = if is_terminal {
        escape::for_terminal(&head.raw)
    } else {
        (&head.raw[..]).into()
    };
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

/// Streams the body through one buffer into the sink; returns the byte count.
fn copy_body(mut body: impl Read, sink: &mut Sink, stdout: &mut dyn Write) -> Result<u64, Error> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_read(e)),
        };
        sink.write(stdout, &buf[..n])?;
        total += n as u64;
    }
}
