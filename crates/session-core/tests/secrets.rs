//! No secret in any error or rendering of a configuration (issue 9, item 4).
//!
//! A secret is planted in every option that can hold one, in every shape a password takes
//! inside a value (user-info, `password=`/`pass=` query, URLs without `://`, pool members,
//! multi-backend settings, unknown keys), through every source (environment, INI file, TOML
//! file, builder `set`, serde of an application config), next to other settings chosen to
//! reach each kind of error (bad value, conflicting names, validation, plan). Every error and
//! every rendering of every configuration that builds (`Debug`, `{:#?}`, `Display`,
//! `entries()`, JSON, TOML, the plan's `Debug`) is then searched for the secret.
//!
//! `ssl_ca_data` is not planted: CA certificates are public.

use std::path::Path;

use session_core::{ConfigError, SessionConfig};

/// The planted secret: a token that nothing else in a configuration or message contains.
const SECRET: &str = "Hunter2Zq9";

/// Each shape: entries in environment form (name, text value).
fn shapes() -> Vec<(&'static str, Vec<(String, String)>)> {
    let s = SECRET;
    let one = |k: &str, v: String| vec![(k.to_owned(), v)];
    let member = |kv: &str| format!("[{{'SESSION_REDIS_HOST': 'a', {kv}}}]");
    let backend = |kv: &str| {
        format!("[{{'backend': '0', 'modes': ['read', 'write', 'delete'], 'setting': {{{kv}}}}}]")
    };
    vec![
        ("password", one("SESSION_REDIS_PASSWORD", s.into())),
        (
            "sentinel_password",
            one("SESSION_REDIS_SENTINEL_PASSWORD", s.into()),
        ),
        ("ssl_password", one("SESSION_REDIS_SSL_PASSWORD", s.into())),
        (
            "url user:password",
            one("SESSION_REDIS_URL", format!("redis://u:{s}@h:6379/0")),
        ),
        (
            "url password as user-info",
            one("SESSION_REDIS_URL", format!("redis://{s}@h")),
        ),
        (
            "url password= query",
            one("SESSION_REDIS_URL", format!("unix:///r.sock?password={s}")),
        ),
        (
            "url pass= query",
            one(
                "SESSION_REDIS_URL",
                format!("redis+unix:///r.sock?db=1&pass={s}"),
            ),
        ),
        (
            // redis-rs decodes the names of query parameters too.
            "url pass= query with an encoded name",
            one("SESSION_REDIS_URL", format!("unix:///r.sock?p%61ss={s}")),
        ),
        (
            "url password= query after a second ?",
            one("SESSION_REDIS_URL", format!("unix:///r.sock?db=1?password={s}")),
        ),
        (
            "url without :// and a query",
            one("SESSION_REDIS_URL", format!("unix:r.sock?password={s}")),
        ),
        (
            "url without :// and user-info",
            one("SESSION_REDIS_URL", format!(":{s}@h:6379")),
        ),
        (
            "url with a bad scheme",
            one("SESSION_REDIS_URL", format!("ftp://u:{s}@h")),
        ),
        (
            "pool member password",
            one(
                "SESSION_REDIS_POOL",
                member(&format!("'SESSION_REDIS_PASSWORD': '{s}'")),
            ),
        ),
        (
            "pool member url",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_URL': 'redis://:{s}@a:6379'}}]"),
            ),
        ),
        (
            "pool member url without ://",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_URL': 'unix:r.sock?password={s}'}}]"),
            ),
        ),
        (
            "pool member unknown key",
            one(
                "SESSION_REDIS_POOL",
                member(&format!("'SESSION_REDIS_PASSWD': '{s}'")),
            ),
        ),
        (
            "pool member password of the wrong type",
            one(
                "SESSION_REDIS_POOL",
                member(&format!("'SESSION_REDIS_PASSWORD': ['{s}']")),
            ),
        ),
        (
            "multi-backend password",
            one(
                "SESSION_REDIS_MULTI_BACKENDS",
                backend(&format!("'SESSION_REDIS_PASSWORD': '{s}'")),
            ),
        ),
        (
            "multi-backend url",
            one(
                "SESSION_REDIS_MULTI_BACKENDS",
                backend(&format!("'SESSION_REDIS_URL': 'redis://u:{s}@b:6379'")),
            ),
        ),
        (
            "multi-backend unknown key",
            one(
                "ACS_SESSION_MULTISESSIONS_POOL",
                backend(&format!("'SESSION_REDIS_PW': '{s}'")),
            ),
        ),
        (
            "multi-backend unknown top key",
            one(
                "SESSION_REDIS_MULTI_BACKENDS",
                format!("[{{'backend': '0', 'modes': ['read'], 'pw': '{s}'}}]"),
            ),
        ),
        // A URL where a host belongs: no host has an `@`, so whatever comes before it is
        // shown as the password it may be.
        (
            "url as a host",
            one("SESSION_REDIS_HOST", format!("redis://:{s}@10.0.0.5:6379/0")),
        ),
        (
            "url as a host, without ://",
            one("SESSION_REDIS_HOST", format!(":{s}@10.0.0.5:6379")),
        ),
        (
            "url in a sentinel list",
            one(
                "SESSION_REDIS_SENTINEL_LIST",
                format!("[('redis://:{s}@s1', 26379)]"),
            ),
        ),
        (
            "url in a sentinel list of text",
            one(
                "SESSION_REDIS_SENTINEL_LIST",
                format!("s0:26379,redis://:{s}@s1:26379"),
            ),
        ),
        (
            "pool member url as a host",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_HOST': 'redis://:{s}@a:6379'}}]"),
            ),
        ),
        (
            "pool member url as a host, with a port",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_HOST': 'redis://:{s}@a', 'SESSION_REDIS_PORT': 1}}]"),
            ),
        ),
        (
            "pool member url as a host next to a url",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_HOST': 'redis://:{s}@a', 'SESSION_REDIS_URL': 'redis://b'}}]"),
            ),
        ),
        (
            "pool member url as a host of the wrong type",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_HOST': ['redis://:{s}@a']}}]"),
            ),
        ),
        (
            "pool member url of the wrong type",
            one(
                "SESSION_REDIS_POOL",
                format!("[{{'SESSION_REDIS_URL': ['redis://:{s}@a']}}]"),
            ),
        ),
        (
            "multi-backend url as a host",
            one(
                "SESSION_REDIS_MULTI_BACKENDS",
                backend(&format!("'SESSION_REDIS_HOST': 'redis://:{s}@b:6379'")),
            ),
        ),
        (
            "unknown key, secret-looking",
            one("SESSION_REDIS_PW", s.into()),
        ),
        (
            "unknown key, anything",
            one("SESSION_REDIS_COLOUR", s.into()),
        ),
        (
            "unknown key close to password",
            one("SESSION_REDIS_PASSWD", s.into()),
        ),
    ]
}

