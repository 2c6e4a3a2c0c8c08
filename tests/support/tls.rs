//! Certificates made at test time (rcgen): a fresh CA per identity, a server
//! certificate it signs, and the rustls server configuration that presents it.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// A server identity and the CA file a client needs to trust it.
pub struct Identity {
    /// PEM file with the CA certificate (for `--cacert`).
    pub ca_file: PathBuf,
    /// PEM files with the server's certificate and private key (for nginx).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub config: Arc<ServerConfig>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    _dir: tempfile::TempDir,
}

/// A new CA and a certificate for `names` (host names or IP addresses).
pub fn identity(names: &[&str]) -> Identity {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fetch test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let cert_file = dir.path().join("cert.pem");
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
    // nginx reads them as root before dropping privileges; the directory must
    // still be reachable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let config = builder(rustls::DEFAULT_VERSIONS)
        .with_single_cert(chain.clone(), key.clone_key())
        .unwrap();
    Identity {
        ca_file,
        cert_file,
        key_file,
        config: Arc::new(config),
        chain,
        key,
        _dir: dir,
    }
}

/// A server configuration (ring, no client certificates) for these versions.
fn builder(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
}

impl Identity {
    /// The same identity on a server that speaks TLS 1.2 only.
    pub fn tls12_config(&self) -> Arc<ServerConfig> {
        let config = builder(&[&rustls::version::TLS12])
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .unwrap();
        Arc::new(config)
    }

    /// The same identity on a server that presents it only to a client naming
    /// `name` by SNI: any other handshake fails (the server has no certificate
    /// for it).
    pub fn sni_only_config(&self, name: &str) -> Arc<ServerConfig> {
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .unwrap();
        let mut by_name = rustls::server::ResolvesServerCertUsingSni::new();
        by_name
            .add(
                name,
                rustls::sign::CertifiedKey::new(self.chain.clone(), signing),
            )
            .unwrap();
        Arc::new(builder(rustls::DEFAULT_VERSIONS).with_cert_resolver(Arc::new(by_name)))
    }
}
