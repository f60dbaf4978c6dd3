//! The configuration error: which option, which value, what was expected, and what kind of
//! problem it is.

/// A configuration error naming the key, the value and what is expected.
///
/// Values of secret options are `<redacted>`; so is the password inside a URL. Match on
/// [`kind`](Self::kind) rather than on the text, which is written for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}` = {value}: {expected}")]
pub struct ConfigError {
    /// What kind of problem this is.
    pub kind: ConfigErrorKind,
    /// The option's name (as written in the source, or canonical for combination checks).
    pub key: String,
    /// The value given (secrets redacted).
    pub value: String,
    /// What is expected instead, or why the option is rejected.
    pub expected: String,
}

/// What kind of [`ConfigError`] it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A value that is not valid for its option, or options that contradict each other.
    Invalid,
    /// An option that is understood but cannot be honoured here (a Python-only setting with
    /// no equivalent, a feature the Redis client lacks).
    Unsupported,
    /// An option this release does not implement yet.
    NotYetSupported,
    /// A name that is no option (the error suggests the closest one).
    UnknownKey,
    /// An option and its alias given in one source with different values.
    Conflict,
    /// A source that cannot be read: an unreadable file, bad file syntax, a variable that is
    /// not UTF-8.
    Source,
    /// The configuration asks for a backend whose cargo feature this build was compiled
    /// without.
    FeatureDisabled {
        /// The cargo feature of session-core that would enable it.
        feature: &'static str,
    },
}

impl ConfigError {
    /// An error of any kind; the constructors below are the usual way.
    pub fn new(kind: ConfigErrorKind, key: &str, value: &str, expected: &str) -> Self {
        Self {
            kind,
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }

    /// An option that is understood but not supported.
    pub fn unsupported(key: &str, value: &str, reason: &str) -> Self {
        Self::new(ConfigErrorKind::Unsupported, key, value, reason)
    }

    /// A value that is not valid for its option.
    pub fn invalid(key: &str, value: &str, expected: &str) -> Self {
        Self::new(ConfigErrorKind::Invalid, key, value, expected)
    }

    /// An option this release does not implement yet; the message starts with
    /// "not yet supported".
    pub fn not_yet_supported(key: &str, value: &str, plan: &str) -> Self {
        Self::new(
            ConfigErrorKind::NotYetSupported,
            key,
            value,
            &format!("not yet supported: {plan}"),
        )
    }

    /// A configuration that needs the cargo `feature` of session-core, which this build was
    /// compiled without.
    pub fn feature_disabled(key: &str, value: &str, feature: &'static str) -> Self {
        Self::new(
            ConfigErrorKind::FeatureDisabled { feature },
            key,
            value,
            &format!(
                "the `{feature}` cargo feature of session-core, which this build was compiled without: enable it in Cargo.toml"
            ),
        )
    }

    /// True for [`not_yet_supported`](Self::not_yet_supported) errors.
    pub fn is_not_yet_supported(&self) -> bool {
        self.kind == ConfigErrorKind::NotYetSupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_do_not_change_the_text() {
        let e = ConfigError::not_yet_supported("k", "v", "later");
        assert!(e.is_not_yet_supported());
        assert_eq!(
            e.to_string(),
            "invalid configuration `k` = v: not yet supported: later"
        );
        let e = ConfigError::feature_disabled("session_redis_mode", "cluster", "cluster");
        assert_eq!(
            e.kind,
            ConfigErrorKind::FeatureDisabled { feature: "cluster" }
        );
        assert!(!e.is_not_yet_supported());
        assert!(e.expected.contains("`cluster` cargo feature"), "{e}");
    }
}
