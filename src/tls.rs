//! TLS with rustls (ring): which roots to trust (system, bundled fallback, or
//! `--cacert`), `-k`, the handshake, and what its failures mean (35, 60, 77).

use crate::config::Tls;
use crate::error::Error;
use crate::transport::Socket;
use crate::url::Host;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::io;
use std::sync::Arc;

/// A TLS session over a connected socket.
pub type TlsStream = rustls::StreamOwned<ClientConnection, Socket>;

/// Builds the client configuration for `options`. Roots are loaded here, so
/// only a transfer that meets an https URL pays for them; `trace` hears
/// where they came from (`-v`).
pub fn client_config(
    options: &Tls,
    trace: &mut dyn FnMut(String),
) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let roots = match &options.ca_file {
            Some(path) => {
                let roots = roots_from_file(path)?;
                trace(format!(
                    "Trusted roots: {} from --cacert {}",
                    roots.len(),
                    path.display()
                ));
                roots
            }
            None => system_roots(trace)?,
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `--cacert FILE`: every PEM certificate in FILE; none, or an unreadable
/// file, is exit 77.
fn roots_from_file(path: &std::path::Path) -> Result<RootCertStore, Error> {
    let fail = |why: String| Error::CaFile {
        path: path.to_owned(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(crate::error::plain(&e)))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| fail(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificates in the file".into()));
    }
    Ok(roots)
}

/// The variables that name the trusted roots in place of the system's (OpenSSL's
/// names, read as rustls-native-certs reads them).
const CERT_FILE_VAR: &str = "SSL_CERT_FILE";
const CERT_DIR_VAR: &str = "SSL_CERT_DIR";

/// The roots `SSL_CERT_FILE` and `SSL_CERT_DIR` name, when either is set;
/// else the system's, or the bundled Mozilla roots where the system has none.
fn system_roots(trace: &mut dyn FnMut(String)) -> Result<RootCertStore, Error> {
    let file = std::env::var_os(CERT_FILE_VAR);
    let dirs = std::env::var_os(CERT_DIR_VAR);
    if let Some(roots) = roots_from_env(file.as_deref(), dirs.as_deref(), trace) {
        return roots;
    }
    Ok(native_roots(trace))
}

/// The system's store (as rustls-native-certs finds it), or the bundled
/// Mozilla roots where the system has none: never empty.
fn native_roots(trace: &mut dyn FnMut(String)) -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    if let Some(e) = found.errors.first() {
        trace(format!("The system's certificate store: {e}"));
    }
    or_bundled(found.certs, trace)
}

/// The system's certificates, or the bundled Mozilla roots where none of
/// them can be used.
fn or_bundled(
    system: Vec<rustls::pki_types::CertificateDer<'static>>,
    trace: &mut dyn FnMut(String),
) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(system);
    if roots.is_empty() {
        trace("Trusted roots: Mozilla's, bundled (the system has none)".into());
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        trace(format!("Trusted roots: {added} from the system's store"));
    }
    roots
}

/// `SSL_CERT_FILE` (`file`) and `SSL_CERT_DIR` (`dirs`, a colon-separated
/// list), or `None` when neither names anything. As in OpenSSL, they replace
/// the system's roots; unlike OpenSSL, which then trusts nothing and fails
/// every handshake (60), a file that cannot be read, holds no certificate or
/// is not a PEM file, or directories of which none can be opened, is exit 77,
/// as `--cacert` is: a typo must neither fall back to other roots nor look
/// like the server's fault. A directory of the list that is not there, and a
/// file inside one that cannot be read, are skipped, as OpenSSL skips them
/// (`-v` says so): a list naming the usual places of several systems works.
fn roots_from_env(
    file: Option<&std::ffi::OsStr>,
    dirs: Option<&std::ffi::OsStr>,
    trace: &mut dyn FnMut(String),
) -> Option<Result<RootCertStore, Error>> {
    use std::path::{Path, PathBuf};
    let dirs: Vec<PathBuf> = dirs
        .map(|d| std::env::split_paths(d).filter(|p| !p.as_os_str().is_empty()))
        .into_iter()
        .flatten()
        .collect();
    if file.is_none() && dirs.is_empty() {
        return None;
    }
    Some(load_env_roots(file.map(Path::new), &dirs, trace))
}

