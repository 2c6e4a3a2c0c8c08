//! The command line (clap derive) and its translation into a validated `fetch::Config`.

use clap::Parser;
use fetch::Error;
use fetch::config::{
    BadUrl, Config, Display, Files, IpVersion, Job, Method, Network, Output, ProgressMode, Proxies,
    Redirects, Retry, Tls, UnusableProxy,
};
use fetch::digest::Checksum;
use fetch::report::WriteOut;
use fetch::url::{Credentials, Target, without_userinfo};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--version`: the version and what fetch speaks with.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (HTTP/1.1; TLS: rustls with the ring provider)"
);

const ABOUT: &str =
    "Download a URL over HTTP/1.1: the head to stdout, the body to a file or stdout.";

const LONG_ABOUT: &str = "\
Download a URL over HTTP/1.1: the head to stdout, the body to a file or stdout.

fetch speaks HTTP/1.1 itself (rustls for https). A download appears as FILE
only when the whole body arrived and passed every check (a new FILE is written
to an anonymous file and linked in, an existing one replaced from FILE.part by
a rename), so FILE is either complete or untouched. Redirects are followed, a
status >= 400 writes nothing (exit 22), and errors are one line on stderr:
'fetch: what: why'.";

/// Shown at the end of `-h` (the first three) and `--help`, and in the man page.
const EXAMPLES: [(&str, &str); 6] = [
    (
        "fetch www.sina.com.cn -o sina.html",
        "download a page (the head on stdout)",
    ),
    (
        "fetch -s https://host/data.tar.gz | tar xz",
        "stream a body into a pipeline",
    ),
    (
        "fetch --input-file urls.txt -j 8 --output-dir dl",
        "a batch, eight at a time",
    ),
    (
        "fetch -C -O https://host/big.iso",
        "continue a cut download",
    ),
    (
        "fetch -s URL -o f --checksum sha256:HEX",
        "verify while downloading",
    ),
    (
        "fetch -s -o /dev/null -w '%{http_code}\\n' URL",
        "just the status code",
    ),
];

/// DESIGN §4: curl's numbers, so scripts carry over.
const EXIT_CODES: [(u8, &str); 24] = [
    (
        0,
        "success (also a 304 with -N, and a reader of stdout that hung up)",
    ),
    (
        1,
        "scheme other than http/https (of a URL, a redirect or a proxy), or a redirect from https to http",
    ),
    (2, "usage error"),
    (3, "malformed URL"),
    (5, "the proxy's host name could not be resolved"),
    (6, "the host name could not be resolved"),
    (7, "could not connect"),
    (
        8,
        "malformed or unacceptable response: status line, head, framing, a limit",
    ),
    (18, "the body ended early"),
    (22, "final status >= 400 (--no-fail keeps the body)"),
    (23, "could not write the output"),
    (
        28,
        "timed out (--connect-timeout, --read-timeout, --max-time)",
    ),
    (33, "a resume could not continue the body"),
    (35, "the TLS handshake failed"),
    (47, "too many redirects (--max-redirs), or a redirect loop"),
    (52, "the server closed without sending anything"),
    (
        56,
        "connection reset or failed; the proxy refused or dropped CONNECT",
    ),
    (60, "the certificate is not trusted (--cacert, -k)"),
    (61, "a --compressed body cannot be decoded"),
    (
        77,
        "the --cacert file (or SSL_CERT_FILE, SSL_CERT_DIR) cannot be used",
    ),
    (
        110,
        "checksum mismatch (--checksum, or the server's Content-Digest)",
    ),
    (129, "the terminal closed (SIGHUP), as for Ctrl-C"),
    (
        130,
        "interrupted (Ctrl-C): FILE.part is removed (kept with -C)",
    ),
    (143, "terminated (SIGTERM: kill, timeout), as for Ctrl-C"),
];

/// The environment variables fetch reads.
const ENVIRONMENT: [(&str, &str); 3] = [
    (
        "http_proxy, https_proxy (or HTTP_PROXY, HTTPS_PROXY)",
        "the proxy for http and https URLs, unless --proxy is given",
    ),
    (
        "no_proxy (or NO_PROXY)",
        "hosts reached directly: names (and subdomains), addresses, CIDR blocks, *",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "trusted certificates in place of the system's (unusable: exit 77)",
    ),
];

/// Help texts stay within this many columns (a terminal's usual width, and
/// what GNU tools keep to), however wide the terminal.
pub const HELP_COLUMNS: usize = 80;

/// Examples for the help texts: each command on its line, what it does below.
fn examples(list: &[(&str, &str)]) -> String {
    let mut text = String::from("Examples:\n");
    for (command, what) in list {
        text.push_str(&format!("  {command}\n        {what}\n"));
    }
    text
}

/// `-h`'s tail: three examples.
fn short_extra() -> String {
    examples(&EXAMPLES[..3])
}

/// `--help`'s tail: every example, the exit codes and the environment.
fn long_extra() -> String {
    let mut text = examples(&EXAMPLES);
    text.push_str("\nExit codes (curl's numbers):\n");
    for (code, what) in EXIT_CODES {
        text.push_str(&format!("  {code:>4}  {what}\n"));
    }
    text.push_str("\nEnvironment:\n");
    for (names, what) in ENVIRONMENT {
        text.push_str(&format!("  {names}\n        {what}\n"));
    }
    text
}

/// The command line as parsed and documented: the derive plus the tails of
/// the help texts, which are built from the tables above.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Args::command()
        .max_term_width(HELP_COLUMNS)
        .after_help(short_extra())
        .after_long_help(long_extra())
}

/// What the command line asks for.
pub enum Invocation {
    /// `--help`, `-h` or `--version`: this text on stdout.
    Print(String),
    /// `fetch --generate KIND`: print the man page or a completion script.
    Generate(Generate),
    /// Anything else: downloads.
    Run(Box<Args>),
}

/// Parses the process's arguments. A usage error is one `fetch: ` line, as
/// every other error (exit 2); help and version are text for stdout, which
/// the caller writes (and whose write errors it reports).
pub fn parse() -> Result<Invocation, Error> {
    use clap::FromArgMatches;
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(kind) = generate_request(&argv) {
        return Ok(Invocation::Generate(kind));
    }
    command()
        .try_get_matches_from(argv)
        .and_then(|matches| Args::from_arg_matches(&matches))
        .map(|args| Invocation::Run(Box::new(args)))
        .or_else(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                // Headings in bold on a terminal, as clap shows them itself
                // (unless NO_COLOR asks for none).
                use std::io::IsTerminal;
                let styled = std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                let text = e.render();
                Ok(Invocation::Print(match styled {
                    true => text.ansi().to_string(),
                    false => text.to_string(),
                }))
            }
            clap::error::ErrorKind::UnknownArgument => {
                let flag = e.get(clap::error::ContextKind::InvalidArg);
                let known = match flag {
                    Some(clap::error::ContextValue::String(flag)) => another_tools_flag(flag),
                    _ => None,
                };
                Err(Error::Usage(match (flag, known) {
                    (Some(flag), Some(hint)) => {
                        format!("unexpected argument '{flag}' found ({hint}; fetch --help)")
                    }
                    _ => one_line(&e.render().to_string()),
                }))
            }
            _ => Err(Error::Usage(one_line(&e.render().to_string()))),
        })
}

/// Flags of curl and wget that fetch spells differently or does not need,
/// and what to use instead. clap's own tip for them is a near spelling of
/// some other flag (`--timeout` -> `--write-out`) or, for a short flag, a
/// way to pass it as a URL: both lead a curl or wget user astray.
const OTHER_TOOLS_FLAGS: &[(&[&str], &str)] = &[
    (&["-x"], "curl's -x is --proxy URL"),
    (
        &["-f", "--fail", "--fail-with-body", "--fail-early"],
        "fetch fails on an HTTP error status by default; --no-fail keeps the body",
    ),
    (&["-S", "--show-error"], "fetch always shows errors, -s too"),
    (
        &["-q", "--quiet", "--no-verbose"],
        "use -s for no head, no progress bar and no summary",
    ),
    (
        &["-n"],
        "wget's -nv is -s here; for -nc, -C leaves a complete FILE alone",
    ),
    (&["-#", "--progress-bar"], "use --progress to force the bar"),
    (
        &["-c", "--continue-at"],
        "use -C to continue FILE from FILE.part",
    ),
    (
        &["--no-clobber", "--skip-existing"],
        "-C leaves a complete FILE alone; -N replaces it only with a newer copy",
    ),
    (
        &["-z", "--time-cond", "--timestamping"],
        "use -N to download only a copy newer than FILE",
    ),
    (
        &["-Z", "--parallel-max", "--parallel-immediate"],
        "use -j N to run N transfers at once",
    ),
    (
        &["-P", "--directory-prefix", "--create-dirs"],
        "use --output-dir DIR",
    ),
    (&["--output-document"], "use -o FILE"),
    (
        &["--remote-name-all"],
        "several URLs go to their -O names by default",
    ),
    (
        &[
            "-t",
            "--tries",
            "--retry-max-time",
            "--retry-all-errors",
            "--retry-connrefused",
        ],
        "use --retry N, and -m SECS to bound it",
    ),
    (
        &["--timeout", "--dns-timeout"],
        "use --connect-timeout, --read-timeout or -m SECS",
    ),
    (
        &[
            "-T",
            "--upload-file",
            "-d",
            "--data",
            "--data-binary",
            "--data-raw",
            "--post-data",
            "--post-file",
            "-F",
            "--form",
            "-X",
            "--request",
            "--method",
        ],
        "fetch only downloads: GET, or HEAD with -I",
    ),
    (&["-U"], "use -A UA"),
    (&["-e", "--referer"], "use -H 'Referer: URL'"),
    (
        &["-b", "--cookie", "--load-cookies"],
        "use -H 'Cookie: NAME=VALUE'",
    ),
    (
        &["-D", "--dump-header", "--save-headers", "--server-response"],
        "the head goes to stdout when the body goes to a file; -i puts it before a body on stdout, -v shows every head",
    ),
    (&["--no-check-certificate"], "use -k"),
    (&["--ca-certificate", "--cacert-file"], "use --cacert FILE"),
    (
        &["--http-user", "--http-password", "--password"],
        "use -u USER:PASS",
    ),
    (&["--max-redirect"], "use --max-redirs N"),
    (&["--no-location"], "use --no-follow"),
    (
        &["--max-filesize"],
        "fetch has no size limit; -m SECS limits the time",
    ),
];

/// What a curl or wget user means by `flag` (given with or without a value
/// after `=`), if [`OTHER_TOOLS_FLAGS`] knows it.
fn another_tools_flag(flag: &str) -> Option<&'static str> {
    let name = flag.split_once('=').map_or(flag, |(name, _)| name);
    OTHER_TOOLS_FLAGS
        .iter()
        .find(|(flags, _)| flags.contains(&name))
        .map(|(_, hint)| *hint)
}

/// clap's usage error (`error: ...`, tips, usage lines) as one line: the
/// message, then its tips (a suggested flag) and where to look.
fn one_line(rendered: &str) -> String {
    let first: Vec<&str> = rendered
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .collect();
    let first = first.join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first);
    let mut hints: Vec<&str> = rendered
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tip: "))
        .collect();
    hints.push("fetch --help");
    format!("{message} ({})", hints.join("; "))
}

/// `--generate KIND` (or `--generate=KIND`), alone: a hook for packagers and
/// installers, so not a flag of the clap command, which would put it into
/// every completion script. Anything else with it is a usage error (exit 2).
fn generate_request(argv: &[std::ffi::OsString]) -> Option<Generate> {
    use clap::ValueEnum;
    let args: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or(""))
        .collect();
    if args.contains(&"--") {
        return None; // after `--`, even `--generate` is a URL: clap's to judge
    }
    let kind = match args.as_slice() {
        ["--generate", kind] => *kind,
        ["--generate"] => "",
        [one] => one.strip_prefix("--generate=")?,
        other if other.iter().any(|a| a.starts_with("--generate")) => "",
        _ => return None,
    };
    Generate::from_str(kind, false).ok().or_else(|| {
        eprintln!("fetch: --generate KIND, alone: KIND is man, bash, zsh or fish");
        std::process::exit(2)
    })
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Parser)]
#[command(
    name = "fetch",
    version = VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = "fetch [OPTIONS] <URL>...\n       fetch [OPTIONS] --input-file <FILE>"
)]
pub struct Args {
    /// http://..., https://... or a bare host[:port][/path] (meaning http://)
    #[arg(value_name = "URL", required_unless_present = "input_file", value_hint = clap::ValueHint::Url)]
    urls: Vec<std::ffi::OsString>,

    // Output
    /// Write the body to FILE ('-' is stdout, a binary body too); repeat for several URLs
    ///
    /// FILE appears only complete and checked: a new FILE is written to an
    /// anonymous file in its directory and linked in, an existing FILE is
    /// replaced from FILE.part beside it by a rename; on failure nothing is
    /// left and an existing FILE is untouched. With several URLs the first -o
    /// names the first URL's file, and so on; URLs without one go to their -O
    /// name.
    #[arg(short = 'o', long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, help_heading = "Output")]
    output: Vec<PathBuf>,

    /// Name the file after the URL's last path segment
    ///
    /// Percent-decoded, without '/', '\', control characters or leading dots;
    /// index.html when empty. Never a name chosen by the server
    /// (Content-Disposition, redirect targets).
    #[arg(short = 'O', long, help_heading = "Output")]
    remote_name: bool,

    /// Directory for -O files and relative -o files (created if missing); implies -O
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, help_heading = "Output")]
    output_dir: Option<PathBuf>,

    /// Continue FILE from FILE.part
    ///
    /// Asks for the rest with Range and If-Range (the validator is kept in
    /// FILE.part.meta), so two versions of a file are never stitched together.
    /// FILE.part is kept on failure for the next try. A finished FILE without
    /// FILE.part means there is nothing to do.
    #[arg(short = 'C', long = "continue", help_heading = "Output")]
    resume: bool,

    /// Download only if the server's copy is newer than FILE (implies -R)
    ///
    /// Sends If-Modified-Since with FILE's modification time; a 304, or a 200
    /// whose Last-Modified is not after that time, leaves FILE untouched and
    /// exits 0.
    #[arg(short = 'N', long, help_heading = "Output")]
    newer: bool,

    /// Set FILE's modification time from Last-Modified
    #[arg(short = 'R', long, help_heading = "Output")]
    remote_time: bool,

    /// Check the body's digest: sha256:HEX or sha512:HEX
    ///
    /// Computed while streaming; a mismatch leaves no file and exits 110.
    #[arg(long, value_name = "ALGO:HEX", value_parser = |s: &str| s.parse::<Checksum>(), help_heading = "Output")]
    checksum: Option<Checksum>,

    /// Write the body and exit 0 whatever the status
    ///
    /// By default a final status >= 400 writes nothing and exits 22.
    #[arg(long, help_heading = "Output")]
    no_fail: bool,

    // Display
    /// No head, no progress bar, no batch summary; errors still show
    #[arg(short, long, help_heading = "Display")]
    silent: bool,

    /// Show the request, the response heads and each step on stderr
    #[arg(short, long, help_heading = "Display")]
    verbose: bool,

    /// With the body on stdout, print the response head before it
    #[arg(short, long, help_heading = "Display")]
    include: bool,

    /// Draw the progress bar even when stderr is not a terminal
    #[arg(long, conflicts_with = "no_progress", help_heading = "Display")]
    progress: bool,

    /// Never draw the progress bar
    #[arg(long, help_heading = "Display")]
    no_progress: bool,

    /// After each transfer print FMT to stdout (e.g. '%{http_code}\n')
    ///
    /// Variables: %{http_code} %{size_download} %{time_total} %{url_effective}
    /// %{filename_effective} %{num_redirects} %{content_type} %{exitcode}
    /// %{errormsg} %{digest_sha256} and %{json} (one line of JSON with all of
    /// them). Escapes: \n \t \r \\ and %% for a percent sign. @FILE reads
    /// FMT from FILE (@- from stdin), as with curl.
    #[arg(short = 'w', long, value_name = "FMT", help_heading = "Display")]
    write_out: Option<String>,

    // Request
    /// Send HEAD; the head is the output
    #[arg(short = 'I', long = "head", help_heading = "Request")]
    head: bool,

    /// Extra request field, repeatable ('Name:' removes a default field)
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        help_heading = "Request"
    )]
    headers: Vec<String>,

    /// User-Agent [default: fetch/<version>]; '' sends none
    #[arg(short = 'A', long, value_name = "UA", help_heading = "Request")]
    user_agent: Option<String>,

    /// Basic authentication (URL userinfo does the same)
    ///
    /// Credentials go only to the URL's origin: a redirect elsewhere drops them.
    #[arg(short = 'u', long, value_name = "USER:PASS", help_heading = "Request")]
    user: Option<String>,

    /// Ask for gzip, deflate or br and decode while streaming
    ///
    /// Without it no Accept-Encoding is sent and bytes are written as received.
    #[arg(long, conflicts_with = "resume", help_heading = "Request")]
    compressed: bool,

    /// Follow redirects (the default; accepted for curl habits)
    #[arg(short = 'L', long, help_heading = "Request")]
    location: bool,

    /// Do not follow redirects: a 3xx is the final response
    #[arg(long, conflicts_with = "location", help_heading = "Request")]
    no_follow: bool,

    /// Most redirects to follow
    #[arg(long, value_name = "N", default_value_t = fetch::config::DEFAULT_MAX_REDIRECTS, allow_negative_numbers = true, help_heading = "Request")]
    max_redirs: u32,

    // Network
    /// Seconds to connect: resolve, TCP, proxy CONNECT and TLS handshake
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds, allow_negative_numbers = true, help_heading = "Network")]
    connect_timeout: Duration,

    /// Longest silence while reading, in seconds
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds, allow_negative_numbers = true, help_heading = "Network")]
    read_timeout: Duration,

    /// Limit on the whole transfer, retries included, in seconds [default: none]
    #[arg(short = 'm', long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true, help_heading = "Network")]
    max_time: Option<Duration>,

    /// Retry transient failures N times, resuming cut bodies
    ///
    /// Connect failures, resets (in the TLS handshake too), timeouts, bodies cut
    /// short, empty replies and the statuses 408, 429, 500, 502, 503 and 504. A
    /// cut body continues with a range request when the server allows it.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true,
        help_heading = "Network"
    )]
    retry: u32,

    /// First wait between retries, in seconds
    ///
    /// It doubles for each retry (times a random factor between 0.5 and 1.5)
    /// unless the server sends Retry-After; no wait is longer than 10 minutes.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds, allow_negative_numbers = true, help_heading = "Network")]
    retry_delay: Duration,

    /// IPv4 addresses only
    #[arg(
        short = '4',
        long = "ipv4",
        conflicts_with = "ipv6",
        help_heading = "Network"
    )]
    ipv4: bool,

    /// IPv6 addresses only
    #[arg(short = '6', long = "ipv6", help_heading = "Network")]
    ipv6: bool,

    /// HTTP proxy for http and https URLs ("" for none)
    ///
    /// Default: http_proxy for http URLs and https_proxy for https URLs (or
    /// their upper-case forms); no_proxy lists hosts reached directly.
    #[arg(long, value_name = "URL", help_heading = "Network")]
    proxy: Option<String>,

    /// Trust the CA certificates in FILE (PEM) instead of the system's
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, help_heading = "Network")]
    cacert: Option<PathBuf>,

    /// Do not verify the server's certificate
    #[arg(short = 'k', long, help_heading = "Network")]
    insecure: bool,

    // Batch
    /// More URLs from FILE, one a line ('-' is stdin)
    ///
    /// Blank lines and lines starting with # are skipped.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, help_heading = "Batch")]
    input_file: Option<PathBuf>,

    /// Transfers at once when there are several URLs
    ///
    /// A failure does not stop the others; the exit code is the first
    /// failure's, in input order. Connections stay open for the next URL to
    /// the same server (`-H 'Connection: close'` turns that off).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256), allow_negative_numbers = true, help_heading = "Batch")]
    parallel: u16,
}

/// `-o -`, or a name of the descriptor fetch already has: written through
/// it, so `>> log` appends and `{ ...; } > f` keeps what others wrote there
/// (reopening it by name would not).
fn names_stdout(path: &Path) -> bool {
    ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]
        .iter()
        .any(|name| path.as_os_str() == *name)
}

/// URLs from `--input-file` (`-` is stdin): one a line, blank lines and `#`
/// comments skipped; a byte-order mark (Windows editors write one) ignored.
/// A line that is not UTF-8 is one URL with raw 8-bit bytes (a Latin-1 file
/// name), not a reason to stop the list: see [`fetch::url::text_of`].
fn read_input_file(path: &Path) -> Result<Vec<String>, Error> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| {
        Error::Usage(format!(
            "--input-file {}: {}",
            path.display(),
            fetch::error::plain(&e)
        ))
    })?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    Ok(bytes
        .split(|&b| b == b'\n')
        .map(|line| fetch::url::text_of(line).trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

/// `-w FMT`, or with `@FILE` the contents of FILE (`@-`: stdin, unless
/// `--input-file -` reads the URLs from there), as curl has it.
fn write_out_template(arg: &str, stdin_taken: bool) -> Result<String, Error> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(arg.to_owned());
    };
    let read = match path {
        "-" if stdin_taken => {
            return Err(Error::Usage(
                "-w @- and --input-file - cannot both read stdin".into(),
            ));
        }
        "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        }
        _ => std::fs::read_to_string(path),
    };
    read.map_err(|e| Error::Usage(format!("-w @{path}: {}", fetch::error::plain(&e))))
}

