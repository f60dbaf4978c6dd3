//! Host addresses as people write them: `host`, `host:port`, `[v6]:port`, a bare IPv6 address,
//! `host:port,host:port`, or a Python list of `(host, port)` tuples (Odoo's and
//! django-redis-sessions' `SENTINEL_LIST`).

use super::{
    literal::{parse_literal, unquote, Value},
    redact::redact_url,
    ConfigError, HostPort,
};

/// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
impl std::str::FromStr for HostPort {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_host_text(s).map_err(|e| {
            ConfigError::invalid(
                "session_redis_host",
                &redact_url(s),
                &format!("host, host:port or [v6]:port ({e})"),
            )
        })
    }
}

/// Reads one `host`, `host:port`, `[v6]`, `[v6]:port` or bare IPv6 address.
///
/// The error shows the item through [`redact_url`]: a host never holds an `@`, and a text that
/// does is most likely a `redis://:password@host` URL put where a host belongs.
pub(crate) fn parse_host_text(item: &str) -> Result<HostPort, String> {
    let item = unquote(item);
    let item = item.trim();
    let shown = redact_url(item);
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("`{shown}`: missing `]` after an IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("`{shown}`: expected `:port` after `]`"))?,
            ),
        };
        (&rest[..end], port)
    } else if item.matches(':').count() > 1 {
        // A bare IPv6 address: no port can be told apart from it.
        (item, None)
    } else if let Some((h, p)) = item.split_once(':') {
        (h, Some(p))
    } else {
        (item, None)
    };
    check_host(host).map_err(|e| format!("`{shown}`: {e}"))?;
    let port = port
        .map(|p| {
            parse_port_text(p)
                .ok_or_else(|| format!("`{shown}`: port `{}` is not 1-65535", redact_url(p)))
        })
        .transpose()?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// Whether `host` can be a host name or address (not whether it resolves).
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host name".into());
    }
    if host.contains("://") || host.contains('@') {
        return Err("a URL, not a host name or address (a URL goes in session_redis_url)".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/@,'\"()[]{}".contains(c))
    {
        return Err("not a host name or address".into());
    }
    Ok(())
}

pub(crate) fn parse_port_text(p: &str) -> Option<u16> {
    p.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Reads a host list: a Python literal list of tuples/strings, or `host:port,host:port`.
pub(crate) fn parse_hosts_text(t: &str) -> Result<Vec<HostPort>, String> {
    let t = t.trim();
    if t.starts_with('[') || t.starts_with('(') {
        // `[::1]:6379` also starts with `[`: only a literal that parses counts as one.
        if let Ok(v) = parse_literal(t) {
            return hosts_from_value(&v);
        }
        if t.starts_with('(') || t.ends_with(']') && t.contains('(') {
            return Err(format!(
                "`{}` is not a valid list such as [('host', 26379), ('host2', 26379)]",
                redact_url(t)
            ));
        }
    }
    t.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(parse_host_text)
        .collect()
}

/// A host list from a literal: `[('a', 1), ['b', 2], 'c:3', 'd']` or a single `('a', 1)`.
pub(crate) fn hosts_from_value(v: &Value) -> Result<Vec<HostPort>, String> {
    match v {
        Value::None => Ok(Vec::new()),
        Value::Str(s) => parse_hosts_text(s),
        Value::List(items) => {
            if let [Value::Str(_), Value::Int(_) | Value::Str(_)] = items.as_slice() {
                // A single `(host, port)` pair: a port is never a host, so this is unambiguous
                // when the second item is a number.
                if let Ok(one) = host_from_pair(items) {
                    if matches!(items[1], Value::Int(_)) {
                        return Ok(vec![one]);
                    }
                }
            }
            items.iter().map(host_from_item).collect()
        }
        other => Err(format!(
            "`{}` is not a host list such as [('host', 26379), ('host2', 26379)] or host:port,host:port",
            redact_url(&other.show())
        )),
    }
}

fn host_from_item(v: &Value) -> Result<HostPort, String> {
    match v {
        Value::Str(s) => parse_host_text(s),
        Value::List(pair) => host_from_pair(pair),
        other => Err(format!(
            "`{}` is not a host: expected ('host', port) or 'host:port'",
            redact_url(&other.show())
        )),
    }
}

fn host_from_pair(pair: &[Value]) -> Result<HostPort, String> {
    let (host, port) = match pair {
        [Value::Str(h), p] => (h, p),
        _ => {
            return Err(format!(
                "`{}` is not a (host, port) pair",
                redact_url(&Value::List(pair.to_vec()).show())
            ))
        }
    };
    check_host(host).map_err(|e| format!("`{}`: {e}", redact_url(host)))?;
    let port = match port {
        Value::Int(p) => u16::try_from(*p).ok().filter(|p| *p != 0),
        Value::Str(p) => parse_port_text(p),
        Value::None => {
            return Ok(HostPort {
                host: host.clone(),
                port: None,
            })
        }
        _ => None,
    }
    .ok_or_else(|| format!("`{}`: port is not 1-65535", redact_url(&port.show())))?;
    Ok(HostPort {
        host: host.clone(),
        port: Some(port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(h: &str, p: Option<u16>) -> HostPort {
        HostPort {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn host_forms() {
        assert_eq!(
            parse_hosts_text("a:1, b ,[::1]:6379,[fe80::1],::2").unwrap(),
            vec![
                hp("a", Some(1)),
                hp("b", None),
                hp("::1", Some(6379)),
                hp("fe80::1", None),
                hp("::2", None)
            ]
        );
        assert_eq!(
            parse_hosts_text("('h', 5)").unwrap(),
            vec![hp("h", Some(5))]
        );
        assert_eq!(
            parse_hosts_text("['a:1', ['b', '2']]").unwrap(),
            vec![hp("a", Some(1)), hp("b", Some(2))]
        );
        assert!(parse_hosts_text("a:0").is_err());
        assert!(parse_hosts_text("a:x").is_err());
        assert!(parse_hosts_text("[('a', 1), ('b')]").is_err());
        assert!(parse_hosts_text("[('a', 1)").is_err());
    }

    #[test]
    fn urls_given_as_hosts_are_refused_without_their_password() {
        for text in [
            "redis://:s3cret@10.0.0.5:6379/0",
            "redis://u:s3cret@h",
            ":s3cret@h:6379",
            "h0,redis://:s3cret@h:1",
            "[('redis://:s3cret@s1', 26379)]",
            "[['redis://:s3cret@s1', 's3cret']]",
            "('redis://:s3cret@s1', 26379)",
        ] {
            let err = parse_hosts_text(text).unwrap_err();
            assert!(!err.contains("s3cret"), "{text}: {err}");
            assert!(err.contains("<redacted>"), "{text}: {err}");
        }
        let err = "redis://:s3cret@h".parse::<HostPort>().unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.expected.contains("session_redis_url"), "{err}");
    }
}
