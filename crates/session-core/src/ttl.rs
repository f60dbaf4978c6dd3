//! The TTL rule, in one place: which expiry a stored session gets.
//!
//! Three callers need it and must agree: the store on every write and touch, the
//! multi-backend when a load moves a session into the write backends, and the file-store
//! migration. Before this module each had its own copy (`effective_ttl`, `copy_ttl`,
//! `default_ttl`), and the longest TTL was checked twice.

use std::time::Duration;

/// The longest expiry ever set: 100 years. Redis refuses an expiry whose absolute time
/// (now + TTL, in milliseconds) overflows, and a framework may hand over an absurd TTL, so
/// `session_redis_key_expire` is refused above this and backends cap other TTLs to it.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `session_redis_key_expire` as a rule.
///
/// 1. `key_expire` above 0 wins: every write sets that TTL.
/// 2. Otherwise the TTL the framework supplies (actix-session's `max_age`/TTL, the axum
///    layer's expiry) applies.
/// 3. Otherwise the session is stored without expiry.
///
/// ```
/// use std::time::Duration;
/// use session_core::TtlRule;
///
/// let hour = Some(Duration::from_secs(3600));
/// let forced = TtlRule::new(Some(Duration::from_secs(60)));
/// assert_eq!(forced.resolve(hour), Some(Duration::from_secs(60)));
/// assert_eq!(TtlRule::default().resolve(hour), hour);
/// assert_eq!(TtlRule::default().resolve(None), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TtlRule {
    key_expire: Option<Duration>,
}

impl TtlRule {
    /// The rule for `session_redis_key_expire`: `None` or zero means "the framework decides".
    pub fn new(key_expire: Option<Duration>) -> Self {
        Self {
            key_expire: key_expire.filter(|ttl| !ttl.is_zero()),
        }
    }

    /// `session_redis_key_expire`, when set.
    pub fn key_expire(&self) -> Option<Duration> {
        self.key_expire
    }

    /// The expiry a write or touch sets, given the framework's TTL (zero counts as none).
    pub fn resolve(&self, framework_ttl: Option<Duration>) -> Option<Duration> {
        self.key_expire
            .or(framework_ttl.filter(|ttl| !ttl.is_zero()))
    }

    /// The expiry of a session moved from one backend into another (the file-store
    /// migration, a multi-backend load): the refresh the request asked for (`touch`, already
    /// resolved, when the load slides the expiry), else what the session had left where it
    /// was (`remaining`, when the source knows it), else `key_expire`. A move never makes a
    /// session live longer than it would have where it was.
    pub fn for_move(
        &self,
        touch: Option<Duration>,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        touch.or(remaining).or(self.key_expire)
    }
}

/// `ttl` in whole milliseconds for a backend that stores a deadline: never 0 (which Redis
/// reads as "delete now"), never above [`MAX_TTL`].
#[cfg(any(feature = "redis", feature = "file"))]
pub(crate) fn millis(ttl: Duration) -> u64 {
    let max = MAX_TTL.as_millis() as u64;
    u64::try_from(ttl.as_millis()).unwrap_or(max).clamp(1, max)
}

/// The key under which a session keeps its own expiry, written by the axum layer
/// (`session_axum::Expiry`): `{"at_unix":N}` (a deadline, in seconds since the epoch),
/// `{"inactivity_secs":N}` or `"on_session_end"`. Defined here so that every framework crate
/// that serves a shared session honours its deadline ([`past_deadline`]).
pub const EXPIRY_KEY: &str = "__expiry";

/// Whether `json`, a session's [`EXPIRY_KEY`] value, is a deadline that has passed. Such a
/// session is over whatever TTL the store kept: `session_redis_key_expire` decides the TTL of
/// every write, and an actix-web service's writes to a shared session reset it. Anything else
/// (another kind of expiry, a value this library did not write) is no deadline.
///
/// Read as [`OwnExpiry::parse`] reads the value (a JSON object; a key written twice counts
/// as its last), but stricter: any `at_unix` in the past ends the session, beside an
/// `inactivity_secs` too and before the earliest date [`OwnExpiry`] takes, so that a value
/// this library did not write never keeps a session its deadline ended.
///
/// ```
/// use session_core::past_deadline;
///
/// assert!(past_deadline(r#"{"at_unix":0}"#));
/// assert!(!past_deadline(r#"{"at_unix":99999999999}"#));
/// assert!(!past_deadline(r#"{"inactivity_secs":60}"#));
/// assert!(!past_deadline("forever"));
/// ```
pub fn past_deadline(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json).is_ok_and(|value| {
        value
            .get("at_unix")
            .and_then(serde_json::Value::as_i64)
            .is_some_and(|at| at <= unix_now())
    })
}

/// Seconds since the Unix epoch, as the [`EXPIRY_KEY`] deadlines count them.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The earliest deadline an [`EXPIRY_KEY`] value can hold (-9999-01-01T00:00:00Z), and the
/// latest (9999-12-31T23:59:59Z): the dates `time`'s `OffsetDateTime` holds, which the axum
/// layer's `Expiry::AtDateTime` is. A number outside is no date this library wrote.
pub const DEADLINE_RANGE: std::ops::RangeInclusive<i64> = -377_705_116_800..=253_402_300_799;

