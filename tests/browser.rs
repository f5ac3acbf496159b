//! The login pages in a real browser: headless Chromium (Debian's), driven through
//! chromedriver's WebDriver HTTP API, logs a user in, consents, and lands on the
//! client's redirect URI. This is what proves the pages work under their own
//! Content-Security-Policy (Chrome applies `form-action` to the redirect after a form).
//!
//! Needs `chromium` and `chromium-driver`; `.ci/run` installs them. Outside CI, the test
//! says it is skipped when they are missing; in CI (`CI` set) it fails instead.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Driver {
    async fn start() -> Option<Self> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install chromium and chromium-driver"
            );
            eprintln!(
                "SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut driver = Self {
            child,
            base,
            session: String::new(),
            http,
        };
        let ready = eventually(Duration::from_secs(20), || async {
            driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .is_ok()
        })
        .await;
        assert!(ready, "chromedriver answers");
        let profile = tempfile::tempdir().expect("profile dir").keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created = driver.call("POST", "/session", Some(caps)).await;
        driver.session = created["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        Some(driver)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response: Value = request
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("json");
        response["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    async fn current_url(&self) -> String {
        self.session_call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .session_call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.session_call("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    /// Waits until the page shows `text` (a click's navigation may still be under way).
    async fn wait_for_text(&self, text: &str) {
        let mut seen = String::new();
        for _ in 0..100 {
            seen = self.page_text().await;
            if seen.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never showed {text:?}; it shows {seen:?} at {}",
            self.current_url().await
        );
    }

    async fn page_text(&self) -> String {
        let body = self.find("body").await.expect("a body");
        self.session_call("GET", &format!("/element/{body}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
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
    let Some(driver) = Driver::start().await else {
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

    driver.goto(authorize.as_str()).await;
    driver.wait_for_text("Browser Test CLI").await;
    driver.type_into("#username", "carol").await;
    driver.type_into("#password", "wrong").await;
    driver.click("button[type=submit]").await;
    driver
        .wait_for_text("Incorrect username or password.")
        .await;
    driver.type_into("#password", SERVICE_SECRET).await;
    driver.click("button[type=submit]").await;
    driver.wait_for_text("Allow access?").await;
    driver.click("button[value=allow]").await;

    let mut landed = String::new();
    for _ in 0..100 {
        landed = driver.current_url().await;
        if landed.starts_with(&redirect_uri) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        landed.starts_with(&redirect_uri),
        "the browser reached the callback, not {landed}"
    );
    driver.wait_for_text("callback ok").await;
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
    driver.session_call("DELETE", "", None).await;
}