/// Loads what [`roots_from_env`] found named, or says why it cannot.
fn load_env_roots(
    file: Option<&std::path::Path>,
    dirs: &[std::path::PathBuf],
    trace: &mut dyn FnMut(String),
) -> Result<RootCertStore, Error> {
    use rustls_native_certs::load_certs_from_paths;
    let fail = |var: &'static str, path: &std::path::Path, why: &str| Error::CertEnv {
        var,
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let mut certs = Vec::new();
    if let Some(path) = file {
        if path.as_os_str().is_empty() {
            return Err(fail(CERT_FILE_VAR, path, "set, but empty"));
        }
        let found = load_certs_from_paths(Some(path), None);
        if let Some(e) = found.errors.first() {
            return Err(fail(CERT_FILE_VAR, path, &cert_error(e)));
        }
        if found.certs.is_empty() {
            return Err(fail(CERT_FILE_VAR, path, "no certificates in the file"));
        }
        trace(format!(
            "Trusted roots: {} from {CERT_FILE_VAR}={}",
            found.certs.len(),
            path.display()
        ));
        certs.extend(found.certs);
    }
    let mut unopened = None;
    for dir in dirs {
        if let Err(e) = std::fs::read_dir(dir) {
            let why = crate::error::plain(&e);
            trace(format!("{CERT_DIR_VAR}: skipped {}: {why}", dir.display()));
            unopened.get_or_insert((dir, why));
            continue;
        }
        let found = load_certs_from_paths(None, Some(dir));
        for e in &found.errors {
            trace(format!("{CERT_DIR_VAR}: skipped: {e}"));
        }
        trace(format!(
            "Trusted roots: {} from {CERT_DIR_VAR} {}",
            found.certs.len(),
            dir.display()
        ));
        certs.extend(found.certs);
    }
    // The file is often the directory's certificates again, bundled.
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(match (file, unopened, dirs.first()) {
            (Some(path), _, _) => fail(CERT_FILE_VAR, path, "no usable certificates"),
            (None, Some((dir, why)), _) => fail(CERT_DIR_VAR, dir, &why),
            (None, None, dir) => fail(
                CERT_DIR_VAR,
                dir.map_or(std::path::Path::new(""), |d| d.as_path()),
                "no certificates in the directory",
            ),
        });
    }
    Ok(roots)
}

/// A rustls-native-certs error, said the way fetch says I/O errors.
fn cert_error(e: &rustls_native_certs::Error) -> String {
    use rustls_native_certs::ErrorKind;
    match &e.kind {
        ErrorKind::Io { inner, .. } => crate::error::plain(inner),
        ErrorKind::Pem(pem) => format!("not a PEM certificate file: {pem}"),
        _ => e.to_string(),
    }
}

/// Runs the handshake to completion before any request byte is sent, so that
/// its failures get their own exit codes.
/// `own_roots`: the roots are the user's `--cacert` (messages say so).
pub fn handshake(
    mut socket: Socket,
    host: &Host,
    config: Arc<ClientConfig>,
    own_roots: bool,
    trace: &mut dyn FnMut(String),
) -> Result<TlsStream, Error> {
    let name = match host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::ScopedIpv6(ip, _) => ServerName::IpAddress(std::net::IpAddr::V6(*ip).into()),
        Host::Name(n) => ServerName::try_from(n.clone())
            .map_err(|e| Error::Tls(format!("'{n}' cannot be a TLS server name: {e}")))?,
    };
    let mut conn = ClientConnection::new(config, name).map_err(|e| Error::Tls(e.to_string()))?;
    socket.connect_step("the TLS handshake");
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)
            .map_err(|e| handshake_error(e, own_roots))?;
    }
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("TLS");
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("?");
    trace(format!("{version} handshake done, {suite}"));
    Ok(rustls::StreamOwned::new(conn, socket))
}

/// rustls reports its own errors inside `io::Error`s: those are the
/// handshake failing (35, or 60 for the certificate). Everything else is the
/// connection failing under the handshake (a reset, a close): still 35, but
/// transient, since the next connection may well complete.
fn handshake_error(e: io::Error, own_roots: bool) -> Error {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                if own_roots =>
            {
                Error::Certificate(
                    "issued by an authority the --cacert file does not hold (it must hold \
                     the CA that issued the server's certificate, not that certificate \
                     itself; -k skips verification)"
                        .into(),
                )
            }
            rustls::Error::InvalidCertificate(why) => Error::Certificate(describe_certificate(why)),
            rustls::Error::NoCertificatesPresented => {
                Error::Certificate("the server presented no certificate".into())
            }
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                Error::Tls("the server did not answer in TLS (plain http on this port?)".into())
            }
            other => Error::Tls(other.to_string()),
        };
    }
    match Error::from_read(e) {
        Error::Network { source, .. } => Error::HandshakeCut(match source.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "the connection was reset".into(),
            _ => crate::error::plain(&source),
        }),
        Error::Truncated(_) => Error::HandshakeCut("the server closed the connection".into()),
        other => other,
    }
}

