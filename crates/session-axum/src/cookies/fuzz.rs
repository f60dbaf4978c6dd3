//! Property tests of the cookie opener (issue 9, "fuzz the decoders that take outside input"):
//! whatever a client puts in its `Cookie` headers, finding and opening our cookie never panics,
//! keeps at most [`MAX_CANDIDATES`] candidates, and yields an id only for a value sealed with
//! our key, under our cookie name, around a valid id.
//!
//! The opener is crate-private, so these run as unit tests; they use the crate's own sealing
//! ([`CookieConfig::seal`]) so that a valid cookie is exactly what a browser would send back.
//! Case counts are bounded so the whole module runs in a few seconds (see docs/security.md).

use super::*;
use proptest::prelude::*;

fn config_with(key: Key) -> CookieConfig {
    CookieConfig::new(key, &session_core::plan::CookiePlan::default())
}

/// One fixed test key, so that proptest's shrinking replays the same cookies.
fn test_key() -> Key {
    Key::from(&[7u8; 64])
}

fn other_key() -> Key {
    Key::from(&[9u8; 64])
}

/// The `name=value` pair a browser sends back for the `Set-Cookie` of `id` (still percent-encoded).
fn pair_of(config: &CookieConfig, id: &SessionId) -> String {
    let header = config
        .seal(id, config.lifetime())
        .expect("a sealed cookie is a valid header");
    let text = header.to_str().expect("ASCII");
    text.split(';').next().expect("name=value").to_owned()
}

/// The sealed value of `pair` as the opener sees it (percent-decoded).
fn decoded_value(pair: &str) -> String {
    Cookie::parse_encoded(pair.to_owned())
        .expect("our own cookie parses")
        .value()
        .to_owned()
}

/// Seals any text (not only ids) under `name` with `key`, as the private jar does.
fn seal_text(key: &Key, name: &str, text: &str) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(name.to_owned(), text.to_owned()));
    jar.get(name).expect("just added").value().to_owned()
}

/// Finds and opens our cookie in one header of `bytes`; `None` when the bytes are not a valid
/// header value at all (the HTTP stack refuses those before the layer runs).
fn open_header_bytes(config: &CookieConfig, bytes: &[u8]) -> Option<Option<SessionId>> {
    let value = HeaderValue::from_bytes(bytes).ok()?;
    let mut headers = HeaderMap::new();
    headers.append(header::COOKIE, value);
    Some(open_headers(config, &headers))
}

fn open_headers(config: &CookieConfig, headers: &HeaderMap) -> Option<SessionId> {
    let candidates = config.sealed_values(headers);
    assert!(candidates.values.len() <= MAX_CANDIDATES);
    config.open(&candidates).map(|o| o.id)
}

fn open_value(config: &CookieConfig, value: String) -> Option<SessionId> {
    config
        .open(&Candidates {
            values: vec![value],
            skipped: 0,
        })
        .map(|o| o.id)
}

/// Text that looks like a `Cookie` header: our name and others, separators, percent escapes,
/// base64 characters, quotes, spaces and a few non-ASCII characters.
fn cookieish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("id=".to_owned()),
            Just("id".to_owned()),
            Just("; ".to_owned()),
            Just(";".to_owned()),
            Just("=".to_owned()),
            Just("\"".to_owned()),
            Just(" ".to_owned()),
            "%[0-9a-fA-FgG]{0,2}",
            "[A-Za-z0-9+/=]{0,60}",
            "[a-z]{1,4}=[^;]{0,10}",
            "[é€\u{0}\u{7f}]",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A value that is not a valid seal by our key of a valid id under our name.
fn bad_value(id: &SessionId) -> impl Strategy<Value = String> {
    let id_text = id.as_str().to_owned();
    let good = seal_text(&test_key(), "id", id.as_str());
    prop_oneof![
        "[A-Za-z0-9+/=]{0,80}",
        ".{0,40}",
        Just(id_text.clone()),
        // Our key and name, but not an id.
        ".{0,50}".prop_map(|text| seal_text(&test_key(), "id", &text)),
        "[A-Za-z0-9_-]{42,44}".prop_filter_map("not a valid id", |text| {
            SessionId::parse(&text)
                .is_err()
                .then(|| seal_text(&test_key(), "id", &text))
        }),
        // A valid id, but another key or another cookie name (the name is authenticated).
        Just(seal_text(&other_key(), "id", &id_text)),
        Just(seal_text(&test_key(), "sid", &id_text)),
        // A valid seal, truncated.
        (0..good.len()).prop_map(move |n| good[..n].to_owned()),
    ]
}

