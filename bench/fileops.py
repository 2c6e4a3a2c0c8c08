#!/usr/bin/env python3
"""The file-system floor of BENCHMARKS.md's row 6: how long creating 1,000
small files takes, without any network, the way curl does it (create FILE,
write, close) and the two ways fetch has done it: through FILE.part (look FILE
up, create FILE.part with O_NOFOLLOW|O_NONBLOCK, fstat, lock, write, rename
onto FILE, close; what fetch still does to replace a FILE) and, for a new
FILE, through an anonymous file (look FILE and FILE.part up, open an O_TMPFILE
in the directory, write, link it in as FILE through /proc/self/fd, close).
One thread, each round in a fresh directory, the three interleaved.

Usage: bench/fileops.py [DIR] [ROUNDS]
DIR defaults to a new directory under $TMPDIR (or /tmp), which is removed
at the end; ROUNDS defaults to 15. Python's own overhead is in both figures
(about the same per call); the difference between them is the file system's.
"""

import ctypes
import fcntl
import os
import shutil
import statistics
import sys
import tempfile
import time

COUNT = 1000
BODY = b"x" * 8192


def curl_style(d):
    for i in range(COUNT):
        fd = os.open(f"{d}/f{i:04d}.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, BODY)
        os.close(fd)


def fetch_style(d):
    for i in range(COUNT):
        path = f"{d}/f{i:04d}.bin"
        try:
            os.stat(path)
        except FileNotFoundError:
            pass
        fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        os.fstat(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, BODY)
        os.rename(path + ".part", path)
        os.close(fd)


LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400


def link_in(fd, path):
    # os.link would call link(2), which does not follow /proc's fd links.
    src = f"/proc/self/fd/{fd}".encode()
    if LIBC.linkat(AT_FDCWD, src, AT_FDCWD, path.encode(), AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


def anonymous_style(d):
    for i in range(COUNT):
        path = f"{d}/f{i:04d}.bin"
        for name in (path, path + ".part"):
            try:
                os.stat(name, follow_symlinks=name == path)
            except FileNotFoundError:
                pass
        fd = os.open(d, os.O_WRONLY | os.O_TMPFILE, 0o666)
        os.write(fd, BODY)
        link_in(fd, path)
        os.close(fd)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else None
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    work = tempfile.mkdtemp(prefix="fetch-fileops.", dir=base)
    styles = {"curl-style": curl_style, "fetch-style, FILE.part": fetch_style,
              "fetch-style, anonymous": anonymous_style}
    times = {name: [] for name in styles}
    try:
        n = 0
        for _ in range(rounds):
            for name, fn in styles.items():
                n += 1
                d = os.path.join(work, str(n))
                os.mkdir(d)
                os.sync()
                start = time.perf_counter()
                fn(d)
                times[name].append(time.perf_counter() - start)
                # Directories are kept until the end: deleting files makes the
                # next creations slower on ext4 (see BENCHMARKS.md's notes).
        for name, t in times.items():
            print(f"{name}: median {statistics.median(t) * 1e3:.1f} ms for {COUNT} files "
                  f"(min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f}, {rounds} rounds) in {work}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