/// Other settings put next to a shape, each to reach a different error path (or none).
fn contexts() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("alone", vec![]),
        ("a bad value", vec![("SESSION_REDIS_PORT", "abc")]),
        ("a bound", vec![("SESSION_REDIS_MAX_CONNECTIONS", "100000")]),
        ("sentinel mode", vec![("SESSION_REDIS_MODE", "sentinel")]),
        (
            "cluster mode",
            vec![("SESSION_REDIS_MODE", "cluster"), ("SESSION_REDIS_DB", "3")],
        ),
        ("disabled mode", vec![("SESSION_REDIS_MODE", "False")]),
        ("a host", vec![("SESSION_REDIS_HOST", "h2")]),
        (
            "TLS files that do not exist",
            vec![
                ("SESSION_REDIS_SSL", "True"),
                ("SESSION_REDIS_SSL_KEYFILE", "/nonexistent/k.pem"),
                ("SESSION_REDIS_SSL_CERTFILE", "/nonexistent/c.pem"),
            ],
        ),
        (
            "the OCSP option",
            vec![("SESSION_REDIS_SSL_VALIDATE_OCSP", "True")],
        ),
    ]
}

/// Everything shown about one attempt.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn error(&mut self, e: &ConfigError) {
        self.0.push(e.to_string());
        self.0.push(format!("{e:?}"));
        self.0.push(format!("{e:#?}"));
    }

    fn config(&mut self, c: &SessionConfig) {
        self.0.push(format!("{c:?}"));
        self.0.push(format!("{c:#?}"));
        self.0.push(c.to_string());
        self.0.push(format!("{:?}", c.entries()));
        self.0.push(serde_json::to_string(c).unwrap());
        self.0.push(serde_json::to_string_pretty(c).unwrap());
        // TOML cannot write every shape (it has no null); what it writes is checked.
        if let Ok(t) = toml::to_string(c) {
            self.0.push(t);
        }
        if let Err(e) = c.validate() {
            self.error(&e);
        }
        match c.plan() {
            Ok(plan) => {
                self.0.push(format!("{plan:?}"));
                self.0.push(format!("{plan:#?}"));
            }
            Err(e) => self.error(&e),
        }
    }

    fn text(&mut self, text: String) {
        self.0.push(text);
    }

    fn result(&mut self, r: Result<SessionConfig, ConfigError>) {
        match r {
            Ok(c) => self.config(&c),
            Err(e) => self.error(&e),
        }
    }
}

