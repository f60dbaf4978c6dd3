//! The configuration: every option name of both seeds through every source, precedence,
//! value syntaxes, and every error path. The process environment is never touched: the
//! environment is always injected.

use std::{path::PathBuf, time::Duration};

use session_core::{
    ConfigError, HostPort, KeepaliveOptions, Mode, SessionConfig, SessionConfigBuilder,
};

type Check = fn(&SessionConfig) -> bool;

fn hp(h: &str, p: u16) -> HostPort {
    HostPort::new(h, p)
}

/// Every `session_redis_*` option of Odoo's `session_redis` plus our own extra names, with a text
/// value and how the parsed value must look.
fn every_option() -> Vec<(&'static str, &'static str, Check)> {
    vec![
        ("session_redis_mode", "sentinel", |c| {
            c.mode == Mode::Sentinel
        }),
        ("session_redis_key_expire", "3600", |c| c.key_expire == 3600),
        ("session_redis_prefix", "'ds_'", |c| c.prefix == "ds_"),
        ("session_filestore_path", "/var/lib/sessions", |c| {
            c.filestore_path == Some(PathBuf::from("/var/lib/sessions"))
        }),
        ("session_redis_url", "redis://localhost:6380/1", |c| {
            c.url.as_deref() == Some("redis://localhost:6380/1")
        }),
        (
            "session_redis_host",
            "[('10.0.0.1', 26379), ('10.0.0.2', 26379)]",
            |c| c.host == vec![hp("10.0.0.1", 26379), hp("10.0.0.2", 26379)],
        ),
        ("session_redis_port", "6380", |c| c.port == 6380),
        ("session_redis_username", "alice", |c| {
            c.username.as_deref() == Some("alice")
        }),
        ("session_redis_password", "s3cret-pw", |c| {
            c.password.as_deref() == Some("s3cret-pw")
        }),
        ("session_redis_db", "3", |c| c.db == 3),
        ("session_redis_socket_timeout", "1.5", |c| {
            c.socket_timeout == Some(1.5)
        }),
        ("session_redis_socket_connect_timeout", "2", |c| {
            c.socket_connect_timeout == Some(2.0)
        }),
        ("session_redis_socket_keepalive", "True", |c| {
            c.socket_keepalive
        }),
        (
            "session_redis_socket_keepalive_options",
            "{4: 60, 'TCP_KEEPINTVL': 10, socket.TCP_KEEPCNT: 3, 18: 5000}",
            |c| {
                c.socket_keepalive_options
                    == Some(KeepaliveOptions {
                        idle: Some(60),
                        interval: Some(10),
                        count: Some(3),
                        user_timeout: Some(5000),
                    })
            },
        ),
        ("session_redis_unix_socket_path", "/run/redis.sock", |c| {
            c.unix_socket_path == Some(PathBuf::from("/run/redis.sock"))
        }),
        ("session_redis_encoding", "utf-8", |c| {
            c.encoding.as_deref() == Some("utf-8")
        }),
        ("session_redis_encoding_errors", "strict", |c| {
            c.encoding_errors.as_deref() == Some("strict")
        }),
        ("session_redis_charset", "utf8", |c| {
            c.charset.as_deref() == Some("utf8")
        }),
        ("session_redis_errors", "strict", |c| {
            c.errors.as_deref() == Some("strict")
        }),
        ("session_redis_decode_responses", "True", |c| {
            c.decode_responses
        }),
        ("session_redis_retry_on_timeout", "True", |c| {
            c.retry_on_timeout
        }),
        ("session_redis_ssl", "True", |c| c.ssl),
        ("session_redis_ssl_keyfile", "/etc/k.pem", |c| {
            c.ssl_keyfile == Some(PathBuf::from("/etc/k.pem"))
        }),
        ("session_redis_ssl_certfile", "/etc/c.pem", |c| {
            c.ssl_certfile == Some(PathBuf::from("/etc/c.pem"))
        }),
        ("session_redis_ssl_cert_reqs", "none", |c| {
            c.ssl_cert_reqs.as_deref() == Some("none")
        }),
        ("session_redis_ssl_ca_certs", "/etc/ca.pem", |c| {
            c.ssl_ca_certs == Some(PathBuf::from("/etc/ca.pem"))
        }),
        ("session_redis_ssl_ca_path", "/etc/ssl/certs", |c| {
            c.ssl_ca_path == Some(PathBuf::from("/etc/ssl/certs"))
        }),
        (
            "session_redis_ssl_ca_data",
            "-----BEGIN CERTIFICATE-----",
            |c| c.ssl_ca_data.as_deref() == Some("-----BEGIN CERTIFICATE-----"),
        ),
        ("session_redis_ssl_check_hostname", "False", |c| {
            c.ssl_check_hostname == Some(false)
        }),
        ("session_redis_ssl_password", "keypass", |c| {
            c.ssl_password.as_deref() == Some("keypass")
        }),
        ("session_redis_ssl_validate_ocsp", "True", |c| {
            c.ssl_validate_ocsp
        }),
        ("session_redis_ssl_validate_ocsp_stapled", "True", |c| {
            c.ssl_validate_ocsp_stapled
        }),
        ("session_redis_ssl_ocsp_context", "ctx", |c| {
            c.ssl_ocsp_context.as_deref() == Some("ctx")
        }),
        ("session_redis_ssl_ocsp_expected_cert", "abc", |c| {
            c.ssl_ocsp_expected_cert.as_deref() == Some("abc")
        }),
        ("session_redis_max_connections", "20", |c| {
            c.max_connections == Some(20)
        }),
        ("session_redis_single_connection_client", "True", |c| {
            c.single_connection_client
        }),
        ("session_redis_health_check_interval", "30", |c| {
            c.health_check_interval == Some(30.0)
        }),
        ("session_redis_client_name", "odoo", |c| {
            c.client_name.as_deref() == Some("odoo")
        }),
        ("session_redis_master", "mymaster", |c| {
            c.master.as_deref() == Some("mymaster")
        }),
        ("session_redis_migrate_from_filestore", "True", |c| {
            c.migrate_from_filestore
        }),
        ("session_redis_sentinel_username", "sent", |c| {
            c.sentinel_username.as_deref() == Some("sent")
        }),
        ("session_redis_sentinel_password", "sentpw", |c| {
            c.sentinel_password.as_deref() == Some("sentpw")
        }),
    ]
}