/// Outputs that would collide: two URLs writing one file (any number may
/// write `/dev/null`, as with curl), several bodies interleaving on stdout, or
/// `-w` lines of other transfers landing inside one, or a flag about files
/// (`needs_file`: `-C`, `-N`, `-R`, with why) and no file.
fn check_outputs(
    jobs: &[Result<Job, BadUrl>],
    parallel: u16,
    needs_file: Option<&str>,
    write_out: bool,
) -> Result<(), Error> {
    let mut files = std::collections::HashSet::new();
    let mut to_stdout = 0;
    // `./a`, `a`, `$PWD/a`, `d/../a` and `link-to-here/a` are one file:
    // compared by where they lead (the working directory read once, and only
    // for a relative path).
    // Each directory is resolved once (a batch's files share a few); the
    // file itself costs one lstat, to see whether it is a symlink.
    let cwd = std::cell::OnceCell::new();
    let mut dirs: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    let mut same_file = |path: &Path| -> PathBuf {
        let absolute = match path.is_absolute() {
            true => path.to_owned(),
            false => cwd
                .get_or_init(|| std::env::current_dir().unwrap_or_default())
                .join(path),
        };
        let link = std::fs::symlink_metadata(&absolute).is_ok_and(|m| m.is_symlink());
        match (absolute.parent(), absolute.file_name()) {
            (Some(dir), Some(name)) if !link => dirs
                .entry(dir.to_owned())
                .or_insert_with(|| where_it_leads(dir))
                .join(name),
            _ => where_it_leads(&absolute),
        }
    };
    for job in jobs.iter().flatten() {
        match &job.output {
            Output::File(path) => {
                let same = same_file(path);
                if same.as_os_str() != "/dev/null" && !files.insert(same) {
                    return Err(Error::Usage(format!(
                        "two URLs would write {} (name one of them with -o)",
                        path.display()
                    )));
                }
            }
            Output::Stdout => {
                to_stdout += 1;
                if let Some(flag) = needs_file {
                    return Err(Error::Usage(format!("{flag}: give -o FILE or -O")));
                }
            }
        }
    }
    if to_stdout > 1 && parallel > 1 {
        return Err(Error::Usage(
            "with -j, at most one URL may write to stdout".into(),
        ));
    }
    if to_stdout > 0 && parallel > 1 && write_out && jobs.len() > 1 {
        return Err(Error::Usage(
            "with -j, -w lines would land inside the body on stdout \
             (give that URL -o FILE, or leave out -j)"
                .into(),
        ));
    }
    Ok(())
}

