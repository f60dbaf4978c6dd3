//! TLS of a Redis plan, read once from the `session_redis_ssl*` options.
//!
//! [`TlsPlan`] holds what every TLS connection of a backend needs (trusted roots, client
//! certificate and decrypted key, verification switches); the Redis backend gives every
//! `(host, port)` it connects to the same treatment (the standalone server, the sentinels and
//! the masters they name, every cluster node).
//!
//! Files are read and checked here, when the plan is made, so a missing file, a wrong key
//! password or a certificate and key that do not belong together fail
//! [`SessionConfig::plan`] with a [`ConfigError`] naming the option, instead of failing every
//! connection later.

use std::{
    collections::HashSet,
    fmt, fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use redis::ClientTlsConfig;
use rustls::pki_types::{
    pem::{self, PemObject},
    CertificateDer, PrivateKeyDer,
};

use crate::{config::shorten, ConfigError, SessionConfig};

const CA_CERTS: &str = "session_redis_ssl_ca_certs";
const CA_PATH: &str = "session_redis_ssl_ca_path";
const CA_DATA: &str = "session_redis_ssl_ca_data";
const CERTFILE: &str = "session_redis_ssl_certfile";
const KEYFILE: &str = "session_redis_ssl_keyfile";
const PASSWORD: &str = "session_redis_ssl_password";
const REDACTED: &str = "<redacted>";

/// The usual cause of a PEM text that does not parse: a key or certificate passed through an
/// environment variable or a one-line setting.
const LINE_BREAKS_LOST: &str = "a BEGIN line without its END line: were the line breaks lost (a PEM file needs the BEGIN line, each base64 line and the END line on lines of their own)?";

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// How a Redis backend speaks TLS. `Debug` shows no key material.
#[derive(Clone)]
pub struct TlsPlan {
    /// PEM bundle of trusted roots; `None` = the system's roots.
    pub(crate) roots: Option<Vec<u8>>,
    /// Client certificate chain and (decrypted) key, for mutual TLS.
    pub(crate) client: Option<ClientTlsConfig>,
    /// `ssl_cert_reqs` other than `none`.
    pub(crate) verify: bool,
    /// `ssl_check_hostname`; only meaningful when `verify`.
    pub(crate) check_hostname: bool,
}

impl fmt::Debug for TlsPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPlan")
            .field(
                "roots",
                &if self.roots.is_some() {
                    "configured CAs"
                } else {
                    "system roots"
                },
            )
            .field("client_certificate", &self.client.is_some())
            .field("verify", &self.verify)
            .field("check_hostname", &self.check_hostname)
            .finish()
    }
}

impl TlsPlan {
    /// The TLS settings of `config`, or `None` when neither `ssl` nor a `rediss://` URL asks
    /// for TLS (other `ssl_*` options are then ignored with a warning, as redis-py ignores
    /// them). Reads and checks every file now.
    pub(crate) fn from_config(config: &SessionConfig) -> Result<Option<Self>, ConfigError> {
        let url_tls = config
            .url
            .as_deref()
            .and_then(redis::parse_redis_url)
            .is_some_and(|url| matches!(url.scheme(), "rediss" | "valkeys"));
        if !(config.ssl || url_tls) {
            let ignored: Vec<&str> = [
                (CA_CERTS, config.ssl_ca_certs.is_some()),
                (CA_PATH, config.ssl_ca_path.is_some()),
                (CA_DATA, config.ssl_ca_data.is_some()),
                (CERTFILE, config.ssl_certfile.is_some()),
                (KEYFILE, config.ssl_keyfile.is_some()),
                (PASSWORD, config.ssl_password.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, set)| set.then_some(key))
            .collect();
            if !ignored.is_empty() {
                tracing::warn!(
                    options = ?ignored,
                    "TLS options ignored: TLS is off (set session_redis_ssl = True or use a rediss:// URL)"
                );
            }
            return Ok(None);
        }

        // `validate` refused any other spelling.
        let verify = config
            .ssl_cert_reqs
            .as_deref()
            .and_then(cert_reqs)
            .unwrap_or(true);

        let mut roots = Vec::new();
        let mut any_roots = false;
        if let Some(path) = &config.ssl_ca_certs {
            let pem = read_file(CA_CERTS, path)?;
            check_roots(CA_CERTS, &path.display().to_string(), &pem)?;
            append_pem(&mut roots, &pem);
            any_roots = true;
        }
        if let Some(dir) = &config.ssl_ca_path {
            append_pem(&mut roots, &read_ca_dir(dir)?);
            any_roots = true;
        }
        if let Some(data) = &config.ssl_ca_data {
            append_pem(&mut roots, &ca_data_pem(data)?);
            any_roots = true;
        }

        let client = match (&config.ssl_certfile, &config.ssl_keyfile) {
            (None, None) => {
                if config.ssl_password.is_some() {
                    tracing::warn!(
                        "session_redis_ssl_password ignored: no session_redis_ssl_keyfile to decrypt"
                    );
                }
                None
            }
            (Some(cert), Some(key)) => {
                Some(client_identity(cert, key, config.ssl_password.as_deref())?)
            }
            // `validate` insists on both or neither.
            _ => None,
        };

        Ok(Some(Self {
            roots: any_roots.then_some(roots),
            client,
            verify,
            check_hostname: config.ssl_check_hostname.unwrap_or(true),
        }))
    }
}