fn toml_string(v: &str) -> String {
    toml::Value::String(v.to_owned()).to_string()
}

/// Runs one combination of entries through every source, returning what each showed.
fn through_every_source(entries: &[(String, String)], dir: &Path) -> Vec<(&'static str, Shown)> {
    let mut out = Vec::new();

    let mut shown = Shown::default();
    shown.result(SessionConfig::from_sources(None, entries.to_vec()));
    // Without validation too: a tool that inspects a configuration renders it unvalidated.
    shown.result(
        SessionConfig::builder()
            .env(entries.to_vec())
            .build_unvalidated(),
    );
    out.push(("environment", shown));

    let mut shown = Shown::default();
    let ini: String = entries
        .iter()
        .map(|(k, v)| format!("{} = {v}\n", k.to_ascii_lowercase()))
        .collect();
    let path = dir.join("session.conf");
    std::fs::write(&path, format!("[options]\n{ini}")).unwrap();
    shown.result(SessionConfig::from_file(&path));
    out.push(("INI file", shown));

    let mut shown = Shown::default();
    let toml_text: String = entries
        .iter()
        .map(|(k, v)| format!("{} = {}\n", k.to_ascii_lowercase(), toml_string(v)))
        .collect();
    let path = dir.join("session.toml");
    std::fs::write(&path, format!("[options]\n{toml_text}")).unwrap();
    shown.result(SessionConfig::from_file(&path));
    out.push(("TOML file", shown));

    let mut shown = Shown::default();
    let builder = entries
        .iter()
        .fold(SessionConfig::builder(), |b, (k, v)| b.set(k, v));
    shown.result(builder.build());
    out.push(("builder set", shown));

    out
}

fn assert_nowhere(what: &str, shown: &Shown) {
    for text in &shown.0 {
        assert!(
            !text.contains(SECRET),
            "the secret leaked ({what}):\n{text}"
        );
    }
}

#[test]
fn a_planted_secret_is_shown_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = 0;
    for (shape, entries) in shapes() {
        for (context, extra) in contexts() {
            let mut all = entries.clone();
            all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            for (source, shown) in through_every_source(&all, dir.path()) {
                assert_nowhere(&format!("{shape}, {context}, {source}"), &shown);
                runs += 1;
            }
            // The same name twice with two values (env names are case-insensitive): the
            // conflict error shows both values, redacted.
            let mut twice = entries.clone();
            twice.extend(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), format!("{v}x"))),
            );
            twice.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            for (source, shown) in through_every_source(&twice, dir.path()) {
                assert_nowhere(&format!("{shape} twice, {context}, {source}"), &shown);
                runs += 1;
            }
        }
    }
    assert!(runs > 300, "{runs}");
}

/// Secrets typed in a TOML file (not strings), where a wrong type is an error of its own.
#[test]
fn typed_toml_secrets_are_shown_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = SECRET;
    for text in [
        format!("session_redis_password = ['{s}']"),
        format!("session_redis_password = {{ p = '{s}' }}"),
        format!("session_redis_sentinel_password = ['{s}']"),
        format!("session_redis_ssl_password = [['{s}']]"),
        format!("session_redis_url = ['redis://:{s}@h']"),
        format!("session_redis_pool = [{{ SESSION_REDIS_HOST = 'a', SESSION_REDIS_PASSWORD = '{s}' }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_HOST = 'a', SESSION_REDIS_PASSWORD = ['{s}'] }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_HOST = 'a', SESSION_REDIS_PASSWD = '{s}' }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_URL = 'redis://:{s}@a' }}, {{ SESSION_REDIS_URL = 7 }}]"),
        format!("session_redis_multi_backends = [{{ backend = '0', modes = ['read', 'write'], setting = {{ SESSION_REDIS_PASSWORD = ['{s}'] }} }}]"),
        format!("session_redis_multi_backends = [{{ backend = '0', modes = ['read', 'write'], setting = {{ SESSION_REDIS_URL = 'redis://:{s}@b', SESSION_REDIS_HOST = 'c' }} }}]"),
        format!("session_redis_pw = '{s}'"),
        format!("session_redis_host = 'redis://:{s}@10.0.0.5:6379/0'"),
        format!("session_redis_host = ['redis://:{s}@10.0.0.5:6379/0']"),
        format!("session_redis_host = [['redis://:{s}@s1', 26379]]"),
        format!("session_redis_sentinel_list = [['redis://:{s}@s1', 26379]]"),
        format!("session_redis_sentinel_list = [{{ h = 'redis://:{s}@s1' }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_HOST = 'redis://:{s}@a:6379' }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_HOST = ['redis://:{s}@a:6379'] }}]"),
        format!("session_redis_pool = [{{ SESSION_REDIS_URL = ['redis://:{s}@a:6379'] }}]"),
        format!("session_redis_password = '{s}'\nsession_redis_port = 'x'"),
        // A TOML syntax error on the secret's own line.
        format!("session_redis_password = '{s}"),
        format!("session_redis_password = '{s}' oops"),
    ] {
        let path = dir.path().join("typed.toml");
        std::fs::write(&path, format!("[options]\n{text}\n")).unwrap();
        let mut shown = Shown::default();
        shown.result(SessionConfig::from_file(&path));
        assert_nowhere(&text, &shown);
    }
}