/// The file an absolute `path` names: its longest part that exists with
/// every symlink and `..` resolved (the whole path, when the file exists:
/// a symlink to it leads to it), then the rest as written, `..` taking off
/// the part before it.
fn where_it_leads(path: &Path) -> PathBuf {
    use std::path::Component;
    let parts: Vec<Component> = path.components().collect();
    let (mut base, rest) = (1..=parts.len())
        .rev()
        .find_map(|n| {
            let existing: PathBuf = parts[..n].iter().collect();
            std::fs::canonicalize(existing)
                .ok()
                .map(|c| (c, &parts[n..]))
        })
        .unwrap_or_else(|| (PathBuf::from("/"), &parts[..]));
    for part in rest {
        match part {
            Component::ParentDir => {
                base.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::Normal(name) => base.push(name),
        }
    }
    base
}

/// A proxy URL: `http://[user:pass@]host[:port]`, or a bare `host[:port]`.
/// `what` names where it came from, for the error message.
fn parse_proxy(value: &str, what: &str) -> Result<Target, Error> {
    let shown = || format!("{what} '{}'", without_userinfo(value));
    let target = Target::parse(value).map_err(|e| match e {
        Error::Scheme(scheme) => Error::ProxyScheme(scheme).at(shown()),
        e => e.at(shown()),
    })?;
    if target.scheme() != fetch::url::Scheme::Http {
        return Err(Error::ProxyScheme("https".into()).at(shown()));
    }
    Ok(target)
}

/// The first of these environment variables that is set and not empty.
fn env_var(names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        std::env::var(n)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (n.to_string(), v))
    })
}

