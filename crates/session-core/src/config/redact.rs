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
/// people write. Any case, since a query is matched by people as much as by parsers.
fn redact_query(tail: &str) -> String {
    match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k.trim().eq_ignore_ascii_case("password")
                            || k.trim().eq_ignore_ascii_case("pass") =>
                    {
                        format!("{k}={REDACTED}")
                    }
                    _ => kv.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    }
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
    }
}
