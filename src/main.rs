//! The `fetch` binary: parse the command line, run the library, print at most one
//! error line, exit with the code the error chose.
//!
//! The library forbids unsafe code (DESIGN §7). The binary denies it too, with
//! two process-level exceptions, each allowed where it stands: reading a
//! signal's disposition (`is_ignored`) and defining C's `pow` (`pow`).

#![deny(unsafe_code)]

mod cli;

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(cli::Invocation::Run(args)) => args,
        Ok(cli::Invocation::Print(text)) => {
            let mut stdout = io::stdout().lock();
            let written = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush());
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&fetch::output::stdout_error(e)),
            };
        }
        Ok(cli::Invocation::Generate(kind)) => {
            return match cli::generate(kind, &mut io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&fetch::output::stdout_error(e)),
            };
        }
        Err(e) => return fail(&e),
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };

    if config.parallel > 1 && config.jobs.len() > 1 {
        raise_descriptor_limit();
    }

    on_termination_signals();

    // Bodies go to stdout in large blocks: write them to the descriptor itself,
    // past std's line buffering (which would split binary data at newlines).
    let stdout_is_terminal = io::stdout().is_terminal();
    let mut stdout: Box<dyn Write + Send> = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdout()),
    };
    let mut stderr = io::stderr();
    let stderr_is_terminal = stderr.is_terminal();
    let sinks = fetch::Sinks {
        stdout: &mut stdout,
        stdout_is_terminal,
        stderr: &mut stderr,
        stderr_is_terminal,
    };
    // Each failure is printed as it happens; the exit code is the first
    // failure's in input order.
    match fetch::run(&config, sinks, &mut print_error) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(e.exit_code()),
    }
}

/// Ctrl-C, `kill` and `timeout` (SIGTERM), a closed terminal (SIGHUP): leave
/// no FILE.part behind (DESIGN §3, and with `-C` the part for the next run),
/// then exit with the shell's code for the signal (130 for SIGINT). The
/// signals are blocked here, before any other thread starts (threads inherit
/// the mask), and one thread waits for them: the cleanup runs on a normal
/// thread, not in a signal handler. Called before any other thread exists.
///
/// A signal the process was started with ignored stays ignored: `nohup`
/// ignores SIGHUP, a script's `trap '' TERM` SIGTERM, a shell's background
/// job SIGINT. (Blocked, such a signal would be queued and waited for.)
fn on_termination_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        if !is_ignored(signal) {
            signals.add(signal);
        }
    }
    if signals.thread_block().is_err() {
        return;
    }
    let waiter = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if let Ok(signal) = signals.wait() {
                fetch::output::remove_partial_files();
                std::process::exit(128 + signal as i32);
            }
        });
    // No thread to wait for them: the signals keep their default action.
    if waiter.is_err() {
        let _ = signals.thread_unblock();
    }
}

/// Whether `signal` is ignored (SIG_IGN), as the parent may have left it.
/// (nix has no call that only reads a disposition: its `sigaction` sets one.)
#[allow(unsafe_code)]
fn is_ignored(signal: nix::sys::signal::Signal) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction(2) only writes the current
    // one into `current`, which is valid memory for a `sigaction`.
    let read = unsafe { libc::sigaction(signal as i32, std::ptr::null(), current.as_mut_ptr()) };
    // SAFETY: zeroed is a valid `sigaction`, and a successful call filled it.
    read == 0 && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// A batch at `-j 256` holds a socket and a file per transfer, and idle kept
/// connections: more than the usual soft limit of 1,024 descriptors allows.
/// The soft limit is raised to the hard one, as the limit is meant to be used
/// (Go's runtime does the same); if that fails, fetch runs as it is.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// `fetch: <what>: <why>`, unless the error is a quiet one (a closed stdout).
fn print_error(e: &fetch::Error) {
    if e.exit_code() != 0 {
        let _ = writeln!(io::stderr(), "fetch: {e}");
    }
}

fn fail(e: &fetch::Error) -> ExitCode {
    print_error(e);
    ExitCode::from(e.exit_code())
}

/// C's `pow`, from the `libm` crate (musl's, in Rust). The only function of
/// glibc's libm that fetch calls is `pow` (indicatif's rate estimate); with
/// this definition in the executable the linker resolves that call here and
/// drops libm.so, which the dynamic loader would otherwise map into every
/// process: about 260 KiB of peak RSS, which the memory goal of BENCHMARKS.md
/// (row 7, 4 MiB) cannot spare.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn pow_is_the_real_thing() {
        assert_eq!(super::pow(2.0, 10.0), 1024.0);
        assert_eq!(super::pow(9.0, 0.5), 3.0);
        assert_eq!(super::pow(0.5, -1.0), 2.0);
        assert_eq!(super::pow(7.0, 0.0), 1.0);
        assert!(super::pow(-8.0, 1.0 / 3.0).is_nan());
        let e = super::pow(std::f64::consts::E, 1.5);
        assert!((e - 4.481_689_070_338_065).abs() < 1e-15, "{e}");
    }
}
