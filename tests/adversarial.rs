//! Issue 5: hostile and broken servers against the real binary. Each case of the
//! tables runs `fetch URL -o DIR/out` over an existing FILE and checks the exit
//! code (DESIGN §4), the one `fetch: ` line on stderr (§2) and what is left on
//! disk (§3): a failure leaves FILE as it was and no FILE.part, a success leaves
//! exactly the body. Most run a second time with no FILE before (a new FILE is
//! written another way): a failure must then leave nothing. Cases that need two
//! servers, TLS, `-O` or a FIFO follow the tables as their own tests, with the
//! same checks.

use crate::support::server::{Gate, Recorded, Server, Step, ok, raw, response};
use crate::support::tls::identity;
use crate::support::{MountRun, fetch, names_in, run_in_tmpfs, temp};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

/// Longest one run of fetch may take before it counts as hung and is killed.
/// Only a bug gets near it: every case ends on its own within about a second.
const HANG: Duration = Duration::from_secs(10);

/// What FILE holds before every case; a failure must leave exactly this.
const OLD: &[u8] = b"old content";

/// What the server does on each connection, given the request.
type Script = Arc<dyn Fn(&Recorded) -> Vec<Step> + Send + Sync>;

/// The state of the output directory after the run.
#[derive(Debug)]
enum Expect {
    /// A failure: FILE still holds [`OLD`] and nothing is beside it (no FILE.part).
    Untouched,
    /// A success: FILE holds exactly these bytes and nothing is beside it.
    Body(Vec<u8>),
    /// FILE is an (empty) directory before and after; nothing is written.
    Directory,
    /// FILE is a symlink to `/dev/full` before and after (how "output to
    /// /dev/full" fits `-o DIR/out`: a device is written directly); nothing beside it.
    DevFull,
}

/// One hostile server and what fetch must make of it.
struct Case {
    name: &'static str,
    script: Script,
    /// Extra command-line arguments, after `URL -o DIR/out`.
    args: Vec<&'static str>,
    code: i32,
    /// A substring of the one `fetch: ...` line (ignored when `code` is 0:
    /// then stderr must be empty).
    stderr: &'static str,
    file: Expect,
    /// When given, stdout must be exactly this.
    stdout: Option<&'static str>,
    /// Whether the table also runs the case with no FILE there before (a new
    /// FILE goes another way than a replaced one: README, "Files"). Then a
    /// failure must leave the directory empty and a success just FILE.
    also_new: bool,
}

/// How DIR/out is before a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// As the case's [`Expect`] says: [`OLD`], a directory, a link to /dev/full.
    Prepared,
    /// Nothing there.
    Nothing,
}

/// A case that must fail with `code` and leave FILE untouched.
fn fails(name: &'static str, code: i32, stderr: &'static str, script: Script) -> Case {
    Case {
        name,
        script,
        args: vec![],
        code,
        stderr,
        file: Expect::Untouched,
        stdout: None,
        also_new: true,
    }
}

/// A case that must succeed and leave FILE as it was (`-N` and a 304: only
/// with a FILE there).
fn keeps(name: &'static str, script: Script) -> Case {
    Case {
        code: 0,
        stderr: "",
        also_new: false,
        ..fails(name, 0, "", script)
    }
}

/// A case that must succeed and leave exactly `body` in FILE.
fn saves(name: &'static str, body: impl Into<Vec<u8>>, script: Script) -> Case {
    Case {
        name,
        script,
        args: vec![],
        code: 0,
        stderr: "",
        file: Expect::Body(body.into()),
        stdout: None,
        also_new: true,
    }
}