fn describe_certificate(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let what = match why {
        C::UnknownIssuer => {
            return "issued by an unknown authority (--cacert FILE trusts a private CA; \
                    -k skips verification)"
                .into();
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => "not valid for this host name",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet",
        C::Revoked => "revoked",
        C::BadSignature => "badly signed",
        other => return format!("{} (-k skips verification)", certificate_problem(other)),
    };
    format!("{what} (-k skips verification)")
}

/// The rarer certificate errors, in words. rustls's own text for them is
/// often a Rust value (`Other(OtherError(CaUsedAsEndEntity))`), so the common
/// ones are said here, the one people meet when they make a self-signed
/// certificate the usual way with what to do; webpki's other errors are
/// spelt out from their names; anything else is rustls's text.
fn certificate_problem(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match why {
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "not meant for a TLS server (its extended key usage)".into()
        }
        C::BadEncoding => "badly encoded".into(),
        C::UnhandledCriticalExtension => {
            "marked with a critical extension fetch does not know".into()
        }
        C::UnknownRevocationStatus => "of unknown revocation status".into(),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "signed with an algorithm fetch does not support".into()
        }
        C::Other(other) => {
            let name = other.0.to_string();
            if name == "CaUsedAsEndEntity" {
                return "a CA certificate used as the server's own (the server needs a \
                        certificate of its own, issued by that CA)"
                    .into();
            }
            match name.chars().all(|c| c.is_ascii_alphanumeric()) {
                true => spelt_out(&name),
                false => name,
            }
        }
        other => other.to_string(),
    }
}

