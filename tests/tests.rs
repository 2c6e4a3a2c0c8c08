//! The one integration test binary: runs the real `fetch` against the project's
//! test server on loopback.

mod support;

mod adversarial;
mod batch;
mod compressed;
mod docs;
mod download;
mod exit_codes;
mod files;
mod framing;
mod integrity;
mod interop;
mod keepalive;
mod naming;
mod nginx;
mod progress;
mod proxy;
mod redirects;
mod resume;
mod retries;
mod tls;
mod write_out;
