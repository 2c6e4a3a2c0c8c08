//! Where bodies go: stdout, a FILE that appears only complete (an anonymous
//! file linked in, or `FILE.part` renamed), or an existing non-regular FILE
//! written directly (DESIGN §3).

use crate::config::Output;
use crate::error::Error;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

/// `.part` files being written by this process, so an interrupt can remove
/// them, each with whether `-C` keeps it (then only while it is empty).
static PARTIAL_FILES: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());

/// Held shared by a transfer while it creates a FILE.part and registers it,
/// and exclusively by the Ctrl-C handler, so that no FILE.part comes into
/// being that the handler does not see (the threads of a batch create theirs at
/// the same time).
static CREATING: RwLock<()> = RwLock::new(());

fn partial_files() -> MutexGuard<'static, Vec<(PathBuf, bool)>> {
    PARTIAL_FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For a Ctrl-C handler: removes every `.part` file still being written (a
/// rename that comes later fails on the missing file), and its `.meta`: a run
/// without -C clears what an earlier -C run left, and a -C run keeps a part
/// only when it holds something, as when it fails (see PartFile). Keeps the
/// registry locked, so that no transfer registers a new one before the
/// process exits. Call it only right before exiting.
pub fn remove_partial_files() {
    let creating = CREATING.write().unwrap_or_else(|e| e.into_inner());
    let files = partial_files();
    for (part, keep) in files.iter() {
        let empty = || fs::symlink_metadata(part).is_ok_and(|m| m.is_file() && m.len() == 0);
        if !keep || empty() {
            let _ = fs::remove_file(part);
            let _ = fs::remove_file(with_suffix(part, ".meta"));
        }
    }
    std::mem::forget(files);
    std::mem::forget(creating);
}

/// `FILE` + `.part`, beside FILE. When FILE's name is so long that
/// `NAME.part.meta` would not fit in a file name (`NAME_MAX`), the name is
/// cut and a hash of all of it keeps it apart from other long names with the
/// same start: `NAME-START~1a2b3c4d.part`.
pub fn part_path(file: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    const SUFFIXES: usize = ".part.meta".len();
    let name = file.file_name().map_or(&[][..], |n| n.as_bytes());
    if name.len() + SUFFIXES <= NAME_MAX {
        return with_suffix(file, ".part");
    }
    let hash = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let tag = format!("~{:08x}.part", (hash ^ (hash >> 32)) as u32);
    let mut keep = NAME_MAX - SUFFIXES - (tag.len() - ".part".len());
    // A UTF-8 name is cut between characters (some file systems take only
    // UTF-8 names); any other is bytes.
    if let Ok(text) = std::str::from_utf8(name) {
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
    }
    let mut short = std::ffi::OsStr::from_bytes(&name[..keep]).to_owned();
    short.push(tag);
    file.with_file_name(short)
}

/// The longest file name, in bytes, that Linux file systems take.
const NAME_MAX: usize = 255;

/// `FILE.part.meta`: what `-C` needs to continue FILE.part safely.
pub fn meta_path(file: &Path) -> PathBuf {
    with_suffix(&part_path(file), ".meta")
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How to ask for the rest of a body (RFC 9110 §14.2, §13.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// A strong ETag or a Last-Modified date, for If-Range: the server sends
    /// the rest only if the resource is still the same version.
    pub validator: String,
    /// The whole length, when known.
    pub total: Option<u64>,
    /// The URL the body was asked from (as the user gave it, without
    /// credentials), when known: a date validator says little about which
    /// resource it is, so a FILE.part started from another URL is not
    /// continued with one (`Transfer` decides).
    pub url: Option<String>,
}

impl Resume {
    const MAGIC: &'static str = "fetch resume 1";

    fn to_text(&self) -> String {
        let mut text = format!("{}\nvalidator {}\n", Resume::MAGIC, self.validator);
        if let Some(total) = self.total {
            text.push_str(&format!("total {total}\n"));
        }
        if let Some(url) = &self.url {
            text.push_str(&format!("url {url}\n"));
        }
        text
    }

    /// Reads what `to_text` wrote (a meta of an earlier fetch may lack the
    /// url); anything else is no resume information.
    fn from_text(text: &str) -> Option<Resume> {
        let mut lines = text.lines();
        if lines.next()? != Resume::MAGIC {
            return None;
        }
        let validator = lines.next()?.strip_prefix("validator ")?.to_owned();
        let mut line = lines.next();
        let total = match line.and_then(|l| l.strip_prefix("total ")) {
            Some(total) => {
                line = lines.next();
                Some(total.parse().ok()?)
            }
            None => None,
        };
        let url = match line {
            Some(l) => Some(l.strip_prefix("url ")?.to_owned()),
            None => None,
        };
        // A weak ETag never goes in If-Range (RFC 9110 §13.1.5).
        let usable = !validator.is_empty() && !validator.starts_with("W/");
        let complete = lines.next().is_none();
        (usable && complete).then_some(Resume {
            validator,
            total,
            url,
        })
    }

    /// Whether the validator is a date (Last-Modified), not an entity tag.
    pub fn is_dated(&self) -> bool {
        !self.validator.starts_with('"')
    }
}

/// An opened destination for one body.
pub enum Sink {
    /// The `stdout` handed to the library.
    Stdout,
    /// An anonymous file or FILE.part, made FILE by `finish`.
    Part(PartFile),
    /// An existing FILE that is not a regular file (`/dev/null`, a FIFO).
    Direct { file: File, path: PathBuf },
    /// A FIFO at FILE, not opened yet: opening one for writing waits for its
    /// reader, so it is opened (`ready`) when the transfer runs, not where it
    /// is set up (a batch's dispatcher sets up transfers for others).
    Fifo { path: PathBuf },
}

impl Sink {
    /// Opens the destination before anything is downloaded, so a bad path fails
    /// before the network is touched (a FIFO is only found here, and opened by
    /// `ready` before the request). With `keep_partial` (`-C`), an existing
    /// FILE.part with its resume information is continued: the second value is
    /// how many bytes it holds and how to ask for the rest.
    pub fn open(
        output: &Output,
        keep_partial: bool,
    ) -> Result<(Sink, Option<(u64, Resume)>), Error> {
        let path: &Path = match output {
            Output::Stdout => return Ok((Sink::Stdout, None)),
            Output::File(path) => path,
        };
        let write_error = |source| Error::Write {
            path: path.to_owned(),
            source,
        };
        // `-o dir/` names a directory, which no download can become; found
        // now, before any traffic, not when the finished body is linked in.
        if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(write_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "ends in '/': a directory, not a file",
            )));
        }
        use std::os::unix::fs::FileTypeExt;
        let (path, metadata) = resolve(path);
        let path = path.as_ref();
        let write_error = |source| Error::Write {
            path: path.to_owned(),
            source,
        };
        match metadata {
            Ok(meta) if meta.is_dir() => Err(write_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory (--output-dir DIR -O saves into one)",
            ))),
            Ok(meta) if meta.file_type().is_fifo() => Ok((
                Sink::Fifo {
                    path: path.to_owned(),
                },
                None,
            )),
            Ok(meta) if !meta.is_file() => {
                let sink = Sink::Direct {
                    file: open_direct(path).map_err(write_error)?,
                    path: path.to_owned(),
                };
                Ok((sink, None))
            }
            _ => {
                let new = metadata
                    .as_ref()
                    .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
                // A replaced FILE keeps its permissions, as when curl or wget
                // truncate it (set-id bits aside).
                let mode = metadata.ok().map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o777
                });
                let (part, resume) = PartFile::open(path, keep_partial, new, mode)?;
                Ok((Sink::Part(part), resume))
            }
        }
    }

    /// Opens what is set up but not open (a FIFO: this waits for its reader).
    pub fn ready(&mut self) -> Result<(), Error> {
        if let Sink::Fifo { path } = self {
            let file = open_direct(path).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            let path = std::mem::take(path);
            *self = Sink::Direct { file, path };
        }
        Ok(())
    }

    /// Whether writing may wait on something other than the disk: a reader of
    /// stdout, of a FIFO, of a terminal (anything but a file or /dev/null).
    pub fn may_wait(&self) -> bool {
        match self {
            Sink::Part(_) => false,
            Sink::Direct { path, .. } => path != Path::new("/dev/null"),
            Sink::Stdout | Sink::Fifo { .. } => true,
        }
    }

    /// Writes body bytes; `stdout` is used when this sink is stdout.
    pub fn write(&mut self, stdout: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
        self.ready()?;
        match self {
            Sink::Stdout => stdout.write_all(bytes).map_err(stdout_error),
            Sink::Part(part) => part.file.write_all(bytes).map_err(|e| part.error(e)),
            Sink::Direct { file, path } => file.write_all(bytes).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            }),
            Sink::Fifo { .. } => Ok(()),
        }
    }

    /// The body is complete and checked: make it visible.
    pub fn finish(mut self, stdout: &mut dyn Write) -> Result<(), Error> {
        self.ready()?;
        match self {
            Sink::Stdout => stdout.flush().map_err(stdout_error),
            Sink::Part(part) => part.commit(),
            Sink::Direct { mut file, path } => {
                file.flush().map_err(|source| Error::Write { path, source })
            }
            Sink::Fifo { .. } => Ok(()),
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
                .map_err(|e| part.error(e)),
            _ => Err(Error::Resume(
                "the output cannot be rewound to start the body again".into(),
            )),
        }
    }

    /// With `-C`: records (or, with `None`, forgets) how the body now being
    /// written could be continued by a later run.
    pub fn remember(&mut self, resume: Option<&Resume>) -> Result<(), Error> {
        match self {
            Sink::Part(part) if part.keep => part.remember(resume),
            _ => Ok(()),
        }
    }

    /// Sets the modification time FILE will have (`-R`, `-N`).
    pub fn set_modified(&mut self, time: SystemTime) -> Result<(), Error> {
        match self {
            Sink::Part(part) => part.file.set_modified(time).map_err(|e| part.error(e)),
            _ => Ok(()),
        }
    }

    /// The file a body can be spliced into (zero-copy), if any, and the name
    /// its errors go by: the file being written (named FILE), a FIFO, or
    /// /dev/null. Other devices may not take splice(2), and stdout is only a
    /// `Write` here.
    pub fn splice_target(&self) -> Option<(&File, &Path)> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        match self {
            Sink::Part(part) => Some((&part.file, &part.dest)),
            Sink::Direct { file, path } => {
                let meta = file.metadata().ok()?;
                let is_null = || {
                    fs::metadata("/dev/null").is_ok_and(|null| {
                        meta.file_type().is_char_device() && meta.rdev() == null.rdev()
                    })
                };
                (meta.file_type().is_fifo() || is_null()).then_some((file, path.as_path()))
            }
            Sink::Stdout | Sink::Fifo { .. } => None,
        }
    }

    /// Feeds the first `len` bytes already in FILE.part to `each` (hashing the
    /// part of a resumed body that an earlier run wrote).
    pub fn read_back(&self, len: u64, each: impl FnMut(&[u8])) -> Result<(), Error> {
        match self {
            Sink::Part(part) => read_all(&part.file, len, each).map_err(|e| part.error(e)),
            _ => Ok(()),
        }
    }

    /// Throws away a body that failed a check: even `-C` must not keep it.
    pub fn discard(&mut self) {
        if self.can_restart() {
            let _ = self.restart();
            let _ = self.remember(None);
        }
    }

    /// For `-v`: how the body gets to its file.
    pub fn describe(&self) -> Option<String> {
        match self {
            Sink::Stdout => None,
            Sink::Part(part) if part.anonymous => Some(format!(
                "Writing to an anonymous file, linked in as {} when complete",
                part.dest.display()
            )),
            Sink::Part(part) => Some(format!(
                "Writing to {}, renamed onto {} when complete",
                part.part.display(),
                part.dest.display()
            )),
            Sink::Direct { path, .. } | Sink::Fifo { path } => Some(format!(
                "Writing to {} directly (not a regular file)",
                path.display()
            )),
        }
    }

    /// The file the body ends up in, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout => None,
            Sink::Part(part) => Some(&part.dest),
            Sink::Direct { path, .. } | Sink::Fifo { path } => Some(path),
        }
    }
}