/// A session's own expiry as its [`EXPIRY_KEY`] value states it, read one way for every
/// framework crate: the axum layer's `Expiry` and the actix store's [`own_ttl`] are this
/// reading, so a session gets one lifetime whichever service the browser reaches. Each
/// framework once read the value its own way (the axum layer as a `serde_json::Value`, the
/// actix store with a derived struct): a key written twice, a wrong-typed `inactivity_secs`
/// beside an `at_unix`, an array, nesting too deep for one parser, or a date past year
/// 9999 gave one framework's TTL through one and another through the other (a day against
/// 60 seconds; the framework's day against 100 years).
///
/// ```
/// use session_core::OwnExpiry;
///
/// assert_eq!(OwnExpiry::parse(r#""on_session_end""#), Some(OwnExpiry::OnSessionEnd));
/// assert_eq!(OwnExpiry::parse(r#"{"inactivity_secs":60}"#), Some(OwnExpiry::Inactivity(60)));
/// assert_eq!(OwnExpiry::parse(r#"{"at_unix":0}"#), Some(OwnExpiry::At(0)));
/// // A key written twice counts as its last, as JSON objects read.
/// assert_eq!(
///     OwnExpiry::parse(r#"{"inactivity_secs":60,"inactivity_secs":120}"#),
///     Some(OwnExpiry::Inactivity(120))
/// );
/// // An `inactivity_secs` that is no whole number of seconds is not there.
/// assert_eq!(OwnExpiry::parse(r#"{"inactivity_secs":1.5,"at_unix":0}"#), Some(OwnExpiry::At(0)));
/// assert_eq!(OwnExpiry::parse("[60,null]"), None);
/// assert_eq!(OwnExpiry::parse(r#"{"at_unix":99999999999999}"#), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnExpiry {
    /// `"on_session_end"`: the cookie ends with the browser; the framework's TTL applies.
    OnSessionEnd,
    /// `{"inactivity_secs":N}`: after N seconds without a write (or a sliding read).
    Inactivity(u64),
    /// `{"at_unix":N}`: at N seconds since the epoch, within [`DEADLINE_RANGE`].
    At(i64),
}

impl OwnExpiry {
    /// Reads an [`EXPIRY_KEY`] value: a JSON text within serde_json's nesting limit; the
    /// string `"on_session_end"`; else an object whose `inactivity_secs` is a whole number
    /// of seconds (0 to `u64::MAX`), else whose `at_unix` is a whole number within
    /// [`DEADLINE_RANGE`]. `None` for anything else: the framework's settings apply.
    pub fn parse(json: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        if value == "on_session_end" {
            return Some(Self::OnSessionEnd);
        }
        if let Some(secs) = value
            .get("inactivity_secs")
            .and_then(serde_json::Value::as_u64)
        {
            return Some(Self::Inactivity(secs));
        }
        let at = value.get("at_unix").and_then(serde_json::Value::as_i64)?;
        DEADLINE_RANGE.contains(&at).then_some(Self::At(at))
    }

    /// The store TTL this expiry asks for: `None` for [`OnSessionEnd`](Self::OnSessionEnd)
    /// (the framework's), else the inactivity period or the time left until the deadline,
    /// at least a second (a TTL of zero is the TTL rule's "no expiry", never what a
    /// deadline means) and at most [`MAX_TTL`].
    pub fn ttl(self) -> Option<Duration> {
        let ttl = match self {
            Self::OnSessionEnd => return None,
            Self::Inactivity(secs) => Duration::from_secs(secs),
            Self::At(at) => u64::try_from(at)
                .ok()
                .and_then(|at| {
                    let deadline = std::time::UNIX_EPOCH + Duration::from_secs(at);
                    deadline.duration_since(std::time::SystemTime::now()).ok()
                })
                .unwrap_or_default(),
        };
        Some(ttl.clamp(Duration::from_secs(1), MAX_TTL))
    }
}

/// The store TTL a session's own expiry asks for, from its [`EXPIRY_KEY`] value `json`
/// ([`OwnExpiry::parse`], then [`OwnExpiry::ttl`]): an inactivity period
/// (`{"inactivity_secs":N}`) is that period, a deadline (`{"at_unix":N}`) the time left
/// until it; at least a second either way and at most [`MAX_TTL`]. `None` for anything else
/// (`"on_session_end"`, a value this library did not write): the framework's TTL applies.
/// What the axum layer gives such a session on every write and sliding load, and what the
/// actix store must give it too when it serves the same session: actix-session knows only
/// its own `session_ttl`.
///
/// ```
/// use std::time::Duration;
/// use session_core::own_ttl;
///
/// assert_eq!(own_ttl(r#"{"inactivity_secs":60}"#), Some(Duration::from_secs(60)));
/// assert_eq!(own_ttl(r#"{"inactivity_secs":0}"#), Some(Duration::from_secs(1)));
/// assert_eq!(own_ttl(r#"{"at_unix":0}"#), Some(Duration::from_secs(1)));
/// assert_eq!(own_ttl(r#""on_session_end""#), None);
/// assert_eq!(own_ttl("forever"), None);
/// let far = format!(r#"{{"inactivity_secs":{}}}"#, u64::MAX);
/// assert_eq!(own_ttl(&far), Some(session_core::MAX_TTL));
/// ```
pub fn own_ttl(json: &str) -> Option<Duration> {
    OwnExpiry::parse(json)?.ttl()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "redis")]
    #[test]
    fn millis_are_bounded() {
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), MAX_TTL.as_millis() as u64);
    }

    #[test]
    fn a_move_keeps_what_was_left() {
        let rule = TtlRule::new(Some(Duration::from_secs(60)));
        let left = Some(Duration::from_secs(5));
        assert_eq!(rule.for_move(None, left), left);
        assert_eq!(rule.for_move(None, None), Some(Duration::from_secs(60)));
        let touch = Some(Duration::from_secs(60));
        assert_eq!(rule.for_move(touch, left), touch);
        assert_eq!(TtlRule::default().for_move(None, None), None);
    }
}