impl Case {
    fn args(mut self, args: &[&'static str]) -> Case {
        self.args = args.to_vec();
        self
    }

    fn file(mut self, file: Expect) -> Case {
        self.file = file;
        self
    }

    fn stdout(mut self, stdout: &'static str) -> Case {
        self.stdout = Some(stdout);
        self
    }
}

// ---------------------------------------------------------------------------
// Scripts

/// Any script.
fn script(f: impl Fn(&Recorded) -> Vec<Step> + Send + Sync + 'static) -> Script {
    Arc::new(f)
}

/// The same steps on every connection.
fn steps(steps: Vec<Step>) -> Script {
    script(move |_| steps.clone())
}

/// These bytes, then a clean close.
fn send(bytes: impl Into<Vec<u8>>) -> Script {
    steps(vec![Step::Send(bytes.into())])
}

/// These bytes, then the connection held open until fetch leaves: fetch must
/// know by itself that the response is over.
fn send_and_hold(bytes: impl Into<Vec<u8>>) -> Script {
    steps(vec![Step::Send(bytes.into()), Step::AwaitClose])
}

/// A chunked 200 head followed by `body` (the chunks, raw), then a clean close.
fn chunked(body: &[u8]) -> Script {
    send(raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", body))
}

/// `bytes` one at a time, `every` apart: a slowloris server.
fn trickle(bytes: &[u8], every: Duration) -> Vec<Step> {
    bytes
        .iter()
        .flat_map(|b| [Step::Send(vec![*b]), Step::Pause(every)])
        .collect()
}

/// A redirect with a small body.
fn redirect(status: &str, location: &str) -> Vec<Step> {
    vec![Step::Send(response(
        status,
        &[&format!("Location: {location}")],
        b"redirect body",
    ))]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A head with `n` distinct fields (Content-Length included) and the body "ok".
fn with_fields(n: usize) -> Vec<u8> {
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..n - 1 {
        head.push_str(&format!("X-Field-{i:05}: v\r\n"));
    }
    head.push_str("Content-Length: 2\r\n\r\nok");
    head.into_bytes()
}

// ---------------------------------------------------------------------------
// The runner

/// Runs every case (each against its own server) and fails with the names
/// and reasons of all that went wrong.
fn run_table(cases: Vec<Case>) {
    let mut seen = HashSet::new();
    for case in &cases {
        assert!(seen.insert(case.name), "two cases named {}", case.name);
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                run(case, &[])?;
                let new = matches!(case.file, Expect::Untouched | Expect::Body(_));
                if case.also_new && new {
                    let script = Arc::clone(&case.script);
                    let server = Server::start(move |r| script(r));
                    run_from(case, &server.url("/"), &[], Before::Nothing)
                        .map_err(|why| format!("with no FILE before: {why}"))?;
                }
                Ok::<(), String>(())
            }));
            match result {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("case {}: {why}", case.name)),
                Err(panic) => Some(format!(
                    "case {}: panicked: {}",
                    case.name,
                    panic_text(&*panic)
                )),
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Panics with the case's name when `result` is a failure.
fn must<T>(name: &str, result: Result<T, String>) -> T {
    result.unwrap_or_else(|why| panic!("case {name}: {why}"))
}

/// Starts the case's server on 127.0.0.1, runs fetch on `/` and checks the
/// outcome. Returns the server, for a look at what it received.
fn run(case: &Case, extra: &[OsString]) -> Result<Server, String> {
    let script = Arc::clone(&case.script);
    let server = Server::start(move |r| script(r));
    run_at(case, &server.url("/"), extra)?;
    Ok(server)
}

/// Runs `fetch url -o DIR/out ARGS EXTRA` over a prepared DIR/out and checks
/// the exit code, stderr, stdout and DIR (the case's script is not used here:
/// the caller serves `url`). Returns what fetch printed.
fn run_at(case: &Case, url: &str, extra: &[OsString]) -> Result<Output, String> {
    run_from(case, url, extra, Before::Prepared)
}

/// [`run_at`], from DIR/out as `before` says.
fn run_from(case: &Case, url: &str, extra: &[OsString], before: Before) -> Result<Output, String> {
    let dir = temp();
    let out = dir.path().join("out");
    match (&case.file, before) {
        (_, Before::Nothing) => {}
        (Expect::Untouched | Expect::Body(_), _) => fs::write(&out, OLD).unwrap(),
        (Expect::Directory, _) => fs::create_dir(&out).unwrap(),
        (Expect::DevFull, _) => std::os::unix::fs::symlink("/dev/full", &out).unwrap(),
    }
    let mut cmd = fetch();
    cmd.arg(url)
        .arg("-o")
        .arg(&out)
        .args(&case.args)
        .args(extra);
    let output = run_bounded(cmd)?;
    check_run(&output, case.code, case.stderr)?;
    if let Some(want) = case.stdout {
        let got = String::from_utf8_lossy(&output.stdout);
        if got != want {
            return Err(format!("stdout is {got:?}, not {want:?}"));
        }
    }
    check_dir(&case.file, before, dir.path(), &out)?;
    Ok(output)
}

/// Runs the command with stdout and stderr captured; a run that takes longer
/// than [`HANG`] is killed and reported.
fn run_bounded(cmd: std::process::Command) -> Result<Output, String> {
    let output = assert_cmd::Command::from_std(cmd)
        .timeout(HANG)
        .output()
        .map_err(|e| format!("could not run fetch: {e}"))?;
    if output.status.code().is_none() {
        return Err(format!(
            "fetch hung: killed after {HANG:?} ({}); stderr {:?}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output)
}

/// The exit code, and stderr: empty for a success, else exactly one line
/// `fetch: ...` containing `needle`. Never a raw control byte (ESC, C1) that a
/// terminal would act on, whatever the server sent.
fn check_run(output: &Output, code: i32, needle: &str) -> Result<(), String> {
    let got = output.status.code();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = vec![];
    if got != Some(code) {
        problems.push(format!("exit code {got:?}, expected {code}"));
    }
    if code == 0 {
        if !stderr.is_empty() {
            problems.push("stderr should be empty".into());
        }
    } else {
        if !(stderr.starts_with("fetch: ") && stderr.ends_with('\n') && stderr.lines().count() == 1)
        {
            problems.push("stderr is not exactly one line starting 'fetch: '".into());
        }
        if !stderr.contains(needle) {
            problems.push(format!("stderr does not contain {needle:?}"));
        }
    }
    let raw = &output.stderr;
    let active = raw.iter().enumerate().any(|(i, &b)| {
        (b < 0x20 && b != b'\n')
            || b == 0x7f
            || (b == 0xc2 && raw.get(i + 1).is_some_and(|c| (0x80..=0x9f).contains(c)))
    });
    if active {
        problems.push("stderr holds raw control bytes".into());
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n  stderr: {stderr:?}\n  stdout: {:?}",
        problems.join("; "),
        String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(300)])
    ))
}

/// What the run left in DIR.
fn check_dir(expect: &Expect, before: Before, dir: &Path, out: &Path) -> Result<(), String> {
    let names = names_in(dir);
    if before == Before::Nothing && matches!(expect, Expect::Untouched) {
        return match names.is_empty() {
            true => Ok(()),
            false => Err(format!("the directory holds {names:?}, expected nothing")),
        };
    }
    if names != ["out"] {
        return Err(format!(
            "the directory holds {names:?}, expected just [\"out\"]"
        ));
    }
    match expect {
        Expect::Untouched => {
            let now = fs::read(out).map_err(|e| format!("FILE: {e}"))?;
            if now != OLD {
                return Err(format!(
                    "FILE was changed to {:?}",
                    String::from_utf8_lossy(&now[..now.len().min(100)])
                ));
            }
        }
        Expect::Body(want) => {
            let now = fs::read(out).map_err(|e| format!("FILE: {e}"))?;
            if &now != want {
                return Err(format!(
                    "FILE holds {} bytes {:?}, expected {} bytes {:?}",
                    now.len(),
                    String::from_utf8_lossy(&now[..now.len().min(100)]),
                    want.len(),
                    String::from_utf8_lossy(&want[..want.len().min(100)])
                ));
            }
        }
        Expect::Directory => {
            if !out.is_dir() || !names_in(out).is_empty() {
                return Err("FILE is no longer an empty directory".into());
            }
        }
        Expect::DevFull => {
            let link =
                fs::read_link(out).map_err(|e| format!("FILE is no longer a symlink: {e}"))?;
            if link != Path::new("/dev/full") {
                return Err(format!("FILE now points to {}", link.display()));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The tables

/// Bodies cut short (18) and framings that cannot be trusted (8).
#[test]
fn framing() {
    run_table(vec![
        // Truncation at every framing: 18.
        fails(
            "content_length_short",
            18,
            "5 of 100 bytes",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"short")),
        ),
        fails(
            "content_length_u64_max_then_close",
            18,
            "of 18446744073709551615 bytes",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 18446744073709551615\n\n",
                b"tiny",
            )),
        ),
        fails("chunked_cut_inside_data", 18, "before its last chunk", chunked(b"5\r\nhel")),
        fails(
            "chunked_cut_between_data_and_crlf",
            18,
            "before its last chunk",
            chunked(b"5\r\nhello\r"),
        ),
        fails(
            "chunked_cut_before_the_last_chunk",
            18,
            "before its last chunk",
            chunked(b"5\r\nhello\r\n"),
        ),
        fails(
            "chunked_cut_inside_the_last_chunk_line",
            18,
            "before its last chunk",
            chunked(b"5\r\nhello\r\n0"),
        ),
        fails(
            "chunked_cut_before_the_trailers_end",
            18,
            "ended in its trailer section, after its last chunk",
            chunked(b"5\r\nhello\r\n0\r\n"),
        ),
        fails(
            "chunked_cut_inside_a_trailer",
            18,
            "ended in its trailer section, after its last chunk",
            chunked(b"5\r\nhello\r\n0\r\nX-Trailer: a\r\nX-Tra"),
        ),
        // No giant allocation for a giant declared chunk: the data streams.
        fails(
            "huge_chunk_ffffffff_then_close",
            18,
            "before its last chunk",
            chunked(b"ffffffff\r\nonly a few bytes"),
        ),
        fails(
            "chunk_of_u64_max_then_close",
            18,
            "before its last chunk",
            chunked(b"ffffffffffffffff\r\nonly a few bytes"),
        ),
        // Content-Length that cannot be trusted: 8.
        fails(
            "content_length_conflicting_fields",
            8,
            "conflicting Content-Length values 5 and 6",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 6\n\n",
                b"hello!",
            )),
        ),
        fails(
            "content_length_conflicting_list",
            8,
            "conflicting Content-Length",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 5, 6\n\n", b"hello!")),
        ),
        fails(
            "content_length_plus_sign",
            8,
            "invalid Content-Length '+5'",
            send(raw("HTTP/1.1 200 OK\nContent-Length: +5\n\n", b"hello")),
        ),
        fails(
            "content_length_minus_sign",
            8,
            "invalid Content-Length '-5'",
            send(raw("HTTP/1.1 200 OK\nContent-Length: -5\n\n", b"hello")),
        ),
        fails(
            "content_length_overflow",
            8,
            "invalid Content-Length '18446744073709551616'",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 18446744073709551616\n\n",
                b"hello",
            )),
        ),
        fails(
            "content_length_hex",
            8,
            "invalid Content-Length",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 0x5\n\n", b"hello")),
        ),
        // Chunk sizes that are not sizes: 8.
        fails(
            "chunk_size_17_hex_digits",
            8,
            "chunk size does not fit in 64 bits",
            chunked(b"10000000000000000\r\nx\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_size_far_beyond_u64",
            8,
            "chunk size does not fit in 64 bits",
            chunked(b"ffffffffffffffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_size_negative",
            8,
            "invalid chunk-size line '-5'",
            chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_size_empty",
            8,
            "invalid chunk-size line",
            chunked(b"\r\nhello\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_size_not_hex",
            8,
            "invalid chunk-size line 'zz'",
            chunked(b"zz\r\nhello\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_size_0x_prefix",
            8,
            "invalid chunk-size line",
            chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_data_without_crlf",
            8,
            "chunk data not followed by CRLF",
            chunked(b"3\r\nabcXY\r\n0\r\n\r\n"),
        ),
        fails(
            "chunk_data_longer_than_its_size",
            8,
            "chunk data not followed by CRLF",
            chunked(b"1\r\nxy\r\n0\r\n\r\n"),
        ),
        // Lines that never end: the limits, not the memory, decide.
        fails(
            "chunk_extension_endless",
            8,
            "chunk-size line longer than 4096 bytes",
            steps(vec![
                Step::Send(raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", b"5;ext=")),
                Step::Repeat {
                    bytes: b"x".to_vec(),
                    times: 1 << 20,
                },
                Step::AwaitClose,
            ]),
        ),
        fails(
            "trailers_endless",
            8,
            "trailer section longer than",
            steps(vec![
                Step::Send(raw(
                    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                    b"5\r\nhello\r\n0\r\n",
                )),
                Step::Repeat {
                    bytes: b"X-Trailer: 0123456789\r\n".to_vec(),
                    times: 10_000,
                },
                Step::AwaitClose,
            ]),
        ),
        // Transfer codings other than a lone chunked: 8.
        fails(
            "transfer_encoding_gzip",
            8,
            "unsupported Transfer-Encoding 'gzip'",
            send(raw("HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n", b"xx")),
        ),
        fails(
            "transfer_encoding_chunked_then_gzip",
            8,
            "unsupported Transfer-Encoding 'chunked, gzip'",
            send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked, gzip\n\n",
                b"2\r\nxx\r\n0\r\n\r\n",
            )),
        ),
        fails(
            "transfer_encoding_chunked_twice",
            8,
            "unsupported Transfer-Encoding",
            send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n",
                b"2\r\nxx\r\n0\r\n\r\n",
            )),
        ),
        fails(
            "transfer_encoding_in_http_1_0",
            8,
            "Transfer-Encoding in an HTTP/1.0 response",
            send(raw(
                "HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n",
                b"2\r\nxx\r\n0\r\n\r\n",
            )),
        ),
        fails(
            "transfer_encoding_identity",
            8,
            "unsupported Transfer-Encoding 'identity'",
            send(raw("HTTP/1.1 200 OK\nTransfer-Encoding: identity\n\n", b"xx")),
        ),
        // Hostile bytes echoed in the error line come out escaped.
        fails(
            "content_length_with_c1",
            8,
            "invalid Content-Length '1\\xc2\\x9b2'",
            send(&b"HTTP/1.1 200 OK\r\nContent-Length: 1\xc2\x9b2\r\n\r\nok"[..]),
        ),
        fails(
            "transfer_encoding_with_c1",
            8,
            "unsupported Transfer-Encoding 'chunked\\xc2\\x9b[2J'",
            send(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\xc2\x9b[2J\r\n\r\n0\r\n\r\n"[..]),
        ),
        fails(
            "chunk_size_with_esc",
            8,
            "invalid chunk-size line '5\\x1b[2J'",
            chunked(b"5\x1b[2J\r\nhello\r\n0\r\n\r\n"),
        ),
        // Framing and content checks: the framing error comes first.
        fails(
            "truncated_body_with_checksum",
            18,
            "5 of 100 bytes",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"short")),
        )
        .args(&[
            "--checksum",
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ]),
        fails(
            "truncated_body_with_no_fail",
            18,
            "5 of 100 bytes",
            send(raw("HTTP/1.1 500 Oops\nContent-Length: 100\n\n", b"short")),
        )
        .args(&["--no-fail"]),
        fails(
            "compressed_gzip_cut_inside_a_complete_chunked_body",
            61,
            "cannot decode the body",
            send({
                let mut gz = gzip(&[b'z'; 5000]);
                gz.truncate(gz.len() / 2);
                let mut body = raw(
                    "HTTP/1.1 200 OK\nContent-Encoding: gzip\nTransfer-Encoding: chunked\n\n",
                    format!("{:x}\r\n", gz.len()).as_bytes(),
                );
                body.extend(gz);
                body.extend_from_slice(b"\r\n0\r\n\r\n");
                body
            }),
        )
        .args(&["--compressed"]),
        // Framings that are fine, however odd.
        saves(
            "chunked_ignores_an_invalid_content_length",
            "hello",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: abc\nTransfer-Encoding: chunked\n\n",
                b"5\r\nhello\r\n0\r\n\r\n",
            )),
        ),
        saves(
            "content_length_duplicate_equal",
            "hello",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 5\n\n",
                b"hello",
            )),
        ),
        saves(
            "content_length_equal_list",
            "hello",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 5, 5\n\n", b"hello")),
        ),
        saves(
            "content_length_and_chunked_chunked_wins",
            "hello world",
            send(raw(
                "HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\n",
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            )),
        ),
        saves(
            "chunked_upper_hex_bare_lf_extensions_trailers",
            "0123456789abcdefghijklmnopqrstuvwxyz",
            chunked(b"A;a=1\n0123456789\r\n1A ; b=\"2\"\r\nabcdefghijklmnopqrstuvwxyz\n0\r\nX-Sum: 1\r\n\r\n"),
        ),
        // The response says where it ends; fetch must not wait for a close.
        saves(
            "more_bytes_than_content_length_held_open",
            "hello",
            send_and_hold(raw(
                "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
                b"helloAND THEN SOME BYTES THAT ARE NOT THE BODY",
            )),
        ),
        saves(
            "content_length_zero_held_open",
            "",
            send_and_hold(raw("HTTP/1.1 200 OK\nContent-Length: 0\n\n", b"")),
        ),
        saves(
            "chunked_complete_then_junk_held_open",
            "hello",
            send_and_hold(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"5\r\nhello\r\n0\r\n\r\nJUNK AFTER THE LAST CHUNK",
            )),
        ),
        saves(
            "status_204_with_body_bytes_held_open",
            "",
            send_and_hold(raw(
                "HTTP/1.1 204 No Content\nContent-Length: 5\n\n",
                b"hello",
            )),
        ),
        // A 304 has no body to replace FILE with, asked with -N or not (and
        // makes no FILE where there was none).
        Case {
            also_new: true,
            ..keeps(
                "status_304_with_body_bytes_held_open",
                send_and_hold(raw("HTTP/1.1 304 Not Modified\n\n", b"a body nobody asked for")),
            )
        },
        saves(
            "head_response_with_body_bytes",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            send_and_hold(raw("HTTP/1.1 200 OK\nContent-Length: 5\n\n", b"hello")),
        )
        .args(&["-I"]),
        saves(
            "close_delimited_http_1_0",
            "until the end",
            send(raw("HTTP/1.0 200 OK\n\n", b"until the end")),
        ),
    ]);
}

