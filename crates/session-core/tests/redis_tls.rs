//! TLS against a real TLS `redis-server` (session-testkit's `ServerOptions::tls`, with CAs,
//! server and client certificates made at test time that no system trusts): `rediss://` URLs
//! and every `session_redis_ssl*` option. Tests that connect run for both connection
//! strategies where it is cheap: one shared connection, and a pool (`max_connections`).

use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};

use session_core::{
    backends::redis::RedisBackend, Changes, ConfigError, HostPort, SessionBackend, SessionConfig,
    SessionId, SessionState, StoreError,
};
use session_testkit::{RedisServer, ServerOptions, CLIENT_KEY_PASSWORD};

/// (single_connection_client, max_connections): the single connection, then the pool.
const STRATEGIES: [(bool, Option<usize>); 2] = [(true, None), (false, Some(4))];

const PASSWORD: &str = "tls-hunter2";

fn tls_server() -> RedisServer {
    RedisServer::start_with(ServerOptions::new().tls(true).password(PASSWORD))
}

fn backend(url: String, (single, max): (bool, Option<usize>)) -> RedisBackend {
    RedisBackend::from_config(&SessionConfig {
        url: Some(url),
        single_connection_client: single,
        max_connections: max,
        socket_timeout: Some(1.0),
        socket_connect_timeout: Some(1.0),
        ..SessionConfig::default()
    })
    .unwrap()
}

/// `rediss://:PASSWORD@127.0.0.1:TLS_PORT` plus `suffix`.
fn tls_url(server: &RedisServer, suffix: &str) -> String {
    format!(
        "rediss://:{PASSWORD}@127.0.0.1:{}{suffix}",
        server.tls_port().unwrap()
    )
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The local addresses (`laddr=`) of every client connected to the server except the
/// `CLIENT LIST` caller itself (the kit, over the plain port).
fn client_ports(server: &RedisServer) -> Vec<String> {
    let list: String = server.cmd(&["CLIENT", "LIST"]);
    list.lines()
        .filter(|line| !line.contains(" cmd=client|list"))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("laddr="))
                .map(str::to_owned)
        })
        .collect()
}

fn assert_certificate_error(err: &StoreError) {
    let text = err.to_string();
    assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
    assert!(
        text.contains("certificate") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
}

#[tokio::test]
async fn insecure_rediss_works_over_the_tls_port() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let backend = backend(tls_url(&server, "/#insecure"), strategy);
        let id = SessionId::generate();
        let ttl = Some(Duration::from_secs(60));

        assert!(backend
            .create(&id, &state(&[("user", "\"ada\"")]), ttl)
            .await
            .unwrap());
        let changes = Changes {
            set: state(&[("n", "1")]),
            remove: vec!["user".into()],
        };
        assert!(backend.apply(&id, &changes, ttl).await.unwrap());
        assert_eq!(
            backend.load(&id, None).await.unwrap(),
            Some(state(&[("n", "1")]))
        );
        assert!(backend.health().await[0].up);

        // The store's connections are on the TLS port, never the plain one.
        let ports = client_ports(&server);
        let tls = format!("laddr=127.0.0.1:{}", server.tls_port().unwrap());
        assert!(!ports.is_empty(), "no client connection seen");
        assert!(
            ports.iter().all(|addr| format!("laddr={addr}") == tls),
            "{strategy:?}: {ports:?}"
        );

        assert!(backend.delete(&id).await.unwrap());
        assert_eq!(backend.load(&id, None).await.unwrap(), None);
        drop(backend);
    }
}

#[tokio::test]
async fn untrusted_certificate_fails_clearly() {
    let server = tls_server();
    for strategy in STRATEGIES {
        // Verification on: the test CA is in no system store.
        let backend = backend(tls_url(&server, "/0"), strategy);
        let id = SessionId::generate();
        let err = backend.load(&id, None).await.unwrap_err();
        assert_certificate_error(&err);
        let err = backend
            .create(&id, &state(&[("a", "1")]), None)
            .await
            .unwrap_err();
        assert_certificate_error(&err);
        let health = &backend.health().await[0];
        assert!(!health.up);
        assert!(!health.error.as_deref().unwrap().contains(PASSWORD));
        assert!(!health.location.contains(PASSWORD));
        // Nothing was written through a connection that failed verification.
        assert_eq!(server.cmd::<i64>(&["DBSIZE"]), 0);
    }
}

