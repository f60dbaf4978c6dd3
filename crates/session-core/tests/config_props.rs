//! Property tests of the configuration's numbers (issue 9, item 5): random and extreme values
//! for every numeric option, through every source, give an error or a valid configuration,
//! never a panic or an abort; a valid configuration's `plan()` never panics either.
//!
//! The case counts are bounded so that the whole file runs in a few seconds.

use proptest::prelude::*;
use session_core::{ConfigError, SessionConfig};

/// An option's name, its value's template, and the settings it needs beside it.
type Numeric = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Every option (or position inside an option's value) that holds a number, as a template:
/// `{}` is replaced by the value's text. Some need a companion setting to be read at all.
const NUMERIC: &[Numeric] = &[
    ("SESSION_REDIS_KEY_EXPIRE", "{}", &[]),
    ("SESSION_REDIS_PORT", "{}", &[]),
    ("SESSION_REDIS_DB", "{}", &[]),
    ("SESSION_REDIS_SOCKET_TIMEOUT", "{}", &[]),
    ("SESSION_REDIS_SOCKET_CONNECT_TIMEOUT", "{}", &[]),
    ("SESSION_REDIS_MAX_CONNECTIONS", "{}", &[]),
    ("SESSION_REDIS_HEALTH_CHECK_INTERVAL", "{}", &[]),
    ("SESSION_REDIS_HOST", "h:{}", &[]),
    ("SESSION_REDIS_HOST", "[('h', {})]", &[]),
    (
        "SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS",
        "{{'TCP_KEEPIDLE': {}}}",
        &[("SESSION_REDIS_SOCKET_KEEPALIVE", "True")],
    ),
    (
        "SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS",
        "{{5: {}, 6: {}}}",
        &[("SESSION_REDIS_SOCKET_KEEPALIVE", "True")],
    ),
    (
        "SESSION_REDIS_SOCKET_KEEPALIVE_OPTIONS",
        "{{18: {}}}",
        &[("SESSION_REDIS_SOCKET_KEEPALIVE", "True")],
    ),
    (
        "SESSION_REDIS_POOL",
        "[{{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_WEIGHT': {}}}, {{'SESSION_REDIS_HOST': 'b'}}]",
        &[],
    ),
    (
        "SESSION_REDIS_POOL",
        "[{{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_PORT': {}, 'SESSION_REDIS_DB': {}}}]",
        &[],
    ),
    (
        "SESSION_REDIS_MULTI_BACKENDS",
        "[{{'backend': '0', 'modes': ['read', 'write'], 'setting': {{'SESSION_REDIS_DB': {}, 'SESSION_REDIS_MAX_CONNECTIONS': {}, 'SESSION_REDIS_SOCKET_TIMEOUT': {}}}}}]",
        &[],
    ),
];

/// Values that have crashed a parser somewhere, or could: beyond every integer type, signs,
/// non-finite floats, exponents, radixes, separators, whitespace, quotes, non-ASCII digits.
const EXTREMES: &[&str] = &[
    "0",
    "1",
    "-1",
    "100000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "2147483647",
    "2147483648",
    "65535",
    "65536",
    "10000",
    "10001",
    "999999999.999",
    "1e9",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "0x10",
    "0o7",
    "0b1",
    "1_000",
    "+5",
    " 7 ",
    "'8'",
    "\"9\"",
    "5.5",
    "1.",
    ".5",
    "1e3",
    "00012",
    "٣",
    "",
    "None",
    "True",
    "[]",
    "{}",
    "'",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(EXTREMES).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        (any::<u64>(), 0u32..400).prop_map(|(m, e)| format!("{m}e{e}")),
        "[-+]?[0-9_]{1,40}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?",
        "[ -~]{0,12}",
    ]
}

/// The template filled with `v` at every `{}` (and `{{`/`}}` unescaped).
fn fill(template: &str, v: &str) -> String {
    template
        .replace("{{", "\u{1}")
        .replace("}}", "\u{2}")
        .replace("{}", v)
        .replace('\u{1}', "{")
        .replace('\u{2}', "}")
}

/// An error, or a configuration that is valid and plans without a panic.
fn check(r: Result<SessionConfig, ConfigError>) {
    match r {
        Ok(c) => {
            c.validate().unwrap();
            // Rendering and planning a valid configuration must not panic either.
            let _ = (format!("{c:?}"), c.to_string(), serde_json::to_string(&c));
            let _ = c.plan().map(|p| format!("{p:?}"));
        }
        Err(e) => {
            assert!(!e.key.is_empty(), "an error names its key: {e}");
        }
    }
}