/// `--proxy`, else `http_proxy` / `https_proxy` (lower case first, then upper);
/// `no_proxy` / `NO_PROXY` always apply.
fn proxies(flag: Option<&str>) -> Result<Proxies, Error> {
    let no_proxy = env_var(&["no_proxy", "NO_PROXY"])
        .map(|(_, v)| {
            v.split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // A variable fetch cannot use fails only the URLs it would carry (curl
    // too); a --proxy given for this run is checked now.
    let from_env = |names: &[&str]| match env_var(names) {
        None => (None, String::new()),
        Some((name, value)) => {
            let proxy = parse_proxy(&value, &name).map_err(|e| UnusableProxy {
                why: e.to_string(),
                exit_code: e.exit_code(),
            });
            (Some(proxy), name)
        }
    };
    let ((http, http_from), (https, https_from)) = match flag {
        Some("") => Default::default(),
        Some(url) => {
            let p = parse_proxy(url, "--proxy")?;
            let from = "--proxy".to_owned();
            ((Some(Ok(p.clone())), from.clone()), (Some(Ok(p)), from))
        }
        None => (
            from_env(&["http_proxy", "HTTP_PROXY"]),
            from_env(&["https_proxy", "HTTPS_PROXY"]),
        ),
    };
    Ok(Proxies {
        http,
        https,
        no_proxy,
        http_from,
        https_from,
    })
}

/// Longest time any option can ask for, in seconds (about 136 years): longer
/// would overflow the clock arithmetic, and means "forever" anyway.
const MAX_SECONDS: f64 = u32::MAX as f64;

/// A positive number of seconds, fractions allowed; huge values mean "forever"
/// and are capped at `MAX_SECONDS`.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    let duration = match secs {
        secs if secs.is_nan() || secs <= 0.0 => Duration::ZERO,
        secs => Duration::from_secs_f64(secs.min(MAX_SECONDS)),
    };
    if duration.is_zero() {
        return Err(format!("'{s}' must be more than 0"));
    }
    Ok(duration)
}

