//! The one integration test binary: runs the real `fetch` against the project's
//! test server on loopback.

mod support;

mod download;
mod exit_codes;
mod files;
mod framing;
mod proxy;
mod redirects;
mod retries;
mod tls;