/// Opens an existing FILE that is not a regular file, to write into it as it is.
fn open_direct(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path)
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

/// Where a body is written until it is complete and checked. A new FILE (none
/// there yet, no `-C`) is written into an anonymous file in FILE's directory
/// (O_TMPFILE) that `commit` links in as FILE: nothing of an unfinished
/// download is ever visible, and whatever ends the process (Ctrl-C, a kill, a
/// crash) leaves nothing behind. Replacing an existing FILE, and `-C`, go
/// through FILE.part, locked against a second fetch writing the same file and
/// renamed onto FILE; unless committed it is removed when dropped, or with
/// `keep` (`-C`) left for the next run together with FILE.part.meta.
pub struct PartFile {
    file: File,
    /// FILE.part (also the fallback name of an anonymous file, see `commit`).
    part: PathBuf,
    dest: PathBuf,
    /// The body is in an anonymous file, not in FILE.part.
    anonymous: bool,
    keep: bool,
    /// Whether a FILE.part.meta may be beside FILE.part (`-C`, or a FILE.part
    /// left by an earlier run): then it goes when FILE.part does.
    may_have_meta: bool,
    /// The permission bits of the FILE it replaces, given to the body only
    /// when it becomes FILE: a read-only mode on FILE.part would keep the
    /// next run (after a kill, or with -C) from opening it again.
    mode: Option<u32>,
    committed: bool,
}