/// Text that goes into a request head verbatim must not be able to end a line.
/// `shown` names the value in the message; a password or a token is never in it.
fn check_field_text(shown: &str, text: &str) -> Result<(), Error> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        let hint = if text.ends_with('\r') {
            " (it ends in a CR: a line read from a file with CRLF line ends?)"
        } else {
            ""
        };
        return Err(Error::Usage(format!(
            "{shown}: CR, LF and NUL are not allowed{hint}"
        )));
    }
    Ok(())
}

/// `-H 'Name: value'`: a token name, a colon, a value without line breaks.
/// Messages name the field, never its value (it may be a token).
fn parse_header(text: &str) -> Result<(String, String), Error> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(Error::Usage(
            "-H: expected 'Name: value' (the value is not shown here)".into(),
        ));
    };
    let shown = format!("-H '{}: …'", name.escape_debug());
    check_field_text(&shown, text)?;
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(Error::Usage(format!(
            "{shown}: the field name must be a token (letters, digits, -, …)"
        )));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `-u USER[:PASSWORD]`, checked and split; messages name the user only.
fn parse_user(text: &str) -> Result<Credentials, Error> {
    let (user, password) = text.split_once(':').unwrap_or((text, ""));
    let shown = match text.contains(':') {
        true => format!("-u '{}:…'", user.escape_debug()),
        false => format!("-u '{}'", user.escape_debug()),
    };
    check_field_text(&shown, text)?;
    Ok(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Writes the man page or a completion script for `kind`.
pub fn generate(kind: Generate, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut command = command();
    let shell = match kind {
        Generate::Man => return man_page(command, out),
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    // A `:` in a value name ends a zsh `_arguments` field (`USER:PASS` would
    // read as two), so completion scripts get a neutral form of them.
    command = command.mut_args(|arg| {
        let names: Vec<String> = arg
            .get_value_names()
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str().replace(':', "_").replace(' ', ""))
            .collect();
        if names.is_empty() {
            arg
        } else {
            arg.value_names(names)
        }
    });
    // clap_complete panics when it cannot write: it writes into memory here,
    // and a failing stdout is an error like any other.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "fetch", &mut script);
    out.write_all(&script).and_then(|()| out.flush())
}

/// The man page: clap_mangen's sections for what clap knows, then examples,
/// exit status and environment as proper man sections.
fn man_page(command: clap::Command, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(
        command
            .after_help(None::<&str>)
            .after_long_help(None::<&str>),
    );
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH EXAMPLES")?;
    for (command, what) in EXAMPLES {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(command), roff(what))?;
    }
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, what) in EXIT_CODES {
        writeln!(out, ".TP\n\\fB{code}\\fR\n{}", roff(what))?;
    }
    writeln!(out, ".SH ENVIRONMENT")?;
    for (names, what) in ENVIRONMENT {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(names), roff(what))?;
    }
    man.render_version_section(out)
}