fn through_every_source(entries: &[(String, String)], dir: &std::path::Path) {
    check(SessionConfig::from_sources(None, entries.to_vec()));
    check(
        entries
            .iter()
            .fold(SessionConfig::builder(), |b, (k, v)| b.set(k, v))
            .build(),
    );
    let ini: String = entries
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let path = dir.join("p.conf");
    std::fs::write(&path, format!("[options]\n{ini}")).unwrap();
    check(SessionConfig::from_file(&path));
    // TOML: as a string, and as the value itself where it is a TOML value (a number).
    for typed in [false, true] {
        let text: String = entries
            .iter()
            .map(|(k, v)| {
                let literal = if typed && toml::from_str::<toml::Table>(&format!("x = {v}")).is_ok()
                {
                    v.clone()
                } else {
                    toml::Value::String(v.clone()).to_string()
                };
                format!("{} = {literal}\n", k.to_ascii_lowercase())
            })
            .collect();
        let path = dir.join("p.toml");
        std::fs::write(&path, format!("[options]\n{text}")).unwrap();
        check(SessionConfig::from_file(&path));
        // serde: an application config with the options under the same names.
        if let Ok(c) = toml::from_str::<SessionConfig>(&text) {
            match c.validate() {
                Ok(()) => check(Ok(c)),
                Err(e) => check(Err(e)),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every numeric option, every source, random and extreme values.
    #[test]
    fn numbers_never_crash(option in 0..NUMERIC.len(), v in value(), mode in 0..3usize) {
        let dir = tempfile::tempdir().unwrap();
        let (key, template, companions) = NUMERIC[option];
        let mut entries = vec![(key.to_owned(), fill(template, &v))];
        entries.extend(companions.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // The numbers' rules differ by mode (cluster refuses some): try each.
        match mode {
            1 => entries.push(("SESSION_REDIS_MODE".into(), "cluster".into())),
            2 => {
                entries.push(("SESSION_REDIS_MODE".into(), "sentinel".into()));
                entries.push(("SESSION_REDIS_MASTER".into(), "m".into()));
            }
            _ => {}
        }
        through_every_source(&entries, dir.path());
    }

    /// The typed serde path: any integer or float in every numeric field of an app config.
    #[test]
    fn serde_numbers_never_crash(field in prop::sample::select(&[
        "session_redis_key_expire", "session_redis_port", "session_redis_db",
        "session_redis_socket_timeout", "session_redis_socket_connect_timeout",
        "session_redis_max_connections", "session_redis_health_check_interval",
        "session_cookie_age", "session_redis_max_session_size",
    ][..]), n in prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("TOML writes these", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
    ]) {
        if let Ok(c) = toml::from_str::<SessionConfig>(&format!("{field} = {n}")) {
            match c.validate() {
                Ok(()) => check(Ok(c)),
                Err(e) => check(Err(e)),
            }
        }
    }
}

/// The values of the issue, each an error naming the key.
#[test]
fn the_crashing_numbers_of_the_issue_are_errors() {
    for v in ["100000000000000", "18446744073709551615", "10001"] {
        let err =
            SessionConfig::from_sources(None, [("SESSION_REDIS_MAX_CONNECTIONS", v)]).unwrap_err();
        assert_eq!(err.key, "session_redis_max_connections", "{err}");
        assert!(err.expected.contains("10000"), "{err}");
    }
    let c =
        SessionConfig::from_sources(None, [("SESSION_REDIS_MAX_CONNECTIONS", "10000")]).unwrap();
    c.plan().unwrap();
    for (key, v) in [
        ("SESSION_REDIS_DB", "2147483648"),
        ("SESSION_REDIS_HEALTH_CHECK_INTERVAL", "1e9"),
        ("SESSION_REDIS_SOCKET_TIMEOUT", "1e9"),
        ("SESSION_REDIS_KEY_EXPIRE", "18446744073709551615"),
    ] {
        let err = SessionConfig::from_sources(None, [(key, v)]).unwrap_err();
        assert_eq!(err.key.to_ascii_uppercase(), key, "{err}");
    }
    let err = SessionConfig::from_sources(
        None,
        [(
            "SESSION_REDIS_POOL",
            "[{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_DB': 2147483648}]",
        )],
    )
    .unwrap_err();
    assert!(err.key.contains("SESSION_REDIS_DB"), "{err}");
}
