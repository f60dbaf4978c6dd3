//! The configuration error: which option, which value, what was expected.

/// A configuration error naming the key, the value and what is expected.
///
/// Values of secret options are `<redacted>`; so is the password inside a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}` = {value}: {expected}")]
pub struct ConfigError {
    /// The option's name (as written in the source, or canonical for combination checks).
    pub key: String,
    /// The value given (secrets redacted).
    pub value: String,
    /// What is expected instead, or why the option is rejected.
    pub expected: String,
}

impl ConfigError {
    /// An option that is understood but not supported.
    pub fn unsupported(key: &str, value: &str, reason: &str) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            expected: reason.into(),
        }
    }

    /// A value that is not valid for its option.
    pub fn invalid(key: &str, value: &str, expected: &str) -> Self {
        Self::unsupported(key, value, expected)
    }

    /// An option this release does not implement yet; the message starts with
    /// "not yet supported".
    pub fn not_yet_supported(key: &str, value: &str, plan: &str) -> Self {
        Self::unsupported(key, value, &format!("not yet supported: {plan}"))
    }

    /// True for [`not_yet_supported`](Self::not_yet_supported) errors.
    pub fn is_not_yet_supported(&self) -> bool {
        self.expected.starts_with("not yet supported")
    }
}
