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
/// only a transfer that meets an https URL pays for them.
pub fn client_config(options: &Tls) -> Result<Arc<ClientConfig>, Error> {
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
            Some(path) => roots_from_file(path)?,
            None => system_roots(),
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

/// The system's roots (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), or the
/// bundled Mozilla roots where the system has none.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Runs the handshake to completion before any request byte is sent, so that
/// its failures get their own exit codes.
pub fn handshake(
    mut socket: Socket,
    host: &Host,
    config: Arc<ClientConfig>,
    trace: &mut dyn FnMut(String),
) -> Result<TlsStream, Error> {
    let name = match host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name(n) => ServerName::try_from(n.clone())
            .map_err(|e| Error::Tls(format!("'{n}' cannot be a TLS server name: {e}")))?,
    };
    let mut conn = ClientConnection::new(config, name).map_err(|e| Error::Tls(e.to_string()))?;
    socket.connect_step("the TLS handshake");
    while conn.is_handshaking() {
        conn.complete_io(&mut socket).map_err(handshake_error)?;
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
fn handshake_error(e: io::Error) -> Error {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
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
        other => return format!("{other:?} (-k skips verification)"),
    };
    format!("{what} (-k skips verification)")
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
    fn cacert_that_is_missing_or_empty_is_77() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Tls {
            ca_file: Some(dir.path().join("nope.pem")),
            insecure: false,
        };
        assert_eq!(client_config(&missing).unwrap_err().exit_code(), 77);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let empty = Tls {
            ca_file: Some(empty),
            insecure: false,
        };
        assert_eq!(client_config(&empty).unwrap_err().exit_code(), 77);
    }

    #[test]
    fn a_cut_handshake_is_35_and_transient_a_refused_one_is_not() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::BrokenPipe,
        ] {
            let e = handshake_error(kind.into());
            assert_eq!(e.exit_code(), 35, "{kind:?}");
            assert!(e.is_transient(), "{kind:?}");
        }
        let refused = handshake_error(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        ));
        assert_eq!(refused.exit_code(), 35);
        assert!(!refused.is_transient());
    }

    #[test]
    fn system_roots_are_never_empty() {
        assert!(!system_roots().is_empty());
    }
}