#[tokio::test]
async fn plain_redis_url_to_the_tls_port_fails_without_hanging() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let url = format!(
            "redis://:{PASSWORD}@127.0.0.1:{}",
            server.tls_port().unwrap()
        );
        let backend = backend(url, strategy);
        let started = Instant::now();
        let err = backend
            .load(&SessionId::generate(), None)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.is_unavailable(), "{err:?}");
        assert!(!err.to_string().contains(PASSWORD), "{err}");
        assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
    }
}

#[tokio::test]
async fn wrong_password_over_tls_does_not_leak_it() {
    let server = tls_server();
    for strategy in STRATEGIES {
        let url = format!(
            "rediss://:not-the-password@127.0.0.1:{}/#insecure",
            server.tls_port().unwrap()
        );
        let backend = backend(url, strategy);
        let err = backend
            .load(&SessionId::generate(), None)
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        let text = format!("{err} {err:?} {backend:?}");
        assert!(!text.contains("not-the-password"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// The session_redis_ssl* options.

/// `ssl = True` to `127.0.0.1:TLS_PORT` with the kit's password, short timeouts, and
/// whatever `tweak` sets.
fn tls_config(
    server: &RedisServer,
    (single, max): (bool, Option<usize>),
    tweak: impl FnOnce(&mut SessionConfig),
) -> SessionConfig {
    let mut config = SessionConfig {
        host: vec![HostPort {
            host: "127.0.0.1".into(),
            port: server.tls_port(),
        }],
        ssl: true,
        password: Some(PASSWORD.into()),
        single_connection_client: single,
        max_connections: max,
        socket_timeout: Some(2.0),
        socket_connect_timeout: Some(2.0),
        ..SessionConfig::default()
    };
    tweak(&mut config);
    config
}

fn tls_backend(
    server: &RedisServer,
    strategy: (bool, Option<usize>),
    tweak: impl FnOnce(&mut SessionConfig),
) -> RedisBackend {
    let config = tls_config(server, strategy, tweak);
    RedisBackend::from_config(&config).unwrap_or_else(|err| panic!("{err}"))
}

fn config_error(server: &RedisServer, tweak: impl FnOnce(&mut SessionConfig)) -> ConfigError {
    let config = tls_config(server, STRATEGIES[0], tweak);
    match RedisBackend::from_config(&config) {
        Ok(backend) => panic!("expected a ConfigError, got {backend:?}"),
        Err(err) => err,
    }
}

/// Writes, reads back and deletes one session.
async fn round_trip(backend: &RedisBackend) -> Result<(), StoreError> {
    let id = SessionId::generate();
    let data = state(&[("user", "\"ada\"")]);
    assert!(
        backend
            .create(&id, &data, Some(Duration::from_secs(60)))
            .await?
    );
    assert_eq!(backend.load(&id, None).await?, Some(data));
    assert!(backend.delete(&id).await?);
    Ok(())
}

/// An operation that must fail: Unavailable, about the certificate, no password in sight.
async fn tls_failure(backend: &RedisBackend) -> String {
    let err = round_trip(backend).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(err.is_unavailable(), "expected Unavailable, got {err:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    err.to_string()
}

fn tls_server_with(options: ServerOptions) -> RedisServer {
    RedisServer::start_with(options.tls(true).password(PASSWORD))
}

/// The base64 body of a one-certificate PEM text: its DER as base64.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

#[tokio::test]
async fn ca_certs_verifies_over_host_port_and_rediss() {
    let server = tls_server();
    let ca = server.ca_cert_path().unwrap().to_path_buf();
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| c.ssl_ca_certs = Some(ca.clone()));
        assert_eq!(
            backend.location(),
            format!("rediss://127.0.0.1:{}", server.tls_port().unwrap())
        );
        round_trip(&backend).await.unwrap();
        let tls = format!("127.0.0.1:{}", server.tls_port().unwrap());
        let ports = client_ports(&server);
        assert!(
            !ports.is_empty() && ports.iter().all(|p| *p == tls),
            "{ports:?}"
        );
        drop(backend);

        // The same CA with a rediss:// URL instead of ssl = True.
        let backend = tls_backend(&server, strategy, |c| {
            c.host.clear();
            c.ssl = false;
            c.url = Some(tls_url(&server, "/0"));
            c.ssl_ca_certs = Some(ca.clone());
        });
        round_trip(&backend).await.unwrap();
        assert!(backend.health().await[0].up);
    }
}

#[tokio::test]
async fn wrong_ca_fails_clearly() {
    let server = tls_server();
    let other = server.tls_files().unwrap().other_ca_cert.clone();
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| c.ssl_ca_certs = Some(other.clone()));
        let message = tls_failure(&backend).await;
        assert!(
            message.contains("certificate") && message.contains("UnknownIssuer"),
            "{message}"
        );
        assert!(message.contains("session_redis_ssl_ca_certs"), "{message}");
        assert_eq!(server.cmd::<i64>(&["DBSIZE"]), 0);
    }
}

#[tokio::test]
async fn hostname_mismatch_fails_unless_check_hostname_is_off() {
    // A certificate for redis.test only; we connect to 127.0.0.1.
    let server = tls_server_with(ServerOptions::new().tls_server_names(["redis.test"]));
    let ca = server.ca_cert_path().unwrap().to_path_buf();
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| c.ssl_ca_certs = Some(ca.clone()));
        let message = tls_failure(&backend).await;
        assert!(
            message.contains("certificate not valid for name"),
            "{message}"
        );
        assert!(
            message.contains("session_redis_ssl_check_hostname"),
            "{message}"
        );

        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_ca_certs = Some(ca.clone());
            c.ssl_check_hostname = Some(false);
        });
        round_trip(&backend).await.unwrap();

        // Host name checks off still verifies the chain.
        let other = server.tls_files().unwrap().other_ca_cert.clone();
        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_ca_certs = Some(other);
            c.ssl_check_hostname = Some(false);
        });
        assert!(tls_failure(&backend).await.contains("UnknownIssuer"));
    }
}