/// Text for a roff line: backslashes and hyphens escaped, no leading control
/// character.
fn roff(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    match escaped.chars().next() {
        Some('.') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

impl Args {
    /// Validates everything and builds the library's configuration.
    pub fn into_config(self) -> Result<Config, Error> {
        let mut inputs: Vec<String> = self
            .urls
            .iter()
            .map(|url| fetch::url::text_of(url.as_encoded_bytes()).into_owned())
            .collect();
        if let Some(file) = &self.input_file {
            inputs.extend(read_input_file(file)?);
        }
        if inputs.is_empty() {
            // Only an --input-file can leave the list empty (clap requires a
            // URL without one): it is named, '-' as stdin.
            return Err(Error::Usage(match self.input_file.as_deref() {
                Some(path) => format!(
                    "no URL given: --input-file {}{} holds none (one a line; blank lines and # comments are skipped)",
                    path.display(),
                    if path == Path::new("-") {
                        " (stdin)"
                    } else {
                        ""
                    }
                ),
                None => "no URL given".into(),
            }));
        }
        // On the command line, a URL '-' is curl's `-C -` habit; in a list it
        // is one bad URL among others.
        if self.urls.iter().any(|input| input == "-") {
            return Err(Error::Usage(
                "'-' is not a URL (fetch's -C takes no value: curl's '-C -' is '-C')".into(),
            ));
        }
        if self.output.len() > inputs.len() {
            return Err(Error::Usage(format!(
                "{} -o for {} URL(s): each -o names the file of one URL, in order",
                self.output.len(),
                inputs.len()
            )));
        }
        let remote_names = self.remote_name || self.output_dir.is_some() || inputs.len() > 1;
        let mut jobs = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let url = match Target::parse(input) {
                Ok(url) => url,
                Err(e) => {
                    jobs.push(Err(BadUrl::new(without_userinfo(input), e)));
                    continue;
                }
            };
            let output = match self.output.get(i) {
                Some(p) if names_stdout(p) => Output::Stdout,
                // As with curl, --output-dir holds the -o files too (an
                // absolute -o stays where it says).
                Some(p) => match &self.output_dir {
                    Some(dir) => Output::File(dir.join(p)),
                    None => Output::File(p.clone()),
                },
                None if remote_names => {
                    let dir = self.output_dir.clone().unwrap_or_default();
                    Output::File(dir.join(url.remote_name()))
                }
                None => Output::Stdout,
            };
            jobs.push(Ok(Job { url, output }));
        }
        let needs_file = match (self.resume, self.newer, self.remote_time) {
            (true, _, _) => Some("-C continues a file"),
            (_, true, _) => Some("-N compares with a file"),
            (_, _, true) => Some("-R sets a file's time"),
            _ => None,
        };
        check_outputs(&jobs, self.parallel, needs_file, self.write_out.is_some())?;
        let mut config = Config::with_jobs(jobs);
        config.parallel = usize::from(self.parallel);
        if self.checksum.is_some() && config.jobs.len() > 1 {
            return Err(Error::Usage(
                "--checksum describes one file: give one URL".into(),
            ));
        }
        if self.checksum.is_some() && self.head {
            return Err(Error::Usage(
                "--checksum checks a body, and -I asks for none".into(),
            ));
        }
        config.checksum = self.checksum;
        config.compressed = self.compressed;
        config.write_out = match self.write_out.as_deref() {
            Some(arg) => {
                let stdin_taken = self.input_file.as_deref() == Some(Path::new("-"));
                Some(WriteOut::parse(&write_out_template(arg, stdin_taken)?)?)
            }
            None => None,
        };
        config.files = Files {
            resume: self.resume,
            newer: self.newer,
            remote_time: self.remote_time || self.newer,
        };
        config.method = if self.head { Method::Head } else { Method::Get };
        config.headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_, _>>()?;
        if let Some(ua) = self.user_agent {
            check_field_text(&format!("-A '{}'", ua.escape_debug()), &ua)?;
            config.user_agent = ua;
        }
        if let Some(user) = &self.user {
            config.credentials = Some(parse_user(user)?);
        }
        config.display = Display {
            silent: self.silent,
            verbose: self.verbose,
            include: self.include,
            binary_to_terminal: self.output.iter().any(|p| names_stdout(p)),
            progress: match (self.progress, self.no_progress) {
                (true, _) => ProgressMode::Always,
                (_, true) => ProgressMode::Never,
                _ => ProgressMode::Auto,
            },
        };
        config.no_fail = self.no_fail;
        config.network = Network {
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            max_time: self.max_time,
            ip_version: match (self.ipv4, self.ipv6) {
                (true, _) => IpVersion::V4,
                (_, true) => IpVersion::V6,
                _ => IpVersion::Any,
            },
        };
        config.redirects = Redirects {
            follow: !self.no_follow,
            max: self.max_redirs,
        };
        config.retry = Retry {
            count: self.retry,
            delay: self.retry_delay,
        };
        config.tls = Tls {
            ca_file: self.cacert,
            insecure: self.insecure,
        };
        config.proxies = proxies(self.proxy.as_deref())?;
        // Last: a usage error anywhere above leaves no directory behind.
        if let Some(dir) = &self.output_dir {
            make_output_dir(dir)?;
        }
        Ok(config)
    }
}

/// `--output-dir DIR`, made with its parents if missing.
fn make_output_dir(dir: &Path) -> Result<(), Error> {
    let error = |source| Error::Write {
        path: dir.to_owned(),
        source,
    };
    match std::fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        // create_dir_all's "File exists" for a file in the way says little.
        Err(_) if dir.exists() && !dir.is_dir() => Err(error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory (--output-dir)",
        ))),
        Err(e) => Err(error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        assert_eq!(
            parse_header("X-A:  b c ").unwrap(),
            ("X-A".into(), "b c".into())
        );
        assert_eq!(
            parse_header("Accept:").unwrap(),
            ("Accept".into(), String::new())
        );
        for bad in ["nocolon", ": v", "Bad Name: v", "X: a\r\nY: b", "X: \0"] {
            assert_eq!(parse_header(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn messages_about_credentials_do_not_show_them() {
        let e = parse_header("Authorization: Bearer s3cret\r").unwrap_err();
        assert_eq!(
            e.to_string(),
            "-H 'Authorization: …': CR, LF and NUL are not allowed \
             (it ends in a CR: a line read from a file with CRLF line ends?)"
        );
        let e = parse_header("Bearer s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse_user("alice:s3cret\r").unwrap_err();
        assert!(e.to_string().starts_with("-u 'alice:…': CR, LF"), "{e}");
        let c = parse_user("alice:a:b").unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "a:b"));
        assert_eq!(parse_user("bob").unwrap().password, "");
    }

    #[test]
    fn seconds_parsing() {
        assert_eq!(seconds("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["0", "-1", "x", "NaN", "-inf", "1e-10"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        for huge in ["inf", "1e300", "99999999999"] {
            assert_eq!(
                seconds(huge).unwrap().as_secs(),
                u64::from(u32::MAX),
                "{huge}"
            );
        }
    }

    /// Every flag the table explains is one fetch does not have (else the
    /// entry would never be reached), and each is found by its own name.
    #[test]
    fn other_tools_flags_are_unknown_here_and_explained() {
        for (flags, hint) in OTHER_TOOLS_FLAGS {
            for flag in *flags {
                let e = command()
                    .try_get_matches_from(["fetch", flag, "http://h/"])
                    .unwrap_err();
                assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{flag}");
                assert_eq!(another_tools_flag(flag), Some(*hint));
            }
        }
        assert_eq!(
            another_tools_flag("--tries=3"),
            another_tools_flag("--tries")
        );
        assert_eq!(another_tools_flag("--outptu"), None);
    }

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(roff("-o 'x' a\\b"), "\\-o \\(aqx\\(aq a\\eb");
        assert_eq!(roff(".hidden"), "\\&.hidden");
    }
}
