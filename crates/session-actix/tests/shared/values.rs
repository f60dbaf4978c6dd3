//! Values and key names written through one framework read back the same through the other,
//! on one cookie and one store (a real `redis-server`, and the file store): keys that look like
//! the layout's record names (`=`, `-`), quotes, escapes, control and non-ASCII characters, the
//! empty key, a long key; values of every JSON kind, at the edges of numbers, nested, long.
//! The memory store too (one process serving both frameworks).

use std::collections::BTreeMap;

use crate::common::redis_store;
use actix_session::{config::PersistentSession, Session, SessionMiddleware};
use actix_web::{
    cookie::{time, Cookie, Key},
    middleware::from_fn,
    test, web, App, HttpResponse,
};
use serde_json::{json, Value};
use session_actix::{request_scope, ActixStore};
use session_core::SessionStore;
use session_testkit::RedisServer;

const KEY_MATERIAL: [u8; 64] = [13; 64];

type Entries = BTreeMap<String, Value>;

/// actix: sets every key of the body (`null` in `remove` removes it).
#[derive(serde::Deserialize)]
struct Put {
    set: Entries,
    remove: Vec<String>,
}

async fn actix_put(session: Session, body: web::Json<Put>) -> actix_web::Result<HttpResponse> {
    for (key, value) in &body.set {
        session.insert(key, value)?;
    }
    for key in &body.remove {
        session.remove(key);
    }
    Ok(HttpResponse::Ok().finish())
}

async fn actix_dump(session: Session) -> actix_web::Result<HttpResponse> {
    let entries: Entries = session
        .entries()
        .iter()
        .map(|(key, json)| (key.clone(), serde_json::from_str(json).unwrap()))
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}

fn axum_app(store: SessionStore) -> axum::Router {
    use axum::routing::{get, post};
    use session_axum::{Session, SessionError};
    axum::Router::new()
        .route(
            "/put",
            post(|s: Session, axum::Json(body): axum::Json<Put>| async move {
                for (key, value) in &body.set {
                    s.insert(key, value).await?;
                }
                for key in &body.remove {
                    s.remove::<Value>(key).await?;
                }
                Ok::<_, SessionError>("ok")
            }),
        )
        .route(
            "/dump",
            get(|s: Session| async move {
                let entries: Entries = s.entries().await?.into_iter().collect();
                Ok::<_, SessionError>(serde_json::to_string(&entries).unwrap())
            }),
        )
        .layer(session_axum::SessionLayer::new(
            store,
            session_axum::Key::from(&KEY_MATERIAL),
        ))
}

fn tricky_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "",
        "=",
        "-",
        "=user",
        "-user",
        "user",
        "\"",
        "\\",
        "a\"b",
        "a\\\"b",
        "\"=x\":1,",
        "é",
        "日本",
        "\u{0}",
        "\u{1f}",
        "\u{7f}",
        "\u{2028}",
        "{",
        "}",
        "[",
        ":",
        ",",
        " ",
        "v1:",
        "__expiry_",
        "_expiry",
        "🙂",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    keys.push("k".repeat(2000));
    keys
}

fn tricky_values() -> Vec<Value> {
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    vec![
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5e300),
        json!(-2.5e-300),
        json!(0.1),
        json!(""),
        json!("\""),
        json!("\\"),
        json!("\u{0}\u{1}\u{1f}\u{7f}"),
        json!("\u{2028}\u{2029}"),
        json!("é日本🙂"),
        json!("\"=user\":\"admin\""),
        json!("v1:x:{\"=a\":1"),
        json!([]),
        json!({}),
        json!({"": {"=": ["-", null, {"\"": 1}]}}),
        json!([1, "two", [3.0], {"four": false}]),
        deep,
        json!("x".repeat(20_000)),
    ]
}

async fn axum_send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    cookie: &Cookie<'static>,
    body: Option<String>,
) -> String {
    let pair = format!("{}={}", cookie.name(), cookie.value());
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", pair);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(axum::body::Body::from(body.unwrap_or_default()))
        .unwrap();
    let res = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    let answer = session_testkit::http::Answer::read(res).await;
    assert!(answer.status.is_success(), "{uri}: {}", answer.status);
    answer.body
}

#[actix_web::test]
async fn values_and_keys_cross_between_the_frameworks_unchanged() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        ("redis", redis_store(&redis)),
        (
            "file",
            SessionStore::new(
                session_core::backends::file::FileBackend::new(dir.path().join("s")).unwrap(),
            ),
        ),
        ("memory", SessionStore::memory()),
    ];
    let keys = tricky_keys();
    let values = tricky_values();
    for (name, core) in stores {
        let actix = test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(
                        ActixStore::new(core.clone()),
                        Key::from(&KEY_MATERIAL),
                    )
                    .session_lifecycle(
                        PersistentSession::default().session_ttl(time::Duration::hours(1)),
                    )
                    .build(),
                )
                .wrap(from_fn(request_scope))
                .route("/put", web::post().to(actix_put))
                .route("/dump", web::get().to(actix_dump)),
        )
        .await;
        let axum = axum_app(core.clone());

        // Every key with a value, the values rotating over the keys: written through actix.
        let mut expected: Entries = keys
            .iter()
            .enumerate()
            .map(|(i, key)| (key.clone(), values[i % values.len()].clone()))
            .collect();
        for (i, value) in values.iter().enumerate() {
            expected.insert(format!("value {i}"), value.clone());
        }
        let put = json!({"set": expected, "remove": []});
        let req = test::TestRequest::post()
            .uri("/put")
            .set_json(&put)
            .to_request();
        let res = test::call_service(&actix, req).await;
        assert!(res.status().is_success(), "{name}: {}", res.status());
        let cookie = crate::common::session_cookie(&res).expect("a session cookie");

        // Read through axum: exactly what actix wrote.
        let seen: Entries =
            serde_json::from_str(&axum_send(&axum, "GET", "/dump", &cookie, None).await).unwrap();
        assert_eq!(seen, expected, "{name}: actix → axum");

        // Changed through axum (other values on half the keys, a quarter removed): read
        // through actix.
        let mut set = Entries::new();
        let mut remove = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match i % 4 {
                0 => remove.push(key.clone()),
                1 => {
                    set.insert(key.clone(), values[(i * 7 + 3) % values.len()].clone());
                }
                _ => {}
            }
        }
        for key in &remove {
            expected.remove(key);
        }
        expected.extend(set.clone());
        let body = json!({"set": set, "remove": remove}).to_string();
        axum_send(&axum, "POST", "/put", &cookie, Some(body)).await;
        let req = test::TestRequest::get()
            .uri("/dump")
            .cookie(cookie.clone())
            .to_request();
        let res = test::call_service(&actix, req).await;
        assert!(res.status().is_success(), "{name}: {}", res.status());
        let seen: Entries = test::read_body_json(res).await;
        assert_eq!(seen, expected, "{name}: axum → actix");

        // And back once more through actix (a write on top of axum's), read by axum.
        let set: Entries = keys
            .iter()
            .step_by(3)
            .map(|key| (key.clone(), json!({"again": key})))
            .collect();
        expected.extend(set.clone());
        let req = test::TestRequest::post()
            .uri("/put")
            .cookie(cookie.clone())
            .set_json(json!({"set": set, "remove": []}))
            .to_request();
        let res = test::call_service(&actix, req).await;
        assert!(res.status().is_success(), "{name}: {}", res.status());
        let seen: Entries =
            serde_json::from_str(&axum_send(&axum, "GET", "/dump", &cookie, None).await).unwrap();
        assert_eq!(seen, expected, "{name}: actix again → axum");
    }
}
