//! `TowerStore` (feature `tower-sessions`) under tower-sessions' own `SessionManagerLayer`.
//!
//! * `routes_*`: tower-sessions' route tests (their `tests/common/mod.rs`, 0.14), re-expressed
//!   over our memory store, file store and real Redis, each also checking what our store holds.
//! * `contract_*`: their `SessionStore` trait's contract, called directly, on the same three.
//! * `over_*`: one journey (insert, read, cycle the id, flush) through the layer on Sentinel,
//!   Cluster, the weighted pool and the multi-backends, with `session_redis_key_expire`.
//! * `whole_record_save_costs_against_changed_key_records`: a measurement on real Redis,
//!   printed (run with `--nocapture`), never timed.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration as StdDuration,
};

mod common;

use axum::{routing::get, Router};
use common::{from_env, local, multi};
use cookie::Cookie;
use session_axum::{TowerScopeLayer, TowerStore};
use session_core::testing::probe::{Fault, Op, ProbeBackend};
use session_core::{backends::file::FileBackend, SessionConfig, SessionState, SessionStore};
use session_testkit::{
    http::{request, Answer},
    ClusterTopology, RedisServer, SentinelTopology,
};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;
use tower_sessions::{
    session::{Id, Record},
    Expiry, Session, SessionManagerLayer, SessionStore as _,
};

/// A store of ours and what keeps it alive (a Redis server, a directory).
struct Fixture {
    store: SessionStore,
    redis: Option<RedisServer>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn memory() -> Fixture {
        Fixture {
            store: SessionStore::memory(),
            redis: None,
            _dir: None,
        }
    }

    fn file() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("sessions")).unwrap();
        Fixture {
            store: SessionStore::new(backend),
            redis: None,
            _dir: Some(dir),
        }
    }

    async fn redis() -> Fixture {
        Self::redis_with(&[]).await
    }

    async fn redis_with(options: &[(&str, &str)]) -> Fixture {
        let redis = RedisServer::start();
        let mut builder = SessionConfig::builder().set("session_redis_url", &redis.url());
        for (name, value) in options {
            builder = builder.set(name, value);
        }
        let store = SessionStore::from_config(&builder.build().unwrap())
            .await
            .unwrap();
        Fixture {
            store,
            redis: Some(redis),
            _dir: None,
        }
    }

    fn tower(&self) -> TowerStore {
        TowerStore::new(self.store.clone())
    }

    /// What our store holds for a tower-sessions cookie value, through our own API.
    async fn stored(&self, cookie_value: &str) -> Option<(SessionState, Option<StdDuration>)> {
        let id: Id = cookie_value.parse().expect("a tower-sessions id");
        self.store
            .load_with_ttl(&TowerStore::session_id(&id))
            .await
            .unwrap()
    }
}

/// tower-sessions' test routes, re-expressed.
fn routes() -> Router {
    Router::new()
        .route("/", get(|_: Session| async { "hello" }))
        .route(
            "/insert",
            get(|s: Session| async move { s.insert("foo", 42).await.unwrap() }),
        )
        .route(
            "/get",
            get(|s: Session| async move { s.get::<usize>("foo").await.unwrap().unwrap().to_string() }),
        )
        .route(
            "/get_value",
            get(|s: Session| async move { format!("{:?}", s.get_value("foo").await.unwrap()) }),
        )
        .route(
            "/remove_value",
            get(|s: Session| async move {
                s.remove_value("foo").await.unwrap();
            }),
        )
        .route(
            "/cycle_id",
            get(|s: Session| async move { s.cycle_id().await.unwrap() }),
        )
        .route(
            "/flush",
            get(|s: Session| async move { s.flush().await.unwrap() }),
        )
        .route(
            "/set_expiry",
            get(|s: Session| async move {
                s.set_expiry(Some(Expiry::AtDateTime(
                    OffsetDateTime::now_utc() + Duration::days(1),
                )));
            }),
        )
        .route(
            "/remove_expiry",
            get(|s: Session| async move { s.set_expiry(Some(Expiry::OnSessionEnd)) }),
        )
}

/// The layer as their tests configure it: `Secure`, expiry on inactivity when given, a domain
/// when given.
fn app(fx: &Fixture, inactivity: Option<Duration>, domain: Option<&str>) -> Router {
    let mut layer = SessionManagerLayer::new(fx.tower()).with_secure(true);
    if let Some(inactivity) = inactivity {
        layer = layer.with_expiry(Expiry::OnInactivity(inactivity));
    }
    if let Some(domain) = domain {
        layer = layer.with_domain(domain.to_owned());
    }
    routes().layer(layer)
}

async fn send(app: &Router, uri: &str, cookie: Option<&str>) -> Answer {
    let res = app
        .clone()
        .oneshot(request("GET", uri, cookie, None))
        .await
        .unwrap();
    Answer::read(res).await
}

/// The first `Set-Cookie` of an answer, parsed.
fn set_cookie(answer: &Answer) -> Cookie<'static> {
    let header = answer
        .set_cookie
        .first()
        .unwrap_or_else(|| panic!("no Set-Cookie: {answer:?}"));
    Cookie::parse_encoded(header.clone()).unwrap()
}

fn pair(cookie: &Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}

/// `actual` is `expected` give or take a minute (requests on a busy machine take time; this
/// checks which expiry was chosen, not how fast anything ran).
fn about(actual: Duration, expected: Duration) -> bool {
    (actual - expected).abs() <= Duration::minutes(1)
}

fn about_std(actual: Option<StdDuration>, expected: Duration) -> bool {
    actual.is_some_and(|a| about(Duration::try_from(a).unwrap(), expected))
}

/// A fresh session through `/insert`: its cookie.
async fn inserted(app: &Router) -> Cookie<'static> {
    let answer = send(app, "/insert", None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    set_cookie(&answer)
}

mod routes {
    //! Each of tower-sessions' route tests, over one store.
    use super::*;

    pub async fn no_session_set(fx: Fixture) {
        let answer = send(&app(&fx, Some(Duration::hours(1)), None), "/", None).await;
        assert!(answer.set_cookie.is_empty(), "{answer:?}");
    }

    pub async fn bogus_session_cookie(fx: Fixture) {
        let bogus = "AAAAAAAAAAAAAAAAAAAAAA";
        let app = app(&fx, Some(Duration::hours(1)), None);
        let answer = send(&app, "/insert", Some(&format!("id={bogus}"))).await;
        assert_eq!(answer.status, 200);
        let cookie = set_cookie(&answer);
        assert_ne!(cookie.value(), bogus);
        // The data went under the new id only: a client cannot choose its id.
        assert!(fx.stored(bogus).await.is_none());
        assert!(fx.stored(cookie.value()).await.is_some());
    }

    pub async fn malformed_session_cookie(fx: Fixture) {
        let app = app(&fx, Some(Duration::hours(1)), None);
        let answer = send(&app, "/", Some("id=malformed")).await;
        assert_eq!(answer.status, 200);
        assert_ne!(set_cookie(&answer).value(), "malformed");
    }

    pub async fn insert_session(fx: Fixture) {
        let cookie = inserted(&app(&fx, Some(Duration::hours(1)), None)).await;
        assert_eq!(cookie.name(), "id");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
        assert!(cookie
            .max_age()
            .is_some_and(|age| age <= Duration::hours(1)));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
        // Stored as our layout: the value as JSON text, the inactivity expiry as its TTL.
        let (state, ttl) = fx.stored(cookie.value()).await.unwrap();
        assert_eq!(state, SessionState::from([("foo".into(), "42".into())]));
        if fx.redis.is_some() {
            assert!(about_std(ttl, Duration::hours(1)), "{ttl:?}");
        }
    }

    pub async fn session_max_age(fx: Fixture) {
        let cookie = inserted(&app(&fx, None, None)).await;
        assert_eq!(cookie.name(), "id");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
        assert!(cookie.max_age().is_none());
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
        // A browser-session cookie; the store keeps the record for tower-sessions' default
        // of two weeks.
        let (_, ttl) = fx.stored(cookie.value()).await.unwrap();
        if fx.redis.is_some() {
            assert!(about_std(ttl, Duration::weeks(2)), "{ttl:?}");
        }
    }

