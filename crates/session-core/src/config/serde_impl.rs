//! Serde forms that accept what people write in application configs: a mode as text or
//! `false`, a host list as `"a:1,b:2"`, `["a:1", "b"]` or `[["a", 1], ["b", 2]]`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{
    host, parse,
    redact::{redact_url, REDACTED},
    HostPort, Mode,
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

/// `#[serde(with)]` for `SessionConfig::host`.
pub(crate) mod hosts {
    use super::*;

    /// As a list of `host:port` strings, which every accepted form reads back.
    pub(crate) fn serialize<S: serde::Serializer>(
        hosts: &[HostPort],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(hosts.iter().map(ToString::to_string))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostPort>, D::Error> {
        d.deserialize_any(HostsVisitor)
    }

    struct HostsVisitor;

    impl<'de> Visitor<'de> for HostsVisitor {
        type Value = Vec<HostPort>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#""host:port,host:port", a list of "host:port" or a list of [host, port]"#)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            host::parse_hosts_text(s).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Item>()? {
                out.push(item.0);
            }
            Ok(out)
        }
    }

    struct Item(HostPort);

    impl<'de> serde::Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ItemVisitor).map(Item)
        }
    }

    /// A port as a number or as text.
    struct Port(Option<u16>);

    impl<'de> serde::Deserialize<'de> for Port {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Port;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a port from 1 to 65535")
                }
                fn visit_u64<E: de::Error>(self, n: u64) -> Result<Port, E> {
                    u16::try_from(n)
                        .ok()
                        .filter(|p| *p != 0)
                        .map(|p| Port(Some(p)))
                        .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(n), &self))
                }
                fn visit_i64<E: de::Error>(self, n: i64) -> Result<Port, E> {
                    match u64::try_from(n) {
                        Ok(n) => self.visit_u64(n),
                        Err(_) => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                    }
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Port, E> {
                    match s.trim().parse::<u64>() {
                        Ok(n) => self.visit_u64(n),
                        Err(_) => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                    }
                }
                fn visit_unit<E: de::Error>(self) -> Result<Port, E> {
                    Ok(Port(None))
                }
                fn visit_none<E: de::Error>(self) -> Result<Port, E> {
                    Ok(Port(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    struct ItemVisitor;

    impl<'de> Visitor<'de> for ItemVisitor {
        type Value = HostPort;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#""host:port", [host, port] or {host, port}"#)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<HostPort, E> {
            host::parse_host_text(s).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HostPort, A::Error> {
            let host: String = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &self))?;
            let port: Option<Port> = seq.next_element()?;
            if seq.next_element::<de::IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_length(3, &self));
            }
            host_port(host, port.and_then(|p| p.0))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostPort, A::Error> {
            let (mut host, mut port) = (None, None);
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "host" => host = Some(map.next_value::<String>()?),
                    "port" => port = map.next_value::<Port>()?.0,
                    other => return Err(de::Error::unknown_field(other, &["host", "port"])),
                }
            }
            host_port(host.ok_or_else(|| de::Error::missing_field("host"))?, port)
        }
    }

    fn host_port<E: de::Error>(host: String, port: Option<u16>) -> Result<HostPort, E> {
        // Run the host through the text checks so that serde and text sources agree.
        let mut hp = host::parse_host_text(&host).map_err(E::custom)?;
        if port.is_some() {
            if hp.port.is_some() {
                return Err(E::custom(format!("`{host}` has a port already")));
            }
            hp.port = port;
        }
        Ok(hp)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{names::Kind, SessionConfig, OPTIONS};

    /// Every option the table marks secret (and the URL) is redacted by `Serialize`, `Debug`
    /// and `Display`: a secret option added to the table without its `serialize_with` fails
    /// here, not in a log.
    #[test]
    fn every_secret_of_the_table_is_redacted_when_serialized() {
        const SECRET: &str = "Tq7SecretValue";
        let mut checked = 0;
        for spec in OPTIONS
            .iter()
            .filter(|s| s.secret || s.name == "session_redis_url")
        {
            let value = match spec.kind {
                Kind::Str if spec.name == "session_redis_url" => {
                    format!("redis://u:{SECRET}@h:6379/0")
                }
                Kind::Str => SECRET.to_owned(),
                Kind::Pool => format!(
                    "[{{'SESSION_REDIS_HOST': 'a', 'SESSION_REDIS_PASSWORD': '{SECRET}'}}, {{'SESSION_REDIS_URL': 'redis://:{SECRET}@b'}}]"
                ),
                Kind::Multi => format!(
                    "[{{'backend': '0', 'modes': ['read', 'write'], 'setting': {{'SESSION_REDIS_PASSWORD': '{SECRET}', 'SESSION_REDIS_URL': 'redis://:{SECRET}@b'}}}}]"
                ),
                other => panic!("{}: a secret of kind {other:?} needs a case here", spec.name),
            };
            let config = SessionConfig::builder()
                .set(spec.name, &value)
                .build_unvalidated()
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert_ne!(config, SessionConfig::default(), "{}", spec.name);
            for shown in [
                serde_json::to_string(&config).unwrap(),
                toml::to_string(&config).unwrap(),
                format!("{config:?}"),
                config.to_string(),
            ] {
                assert!(!shown.contains(SECRET), "{}: {shown}", spec.name);
            }
            checked += 1;
        }
        assert!(checked >= 6, "{checked}");
    }
}
