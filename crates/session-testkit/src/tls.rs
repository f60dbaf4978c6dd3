//! Test certificates for TLS servers: a fresh CA and a server certificate it signed, for
//! `127.0.0.1` and `localhost`, made when the server starts.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA certificate's file name inside the server's directory.
const CA_CERT_FILE: &str = "tls-ca.crt";
const SERVER_CERT_FILE: &str = "tls-server.crt";
const SERVER_KEY_FILE: &str = "tls-server.key";

/// Where a TLS server's files are, and the CA certificate a client must trust.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) ca_cert: PathBuf,
    pub(crate) ca_cert_pem: String,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

/// A test certificate authority: one made per [`crate::ServerOptions::tls`] server unless a
/// shared one is given with [`crate::ServerOptions::tls_ca`]. Cheap to clone (the same CA).
///
/// Its private key stays in memory and is used only to sign the kit's server certificates.
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

struct CaInner {
    params: CertificateParams,
    key_pem: String,
    cert_pem: String,
}

impl TestCa {
    /// A fresh CA (`session-testkit test CA`).
    ///
    /// # Panics
    ///
    /// When the key cannot be generated (the crypto library failed).
    ///
    /// Example: the example on [`crate::ServerOptions::tls_ca`].
    pub fn new() -> Self {
        Self::try_new().unwrap_or_else(|err| panic!("session-testkit: {err}"))
    }

    fn try_new() -> io::Result<Self> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "session-testkit test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(rcgen_err)?;
        Ok(Self {
            inner: Arc::new(CaInner {
                params,
                key_pem: key.serialize_pem(),
                cert_pem: cert.pem(),
            }),
        })
    }

    /// The CA certificate, PEM: what a client must trust.
    ///
    /// Example: the example on [`crate::ServerOptions::tls_ca`].
    pub fn pem(&self) -> &str {
        &self.inner.cert_pem
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn rcgen_err(err: rcgen::Error) -> io::Error {
    io::Error::other(format!("make test certificates: {err}"))
}

/// Makes a server certificate for `127.0.0.1`/`localhost` signed by `ca` (a fresh CA when
/// `None`), and writes it, its key (mode 600) and the CA certificate into `dir`.
pub(crate) fn write_certificates(dir: &Path, ca: Option<&TestCa>) -> io::Result<TlsFiles> {
    let ca = match ca {
        Some(ca) => ca.clone(),
        None => TestCa::try_new()?,
    };
    let ca_key = KeyPair::from_pem(&ca.inner.key_pem).map_err(rcgen_err)?;
    let issuer = Issuer::new(ca.inner.params.clone(), ca_key);

    let server_key = KeyPair::generate().map_err(rcgen_err)?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(rcgen_err)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    // Also a client certificate: redis-server presents it when it connects to another
    // TLS server (replication, sentinel links).
    server_params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(rcgen_err)?;

    let files = TlsFiles {
        ca_cert: dir.join(CA_CERT_FILE),
        ca_cert_pem: ca.pem().to_string(),
        server_cert: dir.join(SERVER_CERT_FILE),
        server_key: dir.join(SERVER_KEY_FILE),
    };
    write_private(&files.ca_cert, files.ca_cert_pem.as_bytes())?;
    write_private(&files.server_cert, server_cert.pem().as_bytes())?;
    write_private(&files.server_key, server_key.serialize_pem().as_bytes())?;
    Ok(files)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}
