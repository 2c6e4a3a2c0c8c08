//! Where bodies go: stdout, a FILE written through `FILE.part` and renamed only when
//! complete, or an existing non-regular FILE written directly (DESIGN §3).

use crate::config::Output;
use crate::error::Error;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// `.part` files being written by this process, so an interrupt can remove them.
static PARTIAL_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partial_files() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL_FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For a Ctrl-C handler: removes every `.part` file still being written and keeps
/// the registry locked, so that no transfer can rename one onto its FILE before
/// the process exits. Call it only right before exiting.
pub fn remove_partial_files() {
    let files = partial_files();
    for part in files.iter() {
        let _ = fs::remove_file(part);
    }
    std::mem::forget(files);
}

/// `FILE` + `.part`, beside FILE.
pub fn part_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// An opened destination for one body.
pub enum Sink {
    /// The `stdout` handed to the library.
    Stdout,
    /// FILE.part, renamed onto FILE by `finish`.
    Part(PartFile),
    /// An existing FILE that is not a regular file (`/dev/null`, a FIFO).
    Direct { file: File, path: PathBuf },
}

impl Sink {
    /// Opens the destination before anything is downloaded, so a bad path fails
    /// before the network is touched.
    pub fn open(output: &Output) -> Result<Sink, Error> {
        let path = match output {
            Output::Stdout => return Ok(Sink::Stdout),
            Output::File(path) => path,
        };
        let write_error = |source| Error::Write {
            path: path.clone(),
            source,
        };
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(write_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ))),
            Ok(meta) if !meta.is_file() => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(write_error)?;
                Ok(Sink::Direct {
                    file,
                    path: path.clone(),
                })
            }
            _ => Ok(Sink::Part(PartFile::create(path)?)),
        }
    }

    /// Writes body bytes; `stdout` is used when this sink is stdout.
    pub fn write(&mut self, stdout: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Sink::Stdout => stdout.write_all(bytes).map_err(stdout_error),
            Sink::Part(part) => part.file.write_all(bytes).map_err(|source| Error::Write {
                path: part.part.clone(),
                source,
            }),
            Sink::Direct { file, path } => file.write_all(bytes).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            }),
        }
    }

    /// The body is complete and checked: make it visible.
    pub fn finish(self, stdout: &mut dyn Write) -> Result<(), Error> {
        match self {
            Sink::Stdout => stdout.flush().map_err(stdout_error),
            Sink::Part(part) => part.commit(),
            Sink::Direct { mut file, path } => {
                file.flush().map_err(|source| Error::Write { path, source })
            }
        }
    }

    /// Whether what was written can be thrown away to start the body again.
    pub fn can_restart(&self) -> bool {
        matches!(self, Sink::Part(_))
    }

    /// Throws away what was written, for a body that starts over.
    pub fn restart(&mut self) -> Result<(), Error> {
        match self {
            Sink::Part(part) => part
                .file
                .set_len(0)
                .and_then(|()| part.file.rewind())
                .map_err(|source| Error::Write {
                    path: part.part.clone(),
                    source,
                }),
            _ => Err(Error::Resume(
                "the output cannot be rewound to start the body again".into(),
            )),
        }
    }

    /// The file the body ends up in, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout => None,
            Sink::Part(part) => Some(&part.dest),
            Sink::Direct { path, .. } => Some(path),
        }
    }
}

/// A failed write to stdout: a closed pipe is the reader's choice, not a failure.
pub fn stdout_error(source: io::Error) -> Error {
    if source.kind() == io::ErrorKind::BrokenPipe {
        Error::BrokenPipe
    } else {
        Error::Write {
            path: PathBuf::from("stdout"),
            source,
        }
    }
}

/// FILE.part, locked against a second fetch writing the same file, removed when
/// dropped unless committed.
pub struct PartFile {
    file: File,
    part: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartFile {
    fn create(dest: &Path) -> Result<PartFile, Error> {
        let part = part_path(dest);
        let write_error = |source| Error::Write {
            path: part.clone(),
            source,
        };
        // Open without truncating: the lock must be ours before the content is.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(write_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(write_error(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "another fetch is writing this file",
                )));
            }
            Err(TryLockError::Error(e)) => return Err(write_error(e)),
        }
        partial_files().push(part.clone());
        let part_file = PartFile {
            file,
            part,
            dest: dest.to_owned(),
            committed: false,
        };
        part_file.file.set_len(0).map_err(|source| Error::Write {
            path: part_file.part.clone(),
            source,
        })?;
        Ok(part_file)
    }

    fn commit(mut self) -> Result<(), Error> {
        let mut registry = partial_files();
        fs::rename(&self.part, &self.dest).map_err(|source| Error::Write {
            path: self.dest.clone(),
            source,
        })?;
        self.committed = true;
        registry.retain(|p| p != &self.part);
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let mut registry = partial_files();
            let _ = fs::remove_file(&self.part);
            registry.retain(|p| p != &self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_is_renamed_on_finish_only() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut sink = Sink::open(&Output::File(dest.clone())).unwrap();
        sink.write(&mut io::sink(), b"data").unwrap();
        assert!(part_path(&dest).exists());
        assert!(!dest.exists());
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn dropping_an_unfinished_part_removes_it_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(&dest, b"old").unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone())).unwrap();
        sink.write(&mut io::sink(), b"new but cut").unwrap();
        drop(sink);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn a_locked_part_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let first = Sink::open(&Output::File(dest.clone())).unwrap();
        let err = Sink::open(&Output::File(dest.clone())).err().unwrap();
        assert_eq!(err.exit_code(), 23);
        assert!(err.to_string().contains("another fetch"), "{err}");
        drop(first);
    }

    #[test]
    fn restart_empties_the_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut sink = Sink::open(&Output::File(dest.clone())).unwrap();
        sink.write(&mut io::sink(), b"first try").unwrap();
        assert!(sink.can_restart());
        sink.restart().unwrap();
        sink.write(&mut io::sink(), b"again").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"again");
        assert!(!Sink::Stdout.can_restart());
    }

    #[test]
    fn a_directory_is_23() {
        let dir = tempfile::tempdir().unwrap();
        let err = Sink::open(&Output::File(dir.path().to_owned()))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 23);
    }

    #[test]
    fn non_regular_files_are_written_directly() {
        let sink = Sink::open(&Output::File("/dev/null".into())).unwrap();
        assert!(matches!(sink, Sink::Direct { .. }));
    }

    #[test]
    fn broken_pipe_is_quiet() {
        assert_eq!(
            stdout_error(io::ErrorKind::BrokenPipe.into()).exit_code(),
            0
        );
        assert_eq!(stdout_error(io::ErrorKind::Other.into()).exit_code(), 23);
    }
}
