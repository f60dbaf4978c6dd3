//! `middleware_from_config`: the `session_cookie_*` settings (django's names) mapped onto
//! actix-session's middleware, over the memory, file and Redis stores, and the cookie it makes
//! opening in the axum layer built from the same configuration.

use std::time::Duration;

use actix_session::Session;
use actix_web::{cookie::Key, middleware::from_fn, test, web, App, HttpResponse};
use session_actix::{middleware_from_config, request_scope, ActixStore};
use session_core::{
    backends::{file::FileBackend, redis::RedisBackend},
    testing::probe::{Call, ProbeBackend},
    SessionConfig, SessionStore,
};
use session_testkit::RedisServer;

const KEY_MATERIAL: [u8; 64] = [42; 64];

async fn login(session: Session) -> actix_web::Result<HttpResponse> {
    session.insert("user", "alice")?;
    Ok(HttpResponse::Ok().finish())
}

async fn touch_nothing(_session: Session) -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn config(vars: &[(&str, &str)]) -> SessionConfig {
    SessionConfig::from_sources(None, vars.iter().copied()).unwrap()
}

#[actix_web::test]
async fn cookie_settings_from_configuration_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let backends = [
        ("memory", ProbeBackend::memory()),
        (
            "file",
            ProbeBackend::new(FileBackend::new(dir.path().join("s")).unwrap()),
        ),
        (
            "redis",
            ProbeBackend::new(
                RedisBackend::from_config(&SessionConfig {
                    url: Some(redis.url()),
                    ..SessionConfig::default()
                })
                .unwrap(),
            ),
        ),
    ];
    let persistent = config(&[
        ("SESSION_COOKIE_NAME", "sessionid"),
        ("SESSION_COOKIE_AGE", "1209600"),
        ("SESSION_COOKIE_DOMAIN", "example.com"),
        ("SESSION_COOKIE_PATH", "/"),
        ("SESSION_COOKIE_SECURE", "False"),
        ("SESSION_COOKIE_SAMESITE", "Strict"),
        ("SESSION_SAVE_EVERY_REQUEST", "True"),
    ]);
    for (name, backend) in backends {
        let store = ActixStore::new(SessionStore::new(backend.clone()));
        let key = Key::from(&KEY_MATERIAL);
        let app = test::init_service(
            App::new()
                .wrap(
                    middleware_from_config(store, key, &persistent)
                        .unwrap()
                        .build(),
                )
                .wrap(from_fn(request_scope))
                .route("/login", web::post().to(login))
                .route("/none", web::get().to(touch_nothing)),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::post().uri("/login").to_request()).await;
        let cookie = res.response().cookies().next().unwrap().into_owned();
        assert_eq!(cookie.name(), "sessionid", "{name}");
        assert_eq!(cookie.domain(), Some("example.com"));
        assert_eq!(cookie.path(), Some("/"));
        assert_ne!(cookie.secure(), Some(true), "{name}");
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(
            cookie.same_site(),
            Some(actix_web::cookie::SameSite::Strict)
        );
        assert_eq!(
            cookie.max_age(),
            Some(actix_web::cookie::time::Duration::seconds(1_209_600))
        );
        assert_eq!(
            backend.calls().last(),
            Some(&Call::Create(Some(Duration::from_secs(1_209_600)))),
            "{name}"
        );
        // Save every request: an untouched session still gets its TTL refreshed.
        backend.take_calls();
        let req = test::TestRequest::get()
            .uri("/none")
            .cookie(cookie.clone())
            .to_request();
        test::call_service(&app, req).await;
        assert!(
            backend
                .calls()
                .contains(&Call::Touch(Some(Duration::from_secs(1_209_600)))),
            "{name}: {:?}",
            backend.calls()
        );

        // The axum layer from the same configuration opens actix's cookie.
        let pair = format!("{}={}", cookie.name(), cookie.value());
        let axum_layer = session_axum::SessionLayer::from_config(
            SessionStore::new(backend.clone()),
            session_axum::Key::from(&KEY_MATERIAL),
            &persistent,
        )
        .unwrap();
        let router = axum::Router::new()
            .route(
                "/whoami",
                axum::routing::get(|s: session_axum::Session| async move {
                    s.get::<String>("user").await.map(Option::unwrap_or_default)
                }),
            )
            .layer(axum_layer);
        let res = tower::ServiceExt::oneshot(
            router,
            session_testkit::http::request("GET", "/whoami", Some(&pair), None),
        )
        .await
        .unwrap();
        let answer = session_testkit::http::Answer::read(res).await;
        assert_eq!(answer.body, "alice", "{name}");
    }

    // Without an age: a browser-session cookie, the state kept one day.
    let backend = ProbeBackend::memory();
    let store = ActixStore::new(SessionStore::new(backend.clone()));
    let app = test::init_service(
        App::new()
            .wrap(
                middleware_from_config(store, Key::from(&KEY_MATERIAL), &config(&[]))
                    .unwrap()
                    .build(),
            )
            .route("/login", web::post().to(login)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::post().uri("/login").to_request()).await;
    let cookie = res.response().cookies().next().unwrap().into_owned();
    assert_eq!(cookie.name(), "id");
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(
        backend.calls().last(),
        Some(&Call::Create(Some(Duration::from_secs(86_400))))
    );

    // A bad setting names its key.
    let bad = SessionConfig {
        cookie_name: Some("a;b".into()),
        ..SessionConfig::default()
    };
    let store = ActixStore::new(SessionStore::memory());
    let err = middleware_from_config(store, Key::generate(), &bad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("session_cookie_name"), "{err}");
}