impl PartFile {
    /// `new`: FILE is not there. Then, unless a FILE.part is (an earlier
    /// `-C`'s, to be cleared or refused as usual), the body goes into an
    /// anonymous file.
    fn open(
        dest: &Path,
        keep: bool,
        new: bool,
        mode: Option<u32>,
    ) -> Result<(PartFile, Option<(u64, Resume)>), Error> {
        let part = part_path(dest);
        // A name too long for FILE.part (FILE's own is up to 255 bytes) means
        // there is none.
        let no_part = || {
            fs::symlink_metadata(&part).is_err_and(|e| {
                matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidFilename
                )
            })
        };
        if new
            && !keep
            && no_part()
            && let Some(file) = open_anonymous(dest)
        {
            let part_file = PartFile {
                file,
                part,
                dest: dest.to_owned(),
                anonymous: true,
                keep,
                may_have_meta: false,
                mode,
                committed: false,
            };
            return Ok((part_file, None));
        }
        // A missing or read-only directory, or another fetch at work, is
        // FILE's problem, whichever name was tried: messages name what the
        // user gave. Only a FILE.part that is there and in the way is named.
        let write_error = |source: io::Error| {
            use io::ErrorKind::{NotFound, PermissionDenied, ReadOnlyFilesystem, ResourceBusy};
            let about_file = match source.kind() {
                NotFound | ResourceBusy | ReadOnlyFilesystem => true,
                PermissionDenied => fs::symlink_metadata(&part).is_err(),
                _ => false,
            };
            Error::Write {
                path: if about_file {
                    dest.to_owned()
                } else {
                    part.clone()
                },
                source,
            }
        };
        let creating = CREATING.read().unwrap_or_else(|e| e.into_inner());
        let (file, len) = open_locked(&part).map_err(write_error)?;
        partial_files().push((part.clone(), keep));
        drop(creating);
        let mut part_file = PartFile {
            file,
            part,
            dest: dest.to_owned(),
            anonymous: false,
            keep,
            may_have_meta: keep || len > 0,
            mode,
            committed: false,
        };
        let resume = if keep { part_file.resume_point() } else { None };
        match &resume {
            Some((held, _)) => part_file.file.seek(SeekFrom::Start(*held)).map(|_| ()),
            // Only a FILE.part that holds something is truncated: on ext4 (with
            // auto_da_alloc, the default) a truncation to 0 marks the file for
            // writeback on close, so truncating the new, empty FILE.part of every
            // download would make each close start writing the whole body to disk.
            None if len == 0 => Ok(()),
            None => part_file.file.set_len(0),
        }
        .map_err(|e| part_file.error(e))?;
        Ok((part_file, resume))
    }

    /// What an existing FILE.part holds, if FILE.part.meta says how to continue it.
    fn resume_point(&self) -> Option<(u64, Resume)> {
        use std::io::Read;
        let held = self.file.metadata().ok()?.len();
        // Only a regular file of ours: a symlink or a FIFO planted there is
        // not read (a FIFO would block), and a meta file is a few lines.
        let meta = no_follow(OpenOptions::new().read(true))
            .open(meta_path(&self.dest))
            .ok()?;
        if !meta.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        meta.take(4096).read_to_string(&mut text).ok()?;
        let resume = Resume::from_text(&text)?;
        (held > 0 && resume.total.is_none_or(|t| held <= t)).then_some((held, resume))
    }

    /// Writes (or removes) FILE.part.meta. It is made anew each time, never
    /// written through whatever is at its name: a symlink planted there must
    /// not make a download overwrite the file it points to.
    fn remember(&self, resume: Option<&Resume>) -> Result<(), Error> {
        let meta = meta_path(&self.dest);
        let removed = match fs::remove_file(&meta) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        let done = removed.and_then(|()| match resume {
            Some(r) => no_follow(OpenOptions::new().write(true).create_new(true))
                .open(&meta)?
                .write_all(r.to_text().as_bytes()),
            None => Ok(()),
        });
        done.map_err(|source| Error::Write { path: meta, source })
    }

    /// A failure writing the body: messages name FILE, what the user gave
    /// (FILE.part is gone once fetch has exited).
    fn error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.dest.clone(),
            source,
        }
    }

    /// Makes the body FILE. FILE.part is renamed onto FILE. The registry is
    /// not held meanwhile (a batch's threads would queue on it): if Ctrl-C
    /// comes first, the rename fails on the removed FILE.part; if the rename
    /// comes first, FILE is complete and the handler's removal finds nothing.
    ///
    /// An anonymous file is linked in as FILE, which fails if something has
    /// taken the name since the download began (another program, a second
    /// fetch): then it is linked in as FILE.part, if that name is free, and
    /// renamed onto FILE like any FILE.part, so the newest download wins
    /// whole, as it does when FILE was there from the start.
    fn commit(mut self) -> Result<(), Error> {
        let dest_error = |source| Error::Write {
            path: self.dest.clone(),
            source,
        };
        if let Some(mode) = self.mode {
            use std::os::unix::fs::PermissionsExt;
            let _ = self.file.set_permissions(fs::Permissions::from_mode(mode));
        }
        if self.anonymous {
            match link_anonymous(&self.file, &self.dest) {
                Ok(()) => {
                    self.committed = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(dest_error(e)),
            }
            let mut registry = partial_files();
            link_anonymous(&self.file, &self.part).map_err(|source| Error::Write {
                path: self.part.clone(),
                source,
            })?;
            registry.push((self.part.clone(), self.keep));
            drop(registry);
            // From here on the body is FILE.part: `drop` removes it if the
            // rename fails.
            self.anonymous = false;
        }
        fs::rename(&self.part, &self.dest).map_err(dest_error)?;
        self.committed = true;
        partial_files().retain(|(p, _)| p != &self.part);
        if self.may_have_meta {
            let _ = fs::remove_file(meta_path(&self.dest));
        }
        Ok(())
    }
}