#[tokio::test]
async fn cert_reqs_none_skips_verification_and_optional_verifies() {
    let server = tls_server();
    for strategy in STRATEGIES {
        // No CA given: the kit's CA is in no system store.
        let backend = tls_backend(&server, strategy, |c| c.ssl_cert_reqs = Some("none".into()));
        assert!(
            backend.location().ends_with("/#insecure"),
            "{}",
            backend.location()
        );
        round_trip(&backend).await.unwrap();

        for optional in ["optional", "ssl.CERT_OPTIONAL"] {
            let backend = tls_backend(&server, strategy, |c| {
                c.ssl_cert_reqs = Some(optional.into())
            });
            assert!(tls_failure(&backend).await.contains("UnknownIssuer"));
        }
        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_cert_reqs = Some("required".into());
            c.ssl_ca_certs = Some(server.ca_cert_path().unwrap().to_path_buf());
        });
        round_trip(&backend).await.unwrap();
    }
}

#[tokio::test]
async fn mutual_tls_accepts_our_certificate_and_rejects_none() {
    let server = tls_server_with(ServerOptions::new().tls_auth_clients(true));
    let files = server.tls_files().unwrap().clone();
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_ca_certs = Some(files.ca_cert.clone());
            c.ssl_certfile = Some(files.client_cert.clone());
            c.ssl_keyfile = Some(files.client_key.clone());
        });
        round_trip(&backend).await.unwrap();

        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_ca_certs = Some(files.ca_cert.clone());
        });
        let message = tls_failure(&backend).await;
        assert!(
            message.contains("CertificateRequired")
                && message.contains("session_redis_ssl_certfile"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn encrypted_key_with_ssl_password() {
    let server = tls_server_with(ServerOptions::new().tls_auth_clients(true));
    let files = server.tls_files().unwrap().clone();
    let identity = |c: &mut SessionConfig, key: &Path| {
        c.ssl_ca_certs = Some(files.ca_cert.clone());
        c.ssl_certfile = Some(files.client_cert.clone());
        c.ssl_keyfile = Some(key.to_path_buf());
    };
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| {
            identity(c, &files.client_key_encrypted);
            c.ssl_password = Some(CLIENT_KEY_PASSWORD.into());
        });
        round_trip(&backend).await.unwrap();
    }

    // Wrong password: a start-up error that names the option and hides the value.
    let err = config_error(&server, |c| {
        identity(c, &files.client_key_encrypted);
        c.ssl_password = Some("not-the-key-password".into());
    });
    let text = format!("{err} {err:?}");
    assert_eq!(err.key, "session_redis_ssl_password");
    assert_eq!(err.value, "<redacted>");
    assert!(text.contains("could not be decrypted"), "{text}");
    assert!(!text.contains("not-the-key-password"), "{text}");
    assert!(!text.contains(CLIENT_KEY_PASSWORD), "{text}");

    // No password for an encrypted key.
    let err = config_error(&server, |c| identity(c, &files.client_key_encrypted));
    assert_eq!(err.key, "session_redis_ssl_keyfile");
    assert!(err.expected.contains("session_redis_ssl_password"), "{err}");

    // A password with a plain key: accepted, ignored (as Python's ssl module does).
    let backend = tls_backend(&server, STRATEGIES[0], |c| {
        identity(c, &files.client_key);
        c.ssl_password = Some("unused".into());
    });
    round_trip(&backend).await.unwrap();

    // Legacy OpenSSL encryption: told how to convert.
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.key");
    std::fs::write(
        &legacy,
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = config_error(&server, |c| {
        identity(c, &legacy);
        c.ssl_password = Some("pw".into());
    });
    assert_eq!(err.key, "session_redis_ssl_keyfile");
    assert!(err.expected.contains("openssl pkcs8 -topk8"), "{err}");

    // A key that is not the certificate's.
    let err = config_error(&server, |c| identity(c, &files.server_key));
    assert_eq!(err.key, "session_redis_ssl_keyfile");
    assert!(err.expected.contains("do not go together"), "{err}");
}

/// Everything an error shows, searched for a PEM body: any 12 characters of its base64, and
/// its first bytes as a byte list (how the PEM parser prints a line it cannot end).
fn assert_body_not_shown(what: &str, err: &ConfigError, body: &str) {
    let text = format!("{err}\n{err:?}\n{err:#?}");
    let chars: Vec<char> = body.chars().collect();
    for run in chars.windows(12) {
        let run: String = run.iter().collect();
        assert!(
            !text.contains(&run),
            "{what}: `{run}` of the body shown:\n{text}"
        );
    }
    let bytes = format!("{:?}", &body.as_bytes()[..4]);
    let bytes = bytes.trim_matches(['[', ']']);
    assert!(
        !text.contains(bytes),
        "{what}: the body's bytes shown:\n{text}"
    );
}

/// A key or certificate whose PEM lost its line breaks on the way (an environment variable, a
/// one-line setting): the parser's error quotes the whole body, the private key; the error
/// names the file and the likely cause instead, and shows none of it.
#[test]
fn a_one_line_pem_is_never_shown() {
    let server = tls_server();
    let files = server.tls_files().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let key_pem = std::fs::read_to_string(&files.client_key).unwrap();
    let encrypted_pem = std::fs::read_to_string(&files.client_key_encrypted).unwrap();
    let cert_pem = std::fs::read_to_string(&files.client_cert).unwrap();
    let one_line = |pem: &str, joint: &str| pem.lines().collect::<Vec<_>>().join(joint);
    let plan = |cert: &Path, key: &Path, password: Option<&str>| {
        let mut env = vec![
            ("SESSION_REDIS_SSL", "True".to_owned()),
            ("SESSION_REDIS_SSL_CERTFILE", cert.display().to_string()),
            ("SESSION_REDIS_SSL_KEYFILE", key.display().to_string()),
        ];
        if let Some(password) = password {
            env.push(("SESSION_REDIS_SSL_PASSWORD", password.to_owned()));
        }
        let config = SessionConfig::from_sources(None, env).unwrap();
        config.plan().expect_err("a broken PEM file")
    };

    // The key broken in the ways a one-line setting breaks it: no line breaks at all, `\n`
    // written as two characters, spaces for line breaks.
    for (n, (what, text, password)) in [
        ("no line breaks", one_line(&key_pem, ""), None),
        ("literal \\n", one_line(&key_pem, "\\n"), None),
        ("spaces", one_line(&key_pem, " "), None),
        (
            "encrypted, no line breaks",
            one_line(&encrypted_pem, ""),
            Some(CLIENT_KEY_PASSWORD),
        ),
        (
            "encrypted, literal \\n",
            one_line(&encrypted_pem, "\\n"),
            Some(CLIENT_KEY_PASSWORD),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let key = dir.path().join(format!("one-line-{n}.key"));
        std::fs::write(&key, &text).unwrap();
        let err = plan(&files.client_cert, &key, password);
        assert_eq!(err.key, "session_redis_ssl_keyfile", "{what}: {err}");
        assert_eq!(err.value, key.display().to_string(), "{what}");
        assert!(err.expected.contains("line breaks"), "{what}: {err}");
        let body = if password.is_some() {
            pem_body(&encrypted_pem)
        } else {
            pem_body(&key_pem)
        };
        assert_body_not_shown(what, &err, &body);
    }

    // A key whose base64 is broken on one of its lines.
    let key = dir.path().join("bad-base64.key");
    let mut lines: Vec<String> = key_pem.lines().map(str::to_owned).collect();
    lines[1].replace_range(10..11, "!");
    std::fs::write(&key, lines.join("\n")).unwrap();
    let err = plan(&files.client_cert, &key, None);
    assert_eq!(err.key, "session_redis_ssl_keyfile", "{err}");
    assert!(err.expected.contains("not base64"), "{err}");
    assert_body_not_shown("bad base64", &err, &pem_body(&key_pem));

    // A certificate is not secret, but its file is not echoed either.
    let cert = dir.path().join("one-line.crt");
    std::fs::write(&cert, one_line(&cert_pem, "")).unwrap();
    let err = plan(&cert, &files.client_key, None);
    assert_eq!(err.key, "session_redis_ssl_certfile", "{err}");
    assert!(err.expected.contains("line breaks"), "{err}");
    assert_body_not_shown("one-line certificate", &err, &pem_body(&cert_pem));
}

#[tokio::test]
async fn ca_path_reads_a_directory() {
    let server = tls_server();
    let files = server.tls_files().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    // An OpenSSL hash-named file with the right CA, an unrelated CA, and noise.
    std::fs::write(dir.path().join("3f2a9c1b.0"), &files.ca_cert_pem).unwrap();
    std::fs::write(dir.path().join("other.crt"), &files.other_ca_cert_pem).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a certificate").unwrap();
    for strategy in STRATEGIES {
        let backend = tls_backend(&server, strategy, |c| {
            c.ssl_ca_path = Some(dir.path().to_path_buf())
        });
        round_trip(&backend).await.unwrap();
    }

    // Only the unrelated CA: verification fails.
    let other_only = tempfile::tempdir().unwrap();
    std::fs::write(other_only.path().join("ca.pem"), &files.other_ca_cert_pem).unwrap();
    let backend = tls_backend(&server, STRATEGIES[1], |c| {
        c.ssl_ca_path = Some(other_only.path().to_path_buf())
    });
    assert!(tls_failure(&backend).await.contains("UnknownIssuer"));

    // Several sources add up: the unrelated CA from the directory, ours from ssl_ca_data.
    let backend = tls_backend(&server, STRATEGIES[0], |c| {
        c.ssl_ca_path = Some(other_only.path().to_path_buf());
        c.ssl_ca_data = Some(files.ca_cert_pem.clone());
    });
    round_trip(&backend).await.unwrap();

    // No certificate in it, or no directory at all: start-up errors naming option and path.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.txt"), "nothing").unwrap();
    let err = config_error(&server, |c| {
        c.ssl_ca_path = Some(empty.path().to_path_buf())
    });
    assert_eq!(err.key, "session_redis_ssl_ca_path");
    assert_eq!(err.value, empty.path().display().to_string());
    let missing = empty.path().join("nope");
    let err = config_error(&server, |c| c.ssl_ca_path = Some(missing.clone()));
    assert_eq!(err.key, "session_redis_ssl_ca_path");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}

#[tokio::test]
async fn ca_data_takes_pem_or_base64_der() {
    let server = tls_server();
    let pem = server.ca_cert_pem().unwrap().to_owned();
    for (strategy, data) in STRATEGIES.into_iter().zip([pem.clone(), pem_body(&pem)]) {
        let backend = tls_backend(&server, strategy, |c| c.ssl_ca_data = Some(data.clone()));
        round_trip(&backend).await.unwrap();
    }
    // The base64 DER also works with the other strategy, and with line breaks kept.
    let wrapped: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(|line| format!("{line}\n"))
        .collect();
    let backend = tls_backend(&server, STRATEGIES[0], |c| c.ssl_ca_data = Some(wrapped));
    round_trip(&backend).await.unwrap();

    let err = config_error(&server, |c| {
        c.ssl_ca_data = Some("certainly not DER!".into())
    });
    assert_eq!(err.key, "session_redis_ssl_ca_data");
    let err = config_error(&server, |c| c.ssl_ca_data = Some("AAAA".into()));
    assert_eq!(err.key, "session_redis_ssl_ca_data");
}

#[tokio::test]
async fn unreadable_files_are_start_up_errors() {
    let server = tls_server();
    let files = server.tls_files().unwrap().clone();
    // Each TLS file option naming `path` (the other half of a client identity readable).
    let naming = |path: PathBuf| -> [(&str, SessionConfig); 3] {
        let tweaked =
            |tweak: &dyn Fn(&mut SessionConfig)| tls_config(&server, STRATEGIES[0], tweak);
        [
            (
                "session_redis_ssl_ca_certs",
                tweaked(&|c| c.ssl_ca_certs = Some(path.clone())),
            ),
            (
                "session_redis_ssl_certfile",
                tweaked(&|c| {
                    c.ssl_certfile = Some(path.clone());
                    c.ssl_keyfile = Some(files.client_key.clone());
                }),
            ),
            (
                "session_redis_ssl_keyfile",
                tweaked(&|c| {
                    c.ssl_certfile = Some(files.client_cert.clone());
                    c.ssl_keyfile = Some(path.clone());
                }),
            ),
        ]
    };
    let refused = |config: &SessionConfig| match RedisBackend::from_config(config) {
        Ok(backend) => panic!("expected a ConfigError, got {backend:?}"),
        Err(err) => err,
    };
    let missing = server.dir().join("missing.pem");
    for (key, config) in naming(missing.clone()) {
        let err = refused(&config);
        assert_eq!(err.key, key, "{err}");
        assert_eq!(err.value, missing.display().to_string());
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
    }
    // Files read up to a bound: a path naming something endless, or a huge file, is an
    // error naming its option, not a read until memory runs out.
    let huge = server.dir().join("huge.pem");
    std::fs::write(&huge, vec![b'\n'; 5 << 20]).unwrap();
    for path in [huge, PathBuf::from("/dev/zero")] {
        for (key, config) in naming(path) {
            let err = refused(&config);
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().contains("at most 4 MiB"), "{err}");
        }
    }
    // A file that is not a CA bundle.
    let err = config_error(&server, |c| c.ssl_ca_certs = Some(files.client_key.clone()));
    assert_eq!(err.key, "session_redis_ssl_ca_certs");
    assert!(err.expected.contains("BEGIN CERTIFICATE"), "{err}");
}

#[test]
fn tls_combinations_checked_by_validate() {
    let build = |set: &[(&str, &str)]| {
        let mut builder = SessionConfig::builder();
        for (key, value) in set {
            builder = builder.set(key, value);
        }
        builder.build()
    };
    let err = build(&[
        ("session_redis_ssl", "True"),
        ("session_redis_url", "redis://:hunter2@127.0.0.1:6379/0"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "session_redis_ssl");
    assert!(err.expected.contains("rediss://"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    build(&[
        ("session_redis_ssl", "True"),
        ("session_redis_url", "rediss://127.0.0.1:6379/0"),
    ])
    .unwrap();

    let err = build(&[
        ("session_redis_mode", "sentinel"),
        ("session_redis_host", "[('127.0.0.1', 26379)]"),
        ("session_redis_master", "mymaster"),
        ("session_redis_ssl", "True"),
        ("session_redis_ssl_check_hostname", "False"),
    ])
    .unwrap_err();
    assert_eq!(err.key, "session_redis_ssl_check_hostname");
    assert!(err.expected.contains("sentinel"), "{err}");

    for key in [
        "session_redis_ssl_validate_ocsp",
        "session_redis_ssl_validate_ocsp_stapled",
    ] {
        let err = build(&[(key, "True")]).unwrap_err();
        assert!(
            err.expected.contains("OCSP") && err.expected.contains("stunnel"),
            "{err}"
        );
    }
}
