//! Opening a private cookie that holds a session id, without the cookie crate's general path.
//!
//! The format is the cookie crate's private jar (so actix-session's, and what
//! [`CookieConfig::seal`](super::CookieConfig::seal) still writes through the crate): standard,
//! padded base64 of nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes), with the cookie
//! name as associated data and the key's 32-byte encryption half.
//!
//! Why not the crate: to open one value it builds a jar and a cookie (two copies of the name
//! and value), decodes the base64 into a new vector, expands the AES key schedule and the
//! GHASH key again, and copies the plaintext into a new string. That was 4.4% of a small write
//! via axum in a profile, about 0.8 µs (docs/benchmarks.md, the eighth round). A sealed id
//! always has the same length, so here the value is decoded and decrypted in a buffer on the
//! stack, with a cipher expanded once per key. A value of any other length still goes through
//! the crate; a property test (`cookies/fuzz.rs`) holds the two to the same answers.

use aes_gcm::{
    aead::{generic_array::GenericArray, AeadInPlace, KeyInit},
    Aes256Gcm,
};
use base64::{prelude::BASE64_STANDARD, Engine as _};
use cookie::Key;
use session_core::{InvalidSessionId, SessionId};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// What a sealed id decodes to.
const SEALED_LEN: usize = NONCE_LEN + SessionId::LEN + TAG_LEN;

/// The length of a sealed id as a cookie value (before percent-encoding): padded base64 of
/// [`SEALED_LEN`] bytes. Only values of this length take the path of this module.
pub(crate) const SEALED_ID_LEN: usize = SEALED_LEN.div_ceil(3) * 4;

/// Room for what base64 of [`SEALED_ID_LEN`] characters can decode to (three bytes per four
/// characters, before padding is taken off): the size `decode_slice` asks for.
const DECODED_MAX: usize = SEALED_ID_LEN / 4 * 3;

/// A cookie key with its AES-256-GCM cipher expanded once: each key of a layer (the current
/// one and the fallbacks) is one of these.
#[derive(Clone)]
pub(crate) struct CookieKey {
    pub(crate) key: Key,
    cipher: Aes256Gcm,
}

impl CookieKey {
    pub(crate) fn new(key: Key) -> Self {
        let cipher = Aes256Gcm::new(GenericArray::from_slice(key.encryption()));
        Self { key, cipher }
    }

    /// Opens `value`, a private cookie of [`SEALED_ID_LEN`] characters named `name`: `None`
    /// when it does not open (bad base64, too short, tampered, another key or name, not
    /// UTF-8), as the crate's `PrivateJar::decrypt` answers; otherwise whether its plaintext
    /// is a session id.
    pub(crate) fn open_sealed_id(
        &self,
        name: &str,
        value: &str,
    ) -> Option<Result<SessionId, InvalidSessionId>> {
        debug_assert_eq!(value.len(), SEALED_ID_LEN);
        let mut buf = [0u8; DECODED_MAX];
        let len = BASE64_STANDARD.decode_slice(value, &mut buf).ok()?;
        // The crate refuses `NONCE_LEN` bytes or fewer, then lets AES-GCM refuse anything
        // without room for a tag; both are "does not open".
        if len < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = buf[..len].split_at_mut(NONCE_LEN);
        let (message, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        self.cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                name.as_bytes(),
                message,
                GenericArray::from_slice(tag),
            )
            .ok()?;
        let text = std::str::from_utf8(message).ok()?;
        Some(SessionId::parse(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sizes_are_those_of_a_sealed_id() {
        assert_eq!(SessionId::generate().as_str().len(), SessionId::LEN);
        assert_eq!(SEALED_ID_LEN, 96);
        let mut jar = cookie::CookieJar::new();
        let key = Key::generate();
        jar.private_mut(&key).add(cookie::Cookie::new(
            "id",
            SessionId::generate().as_str().to_owned(),
        ));
        assert_eq!(jar.get("id").unwrap().value().len(), SEALED_ID_LEN);
    }
}