/// An application's own config with the session section read by serde: the secrets it reads
/// are shown nowhere, neither in the validation and plan errors nor when serialized back.
#[test]
fn secrets_read_by_serde_are_shown_nowhere() {
    #[derive(serde::Deserialize)]
    struct App {
        session: SessionConfig,
    }
    let s = SECRET;
    for section in [
        format!("session_redis_password = '{s}'"),
        format!("session_redis_password = '{s}'\nsession_redis_mode = 'sentinel'"),
        format!("SESSION_REDIS_SENTINEL_PASSWORD = '{s}'"),
        format!("session_redis_ssl_password = '{s}'\nsession_redis_ssl = true\nsession_redis_ssl_keyfile = '/nonexistent/k'\nsession_redis_ssl_certfile = '/nonexistent/c'"),
        format!("session_redis_url = 'redis://u:{s}@h:1/0'"),
        format!("session_redis_url = 'redis://u:{s}@h:1/0'\nsession_redis_host = 'h2'"),
        format!("session_redis_url = 'unix:r.sock?password={s}'"),
        format!("session_redis_url = 'ftp://:{s}@h'"),
        format!("session_redis_pw = '{s}'"),
        format!("session_redis_host = 'redis://:{s}@10.0.0.5:6379/0'"),
        format!("SESSION_REDIS_SENTINEL_LIST = [['redis://:{s}@s1', 26379]]"),
        format!("[[session.session_redis_pool]]\nSESSION_REDIS_HOST = 'redis://:{s}@a:6379'"),
        format!("[[session.session_redis_pool]]\nSESSION_REDIS_HOST = 'a'\nSESSION_REDIS_PASSWORD = '{s}'\n[[session.session_redis_pool]]\nSESSION_REDIS_URL = 'redis://:{s}@b'"),
        format!("[[session.session_redis_pool]]\nSESSION_REDIS_URL = 'redis://:{s}@b'\nSESSION_REDIS_HOST = 'x'"),
        format!("[[session.session_redis_multi_backends]]\nbackend = '0'\nmodes = ['read', 'write']\n[session.session_redis_multi_backends.setting]\nSESSION_REDIS_PASSWORD = '{s}'\nSESSION_REDIS_URL = 'redis://:{s}@c'"),
    ] {
        let text = format!("[session]\n{section}\n");
        let mut shown = Shown::default();
        match toml::from_str::<App>(&text) {
            Ok(app) => shown.config(&app.session),
            // Refused while reading (a value of the wrong form, an unknown key): the error
            // must not show it either.
            Err(e) => shown.text(e.to_string()),
        }
        assert_nowhere(&text, &shown);
    }
}