/// The candidates as the cookie crate finds them, what `sealed_values` did before it split
/// the header by hand: the oracle of `candidates_are_the_cookie_crates`. Each `;`-separated
/// pair that is UTF-8 goes to the crate: a pair that is not (a cookie of another name with
/// a non-ASCII value, sent as raw bytes) hides no other cookie of the header.
fn crate_candidates(config: &CookieConfig, headers: &HeaderMap) -> (Vec<String>, usize) {
    let ours: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b';'))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == config.name)
        .map(|cookie| cookie.value().to_owned())
        .collect();
    let skipped = ours.len().saturating_sub(MAX_CANDIDATES);
    (ours.into_iter().take(MAX_CANDIDATES).collect(), skipped)
}

/// Cookie-like text whose names may be ours percent-encoded in part (`%69d`, `i%64`), with
/// spaces and tabs around names and values, escapes that do not decode to UTF-8, and runs of
/// more cookies of our name than `MAX_CANDIDATES` keeps; the pieces are joined with or
/// without a `;`.
fn cookieish_with_encoded_names() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                cookieish(),
                Just("%69d=".to_owned()),
                Just("i%64=".to_owned()),
                Just("%69%64 =".to_owned()),
                Just(" \tid\t= ".to_owned()),
                Just("id=%FF".to_owned()),
                Just("%FF=x".to_owned()),
                Just("=v".to_owned()),
                "id=[A-Za-z0-9%+/=\" \t]{0,20}",
                prop::collection::vec("[a-z0-9%]{0,3}", MAX_CANDIDATES + 1..3 * MAX_CANDIDATES)
                    .prop_map(|values| values.iter().map(|v| format!("id={v};")).collect()),
            ],
            any::<bool>(),
        ),
        0..8,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(part, separated)| if separated { part + ";" } else { part })
            .collect()
    })
}

/// A cookie of another name whose value is not ASCII (sent by browsers as its raw bytes:
/// UTF-8, or Latin-1 from older code) does not hide ours in the same header, before or after
/// it; a pair that is not UTF-8 is skipped alone.
#[test]
fn a_non_ascii_cookie_beside_ours_hides_nothing() {
    let config = config_with(test_key());
    for other in ["lang=fran\u{e7}ais".as_bytes(), &b"lang=fran\xe7ais"[..]] {
        for ours_first in [true, false] {
            let mut bytes = Vec::new();
            if ours_first {
                bytes.extend_from_slice(b"id=sealed; ");
                bytes.extend_from_slice(other);
            } else {
                bytes.extend_from_slice(other);
                bytes.extend_from_slice(b"; id=sealed");
            }
            let mut headers = HeaderMap::new();
            headers.append(header::COOKIE, HeaderValue::from_bytes(&bytes).unwrap());
            assert_eq!(config.sealed_values(&headers).values, ["sealed"]);
        }
    }
}

