//! The login pages in a real browser: headless Chromium (Debian's), driven through
//! chromedriver with fantoccini, logs a user in, consents, and lands on the client's
//! redirect URI. This is what proves the pages work under their own
//! Content-Security-Policy (Chrome applies `form-action` to the redirect after a form).
//!
//! Needs `chromium` and `chromium-driver`; `.ci/run` installs them. Outside CI, the test
//! says it is skipped when they are missing; in CI (`CI` set) it fails instead.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a step waits for.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// Says a test is skipped because `what` is missing, or fails in CI.
fn skip_unless_ci(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
    eprintln!("SKIPPED: {what} is missing");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A headless Chromium session behind its own chromedriver.
struct Chromium {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // chromedriver runs in its own process group with the browser it started:
        // end the group, then reap the driver.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Chromium {
    /// Starts chromedriver and a fresh browser profile; `None` (skipped) when they are
    /// not installed outside CI.
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            skip_unless_ci(&format!(
                "{CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
            ));
            return None;
        }
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts")
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = eventually(PAGE_WAIT, || async {
            http.get(format!("{webdriver}/status")).send().await.is_ok()
        })
        .await;
        assert!(ready, "chromedriver answers");
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let caps = caps
            .as_object()
            .cloned()
            .expect("capabilities are an object");
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("a chromium session");
        Some(Self {
            driver,
            client,
            _profile: profile,
        })
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(String::from)
            .unwrap_or_default()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    /// The element `css` names, once the page has one.
    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no {css} on the page at {} ({e}); it shows {:?}",
                self.current_url().await,
                self.page_text().await
            ),
        }
    }

    /// Waits until the page shows `text` (a click's navigation may still be under way).
    async fn wait_for_text(&self, text: &str) {
        let shown = eventually(PAGE_WAIT, || async {
            self.page_text().await.contains(text)
        })
        .await;
        assert!(
            shown,
            "the page never showed {text:?}; it shows {:?} at {}",
            self.page_text().await,
            self.current_url().await
        );
    }

    async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// A stand-in for the client's callback: answers every request with a small page.
fn callback_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok).take(16) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 18\r\nconnection: close\r\n\r\n<p>callback ok</p>");
        }
    });
    port
}

#[tokio::test]
async fn chromium_logs_in_consents_and_reaches_the_client() {
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    let callback_port = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let server = TestServer::start(&config_with(&format!(
        r#"
[[clients]]
id = "cli"
name = "Browser Test CLI"
public = true
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid", "profile"]

[[users]]
username = "carol"
password_hash = "{}"
name = "Carol"
"#,
        service_hash()
    )))
    .await;
    let pkce = common::browser::Pkce::new("chromium");
    let mut authorize = url::Url::parse(&server.url("/authorize")).expect("url");
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "cli"),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid profile"),
        ("state", "chromium-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);

    chromium.goto(authorize.as_str()).await;
    chromium.wait_for_text("Browser Test CLI").await;
    chromium.type_into("#username", "carol").await;
    chromium.type_into("#password", "wrong").await;
    chromium.click("button[type=submit]").await;
    chromium
        .wait_for_text("Incorrect username or password.")
        .await;
    chromium.type_into("#password", SERVICE_SECRET).await;
    chromium.click("button[type=submit]").await;
    chromium.wait_for_text("Allow access?").await;
    chromium.click("button[value=allow]").await;

    let reached = eventually(PAGE_WAIT, || async {
        chromium.current_url().await.starts_with(&redirect_uri)
    })
    .await;
    let landed = chromium.current_url().await;
    assert!(reached, "the browser reached the callback, not {landed}");
    chromium.wait_for_text("callback ok").await;
    let params: std::collections::HashMap<String, String> = url::Url::parse(&landed)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["state"], "chromium-state");
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    chromium.close().await;
}
