//! The command line (clap derive) and its translation into a validated `fetch::Config`.

use clap::Parser;
use fetch::Error;
use fetch::config::{
    Config, Display, Files, IpVersion, Job, Method, Network, Output, ProgressMode, Proxies,
    Redirects, Retry, Tls,
};
use fetch::digest::Checksum;
use fetch::report::WriteOut;
use fetch::url::{Credentials, Target};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "fetch",
    version,
    about = "Download a URL over HTTP/1.1: the head to stdout, the body to a file or stdout.",
    after_help = "Examples:\n  fetch www.sina.com.cn -o sina.html\n  fetch -s http://host/data.tar.gz | tar xz\n  fetch --input-file urls.txt -j 8 --output-dir downloads"
)]
pub struct Args {
    /// http://…, https://… or a bare host[:port][/path] (meaning http://)
    #[arg(value_name = "URL", required_unless_present = "input_file")]
    urls: Vec<String>,

    /// Write the body to FILE (through FILE.part, renamed when complete); '-' is stdout. Repeat for each URL, in order
    #[arg(short = 'o', long, value_name = "FILE", help_heading = "Output")]
    output: Vec<PathBuf>,

    /// Name the file after the URL's last path segment (never a name chosen by the server)
    #[arg(short = 'O', long, help_heading = "Output")]
    remote_name: bool,

    /// Directory for -O files (created if missing); implies -O
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    output_dir: Option<PathBuf>,

    /// Continue FILE from FILE.part (kept on failure for the next try)
    #[arg(short = 'C', long = "continue", help_heading = "Output")]
    resume: bool,

    /// Download only if the server's copy is newer than FILE (implies -R)
    #[arg(short = 'N', long, help_heading = "Output")]
    newer: bool,

    /// Give FILE the server's Last-Modified time
    #[arg(short = 'R', long, help_heading = "Output")]
    remote_time: bool,

    /// Ask for gzip, deflate or br and decode while streaming (without it, bytes are written as received)
    #[arg(long, conflicts_with = "resume", help_heading = "Request")]
    compressed: bool,

    /// Expected digest of the body, sha256:HEX or sha512:HEX; a mismatch leaves no file (exit 110)
    #[arg(long, value_name = "ALGO:HEX", value_parser = |s: &str| s.parse::<Checksum>(), help_heading = "Output")]
    checksum: Option<Checksum>,

    /// Write the body and exit 0 whatever the status (default: a status >= 400 writes nothing, exit 22)
    #[arg(long, help_heading = "Output")]
    no_fail: bool,

    /// No head on stdout; errors still go to stderr
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

    /// After each transfer print FMT to stdout: %{http_code} %{size_download} %{time_total} %{url_effective} %{filename_effective} %{num_redirects} %{content_type} %{exitcode} %{errormsg} %{digest_sha256} %{json}, \n
    #[arg(short = 'w', long, value_name = "FMT", help_heading = "Display")]
    write_out: Option<String>,

    /// More URLs from FILE, one a line ('-' is stdin; blank lines and # comments skipped)
    #[arg(long, value_name = "FILE", help_heading = "Batch")]
    input_file: Option<PathBuf>,

    /// Transfers at once when there are several URLs
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Batch")]
    parallel: u16,

    /// Send HEAD; the head is the output
    #[arg(short = 'I', long = "head", help_heading = "Request")]
    head: bool,

    /// Extra request field, repeatable; 'Name:' with no value removes a default field
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        help_heading = "Request"
    )]
    headers: Vec<String>,

    /// User-Agent [default: fetch/<version>]
    #[arg(short = 'A', long, value_name = "UA", help_heading = "Request")]
    user_agent: Option<String>,

    /// Basic authentication (URL userinfo does the same)
    #[arg(short = 'u', long, value_name = "USER:PASS", help_heading = "Request")]
    user: Option<String>,

    /// Seconds to resolve and connect
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds, help_heading = "Network")]
    connect_timeout: Duration,

    /// Longest silence while reading, in seconds
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds, help_heading = "Network")]
    read_timeout: Duration,

    /// Limit on the whole transfer, in seconds [default: none]
    #[arg(short = 'm', long, value_name = "SECS", value_parser = seconds, help_heading = "Network")]
    max_time: Option<Duration>,

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

    /// Follow redirects (the default; accepted for curl habits)
    #[arg(short = 'L', long, help_heading = "Request")]
    location: bool,

    /// Do not follow redirects: a 3xx is the final response
    #[arg(long, conflicts_with = "location", help_heading = "Request")]
    no_follow: bool,

    /// Most redirects to follow
    #[arg(long, value_name = "N", default_value_t = fetch::config::DEFAULT_MAX_REDIRECTS, help_heading = "Request")]
    max_redirs: u32,

    /// Retry transient failures N times (connect failures, resets, timeouts, 408/429/5xx), resuming cut bodies
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Network")]
    retry: u32,

    /// First wait between retries, in seconds; it doubles each time (with jitter) unless the server sends Retry-After
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds, help_heading = "Network")]
    retry_delay: Duration,

    /// HTTP proxy for http and https URLs ("" for none); default: http_proxy, https_proxy
    #[arg(long, value_name = "URL", help_heading = "Network")]
    proxy: Option<String>,

    /// Trust the CA certificates in FILE (PEM) instead of the system's
    #[arg(long, value_name = "FILE", help_heading = "Network")]
    cacert: Option<PathBuf>,

    /// Do not verify the server's certificate
    #[arg(short = 'k', long, help_heading = "Network")]
    insecure: bool,
}