/// `ssl_cert_reqs` (`required`, `ssl.CERT_OPTIONAL`, ...) to "verify the server?". A client
/// that is given a certificate always gets one from a TLS server, so `optional` verifies.
fn cert_reqs(value: &str) -> Option<bool> {
    let norm = value.trim().to_ascii_lowercase();
    match norm.trim_start_matches("ssl.").trim_start_matches("cert_") {
        "required" | "optional" => Some(true),
        "none" => Some(false),
        _ => None,
    }
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    crate::config::read_bounded(path).map_err(|err| {
        ConfigError::invalid(
            key,
            &path.display().to_string(),
            &format!("a readable file of at most 4 MiB (reading it failed: {err})"),
        )
    })
}

fn append_pem(bundle: &mut Vec<u8>, pem: &[u8]) {
    bundle.extend_from_slice(pem);
    if !pem.ends_with(b"\n") {
        bundle.push(b'\n');
    }
}

/// Why a PEM text could not be read, in a fixed sentence. The parser's own text is never
/// shown: it quotes the file, and for a key whose line breaks were lost (a key passed through
/// an environment variable) its "missing section end" marker is the whole base64 body, which
/// is the private key.
fn pem_problem(err: &pem::Error) -> &'static str {
    match err {
        pem::Error::MissingSectionEnd { .. } => LINE_BREAKS_LOST,
        pem::Error::IllegalSectionStart { .. } => "a malformed -----BEGIN ...----- line",
        pem::Error::Base64Decode(_) => "the text between its BEGIN and END lines is not base64",
        pem::Error::Io(_) => "it could not be read",
        pem::Error::NoItemsFound => "it holds no PEM block of the expected type",
        pem::Error::SectionTooLarge => "a PEM block larger than the parser accepts",
        _ => "it is not valid PEM",
    }
}

/// The certificates of a PEM text, or why there are none.
fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("it is not valid PEM: {}", pem_problem(&err)))?;
    if certs.is_empty() {
        return Err("it holds no `-----BEGIN CERTIFICATE-----` block".into());
    }
    Ok(certs)
}

/// Checks that `pem` holds at least one certificate and that each can be a trust anchor.
fn check_roots(key: &str, shown: &str, pem: &[u8]) -> Result<(), ConfigError> {
    let bad =
        |why: String| ConfigError::invalid(key, shown, &format!("PEM CA certificates, but {why}"));
    let mut store = rustls::RootCertStore::empty();
    for (n, cert) in pem_certificates(pem).map_err(bad)?.into_iter().enumerate() {
        store
            .add(cert)
            .map_err(|err| bad(format!("certificate {} is not usable: {err}", n + 1)))?;
    }
    Ok(())
}

