//! The documentation cannot drift from the binary: the README's option table and
//! the man page generated from the clap definition name the same flags; the
//! completions and --version are generated from the binary itself, and the
//! README and --help list the same exit codes.

use crate::support::fetch;
use assert_cmd::prelude::*;
use predicates::prelude::*;
use std::collections::BTreeSet;

/// The text of README.md's section `## heading`, up to the next section.
fn readme_section(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has a section {heading}"));
    section.split("\n## ").next().unwrap().to_owned()
}

/// Flags (`-o`, `--output`) in the first column of README.md's option table.
fn readme_flags() -> BTreeSet<String> {
    let table = readme_section("Options");
    let mut flags = BTreeSet::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let first_column = line.split('|').nth(1).unwrap();
        for quoted in first_column.split('`').skip(1).step_by(2) {
            for word in quoted.split([',', ' ', '/']) {
                if word.starts_with('-') && word.len() > 1 {
                    flags.insert(word.to_owned());
                }
            }
        }
    }
    flags
}

/// Flags the man page documents: the `.TP` entries of its options.
fn man_flags() -> BTreeSet<String> {
    let out = fetch().args(["--generate", "man"]).output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    let mut flags = BTreeSet::new();
    // Only the option sections (OPTIONS, then one per group up to the
    // examples): a flag the examples use is not documented by them.
    let options = man
        .split(".SH OPTIONS")
        .nth(1)
        .expect("the man page has OPTIONS")
        .split("\n.SH EXAMPLES")
        .next()
        .unwrap();
    let mut lines = options.lines();
    while let Some(line) = lines.next() {
        if line == ".TP"
            && let Some(entry) = lines.next()
        {
            let plain = entry
                .replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\fI", "")
                .replace("\\-", "-");
            for word in plain.split([',', ' ']) {
                if word.starts_with('-') && word.len() > 1 && !word.contains(['<', '\'']) {
                    flags.insert(word.to_owned());
                }
            }
        }
    }
    flags
}

#[test]
fn readme_and_man_page_name_the_same_flags() {
    let readme = readme_flags();
    let man = man_flags();
    // Sanity: the parsers found the tables at all.
    assert!(
        readme.contains("--output") && readme.contains("-o"),
        "{readme:?}"
    );
    assert!(man.contains("--output") && man.contains("-j"), "{man:?}");
    let only_readme: Vec<_> = readme.difference(&man).collect();
    let only_man: Vec<_> = man.difference(&readme).collect();
    assert!(
        only_readme.is_empty() && only_man.is_empty(),
        "README only: {only_readme:?}; man page only: {only_man:?}"
    );
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef fetch"),
        ("fish", "complete -c fetch"),
    ] {
        let out = fetch().args(["--generate", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}");
        assert!(
            script.contains("output-dir") && script.contains("checksum"),
            "{shell}"
        );
        // The packagers' hook is not a flag to complete.
        assert!(!script.contains("generate"), "{shell}");
    }
    // A `:` in a value name would split a zsh `_arguments` field in two.
    let zsh = fetch().args(["--generate", "zsh"]).output().unwrap().stdout;
    let zsh = String::from_utf8(zsh).unwrap();
    for name in [":USER:PASS:", ":ALGO:HEX:", ":NAME: VALUE:"] {
        assert!(!zsh.contains(name), "{name}");
    }
    assert!(
        zsh.contains(":DIR:_files -/"),
        "--output-dir completes directories"
    );
    // --generate is alone or a usage error.
    fetch()
        .args(["--generate", "man", "http://h/"])
        .assert()
        .code(2);
    fetch().args(["--generate", "pdf"]).assert().code(2);
    // After `--` it is a URL like any other word.
    // (Resolving the name may fail at once or time out, by the machine.)
    fetch()
        .args(["--connect-timeout", "2", "--", "--generate"])
        .assert()
        .code(predicate::eq(6).or(predicate::eq(28)))
        .stdout("")
        .stderr(predicate::str::starts_with("fetch: http://--generate/: "));
}

/// The help texts keep to 80 columns, and the man page to ASCII (a terminal
/// in the C locale shows it too).
#[test]
fn help_fits_80_columns_and_the_man_page_is_ascii() {
    for flag in ["-h", "--help"] {
        let text = String::from_utf8(fetch().arg(flag).output().unwrap().stdout).unwrap();
        let wide: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
        assert!(wide.is_empty(), "{flag}: {wide:#?}");
    }
    let man = fetch().args(["--generate", "man"]).output().unwrap().stdout;
    assert!(man.is_ascii());
}