/// Opens an anonymous file (O_TMPFILE) in `dest`'s directory, if the file
/// system has them and /proc can name it for `link_anonymous`; `None` sends the
/// caller to FILE.part instead, which then reports any error with the path.
fn open_anonymous(dest: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    static PROC_FDS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*PROC_FDS.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return None;
    }
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o666)
        .open(dir)
        .ok()
}

/// Gives an anonymous file the name `to` (never replacing anything there).
fn link_anonymous(file: &File, to: &Path) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, AtFlags};
    use std::os::fd::AsRawFd;
    // By the descriptor (AT_EMPTY_PATH: since Linux 6.10 for the process that
    // opened it, before only with CAP_DAC_READ_SEARCH), else by its name in
    // /proc, a longer way for the kernel.
    match nix::unistd::linkat(file, "", AT_FDCWD, to, AtFlags::AT_EMPTY_PATH) {
        Err(Errno::ENOENT | Errno::EPERM) => {}
        done => return done.map_err(io::Error::from),
    }
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        AT_FDCWD,
        from.as_str(),
        AT_FDCWD,
        to,
        AtFlags::AT_SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}

/// Feeds the first `len` bytes of `file` to `each`, in blocks.
fn read_all(file: &File, len: u64, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                each(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Feeds the whole of the existing FILE at `path` to `each` (checking a FILE
/// that `-C` or `-N` left as it was against `--checksum`).
pub fn read_file(path: &Path, each: impl FnMut(&[u8])) -> Result<(), Error> {
    let file = File::open(path).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    file.metadata()
        .and_then(|meta| read_all(&file, meta.len(), each))
        .map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })
}

/// Where a body for FILE `path` goes, and what is there: `path` itself (one
/// lookup, which does not follow a symlink), or, when it is a symlink to a
/// regular file, the file it names, which is what gets replaced (and beside
/// which FILE.part goes). `-C` asks the same question before it opens.
pub fn resolve(path: &Path) -> (std::borrow::Cow<'_, Path>, io::Result<fs::Metadata>) {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match link_target(path) {
            Some((target, meta)) => (target.into(), Ok(meta)),
            None => (path.into(), fs::metadata(path)),
        },
        other => (path.into(), other),
    }
}

