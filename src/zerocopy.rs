//! Zero-copy bodies on Linux: a plain-http body that needs no decoding and no
//! hashing moves socket -> pipe -> file with splice(2), so its bytes never pass
//! through user space (the kernel's copy into our buffer was most of fetch's
//! CPU time; see BENCHMARKS.md).

use crate::error::Error;
use crate::progress::Bar;
use crate::transport::Socket;
use nix::fcntl::{FcntlArg, SpliceFFlags, fcntl, splice};
use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::path::Path;

/// The pipe between socket and file, in bytes: one splice moves at most this
/// much. 1 MiB is what an unprivileged process may ask for by default
/// (/proc/sys/fs/pipe-max-size); a smaller pipe still works, only with more calls.
const PIPE_BYTES: i32 = 1 << 20;

/// The kernel's pipe between the socket and the file.
pub struct Pipe {
    reader: PipeReader,
    writer: PipeWriter,
}

impl Pipe {
    /// `None` when no pipe can be had (out of descriptors, say): the caller
    /// then copies through user space as usual.
    pub fn new() -> Option<Pipe> {
        let (reader, writer) = io::pipe().ok()?;
        let _ = fcntl(&writer, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
        Some(Pipe { reader, writer })
    }
}

/// Moves the rest of a body from `socket` into `file`: `remaining` bytes, or
/// until the server closes when `None`. `expected` is the whole body's length,
/// for the message of a truncation (exit 18, as the `LengthReader` reports it).
#[allow(clippy::too_many_arguments)]
pub fn copy(
    pipe: &Pipe,
    socket: &mut Socket,
    mut remaining: Option<u64>,
    expected: Option<u64>,
    file: &File,
    path: &Path,
    bar: &Bar,
    written: &mut u64,
) -> Result<(), Error> {
    let started_at = *written;
    let mut splice_out = true;
    loop {
        let want = match remaining {
            Some(0) => return Ok(()),
            Some(r) => r.min(PIPE_BYTES as u64) as usize,
            None => PIPE_BYTES as usize,
        };
        let n = socket
            .splice_into(&pipe.writer, want)
            .map_err(Error::from_read)?;
        if n == 0 {
            return match (remaining, expected) {
                (Some(_), Some(total)) => Err(Error::Truncated(format!(
                    "the body ended after {} of {total} bytes (Content-Length)",
                    total - remaining.unwrap_or(0)
                ))),
                (Some(r), None) => Err(Error::Truncated(format!(
                    "the body ended {r} bytes early, after {}",
                    *written - started_at
                ))),
                (None, _) => Ok(()),
            };
        }
        drain(pipe, n, file, path, &mut splice_out)?;
        bar.add(n as u64);
        *written += n as u64;
        if let Some(r) = &mut remaining {
            *r -= n as u64;
        }
    }
}

/// Moves exactly `n` bytes from the pipe into the file. A file system that
/// does not take splice(2) (EINVAL: some FUSE and network file systems) gets
/// the bytes through a buffer instead, from then on (`splice_out` turns off).
fn drain(
    pipe: &Pipe,
    mut n: usize,
    file: &File,
    path: &Path,
    splice_out: &mut bool,
) -> Result<(), Error> {
    let write_error = |source: io::Error| Error::Write {
        path: path.to_owned(),
        source,
    };
    while n > 0 && *splice_out {
        let flags = SpliceFFlags::SPLICE_F_MOVE;
        match splice(&pipe.reader, None, file, None, n, flags) {
            Ok(0) => return Err(write_error(io::ErrorKind::WriteZero.into())),
            Ok(moved) => n -= moved,
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EINVAL) => *splice_out = false,
            Err(e) => return Err(write_error(e.into())),
        }
    }
    if n > 0 {
        let mut buf = vec![0u8; n.min(64 * 1024)];
        while n > 0 {
            let want = n.min(buf.len());
            (&pipe.reader)
                .read_exact(&mut buf[..want])
                .map_err(Error::from_read)?;
            (&*file).write_all(&buf[..want]).map_err(write_error)?;
            n -= want;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_splices_or_copies_through_a_buffer() {
        let dir = tempfile::tempdir().unwrap();
        for splice_first in [true, false] {
            let path = dir.path().join(format!("out-{splice_first}"));
            let file = File::create(&path).unwrap();
            let pipe = Pipe::new().unwrap();
            let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            // A pipe holds at least 64 KiB; write in two rounds.
            for part in bytes.chunks(50_000) {
                (&pipe.writer).write_all(part).unwrap();
                let mut splice_out = splice_first;
                drain(&pipe, part.len(), &file, &path, &mut splice_out).unwrap();
                assert_eq!(splice_out, splice_first);
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }
}