/// Mistakes a curl user makes get a usage error that says what to do.
#[test]
fn curl_habits_get_usage_errors() {
    for (args, says) in [
        (
            &["-C", "-", "-O", "http://h/x"][..],
            "curl's '-C -' is '-C'",
        ),
        (
            &["-N", "http://h/x"],
            "-N compares with a file: give -o FILE or -O",
        ),
        (&["-R", "http://h/x"], "-R sets a file's time"),
        (&["--max-redirs", "-1", "http://h/x"], "invalid value '-1'"),
        (&["--retry", "-1", "http://h/x"], "invalid value '-1'"),
        // curl's and wget's spellings: what to use here, not a near miss
        // (--timeout is not --write-out) or a way to pass them as a URL.
        (
            &["-x", "http://p:3128", "http://h/x"],
            "'-x' found (curl's -x is --proxy URL; fetch --help)",
        ),
        (&["-f", "http://h/x"], "--no-fail keeps the body"),
        (
            &["--timeout=5", "http://h/x"],
            "'--timeout' found (use --connect-timeout, --read-timeout or -m SECS",
        ),
        (&["-c", "http://h/x"], "use -C to continue"),
        (&["--tries", "3", "http://h/x"], "use --retry N"),
        (&["-d", "a=b", "http://h/x"], "fetch only downloads"),
        (&["--generate"], "--generate KIND, alone"),
    ] {
        fetch()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}

#[test]
fn version_names_the_tls_backend() {
    let out = fetch().arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("fetch {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("rustls"), "{text}");
}

#[test]
fn help_is_grouped_and_ends_with_examples() {
    let out = fetch().arg("-h").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let mut at = 0;
    for heading in [
        "Output:",
        "Display:",
        "Request:",
        "Network:",
        "Batch:",
        "Examples:",
    ] {
        let found = help[at..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading} missing or out of order:\n{help}"));
        at += found;
    }
    assert_eq!(help.matches("\n  fetch ").count(), 3, "{help}");
    let long = String::from_utf8(fetch().arg("--help").output().unwrap().stdout).unwrap();
    assert!(
        long.contains("Exit codes") && long.contains("  110  checksum mismatch"),
        "{long}"
    );
    assert!(long.contains("[default: 60]"), "defaults are explained");
}

/// The codes of README.md's exit-code table: its rows in one unbroken table.
fn readme_exit_codes() -> Vec<u8> {
    let section = readme_section("Exit codes");
    let table = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    table
        .filter_map(|row| row.split('|').nth(1)?.trim().parse().ok())
        .collect()
}

#[test]
fn readme_and_help_list_the_same_exit_codes() {
    let long = String::from_utf8(fetch().arg("--help").output().unwrap().stdout).unwrap();
    let help: Vec<u8> = long
        .split("Exit codes")
        .nth(1)
        .expect("--help lists the exit codes")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(readme_exit_codes(), help);
    assert!(help.contains(&130) && help.len() > 20, "{help:?}");
}

#[test]
fn a_misspelled_flag_gets_a_suggestion() {
    let out = fetch()
        .args(["--ouput", "x", "http://h/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--ouput") && err.contains("--output"), "{err}");
}

/// Usage errors are one `fetch: ` line like every other error (DESIGN §2),
/// clap's tips kept in it.
#[test]
fn usage_errors_are_one_line() {
    for args in [
        &["--ouput", "x", "http://h/"][..],
        &[][..],
        &["--retry", "x", "http://h/"][..],
        &["--read-timeout", "-1", "http://h/"][..],
        &["--no-progress", "--progress", "http://h/"][..],
    ] {
        let out = fetch().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("fetch: ")
                && err.ends_with("fetch --help)\n")
                && err.lines().count() == 1,
            "{args:?}: {err:?}"
        );
    }
    let out = fetch()
        .args(["--read-timeout", "-1", "http://h/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be more than 0"));
}

/// Help, version, the man page and completions on a stdout that fails: the
/// error line and 23 (a full disk), or quiet for a reader that left; never a
/// panic, never 0 for a failed write.
#[test]
fn help_and_generated_files_report_a_failing_stdout() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        &["--help"][..],
        &["--version"][..],
        &["--generate", "man"][..],
        &["--generate", "bash"][..],
        &["--generate", "fish"][..],
    ] {
        let out = fetch().args(args).stdout(full()).output().unwrap();
        assert_eq!(out.status.code(), Some(23), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("fetch: stdout: "), "{args:?}: {err}");

        let mut child = fetch()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}