/// Past the limit of candidates, by hand as well as in the property test (whose runs of our
/// name do not always land in one header): the same kept values and skipped count as the
/// cookie crate, in one header and over several.
#[test]
fn candidates_past_the_limit_are_the_cookie_crates() {
    let config = config_with(test_key());
    let pairs: Vec<String> = (0..3 * MAX_CANDIDATES)
        .map(|i| format!("id=v{i}"))
        .collect();
    for split in [false, true] {
        let mut headers = HeaderMap::new();
        if split {
            for pair in &pairs {
                headers.append(header::COOKIE, HeaderValue::from_str(pair).unwrap());
            }
        } else {
            let joined = pairs.join("; other=1; ");
            headers.append(header::COOKIE, HeaderValue::from_str(&joined).unwrap());
        }
        let ours = config.sealed_values(&headers);
        let (values, skipped) = crate_candidates(&config, &headers);
        assert_eq!(skipped, 2 * MAX_CANDIDATES);
        assert_eq!((ours.values, ours.skipped), (values, skipped));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The hand split of `sealed_values` finds the same values of our name as the cookie
    /// crate's parser, in the same order, with the same count beyond the limit, in one header
    /// or spread over several.
    #[test]
    fn candidates_are_the_cookie_crates(
        texts in prop::collection::vec(cookieish_with_encoded_names(), 1..4),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let config = config_with(test_key());
        let mut headers = HeaderMap::new();
        for text in &texts {
            if let Ok(value) = HeaderValue::from_str(text) {
                headers.append(header::COOKIE, value);
            }
        }
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            headers.append(header::COOKIE, value);
        }
        let ours = config.sealed_values(&headers);
        let (values, skipped) = crate_candidates(&config, &headers);
        prop_assert_eq!(&ours.values, &values);
        prop_assert_eq!(ours.skipped, skipped);
    }

    /// A value of a sealed id's length opens as the cookie crate opens it, with each key:
    /// the same id, the same "opens but is no id", the same refusal.
    #[test]
    fn sealed_ids_open_as_the_cookie_crate_opens_them(value in sealed_id_sized()) {
        let config = config_with(test_key());
        prop_assert_eq!(value.len(), private::SEALED_ID_LEN);
        for key in [test_key(), other_key()] {
            let fast = CookieKey::new(key.clone())
                .open_sealed_id("id", &value)
                .map(Result::ok);
            let by_crate = config
                .unseal(&key, &value)
                .map(|text| SessionId::parse(&text).ok());
            prop_assert_eq!(fast, by_crate);
        }
    }

    /// `percent_decoded` decodes as the crate's `percent_decode_str(..).decode_utf8()`.
    #[test]
    fn percent_decoding_is_the_crates(text in percentish()) {
        let expected = percent_decode_str(&text).decode_utf8().ok();
        prop_assert_eq!(percent_decoded(&text), expected);
    }

    /// A refreshed cookie from the template is the text the crate writes, whatever the
    /// attributes, the lifetime and the value (base64 or not). (That the layer's `with_*`
    /// methods refresh the template: `tests/layer.rs`, `custom_cookie_attributes`.)
    #[test]
    fn reissued_cookies_are_the_crates(
        name in "[A-Za-z0-9_=;% -]{0,8}",
        path in prop::option::of("/[A-Za-z0-9/=;% -]{0,8}"),
        domain in prop::option::of("[a-z.=;]{0,8}"),
        flags in any::<(bool, bool, u8)>(),
        max_age in prop::option::of(0u64..100_000_000),
        lifetime in prop::option::of((prop::option::of(0u64..100_000_000), any::<bool>())),
        value in prop_oneof!["[A-Za-z0-9+/=_-]{0,120}", ".{0,20}", "[A-Za-z0-9+/=%;, _-]{0,20}"],
    ) {
        let (secure, http_only, same_site) = flags;
        let mut config = config_with(test_key());
        config.name = name;
        config.path = path.unwrap_or_default();
        config.domain = domain;
        config.secure = secure;
        config.http_only = http_only;
        config.same_site = [SameSite::Lax, SameSite::Strict, SameSite::None][usize::from(same_site % 3)];
        config.max_age = max_age.map(std::time::Duration::from_secs);
        config.refresh_template();
        let lifetime = match lifetime {
            None => config.lifetime(),
            Some((max_age, expires)) => Lifetime {
                max_age: max_age.map(std::time::Duration::from_secs),
                expires: expires.then(|| cookie::time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()),
            },
        };
        let expected = header_value(&formatted(config.with_lifetime(value.clone(), lifetime).encoded()));
        prop_assert_eq!(config.reissue(&value, lifetime), expected);
    }

    /// Random bytes as a `Cookie` header: never a panic, never an id.
    #[test]
    fn random_header_bytes_open_nothing(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let config = config_with(test_key());
        if let Some(opened) = open_header_bytes(&config, &bytes) {
            prop_assert_eq!(opened, None);
        }
    }

    /// Cookie-like text (separators, percent escapes, quotes, base64): never an id.
    #[test]
    fn random_header_text_opens_nothing(text in cookieish()) {
        let config = config_with(test_key());
        if let Some(opened) = open_header_bytes(&config, text.as_bytes()) {
            prop_assert_eq!(opened, None);
        }
    }

    /// Any text sealed by our key is still refused unless it is a valid id.
    #[test]
    fn sealed_non_ids_open_nothing(text in ".{0,100}") {
        prop_assume!(SessionId::parse(&text).is_err());
        let config = config_with(test_key());
        prop_assert_eq!(open_value(&config, seal_text(&test_key(), "id", &text)), None);
    }

    /// One edit (cut, replace, insert) of a valid sealed value (as percent-decoded): never an id.
    /// AES-GCM authenticates every byte, and the base64 decoding is strict, so no edit survives.
    #[test]
    fn edited_seals_open_nothing_else(edit in 0..3usize, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let config = config_with(test_key());
        let id = SessionId::generate();
        let mut value = decoded_value(&pair_of(&config, &id)).into_bytes();
        let i = at.index(value.len());
        match edit {
            0 => value.truncate(i),
            1 => { prop_assume!(value[i] != byte); value[i] = byte }
            _ => value.insert(i, byte),
        }
        let Ok(value) = String::from_utf8(value) else { return Ok(()) };
        let opened = open_value(&config, value);
        prop_assert!(opened.is_none(), "an edited seal opened");
    }

    /// The same valid cookie, with any of its characters percent-encoded (either hex case), opens
    /// to its id: the decoding is actix-web's, so both frameworks read the same cookie.
    #[test]
    fn percent_encoded_seals_open(mask in prop::collection::vec(0..3u8, 200)) {
        let config = config_with(test_key());
        let id = SessionId::generate();
        let value = decoded_value(&pair_of(&config, &id));
        let encoded: String = value
            .bytes()
            .zip(mask.iter().cycle())
            .map(|(b, m)| match m {
                0 => char::from(b).to_string(),
                1 => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect();
        let opened = open_header_bytes(&config, format!("id={encoded}").as_bytes());
        prop_assert_eq!(opened, Some(Some(id)));
    }

    /// Many cookies: other names, bad values of our name, and at most one valid one. An id comes
    /// back exactly when the valid one is among the first MAX_CANDIDATES of our name, and it is
    /// that id; split over several `Cookie` headers or one, the answer is the same.
    #[test]
    fn many_cookies_give_only_the_valid_one(
        seed in prop::collection::vec(any::<bool>(), 0..24),
        valid_at in prop::option::of(any::<prop::sample::Index>()),
        split in any::<bool>(),
        bad in prop::collection::vec(bad_value(&SessionId::generate()), 24),
    ) {
        let config = config_with(test_key());
        let id = SessionId::generate();
        let mut pairs: Vec<String> = seed
            .iter()
            .zip(&bad)
            .map(|(ours, value)| {
                let name = if *ours { "id" } else { "other" };
                Cookie::new(name, value.clone()).encoded().to_string()
            })
            .collect();
        let mut expected = None;
        if let Some(at) = valid_at {
            let at = at.index(pairs.len() + 1);
            let ours_before = seed[..at].iter().filter(|ours| **ours).count();
            if ours_before < MAX_CANDIDATES {
                expected = Some(id.clone());
            }
            pairs.insert(at, pair_of(&config, &id));
        }
        let mut headers = HeaderMap::new();
        if split {
            for pair in &pairs {
                headers.append(header::COOKIE, HeaderValue::from_str(pair).unwrap());
            }
        } else if !pairs.is_empty() {
            headers.append(header::COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
        }
        prop_assert_eq!(open_headers(&config, &headers), expected);
    }
}

/// Seals any bytes (not only UTF-8 text) under `name` with `key`, in the private jar's format
/// (base64 of nonce | ciphertext | tag, the name as associated data): what `seal_text`
/// cannot make, a seal whose plaintext is not UTF-8.
fn seal_bytes(key: &Key, name: &str, bytes: &[u8]) -> String {
    use aes_gcm::{
        aead::{generic_array::GenericArray, AeadInPlace, KeyInit},
        Aes256Gcm,
    };
    use base64::{prelude::BASE64_STANDARD, Engine as _};
    let cipher = Aes256Gcm::new(GenericArray::from_slice(key.encryption()));
    let nonce = [3u8; 12];
    let mut data = nonce.to_vec();
    let mut message = bytes.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(
            GenericArray::from_slice(&nonce),
            name.as_bytes(),
            &mut message,
        )
        .expect("sealed");
    data.extend_from_slice(&message);
    data.extend_from_slice(&tag);
    BASE64_STANDARD.encode(data)
}

/// Values of a sealed id's length ([`private::SEALED_ID_LEN`]), the ones `open_sealed_id`
/// opens instead of the cookie crate: seals of ids, of other text and of bytes that are not
/// UTF-8 (42 to 44 bytes: every length that base64 makes 96 characters of), under our key,
/// another key and another name; the same with one to three characters replaced (by base64
/// characters, padding, others, or a character of two or three bytes, the value cut back to
/// its length); and random base64 with each padding.
fn sealed_id_sized() -> impl Strategy<Value = String> {
    let seal = |key: Key, name: &'static str| {
        "[ -~]{42,44}|[a-zé]{21,43}|[A-Za-z0-9_-]{42,44}".prop_filter_map(
            "a seal of an id's length",
            move |text| {
                let sealed = seal_text(&key, name, &text);
                (sealed.len() == private::SEALED_ID_LEN).then_some(sealed)
            },
        )
    };
    let not_utf8 = |key: Key| {
        prop::collection::vec(any::<u8>(), 42..=44).prop_filter_map(
            "bytes that are not UTF-8",
            move |bytes| {
                std::str::from_utf8(&bytes)
                    .is_err()
                    .then(|| seal_bytes(&key, "id", &bytes))
            },
        )
    };
    let seals = prop_oneof![
        4 => Just(()).prop_map(|_| seal_text(&test_key(), "id", SessionId::generate().as_str())),
        1 => Just(()).prop_map(|_| seal_text(&other_key(), "id", SessionId::generate().as_str())),
        1 => Just(()).prop_map(|_| seal_text(&test_key(), "sid", SessionId::generate().as_str())),
        3 => seal(test_key(), "id"),
        1 => seal(other_key(), "id"),
        2 => not_utf8(test_key()),
    ];
    let edited = (
        seals.clone(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), "[A-Za-z0-9+/=]|[%_ -]|[é€]"),
            1..4,
        ),
    )
        .prop_map(|(sealed, edits)| {
            let mut chars: Vec<char> = sealed.chars().collect();
            for (at, with) in edits {
                let i = at.index(chars.len());
                chars[i] = with.chars().next().expect("one character");
            }
            // A character of several bytes made the value longer: cut it back.
            let mut value: String = chars.into_iter().collect();
            while value.len() > private::SEALED_ID_LEN {
                value.pop();
            }
            while value.len() < private::SEALED_ID_LEN {
                value.push('A');
            }
            value
        });
    prop_oneof![
        3 => seals,
        4 => edited,
        1 => "[A-Za-z0-9+/]{94}(==|[A-Za-z0-9+/]=|[A-Za-z0-9+/]{2})",
    ]
}

/// Text with percent escapes: valid and broken ones, escapes that are not UTF-8 alone or
/// together, and plain characters between them.
fn percentish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("%".to_owned()),
            "%[0-9a-fA-FgG]{0,2}",
            "[0-9a-fA-FgG]",
            Just("%C3%A9".to_owned()),
            Just("%C3".to_owned()),
            Just("%FF".to_owned()),
            Just("é".to_owned()),
            "[A-Za-z0-9+/=]{0,5}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Huge values and headers (up to 256 KiB, beyond what HTTP servers accept by default): no
    /// panic, no id, and the candidates stay bounded however many cookies of our name there are.
    #[test]
    fn huge_values_open_nothing(len in 4096..262_144usize, fill in "[A-Za-z0-9+/=%]", repeat in any::<bool>()) {
        let config = config_with(test_key());
        let header = if repeat {
            // Tens of thousands of cookies of our name in one header.
            vec![format!("id={fill}"); len / 5].join("; ")
        } else {
            format!("id={}", fill.repeat(len))
        };
        if let Some(opened) = open_header_bytes(&config, header.as_bytes()) {
            prop_assert_eq!(opened, None);
        }
    }
}
