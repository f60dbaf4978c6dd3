//! Both demos take their cookie from the configuration (`SESSION_COOKIE_*`, django's names),
//! read from the environment exactly as their binaries read it, and still share one session.

mod common;

use common::{checks::send, env_demos};
use session_e2e::DemoEnv;

const SECRET: &str = "a-cookie-secret-of-at-least-sixty-four-characters-for-both-demos!!";

#[actix_web::test]
async fn both_demos_follow_the_cookie_settings_and_share_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let env = DemoEnv::from_vars([
        ("SESSION_SECRET", SECRET),
        ("SESSION_REDIS_MODE", "False"),
        (
            "SESSION_FILESTORE_PATH",
            dir.path().join("s").to_str().unwrap(),
        ),
        ("SESSION_COOKIE_NAME", "sessionid"),
        ("SESSION_COOKIE_AGE", "600"),
        ("SESSION_COOKIE_SAMESITE", "Strict"),
        ("SESSION_COOKIE_SECURE", "true"),
    ]);
    let demos = env_demos::start_in(&env).await;
    for base in [&demos.actix, &demos.axum] {
        let res = send("POST", &format!("{base}/login?user=ada"), None, None).await;
        assert_eq!(res.status.as_u16(), 200, "{base}: {res:?}");
        let header = &res.set_cookie[0];
        for part in [
            "sessionid=",
            "Max-Age=600",
            "SameSite=Strict",
            "Secure",
            "HttpOnly",
        ] {
            assert!(header.contains(part), "{base}: {part} in {header}");
        }
        // The other demo reads the session of this one's cookie.
        let pair = res.cookie_pair();
        for other in [&demos.actix, &demos.axum] {
            let res = send("GET", &format!("{other}/whoami"), Some(&pair), None).await;
            assert_eq!(res.body, "ada", "{base} -> {other}");
        }
    }
    demos.actix_handle.stop(true).await;

    // A bad setting stops the demo at start-up, naming the key.
    let env = DemoEnv::from_vars([
        ("SESSION_SECRET", SECRET),
        ("SESSION_REDIS_MODE", "False"),
        (
            "SESSION_FILESTORE_PATH",
            dir.path().join("s").to_str().unwrap(),
        ),
        ("SESSION_COOKIE_PATH", "no-slash"),
    ]);
    let err = session_e2e::DemoSettings::from_demo_env(&env)
        .await
        .unwrap_err();
    assert!(err.contains("session_cookie_path"), "{err}");
}
