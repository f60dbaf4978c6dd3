//! Serde forms that accept what people write in application configs: a mode as text or
//! `false`, a host list as `"a:1,b:2"`, `["a:1", "b"]` or `[["a", 1], ["b", 2]]`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

use super::{
    literal::{Raw, Value},
    parse,
    redact::{redact_url, REDACTED},
    HostPort, Mode, SessionConfig, SessionConfigBuilder,
};

/// `serialize_with` for a secret (`Option<String>`): `"<redacted>"` when set. A serialized
/// configuration is for showing (an admin page, a support dump), not for round trips:
/// `validate` refuses a secret that reads `<redacted>`, so one loaded back fails loudly
/// instead of sending `<redacted>` as a password.
pub(crate) fn secret<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

/// `serialize_with` for a URL (`Option<String>`): its password redacted, as `Display` shows it.
pub(crate) fn url<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(url) => s.serialize_str(&redact_url(url)),
        None => s.serialize_none(),
    }
}

/// `serialize_with` for a host name: redacted as a URL, as `HostPort`'s `Display` shows it.
pub(crate) fn host<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(v))
}

/// An embedded configuration: a map of option names, read like a TOML source (see
/// [`SessionConfig`]'s docs).
impl<'de> serde::Deserialize<'de> for SessionConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table: serde_json::Map<String, serde_json::Value> = serde::Deserialize::deserialize(d)?;
        let entries = table
            .into_iter()
            .map(|(key, value)| {
                let raw = match value {
                    serde_json::Value::String(s) => Raw::Text(s),
                    other => Raw::Typed(json_value(&other)),
                };
                (key, raw)
            })
            .collect();
        SessionConfigBuilder::new()
            .entries(entries, "the embedded configuration")
            .build_unvalidated()
            .map_err(de::Error::custom)
    }
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            // Beyond i64 (a u64 above i64::MAX) or fractional: a float, which the numeric
            // options refuse with their bounds.
            None => Value::Float(n.as_f64().unwrap_or(f64::INFINITY)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(json_value).collect()),
        serde_json::Value::Object(o) => Value::Dict(
            o.iter()
                .map(|(k, v)| (Value::Str(k.clone()), json_value(v)))
                .collect(),
        ),
    }
}

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("redis, sentinel, cluster, or false/disabled/none")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Mode, E> {
                parse::parse_mode_text(s)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Mode, E> {
                if b {
                    Err(E::invalid_value(de::Unexpected::Bool(b), &self))
                } else {
                    Ok(Mode::Disabled)
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Mode, E> {
                match n {
                    0 => Ok(Mode::Disabled),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Mode, E> {
                match n {
                    0 => Ok(Mode::Disabled),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Mode, E> {
                Ok(Mode::Disabled)
            }
            fn visit_none<E: de::Error>(self) -> Result<Mode, E> {
                Ok(Mode::Disabled)
            }
        }
        d.deserialize_any(V)
    }
}

/// `serialize_with` for `SessionConfig::host` (reading goes through the host-list parser of
/// the text sources, like every option of an embedded configuration).
pub(crate) mod hosts {
    use super::*;

    /// As a list of `host:port` strings, which every accepted form reads back.
    pub(crate) fn serialize<S: serde::Serializer>(
        hosts: &[HostPort],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(hosts.iter().map(ToString::to_string))
    }
}