/// Heads that are broken, endless or too big: 8 (and the odd but valid ones).
#[test]
fn heads() {
    run_table(vec![
        fails(
            "head_never_ends",
            8,
            "response head larger than 256 KiB",
            steps(vec![
                Step::Send(b"HTTP/1.1 200 OK\r\n".to_vec()),
                Step::Repeat {
                    bytes: b"X-Again: and again\r\n".to_vec(),
                    times: 50_000,
                },
                Step::AwaitClose,
            ]),
        ),
        fails(
            "header_line_of_10_mb",
            8,
            "response head larger than 256 KiB",
            steps(vec![
                Step::Send(b"HTTP/1.1 200 OK\r\nX-Huge: ".to_vec()),
                Step::Repeat {
                    bytes: vec![b'a'; 1024],
                    times: 10 * 1024,
                },
                Step::Send(b"\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            ]),
        ),
        fails(
            "fields_10000",
            8,
            "more than 256 header fields",
            send(with_fields(10_000)),
        ),
        saves("fields_256", "ok", send(with_fields(256))),
        fails(
            "fields_257",
            8,
            "more than 256 header fields",
            send(with_fields(257)),
        ),
        fails(
            "bare_cr_in_a_value",
            8,
            "malformed response",
            send(&b"HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "bare_cr_as_a_line",
            8,
            "malformed response",
            send(&b"HTTP/1.1 200 OK\r\n\rX-A: b\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "nul_in_a_value",
            8,
            "invalid byte in a header field value",
            send(&b"HTTP/1.1 200 OK\r\nX-A: b\0c\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "esc_in_a_value",
            8,
            "invalid byte in a header field value",
            send(&b"HTTP/1.1 200 OK\r\nX-A: \x1b]0;pwned\x07\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "whitespace_before_the_colon",
            8,
            "whitespace before its colon",
            send(&b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"[..]),
        ),
        fails(
            "invalid_field_name",
            8,
            "invalid header field name",
            send(&b"HTTP/1.1 200 OK\r\nX(y): z\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        saves(
            "obs_fold_is_unfolded",
            "ok",
            send(&b"HTTP/1.1 200 OK\r\nContent-Type: text/plain;\r\n   charset=utf-8\r\nContent-Length: 2\r\n\r\nok"[..]),
        )
        .args(&["-s", "-w", "%{content_type}"])
        .stdout("text/plain; charset=utf-8"),
        saves(
            "bare_lf_head",
            "ok",
            send(&b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"[..]),
        ),
        fails(
            "garbage_status_line",
            8,
            "not an HTTP/1.x status line: SSH-2.0-OpenSSH_9.6",
            send(&b"SSH-2.0-OpenSSH_9.6\r\n"[..]),
        ),
        fails(
            "http_0_9_body_without_head",
            8,
            "not an HTTP/1.x status line: <html>",
            send(&b"<html>\n<body>no head at all</body>\n</html>\n"[..]),
        ),
        fails(
            "status_line_with_an_osc_sequence",
            8,
            "not an HTTP/1.x status line: \\x1b]0;pwned\\x07",
            send(&b"\x1b]0;pwned\x07\r\n\r\n"[..]),
        ),
        fails(
            "del_in_the_reason_phrase",
            8,
            "invalid status line",
            send(&b"HTTP/1.1 404 Not\x7fFound\r\nContent-Length: 0\r\n\r\n"[..]),
        ),
        fails(
            "reason_phrase_of_10_mb",
            8,
            "response head larger than 256 KiB",
            steps(vec![
                Step::Send(b"HTTP/1.1 200 ".to_vec()),
                Step::Repeat {
                    bytes: vec![b'K'; 1024],
                    times: 10 * 1024,
                },
                Step::Send(b"\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            ]),
        ),
        saves(
            "status_line_without_a_reason",
            "ok",
            send(&b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "http_2_status_line",
            8,
            "malformed response",
            send(&b"HTTP/2 200\r\n\r\n"[..]),
        ),
        fails(
            "status_code_of_four_digits",
            8,
            "malformed response",
            send(&b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"[..]),
        ),
        fails(
            "head_cut_mid_way",
            8,
            "closed in the middle of the response head",
            send(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cut"[..]),
        ),
        // Interim responses: skipped, but within the one head budget.
        saves(
            "interim_heads_then_the_final_one",
            "ok",
            send(raw(
                "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </a.css>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n",
                b"ok",
            )),
        ),
        saves(
            "interim_heads_1000_within_the_budget",
            "ok",
            steps(vec![
                Step::Repeat {
                    bytes: b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                    times: 1000,
                },
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 2\n\n", b"ok")),
            ]),
        ),
        fails(
            "interim_flood",
            8,
            "response head larger than 256 KiB",
            steps(vec![
                Step::Repeat {
                    bytes: b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                    times: 20_000,
                },
                Step::AwaitClose,
            ]),
        ),
        fails(
            "interim_then_close",
            8,
            "closed in the middle of the response head",
            send(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]),
        ),
        fails(
            "unrequested_101",
            8,
            "101 Switching Protocols, but no upgrade was asked for",
            send_and_hold(raw(
                "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n",
                b"\x81\x05hello",
            )),
        ),
        // A reason phrase is shown to a user: it must not drive their terminal.
        fails(
            "esc_in_the_reason_phrase",
            8,
            "invalid status line",
            send(&b"HTTP/1.1 200 O\x1b[2J\x1b[31mK\r\nContent-Length: 2\r\n\r\nok"[..]),
        ),
        fails(
            "c1_csi_in_the_reason_phrase",
            22,
            "HTTP 404 Not\\xc2\\x9b31m Found",
            send(&b"HTTP/1.1 404 Not\xc2\x9b31m Found\r\nContent-Length: 4\r\n\r\nnope"[..]),
        ),
    ]);
}

/// Servers that stall, vanish or reset: 28, 52, 56.
#[test]
fn connections() {
    let every = Duration::from_millis(200);
    let mut slow_body = vec![Step::Send(raw(
        "HTTP/1.1 200 OK\nContent-Length: 100\n\n",
        b"",
    ))];
    slow_body.extend(trickle(&[b'x'; 100], every));
    run_table(vec![
        fails(
            "slowloris_head_max_time",
            28,
            "--max-time",
            steps(trickle(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Slow: yes\r\n\r\nhello",
                every,
            )),
        )
        .args(&["--max-time", "1"]),
        fails(
            "slowloris_body_max_time",
            28,
            "--max-time",
            steps(slow_body),
        )
        .args(&["--max-time", "1"]),
        fails(
            "silence_before_the_head",
            28,
            "no data for 0.3 s (--read-timeout)",
            steps(vec![Step::AwaitClose]),
        )
        .args(&["--read-timeout", "0.3"]),
        fails(
            "silence_after_the_head",
            28,
            "no data for 0.3 s (--read-timeout)",
            send_and_hold(raw("HTTP/1.1 200 OK\nContent-Length: 10\n\n", b"")),
        )
        .args(&["--read-timeout", "0.3"]),
        fails(
            "silence_inside_a_chunk",
            28,
            "no data for 0.3 s (--read-timeout)",
            send_and_hold(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"a\r\n01234",
            )),
        )
        .args(&["--read-timeout", "0.3"]),
        fails(
            "empty_reply",
            52,
            "the server closed the connection without sending a response",
            steps(vec![]),
        ),
        fails(
            "reset_before_the_head",
            56,
            "connection reset",
            steps(vec![Step::Reset]),
        ),
        fails(
            "reset_mid_body",
            56,
            "connection reset",
            steps(vec![
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"part")),
                Step::Reset,
            ]),
        ),
        fails(
            "reset_every_time_despite_retries",
            56,
            "connection reset",
            steps(vec![
                Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"part")),
                Step::Reset,
            ]),
        )
        .args(&["--retry", "2", "--retry-delay", "0.01"]),
        fails(
            "cut_every_time_despite_retries",
            18,
            "of 100 bytes",
            send(raw(
                "HTTP/1.1 200 OK\nAccept-Ranges: bytes\nETag: \"v1\"\nContent-Length: 100\n\n",
                b"part",
            )),
        )
        .args(&["--retry", "2", "--retry-delay", "0.01"]),
        fails(
            "reset_mid_chunked_body",
            56,
            "connection reset",
            steps(vec![
                Step::Send(raw(
                    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                    b"a\r\n01234",
                )),
                Step::Reset,
            ]),
        ),
    ]);
}

/// Redirects that loop, lead nowhere allowed or break: 1, 8, 47; 3xx that are final.
#[test]
fn redirects() {
    run_table(vec![
        fails(
            "redirect_head_cut_mid_way",
            8,
            "closed in the middle of the response head",
            send(&b"HTTP/1.1 301 Moved Permanently\r\nLocation: /next\r\n"[..]),
        ),
        fails(
            "head_cut_after_a_redirect",
            8,
            "closed in the middle of the response head",
            script(|req| match req.target() {
                "/" => redirect("302 Found", "/next"),
                _ => vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec())],
            }),
        ),
        fails(
            "redirect_to_itself",
            47,
            "redirect loop",
            steps(redirect("301 Moved Permanently", "/")),
        ),
        fails(
            "redirect_a_b_a",
            47,
            "redirect loop",
            script(|req| match req.target() {
                "/" => redirect("302 Found", "/b"),
                _ => redirect("302 Found", "/"),
            }),
        ),
        fails(
            "redirects_without_end",
            47,
            "more than 3 redirects",
            script(|req| redirect("307 Temporary Redirect", &format!("{}x", req.target()))),
        )
        .args(&["--max-redirs", "3"]),
        fails(
            "redirect_location_of_1_mb",
            8,
            "response head larger than 256 KiB",
            steps(vec![
                Step::Send(b"HTTP/1.1 302 Found\r\nLocation: /".to_vec()),
                Step::Repeat {
                    bytes: b"a".to_vec(),
                    times: 1 << 20,
                },
                Step::Send(b"\r\nContent-Length: 0\r\n\r\n".to_vec()),
            ]),
        ),
        // CR/LF in a Location: raw, the head is malformed; percent-encoded,
        // they stay encoded in the next request line and inject nothing.
        fails(
            "redirect_location_with_a_raw_cr",
            8,
            "malformed response",
            send(&b"HTTP/1.1 302 Found\r\nLocation: /next\rX-Injected: yes\r\nContent-Length: 0\r\n\r\n"[..]),
        ),
        saves(
            "redirect_location_with_encoded_crlf",
            "clean",
            script(|req| match (req.target(), req.field("X-Injected")) {
                ("/", _) => redirect("302 Found", "/next%0d%0aX-Injected:%20yes%0d%0a"),
                ("/next%0d%0aX-Injected:%20yes%0d%0a", None) => vec![Step::Send(ok(b"clean"))],
                _ => vec![Step::Send(response("400 Bad Request", &[], b"injected"))],
            }),
        ),
        fails(
            "redirect_to_file",
            1,
            "a redirect to file:///etc/passwd: only http and https",
            steps(redirect("302 Found", "file:///etc/passwd")),
        ),
        fails(
            "redirect_to_ftp",
            1,
            "a redirect to ftp://127.0.0.1/pub/file: only http",
            steps(redirect("302 Found", "ftp://127.0.0.1/pub/file")),
        ),
        fails(
            "redirect_to_data",
            1,
            "a redirect to data:text/plain;base64,aGk=: only",
            steps(redirect("302 Found", "data:text/plain;base64,aGk=")),
        ),
        fails(
            "redirect_to_javascript",
            1,
            "a redirect to javascript:alert(1): only http and https (--no-follow",
            steps(redirect("302 Found", "javascript:alert(1)")),
        ),
        fails(
            "redirect_location_unparsable",
            8,
            "invalid Location",
            steps(redirect("302 Found", "http://")),
        ),
        saves(
            "redirect_without_location_is_final",
            "no location here",
            send(response("302 Found", &[], b"no location here")),
        ),
        saves(
            "redirect_with_empty_location_is_final",
            "empty location here",
            send(response(
                "302 Found",
                &["Location: "],
                b"empty location here",
            )),
        ),
        saves(
            "status_305_is_not_followed",
            "use a proxy",
            script(|req| match req.target() {
                "/" => vec![Step::Send(response(
                    "305 Use Proxy",
                    &["Location: /followed"],
                    b"use a proxy",
                ))],
                _ => vec![Step::Send(ok(b"followed"))],
            }),
        ),
        saves(
            "status_300_is_not_followed",
            "choose",
            script(|req| match req.target() {
                "/" => vec![Step::Send(response(
                    "300 Multiple Choices",
                    &["Location: /followed"],
                    b"choose",
                ))],
                _ => vec![Step::Send(ok(b"followed"))],
            }),
        ),
    ]);
}

/// Responses that say no, bodies that fail a check, outputs that cannot be written.
#[test]
fn statuses_checks_and_outputs() {
    // SHA-256 of the empty string: not the body's.
    let wrong_digest = "Content-Digest: sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";
    run_table(vec![
        // -N: FILE is up to date; the 304's body bytes must not touch it.
        keeps(
            "newer_304_with_body_bytes_held_open",
            send_and_hold(raw(
                "HTTP/1.1 304 Not Modified\nContent-Length: 9\n\n",
                b"overwrite",
            )),
        )
        .args(&["-N"]),
        fails(
            "status_404",
            22,
            "HTTP 404 Not Found (use --no-fail",
            send(response("404 Not Found", &[], b"not here")),
        ),
        // A part of the file answering a request for all of it would be
        // saved as the file; a 206 of the whole resource is the whole body.
        fails(
            "unasked_206_of_part_of_the_file",
            8,
            "206 Partial Content to a request for the whole resource",
            send(raw(
                "HTTP/1.1 206 Partial Content\nContent-Range: bytes 0-4/10\nContent-Length: 5\n\n",
                b"01234",
            )),
        ),
        fails(
            "unasked_206_without_content_range",
            8,
            "(no Content-Range)",
            send(raw(
                "HTTP/1.1 206 Partial Content\nContent-Length: 5\n\n",
                b"01234",
            )),
        ),
        saves(
            "unasked_206_of_the_whole_file",
            &b"0123456789"[..],
            send(raw(
                "HTTP/1.1 206 Partial Content\nContent-Range: bytes 0-9/10\nContent-Length: 10\n\n",
                b"0123456789",
            )),
        ),
        fails(
            "status_404_to_head",
            22,
            "HTTP 404 Not Found",
            send(raw("HTTP/1.1 404 Not Found\nContent-Length: 8\n\n", b"")),
        )
        .args(&["-I"]),
        fails(
            "content_digest_mismatch",
            110,
            "does not match the server's Content-Digest",
            send(response("200 OK", &[wrong_digest], b"hello")),
        ),
        fails(
            "compressed_body_that_is_not_gzip",
            61,
            "cannot decode the body",
            send(response(
                "200 OK",
                &["Content-Encoding: gzip"],
                b"this is not gzip at all",
            )),
        )
        .args(&["--compressed"]),
        // What follows the compressed stream would be content silently lost.
        fails(
            "compressed_stream_then_more_bytes",
            61,
            "data after the end of the compressed stream",
            send(response(
                "200 OK",
                &["Content-Encoding: gzip"],
                &[gzip(b"hello"), b"and more that is not gzip".to_vec()].concat(),
            )),
        )
        .args(&["--compressed"]),
        fails(
            "output_is_a_directory",
            23,
            "is a directory",
            send(ok(b"data")),
        )
        .file(Expect::Directory),
        fails(
            "output_is_dev_full",
            23,
            "No space left on device",
            send(ok(b"data")),
        )
        .file(Expect::DevFull),
    ]);
}

// ---------------------------------------------------------------------------
// Cases that need more than one plain server

/// A TLS server, its CA for `--cacert`, and the extra arguments to trust it.
fn tls_server(script: Script) -> (Server, crate::support::tls::Identity, Vec<OsString>) {
    let id = identity(&["localhost"]);
    let server = Server::start_tls(id.config.clone(), move |r| script(r));
    let args = vec!["--cacert".into(), id.ca_file.clone().into_os_string()];
    (server, id, args)
}

#[test]
fn tls_close_without_close_notify_on_a_close_delimited_body_is_18() {
    let cut = fails(
        "tls_close_without_close_notify",
        18,
        "without a TLS close_notify",
        steps(vec![
            Step::Send(raw("HTTP/1.1 200 OK\n\n", b"a body with no length")),
            Step::EndWithoutNotify,
        ]),
    );
    let (server, _id, args) = tls_server(Arc::clone(&cut.script));
    must(
        cut.name,
        run_at(&cut, &server.localhost_url("/"), &args).map(drop),
    );

    // The control: the same body ended with close_notify is complete.
    let clean = saves(
        "tls_close_with_close_notify",
        "a body with no length",
        send(raw("HTTP/1.1 200 OK\n\n", b"a body with no length")),
    );
    let (server, _id, args) = tls_server(Arc::clone(&clean.script));
    must(
        clean.name,
        run_at(&clean, &server.localhost_url("/"), &args).map(drop),
    );
}

#[test]
fn https_to_http_redirect_is_1() {
    let plain = Server::body("downgraded");
    let target = plain.url("/");
    let case = fails(
        "https_to_http_redirect",
        1,
        "refusing to follow a redirect from https to http",
        script(move |_| redirect("302 Found", &target)),
    );
    let (server, _id, args) = tls_server(Arc::clone(&case.script));
    must(
        case.name,
        run_at(&case, &server.localhost_url("/"), &args).map(drop),
    );
    assert_eq!(server.requests().len(), 1);
    assert!(plain.requests().is_empty(), "the http server was asked");
}

/// Credentials from every source stay with the origin that was given them:
/// not to another port, not to another host name for the same socket, not to
/// a Location that brings its own userinfo.
#[test]
fn credentials_never_reach_another_origin() {
    let other = Server::body("landed");
    let other_port = other.addr().port();
    // (source, arguments, userinfo in the URL, the field that carries it)
    for (source, args, userinfo, field) in [
        ("-u", &["-u", "user:secret"][..], false, "Authorization"),
        ("userinfo", &[][..], true, "Authorization"),
        (
            "-H Authorization",
            &["-H", "Authorization: Bearer secret"][..],
            false,
            "Authorization",
        ),
        (
            "-H Cookie",
            &["-H", "Cookie: session=secret"][..],
            false,
            "Cookie",
        ),
    ] {
        for destination in [
            "other_port",
            "localhost_same_port",
            "location_with_userinfo",
        ] {
            let name = format!("{source} redirected to {destination}");
            let script = script(move |req| match req.target() {
                "/" => {
                    let host = req.field("Host").unwrap();
                    let own_port = host.rsplit(':').next().unwrap().to_owned();
                    let location = match destination {
                        "other_port" => format!("http://127.0.0.1:{other_port}/landing"),
                        "localhost_same_port" => format!("http://localhost:{own_port}/landing"),
                        _ => format!("http://evil:pw@127.0.0.1:{other_port}/landing"),
                    };
                    redirect("302 Found", &location)
                }
                _ => vec![Step::Send(ok(b"landed"))],
            });
            let case = saves("credentials", "landed", script).args(args);
            let origin = Server::start({
                let script = Arc::clone(&case.script);
                move |r| script(r)
            });
            let mut url = origin.url("/");
            if userinfo {
                url = url.replace("http://", "http://user:secret@");
            }
            let before = other.requests().len();
            must(&name, run_at(&case, &url, &[]).map(drop));
            let first = &origin.requests()[0];
            assert!(
                first.field(field).is_some(),
                "{name}: the origin got no {field}:\n{}",
                first.raw
            );
            let landed: Vec<Recorded> = match destination {
                "localhost_same_port" => origin.requests()[1..].to_vec(),
                _ => other.requests()[before..].to_vec(),
            };
            assert_eq!(landed.len(), 1, "{name}");
            assert_eq!(landed[0].target(), "/landing", "{name}");
            for crossing in ["Authorization", "Cookie"] {
                assert_eq!(
                    landed[0].field(crossing),
                    None,
                    "{name}: {crossing} crossed to another origin:\n{}",
                    landed[0].raw
                );
            }
        }
    }
}

/// `-O` names the file after the URL; Content-Disposition's hostile names
/// (parent directories, absolute paths) are ignored and nothing lands outside.
#[test]
fn content_disposition_cannot_choose_the_path() {
    let dir = temp();
    let inner = dir.path().join("inner");
    fs::create_dir(&inner).unwrap();
    let outside = dir.path().join("escaped.sh");
    let disposition = format!(
        "Content-Disposition: attachment; filename=\"../escaped.sh\"; filename*=UTF-8''{}",
        outside.display().to_string().replace('/', "%2F")
    );
    let server = Server::steps(vec![Step::Send(response(
        "200 OK",
        &[&disposition],
        b"payload",
    ))]);
    for how in [&["-O"][..], &["--output-dir", "."][..]] {
        let mut cmd = fetch();
        cmd.current_dir(&inner)
            .arg(server.url("/files/report.txt"))
            .args(how);
        let output = must("content_disposition", run_bounded(cmd));
        must("content_disposition", check_run(&output, 0, ""));
        assert_eq!(names_in(&inner), ["report.txt"], "{how:?}");
        assert_eq!(fs::read(inner.join("report.txt")).unwrap(), b"payload");
        assert_eq!(names_in(dir.path()), ["inner"], "{how:?}: written outside");
        fs::remove_file(inner.join("report.txt")).unwrap();
    }
}

/// What a run in a tmpfs must have left: exit 23 with one line naming the
/// cause, and the file system as before (FILE untouched, nothing beside it;
/// nothing at all where there was no FILE).
fn check_failed_write(name: &str, run: &MountRun, old: Option<&[u8]>, cause: &str) {
    assert_eq!(run.code, Some(23), "{name}: {}", run.stderr);
    assert!(
        run.stderr.starts_with("fetch: ") && run.stderr.lines().count() == 1,
        "{name}: {:?}",
        run.stderr
    );
    assert!(run.stderr.contains(cause), "{name}: {:?}", run.stderr);
    match old {
        Some(old) => {
            assert_eq!(run.names, ["out"], "{name}");
            assert_eq!(run.out.as_deref(), Some(old), "{name}");
        }
        None => assert!(run.names.is_empty(), "{name}: {:?}", run.names),
    }
}

/// A full disk (a 64 KiB tmpfs, a 1 MiB body): 23, and neither FILE.part nor
/// an anonymous file survives; on the zero-copy path (plain http to a file)
/// and the copying one (chunked), over an old FILE and with none. (Where no
/// mount namespace can be made, a_fifo_whose_reader_left_is_23 and
/// /dev/full in the tables cover a write that fails.)
#[test]
fn a_full_disk_is_23_and_leaves_nothing() {
    let len = 1 << 20;
    let server = Server::start(move |req: &Recorded| match req.target() {
        "/chunked" => vec![
            Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n".to_vec()),
            Step::Pattern { from: 0, len },
            Step::Send(b"\r\n0\r\n\r\n".to_vec()),
        ],
        _ => vec![
            Step::Send(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()),
            Step::Pattern { from: 0, len },
        ],
    });
    for path in ["/plain", "/chunked"] {
        for old in [Some(OLD), None] {
            let Some(run) = run_in_tmpfs("64k", old, false, &[server.url(path)]) else {
                return;
            };
            let name = format!("{path}, old FILE: {}", old.is_some());
            check_failed_write(&name, &run, old, "No space left on device");
        }
    }
}

/// A read-only file system: 23 before any request (the output is opened
/// before connecting), FILE untouched. Where no mount namespace can be made,
/// a directory without write permission stands in (for a user other than
/// root, who may write anyway).
#[test]
fn a_read_only_output_is_23_before_any_request() {
    let server = Server::body("new content");
    for old in [Some(OLD), None] {
        let name = format!("old FILE: {}", old.is_some());
        match run_in_tmpfs("64k", old, true, &[server.url("/")]) {
            Some(run) => check_failed_write(&name, &run, old, "Read-only file system"),
            None => {
                use std::os::unix::fs::PermissionsExt;
                let dir = temp();
                if let Some(old) = old {
                    fs::write(dir.path().join("out"), old).unwrap();
                }
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
                if fs::write(dir.path().join("probe"), "").is_ok() {
                    eprintln!("root writes to any directory: no read-only output to test");
                    return;
                }
                let mut cmd = fetch();
                cmd.arg(server.url("/"))
                    .arg("-o")
                    .arg(dir.path().join("out"));
                let output = must(&name, run_bounded(cmd));
                must(&name, check_run(&output, 23, "Permission denied"));
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
                let want: &[&str] = if old.is_some() { &["out"] } else { &[] };
                assert_eq!(names_in(dir.path()), want, "{name}");
            }
        }
    }
    assert!(
        server.requests().is_empty(),
        "the output failed after a request"
    );
}

/// A FIFO as FILE is written directly; when its reader goes away before the
/// body arrives, the write fails: 23, not a hang, not a signal death.
#[cfg(target_os = "linux")]
#[test]
fn a_fifo_whose_reader_left_is_23() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    /// `O_NONBLOCK` on Linux: opening a FIFO's read end then never blocks.
    const O_NONBLOCK: i32 = 0o4000;

    let dir = temp();
    let fifo = dir.path().join("out");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    // A reader is there when fetch opens the FIFO (before it connects), so that
    // open does not block; it leaves before the server sends the response.
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let gate = Gate::new();
    let server = Server::steps(vec![
        Step::Signal,
        Step::WaitFor(gate.clone()),
        Step::Send(ok(&[b'x'; 256 * 1024])),
    ]);
    let mut cmd = fetch();
    cmd.arg(server.url("/")).arg("-o").arg(&fifo);
    let running = std::thread::spawn(move || run_bounded(cmd));
    server.reached();
    drop(reader);
    gate.open();
    let output = must("fifo", running.join().unwrap());
    must("fifo", check_run(&output, 23, "Broken pipe"));
    assert_eq!(names_in(dir.path()), ["out"]);
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// A TLS server that accepts the connection and never says a word: the
/// handshake is bounded by --read-timeout and by --max-time.
#[test]
fn a_silent_tls_server_times_out_in_the_handshake() {
    // Connections complete in the listen backlog; nothing ever answers them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    // No script: the listener above is the server.
    for (name, args, stderr) in [
        (
            // The handshake is part of connecting (README "Network").
            "tls_handshake_connect_timeout",
            &["-k", "--connect-timeout", "0.3", "--read-timeout", "30"][..],
            "no connection within 0.3 s (--connect-timeout): the TLS handshake did not finish",
        ),
        (
            "tls_handshake_max_time",
            &["-k", "--max-time", "0.5"][..],
            "--max-time",
        ),
    ] {
        let case = fails(name, 28, stderr, steps(vec![])).args(args);
        must(name, run_at(&case, &url, &[]).map(drop));
    }
}

/// URLs in messages never show a password (README "Where things go"), whatever
/// the failure, in the error line and in `-w`.
#[test]
fn the_password_never_shows_in_an_error() {
    let cases = vec![
        fails(
            "password_with_malformed_head",
            8,
            "malformed response",
            send(&b"garbage\r\n\r\n"[..]),
        ),
        fails(
            "password_with_404",
            22,
            "HTTP 404",
            send(response("404 Not Found", &[], b"")),
        ),
        fails(
            "password_with_redirect_loop",
            47,
            "redirect loop",
            steps(redirect("302 Found", "/")),
        ),
        fails(
            "password_with_truncation",
            18,
            "5 of 100 bytes",
            send(raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"short")),
        ),
    ];
    for case in cases {
        let case = case.args(&["-w", "%{url_effective} %{errormsg}"]);
        let script = Arc::clone(&case.script);
        let server = Server::start(move |r| script(r));
        let url = server.url("/").replace("http://", "http://user:s3cret@");
        let output = must(case.name, run_at(&case, &url, &[]));
        for (stream, bytes) in [("stderr", &output.stderr), ("stdout", &output.stdout)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("s3cret"),
                "case {}: the password is on {stream}: {text}",
                case.name
            );
        }
        assert!(
            server.requests()[0].field("Authorization").is_some(),
            "case {}: no credentials sent",
            case.name
        );
    }
}

/// The error for an endless trailer section names the limit it broke.
#[test]
fn endless_trailers_name_the_64_kib_limit() {
    let case = fails(
        "trailers_endless_message",
        8,
        "trailer section longer than 64 KiB",
        steps(vec![
            Step::Send(raw(
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                b"5\r\nhello\r\n0\r\n",
            )),
            Step::Repeat {
                bytes: b"X-Trailer: 0123456789\r\n".to_vec(),
                times: 10_000,
            },
            Step::AwaitClose,
        ]),
    );
    must(case.name, run(&case, &[]).map(drop));
}

/// A FIFO planted at FILE.part, with or without a reader holding it open, is
/// not written into: fetch replaces it with its own file and FILE is whole.
#[cfg(target_os = "linux")]
#[test]
fn a_planted_part_fifo_is_replaced() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    const O_NONBLOCK: i32 = 0o4000;
    let server = Server::body("downloaded");
    for with_reader in [false, true] {
        let dir = temp();
        let out = dir.path().join("out");
        let part = dir.path().join("out.part");
        let made = std::process::Command::new("mkfifo")
            .arg(&part)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        let reader = with_reader.then(|| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(O_NONBLOCK)
                .open(&part)
                .unwrap()
        });
        let mut cmd = fetch();
        cmd.arg(server.url("/")).arg("-s").arg("-o").arg(&out);
        let output = must("planted_fifo", run_bounded(cmd));
        must("planted_fifo", check_run(&output, 0, ""));
        assert_eq!(fs::read_to_string(&out).unwrap(), "downloaded");
        assert!(!fs::metadata(&out).unwrap().file_type().is_fifo());
        assert!(!part.exists(), "reader {with_reader}: FILE.part is left");
        drop(reader);
    }
}

/// FILE.part is fetch's own file: one planted in its place as a symlink (a
/// shared directory, a hostile user) must not be followed, or a download
/// truncates and overwrites whatever the link points to.
#[test]
fn a_planted_part_symlink_is_not_followed() {
    use std::os::unix::fs::symlink;
    let short = raw("HTTP/1.1 200 OK\nContent-Length: 100\n\n", b"short");
    for (name, server, ok_code) in [
        ("planted_link_and_a_cut_body", Server::bytes(short), 18),
        (
            "planted_link_and_a_whole_body",
            Server::body("downloaded"),
            0,
        ),
    ] {
        let dir = temp();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        let out = work.join("out");
        fs::write(&out, OLD).unwrap();
        symlink(&victim, work.join("out.part")).unwrap();
        let created = dir.path().join("created");

        let mut cmd = fetch();
        cmd.arg(server.url("/")).arg("-o").arg(&out);
        let output = must(name, run_bounded(cmd));
        // Refusing the planted link (23) is as good as replacing it.
        let code = output.status.code().unwrap();
        if code != 23 {
            must(name, check_run(&output, ok_code, "5 of 100 bytes"));
        }
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "precious",
            "{name}: the link's target was written"
        );
        assert!(
            !fs::symlink_metadata(&out).unwrap().file_type().is_symlink(),
            "{name}: FILE became the planted link"
        );

        // A dangling link must not create its target either.
        fs::remove_file(work.join("out.part")).ok();
        symlink(&created, work.join("out.part")).unwrap();
        let mut cmd = fetch();
        cmd.arg(server.url("/")).arg("-o").arg(&out);
        must(name, run_bounded(cmd));
        assert!(
            !created.exists(),
            "{name}: a file was created through a dangling FILE.part link"
        );
    }
}

/// A new FILE is linked in only when complete, and linking never replaces
/// anything: a symlink planted at FILE during the download (a hostile user
/// in a shared directory) is replaced by the finished file, never followed,
/// and its target is left as it was.
#[test]
fn a_link_planted_at_a_new_file_during_the_download_is_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = temp();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let out = work.join("out");
    let gate = Gate::new();
    let server = Server::steps(vec![
        Step::Send(raw("HTTP/1.1 200 OK\nContent-Length: 10\n\n", b"down")),
        Step::Signal,
        Step::WaitFor(gate.clone()),
        Step::Send(b"loaded".to_vec()),
    ]);
    let mut cmd = fetch();
    cmd.arg(server.url("/")).arg("-o").arg(&out);
    let running = std::thread::spawn(move || run_bounded(cmd));
    server.reached();
    symlink(&victim, &out).unwrap();
    gate.open();
    let output = must("planted_at_file", running.join().unwrap());
    must("planted_at_file", check_run(&output, 0, ""));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(fs::symlink_metadata(&out).unwrap().is_file());
    assert_eq!(fs::read_to_string(&out).unwrap(), "downloaded");
    assert_eq!(names_in(&work), ["out"]);
}