/// `Serialize` writes `<redacted>` for a set secret, and a configuration loaded back from it
/// is refused, naming the option, rather than sending `<redacted>` to Redis.
#[test]
fn serialized_secrets_are_redacted_and_refused_when_loaded_back() {
    let config = SessionConfig::builder().password(SECRET).build().unwrap();
    let json = serde_json::to_string(&config).unwrap();
    assert!(
        json.contains(r#""session_redis_password":"<redacted>""#),
        "{json}"
    );
    let back: SessionConfig = serde_json::from_str(&json).unwrap();
    let err = back.validate().unwrap_err();
    assert_eq!(err.key, "session_redis_password");
    assert!(err.expected.contains("for display"), "{err}");

    let config = SessionConfig::builder()
        .url(format!("redis://app:{SECRET}@h:6379/1"))
        .build()
        .unwrap();
    let text = toml::to_string(&config).unwrap();
    assert!(
        text.contains("session_redis_url = \"redis://app:<redacted>@h:6379/1\""),
        "{text}"
    );
    let back: SessionConfig = toml::from_str(&text).unwrap();
    assert_eq!(back.validate().unwrap_err().key, "session_redis_url");

    // Unset secrets are left out, as before.
    let json = serde_json::to_string(&SessionConfig::default()).unwrap();
    assert!(!json.contains("password"), "{json}");
}

/// The unknown key's value is never echoed, whatever the key looks like.
#[test]
fn unknown_keys_never_echo_their_value() {
    for key in [
        "SESSION_REDIS_PW",
        "SESSION_REDIS_COLOUR",
        "session_redis_hots",
    ] {
        let err = SessionConfig::from_sources(None, [(key, "plainvalue42")]).unwrap_err();
        assert_eq!(err.key, key);
        assert!(!err.to_string().contains("plainvalue42"), "{err}");
    }
    let err = SessionConfig::from_sources(
        None,
        [(
            "SESSION_REDIS_POOL",
            "[{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_COLOUR': 'plainvalue42'}]",
        )],
    )
    .unwrap_err();
    assert!(err.key.contains("SESSION_REDIS_COLOUR"), "{err}");
    assert!(!err.to_string().contains("plainvalue42"), "{err}");
}

/// A redis URL given where a host belongs, in the three places a host is written: refused,
/// naming the option, with the password in neither `Display` nor `Debug` of the error.
#[test]
fn a_url_given_as_a_host_is_refused_without_its_password() {
    let s = SECRET;
    for (name, value, key) in [
        (
            "SESSION_REDIS_HOST",
            format!("redis://:{s}@10.0.0.5:6379/0"),
            "SESSION_REDIS_HOST",
        ),
        (
            "SESSION_REDIS_SENTINEL_LIST",
            format!("[('redis://:{s}@s1', 26379)]"),
            "SESSION_REDIS_SENTINEL_LIST",
        ),
        (
            "SESSION_REDIS_POOL",
            format!("[{{'SESSION_REDIS_HOST': 'redis://:{s}@a:6379'}}]"),
            "session_redis_pool[0].SESSION_REDIS_HOST",
        ),
    ] {
        let err = SessionConfig::from_sources(None, [(name, value.as_str())]).unwrap_err();
        let (display, debug) = (err.to_string(), format!("{err:?}"));
        assert_eq!(err.key, key, "{display}");
        assert!(!display.contains(s), "{name}: {display}");
        assert!(!debug.contains(s), "{name}: {debug}");
        assert!(display.contains("<redacted>"), "{name}: {display}");
    }
}

/// The same URLs put into a configuration in code, where no parser sees them: every rendering
/// of the configuration, and its validation error, hide the password.
#[test]
fn a_url_set_as_a_host_in_code_is_shown_nowhere() {
    use session_core::{HostPort, PoolMember};
    let url = format!("redis://:{SECRET}@10.0.0.5:6379/0");
    let configs = [
        SessionConfig {
            host: vec![HostPort {
                host: url.clone(),
                port: None,
            }],
            ..SessionConfig::default()
        },
        SessionConfig {
            host: vec![
                HostPort::new(url.clone(), 26379),
                HostPort::new("s2", 26379),
            ],
            mode: session_core::Mode::Sentinel,
            master: Some("m".into()),
            ..SessionConfig::default()
        },
        SessionConfig {
            pool: vec![PoolMember {
                host: Some(url.clone()),
                ..PoolMember::default()
            }],
            ..SessionConfig::default()
        },
        SessionConfig {
            pool: vec![PoolMember {
                host: Some(url.clone()),
                url: Some("redis://b".into()),
                ..PoolMember::default()
            }],
            ..SessionConfig::default()
        },
    ];
    for config in configs {
        let mut shown = Shown::default();
        shown.config(&config);
        for member in &config.pool {
            shown.text(format!("{member:?}"));
            shown.text(member.identity(&config));
            shown.text(serde_json::to_string(member).unwrap());
        }
        for host in &config.host {
            shown.text(format!("{host} {host:?}"));
            shown.text(serde_json::to_string(host).unwrap());
        }
        assert_nowhere(&format!("{:?}", config.host), &shown);
        let err = config.validate().expect_err("a URL is no host");
        assert!(err.key.to_ascii_lowercase().contains("host"), "{err}");
    }
}