/// The regular file a symlink at `path` names, and its metadata: `None` when
/// it names nothing, or something else (a FIFO, a device, `/dev/stdout` on a
/// pipe), which the caller then opens through the link as before. The link is
/// followed by open(2), so the kernel's rules for links in shared directories
/// (fs.protected_symlinks) apply, and the name comes from /proc.
fn link_target(path: &Path) -> Option<(PathBuf, fs::Metadata)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let target = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    (meta.is_file() && target.is_absolute()).then_some((target, meta))
}

/// Opens FILE.part (see `open_own_file`) and locks it, so that a second fetch
/// of the same FILE fails instead of interleaving. The lock is on the file
/// opened, which is FILE.part only if nobody renamed it between the open and
/// the lock: a fetch finishing at that moment turns it into FILE, which must
/// not be truncated and written over. So the name is checked once the lock
/// is held, and the open tried again if it has moved on.
fn open_locked(part: &Path) -> io::Result<(File, u64)> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..3 {
        let (file, len) = open_own_file(part)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "another fetch is writing this file",
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let ours = file.metadata()?;
        if fs::symlink_metadata(part)
            .is_ok_and(|named| named.dev() == ours.dev() && named.ino() == ours.ino())
        {
            return Ok((file, len));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::ResourceBusy,
        "another fetch keeps replacing this file",
    ))
}

