//! Session ids: 256 bits from the operating system's random source, as URL-safe text.
//!
//! An id is a bearer credential, so [`SessionId`] never prints itself: its `Debug` output is
//! redacted and it has no `Display`. Code that must put it in a cookie or a key calls
//! [`SessionId::as_str`] on purpose.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::{rngs::OsRng, TryRngCore};

/// Number of random bytes in an id (256 bits).
const ID_BYTES: usize = 32;
/// Length of the base64url text of `ID_BYTES` bytes, without padding.
pub const ID_LEN: usize = 43;

/// A validated session id.
///
/// ```
/// use session_core::SessionId;
///
/// let id = SessionId::generate();
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
/// assert!(SessionId::parse("../../etc/passwd").is_err());
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

/// The text given to [`SessionId::parse`] is not an id this library could have made.
///
/// The rejected text is deliberately not kept: it came from a client and may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session id: expected {ID_LEN} characters of base64url text")]
pub struct InvalidSessionId;

impl SessionId {
    /// The length of every id's text: 43 characters, the base64url of 256 bits without padding.
    /// What code that frames an id (a sealed cookie, a file name) can size itself by.
    ///
    /// ```
    /// use session_core::SessionId;
    ///
    /// assert_eq!(SessionId::generate().as_str().len(), SessionId::LEN);
    /// ```
    pub const LEN: usize = ID_LEN;

    /// Makes a new id from 32 bytes of the operating system's random source.
    ///
    /// # Panics
    /// Panics only when the operating system cannot supply random bytes, where no secure id
    /// can be made at all.
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random source failed");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Validates an id that came from outside (a cookie, a file name, a Redis key).
    ///
    /// Only the exact shape [`generate`](Self::generate) makes is accepted, so an id can be
    /// used in a Redis key or a file path without any further escaping.
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        // Every byte looked at, with no branch per byte (compares the compiler vectorizes):
        // this runs on every request with a cookie.
        let well_formed = text.len() == ID_LEN
            && text.bytes().fold(true, |ok, b| {
                ok & ((b.wrapping_sub(b'A') < 26)
                    | (b.wrapping_sub(b'a') < 26)
                    | (b.wrapping_sub(b'0') < 10)
                    | (b == b'-')
                    | (b == b'_'))
            });
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidSessionId)
        }
    }

    /// The id as text, for a cookie value or a storage key. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A value that names this session in logs and traces without being its credential: the
    /// first 16 hex digits (64 bits) of the SHA-256 of the id. The same session always gives
    /// the same fingerprint, in every process and framework; the id cannot be recovered from
    /// it (256 random bits behind a one-way hash), so logging it hands nobody the session.
    ///
    /// ```
    /// let id = session_core::SessionId::generate();
    /// let fingerprint = id.fingerprint();
    /// assert_eq!(fingerprint.len(), 16);
    /// assert_eq!(fingerprint, id.fingerprint());
    /// assert!(!id.as_str().contains(&fingerprint));
    /// ```
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl TryFrom<&str> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_and_valid() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| SessionId::generate()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Ok(id));
        }
    }

    #[test]
    fn rejects_everything_else() {
        let good = SessionId::generate();
        let cases = [
            String::new(),
            good.as_str()[1..].to_owned(),
            format!("{}a", good.as_str()),
            format!("{}/", &good.as_str()[1..]),
            format!("{}=", &good.as_str()[1..]),
            format!("{}:", &good.as_str()[1..]),
            format!("{}é", &good.as_str()[2..]),
            "*".repeat(ID_LEN),
        ];
        for case in cases {
            assert_eq!(SessionId::parse(&case), Err(InvalidSessionId), "{case:?}");
        }
    }

    #[test]
    fn error_does_not_echo_input() {
        let message = SessionId::parse("secret-looking-value")
            .unwrap_err()
            .to_string();
        assert!(!message.contains("secret"));
    }
}
