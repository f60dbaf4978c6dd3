//! Keeping secrets out of errors, `Debug`, `Display` and logs: passwords inside URLs, and long
//! values (certificates) cut short.

/// What secrets are shown as.
pub(crate) const REDACTED: &str = "<redacted>";

/// A URL with its password (and a lone user-info part, which some clients read as the
/// password) replaced by `<redacted>`, also in a `password=` query parameter.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL we can take apart (`unix:r.sock?password=x`, `:pw@host`): a user-info
        // part hides all of it, and a query still has its password parameters redacted, since
        // a typo in the scheme does not make the password any less secret.
        return if url.contains('@') {
            REDACTED.to_owned()
        } else {
            redact_query(url)
        };
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    // The user-info ends at the LAST `@`: a password may hold an unencoded `/`, `?`, `#` or
    // even `@`, and cutting at the first of those would print the rest of it. An `@` further
    // right (in a query) only makes this redact more than needed.
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, tail) = rest.split_at(at);
            let user = userinfo.split_once(':').map(|(user, _)| user);
            (
                Some(match user {
                    Some(user) if !user.contains(['/', '?', '#']) => format!("{user}:{REDACTED}"),
                    _ => REDACTED.to_owned(),
                }),
                tail,
            )
        }
        None => (None, rest),
    };
    let tail = redact_query(tail);
    format!("{head}{}{tail}", userinfo.unwrap_or_default())
}

/// `tail` (the part of a URL after its user-info) with the values of the query parameters
/// that carry a password redacted: redis-rs reads `pass` (unix:// URLs); `password` is what
/// people write. Any case, since a query is matched by people as much as by parsers. Names
/// are compared decoded, as redis-rs decodes them (`p%61ss` is `pass`), and a `?` also
/// starts a parameter: `?db=1?pass=x`, a typo for `&`, fails as a bad db in an error that
/// shows the URL.
fn redact_query(tail: &str) -> String {
    match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split_inclusive(['&', '?'])
                .map(|kv| {
                    let (kv, separator) = match kv.strip_suffix(['&', '?']) {
                        Some(rest) => (rest, &kv[rest.len()..]),
                        None => (kv, ""),
                    };
                    match kv.split_once('=') {
                        Some((k, _)) if is_password_name(k) => {
                            format!("{k}={REDACTED}{separator}")
                        }
                        _ => format!("{kv}{separator}"),
                    }
                })
                .collect::<String>();
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    }
}

/// Whether a query parameter's name, decoded as a form field name is (`%XX`, `+`), says
/// `password` or `pass`.
fn is_password_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| (*b as char).to_digit(16))
                .map(|d| d as u8)
        };
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push(high << 4 | low);
                i += 3;
            }
            (b'+', _, _) => {
                decoded.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8_lossy(&decoded);
    let name = name.trim();
    name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("pass")
}

/// `s` trimmed and cut to 40 characters: certificates and other long values would drown the
/// rest of an error message or log line.
pub(crate) fn shorten(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_never_survive_redaction() {
        for (url, secret) in [
            ("redis://:s3cret@h:6379/0", "s3cret"),
            ("redis://user:s3cret@h:6379", "s3cret"),
            ("rediss://u:ab#cd@h:6380", "ab#cd"),
            ("redis://:ab/cd?x@h", "ab/cd?x"),
            ("redis://:a@b@h", "a@b"),
            ("unix:///r.sock?db=1&pass=s3cret", "s3cret"),
            ("unix:///r.sock?password=s3cret", "s3cret"),
            ("unix:///r.sock?p%61ss=s3cret", "s3cret"),
            ("unix:///r.sock?%50ASSWORD=s3cret&db=1", "s3cret"),
            ("unix:///r.sock?db=1?pass=s3cret", "s3cret"),
            ("redis://s3cret@h", "s3cret"),
            // Without `://`, as the issue found them printed.
            ("unix:r.sock?password=s3cret", "s3cret"),
            ("unix:/r.sock?db=1&PASS=s3cret", "s3cret"),
            ("redis:h?password=s3cret#x", "s3cret"),
            (":s3cret@h:6379", "s3cret"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.contains(REDACTED), "{url} -> {shown}");
        }
        assert_eq!(redact_url("redis://h:6379/2"), "redis://h:6379/2");
        assert_eq!(
            redact_url("redis://app:pw@h:6379/2"),
            format!("redis://app:{REDACTED}@h:6379/2")
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:pw@h:1/0"),
            "redis://user:<redacted>@h:1/0"
        );
        assert_eq!(redact_url("redis://pw@h"), "redis://<redacted>@h");
        assert_eq!(
            redact_url("unix:///s.sock?db=1&password=x"),
            "unix:///s.sock?db=1&password=<redacted>"
        );
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        assert_eq!(
            redact_url("unix:///s.sock?db=1?p%61ss=x&user=u&"),
            "unix:///s.sock?db=1?p%61ss=<redacted>&user=u&"
        );
        assert_eq!(
            redact_url("unix:///s.sock?a=%&b=%4"),
            "unix:///s.sock?a=%&b=%4"
        );
    }

    /// The encoded name really is the password to redis-rs.
    #[cfg(feature = "redis")]
    #[test]
    fn an_encoded_parameter_name_is_what_redis_reads() {
        use redis::IntoConnectionInfo;
        let info = "unix:///r.sock?p%61ss=s3cret"
            .into_connection_info()
            .unwrap();
        assert_eq!(info.redis_settings().password(), Some("s3cret"));
    }
}
