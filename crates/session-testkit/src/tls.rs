//! Test certificates for TLS servers: a fresh CA and a server certificate it signed, for
//! `127.0.0.1` and `localhost`, made when the server starts.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// Makes a CA and a server certificate for `127.0.0.1`/`localhost`, and writes them (key
/// with mode 600) into `dir`. The CA's key is dropped: nothing else is ever signed with it.
pub(crate) fn write_certificates(dir: &Path) -> io::Result<TlsFiles> {
    let rcgen_err = |err: rcgen::Error| io::Error::other(format!("make test certificates: {err}"));

    let ca_key = KeyPair::generate().map_err(rcgen_err)?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "session-testkit test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(rcgen_err)?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(rcgen_err)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(rcgen_err)?;

    let files = TlsFiles {
        ca_cert: dir.join(CA_CERT_FILE),
        ca_cert_pem: ca_cert.pem(),
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
