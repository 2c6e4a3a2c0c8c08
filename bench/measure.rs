//! Runs one command and says how long it took, how much CPU it used and its peak
//! RSS, for bench/compare.py: like `/usr/bin/time -f '%e %U %S %M'`, with
//! nanosecond wall time.
//!
//! Usage: measure STDIN STDERR PROGRAM [ARGS...]
//!
//! The command runs with STDIN as its standard input, /dev/null as its standard
//! output and STDERR (truncated) as its standard error. Prints one line:
//! `STATUS WALL_S CPU_S MAXRSS_KIB`, where STATUS is the raw wait status, WALL_S
//! runs from just before fork to the return of wait4, CPU_S is user + system time
//! and MAXRSS_KIB is ru_maxrss, both from wait4's rusage (which include the
//! command's own waited-for children).
//!
//! Why a helper: a child started by posix_spawn/vfork from Python execs from
//! Python's address space, and the kernel carries that address space's peak RSS
//! (about 20 MB) into the child's ru_maxrss. A plain fork() from this small
//! program starts the child with only a few hundred KiB of anonymous memory
//! (file mappings are not copied), as GNU time does.
//! Build: rustc --edition 2021 -O bench/measure.rs

use std::ffi::{c_char, CString};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::process::exit;
use std::time::Instant;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// `struct rusage` on 64-bit Linux: two timevals, then 14 longs (ru_maxrss first).
#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

extern "C" {
    fn fork() -> i32;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> i32;
    fn dup2(old: i32, new: i32) -> i32;
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
    fn _exit(code: i32) -> !;
}

fn die(msg: &str) -> ! {
    eprintln!("measure: {msg}");
    exit(2)
}

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.len() < 3 {
        die("usage: measure STDIN STDERR PROGRAM [ARGS...]");
    }
    let stdin = File::open(&args[0]).unwrap_or_else(|e| die(&format!("{:?}: {e}", args[0])));
    let stdout = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap_or_else(|e| die(&format!("/dev/null: {e}")));
    let stderr = File::create(&args[1]).unwrap_or_else(|e| die(&format!("{:?}: {e}", args[1])));
    let argv: Vec<CString> = args[2..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| die("NUL in an argument")))
        .collect();
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let fds = [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];

    let started = Instant::now();
    // SAFETY: this program has one thread; the child only calls dup2, execvp and
    // _exit (async-signal-safe) on memory prepared before the fork.
    let pid = unsafe { fork() };
    if pid < 0 {
        die(&format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        unsafe {
            for (target, fd) in fds.iter().enumerate() {
                if dup2(*fd, target as i32) < 0 {
                    _exit(126);
                }
            }
            execvp(ptrs[0], ptrs.as_ptr());
            _exit(127);
        }
    }
    let mut status = 0i32;
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        rest: [0; 14],
    };
    // SAFETY: valid pointers to locals of the right layout.
    let r = unsafe { wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    if r != pid {
        die(&format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let secs = |t: &Timeval| t.sec as f64 + t.usec as f64 / 1e6;
    let cpu = secs(&usage.utime) + secs(&usage.stime);
    println!("{status} {wall:.9} {cpu:.6} {}", usage.rest[0]);
}