/// `CaUsedAsEndEntity` -> "ca used as end entity".
fn spelt_out(name: &str) -> String {
    let mut words = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// `-k`: accepts any certificate, but still checks that the server holds the
/// key it presented (the handshake signatures), as curl -k does.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_certificate_errors_are_said_in_words() {
        use rustls::CertificateError as C;
        // As webpki's error debugs.
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("CaUsedAsEndEntity")
            }
        }
        impl std::error::Error for CaUsedAsEndEntity {}
        let ca = C::Other(rustls::OtherError(Arc::new(CaUsedAsEndEntity)));
        assert_eq!(
            describe_certificate(&ca),
            "a CA certificate used as the server's own (the server needs a certificate \
             of its own, issued by that CA) (-k skips verification)"
        );
        assert_eq!(
            describe_certificate(&C::InvalidPurposeContext {
                required: rustls::ExtendedKeyPurpose::ServerAuth,
                presented: vec![rustls::ExtendedKeyPurpose::Other(vec![1, 3, 6, 1])],
            }),
            "not meant for a TLS server (its extended key usage) (-k skips verification)"
        );
        #[derive(Debug)]
        struct EndEntityUsedAsCa;
        impl std::fmt::Display for EndEntityUsedAsCa {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("EndEntityUsedAsCa")
            }
        }
        impl std::error::Error for EndEntityUsedAsCa {}
        let other = C::Other(rustls::OtherError(Arc::new(EndEntityUsedAsCa)));
        assert_eq!(
            describe_certificate(&other),
            "end entity used as ca (-k skips verification)"
        );
    }

    #[test]
    fn cacert_that_is_missing_or_empty_is_77() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Tls {
            ca_file: Some(dir.path().join("nope.pem")),
            insecure: false,
        };
        assert_eq!(
            client_config(&missing, &mut |_| {})
                .unwrap_err()
                .exit_code(),
            77
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let empty = Tls {
            ca_file: Some(empty),
            insecure: false,
        };
        assert_eq!(
            client_config(&empty, &mut |_| {}).unwrap_err().exit_code(),
            77
        );
    }

    #[test]
    fn a_cut_handshake_is_35_and_transient_a_refused_one_is_not() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::BrokenPipe,
        ] {
            let e = handshake_error(kind.into(), false);
            assert_eq!(e.exit_code(), 35, "{kind:?}");
            assert!(e.is_transient(), "{kind:?}");
        }
        let refused = handshake_error(
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            ),
            false,
        );
        assert_eq!(refused.exit_code(), 35);
        assert!(!refused.is_transient());
    }

    /// `roots_from_env` for these values of SSL_CERT_FILE and SSL_CERT_DIR.
    fn from_env(
        file: Option<&std::path::Path>,
        dirs: Option<&str>,
    ) -> Option<Result<usize, Error>> {
        roots_from_env(
            file.map(|f| f.as_os_str()),
            dirs.map(std::ffi::OsStr::new),
            &mut |_| {},
        )
        .map(|r| r.map(|roots| roots.len()))
    }

    fn ca_cert() -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap()
    }

    fn ca_pem() -> String {
        ca_cert().pem()
    }

    #[test]
    fn ssl_cert_variables_that_name_nothing_usable_are_77() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let not_pem = dir.path().join("der.crt");
        std::fs::write(&not_pem, [0x30, 0x82, 0x01]).unwrap();
        for file in [
            missing.as_path(),
            empty.as_path(),
            not_pem.as_path(),
            dir.path(),
            std::path::Path::new(""),
        ] {
            let e = from_env(Some(file), None).unwrap().unwrap_err();
            assert_eq!(e.exit_code(), 77, "{file:?}: {e}");
            assert!(e.to_string().starts_with("SSL_CERT_FILE="), "{e}");
        }
        let nowhere = missing.to_str().unwrap();
        let e = from_env(None, Some(nowhere)).unwrap().unwrap_err();
        assert_eq!(e.exit_code(), 77, "{e}");
        assert!(e.to_string().starts_with("SSL_CERT_DIR="), "{e}");
        // A directory without certificates, alone, trusts nothing: 77 too.
        let bare = tempfile::tempdir().unwrap();
        let bare = bare.path().to_str().unwrap();
        assert_eq!(
            from_env(None, Some(bare)).unwrap().unwrap_err().exit_code(),
            77
        );
    }

    #[test]
    fn ssl_cert_variables_name_the_roots() {
        assert!(from_env(None, None).is_none());
        // An empty SSL_CERT_DIR names no directory (rustls-native-certs agrees).
        assert!(from_env(None, Some("")).is_none());
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).unwrap();
        assert_eq!(from_env(Some(&ca), None).unwrap().unwrap(), 1);
        let certs = dir.path().to_str().unwrap();
        assert_eq!(from_env(None, Some(certs)).unwrap().unwrap(), 1);
        // The file and the directories add up.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("b.pem"), ca_pem()).unwrap();
        let third = tempfile::tempdir().unwrap();
        std::fs::write(third.path().join("c.pem"), ca_pem()).unwrap();
        let both = format!("{certs}:{}", other.path().display());
        let file = third.path().join("c.pem");
        assert_eq!(from_env(Some(&file), Some(&both)).unwrap().unwrap(), 3);
        // A directory of the list that is not there is skipped, as OpenSSL
        // skips it: lists name the usual places of several systems.
        let with_missing = format!("/nonexistent-fetch-test-dir:{certs}");
        assert_eq!(from_env(None, Some(&with_missing)).unwrap().unwrap(), 1);
    }

    #[test]
    fn system_roots_are_never_empty() {
        // Not through system_roots: it reads the machine's SSL_CERT_* first.
        assert!(!native_roots(&mut |_| {}).is_empty());
    }

    /// A system with no certificates, or none that parse, gets Mozilla's.
    #[test]
    fn a_system_without_roots_gets_the_bundled_ones() {
        let garbage = rustls::pki_types::CertificateDer::from(b"not a certificate".to_vec());
        for system in [vec![], vec![garbage]] {
            let mut said = vec![];
            let roots = or_bundled(system, &mut |line| said.push(line));
            assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
            assert_eq!(
                said,
                ["Trusted roots: Mozilla's, bundled (the system has none)"]
            );
        }
        let own = vec![ca_cert().der().clone()];
        let mut said = vec![];
        assert_eq!(or_bundled(own, &mut |line| said.push(line)).len(), 1);
        assert_eq!(said, ["Trusted roots: 1 from the system's store"]);
    }
}