/// URLs from `--input-file` (`-` is stdin): one a line, blank lines and `#`
/// comments skipped.
fn read_input_file(path: &Path) -> Result<Vec<String>, Error> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| Error::Usage(format!("--input-file {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Outputs that would collide: two URLs writing one file, several bodies
/// interleaving on stdout, or `-C` without a file to continue.
fn check_outputs(jobs: &[Job], parallel: u16, resume: bool) -> Result<(), Error> {
    let mut files = std::collections::HashSet::new();
    let mut to_stdout = 0;
    for job in jobs {
        match &job.output {
            Output::File(path) => {
                if !files.insert(path) {
                    return Err(Error::Usage(format!(
                        "two URLs would write {} (name one of them with -o)",
                        path.display()
                    )));
                }
            }
            Output::Stdout => {
                to_stdout += 1;
                if resume {
                    return Err(Error::Usage(
                        "-C continues a file: give -o FILE or -O".into(),
                    ));
                }
            }
        }
    }
    if to_stdout > 1 && parallel > 1 {
        return Err(Error::Usage(
            "with -j, at most one URL may write to stdout".into(),
        ));
    }
    Ok(())
}

/// A proxy URL: `http://[user:pass@]host[:port]`, or a bare `host[:port]`.
/// `what` names where it came from, for the error message.
fn parse_proxy(value: &str, what: &str) -> Result<Target, Error> {
    let target = Target::parse(value).map_err(|e| e.at(format!("{what} '{value}'")))?;
    if target.scheme() != fetch::url::Scheme::Http {
        return Err(Error::Scheme("https".into()).at(format!(
            "{what} '{value}': only http:// proxies are supported"
        )));
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
    let from_env = |names: &[&str]| -> Result<Option<Target>, Error> {
        env_var(names)
            .map(|(name, value)| parse_proxy(&value, &name))
            .transpose()
    };
    let (http, https) = match flag {
        Some("") => (None, None),
        Some(url) => {
            let p = parse_proxy(url, "--proxy")?;
            (Some(p.clone()), Some(p))
        }
        None => (
            from_env(&["http_proxy", "HTTP_PROXY"])?,
            from_env(&["https_proxy", "HTTPS_PROXY"])?,
        ),
    };
    Ok(Proxies {
        http,
        https,
        no_proxy,
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
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("'{s}' must be more than 0"));
    }
    Ok(Duration::from_secs_f64(secs.min(MAX_SECONDS)))
}

/// Text that goes into a request head verbatim must not be able to end a line.
fn check_field_text(flag: &str, text: &str) -> Result<(), Error> {
    if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        return Err(Error::Usage(format!(
            "{flag} '{}': CR, LF and NUL are not allowed",
            text.escape_debug()
        )));
    }
    Ok(())
}

/// `-H 'Name: value'`: a token name, a colon, a value without line breaks.
fn parse_header(text: &str) -> Result<(String, String), Error> {
    check_field_text("-H", text)?;
    let bad = |why: &str| Error::Usage(format!("-H '{text}': {why}"));
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("expected 'Name: value'"))?;
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(bad(
            "the field name must be a token (letters, digits, -, …)",
        ));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

impl Args {
    /// Validates everything and builds the library's configuration.
    pub fn into_config(self) -> Result<Config, Error> {
        let mut inputs = self.urls.clone();
        if let Some(file) = &self.input_file {
            inputs.extend(read_input_file(file)?);
        }
        if inputs.is_empty() {
            return Err(Error::Usage("no URL given".into()));
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
            let url = Target::parse(input).map_err(|e| e.at(input.clone()))?;
            let output = match self.output.get(i) {
                Some(p) if p.as_os_str() == "-" => Output::Stdout,
                Some(p) => Output::File(p.clone()),
                None if remote_names => {
                    let dir = self.output_dir.clone().unwrap_or_default();
                    Output::File(dir.join(url.remote_name()))
                }
                None => Output::Stdout,
            };
            jobs.push(Job { url, output });
        }
        check_outputs(&jobs, self.parallel, self.resume)?;
        if let Some(dir) = &self.output_dir {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.clone(),
                source,
            })?;
        }
        let first = jobs[0].clone();
        let mut config = Config::new(first.url, first.output);
        config.jobs = jobs;
        config.parallel = usize::from(self.parallel);
        if self.checksum.is_some() && config.jobs.len() > 1 {
            return Err(Error::Usage(
                "--checksum describes one file: give one URL".into(),
            ));
        }
        config.checksum = self.checksum;
        config.compressed = self.compressed;
        config.write_out = self.write_out.as_deref().map(WriteOut::parse).transpose()?;
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
            check_field_text("-A", &ua)?;
            config.user_agent = ua;
        }
        if let Some(user) = self.user {
            check_field_text("-u", &user)?;
            let (user, password) = user.split_once(':').unwrap_or((&user, ""));
            config.credentials = Some(Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        config.display = Display {
            silent: self.silent,
            verbose: self.verbose,
            include: self.include,
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
        Ok(config)
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
    fn seconds_parsing() {
        assert_eq!(seconds("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["0", "-1", "x", "NaN", "-inf"] {
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

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