/// The django-redis-sessions names that differ, or are spelled in upper case.
fn every_alias() -> Vec<(&'static str, &'static str, Check)> {
    vec![
        ("SESSION_REDIS_HOST", "localhost", |c| {
            c.host
                == vec![HostPort {
                    host: "localhost".into(),
                    port: None,
                }]
        }),
        ("SESSION_REDIS_PORT", "6379", |c| c.port == 6379),
        ("SESSION_REDIS_DB", "1", |c| c.db == 1),
        ("SESSION_REDIS_PASSWORD", "password", |c| {
            c.password.as_deref() == Some("password")
        }),
        ("SESSION_REDIS_PREFIX", "session", |c| c.prefix == "session"),
        ("SESSION_REDIS_SOCKET_TIMEOUT", "1", |c| {
            c.socket_timeout == Some(1.0)
        }),
        ("SESSION_REDIS_RETRY_ON_TIMEOUT", "False", |c| {
            !c.retry_on_timeout
        }),
        ("SESSION_REDIS_URL", "redis://h:1/0", |c| {
            c.url.as_deref() == Some("redis://h:1/0")
        }),
        (
            "SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH",
            "/var/run/redis/redis.sock",
            |c| c.unix_socket_path == Some(PathBuf::from("/var/run/redis/redis.sock")),
        ),
        (
            "SESSION_REDIS_SENTINEL_LIST",
            "[('s1', 26379), ('s2', 26379), ('s3', 26379)]",
            |c| {
                c.mode == Mode::Sentinel
                    && c.host == vec![hp("s1", 26379), hp("s2", 26379), hp("s3", 26379)]
            },
        ),
        (
            "SESSION_REDIS_SENTINEL_MASTER_ALIAS",
            "sentinel-master",
            |c| c.master.as_deref() == Some("sentinel-master"),
        ),
    ]
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Each source, given one option as text: the config it yields before validation.
fn through_each_source(
    name: &str,
    value: &str,
) -> Vec<(&'static str, Result<SessionConfig, ConfigError>)> {
    let files = Files::new();
    let conf = files.write(
        "odoo.conf",
        &format!("[options]\nadmin_passwd = x\ndb_host = False\n{name} = {value}\n"),
    );
    let toml_top = files.write("top.toml", &format!("{name} = {}\n", toml_string(value)));
    let toml_opts = files.write(
        "opts.toml",
        &format!("[options]\n{name} = {}\n", toml_string(value)),
    );
    vec![
        (
            "conf",
            SessionConfig::builder().file(&conf).build_unvalidated(),
        ),
        (
            "toml",
            SessionConfig::builder().file(&toml_top).build_unvalidated(),
        ),
        (
            "toml [options]",
            SessionConfig::builder()
                .file(&toml_opts)
                .build_unvalidated(),
        ),
        (
            "env",
            SessionConfig::builder()
                .env(env(&[(&name.to_ascii_uppercase(), value)]))
                .build_unvalidated(),
        ),
        (
            "builder",
            SessionConfig::builder()
                .set(name, value)
                .build_unvalidated(),
        ),
    ]
}

#[test]
fn every_seed_000_option_through_every_source() {
    for (name, value, check) in every_option() {
        for (source, result) in through_each_source(name, value) {
            let config = result.unwrap_or_else(|e| panic!("{name} via {source}: {e}"));
            assert!(check(&config), "{name} = {value} via {source}: {config:?}");
        }
    }
}

#[test]
fn every_seed_004_name_through_every_source() {
    for (name, value, check) in every_alias() {
        for (source, result) in through_each_source(name, value) {
            let config = result.unwrap_or_else(|e| panic!("{name} via {source}: {e}"));
            assert!(check(&config), "{name} = {value} via {source}: {config:?}");
        }
    }
}

#[test]
fn supported_options_build_and_validate() {
    let config = SessionConfig::builder()
        .env(env(&[
            ("SESSION_REDIS_HOST", "redis.internal"),
            ("SESSION_REDIS_PORT", "6380"),
            ("SESSION_REDIS_USERNAME", "app"),
            ("SESSION_REDIS_PASSWORD", "pw"),
            ("SESSION_REDIS_DB", "2"),
            ("SESSION_REDIS_SOCKET_TIMEOUT", "0.5"),
            ("SESSION_REDIS_SOCKET_CONNECT_TIMEOUT", "3"),
            ("SESSION_REDIS_MAX_CONNECTIONS", "16"),
            ("SESSION_REDIS_SINGLE_CONNECTION_CLIENT", "false"),
            ("SESSION_REDIS_PREFIX", "app:"),
            ("SESSION_REDIS_KEY_EXPIRE", "0"),
            ("SESSION_FILESTORE_PATH", "/srv/sessions"),
            ("SESSION_REDIS_ENCODING", "UTF-8"),
            ("SESSION_REDIS_CHARSET", "utf8"),
            ("SESSION_REDIS_ENCODING_ERRORS", "strict"),
            ("SESSION_REDIS_ERRORS", "Strict"),
            ("SESSION_REDIS_DECODE_RESPONSES", "True"),
            ("SESSION_REDIS_SSL", "False"),
            ("SESSION_REDIS_RETRY_ON_TIMEOUT", "False"),
            ("SESSION_REDIS_SOCKET_KEEPALIVE", "False"),
            ("SESSION_REDIS_HEALTH_CHECK_INTERVAL", "0"),
            ("SESSION_REDIS_SSL_CHECK_HOSTNAME", "True"),
            ("SESSION_REDIS_SSL_CERT_REQS", "required"),
            ("SESSION_REDIS_SSL_VALIDATE_OCSP", "False"),
            ("SESSION_REDIS_MIGRATE_FROM_FILESTORE", "False"),
            ("SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS", "{}"),
        ]))
        .build()
        .unwrap();
    assert_eq!(
        config.host,
        vec![HostPort {
            host: "redis.internal".into(),
            port: None
        }]
    );
    let connection = connection_plan(&config);
    assert_eq!(connection.socket_timeout, Duration::from_millis(500));
    assert_eq!(connection.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.key_expire_duration(), None);
    assert_eq!(config.filestore_path(), PathBuf::from("/srv/sessions"));
}

#[test]
fn precedence_builder_beats_env_beats_file_beats_defaults() {
    let files = Files::new();
    let conf = files.write(
        "odoo.conf",
        "[options]\nsession_redis_port = 6001\nsession_redis_db = 1\nsession_redis_prefix = from_file:\n",
    );
    let vars = env(&[
        ("SESSION_CONFIG", conf.to_str().unwrap()),
        ("SESSION_REDIS_PORT", "6002"),
        ("SESSION_REDIS_DB", "2"),
        ("PATH", "/usr/bin"),
    ]);

    let loaded = SessionConfig::from_env_vars(vars.clone()).unwrap();
    assert_eq!(
        (loaded.port, loaded.db, loaded.prefix.as_str()),
        (6002, 2, "from_file:")
    );
    assert_eq!(
        loaded.key_expire, 0,
        "defaults stay where nothing overrides them"
    );

    let coded = loaded.to_builder().port(7000).build().unwrap();
    assert_eq!(
        (coded.port, coded.db, coded.prefix.as_str()),
        (7000, 2, "from_file:")
    );

    let chained = SessionConfig::builder()
        .env_with_file(vars)
        .port(7001)
        .build()
        .unwrap();
    assert_eq!((chained.port, chained.db), (7001, 2));

    // from_sources takes the file explicitly, and env beats it.
    let explicit =
        SessionConfig::from_sources(Some(&conf), env(&[("SESSION_REDIS_DB", "5")])).unwrap();
    assert_eq!((explicit.port, explicit.db), (6001, 5));
    let file_only = SessionConfig::from_file(&conf).unwrap();
    assert_eq!((file_only.port, file_only.db), (6001, 1));

    // None in a later source puts the option back to its default.
    let reset =
        SessionConfig::from_sources(Some(&conf), env(&[("SESSION_REDIS_PORT", "None")])).unwrap();
    assert_eq!(reset.port, 6379);
}

#[test]
fn names_and_booleans_are_case_insensitive() {
    let files = Files::new();
    let conf = files.write(
        "mixed.conf",
        "[options]\nSession_Redis_Single_Connection_Client = tRuE\nSESSION_REDIS_DB = 4\n",
    );
    let c = SessionConfig::from_sources(
        Some(&conf),
        env(&[
            ("session_redis_port", "6390"),
            ("Session_Redis_Decode_Responses", "FALSE"),
        ]),
    )
    .unwrap();
    assert!(c.single_connection_client);
    assert_eq!((c.db, c.port), (4, 6390));
    let c = SessionConfig::builder()
        .set("SESSION_REDIS_MODE", "SENTINEL")
        .build_unvalidated()
        .unwrap();
    assert_eq!(c.mode, Mode::Sentinel);
    for t in ["True", "true", "TRUE", "1", "yes", "on"] {
        let c = SessionConfig::builder()
            .set("session_redis_single_connection_client", t)
            .build()
            .unwrap();
        assert!(c.single_connection_client, "{t}");
    }
    for f in ["False", "false", "FALSE", "0", "no", "off", "None", ""] {
        let c = SessionConfig::builder()
            .single_connection_client(true)
            .set("session_redis_single_connection_client", f)
            .build()
            .unwrap();
        assert!(!c.single_connection_client, "{f}");
    }
}

#[test]
fn mode_values() {
    for (text, mode) in [
        ("redis", Mode::Redis),
        ("Redis", Mode::Redis),
        ("cluster", Mode::Cluster),
        ("sentinel", Mode::Sentinel),
        ("False", Mode::Disabled),
        ("false", Mode::Disabled),
        ("0", Mode::Disabled),
        ("disabled", Mode::Disabled),
        ("DISABLED", Mode::Disabled),
        ("none", Mode::Disabled),
        ("None", Mode::Disabled),
        ("'redis'", Mode::Redis),
    ] {
        let c = SessionConfig::builder()
            .set("session_redis_mode", text)
            .build_unvalidated()
            .unwrap();
        assert_eq!(c.mode, mode, "{text}");
    }
    let files = Files::new();
    let toml = files.write("m.toml", "session_redis_mode = false\n");
    assert_eq!(
        SessionConfig::from_file(&toml).unwrap().mode,
        Mode::Disabled
    );
    let err = SessionConfig::builder()
        .set("session_redis_mode", "master-slave")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_mode");
    assert!(
        err.to_string().contains("master-slave") && err.expected.contains("sentinel"),
        "{err}"
    );
    let toml = files.write("m2.toml", "session_redis_mode = true\n");
    assert!(SessionConfig::from_file(&toml).is_err());
}

#[test]
fn disabled_mode_uses_the_file_store_and_tolerates_redis_settings() {
    let c = SessionConfig::from_sources(
        None,
        env(&[
            ("SESSION_REDIS_MODE", "False"),
            ("SESSION_REDIS_HOST", "a:1,b:2"),
            ("SESSION_FILESTORE_PATH", "/tmp/x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.mode, Mode::Disabled);
    assert_eq!(c.filestore_path(), PathBuf::from("/tmp/x"));
}

#[test]
fn default_filestore_path_is_absolute() {
    let c = SessionConfig::default();
    assert!(c.filestore_path().is_absolute());
    assert!(c.filestore_path().ends_with("sessions"));
    assert_eq!(c.filestore_path(), SessionConfig::default_filestore_path());
}

#[test]
fn sentinel_list_syntaxes() {
    let two = vec![hp("10.0.0.1", 26379), hp("10.0.0.2", 26379)];
    for text in [
        "[('10.0.0.1', 26379), ('10.0.0.2', 26379)]",
        "[(\"10.0.0.1\", 26379), (\"10.0.0.2\", 26379)]",
        "[('10.0.0.1', 26379), ('10.0.0.2', 26379),]",
        "[('10.0.0.1', 26379,), ('10.0.0.2', '26379')]",
        "[['10.0.0.1', 26379], ['10.0.0.2', 26379]]",
        "(('10.0.0.1', 26379), ('10.0.0.2', 26379))",
        "['10.0.0.1:26379', '10.0.0.2:26379']",
        "10.0.0.1:26379,10.0.0.2:26379",
        " 10.0.0.1:26379 , 10.0.0.2:26379 ,",
    ] {
        let c = SessionConfig::builder()
            .set("SESSION_REDIS_SENTINEL_LIST", text)
            .build_unvalidated()
            .unwrap();
        assert_eq!(c.host, two, "{text}");
        assert_eq!(c.mode, Mode::Sentinel, "{text}");
    }
    let c = SessionConfig::builder()
        .set(
            "session_redis_host",
            "[::1]:26379,[2001:db8::2]:26380,[::3]",
        )
        .build_unvalidated()
        .unwrap();
    assert_eq!(
        c.host,
        vec![
            hp("::1", 26379),
            hp("2001:db8::2", 26380),
            HostPort {
                host: "::3".into(),
                port: None
            }
        ]
    );
    assert_eq!(c.host[0].to_string(), "[::1]:26379");

    // A list spread over continuation lines of an Odoo config.
    let files = Files::new();
    let conf = files.write(
        "multi.conf",
        "[options]\nsession_redis_mode = sentinel\nsession_redis_host = [('10.0.0.1', 26379),\n    ('10.0.0.2', 26379)]\nsession_redis_master = mymaster\n",
    );
    let c = SessionConfig::from_file(&conf).unwrap();
    assert_eq!(c.host, two);
    // TOML arrays.
    for text in [
        "session_redis_host = [['10.0.0.1', 26379], ['10.0.0.2', 26379]]",
        "session_redis_host = ['10.0.0.1:26379', '10.0.0.2:26379']",
        "session_redis_host = \"[('10.0.0.1', 26379), ('10.0.0.2', 26379)]\"",
    ] {
        let toml = files.write("h.toml", text);
        let c = SessionConfig::builder()
            .file(&toml)
            .build_unvalidated()
            .unwrap();
        assert_eq!(c.host, two, "{text}");
    }
}

#[test]
fn sentinel_list_implies_sentinel_only_when_mode_is_not_explicit() {
    let list = "[('s1', 26379), ('s2', 26379)]";
    let c = SessionConfig::from_sources(
        None,
        env(&[
            ("SESSION_REDIS_SENTINEL_LIST", list),
            ("SESSION_REDIS_SENTINEL_MASTER_ALIAS", "m"),
        ]),
    )
    .unwrap();
    assert_eq!(c.mode, Mode::Sentinel);
    assert_eq!(c.master.as_deref(), Some("m"));

    // An explicit mode in an earlier source (the file) stays.
    let files = Files::new();
    let conf = files.write("c.conf", "[options]\nsession_redis_mode = cluster\n");
    let c = SessionConfig::from_sources(Some(&conf), env(&[("SESSION_REDIS_SENTINEL_LIST", list)]))
        .unwrap();
    assert_eq!(c.mode, Mode::Cluster);

    // Explicit redis mode plus a list of two: an error saying to pick sentinel or cluster.
    let err = SessionConfig::from_sources(
        None,
        env(&[
            ("SESSION_REDIS_SENTINEL_LIST", list),
            ("SESSION_REDIS_MODE", "redis"),
        ]),
    )
    .unwrap_err();
    assert_eq!(err.key, "session_redis_host");
    assert!(err.expected.contains("sentinel"), "{err}");
}

#[test]
fn sentinel_and_cluster_need_their_settings() {
    let err = SessionConfig::builder()
        .mode(Mode::Sentinel)
        .master("m")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_host");
    assert!(err.expected.contains("sentinels"), "{err}");
    let err = SessionConfig::builder()
        .mode(Mode::Sentinel)
        .hosts([hp("s", 26379)])
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_master");
    assert!(err.expected.contains("required in sentinel mode"), "{err}");
    let ok = SessionConfig::builder()
        .mode(Mode::Sentinel)
        .hosts([hp("s", 26379)])
        .master("m")
        .sentinel_username("u")
        .sentinel_password("p")
        .build()
        .unwrap();
    assert_eq!(ok.mode, Mode::Sentinel);
    let err = SessionConfig::builder()
        .mode(Mode::Cluster)
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_host");
    assert!(err.expected.contains("seed nodes"), "{err}");
    SessionConfig::builder()
        .mode(Mode::Cluster)
        .hosts([hp("a", 7000), hp("b", 7001)])
        .build()
        .unwrap();
    let err = SessionConfig::builder()
        .mode(Mode::Cluster)
        .hosts([hp("a", 7000)])
        .unix_socket_path("/s.sock")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_unix_socket_path");
    // master and sentinel credentials outside sentinel mode are not silently ignored.
    let err = SessionConfig::builder().master("m").build().unwrap_err();
    assert_eq!(err.key, "session_redis_master");
    let err = SessionConfig::builder()
        .sentinel_password("hunter2")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_sentinel_password");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn url_rules() {
    for ok in [
        "redis://localhost:6379/0",
        "rediss://h",
        "unix:///run/redis.sock",
        "redis+unix:///s?db=1",
        "REDIS://h",
    ] {
        SessionConfig::builder()
            .url(ok)
            .build()
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["http://h", "localhost:6379", "redis://", "unix://"] {
        let err = SessionConfig::builder().url(bad).build().unwrap_err();
        assert_eq!(err.key, "session_redis_url", "{bad}");
    }
    let err = SessionConfig::builder()
        .url("redis://h")
        .host("other")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_host");
    assert!(err.expected.contains("session_redis_url"), "{err}");
    let err = SessionConfig::builder()
        .url("redis://h")
        .port(7000)
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    let err = SessionConfig::builder()
        .url("redis://h")
        .unix_socket_path("/s")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_unix_socket_path");
    // Credentials and db may accompany the URL (a password from a secret store).
    SessionConfig::builder()
        .url("redis://h")
        .password("p")
        .db(3)
        .build()
        .unwrap();
    let err = SessionConfig::builder()
        .url("redis://u:topsecret@h")
        .host("x")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("topsecret"), "{err}");
    let err = SessionConfig::builder()
        .url("http://u:topsecret@h")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("topsecret"), "{err}");
    assert!(err.to_string().contains("<redacted>"), "{err}");
    let err = SessionConfig::builder()
        .host("a")
        .unix_socket_path("/s")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_unix_socket_path");
}

#[test]
fn bad_values_name_key_value_and_expectation() {
    let cases: &[(&str, &str, &str)] = &[
        ("SESSION_REDIS_SINGLE_CONNECTION_CLIENT", "maybe", "boolean"),
        ("SESSION_REDIS_PORT", "sixtythree", "port"),
        ("SESSION_REDIS_PORT", "70000", "port"),
        ("SESSION_REDIS_PORT", "0", "port"),
        ("SESSION_REDIS_DB", "-1", "integer"),
        ("SESSION_REDIS_DB", "1.5", "integer"),
        ("SESSION_REDIS_KEY_EXPIRE", "-5", "integer"),
        ("SESSION_REDIS_KEY_EXPIRE", "soon", "integer"),
        ("SESSION_REDIS_MAX_CONNECTIONS", "0", "≥ 1"),
        ("SESSION_REDIS_SOCKET_TIMEOUT", "fast", "seconds"),
        ("SESSION_REDIS_SOCKET_TIMEOUT", "-1", "seconds"),
        ("SESSION_REDIS_HOST", "[('a', 1), ('b')]", "host list"),
        ("SESSION_REDIS_HOST", "a:99999", "host list"),
        (
            "SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS",
            "{'TCP_NODELAY': 1}",
            "TCP_KEEPIDLE",
        ),
        ("SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS", "{4: -1}", "dict"),
        ("SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS", "60", "dict"),
        ("SESSION_REDIS_MODE", "standalone", "sentinel"),
    ];
    for (key, value, expectation) in cases {
        let err = SessionConfig::from_sources(None, env(&[(key, value)])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(&err.key, key, "{msg}");
        assert!(msg.contains(value), "value missing: {msg}");
        assert!(err.expected.contains(expectation), "{key}={value}: {msg}");
        assert!(
            err.expected.contains("environment"),
            "source missing: {msg}"
        );
    }
    // Zero timeouts are refused at validation (a zero timeout would fail every command).
    let err = SessionConfig::builder()
        .set("session_redis_socket_timeout", "0")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_socket_timeout");
    // The file source says which file.
    let files = Files::new();
    let conf = files.write("bad.conf", "[options]\nsession_redis_port = abc\n");
    let err = SessionConfig::from_file(&conf).unwrap_err();
    assert!(err.expected.contains("bad.conf"), "{err}");
}

#[test]
fn unknown_keys_get_suggestions() {
    let err = SessionConfig::from_sources(None, env(&[("SESSION_REDIS_HOTS", "x")])).unwrap_err();
    assert_eq!(err.key, "SESSION_REDIS_HOTS");
    assert!(
        err.expected.contains("did you mean `SESSION_REDIS_HOST`"),
        "{err}"
    );
    let files = Files::new();
    let conf = files.write("typo.conf", "[options]\nsession_redis_key_expires = 60\n");
    let err = SessionConfig::from_file(&conf).unwrap_err();
    assert!(
        err.expected
            .contains("did you mean `session_redis_key_expire`"),
        "{err}"
    );
    let toml = files.write(
        "typo.toml",
        "[options]\nsession_redis_sentinel_master = 'm'\n",
    );
    let err = SessionConfig::from_file(&toml).unwrap_err();
    assert!(
        err.expected.contains("session_redis_sentinel_master_alias"),
        "{err}"
    );
    // A typo of a secret option still hides its value.
    let err = SessionConfig::from_sources(None, env(&[("SESSION_REDIS_PASWORD", "hunter2")]))
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.expected.contains("SESSION_REDIS_PASSWORD"), "{err}");
    // No plausible suggestion: still an error.
    let err = SessionConfig::builder()
        .set("session_redis_zzzqqq", "1")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("session_redis_zzzqqq"), "{err}");
    // Non-session keys are someone else's business.
    SessionConfig::from_sources(
        None,
        env(&[("SESSION_COOKIE_NAME", "x"), ("REDIS_URL", "y")]),
    )
    .unwrap();
}

#[test]
fn every_unsupported_option_is_rejected_naming_itself() {
    // (option, value, words the reason must contain)
    let cases: &[(&str, &str, &str)] = &[
        (
            "session_redis_socket_keepalive_options",
            "{'TCP_KEEPIDLE': 60}",
            "session_redis_socket_keepalive = True",
        ),
        (
            "session_redis_socket_keepalive_options",
            "{'TCP_KEEPCNT': 0}",
            "TCP_KEEPCNT from 1 to 127",
        ),
        // Half a client identity: the reason names the other half.
        (
            "session_redis_ssl_keyfile",
            "/k.pem",
            "session_redis_ssl_certfile",
        ),
        (
            "session_redis_ssl_certfile",
            "/c.pem",
            "session_redis_ssl_keyfile",
        ),
        ("session_redis_ssl_validate_ocsp", "True", "OCSP"),
        ("session_redis_ssl_validate_ocsp_stapled", "True", "OCSP"),
        ("session_redis_ssl_ocsp_expected_cert", "abc", "OCSP"),
        ("session_redis_ssl_ocsp_context", "ctx", "pyOpenSSL"),
        ("session_redis_encoding", "latin-1", "utf-8"),
        ("session_redis_charset", "cp1252", "utf-8"),
        ("session_redis_encoding_errors", "replace", "strict"),
        ("session_redis_errors", "ignore", "strict"),
        ("session_redis_ssl_cert_reqs", "sometimes", "required"),
    ];
    for (key, value, reason) in cases {
        let err = SessionConfig::builder()
            .set(key, value)
            .build()
            .unwrap_err();
        assert_eq!(&err.key, key, "{err}");
        assert!(err.expected.contains(reason), "{key}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(key), "{msg}");
        if *key == "session_redis_ssl_password" {
            assert!(!msg.contains(value), "secret shown: {msg}");
        }
    }
    // The same options at their defaults are fine.
    for (key, value) in [
        ("session_redis_socket_keepalive", "False"),
        ("session_redis_retry_on_timeout", "False"),
        ("session_redis_ssl", "False"),
        ("session_redis_ssl_check_hostname", "True"),
        ("session_redis_ssl_cert_reqs", "ssl.CERT_REQUIRED"),
        ("session_redis_ssl", "True"),
        ("session_redis_ssl_check_hostname", "False"),
        ("session_redis_ssl_cert_reqs", "none"),
        ("session_redis_ssl_cert_reqs", "optional"),
        ("session_redis_ssl_ca_certs", "/ca.pem"),
        ("session_redis_ssl_ca_path", "/etc/ssl/certs"),
        ("session_redis_ssl_ca_data", "-----BEGIN CERTIFICATE-----"),
        ("session_redis_ssl_password", "keypass"),
        ("session_redis_ssl_validate_ocsp", "False"),
        ("session_redis_ssl_validate_ocsp_stapled", "False"),
        ("session_redis_health_check_interval", "0"),
        ("session_redis_migrate_from_filestore", "False"),
        ("session_redis_client_name", "None"),
        ("session_redis_decode_responses", "True"),
        ("session_redis_decode_responses", "False"),
    ] {
        SessionConfig::builder()
            .set(key, value)
            .build()
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
    }
    let err = SessionConfig::builder()
        .configure(|c| {
            c.ssl = true;
            c.unix_socket_path = Some("/tmp/redis.sock".into());
        })
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_ssl");
    assert!(err.expected.contains("TCP only"), "{err}");
}

#[test]
fn weighted_pool_is_read_and_top_level_weight_rejected() {
    let pool = "[{'SESSION_REDIS_HOST': 'localhost3', 'SESSION_REDIS_PASSWORD': 'poolsecret', 'SESSION_REDIS_WEIGHT': 1}]";
    let config = SessionConfig::from_sources(None, env(&[("SESSION_REDIS_POOL", pool)])).unwrap();
    assert_eq!(config.pool.len(), 1);
    assert_eq!(config.pool[0].password.as_deref(), Some("poolsecret"));
    assert!(!format!("{config:?} {config}").contains("poolsecret"));
    let err = SessionConfig::builder()
        .set("SESSION_REDIS_WEIGHT", "1")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "SESSION_REDIS_WEIGHT");
    assert!(err.to_string().contains("inside a member"), "{err}");
    // Their "unset" values, as django-redis-sessions defaults write them, are fine.
    SessionConfig::from_sources(None, env(&[("SESSION_REDIS_POOL", "None")])).unwrap();
}

#[test]
fn alias_conflicts_name_both() {
    let err = SessionConfig::from_sources(
        None,
        env(&[
            ("SESSION_REDIS_HOST", "a:1"),
            ("SESSION_REDIS_SENTINEL_LIST", "[('b', 2)]"),
        ]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SESSION_REDIS_HOST") && msg.contains("SESSION_REDIS_SENTINEL_LIST"),
        "{msg}"
    );
    assert!(msg.contains("a:1") && msg.contains("('b', 2)"), "{msg}");

    let files = Files::new();
    let conf = files.write(
        "c.conf",
        "[options]\nsession_redis_master = m1\nSESSION_REDIS_SENTINEL_MASTER_ALIAS = m2\n",
    );
    let err = SessionConfig::from_file(&conf).unwrap_err();
    assert!(
        err.key.contains("session_redis_master") && err.key.contains("SENTINEL_MASTER_ALIAS"),
        "{err}"
    );
    let conf = files.write(
        "d.conf",
        "[options]\nsession_redis_unix_socket_path = /a\nsession_redis_unix_domain_socket_path = /b\n",
    );
    assert!(SessionConfig::from_file(&conf).is_err());
    // Equal values are no conflict.
    let conf = files.write(
        "e.conf",
        "[options]\nsession_redis_unix_socket_path = /a\nsession_redis_unix_domain_socket_path = '/a'\n",
    );
    SessionConfig::from_file(&conf).unwrap();
    // Secrets stay hidden in conflicts.
    let err = SessionConfig::from_sources(
        None,
        env(&[
            ("SESSION_REDIS_PASSWORD", "one-secret"),
            ("session_redis_password", "two-secret"),
        ]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        !msg.contains("one-secret") && !msg.contains("two-secret"),
        "{msg}"
    );
    // Across sources there is no conflict: the later source wins.
    let conf = files.write("f.conf", "[options]\nsession_redis_host = a:1\n");
    let c = SessionConfig::builder()
        .file(&conf)
        .env(env(&[
            ("SESSION_REDIS_SENTINEL_LIST", "b:2,c:3"),
            ("SESSION_REDIS_SENTINEL_MASTER_ALIAS", "m"),
        ]))
        .build()
        .unwrap();
    assert_eq!(c.host, vec![hp("b", 2), hp("c", 3)]);
}

#[test]
fn secrets_are_redacted_in_debug_display_and_errors() {
    let c = SessionConfig::builder()
        .mode(Mode::Sentinel)
        .hosts([hp("s1", 26379)])
        .master("mymaster")
        .password("pw-main-secret")
        .sentinel_password("pw-sentinel-secret")
        .configure(|c| c.ssl_password = Some("pw-ssl-secret".into()))
        .build_unvalidated()
        .unwrap();
    let with_url = SessionConfig::builder()
        .url("redis://user:pw-url-secret@h:6379/0")
        .build()
        .unwrap();
    for text in [
        format!("{c:?}"),
        format!("{c:#?}"),
        c.to_string(),
        format!("{with_url:?}"),
        with_url.to_string(),
    ] {
        for secret in [
            "pw-main-secret",
            "pw-sentinel-secret",
            "pw-ssl-secret",
            "pw-url-secret",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("<redacted>"), "{text}");
    }
    // Debug shows everything else.
    let debug = format!("{c:?}");
    for field in [
        "mode: Sentinel",
        "master: Some(\"mymaster\")",
        "s1",
        "ssl: false",
        "client_name: None",
        "port: 6379",
    ] {
        assert!(debug.contains(field), "{field} missing in {debug}");
    }
    assert!(with_url
        .to_string()
        .contains("redis://user:<redacted>@h:6379/0"));
    // Bad values of secret options are not echoed either.
    let err = SessionConfig::builder()
        .set("session_redis_password", "[unclosed")
        .build();
    assert!(err.is_ok(), "a password is any string");
    let config = SessionConfig::builder()
        .set("session_redis_ssl_password", "pw-ssl-secret")
        .build()
        .unwrap();
    assert!(!format!("{config:?} {config}").contains("pw-ssl-secret"));
    // TOML syntax errors do not quote the offending line.
    let files = Files::new();
    let toml = files.write("s.toml", "session_redis_password = \"pw-toml-secret\n");
    let err = SessionConfig::from_file(&toml).unwrap_err();
    assert!(!err.to_string().contains("pw-toml-secret"), "{err}");
    assert!(err.expected.contains("line 1"), "{err}");
}

#[test]
fn display_lists_non_default_options_as_config_lines() {
    let c = SessionConfig::builder()
        .port(6380)
        .key_expire(60)
        .build()
        .unwrap();
    assert_eq!(
        c.to_string(),
        "session_redis_mode = redis\nsession_redis_key_expire = 60\nsession_redis_port = 6380"
    );
    assert_eq!(c.key_expire_duration(), Some(Duration::from_secs(60)));
}

#[test]
fn odoo_conf_details() {
    let files = Files::new();
    let conf = files.write(
        "odoo.conf",
        "; Odoo server config\n\
         [options]\n\
         addons_path = /opt/odoo/addons\n\
         admin_passwd = $pbkdf2-sha512$...\n\
         # a comment\n\
         db_host = False\n\
         session_redis_port: 6390\n\
         session_redis_prefix = \"odoo:\"\n\
         session_redis_password = None\n\
         \n\
         [queue_job]\n\
         channels = root:2\n\
         session_redis_db = 9\n",
    );
    let c = SessionConfig::from_file(&conf).unwrap();
    assert_eq!(c.port, 6390);
    assert_eq!(c.prefix, "odoo:");
    assert_eq!(c.password, None);
    assert_eq!(c.db, 0, "keys of other sections are not Odoo options");
    let err = SessionConfig::from_file(files.dir.path().join("missing.conf")).unwrap_err();
    assert_eq!(err.key, "SESSION_CONFIG");
    assert!(err.value.contains("missing.conf"), "{err}");
    let conf = files.write("broken.conf", "[options\nsession_redis_port = 1\n");
    assert!(SessionConfig::from_file(&conf).is_err());
}

#[test]
fn toml_typed_values_and_text_forms() {
    let files = Files::new();
    let toml = files.write(
        "app.toml",
        r#"
session_redis_port = 6390
session_redis_single_connection_client = true
session_redis_socket_timeout = 0.25
session_redis_socket_connect_timeout = 2

[options]
session_redis_db = "3"
session_redis_decode_responses = "True"
session_redis_socket_keepalive_options = { TCP_KEEPIDLE = 60, "5" = 10 }
session_redis_key_expire = 120

[other_app]
session_redis_db = 99
"#,
    );
    let c = SessionConfig::builder()
        .file(&toml)
        .build_unvalidated()
        .unwrap();
    assert_eq!((c.port, c.db, c.key_expire), (6390, 3, 120));
    assert!(c.single_connection_client && c.decode_responses);
    assert_eq!(
        (c.socket_timeout, c.socket_connect_timeout),
        (Some(0.25), Some(2.0))
    );
    assert_eq!(
        c.socket_keepalive_options,
        Some(KeepaliveOptions {
            idle: Some(60),
            interval: Some(10),
            ..Default::default()
        })
    );
    let toml = files.write("bad.toml", "session_redis_port = true\n");
    let err = SessionConfig::from_file(&toml).unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    // The same key at the top and under [options] with different values: a conflict.
    let toml = files.write(
        "dup.toml",
        "session_redis_db = 1\n[options]\nsession_redis_db = 2\n",
    );
    assert!(SessionConfig::from_file(&toml).is_err());
}

#[test]
fn serde_embedding() {
    #[derive(serde::Deserialize)]
    struct App {
        #[allow(dead_code)]
        name: String,
        session: SessionConfig,
    }
    let app: App = toml::from_str(
        r#"
name = "shop"
[session]
session_redis_host = "a:6380"
session_redis_port = 6380
SESSION_REDIS_SOCKET_TIMEOUT = 1.5
session_redis_password = "pw"
session_cookie_name = "sid"
"#,
    )
    .unwrap();
    assert_eq!(app.session.host, vec![hp("a", 6380)]);
    assert_eq!(app.session.port, 6380);
    assert_eq!(
        connection_plan(&app.session).socket_timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(app.session.prefix, "session:", "defaults fill the rest");
    assert_eq!(app.session.cookie_name.as_deref(), Some("sid"));

    // The names are the sources' names: a field name alone, or a typo, is an unknown key
    // with a suggestion; the value of an unknown key is never echoed.
    for (text, suggestion) in [
        ("host = \"a\"", "session_redis_host"),
        ("session_redis_hots = \"hunter2\"", "session_redis_host"),
        ("session_cookie_agee = 5", "session_cookie_age"),
    ] {
        let err = toml::from_str::<App>(&format!("name = \"x\"\n[session]\n{text}"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(suggestion), "{text}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    for json in [
        r#"{"session_redis_host": "a:1,b:2"}"#,
        r#"{"session_redis_host": ["a:1", "b:2"]}"#,
        r#"{"SESSION_REDIS_HOST": [["a", 1], ["b", 2]]}"#,
        r#"{"session_redis_host": [["a", "1"], ["b", 2]]}"#,
    ] {
        let c: SessionConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.host, vec![hp("a", 1), hp("b", 2)], "{json}");
    }
    let c: SessionConfig = serde_json::from_str(r#"{"session_redis_mode": false}"#).unwrap();
    assert_eq!(c.mode, Mode::Disabled);
    let c: SessionConfig = serde_json::from_str(r#"{"session_redis_mode": "Sentinel"}"#).unwrap();
    assert_eq!(c.mode, Mode::Sentinel);
    assert!(
        serde_json::from_str::<SessionConfig>(r#"{"session_redis_host": [["a", 0]]}"#).is_err()
    );
    assert!(serde_json::from_str::<SessionConfig>(r#"{"session_redis_mode": "bogus"}"#).is_err());

    // Round trips through JSON and TOML (without a secret: `Serialize` writes those as
    // `<redacted>`, see tests/secrets.rs).
    let full = SessionConfig::builder()
        .mode(Mode::Sentinel)
        .hosts([hp("::1", 26379), hp("s2", 26380)])
        .master("m")
        .socket_timeout(Duration::from_millis(250))
        .configure(|c| {
            c.socket_keepalive_options = Some(KeepaliveOptions {
                idle: Some(5),
                ..Default::default()
            })
        })
        .build_unvalidated()
        .unwrap();
    let json = serde_json::to_string(&full).unwrap();
    assert_eq!(serde_json::from_str::<SessionConfig>(&json).unwrap(), full);
    let text = toml::to_string(&full).unwrap();
    assert_eq!(toml::from_str::<SessionConfig>(&text).unwrap(), full);
    assert_eq!(
        toml::from_str::<SessionConfig>(&toml::to_string(&SessionConfig::default()).unwrap())
            .unwrap(),
        SessionConfig::default()
    );
    // Pools and multi-backends too, with their own sources' member keys.
    for (key, value) in [
        (
            "SESSION_REDIS_POOL",
            "[{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_WEIGHT': 2, 'SESSION_REDIS_DB': 3}, {'SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH': '/r.sock'}]",
        ),
        (
            "SESSION_REDIS_MULTI_BACKENDS",
            "[{'backend': 'r', 'modes': ['read', 'write'], 'setting': {'SESSION_REDIS_HOST': 'h', 'SESSION_REDIS_PREFIX': 'p:'}}, {'backend': 'f', 'modes': ['read', 'delete'], 'setting': {'SESSION_REDIS_MODE': False}}]",
        ),
    ] {
        let config = SessionConfig::from_sources(None, [(key, value)]).unwrap();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<SessionConfig>(&json).unwrap(), config, "{json}");
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<SessionConfig>(&text).unwrap(), config, "{text}");
    }
}

#[test]
fn builder_typed_setters_cover_the_honoured_options() {
    let c: SessionConfig = SessionConfigBuilder::new()
        .key_expire(30)
        .prefix("p:")
        .filestore_path("/srv/s")
        .host("h")
        .port(1234)
        .username("u")
        .password("p")
        .db(7)
        .socket_timeout(Duration::from_secs(2))
        .socket_connect_timeout(Duration::from_secs(1))
        .max_connections(4)
        .single_connection_client(true)
        .build()
        .unwrap();
    assert_eq!(c.key_expire, 30);
    assert_eq!(c.prefix, "p:");
    assert_eq!(c.host[0].port_or(c.port), 1234);
    assert_eq!(c.username.as_deref(), Some("u"));
    assert_eq!(c.db, 7);
    assert_eq!(c.max_connections, Some(4));
    assert!(c.single_connection_client);
    // Errors from a source survive later setters.
    let err = SessionConfig::builder()
        .set("session_redis_port", "x")
        .port(1)
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    let e = ConfigError::unsupported("session_redis_mode", "cluster", "not available yet");
    assert_eq!(
        e.to_string(),
        "invalid configuration `session_redis_mode` = cluster: not available yet"
    );
    assert_eq!("[::1]:80".parse::<HostPort>().unwrap(), hp("::1", 80));
    assert_eq!("Sentinel".parse::<Mode>().unwrap(), Mode::Sentinel);
}

#[test]
fn migration_needs_redis() {
    let err = SessionConfig::builder()
        .set("session_redis_mode", "False")
        .set("session_redis_migrate_from_filestore", "True")
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_migrate_from_filestore");
    assert!(err.expected.contains("Redis is off"), "{err}");
    let config = SessionConfig::builder()
        .set("session_redis_migrate_from_filestore", "True")
        .build()
        .unwrap();
    assert!(config.migrate_from_filestore);
}

/// The connection settings the plan makes of a standalone configuration: the one place
/// seconds become durations.
fn connection_plan(config: &SessionConfig) -> session_core::plan::ConnectionPlan {
    match config.plan().unwrap().backend {
        session_core::plan::BackendPlan::Redis(redis) => redis.connection.clone(),
        other => panic!("a Redis plan, not {other:?}"),
    }
}

/// The cookie settings are bounded: each value past its bound (or with a character that
/// would end or split the `Set-Cookie` attribute) is an error naming the setting and what it
/// expects, without echoing a long value whole; each value at its bound is accepted.
#[test]
fn cookie_settings_are_bounded() {
    let long = |n: usize| "a".repeat(n);
    for (name, value, ok) in [
        ("SESSION_COOKIE_NAME", long(64), true),
        ("SESSION_COOKIE_NAME", long(65), false),
        ("SESSION_COOKIE_NAME", "a b".to_owned(), false),
        ("SESSION_COOKIE_NAME", "a=b".to_owned(), false),
        ("SESSION_COOKIE_DOMAIN", format!("{}.com", long(249)), true),
        ("SESSION_COOKIE_DOMAIN", format!("{}.com", long(250)), false),
        ("SESSION_COOKIE_DOMAIN", "a.com,b.com".to_owned(), false),
        ("SESSION_COOKIE_DOMAIN", "a.com; Secure".to_owned(), false),
        ("SESSION_COOKIE_DOMAIN", "a.com\u{7}".to_owned(), false),
        ("SESSION_COOKIE_PATH", format!("/{}", long(1023)), true),
        ("SESSION_COOKIE_PATH", format!("/{}", long(1024)), false),
        ("SESSION_COOKIE_PATH", "/a,b".to_owned(), false),
        ("SESSION_COOKIE_PATH", "/a\nb".to_owned(), false),
        ("SESSION_COOKIE_PATH", "no-slash".to_owned(), false),
    ] {
        let loaded = SessionConfig::from_env_vars(env(&[(name, value.as_str())]));
        let what = format!("{name}={}", value.escape_debug());
        match loaded {
            Ok(_) => assert!(ok, "{what} accepted"),
            Err(err) => {
                assert!(!ok, "{what}: {err}");
                let text = err.to_string();
                assert!(text.contains(&name.to_lowercase()), "{what}: {text}");
                if value.len() > 100 {
                    assert!(!text.contains(&value), "{what}: echoed whole: {text}");
                }
            }
        }
    }
}

/// A port that nothing would use is refused, naming it, rather than ignored: in sentinel
/// mode (a sentinel without a port means 26379; the master's address comes from the
/// sentinels), beside a unix socket, and beside hosts that all carry another port of
/// their own (redis and cluster modes). The default 6379, which config templates often
/// carry, passes.
#[test]
fn a_port_nothing_would_use_is_refused() {
    let sentinel = |port: &str| {
        SessionConfig::builder()
            .set("SESSION_REDIS_SENTINEL_LIST", "10.0.0.1:26379,10.0.0.2")
            .set("session_redis_master", "mymaster")
            .set("session_redis_port", port)
            .build()
    };
    let err = sentinel("26380").unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    assert!(err.to_string().contains("26380"), "{err}");
    assert!(err.expected.contains("sentinel"), "{err}");
    assert!(sentinel("6379").is_ok());
    // Every sentinel with its port: the port concerns nothing (django-redis-sessions'
    // settings may carry one beside their sentinel list).
    let every_port_given = SessionConfig::builder()
        .set(
            "SESSION_REDIS_SENTINEL_LIST",
            "[('10.0.0.1', 26379), ('10.0.0.2', 26380)]",
        )
        .set("session_redis_master", "mymaster")
        .set("SESSION_REDIS_PORT", "6380")
        .build();
    assert!(every_port_given.is_ok(), "{every_port_given:?}");
    let socket = |port: &str| {
        SessionConfig::builder()
            .set("session_redis_unix_socket_path", "/run/redis.sock")
            .set("session_redis_port", port)
            .build()
    };
    let err = socket("7000").unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    assert!(err.expected.contains("unix socket"), "{err}");
    assert!(socket("6379").is_ok());
    // The top-level port is for a pool's members given by host; a socket member does not
    // inherit it (a review found the pool refused).
    let pool = SessionConfig::builder()
        .set("SESSION_REDIS_PORT", "6380")
        .set(
            "session_redis_pool",
            "[{'SESSION_REDIS_HOST': '10.0.0.1'}, {'SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH': '/run/redis.sock'}]",
        )
        .build();
    assert!(pool.is_ok(), "{pool:?}");
    // Nor does a member whose host carries its own port: the top-level port is for the
    // others.
    let pool = SessionConfig::builder()
        .set("SESSION_REDIS_PORT", "6380")
        .set(
            "session_redis_pool",
            "[{'SESSION_REDIS_HOST': '10.0.0.1:7000'}, {'SESSION_REDIS_HOST': '10.0.0.2'}]",
        )
        .build();
    assert!(pool.is_ok(), "{pool:?}");
    // Redis mode: a host with its own port, and another port beside it. The host's port
    // was used without a word, where the other may have been the one meant.
    let host = |host: &str, port: &str| {
        SessionConfig::builder()
            .set("SESSION_REDIS_HOST", host)
            .set("SESSION_REDIS_PORT", port)
            .build()
    };
    let err = host("10.0.0.1:7000", "7001").unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    assert!(err.to_string().contains("7001"), "{err}");
    assert!(err.expected.contains("10.0.0.1:7000"), "{err}");
    for (h, p) in [
        ("10.0.0.1:7000", "6379"),
        ("10.0.0.1:7000", "7000"),
        ("10.0.0.1", "7001"),
    ] {
        assert!(host(h, p).is_ok(), "{h} with port {p}");
    }
    // Cluster mode: the same when every seed has its own port and none is that one.
    let cluster = |seeds: &str, port: &str| {
        SessionConfig::builder()
            .set("SESSION_REDIS_MODE", "cluster")
            .set("SESSION_REDIS_HOST", seeds)
            .set("SESSION_REDIS_PORT", port)
            .build()
    };
    let err = cluster("10.0.0.1:7000,10.0.0.2:7001", "7005").unwrap_err();
    assert_eq!(err.key, "session_redis_port");
    assert!(err.expected.contains("seed"), "{err}");
    for (seeds, p) in [
        ("10.0.0.1:7000,10.0.0.2:7001", "6379"),
        ("10.0.0.1:7000,10.0.0.2:7001", "7001"),
        ("10.0.0.1:7000,10.0.0.2", "7005"),
    ] {
        assert!(cluster(seeds, p).is_ok(), "{seeds} with port {p}");
    }
}

/// A config file is read up to a bound: a path that names something endless (`/dev/zero`, a
/// pipe that is never closed) or a huge file is a start-up error naming the file, not a
/// process that reads until memory runs out.
#[test]
fn a_config_file_that_never_ends_is_an_error_not_an_endless_read() {
    let files = Files::new();
    // Comment lines: valid INI, so only its size can refuse it.
    let huge = files.write("huge.conf", &"; padding\n".repeat(500_000));
    for path in [huge, PathBuf::from("/dev/zero")] {
        let err = SessionConfig::from_file(&path).unwrap_err();
        assert_eq!(err.value, format!("`{}`", path.display()), "{err}");
        assert!(err.expected.contains("at most 4 MiB"), "{err}");
    }
    // A file just under the bound is read.
    let big = files.write(
        "big.conf",
        &format!(
            "{}[options]\nsession_redis_port = 6001\n",
            "; padding\n".repeat(400_000)
        ),
    );
    assert_eq!(SessionConfig::from_file(&big).unwrap().port, 6001);
}