/// OpenSSL's `c_rehash` names: 8 hex digits, a dot, a number (`3f2a9c1b.0`).
fn is_hash_name(name: &str) -> bool {
    name.split_once('.').is_some_and(|(hash, n)| {
        hash.len() == 8
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The certificates of every `*.pem`, `*.crt` and hash-named file of `dir`, in name order,
/// each file once (hash names are usually links to the `.pem` files).
fn read_ca_dir(dir: &Path) -> Result<Vec<u8>, ConfigError> {
    let shown = dir.display().to_string();
    let entries = fs::read_dir(dir).map_err(|err| {
        ConfigError::invalid(
            CA_PATH,
            &shown,
            &format!("a readable directory of CA certificates (reading it failed: {err})"),
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.ends_with(".pem") || name.ends_with(".crt") || is_hash_name(name)
                })
        })
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    let mut seen = HashSet::new();
    let mut bundle = Vec::new();
    for path in paths {
        if !seen.insert(fs::canonicalize(&path).unwrap_or_else(|_| path.clone())) {
            continue;
        }
        let pem = read_file(CA_PATH, &path)?;
        // A file without certificates (a key, a CRL) is not an error, a broken one is.
        if CertificateDer::pem_slice_iter(&pem).next().is_none() {
            continue;
        }
        check_roots(CA_PATH, &path.display().to_string(), &pem)?;
        append_pem(&mut bundle, &pem);
    }
    if bundle.is_empty() {
        return Err(ConfigError::invalid(
            CA_PATH,
            &shown,
            "a directory with CA certificates in *.pem, *.crt or hash-named (abcd1234.0) PEM files; none found",
        ));
    }
    Ok(bundle)
}

/// `ssl_ca_data` as PEM: PEM text as is, base64 DER (one certificate) wrapped as PEM.
fn ca_data_pem(data: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine as _;
    let shown = shorten(data);
    let pem = if data.contains("-----BEGIN") {
        data.as_bytes().to_vec()
    } else {
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|err| {
                ConfigError::invalid(
                    CA_DATA,
                    &shown,
                    &format!(
                        "PEM text (-----BEGIN CERTIFICATE-----) or a DER certificate as base64 text; it is neither ({err})"
                    ),
                )
            })?;
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem.into_bytes()
    };
    check_roots(CA_DATA, &shown, &pem)?;
    Ok(pem)
}

/// Reads the client certificate and key, decrypting the key with `password` when it is an
/// encrypted PKCS#8 key, and checks that they belong together.
fn client_identity(
    cert_path: &Path,
    key_path: &Path,
    password: Option<&str>,
) -> Result<ClientTlsConfig, ConfigError> {
    let cert_shown = cert_path.display().to_string();
    let key_shown = key_path.display().to_string();
    let cert = read_file(CERTFILE, cert_path)?;
    let chain = pem_certificates(&cert).map_err(|why| {
        ConfigError::invalid(
            CERTFILE,
            &cert_shown,
            &format!("a PEM client certificate, but {why}"),
        )
    })?;

    let key_bytes = read_file(KEYFILE, key_path)?;
    let key_text = String::from_utf8_lossy(&key_bytes);
    let key = if key_text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(ConfigError::unsupported(
            KEYFILE,
            &key_shown,
            "a PEM key that is unencrypted or encrypted as PKCS#8; this one uses the legacy OpenSSL encryption (Proc-Type: 4,ENCRYPTED), which cannot be read here: convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.key -out NEW.key` and keep session_redis_ssl_password",
        ));
    } else if let Some(start) = key_text.find(ENCRYPTED_BEGIN) {
        let Some(password) = password else {
            return Err(ConfigError::invalid(
                KEYFILE,
                &key_shown,
                "an unencrypted key, or session_redis_ssl_password set: this key is encrypted",
            ));
        };
        let end = key_text[start..]
            .find(ENCRYPTED_END)
            .map_or(key_text.len(), |end| start + end + ENCRYPTED_END.len());
        decrypt_key(&key_text[start..end], password, &key_shown)?
    } else {
        if password.is_some() {
            tracing::warn!(
                keyfile = %key_shown,
                "session_redis_ssl_password ignored: the key file is not encrypted"
            );
        }
        key_bytes.clone()
    };

    let key_der = PrivateKeyDer::from_pem_slice(&key).map_err(|err| {
        let why = match err {
            pem::Error::NoItemsFound => "it holds no such block",
            other => pem_problem(&other),
        };
        ConfigError::invalid(
            KEYFILE,
            &key_shown,
            &format!(
                "a PEM private key (PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); reading it failed: {why}"
            ),
        )
    })?;
    // The same check rustls makes at every handshake, done once here so that a mismatch
    // is a start-up error rather than a failure of every connection.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::sign::CertifiedKey::from_der(chain, key_der, &provider).map_err(|err| {
        // Fixed sentences here too: the key file's errors never show text from a parser.
        let why = match err {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                format!("the private key of the certificate in session_redis_ssl_certfile ({cert_shown}); they do not go together")
            }
            rustls::Error::InconsistentKeys(_) => format!(
                "the private key of the certificate in session_redis_ssl_certfile ({cert_shown}); whether they go together could not be checked"
            ),
            _ => "an RSA, ECDSA (P-256, P-384) or Ed25519 private key; this one could not be loaded".to_owned(),
        };
        ConfigError::invalid(KEYFILE, &key_shown, &why)
    })?;
    Ok(ClientTlsConfig {
        client_cert: cert,
        client_key: key,
    })
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM block into `PRIVATE KEY` PEM bytes.
///
/// Its errors are fixed sentences: the PEM and DER parsers' own texts may quote the file.
fn decrypt_key(pem: &str, password: &str, key_shown: &str) -> Result<Vec<u8>, ConfigError> {
    use pkcs8::{der::SecretDocument, pkcs5, EncryptedPrivateKeyInfo, LineEnding};
    let malformed = |why: &str| {
        ConfigError::invalid(
            KEYFILE,
            key_shown,
            &format!("an encrypted PKCS#8 key in PEM; reading it failed: {why}"),
        )
    };
    let (_, document) = SecretDocument::from_pem(pem).map_err(|_| {
        malformed(if pem.trim().contains('\n') {
            "it is not a valid ENCRYPTED PRIVATE KEY PEM block"
        } else {
            LINE_BREAKS_LOST
        })
    })?;
    let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
        .map_err(|_| malformed("its content is not an encrypted PKCS#8 key"))?;
    let plain = info.decrypt(password).map_err(|err| match err {
        pkcs8::Error::EncryptedPrivateKey(
            pkcs5::Error::UnsupportedAlgorithm { .. } | pkcs5::Error::AlgorithmParametersInvalid { .. },
        ) => ConfigError::unsupported(
            KEYFILE,
            key_shown,
            "a PKCS#8 key encrypted with PBES2 (PBKDF2 or scrypt, AES-CBC), as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes; this one uses another scheme",
        ),
        // Wrong password: CBC padding fails, or (rarely) the plaintext is not a key.
        _ => ConfigError::invalid(
            PASSWORD,
            REDACTED,
            &format!("the password of {key_shown}: the key could not be decrypted with it"),
        ),
    })?;
    let pem = plain
        .to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|_| malformed("its decrypted content could not be written as PEM"))?;
    Ok(pem.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_reqs_values() {
        for (value, verify) in [
            ("required", Some(true)),
            ("ssl.CERT_REQUIRED", Some(true)),
            ("optional", Some(true)),
            ("CERT_OPTIONAL", Some(true)),
            ("none", Some(false)),
            ("ssl.CERT_NONE", Some(false)),
            ("sometimes", None),
        ] {
            assert_eq!(cert_reqs(value), verify, "{value}");
        }
    }

    #[test]
    fn hash_names() {
        assert!(is_hash_name("3f2a9c1b.0"));
        assert!(is_hash_name("3F2A9C1B.12"));
        assert!(!is_hash_name("3f2a9c1b.r0"));
        assert!(!is_hash_name("3f2a9c1.0"));
        assert!(!is_hash_name("README"));
    }

    #[test]
    fn tls_off_means_no_settings() {
        let config = SessionConfig {
            ssl_ca_certs: Some("/nonexistent/ca.pem".into()),
            ..SessionConfig::default()
        };
        assert!(TlsPlan::from_config(&config).unwrap().is_none());
    }

    #[test]
    fn missing_file_names_option_path_and_os_error() {
        let config = SessionConfig {
            ssl: true,
            ssl_ca_certs: Some("/nonexistent/ca.pem".into()),
            ..SessionConfig::default()
        };
        let err = config.plan().unwrap_err();
        assert_eq!(err.key, CA_CERTS);
        assert_eq!(err.value, "/nonexistent/ca.pem");
        assert!(err.expected.contains("No such file"), "{err}");
    }

    #[test]
    fn half_a_client_identity_names_both_options() {
        for (cert, key) in [(Some("/c.pem"), None), (None, Some("/k.pem"))] {
            let config = SessionConfig {
                ssl: true,
                ssl_certfile: cert.map(Into::into),
                ssl_keyfile: key.map(Into::into),
                ..SessionConfig::default()
            };
            let err = config.plan().unwrap_err().to_string();
            assert!(err.contains(CERTFILE) && err.contains(KEYFILE), "{err}");
        }
    }

    #[test]
    fn ca_data_that_is_neither_pem_nor_base64() {
        let config = SessionConfig {
            ssl: true,
            ssl_ca_data: Some("not a certificate!".into()),
            ..SessionConfig::default()
        };
        let err = config.plan().unwrap_err();
        assert_eq!(err.key, CA_DATA);
    }
}
