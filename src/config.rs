//! `Config`: what to fetch, where to put it, and every option, already validated.
//! Built by the binary's `cli`; the library never sees a command line.

use crate::error::Error;
use crate::url::{Credentials, Target};
use std::path::PathBuf;
use std::time::Duration;

/// Default `--connect-timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `--read-timeout`: the longest silence while reading.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything one run of fetch does.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to download and where to, in input order; a URL that cannot be
    /// fetched fails on its own, as any transfer may, without stopping the others.
    pub jobs: Vec<Result<Job, BadUrl>>,
    /// `-j`: transfers at once when there are several jobs.
    pub parallel: usize,
    pub method: Method,
    /// `-H` fields in the order given: (name, value). An empty value removes the
    /// default field of that name instead of sending it (as curl's `-H 'Name:'`).
    pub headers: Vec<(String, String)>,
    pub user_agent: String,
    /// `-u`; takes precedence over the URL's userinfo.
    pub credentials: Option<Credentials>,
    pub display: Display,
    /// `--no-fail`: a status >= 400 is written like any other.
    pub no_fail: bool,
    pub network: Network,
    pub redirects: Redirects,
    pub retry: Retry,
    pub tls: Tls,
    pub proxies: Proxies,
    pub files: Files,
    /// `--checksum`: the body's expected digest.
    pub checksum: Option<crate::digest::Checksum>,
    /// `-w`: printed to stdout after each transfer.
    pub write_out: Option<crate::report::WriteOut>,
    /// `--compressed`: ask for gzip, deflate and br, and decode while streaming.
    pub compressed: bool,
}

/// What is done with an existing FILE and its metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct Files {
    /// `-C`: continue FILE from FILE.part, and keep FILE.part on failure.
    pub resume: bool,
    /// `-N`: download only if the server's copy is newer than FILE.
    pub newer: bool,
    /// `-R` (and `-N`): FILE's mtime from Last-Modified.
    pub remote_time: bool,
}

/// Whether the progress bar is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// When stderr is a terminal, the body does not go to the terminal, and
    /// neither -s nor -v was given.
    #[default]
    Auto,
    /// `--progress`: always, even when stderr is not a terminal.
    Always,
    /// `--no-progress`.
    Never,
}

/// Default `--max-redirs`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// Default `--retry-delay`: the first wait of the exponential backoff.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Which redirects are followed.
#[derive(Debug, Clone, Copy)]
pub struct Redirects {
    /// False with `--no-follow`: a 3xx is the final response.
    pub follow: bool,
    /// `--max-redirs`.
    pub max: u32,
}

/// `--retry N` and the backoff's first wait.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub count: u32,
    pub delay: Duration,
}

/// Whom to trust for https.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// `--cacert`: trust this file's CAs instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `-k`: skip certificate verification.
    pub insecure: bool,
}

/// Proxies, from `--proxy` or the environment (`http_proxy`, `https_proxy`,
/// `no_proxy`); the binary reads the environment, the library applies the rules.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    /// For http:// URLs.
    pub http: Option<Result<Target, UnusableProxy>>,
    /// For https:// URLs (through CONNECT).
    pub https: Option<Result<Target, UnusableProxy>>,
    /// Hosts reached directly: names (matching as domain suffixes), addresses, or `*`.
    pub no_proxy: Vec<String>,
    /// Where `http` and `https` came from (`--proxy`, `http_proxy`, `HTTPS_PROXY`,
    /// ...): a proxy that fails is named by it, so a user knows what to change.
    pub http_from: String,
    pub https_from: String,
}

/// A proxy variable fetch cannot use (`https_proxy=socks5://...`, a malformed
/// URL): only the transfers that would go through it fail, with this error;
/// the others are not its business.
#[derive(Debug, Clone)]
pub struct UnusableProxy {
    /// What is wrong with it, naming the variable and its value.
    pub why: String,
    /// The exit code of that failure: 1 for a scheme, 3 for a malformed URL.
    pub exit_code: u8,
}

/// One URL and where its body goes.
#[derive(Debug, Clone)]
pub struct Job {
    pub url: Target,
    pub output: Output,
}

/// A URL of the input that does not parse or has a scheme fetch cannot
/// speak: its transfer fails with exit 3 or 1.
#[derive(Debug, Clone)]
pub struct BadUrl {
    /// The input as it may be shown (without userinfo).
    pub shown: String,
    /// The scheme fetch cannot speak, or `None` for a malformed URL.
    pub scheme: Option<String>,
    /// Why it is malformed.
    pub why: String,
}

impl BadUrl {
    /// From what `Target::parse` said about `shown`.
    pub fn new(shown: String, error: Error) -> BadUrl {
        match error {
            Error::Scheme(scheme) => BadUrl {
                shown,
                scheme: Some(scheme),
                why: String::new(),
            },
            Error::Url(why) => BadUrl {
                shown,
                scheme: None,
                why,
            },
            other => BadUrl {
                shown,
                scheme: None,
                why: other.to_string(),
            },
        }
    }

    /// The failure of its transfer.
    pub fn error(&self) -> Error {
        match &self.scheme {
            Some(scheme) => Error::Scheme(scheme.clone()),
            None => Error::Url(self.why.clone()),
        }
        .at(self.shown.clone())
    }
}

/// Where a body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout,
    /// Appearing only complete (an anonymous file linked in, or `FILE.part`
    /// renamed), or directly when FILE exists and is not a regular file
    /// (DESIGN §3; see `output.rs`).
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// What is shown besides the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Display {
    /// `-s`: no head on stdout.
    pub silent: bool,
    /// `-v`: heads and steps on stderr.
    pub verbose: bool,
    /// `-i`: the head before a body that goes to stdout.
    pub include: bool,
    pub progress: ProgressMode,
    /// `-o -`: the user asked for the body on stdout, so a binary one goes to
    /// a terminal too (without it, fetch stops rather than garble the
    /// terminal, as curl does).
    pub binary_to_terminal: bool,
}

/// Which address families may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    #[default]
    Any,
    V4,
    V6,
}

/// Connection options.
#[derive(Debug, Clone)]
pub struct Network {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_time: Option<Duration>,
    pub ip_version: IpVersion,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_time: None,
            ip_version: IpVersion::Any,
        }
    }
}

impl Config {
    /// A plain GET of `url` with every default.
    pub fn new(url: Target, output: Output) -> Config {
        Config::with_jobs(vec![Ok(Job { url, output })])
    }

    /// Plain GETs of `jobs`, one at a time, with every default.
    pub fn with_jobs(jobs: Vec<Result<Job, BadUrl>>) -> Config {
        Config {
            jobs,
            parallel: 1,
            method: Method::Get,
            headers: Vec::new(),
            user_agent: default_user_agent(),
            credentials: None,
            display: Display::default(),
            no_fail: false,
            network: Network::default(),
            redirects: Redirects {
                follow: true,
                max: DEFAULT_MAX_REDIRECTS,
            },
            retry: Retry {
                count: 0,
                delay: DEFAULT_RETRY_DELAY,
            },
            tls: Tls::default(),
            proxies: Proxies::default(),
            files: Files::default(),
            checksum: None,
            write_out: None,
            compressed: false,
        }
    }
}

/// `fetch/<version>`.
pub fn default_user_agent() -> String {
    format!("fetch/{}", env!("CARGO_PKG_VERSION"))
}
