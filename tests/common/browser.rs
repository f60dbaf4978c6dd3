//! A headless chromium driven over WebDriver (fantoccini), and the waits the page tests need.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use session_testkit::Chromedriver;
use tokio::time::{sleep, Instant};

/// How long the page may take to show what a test expects. Generous: it bounds a failure,
/// never a success (a passing wait returns as soon as the page shows the value).
const PATIENCE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);
/// Between two reloads of [`Browser::reload_until`].
const RELOAD_POLL: Duration = Duration::from_millis(200);

/// A browser session and the chromedriver behind it. Dropping it (a test that panics) kills
/// the driver and every browser process with it; [`Browser::close`] ends the session first.
pub struct Browser {
    pub client: Client,
    // Dropped after `client`: the driver outlives the session.
    _driver: Chromedriver,
}

impl Browser {
    /// A fresh headless chromium with an empty profile (no cookie from another test).
    pub async fn start() -> Browser {
        let driver = Chromedriver::start();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": driver.chromium(),
                "args": [
                    "--headless=new",
                    format!("--user-data-dir={}", driver.profile_dir().display()),
                    // Chromium's sandbox needs user namespaces, which containers (and root)
                    // often lack; the browser only ever opens our loopback pages.
                    "--no-sandbox",
                    // Docker's /dev/shm is 64 MB, too small for chromium.
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=820,820",
                    // Loopback only: nothing that calls home.
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-default-apps",
                    "--disable-extensions",
                    "--disable-sync",
                    "--disable-breakpad",
                    "--password-store=basic",
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "cannot open a chromium session: {err}\nchromedriver log tail:\n{}",
                    driver.log_tail(30)
                )
            });
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Ends the browser session, then the driver.
    pub async fn close(self) {
        let Browser { client, _driver } = self;
        let _ = client.close().await;
    }

    /// Opens `url` in the current tab and waits until the page has loaded what it shows.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
        self.settled().await;
    }

    /// Reloads the current tab and waits until the page has loaded what it shows.
    pub async fn reload(&self) {
        self.client.refresh().await.unwrap();
        self.settled().await;
    }

    /// Opens `url` in a new tab, which becomes current; returns the tab.
    pub async fn open_tab(&self, url: &str) -> fantoccini::wd::WindowHandle {
        let tab = self.client.new_window(true).await.unwrap().handle;
        self.client.switch_to_window(tab.clone()).await.unwrap();
        self.open(url).await;
        tab
    }

    /// Makes `tab` current.
    pub async fn switch_to(&self, tab: &fantoccini::wd::WindowHandle) {
        self.client.switch_to_window(tab.clone()).await.unwrap();
    }

    /// Clicks the element with this id.
    pub async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Types `user` into the login form and submits it.
    pub async fn log_in(&self, user: &str) {
        let input = self.client.find(Locator::Id("user-input")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(user).await.unwrap();
        self.click("login-button").await;
    }

    /// Logs `user` in and waits until the page shows them logged in.
    pub async fn log_in_as(&self, user: &str) {
        self.log_in(user).await;
        self.expect_text("user", user).await;
    }

    /// The text of the element with this id, as the page shows it.
    pub async fn text(&self, id: &str) -> String {
        let script = "return document.getElementById(arguments[0]).textContent";
        let value = self.client.execute(script, vec![id.into()]).await.unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the page is done with its last action (`body[data-state=ready]`).
    pub async fn settled(&self) {
        self.wait_for("the page to settle", |b| async move {
            b.page_state().await == "ready"
        })
        .await;
    }

    /// `body[data-state]`: `busy` while an action runs, `ready` once the page shows its result.
    async fn page_state(&self) -> String {
        let value = self
            .client
            .execute("return document.body.dataset.state || ''", vec![])
            .await
            .unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element with this id shows exactly `want`, the page settled.
    pub async fn expect_text(&self, id: &str, want: &str) {
        let what = format!("#{id} to show {want:?}");
        self.wait_for(&what, |b| async move {
            b.page_state().await == "ready" && b.text(id).await == want
        })
        .await;
    }

    /// Waits until the message line contains `part`, the page settled.
    pub async fn expect_message(&self, part: &str) {
        let what = format!("the message to contain {part:?}");
        self.wait_for(&what, |b| async move {
            b.page_state().await == "ready" && b.text("message").await.contains(part)
        })
        .await;
    }

    /// Reloads the page until `done` holds, for what the servers reach by themselves (a
    /// store seen down, or reconnected); panics after [`PATIENCE`] with what the page shows.
    pub async fn reload_until<'a, F, Fut>(&'a self, what: &str, done: F)
    where
        F: Fn(&'a Browser) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.wait_for(what, |b| {
            let check = done(b);
            async move {
                let shown = check.await;
                if !shown {
                    sleep(RELOAD_POLL).await;
                    b.reload().await;
                }
                shown
            }
        })
        .await;
    }

    /// Polls `done` until it holds; panics after [`PATIENCE`] with what the page shows.
    async fn wait_for<'a, F, Fut>(&'a self, what: &str, done: F)
    where
        F: Fn(&'a Browser) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + PATIENCE;
        while !done(self).await {
            if Instant::now() > deadline {
                panic!(
                    "waited {PATIENCE:?} for {what}; the page shows user {:?}, counter {:?}, \
                     health {:?}, message {:?}",
                    self.text("user").await,
                    self.text("counter").await,
                    self.text("health").await,
                    self.text("message").await,
                );
            }
            sleep(POLL).await;
        }
    }
}