/// `options` that never follow a symlink at the last component and never
/// block on a FIFO or make a terminal ours.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
}

/// Opens FILE.part for writing, never through anything planted in its place:
/// a symlink there (in a shared directory, say) would make a download truncate
/// and overwrite whatever it points to. O_NOFOLLOW refuses a symlink and
/// O_NONBLOCK keeps a FIFO from blocking the open (it has no effect on regular
/// files); whatever is at FILE.part and is not a regular file is then removed
/// and the open tried once more. (Looking first would cost every download a
/// lookup of a name that is usually not there, which in a busy directory
/// waits for the directory's lock.) Not truncated here: the lock must be ours
/// before the content is. Returns the file and its length.
fn open_own_file(part: &Path) -> io::Result<(File, u64)> {
    let open = || {
        let file = no_follow(
            OpenOptions::new()
                .read(true) // for `read_back`
                .write(true)
                .create(true)
                .truncate(false),
        )
        .open(part)?;
        let meta = file.metadata()?;
        if meta.is_file() {
            Ok((file, meta.len()))
        } else {
            Err(io::Error::other("is not a regular file"))
        }
    };
    let first = match open() {
        Ok(opened) => return Ok(opened),
        Err(e) => e,
    };
    match fs::symlink_metadata(part) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(meta) if !meta.is_file() => {
            fs::remove_file(part)?;
            open()
        }
        _ => Err(first),
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if self.committed || self.anonymous {
            return; // an anonymous file goes with its descriptor
        }
        let empty = self.file.metadata().is_ok_and(|m| m.len() == 0);
        if self.keep && !empty {
            return;
        }
        let mut registry = partial_files();
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(meta_path(&self.dest));
        registry.retain(|(p, _)| p != &self.part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_file_is_invisible_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        // Without anonymous files on this file system: FILE.part.
        let anonymous = open_anonymous(&dest).is_some();
        assert!(matches!(&sink, Sink::Part(part) if part.anonymous == anonymous));
        sink.write(&mut io::sink(), b"data").unwrap();
        let while_writing: &[&str] = if anonymous { &[] } else { &["out.bin.part"] };
        assert_eq!(names_in(dir.path()), while_writing);
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(names_in(dir.path()), ["out.bin"]);

        // Unfinished, it leaves nothing.
        let other = dir.path().join("other.bin");
        let mut sink = Sink::open(&Output::File(other), false).unwrap().0;
        sink.write(&mut io::sink(), b"cut").unwrap();
        drop(sink);
        assert_eq!(names_in(dir.path()), ["out.bin"]);
    }

    #[test]
    fn an_existing_file_is_replaced_through_the_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(&dest, b"old").unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"data").unwrap();
        assert!(part_path(&dest).exists());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(names_in(dir.path()), ["out.bin"]);
    }

    #[test]
    fn a_name_taken_during_the_download_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut first = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        let mut second = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        first.write(&mut io::sink(), b"first").unwrap();
        second.write(&mut io::sink(), b"second").unwrap();
        second.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        first.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        assert_eq!(names_in(dir.path()), ["out.bin"]);
    }

    #[test]
    fn a_leftover_part_file_is_used_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(part_path(&dest), b"left by a cut -C run").unwrap();
        fs::write(meta_path(&dest), b"fetch resume 1\nvalidator \"v\"\n").unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        assert!(matches!(&sink, Sink::Part(part) if !part.anonymous));
        sink.write(&mut io::sink(), b"data").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(names_in(dir.path()), ["out.bin"]);
    }

    #[test]
    fn dropping_an_unfinished_part_removes_it_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(&dest, b"old").unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"new but cut").unwrap();
        drop(sink);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn a_locked_part_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(&dest, b"old").unwrap();
        let first = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        let err = Sink::open(&Output::File(dest.clone()), false)
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 23);
        assert!(err.to_string().contains("another fetch"), "{err}");
        drop(first);
    }

    #[test]
    fn restart_empties_the_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"first try").unwrap();
        assert!(sink.can_restart());
        sink.restart().unwrap();
        sink.write(&mut io::sink(), b"again").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"again");
        assert!(!Sink::Stdout.can_restart());
    }

    #[test]
    fn kept_part_files_resume_with_their_meta() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let resume = Resume {
            validator: "\"v1\"".into(),
            total: Some(10),
            url: Some("http://h/out.bin".into()),
        };
        let (mut sink, from) = Sink::open(&Output::File(dest.clone()), true).unwrap();
        assert_eq!(from, None);
        sink.remember(Some(&resume)).unwrap();
        sink.write(&mut io::sink(), b"01234").unwrap();
        drop(sink); // a failure with -C: kept
        assert!(part_path(&dest).exists() && meta_path(&dest).exists());

        let (mut sink, from) = Sink::open(&Output::File(dest.clone()), true).unwrap();
        assert_eq!(from, Some((5, resume)));
        sink.write(&mut io::sink(), b"56789").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"0123456789");
        assert!(!part_path(&dest).exists() && !meta_path(&dest).exists());
    }

    #[test]
    fn a_long_name_gets_a_part_name_that_fits() {
        let dir = Path::new("/d");
        let short = dir.join("f.bin");
        assert_eq!(part_path(&short), Path::new("/d/f.bin.part"));
        assert_eq!(meta_path(&short), Path::new("/d/f.bin.part.meta"));
        let long = |end: &str| dir.join(format!("{}{end}", "x".repeat(250)));
        for file in [long("a"), long("b"), dir.join("y".repeat(245))] {
            let meta = meta_path(&file);
            assert!(meta.file_name().unwrap().len() <= 255, "{meta:?}");
            assert_eq!(meta, with_suffix(&part_path(&file), ".meta"));
            assert_eq!(part_path(&file).parent(), Some(dir));
        }
        assert_ne!(part_path(&long("a")), part_path(&long("b")));
        assert_eq!(part_path(&long("a")), part_path(&long("a")));
        // Exactly at the limit, the plain name.
        let edge = dir.join("z".repeat(245));
        assert_eq!(part_path(&edge), with_suffix(&edge, ".part"));
        // A UTF-8 name is cut between characters.
        for pad in 0..3 {
            let name = format!("{}{}", "a".repeat(pad), "é".repeat(124));
            let part = part_path(&dir.join(&name));
            let part = part.file_name().unwrap();
            assert!(part.to_str().is_some(), "{part:?}");
            assert!(part.len() + ".meta".len() <= 255);
        }
    }

    #[test]
    fn a_part_without_meta_starts_over_and_empty_parts_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        fs::write(part_path(&dest), b"stale").unwrap();
        let (sink, from) = Sink::open(&Output::File(dest.clone()), true).unwrap();
        assert_eq!(from, None);
        assert_eq!(fs::metadata(part_path(&dest)).unwrap().len(), 0);
        drop(sink);
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn meta_text_round_trips_and_rejects_junk() {
        let r = Resume {
            validator: "Sun, 06 Nov 1994 08:49:37 GMT".into(),
            total: None,
            url: None,
        };
        assert_eq!(Resume::from_text(&r.to_text()), Some(r));
        let r = Resume {
            validator: "\"v1\"".into(),
            total: Some(7),
            url: Some("http://h/a?b=c".into()),
        };
        assert_eq!(Resume::from_text(&r.to_text()), Some(r));
        for junk in [
            "",
            "fetch resume 1\n",
            "other\nvalidator x\n",
            "fetch resume 1\nvalidator x\ntotal y\n",
            "fetch resume 1\nvalidator W/\"weak\"\n",
            "fetch resume 1\nvalidator x\nurl http://h/\ntotal 5\n",
            "fetch resume 1\nvalidator x\ntotal 5\nurl http://h/\nmore\n",
        ] {
            assert_eq!(Resume::from_text(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_planted_part_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let dest = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, part_path(&dest)).unwrap();
        let (mut sink, _) = Sink::open(&Output::File(dest.clone()), false).unwrap();
        sink.write(&mut io::sink(), b"new").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(fs::symlink_metadata(&dest).unwrap().is_file());
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn a_planted_meta_symlink_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let dest = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, meta_path(&dest)).unwrap();
        let (mut sink, from) = Sink::open(&Output::File(dest.clone()), true).unwrap();
        assert_eq!(from, None, "a symlink is not resume information");
        let resume = Resume {
            validator: "\"v1\"".into(),
            total: Some(3),
            url: None,
        };
        sink.remember(Some(&resume)).unwrap();
        sink.write(&mut io::sink(), b"cut").unwrap();
        drop(sink);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let meta = fs::symlink_metadata(meta_path(&dest)).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            Resume::from_text(&fs::read_to_string(meta_path(&dest)).unwrap()),
            Some(resume)
        );
    }

    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("private");
        fs::write(&dest, b"old").unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"new").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let mode = fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);

        // A read-only FILE: its FILE.part stays writable until it becomes
        // FILE, or a run that finds it left behind could not open it again.
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o444)).unwrap();
        let mut sink = Sink::open(&Output::File(dest.clone()), true).unwrap().0;
        sink.write(&mut io::sink(), b"cut").unwrap();
        drop(sink); // kept, as with -C
        let part_mode = fs::metadata(part_path(&dest)).unwrap().permissions().mode();
        assert_ne!(part_mode & 0o200, 0, "{part_mode:o}");
        let mut sink = Sink::open(&Output::File(dest.clone()), true).unwrap().0;
        sink.write(&mut io::sink(), b"whole").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        let mode = fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o444);
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }

    #[test]
    fn a_symlink_to_a_file_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("target", &link).unwrap();
        let mut sink = Sink::open(&Output::File(link.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"new").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names_in(dir.path()), ["link", "target"]);
    }

    #[test]
    fn a_name_ending_in_a_slash_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut name = dir.path().join("newdir").into_os_string();
        name.push("/");
        let err = Sink::open(&Output::File(name.into()), false).err().unwrap();
        assert_eq!(err.exit_code(), 23);
        assert!(err.to_string().contains("ends in '/'"), "{err}");
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn a_new_file_may_have_the_longest_name() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("n".repeat(255));
        if open_anonymous(&dest).is_none() {
            return; // no room for FILE.part's suffix: such names need O_TMPFILE
        }
        let mut sink = Sink::open(&Output::File(dest.clone()), false).unwrap().0;
        sink.write(&mut io::sink(), b"data").unwrap();
        sink.finish(&mut io::sink()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
    }

    #[test]
    fn failures_writing_a_replacement_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("old.bin");
        fs::write(&dest, b"old").unwrap();
        let (sink, _) = Sink::open(&Output::File(dest.clone()), false).unwrap();
        let Sink::Part(part) = &sink else {
            panic!("a replacement goes through FILE.part")
        };
        let e = part.error(io::ErrorKind::StorageFull.into());
        assert!(
            e.to_string().starts_with(&format!("{}: ", dest.display())),
            "{e}"
        );
        assert_eq!(
            sink.splice_target().map(|(_, path)| path),
            Some(dest.as_path())
        );
    }

    #[test]
    fn a_missing_directory_is_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("nodir").join("x");
        let err = Sink::open(&Output::File(dest.clone()), false)
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 23);
        let shown = dest.display().to_string();
        assert!(err.to_string().starts_with(&format!("{shown}: ")), "{err}");
    }

    #[test]
    fn a_directory_is_23() {
        let dir = tempfile::tempdir().unwrap();
        let err = Sink::open(&Output::File(dir.path().to_owned()), false)
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 23);
    }

    #[test]
    fn non_regular_files_are_written_directly() {
        let (sink, _) = Sink::open(&Output::File("/dev/null".into()), false).unwrap();
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
