//! `GET /app`: the one HTML page both demos serve, from one template
//! ([`TEMPLATE`], `src/app_page.html`, no build step, nothing loaded from elsewhere).
//!
//! The page shows which framework served it, the user, the counter, a login form, a logout
//! button and the store's health. Its script calls the demo's own routes (`/whoami`, `/read`,
//! `/counter`, `/login`, `/logout`, `/healthz`) and turns their errors into sentences: 503
//! "try again in a moment", 413 "too large, nothing was saved", 400 with the short reason.
//!
//! The route sits outside the session layer in both demos: the page is the same for everyone,
//! so it costs no store call and still loads while the store is down (to say so).
//!
//! The user name is hostile input. The page writes it with `textContent` only, and the answer
//! carries a Content-Security-Policy that allows no script or style but the page's own (a fresh
//! nonce per answer), no connection but to its own origin, no framing, and requires Trusted Types
//! so that no markup sink (`innerHTML`, ...) accepts a string. With `nosniff` and an explicit
//! `text/html; charset=utf-8`, as every other answer of the demos.

/// The page, with `{{framework}}` and `{{nonce}}` to fill in.
pub const TEMPLATE: &str = include_str!("app_page.html");

/// The `Content-Type` of the page.
pub const TEXT_HTML: &str = "text/html; charset=utf-8";

/// Which framework served the page, shown at its top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `examples/actix_demo.rs`.
    Actix,
    /// `examples/axum_demo.rs`.
    Axum,
}

impl Framework {
    /// The name the page shows.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Actix => "actix-web",
            Framework::Axum => "axum",
        }
    }
}

/// One answer of `GET /app`: the body and every header it needs besides `nosniff` (which the
/// demos' outermost layer adds to every answer).
///
/// ```
/// use session_e2e::app_page::{AppPage, Framework};
///
/// let page = AppPage::render(Framework::Axum);
/// assert!(page.body.contains(r#"<strong id="framework">axum</strong>"#));
/// let headers = page.headers();
/// let (_, csp) = headers.iter().find(|(name, _)| *name == "content-security-policy").unwrap();
/// assert!(csp.contains("script-src 'nonce-"));
/// ```
#[derive(Debug, Clone)]
pub struct AppPage {
    /// The HTML.
    pub body: String,
    /// The nonce the page's `<script>` and `<style>` carry; fresh for every answer, so that a
    /// script injected into the page could not guess it.
    nonce: String,
}

impl AppPage {
    /// The page as `framework` serves it, with a fresh nonce.
    pub fn render(framework: Framework) -> Self {
        let nonce = fresh_nonce();
        // Both values are ours (a fixed name, hex digits): nothing from a client is spliced in.
        let body = TEMPLATE
            .replace("{{framework}}", framework.name())
            .replace("{{nonce}}", &nonce);
        Self { body, nonce }
    }

    /// The headers of the answer, names in lower case: content type, CSP, no caching (the
    /// nonce must not be replayed from a cache), no referrer, no framing.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        let nonce = &self.nonce;
        [
            ("content-type", TEXT_HTML.to_owned()),
            (
                "content-security-policy",
                format!(
                    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
                     connect-src 'self'; img-src data:; form-action 'self'; base-uri 'none'; \
                     frame-ancestors 'none'; require-trusted-types-for 'script'"
                ),
            ),
            ("cache-control", "no-store".to_owned()),
            ("referrer-policy", "no-referrer".to_owned()),
            ("x-frame-options", "DENY".to_owned()),
        ]
    }
}

/// 128 random bits as hex.
fn fresh_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_and_the_nonce_is_fresh() {
        let a = AppPage::render(Framework::Actix);
        let b = AppPage::render(Framework::Actix);
        assert!(!a.body.contains("{{"), "a placeholder is left");
        assert!(a
            .body
            .contains(r#"<strong id="framework">actix-web</strong>"#));
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 32);
        // The script and the style carry the nonce the policy names.
        assert_eq!(
            a.body.matches(&format!(r#"nonce="{}""#, a.nonce)).count(),
            2
        );
        let csp = &a.headers()[1].1;
        assert!(
            csp.contains(&format!("script-src 'nonce-{}'", a.nonce)),
            "{csp}"
        );
    }

    /// The template never writes server text as markup: no `innerHTML`, `outerHTML`,
    /// `insertAdjacentHTML` or `document.write` (Trusted Types would refuse them anyway).
    #[test]
    fn the_script_uses_no_markup_sink() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!TEMPLATE.contains(sink), "the template uses {sink}");
        }
    }
}