    pub async fn get_session(fx: Fixture) {
        let app = app(&fx, Some(Duration::hours(1)), None);
        let cookie = inserted(&app).await;
        let answer = send(&app, "/get", Some(&pair(&cookie))).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "42");
    }

    pub async fn get_no_value(fx: Fixture) {
        let answer = send(
            &app(&fx, Some(Duration::hours(1)), None),
            "/get_value",
            None,
        )
        .await;
        assert_eq!(answer.body, "None");
    }

    pub async fn remove_last_value(fx: Fixture) {
        let app = app(&fx, Some(Duration::hours(1)), None);
        let cookie = inserted(&app).await;
        send(&app, "/remove_value", Some(&pair(&cookie))).await;
        let answer = send(&app, "/get_value", Some(&pair(&cookie))).await;
        assert_eq!(answer.body, "None");
        // An emptied session is deleted (our stores hold no empty session)...
        assert!(fx.stored(cookie.value()).await.is_none());
        // ...and its cookie is removed on the next request.
        assert_eq!(set_cookie(&answer).max_age(), Some(Duration::ZERO));
    }

    pub async fn cycle_session_id(fx: Fixture) {
        let app = app(&fx, Some(Duration::hours(1)), None);
        let first = inserted(&app).await;
        let answer = send(&app, "/cycle_id", Some(&pair(&first))).await;
        let second = set_cookie(&answer);
        assert_ne!(first.value(), second.value());
        let answer = send(&app, "/get", Some(&pair(&second))).await;
        assert_eq!(answer.body, "42");
        assert!(fx.stored(first.value()).await.is_none());
        assert!(fx.stored(second.value()).await.is_some());
    }

    async fn flush(fx: Fixture, domain: Option<&str>) {
        let app = app(&fx, Some(Duration::hours(1)), domain);
        let cookie = inserted(&app).await;
        let answer = send(&app, "/flush", Some(&pair(&cookie))).await;
        let removal = set_cookie(&answer);
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(Duration::ZERO));
        assert_eq!(removal.domain(), domain);
        assert_eq!(removal.path(), Some("/"));
        assert!(fx.stored(cookie.value()).await.is_none());
    }

    pub async fn flush_session(fx: Fixture) {
        flush(fx, None).await;
    }

    pub async fn flush_with_domain(fx: Fixture) {
        flush(fx, Some("localhost")).await;
    }

    pub async fn set_expiry(fx: Fixture) {
        let app = app(&fx, Some(Duration::hours(1)), Some("localhost"));
        let cookie = inserted(&app).await;
        assert!(about(cookie.max_age().unwrap(), Duration::hours(1)));
        let answer = send(&app, "/set_expiry", Some(&pair(&cookie))).await;
        let cookie = set_cookie(&answer);
        assert!(about(cookie.max_age().unwrap(), Duration::days(1)));
        // The store's TTL followed the new expiry.
        let (_, ttl) = fx.stored(cookie.value()).await.unwrap();
        if fx.redis.is_some() {
            assert!(about_std(ttl, Duration::days(1)), "{ttl:?}");
        }
    }

    pub async fn change_expiry_type(fx: Fixture) {
        let browser_session = app(&fx, None, Some("localhost"));
        let cookie = inserted(&browser_session).await;
        assert_eq!(cookie.max_age(), None);
        let answer = send(&browser_session, "/set_expiry", Some(&pair(&cookie))).await;
        assert!(about(
            set_cookie(&answer).max_age().unwrap(),
            Duration::days(1)
        ));

        let inactivity = app(&fx, Some(Duration::hours(1)), Some("localhost"));
        let cookie = inserted(&inactivity).await;
        assert!(about(cookie.max_age().unwrap(), Duration::hours(1)));
        let answer = send(&inactivity, "/remove_expiry", Some(&pair(&cookie))).await;
        assert_eq!(set_cookie(&answer).max_age(), None);
    }
}

/// One `#[tokio::test]` per scenario of `$module`, each on a fixture made by `$fixture`.
macro_rules! per_store {
    ($prefix:ident, $module:ident, $fixture:expr, [$($scenario:ident),* $(,)?]) => {
        mod $prefix {
            use super::*;
            $(
                #[tokio::test]
                async fn $scenario() {
                    $module::$scenario($fixture).await;
                }
            )*
        }
    };
}

macro_rules! route_tests {
    ($prefix:ident, $fixture:expr) => {
        per_store!(
            $prefix,
            routes,
            $fixture,
            [
                no_session_set,
                bogus_session_cookie,
                malformed_session_cookie,
                insert_session,
                session_max_age,
                get_session,
                get_no_value,
                remove_last_value,
                cycle_session_id,
                flush_session,
                flush_with_domain,
                set_expiry,
                change_expiry_type,
            ]
        );
    };
}

route_tests!(routes_memory, Fixture::memory());
route_tests!(routes_file, Fixture::file());
route_tests!(routes_redis, Fixture::redis().await);

mod contract {
    //! Their `SessionStore` trait, called directly: create, save, load, delete.
    use super::*;

    fn record(pairs: &[(&str, serde_json::Value)], expiry: Duration) -> Record {
        Record {
            id: Id::default(),
            data: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            expiry_date: OffsetDateTime::now_utc() + expiry,
        }
    }

