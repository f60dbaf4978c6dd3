//! Test certificates for TLS servers, made when the server starts: a CA, a server certificate
//! it signed (for `127.0.0.1` and `localhost` unless [`crate::ServerOptions::tls_server_names`]
//! says otherwise), a client certificate it signed (plain and encrypted key), and a second,
//! unrelated CA that signed nothing the server uses.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pkcs8::{pkcs5::pbes2, LineEnding, PrivateKeyInfo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The password of [`TlsFiles::client_key_encrypted`].
pub const CLIENT_KEY_PASSWORD: &str = "kit-key-passw0rd";

/// The names the server certificate is valid for by default.
pub(crate) const DEFAULT_SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// Where a TLS server's certificate files are (all inside [`crate::RedisServer::dir`], mode
/// 600), and the PEM text of the two CAs.
///
/// ```
/// use session_testkit::{RedisServer, ServerOptions, CLIENT_KEY_PASSWORD};
///
/// let server = RedisServer::start_with(ServerOptions::new().tls(true));
/// let files = server.tls_files().unwrap();
/// let key = std::fs::read_to_string(&files.client_key_encrypted).unwrap();
/// assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
/// assert_ne!(files.ca_cert_pem, files.other_ca_cert_pem);
/// assert!(!CLIENT_KEY_PASSWORD.is_empty());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The CA that signed the server and client certificates (PEM).
    pub ca_cert: PathBuf,
    /// The text of [`TlsFiles::ca_cert`].
    pub ca_cert_pem: String,
    /// The server's certificate (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PKCS#8 PEM).
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, for mutual TLS (PEM, X.509 v3, `clientAuth`).
    pub client_cert: PathBuf,
    /// The client certificate's private key, unencrypted (PKCS#8 PEM, `PRIVATE KEY`).
    pub client_key: PathBuf,
    /// The same key encrypted with [`CLIENT_KEY_PASSWORD`] (PKCS#8 PEM, `ENCRYPTED PRIVATE
    /// KEY`, PBKDF2-SHA256 + AES-256-CBC, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes).
    pub client_key_encrypted: PathBuf,
    /// A second CA, unrelated to the server: trusting only it must fail verification (PEM).
    pub other_ca_cert: PathBuf,
    /// The text of [`TlsFiles::other_ca_cert`].
    pub other_ca_cert_pem: String,
}

fn rcgen_err(err: rcgen::Error) -> io::Error {
    io::Error::other(format!("make test certificates: {err}"))
}

/// A test certificate authority: one is made per [`crate::ServerOptions::tls`] server unless
/// a shared one is given with [`crate::ServerOptions::tls_ca`], so that the servers of one
/// topology trust each other. Cheap to clone (the same CA).
///
/// Its private key stays in memory and only signs the kit's certificates.
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
        let params = ca_params("session-testkit test CA");
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

    fn issuer(&self) -> io::Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::from_pem(&self.inner.key_pem).map_err(rcgen_err)?;
        Ok(Issuer::new(self.inner.params.clone(), key))
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

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn new_ca(name: &str) -> io::Result<(String, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate().map_err(rcgen_err)?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).map_err(rcgen_err)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

/// Makes the CAs and certificates and writes them (mode 600) into `dir`. The CAs' keys are
/// dropped (nothing else is ever signed with them), unless the CA is a shared [`TestCa`].
pub(crate) fn write_certificates(
    dir: &Path,
    server_names: &[String],
    shared_ca: Option<&TestCa>,
) -> io::Result<TlsFiles> {
    let (ca_cert_pem, issuer) = match shared_ca {
        Some(ca) => (ca.pem().to_string(), ca.issuer()?),
        None => new_ca("session-testkit test CA")?,
    };
    let (other_ca_cert_pem, _) = new_ca("session-testkit unrelated CA")?;

    let server_key = KeyPair::generate().map_err(rcgen_err)?;
    let mut server_params = CertificateParams::new(server_names.to_vec()).map_err(rcgen_err)?;
    server_params.distinguished_name.push(
        DnType::CommonName,
        server_names.first().map_or("redis", String::as_str),
    );
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(rcgen_err)?;

    let client_key = KeyPair::generate().map_err(rcgen_err)?;
    let mut client_params = CertificateParams::default();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "session-testkit client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .map_err(rcgen_err)?;

    let files = TlsFiles {
        ca_cert: dir.join("tls-ca.crt"),
        ca_cert_pem,
        server_cert: dir.join("tls-server.crt"),
        server_key: dir.join("tls-server.key"),
        client_cert: dir.join("tls-client.crt"),
        client_key: dir.join("tls-client.key"),
        client_key_encrypted: dir.join("tls-client-encrypted.key"),
        other_ca_cert: dir.join("tls-other-ca.crt"),
        other_ca_cert_pem,
    };
    write_private(&files.ca_cert, files.ca_cert_pem.as_bytes())?;
    write_private(&files.other_ca_cert, files.other_ca_cert_pem.as_bytes())?;
    write_private(&files.server_cert, server_cert.pem().as_bytes())?;
    write_private(&files.server_key, server_key.serialize_pem().as_bytes())?;
    write_private(&files.client_cert, client_cert.pem().as_bytes())?;
    write_private(&files.client_key, client_key.serialize_pem().as_bytes())?;
    let encrypted = encrypt_key(&client_key.serialize_der(), CLIENT_KEY_PASSWORD)?;
    write_private(&files.client_key_encrypted, encrypted.as_bytes())?;
    Ok(files)
}

/// Encrypts a PKCS#8 DER key into `ENCRYPTED PRIVATE KEY` PEM with a random salt and IV.
fn encrypt_key(der: &[u8], password: &str) -> io::Result<String> {
    let pkcs8_err = |err: pkcs8::Error| io::Error::other(format!("encrypt test key: {err}"));
    let mut random = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    let (salt, iv) = random.split_at(16);
    let iv: &[u8; 16] = iv.try_into().expect("16 bytes");
    // Few iterations: the password is public anyway, and tests should stay fast.
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, salt, iv)
        .map_err(|err| pkcs8_err(err.into()))?;
    let info = PrivateKeyInfo::try_from(der).map_err(pkcs8_err)?;
    let document = info
        .encrypt_with_params(params, password)
        .map_err(pkcs8_err)?;
    let pem = document
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|err| pkcs8_err(err.into()))?;
    Ok(pem.to_string())
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