    pub async fn create_then_load(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(
            &[
                ("user", serde_json::json!("alice")),
                ("prefs", serde_json::json!({"theme": "dark", "n": [1, 2]})),
            ],
            Duration::hours(1),
        );
        store.create(&mut rec).await.unwrap();
        let loaded = store.load(&rec.id).await.unwrap().unwrap();
        assert_eq!(loaded.id, rec.id);
        assert_eq!(loaded.data, rec.data);
        assert!(about(loaded.expiry_date - rec.expiry_date, Duration::ZERO));
        // Through our API, under the derived id: the same data as JSON text, our layout.
        let ours = fx
            .store
            .load(&TowerStore::session_id(&rec.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ours["user"], "\"alice\"");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ours["prefs"]).unwrap(),
            rec.data["prefs"]
        );
        assert!(store.load(&Id::default()).await.unwrap().is_none());
    }

    pub async fn create_regenerates_a_taken_id(fx: Fixture) {
        let store = fx.tower();
        let taken = Id::default();
        let theirs = SessionState::from([("owner".into(), "\"first\"".into())]);
        assert!(fx
            .store
            .create_with_id(&TowerStore::session_id(&taken), &theirs, None)
            .await
            .unwrap());
        let mut rec = record(
            &[("owner", serde_json::json!("second"))],
            Duration::hours(1),
        );
        rec.id = taken;
        store.create(&mut rec).await.unwrap();
        assert_ne!(rec.id, taken, "the store picks another id on a collision");
        assert_eq!(
            store.load(&taken).await.unwrap().unwrap().data["owner"],
            "first"
        );
        assert_eq!(
            store.load(&rec.id).await.unwrap().unwrap().data["owner"],
            "second"
        );
    }

    pub async fn save_replaces_the_whole_record(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(
            &[("a", serde_json::json!(1)), ("b", serde_json::json!(2))],
            Duration::hours(1),
        );
        store.create(&mut rec).await.unwrap();
        rec.data.remove("a");
        rec.data.insert("c".into(), serde_json::json!(3));
        store.save(&rec).await.unwrap();
        let loaded = store.load(&rec.id).await.unwrap().unwrap();
        assert_eq!(loaded.data, rec.data);
    }

    pub async fn save_never_brings_back_a_deleted_session(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(&[("user", serde_json::json!("bob"))], Duration::hours(1));
        store.create(&mut rec).await.unwrap();
        // A logout in another request, then this request's save.
        store.delete(&rec.id).await.unwrap();
        store.save(&rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
        // Deleting what is gone is fine.
        store.delete(&rec.id).await.unwrap();
    }

    pub async fn an_emptied_session_is_deleted(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(&[("n", serde_json::json!(1))], Duration::hours(1));
        store.create(&mut rec).await.unwrap();
        rec.data.clear();
        store.save(&rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }

    pub async fn created_empty_then_saved_is_stored(fx: Fixture) {
        // A handler that calls `session.save()` before inserting anything (to learn its id).
        let store = fx.tower();
        let mut rec = record(&[], Duration::hours(1));
        store.create(&mut rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
        rec.data.insert("n".into(), serde_json::json!(1));
        store.save(&rec).await.unwrap();
        assert_eq!(store.load(&rec.id).await.unwrap().unwrap().data, rec.data);
        // Through tower-sessions' own `Session` too.
        let session = Session::new(None, std::sync::Arc::new(store.clone()), None);
        session.save().await.unwrap();
        let id = session.id().unwrap();
        session.insert("k", "v").await.unwrap();
        session.save().await.unwrap();
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().data["k"],
            serde_json::json!("v")
        );
    }

    pub async fn expired_records_are_never_stored(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(&[("n", serde_json::json!(1))], -Duration::seconds(1));
        store.create(&mut rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
        // A save with a past expiry date ends a live session.
        rec.expiry_date = OffsetDateTime::now_utc() + Duration::hours(1);
        store.create(&mut rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_some());
        rec.expiry_date = OffsetDateTime::now_utc() - Duration::seconds(1);
        store.save(&rec).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }

    pub async fn key_expire_wins_over_the_record_expiry(fx: Fixture) {
        // `session_redis_key_expire` = 60 s: a record due in a day is stored for 60 s, and the
        // load reports the date the store holds.
        let store = TowerStore::new(
            fx.store
                .clone()
                .with_key_expire(Some(StdDuration::from_secs(60))),
        );
        let mut rec = record(&[("n", serde_json::json!(1))], Duration::days(1));
        store.create(&mut rec).await.unwrap();
        let loaded = store.load(&rec.id).await.unwrap().unwrap();
        let left = loaded.expiry_date - OffsetDateTime::now_utc();
        assert!(about(left, Duration::seconds(60)), "{left:?}");
        store.save(&rec).await.unwrap();
        let (_, ttl) = fx
            .store
            .load_with_ttl(&TowerStore::session_id(&rec.id))
            .await
            .unwrap()
            .unwrap();
        assert!(about_std(ttl, Duration::seconds(60)), "{ttl:?}");
    }

    /// The documented cost of a whole-record save: two requests that loaded the same session
    /// and each changed a different key; the later save drops the earlier one's key.
    pub async fn a_whole_record_save_drops_a_concurrent_change(fx: Fixture) {
        let store = fx.tower();
        let mut rec = record(&[("n", serde_json::json!(0))], Duration::hours(1));
        store.create(&mut rec).await.unwrap();
        let mut first = store.load(&rec.id).await.unwrap().unwrap();
        let mut second = store.load(&rec.id).await.unwrap().unwrap();
        first.data.insert("a".into(), serde_json::json!(1));
        second.data.insert("b".into(), serde_json::json!(2));
        store.save(&first).await.unwrap();
        store.save(&second).await.unwrap();
        let data = store.load(&rec.id).await.unwrap().unwrap().data;
        assert!(
            data.contains_key("b") && !data.contains_key("a"),
            "{data:?}"
        );
    }

    /// tower-sessions-memory-store's own tests (create, save, load, delete, id collision),
    /// re-expressed. Where they use a record without data, ours stores nothing (our stores hold
    /// no empty session), so such a record loads as `None`; the collision is still detected.
    pub async fn their_memory_store_tests(fx: Fixture) {
        let store = fx.tower();
        let empty = || record(&[], Duration::minutes(30));
        let mut created = empty();
        store.create(&mut created).await.unwrap();
        store.save(&empty()).await.unwrap();

        let mut rec = record(&[("k", serde_json::json!("v"))], Duration::minutes(30));
        store.create(&mut rec).await.unwrap();
        let loaded = store.load(&rec.id).await.unwrap().unwrap();
        assert_eq!((loaded.id, &loaded.data), (rec.id, &rec.data));
        assert!(store.load(&created.id).await.unwrap().is_none());

        store.delete(&rec.id).await.unwrap();
        assert!(store.load(&rec.id).await.unwrap().is_none());

        let (mut first, mut second) = (empty(), empty());
        store.create(&mut first).await.unwrap();
        second.id = first.id;
        store.create(&mut second).await.unwrap();
        assert_ne!(first.id, second.id);
    }

    /// tower-sessions-core's `test_cycle_id` (a mock store there), on ours: the data survives
    /// the new id, the old id is gone, the new one is the store's.
    pub async fn session_cycle_id(fx: Fixture) {
        let store = std::sync::Arc::new(fx.tower());
        let session = Session::new(None, store.clone(), None);
        session.insert("foo", 42).await.unwrap();
        session.save().await.unwrap();
        let initial = session.id().unwrap();

        let session = Session::new(Some(initial), store.clone(), None);
        session.insert("bar", 1).await.unwrap();
        session.save().await.unwrap();
        session.cycle_id().await.unwrap();
        assert!(session.id().is_none());
        assert_eq!(session.get::<i32>("foo").await.unwrap(), Some(42));
        session.save().await.unwrap();
        let cycled = session.id().unwrap();
        assert_ne!(cycled, initial);
        assert!(store.load(&initial).await.unwrap().is_none());
        let data = store.load(&cycled).await.unwrap().unwrap().data;
        assert_eq!(
            (data["foo"].clone(), data["bar"].clone()),
            (42.into(), 1.into())
        );
    }

    /// A logout (`flush`) followed by new data in the same request (a "logged out" flash
    /// message: axum-login's `logout` flushes, axum-messages then inserts) gets a new id:
    /// tower-sessions hands `create` the record with the id it just deleted. Reused, that id
    /// would keep every copy of the old cookie working, and a request that loaded the
    /// session before the logout would save its whole logged-in record over it.
    pub async fn a_flush_then_insert_never_reuses_the_logged_out_id(fx: Fixture) {
        let store = std::sync::Arc::new(fx.tower());
        let login = Session::new(None, store.clone(), None);
        login.insert("user", "alice").await.unwrap();
        login.save().await.unwrap();
        let old = login.id().unwrap();

        // Another request of the same browser, in flight during the logout: it has loaded.
        let in_flight = Session::new(Some(old), store.clone(), None);
        assert_eq!(
            in_flight.get::<String>("user").await.unwrap().as_deref(),
            Some("alice")
        );

        let logout = Session::new(Some(old), store.clone(), None);
        logout.flush().await.unwrap();
        logout.insert("flash", "bye").await.unwrap();
        logout.save().await.unwrap();
        let after = logout.id().unwrap();

        // The in-flight request saves its change last.
        in_flight.insert("seen", 1).await.unwrap();
        in_flight.save().await.unwrap();
        let data = store.load(&after).await.unwrap().unwrap().data;
        assert!(!data.contains_key("user"), "logout undone: {data:?}");
        assert_ne!(
            after, old,
            "the session after a logout must not reuse its id"
        );
        assert!(
            store.load(&old).await.unwrap().is_none(),
            "the logged-out id names a session again"
        );

        // The same with an explicit save of the flushed, still empty session (nothing
        // stored yet), then the in-flight save.
        let login = Session::new(None, store.clone(), None);
        login.insert("user", "bob").await.unwrap();
        login.save().await.unwrap();
        let old = login.id().unwrap();
        let in_flight = Session::new(Some(old), store.clone(), None);
        in_flight.get::<String>("user").await.unwrap();
        let logout = Session::new(Some(old), store.clone(), None);
        logout.flush().await.unwrap();
        logout.save().await.unwrap();
        in_flight.insert("seen", 1).await.unwrap();
        in_flight.save().await.unwrap();
        assert!(
            store.load(&old).await.unwrap().is_none(),
            "logout undone by a save after an empty save of the flushed session"
        );
    }

    /// tower-sessions' `CachingSessionStore` creates a session in its store, then in its cache
    /// under the id the store chose: an adapter in either place must keep that id, or the
    /// cookie names a session the other one does not have.
    pub async fn their_caching_store_keeps_one_id_in_cache_and_store(fx: Fixture) {
        use tower_sessions::{CachingSessionStore, MemoryStore};

        // Ours as the cache, in front of ours.
        let cache = TowerStore::new(SessionStore::memory());
        let backend = fx.tower();
        let caching = CachingSessionStore::new(cache.clone(), backend.clone());
        let session = Session::new(None, std::sync::Arc::new(caching), None);
        session.insert("user", "alice").await.unwrap();
        session.save().await.unwrap();
        let id = session.id().unwrap();
        assert!(
            backend.load(&id).await.unwrap().is_some(),
            "not in the store"
        );
        assert!(cache.load(&id).await.unwrap().is_some(), "not in the cache");

        // Ours as the store, behind their memory store; a flush then new data gets a new
        // id in both.
        let cache = MemoryStore::default();
        let caching = std::sync::Arc::new(CachingSessionStore::new(cache.clone(), backend.clone()));
        let session = Session::new(None, caching.clone(), None);
        session.insert("user", "alice").await.unwrap();
        session.save().await.unwrap();
        let old = session.id().unwrap();
        let logout = Session::new(Some(old), caching.clone(), None);
        logout.flush().await.unwrap();
        logout.insert("flash", "bye").await.unwrap();
        logout.save().await.unwrap();
        let id = logout.id().unwrap();
        assert_ne!(id, old);
        assert!(
            backend.load(&id).await.unwrap().is_some(),
            "not in the store"
        );
        assert!(cache.load(&id).await.unwrap().is_some(), "not in the cache");
    }

    /// tower-sessions' stores never load a record past its `expiry_date` (`Expiry::AtDateTime`
    /// is an absolute end, a logout at a given time). `session_redis_key_expire` decides the
    /// store's TTL and may keep the key longer: the session must still end at its date.
    pub async fn key_expire_never_serves_a_record_past_its_expiry_date(fx: Fixture) {
        let store = TowerStore::new(
            fx.store
                .clone()
                .with_key_expire(Some(StdDuration::from_secs(600))),
        );
        let mut rec = record(
            &[("user", serde_json::json!("alice"))],
            Duration::seconds(1),
        );
        store.create(&mut rec).await.unwrap();
        let loaded = store.load(&rec.id).await.unwrap().unwrap();
        assert_eq!(loaded.data, rec.data, "the deadline is not the app's data");
        assert!(loaded.expiry_date <= rec.expiry_date, "{loaded:?}");
        tokio::time::sleep(StdDuration::from_millis(1100)).await;
        assert!(
            store.load(&rec.id).await.unwrap().is_none(),
            "served past its expiry date"
        );
        // Ended for our store API too.
        assert!(fx
            .store
            .load(&TowerStore::session_id(&rec.id))
            .await
            .unwrap()
            .is_none());
        // The deadline's key is the adapter's: a record that holds it is refused.
        let mut rec = record(
            &[(session_core::EXPIRY_KEY, serde_json::json!({"at_unix": 0}))],
            Duration::hours(1),
        );
        let err = store.create(&mut rec).await.unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }

    pub async fn too_large_is_refused_and_nothing_stored(fx: Fixture) {
        let store = TowerStore::new(fx.store.clone().with_max_session_size(Some(64)));
        let mut rec = record(
            &[("big", serde_json::json!("x".repeat(100)))],
            Duration::hours(1),
        );
        let err = store.create(&mut rec).await.unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
        assert!(store.load(&rec.id).await.unwrap().is_none());
    }
}

macro_rules! contract_tests {
    ($prefix:ident, $fixture:expr) => {
        per_store!(
            $prefix,
            contract,
            $fixture,
            [
                create_then_load,
                create_regenerates_a_taken_id,
                save_replaces_the_whole_record,
                save_never_brings_back_a_deleted_session,
                an_emptied_session_is_deleted,
                created_empty_then_saved_is_stored,
                expired_records_are_never_stored,
                key_expire_wins_over_the_record_expiry,
                too_large_is_refused_and_nothing_stored,
                key_expire_never_serves_a_record_past_its_expiry_date,
                their_memory_store_tests,
                session_cycle_id,
                a_whole_record_save_drops_a_concurrent_change,
                a_flush_then_insert_never_reuses_the_logged_out_id,
                their_caching_store_keeps_one_id_in_cache_and_store,
            ]
        );
    };
}

contract_tests!(contract_memory, Fixture::memory());
contract_tests!(contract_file, Fixture::file());
contract_tests!(contract_redis, Fixture::redis().await);

/// The key a tower-sessions session has in Redis, and a corrupt one loads as no session.
#[tokio::test]
async fn redis_layout_and_corrupt_sessions() {
    let fx = Fixture::redis().await;
    let app = app(&fx, Some(Duration::hours(1)), None);
    let cookie = inserted(&app).await;
    let redis = fx.redis.as_ref().unwrap();
    let id: Id = cookie.value().parse().unwrap();
    let key = format!("session:{}", TowerStore::session_id(&id).as_str());
    let stored: String = redis.cmd(&["GET", &key]);
    let state = session_core::backends::redis::decode_value(stored.as_bytes()).unwrap();
    assert_eq!(state["foo"], "42");
    // The cookie value appears in no key: reading Redis gives no cookie.
    let keys: Vec<String> = redis.cmd(&["KEYS", "*"]);
    assert_eq!(keys, vec![key.clone()]);
    assert!(!key.contains(cookie.value()));

    let _: () = redis.cmd(&["SET", &key, r#"v1:0000000000000001:{"foo":{not json}"#]);
    let answer = send(&app, "/get_value", Some(&pair(&cookie))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "None");
}

/// `Expiry::AtDateTime` (an absolute end) under `session_redis_key_expire`, which sets a
/// longer TTL: a client that keeps the cookie past its `Expires` (a copied cookie, a script)
/// is not served, as with tower-sessions' own stores and our layers' deadlines.
#[tokio::test]
async fn an_at_date_time_session_ends_at_its_date_under_key_expire() {
    let fx = Fixture::redis_with(&[("session_redis_key_expire", "600")]).await;
    let layer = SessionManagerLayer::new(fx.tower()).with_expiry(Expiry::AtDateTime(
        OffsetDateTime::now_utc() + Duration::seconds(2),
    ));
    let app = routes().layer(layer);
    let cookie = inserted(&app).await;
    assert_eq!(send(&app, "/get", Some(&pair(&cookie))).await.body, "42");
    let (_, ttl) = fx.stored(cookie.value()).await.unwrap();
    assert!(about_std(ttl, Duration::seconds(600)), "{ttl:?}");
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    let answer = send(&app, "/get_value", Some(&pair(&cookie))).await;
    assert_eq!(answer.body, "None", "served past its date");
    assert!(fx.stored(cookie.value()).await.is_none());
}

/// With `with_always_save(true)` (how tower-sessions slides an expiry, and what the axum-login
/// demo sets with `session_redis_key_expire`), every request saves the whole record it loaded:
/// a request that only reads, overlapping one that removes a key (a privilege dropped), puts the
/// key back. Without it, the reader writes nothing and the removal stays. Documented
/// (docs/tower-sessions.md, "Lost updates"); our layers' refresh writes no data.
#[tokio::test]
async fn always_save_makes_a_concurrent_reader_undo_a_change() {
    use std::sync::Arc;
    use tokio::sync::Notify;

    async fn run(always_save: bool) -> bool {
        let fx = Fixture::redis().await;
        let (loaded, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (l, r) = (loaded.clone(), release.clone());
        let app = Router::new()
            .route(
                "/grant",
                get(|s: Session| async move { s.insert("sudo", true).await.unwrap() }),
            )
            .route(
                "/other",
                get(|s: Session| async move { s.insert("theme", "dark").await.unwrap() }),
            )
            .route(
                "/drop",
                get(|s: Session| async move {
                    s.remove_value("sudo").await.unwrap();
                }),
            )
            .route(
                "/read",
                get(move |s: Session| async move {
                    let sudo = s.get_value("sudo").await.unwrap();
                    l.notify_one();
                    r.notified().await;
                    format!("{sudo:?}")
                }),
            )
            .layer(
                SessionManagerLayer::new(fx.tower())
                    .with_secure(false)
                    .with_always_save(always_save),
            );
        let cookie = pair(&set_cookie(&send(&app, "/grant", None).await));
        send(&app, "/other", Some(&cookie)).await;
        // The reader loads, the other request drops `sudo`, then the reader ends.
        tokio::join!(send(&app, "/read", Some(&cookie)), async {
            loaded.notified().await;
            send(&app, "/drop", Some(&cookie)).await;
            release.notify_one();
        });
        let value = cookie.split_once('=').unwrap().1;
        let (state, _) = fx.stored(value).await.expect("the session lives on");
        state.contains_key("sudo")
    }
    assert!(!run(false).await, "the removal stays without always_save");
    assert!(
        run(true).await,
        "with always_save the reader puts the key back"
    );
}

/// A session store outage is an error to tower-sessions (its middleware answers a failed save
/// with 500), and the same store works again once Redis is back.
#[tokio::test]
async fn redis_outage_is_an_error_and_recovers() {
    let fx = Fixture::redis_with(&[
        ("session_redis_socket_timeout", "0.5"),
        ("session_redis_socket_connect_timeout", "0.5"),
    ])
    .await;
    let app = app(&fx, Some(Duration::hours(1)), None);
    let redis = fx.redis.as_ref().unwrap();
    redis.kill();
    let answer = send(&app, "/insert", None).await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(answer.set_cookie.is_empty());
    let err = fx
        .tower()
        .load(&Id::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unavailable"), "{err}");
    redis.restart();
    let cookie = inserted(&app).await;
    assert_eq!(send(&app, "/get", Some(&pair(&cookie))).await.body, "42");
}

/// Insert, read, cycle the id (the old one is gone), flush: through the layer on `store`.
async fn journey(store: SessionStore) {
    let fx = Fixture {
        store,
        redis: None,
        _dir: None,
    };
    let app = app(&fx, Some(Duration::hours(1)), None);
    let first = inserted(&app).await;
    assert_eq!(send(&app, "/get", Some(&pair(&first))).await.body, "42");
    let second = set_cookie(&send(&app, "/cycle_id", Some(&pair(&first))).await);
    assert_ne!(first.value(), second.value());
    assert!(fx.stored(first.value()).await.is_none());
    assert_eq!(send(&app, "/get", Some(&pair(&second))).await.body, "42");
    let (state, _) = fx.stored(second.value()).await.unwrap();
    assert_eq!(state["foo"], "42");
    send(&app, "/flush", Some(&pair(&second))).await;
    assert!(fx.stored(second.value()).await.is_none());
    assert_eq!(
        send(&app, "/get_value", Some(&pair(&second))).await.body,
        "None"
    );
}

/// PTTL of the only session key on `server`, in seconds.
fn ttl_on(server: &RedisServer) -> i64 {
    let keys: Vec<String> = server.cmd(&["KEYS", "session:*"]);
    assert_eq!(keys.len(), 1, "{keys:?}");
    server.cmd::<i64>(&["PTTL", &keys[0]]) / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sentinel_with_key_expire() {
    let topology = SentinelTopology::start();
    let config = from_env(&[
        ("SESSION_REDIS_MODE", "sentinel".into()),
        ("SESSION_REDIS_HOST", topology.sentinel_host_list()),
        ("SESSION_REDIS_MASTER", topology.master_name().into()),
        ("SESSION_REDIS_KEY_EXPIRE", "120".into()),
    ]);
    let store = SessionStore::from_config(&config).await.unwrap();
    journey(store.clone()).await;
    // `key_expire` (120 s) wins over the layer's hour.
    let app = app(
        &Fixture {
            store,
            redis: None,
            _dir: None,
        },
        Some(Duration::hours(1)),
        None,
    );
    inserted(&app).await;
    let ttl = ttl_on(topology.master());
    assert!((60..=120).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_cluster() {
    let cluster = ClusterTopology::start();
    let config = from_env(&[
        ("SESSION_REDIS_MODE", "cluster".into()),
        ("SESSION_REDIS_HOST", cluster.seed_hosts()),
    ]);
    journey(SessionStore::from_config(&config).await.unwrap()).await;
}

#[tokio::test]
async fn over_a_pool() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let config = from_env(&[("SESSION_REDIS_POOL", RedisServer::pool_setting(&[&a, &b]))]);
    journey(SessionStore::from_config(&config).await.unwrap()).await;
}

/// Redis [read, write] first, the file store [read, delete] second: a tower-sessions session
/// found in the file store moves into Redis on its first load.
#[tokio::test]
async fn over_multi_backends_moving_from_files_to_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let literal = format!(
        "({{'backend': 'redis', 'modes': ['read', 'write'], 'setting': {{'SESSION_REDIS_URL': '{}'}}}},
          {{'backend': 'files', 'modes': ['read', 'delete'], 'setting': {{'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'}}}})",
        redis.url(),
        dir.path().display()
    );
    let config = from_env(&[("ACS_SESSION_MULTISESSIONS_POOL", literal)]);
    let store = SessionStore::from_config(&config).await.unwrap();
    journey(store.clone()).await;

    // A session written by a tower-sessions app on the file store...
    let files = TowerStore::new(SessionStore::new(
        FileBackend::new(dir.path().to_path_buf()).unwrap(),
    ));
    let mut rec = Record {
        id: Id::default(),
        data: [("user".to_owned(), serde_json::json!("carol"))].into(),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    files.create(&mut rec).await.unwrap();
    // ...is read through the multi-backend, and now lives in Redis with its expiry.
    let moved = TowerStore::new(store).load(&rec.id).await.unwrap().unwrap();
    assert_eq!(moved.data, rec.data);
    let ttl = ttl_on(&redis);
    assert!((3500..=3600).contains(&ttl), "{ttl}");
    assert!(files.load(&rec.id).await.unwrap().is_none());
}

/// What tower-sessions' whole-record save costs against our layer's writes of the changed
/// keys' records, on real Redis: one session of 20 keys of 200 bytes, then 50 requests that
/// each change one small key. Printed, not timed; the assertions are about what is sent,
/// not how fast. The whole-record save sends every value on each write; ours sends the
/// changed key's record (and the commands inside a script count one each).
#[tokio::test]
async fn whole_record_save_costs_against_changed_key_records() {
    const KEYS: usize = 20;
    const REQUESTS: usize = 50;
    let big = "x".repeat(200);

    // tower-sessions over `TowerStore`.
    let theirs = {
        let fx = Fixture::redis().await;
        let big = big.clone();
        let app = Router::new()
            .route(
                "/fill",
                get(move |s: Session| async move {
                    for k in 0..KEYS {
                        s.insert(&format!("k{k}"), &big).await.unwrap();
                    }
                }),
            )
            .route(
                "/bump",
                get(|s: Session| async move {
                    let n: u64 = s.get("n").await.unwrap().unwrap_or(0);
                    s.insert("n", n + 1).await.unwrap();
                }),
            )
            .layer(SessionManagerLayer::new(fx.tower()).with_secure(false));
        let cookie = pair(&set_cookie(&send(&app, "/fill", None).await));
        // Once before measuring: the first use of a script loads it into Redis.
        send(&app, "/bump", Some(&cookie)).await;
        measure(fx.redis.as_ref().unwrap(), || async {
            for _ in 0..REQUESTS {
                send(&app, "/bump", Some(&cookie)).await;
            }
        })
        .await
    };

    // Our own layer over the same kind of store.
    let ours = {
        let fx = Fixture::redis().await;
        let big = big.clone();
        let app = Router::new()
            .route(
                "/fill",
                get(move |s: session_axum::Session| async move {
                    for k in 0..KEYS {
                        s.insert(&format!("k{k}"), &big).await.unwrap();
                    }
                }),
            )
            .route(
                "/bump",
                get(|s: session_axum::Session| async move {
                    let n: u64 = s.get("n").await.unwrap().unwrap_or(0);
                    s.insert("n", &(n + 1)).await.unwrap();
                }),
            )
            .layer(
                session_axum::SessionLayer::new(fx.store.clone(), session_axum::Key::generate())
                    .with_secure(false),
            );
        let answer = send(&app, "/fill", None).await;
        let cookie = answer.cookie_pair();
        // Once before measuring: the first use of a script loads it into Redis.
        send(&app, "/bump", Some(&cookie)).await;
        measure(fx.redis.as_ref().unwrap(), || async {
            for _ in 0..REQUESTS {
                send(&app, "/bump", Some(&cookie)).await;
            }
        })
        .await
    };

    println!(
        "{REQUESTS} requests changing one key of a {KEYS}-key session ({} bytes of values):",
        KEYS * (big.len() + 2)
    );
    for (who, m) in [
        ("tower-sessions + TowerStore", &theirs),
        ("session-axum", &ours),
    ] {
        println!(
            "  {who:<28} commands {:>4} ({:.1}/request), bytes to Redis {:>7} ({:.0}/request), \
             bytes from Redis {:>7}",
            m.commands,
            m.commands as f64 / REQUESTS as f64,
            m.bytes_in,
            m.bytes_in as f64 / REQUESTS as f64,
            m.bytes_out
        );
    }
    // Both load once and write once per request: tower-sessions' save is a script call
    // (`TowerStore`'s replace), ours an `APPEND` of the changed key's record, with no script.
    assert_eq!((theirs.scripts, theirs.appends), (REQUESTS as u64, 0));
    assert_eq!((ours.scripts, ours.appends), (0, REQUESTS as u64));
    // The whole-record save sends every value on each write; ours sends the changed key.
    assert!(
        theirs.bytes_in > ours.bytes_in + (REQUESTS * KEYS * big.len()) as u64 / 2,
        "{theirs:?} {ours:?}"
    );
}

#[derive(Debug)]
struct Measured {
    /// Commands Redis ran (a script counts once, as `EVALSHA`).
    commands: u64,
    /// Script calls (conditional writes).
    scripts: u64,
    /// `APPEND`s (in a script or not): our writes of changed keys.
    appends: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// Redis' own counters around `run`: commands, script calls and network bytes, from
/// `INFO commandstats` and `INFO stats` after a `CONFIG RESETSTAT`.
async fn measure<F: std::future::Future<Output = ()>>(
    redis: &RedisServer,
    run: impl FnOnce() -> F,
) -> Measured {
    let _: () = redis.cmd(&["CONFIG", "RESETSTAT"]);
    run().await;
    let field = |info: &str, name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0)
    };
    let calls = |info: &str, cmd: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    };
    let stats: String = redis.cmd(&["INFO", "stats"]);
    let commands: String = redis.cmd(&["INFO", "commandstats"]);
    let total = commands
        .lines()
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .map(|n| n.parse::<u64>().unwrap())
        .sum::<u64>()
        // The INFO calls themselves, and the CONFIG RESETSTAT.
        .saturating_sub(calls(&commands, "info") + calls(&commands, "config|resetstat"));
    Measured {
        commands: total,
        scripts: calls(&commands, "evalsha") + calls(&commands, "eval"),
        appends: calls(&commands, "append"),
        bytes_in: field(&stats, "total_net_input_bytes"),
        bytes_out: field(&stats, "total_net_output_bytes"),
    }
}

/// Requests that loaded their session and wait for the test's signal before they go on.
#[derive(Default)]
struct Gate {
    waiting: AtomicUsize,
    go: tokio::sync::Notify,
}

impl Gate {
    /// Counts a request that loaded its session, then waits for [`Gate::release`].
    async fn hold(&self) {
        let go = self.go.notified();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        go.await;
    }

    async fn until_waiting(&self, n: usize) {
        while self.waiting.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    fn release(&self) {
        self.waiting.store(0, Ordering::SeqCst);
        self.go.notify_waiters();
    }
}

/// Requests of one tower-sessions session that loaded it before a logout (`flush`) and save
/// after it, through their layer over `TowerStore`, on every topology: one Redis server, a
/// pool, a cluster, a multi-backend moving from the file store into Redis (the session starts
/// in the file store, so the late requests' loads are what move it), and a Redis writer with
/// a Redis mirror. "A save never brings back a deleted session" (docs/tower-sessions.md):
/// the logged-out record is gone from every backend after all of them answered.
#[test]
fn late_saves_never_undo_a_logout_on_every_topology() {
    async fn race(
        name: &str,
        store: SessionStore,
        start_in: SessionStore,
        places: &[SessionStore],
    ) {
        let gate = Arc::new(Gate::default());
        let later = {
            let gate = gate.clone();
            move |s: Session,
                  axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let gate = gate.clone();
                async move {
                    let _ = s.get::<usize>("foo").await.unwrap();
                    gate.hold().await;
                    s.insert(&q["key"], 1).await.unwrap();
                }
            }
        };
        let layer = |store: &SessionStore| {
            routes()
                .route("/later", get(later.clone()))
                .layer(SessionManagerLayer::new(TowerStore::new(store.clone())).with_secure(true))
        };
        let (app, start) = (layer(&store), layer(&start_in));
        let cookie = inserted(&start).await;
        let id: Id = cookie.value().parse().unwrap();
        let late: Vec<_> = (0..8)
            .map(|i| {
                let (app, cookie) = (app.clone(), pair(&cookie));
                tokio::task::spawn_local(async move {
                    send(&app, &format!("/later?key=late{i}"), Some(&cookie)).await
                })
            })
            .collect();
        gate.until_waiting(8).await;
        let logout = send(&app, "/flush", Some(&pair(&cookie))).await;
        assert_eq!(logout.status, 200, "{name}");
        gate.release();
        for answer in late {
            let _ = answer.await.unwrap();
        }
        let ours = TowerStore::session_id(&id);
        for store in std::iter::once(&store).chain(places) {
            assert_eq!(
                store.load(&ours).await.unwrap(),
                None,
                "{name}: logout undone"
            );
        }
    }
    local(async {
        let one = RedisServer::start();
        let store = SessionStore::from_config(&from_env(&[("SESSION_REDIS_URL", one.url())]))
            .await
            .unwrap();
        race("one server", store.clone(), store, &[]).await;

        let (a, b) = (RedisServer::start(), RedisServer::start());
        let pool = from_env(&[("SESSION_REDIS_POOL", RedisServer::pool_setting(&[&a, &b]))]);
        let store = SessionStore::from_config(&pool).await.unwrap();
        race("pool", store.clone(), store, &[]).await;

        let cluster = ClusterTopology::start();
        let store = SessionStore::from_config(&from_env(&[
            ("SESSION_REDIS_MODE", "cluster".into()),
            ("SESSION_REDIS_HOST", cluster.seed_hosts()),
        ]))
        .await
        .unwrap();
        race("cluster", store.clone(), store, &[]).await;

        let dir = tempfile::tempdir().unwrap();
        let files = SessionStore::new(FileBackend::new(dir.path().to_path_buf()).unwrap());
        let moving = multi(&[
            (
                "redis",
                "'read', 'write'",
                format!(
                    "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'new:'",
                    one.url()
                ),
            ),
            (
                "files",
                "'read', 'delete'",
                format!(
                    "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
                    dir.path().display()
                ),
            ),
        ]);
        let store = SessionStore::from_config(&moving).await.unwrap();
        race("multi files -> redis", store, files.clone(), &[files]).await;

        let setting = |s: &RedisServer| {
            format!(
                "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'm:'",
                s.url()
            )
        };
        let mirrored = multi(&[
            ("main", "'read', 'write', 'delete'", setting(&a)),
            ("mirror", "'write'", setting(&b)),
        ]);
        let store = SessionStore::from_config(&mirrored).await.unwrap();
        let mirror = SessionStore::from_config(&from_env(&[
            ("SESSION_REDIS_URL", b.url()),
            ("SESSION_REDIS_PREFIX", "m:".into()),
        ]))
        .await
        .unwrap();
        race("multi with a mirror", store.clone(), store, &[mirror]).await;
    });
}

/// What docs/tower-sessions.md says of tower-sessions' own layer over `TowerStore` without
/// [`TowerScopeLayer`], checked as documented: `cycle_id` deletes the old id in the handler and
/// their layer `create`s the record under a new one after it, two calls the adapter cannot tie
/// together with no request scope. On one Redis server:
///
/// * a `cycle_id` (axum-login's login) of a session that a logout (`flush`) deleted after the
///   request's load: the session lives on under the new id, whose cookie the request sets;
/// * two `cycle_id`s of one session at the same instant (a login sent twice, or a stolen
///   cookie's request racing the victim's login): both new ids hold a live session, each
///   with its own request's record, and the old id none.
///
/// With the scope layer both are closed: `a_logout_anywhere_in_a_cycle_id_sticks_with_the_scope`
/// and `two_cycle_ids_at_once_keep_one_login_with_the_scope`. If this test fails,
/// tower-sessions or the adapter changed: update the document.
#[test]
fn cycle_id_without_the_scope_layer_races_a_logout_and_another_cycle_id() {
    local(async {
        let fx = Fixture::redis().await;
        let gate = Arc::new(Gate::default());
        let later = {
            let gate = gate.clone();
            move |s: Session| {
                let gate = gate.clone();
                async move {
                    let _ = s.get::<usize>("foo").await.unwrap();
                    gate.hold().await;
                    s.cycle_id().await.unwrap();
                    s.insert("user", "mallory").await.unwrap();
                }
            }
        };
        let app = routes()
            .route("/cycle-later", get(later))
            .layer(SessionManagerLayer::new(fx.tower()).with_secure(true));
        let cycle_later = |cookie: &Cookie<'static>| {
            let (app, cookie) = (app.clone(), pair(cookie));
            tokio::task::spawn_local(async move { send(&app, "/cycle-later", Some(&cookie)).await })
        };

        // A logout between the request's load and its `cycle_id`.
        let cookie = inserted(&app).await;
        let cycling = cycle_later(&cookie);
        gate.until_waiting(1).await;
        let logout = send(&app, "/flush", Some(&pair(&cookie))).await;
        assert_eq!(logout.status, 200);
        gate.release();
        let cycled = cycling.await.unwrap();
        assert_eq!(cycled.status, 200, "{cycled:?}");
        assert!(fx.stored(cookie.value()).await.is_none(), "the old id");
        let new = set_cookie(&cycled);
        let (kept, _) = fx
            .stored(new.value())
            .await
            .expect("not covered: the session lives on under the new id after the logout");
        assert_eq!(kept["user"], "\"mallory\"");
        assert_eq!(kept["foo"], "42");

        // Two `cycle_id`s at the same instant.
        let cookie = inserted(&app).await;
        let cycling = [cycle_later(&cookie), cycle_later(&cookie)];
        gate.until_waiting(2).await;
        gate.release();
        let mut live = Vec::new();
        for answer in cycling {
            let answer = answer.await.unwrap();
            assert_eq!(answer.status, 200, "{answer:?}");
            let new = set_cookie(&answer);
            if fx.stored(new.value()).await.is_some() {
                live.push(new.value().to_owned());
            }
        }
        assert!(fx.stored(cookie.value()).await.is_none(), "the old id");
        assert_eq!(
            live.len(),
            2,
            "not covered: both new ids hold a live session"
        );
        assert_ne!(live[0], live[1]);
    });
}

/// A Redis store whose backend is behind a probe (to hold or fail chosen calls), as a
/// process of an application sees it.
fn probed(server: &RedisServer) -> (SessionStore, ProbeBackend) {
    let config = SessionConfig {
        url: Some(server.url()),
        ..SessionConfig::default()
    };
    let backend = session_core::backends::redis::RedisBackend::from_config(&config).unwrap();
    let probe = ProbeBackend::wrap(Arc::new(backend));
    (SessionStore::new(probe.clone()), probe)
}

/// [`login_app`] over a store behind a probe on `server`: the fixture holding that store,
/// the probe and the app (its gate is never held here).
fn probed_login(server: &RedisServer, scoped: bool) -> (Fixture, ProbeBackend, Router) {
    let (store, probe) = probed(server);
    let fx = Fixture {
        store,
        redis: None,
        _dir: None,
    };
    let gate = Arc::new(Gate::default());
    let app = login_app(fx.tower(), &gate, scoped);
    (fx, probe, app)
}

/// An axum-login-like application: tower-sessions' layer over `tower`, with
/// [`TowerScopeLayer`] outside it when `scoped`. Besides [`routes`]:
///
/// * `/login?hold=before|after|none`: loads the session (axum-login's extractor does), cycles
///   its id and inserts the user (axum-login's `login`), holding at `gate` before the
///   `cycle_id` or after it (so before their layer's `create`), as asked;
/// * `/logout`: loads the session (axum-login's extractor), then `flush`es it (axum-login's
///   `logout`);
/// * `/logout-then-hang`: the same, then never answers (a client that goes away).
///
/// A session error answers 500, as axum-login's handlers do.
fn login_app(tower: TowerStore, gate: &Arc<Gate>, scoped: bool) -> Router {
    use axum::{extract::Query, http::StatusCode};
    fn fail(_: tower_sessions::session::Error) -> axum::http::StatusCode {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }
    let login = {
        let gate = gate.clone();
        move |s: Session, Query(q): Query<std::collections::HashMap<String, String>>| {
            let gate = gate.clone();
            async move {
                let hold = q.get("hold").map_or("none", String::as_str).to_owned();
                let _ = s.get::<usize>("foo").await.map_err(fail)?;
                if hold == "before" {
                    gate.hold().await;
                }
                s.cycle_id().await.map_err(fail)?;
                s.insert("user", "mallory").await.map_err(fail)?;
                if hold == "after" {
                    gate.hold().await;
                }
                Ok::<_, StatusCode>("logged in")
            }
        }
    };
    let app = routes()
        .route("/login", get(login))
        .route(
            "/logout",
            get(|s: Session| async move {
                let _ = s.get::<usize>("foo").await.map_err(fail)?;
                s.flush().await.map_err(fail)?;
                Ok::<_, StatusCode>("logged out")
            }),
        )
        .route(
            "/logout-then-hang",
            get(|s: Session| async move {
                let _ = s.get::<usize>("foo").await.unwrap();
                s.flush().await.unwrap();
                std::future::pending::<()>().await;
            }),
        )
        .layer(SessionManagerLayer::new(tower).with_secure(true));
    if scoped {
        app.layer(TowerScopeLayer::new())
    } else {
        app
    }
}

/// A logout (`flush`) that lands at any point of a `cycle_id` (axum-login's login) of the same
/// session, through tower-sessions' layer over `TowerStore` with [`TowerScopeLayer`] outside
/// it: after the login's load and before its `cycle_id`, after the `cycle_id` and before their
/// layer's `create`, while that create is held, and while the login's delete of the old id is
/// held (after its create). Each time the logout answers 200 and removes the cookie, the login
/// answers 409 with no `Set-Cookie` (the browser keeps no live cookie), and Redis holds no
/// session at all: the logout stuck.
#[test]
fn a_logout_anywhere_in_a_cycle_id_sticks_with_the_scope() {
    local(async {
        let server = RedisServer::start();
        let (store, probe) = probed(&server);
        let gate = Arc::new(Gate::default());
        let app = login_app(TowerStore::new(store), &gate, true);
        // Every point is tried, and what went wrong at each reported at the end.
        let mut failures = Vec::new();
        for point in [
            "before cycle_id",
            "before create",
            "held at Create",
            "held at Delete",
        ] {
            let _: () = server.cmd(&["FLUSHALL"]);
            let cookie = inserted(&app).await;
            let (hold, pause) = match point {
                "before cycle_id" => ("before", None),
                "before create" => ("after", None),
                "held at Create" => ("none", Some(probe.pause(Op::Create))),
                _ => ("none", Some(probe.pause(Op::Delete))),
            };
            let login = {
                let (app, cookie) = (app.clone(), pair(&cookie));
                let uri = format!("/login?hold={hold}");
                tokio::task::spawn_local(async move { send(&app, &uri, Some(&cookie)).await })
            };
            match &pause {
                Some(pause) => pause.reached().await,
                None => gate.until_waiting(1).await,
            }
            let logout = send(&app, "/logout", Some(&pair(&cookie))).await;
            assert_eq!(logout.status, 200, "{point}: {logout:?}");
            assert_eq!(
                set_cookie(&logout).max_age(),
                Some(Duration::ZERO),
                "{point}"
            );
            match &pause {
                Some(pause) => pause.release(),
                None => gate.release(),
            }
            let login = login.await.unwrap();
            let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
            if !login.set_cookie.is_empty() || login.status != 409 || !keys.is_empty() {
                failures.push(format!(
                    "{point}: the login answered {} ({} Set-Cookie), {} sessions left after \
                     the logout",
                    login.status,
                    login.set_cookie.len(),
                    keys.len()
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    });
}

/// Two `cycle_id`s (logins) of one session at the same instant, in two processes over one
/// Redis server, each through tower-sessions' layer with [`TowerScopeLayer`] outside it: a
/// login form sent twice, or a stolen cookie's request racing the victim's login. Ten rounds,
/// holding both before their `cycle_id` or after it (before their layer's `create`). Each
/// round: exactly one answer sets a cookie, the other answers 409 with none; the old id names
/// nothing; the one new id holds the login; and a browser that receives both answers, in
/// either order, keeps a cookie that works. One session per round on the server.
#[test]
fn two_cycle_ids_at_once_keep_one_login_with_the_scope() {
    local(two_cycle_ids_at_once(|login| {
        tokio::task::spawn_local(login)
    }));
}

/// [`two_cycle_ids_at_once_keep_one_login_with_the_scope`] on a multi-threaded runtime, each
/// request a task of its own: the scope follows its request's future from thread to thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cycle_ids_at_once_keep_one_login_on_a_multi_threaded_runtime() {
    two_cycle_ids_at_once(|login| tokio::spawn(login)).await;
}

/// A request through the app, as a task can run it (its answer is read by the test).
type Login = std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send>>;

async fn two_cycle_ids_at_once(
    spawn: fn(Login) -> tokio::task::JoinHandle<axum::response::Response>,
) {
    let server = RedisServer::start();
    let config = from_env(&[("SESSION_REDIS_URL", server.url())]);
    let fx = Fixture {
        store: SessionStore::from_config(&config).await.unwrap(),
        redis: None,
        _dir: None,
    };
    let other = SessionStore::from_config(&config).await.unwrap();
    let gate = Arc::new(Gate::default());
    let apps = [
        login_app(fx.tower(), &gate, true),
        login_app(TowerStore::new(other), &gate, true),
    ];
    for round in 0..10 {
        let hold = if round % 2 == 0 { "before" } else { "after" };
        let case = format!("round {round}, held {hold} cycle_id");
        let cookie = inserted(&apps[0]).await;
        let logins: Vec<_> = (0..2)
            .map(|i| {
                let (app, cookie) = (apps[i].clone(), pair(&cookie));
                let uri = format!("/login?hold={hold}");
                spawn(Box::pin(async move {
                    app.oneshot(request("GET", &uri, Some(&cookie), None))
                        .await
                        .unwrap()
                }))
            })
            .collect();
        gate.until_waiting(2).await;
        gate.release();
        let mut answers = Vec::new();
        for login in logins {
            answers.push(Answer::read(login.await.unwrap()).await);
        }
        let live: Vec<Cookie<'static>> = answers
            .iter()
            .filter(|a| !a.set_cookie.is_empty())
            .map(set_cookie)
            .filter(|c| c.max_age() != Some(Duration::ZERO))
            .collect();
        assert_eq!(live.len(), 1, "{case}: live cookies sent: {}", live.len());
        let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
        assert!(
            statuses == [200, 409] || statuses == [409, 200],
            "{case}: {statuses:?}"
        );
        for answer in answers.iter().filter(|a| a.status == 409) {
            assert!(answer.set_cookie.is_empty(), "{case}: {answer:?}");
        }
        assert!(
            fx.stored(cookie.value()).await.is_none(),
            "{case}: the old id lives"
        );
        let (kept, _) = fx
            .stored(live[0].value())
            .await
            .unwrap_or_else(|| panic!("{case}: the winner's new id holds nothing"));
        assert_eq!(kept["user"], "\"mallory\"", "{case}");
        assert_eq!(kept["foo"], "42", "{case}");
        for (first, second) in [(0, 1), (1, 0)] {
            let jar = common::jar_after(&pair(&cookie), &[&answers[first], &answers[second]]);
            assert_eq!(
                jar,
                Some(pair(&live[0])),
                "{case}: a browser receiving answer {first} then {second} lost the login"
            );
            let answer = send(&apps[0], "/get", jar.as_deref()).await;
            assert_eq!(answer.body, "42", "{case}");
        }
    }
    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert_eq!(keys.len(), 10, "one session per round: {}", keys.len());
}

/// A login whose create fails (the store unavailable for it) through [`TowerScopeLayer`]:
/// the `cycle_id`'s delete of the old id was held, and is never sent, so the session stays
/// as it was, still logged out of nothing, and the answer is 503 with no cookie. Without
/// the layer the old id was already deleted in the handler, and the answer was a bare 500.
#[test]
fn a_login_whose_create_fails_keeps_the_old_session_with_the_scope() {
    local(async {
        let server = RedisServer::start();
        for scoped in [true, false] {
            let (fx, probe, app) = probed_login(&server, scoped);
            let cookie = inserted(&app).await;
            probe.fail(Op::Create, Some(Fault::Unavailable));
            let login = send(&app, "/login", Some(&pair(&cookie))).await;
            probe.fail(Op::Create, None);
            assert!(login.set_cookie.is_empty(), "scoped: {scoped}: {login:?}");
            let kept = fx.stored(cookie.value()).await;
            if scoped {
                assert_eq!(login.status, 503, "{login:?}");
                let (state, _) = kept.expect("the old session stays as it was");
                assert_eq!(state, SessionState::from([("foo".into(), "42".into())]));
            } else {
                assert_eq!(login.status, 500, "{login:?}");
                assert!(
                    kept.is_none(),
                    "without the layer the old id went in the handler"
                );
            }
        }
    });
}

/// With [`TowerScopeLayer`], an axum-login-like application works as it did and costs the
/// same store calls: a new session is one create, a read one load, a login (load, `cycle_id`,
/// insert) one load, one create and one delete, in that order (the new id first: see
/// `a_logout_anywhere_in_a_cycle_id_sticks_with_the_scope`), and a logout one load and one
/// delete. Without the layer the login's delete comes before its create.
#[test]
fn a_login_with_cycle_id_works_and_costs_the_same_with_the_scope() {
    local(async {
        let server = RedisServer::start();
        for scoped in [true, false] {
            let (fx, probe, app) = probed_login(&server, scoped);
            let ops = || {
                probe
                    .take_calls()
                    .iter()
                    .map(|c| c.op())
                    .collect::<Vec<_>>()
            };
            let cookie = inserted(&app).await;
            assert_eq!(ops(), [Op::Create], "scoped: {scoped}, a new session");
            assert_eq!(send(&app, "/get", Some(&pair(&cookie))).await.body, "42");
            assert_eq!(ops(), [Op::Load], "scoped: {scoped}, a read");
            let login = send(&app, "/login", Some(&pair(&cookie))).await;
            assert_eq!(login.status, 200, "scoped: {scoped}: {login:?}");
            let new = set_cookie(&login);
            let expected: &[Op] = if scoped {
                &[Op::Load, Op::Create, Op::Delete]
            } else {
                &[Op::Load, Op::Delete, Op::Create]
            };
            assert_eq!(ops(), expected, "scoped: {scoped}, a login");
            assert_ne!(new.value(), cookie.value());
            assert!(fx.stored(cookie.value()).await.is_none(), "the old id");
            let (state, _) = fx.stored(new.value()).await.unwrap();
            assert_eq!(state["user"], "\"mallory\"");
            assert_eq!(state["foo"], "42");
            probe.reset();
            let logout = send(&app, "/logout", Some(&pair(&new))).await;
            assert_eq!(logout.status, 200);
            assert_eq!(set_cookie(&logout).max_age(), Some(Duration::ZERO));
            assert_eq!(ops(), [Op::Load, Op::Delete], "scoped: {scoped}, a logout");
            assert!(fx.stored(new.value()).await.is_none(), "logged out");
            // A login with the logged-out cookie (its session gone: `cycle_id` deletes a
            // random id the request never loaded, at once) is a fresh login, not a conflict.
            let again = send(&app, "/login", Some(&pair(&new))).await;
            assert_eq!(again.status, 200, "scoped: {scoped}: {again:?}");
            let (state, _) = fx.stored(set_cookie(&again).value()).await.unwrap();
            assert_eq!(state["user"], "\"mallory\"");
        }
    });
}

/// A logout whose delete fails (the store unavailable) through [`TowerScopeLayer`]: the
/// layer sends that delete after the handler, and its answer is 503 with no `Set-Cookie`, so
/// the browser keeps the cookie of the session, which is still stored, and can log out again
/// once the store is back. A load that fails as unavailable answers 503 too (tower-sessions
/// and axum-login answer an empty 500 for every store error).
#[test]
fn a_logout_whose_delete_fails_is_503_and_keeps_the_cookie_with_the_scope() {
    local(async {
        let server = RedisServer::start();
        let (fx, probe, app) = probed_login(&server, true);
        let cookie = inserted(&app).await;
        probe.fail(Op::Delete, Some(Fault::Unavailable));
        let logout = send(&app, "/logout", Some(&pair(&cookie))).await;
        probe.fail(Op::Delete, None);
        assert_eq!(logout.status, 503, "the failed logout answered {logout:?}");
        assert!(logout.set_cookie.is_empty(), "{logout:?}");
        assert!(fx.stored(cookie.value()).await.is_some(), "still stored");
        let logout = send(&app, "/logout", Some(&pair(&cookie))).await;
        assert_eq!(logout.status, 200);
        assert_eq!(set_cookie(&logout).max_age(), Some(Duration::ZERO));
        assert!(fx.stored(cookie.value()).await.is_none());

        let cookie = inserted(&app).await;
        probe.fail(Op::Load, Some(Fault::Unavailable));
        let login = send(&app, "/login", Some(&pair(&cookie))).await;
        probe.fail(Op::Load, None);
        assert_eq!(login.status, 503, "a failed load answered {login:?}");
        assert!(login.set_cookie.is_empty(), "{login:?}");
    });
}

/// A logout whose request is dropped after the handler's `flush` (a client gone, a timeout
/// layer) through [`TowerScopeLayer`], which holds the delete until the handler is done: the
/// delete is still sent.
#[test]
fn a_logout_sticks_when_its_request_is_dropped_with_the_scope() {
    local(async {
        let server = RedisServer::start();
        let (fx, probe, app) = probed_login(&server, true);
        let cookie = inserted(&app).await;
        probe.reset();
        let dropped = tokio::time::timeout(
            StdDuration::from_millis(300),
            send(&app, "/logout-then-hang", Some(&pair(&cookie))),
        )
        .await;
        assert!(dropped.is_err(), "the request hangs");
        for _ in 0..100 {
            if fx.stored(cookie.value()).await.is_none() {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!(
            "the dropped logout left the session ({} deletes sent)",
            probe.count(Op::Delete)
        );
    });
}

/// The outer session layer's `Session`, which the inner layer's replaces in the request's
/// extensions (as axum-login's `AuthManagerLayer` keeps its own layer's session).
#[derive(Clone)]
struct Outer(Session);

/// Two session layers on one route, over two stores (two Redis servers), with
/// [`TowerScopeLayer`] outside both: a logout (`flush`) of the outer layer's session and a
/// new session of the inner layer's (a "logged out" note) in one handler. The inner layer's
/// `create` runs first, after the handler: it must not take the outer session's held delete
/// (it sent it to its own store, where it found nothing, and answered 409 with the logout
/// never sent, leaving the session stored).
#[test]
fn a_logout_under_one_layer_is_not_taken_by_another_layers_create() {
    use axum::{extract::Request, middleware::Next, Extension};
    local(async {
        let (outer, inner) = (Fixture::redis().await, Fixture::redis().await);
        let app = Router::new()
            .route(
                "/insert-outer",
                get(|Extension(Outer(s)): Extension<Outer>| async move {
                    s.insert("foo", 42).await.unwrap();
                }),
            )
            .route(
                "/logout-with-note",
                get(
                    |Extension(Outer(a)): Extension<Outer>, b: Session| async move {
                        let _ = a.get::<usize>("foo").await.unwrap();
                        a.flush().await.unwrap();
                        b.insert("note", "logged out").await.unwrap();
                    },
                ),
            )
            .layer(
                SessionManagerLayer::new(inner.tower())
                    .with_name("inner")
                    .with_secure(true),
            )
            .layer(axum::middleware::from_fn(
                |mut req: Request, next: Next| async move {
                    let outer = req.extensions().get::<Session>().cloned().unwrap();
                    req.extensions_mut().insert(Outer(outer));
                    next.run(req).await
                },
            ))
            .layer(
                SessionManagerLayer::new(outer.tower())
                    .with_name("outer")
                    .with_secure(true),
            )
            .layer(TowerScopeLayer::new());
        let login = send(&app, "/insert-outer", None).await;
        assert_eq!(login.status, 200, "{login:?}");
        let cookie = set_cookie(&login);
        assert_eq!(cookie.name(), "outer");
        assert!(outer.stored(cookie.value()).await.is_some());

        let logout = send(&app, "/logout-with-note", Some(&pair(&cookie))).await;
        assert_eq!(logout.status, 200, "the logout answered {logout:?}");
        assert!(
            outer.stored(cookie.value()).await.is_none(),
            "the logged-out session is still stored"
        );
        let note = logout
            .set_cookie
            .iter()
            .map(|h| Cookie::parse_encoded(h.clone()).unwrap())
            .find(|c| c.name() == "inner")
            .unwrap_or_else(|| panic!("no note cookie: {logout:?}"));
        assert!(
            inner.stored(note.value()).await.is_some(),
            "the note is stored"
        );
    });
}

/// A handler that got past a failed session load (the store unavailable: it serves the
/// request as anonymous) and then failed on its own, answering a 500 with its own message,
/// through [`TowerScopeLayer`]: its answer is kept. The layer replaces only the empty 500 of
/// tower-sessions and axum-login (asserted by
/// `a_logout_whose_delete_fails_is_503_and_keeps_the_cookie_with_the_scope`), where it
/// answered this one 503 "session store unavailable" and dropped the handler's message.
#[test]
fn a_handlers_own_500_is_not_rewritten_with_the_scope() {
    use axum::http::StatusCode;
    local(async {
        let server = RedisServer::start();
        let (store, probe) = probed(&server);
        let tower = TowerStore::new(store);
        let app = routes()
            .route(
                "/report",
                get(|s: Session| async move {
                    // The session is optional here: a failed load is served as anonymous.
                    let _ = s.get::<usize>("foo").await;
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the report service failed",
                    )
                }),
            )
            .layer(SessionManagerLayer::new(tower).with_secure(true))
            .layer(TowerScopeLayer::new());
        let cookie = inserted(&app).await;
        probe.fail(Op::Load, Some(Fault::Unavailable));
        let report = send(&app, "/report", Some(&pair(&cookie))).await;
        probe.fail(Op::Load, None);
        assert_eq!(report.status, 500, "{report:?}");
        assert_eq!(report.body, "the report service failed");
    });
}

/// A logout whose handler `flush`es without reading the session first (tower-sessions then
/// deletes without a load, so [`TowerScopeLayer`] has nothing to hold and the delete goes
/// from the handler), and whose request is dropped while that delete is on its way (a
/// client that closes the tab): the delete still reaches the store. It was sent in the
/// request's future, and dropped with it: the session outlived its logout.
#[test]
fn a_logout_without_a_load_sticks_when_its_request_is_dropped() {
    local(async {
        let server = RedisServer::start();
        let (store, probe) = probed(&server);
        let fx = Fixture {
            store,
            redis: None,
            _dir: None,
        };
        let app = routes()
            .layer(SessionManagerLayer::new(fx.tower()).with_secure(true))
            .layer(TowerScopeLayer::new());
        let cookie = inserted(&app).await;
        let pause = probe.pause(Op::Delete);
        let sent = pair(&cookie);
        tokio::select! {
            answer = send(&app, "/flush", Some(&sent)) => {
                panic!("the delete was never sent: {answer:?}")
            }
            () = pause.reached() => {}
        }
        // The request is dropped with its delete held at the probe; the delete goes on.
        pause.release();
        for _ in 0..100 {
            if fx.stored(cookie.value()).await.is_none() {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("the dropped logout left the session stored");
    });
}
