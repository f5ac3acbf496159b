//! Real browsers: headless Chromium (Debian's), driven through chromedriver with
//! fantoccini.
//!
//! - The login pages: a user logs in, consents, and lands on the client's redirect URI.
//!   This proves the pages work under their own Content-Security-Policy (Chrome applies
//!   `form-action` to the redirect after a form).
//! - The example single-page app (`examples/spa`, `oidc-client-ts` from its
//!   `node_modules`), served from another origin than gatehouse, against the example
//!   config's `demo-spa` client: login, tokens read by the app, a refresh with the
//!   refresh token, userinfo, logout. Every call the app makes is cross-origin, so this
//!   is what proves the CORS answers are what a browser wants.
//!
//! - The same app's DPoP page (`examples/spa/dpop.html`, oidc-client-ts's `dpop`
//!   setting) against the example's `demo-spa-dpop` client, with server nonces on:
//!   the code bound by `dpop_jkt`, tokens bound to the browser's key, a refresh with
//!   that key (and refused with another), userinfo as DPoP.
//!
//! - Passkeys: enrolment at `/account/passkeys` and a passkey login, with the WebDriver
//!   WebAuthn extension's virtual authenticator.
//!
//! - The device grant's pages: the code arrives pre-filled from
//!   `verification_uri_complete`, is confirmed by a click, the user logs in and allows
//!   the device, and the client's next poll gets the tokens.
//!
//! Needs `chromium` and `chromium-driver`, and `npm ci` in `examples/spa`; `.ci/run`
//! does both. Outside CI, a test says it is skipped when one is missing; in CI (`CI`
//! set) it fails instead.

use crate::support::*;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a step waits for.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// One browser at a time: the suite runs several tests at once, and two Chromiums
/// starting side by side on a small CI machine can keep a page past `PAGE_WAIT`.
static ONE_BROWSER: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A headless Chromium session behind its own chromedriver.
struct Chromium {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
    /// Held until the browser has ended (fields drop after `Drop::drop`).
    _turn: tokio::sync::SemaphorePermit<'static>,
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

/// The URL of the WebDriver session's extension command `path`.
fn session_endpoint(
    base_url: &url::Url,
    session_id: Option<&str>,
    path: &str,
) -> Result<url::Url, url::ParseError> {
    base_url.join(&format!(
        "session/{}/{path}",
        session_id.unwrap_or_default()
    ))
}

/// chromedriver's log endpoint (Selenium's `se/log`): the browser console so far.
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        session_endpoint(base_url, session_id, "se/log")
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

impl Chromium {
    /// Starts chromedriver and a fresh browser profile; `None` (skipped) when they are
    /// not installed outside CI.
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            crate::support::skip::missing(
                "browser",
                &format!("{CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)"),
            );
            return None;
        }
        let turn = ONE_BROWSER
            .acquire()
            .await
            .expect("the semaphore is never closed");
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
        let http = crate::support::http_client();
        let ready = eventually(PAGE_WAIT, || async {
            http.get(format!("{webdriver}/status")).send().await.is_ok()
        })
        .await;
        assert!(ready, "chromedriver answers");
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
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
            _turn: turn,
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

    /// Fills in the login form as `username` with `password` and submits it.
    async fn sign_in(&self, username: &str, password: &str) {
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("button[type=submit]").await;
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

    /// The text of the element `css` names once it shows `text` (the page may show
    /// the same text elsewhere first).
    async fn text_of_once_it_shows(&self, css: &str, text: &str) -> String {
        let shown = eventually(PAGE_WAIT, || async {
            self.text_of(css).await.contains(text)
        })
        .await;
        let now = self.text_of(css).await;
        assert!(shown, "{css} never showed {text:?}; it shows {now:?}");
        now
    }

    /// The text of the element `css` names.
    async fn text_of(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    /// The value a script returns on the current page.
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// The browser console since the last call, one line per message.
    async fn console(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(ConsoleLog)
            .await
            .expect("console log");
        entries
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a screenshot as `name`.png in `$GATEHOUSE_SCREENSHOTS`, when it is set (for
    /// showing the pages; nothing is checked).
    async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("GATEHOUSE_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("write png");
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

/// A server with `clients` and the user carol (password [`SERVICE_SECRET`]).
async fn carol_server(clients: &str) -> TestServer {
    TestServer::start(&config_with(&format!(
        r#"{clients}
[[users]]
username = "carol"
password_hash = "{}"
name = "Carol"
"#,
        service_hash()
    )))
    .await
}

#[tokio::test]
async fn chromium_logs_in_consents_and_reaches_the_client() {
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    let callback_port = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let server = carol_server(
        r#"
[[clients]]
id = "cli"
name = "Browser Test CLI"
public = true
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid", "profile"]
"#,
    )
    .await;
    let pkce = crate::support::browser::Pkce::new("chromium");
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
    chromium.sign_in("carol", "wrong").await;
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
    let response = redeem_public(&server, &params["code"], &redirect_uri, &pkce).await;
    assert_eq!(response.status(), 200);
    chromium.close().await;
}

/// Redeems `code` for the public client `cli`.
async fn redeem_public(
    server: &TestServer,
    code: &str,
    redirect_uri: &str,
    pkce: &crate::support::browser::Pkce,
) -> reqwest::Response {
    server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token")
}

#[tokio::test]
async fn chromium_approves_a_device_code() {
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    let server = carol_server(&format!(
        r#"
[[clients]]
id = "tv"
name = "Browser Test TV"
public = true
first_party = true
grant_types = ["{device_grant}"]
scopes = ["openid", "profile"]
"#
    ))
    .await;
    let issued = server.device_authorization("tv", "openid profile").await;
    let user_code = issued["user_code"].as_str().expect("user_code");
    let device_code = issued["device_code"].as_str().expect("device_code");
    let poll = || async {
        let answer: Value = server
            .http
            .post(server.url("/token"))
            .form(&[
                ("grant_type", device_grant),
                ("client_id", "tv"),
                ("device_code", device_code),
            ])
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("json");
        server.clock().advance(Duration::from_secs(5));
        answer
    };
    assert_eq!(poll().await["error"], "authorization_pending");

    // Arriving from verification_uri_complete (on the test server's own address).
    let mut complete = url::Url::parse(&server.url("/device")).expect("url");
    complete
        .query_pairs_mut()
        .append_pair("user_code", user_code);
    chromium.goto(complete.as_str()).await;
    chromium.wait_for_text("Connect a device").await;
    let prefilled = chromium
        .eval("return document.querySelector('#user_code').value")
        .await;
    assert_eq!(
        prefilled,
        json!(user_code),
        "the code is filled in, not yet sent"
    );
    chromium.screenshot("device-1-code").await;
    chromium.click("button[type=submit]").await;
    chromium.wait_for_text("on the device showing").await;
    chromium.screenshot("device-2-login").await;
    chromium.sign_in("carol", SERVICE_SECRET).await;
    chromium.wait_for_text("Allow this device?").await;
    chromium.screenshot("device-3-confirm").await;
    let confirmation = chromium.page_text().await;
    eprintln!("device confirmation page: {confirmation:?}");
    assert!(confirmation.contains("Browser Test TV"), "{confirmation}");
    assert!(confirmation.contains(user_code), "{confirmation}");
    assert!(confirmation.contains("profile"), "{confirmation}");
    assert_eq!(poll().await["error"], "authorization_pending");
    chromium.click("button[value=allow]").await;
    chromium.wait_for_text("Device connected").await;
    chromium.screenshot("device-4-done").await;
    eprintln!("device done page: {:?}", chromium.page_text().await);
    let tokens = poll().await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    chromium.close().await;
}

/// Where the example SPA lives.
fn spa_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spa")
}

/// A static file server for `examples/spa` (its pages, its script, its
/// `node_modules`), as `python3 -m http.server` is in docs/clients.md.
async fn spa_file(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    let path = match req.path() {
        "/" => "/index.html",
        p => p,
    };
    let relative = path.trim_start_matches('/');
    if relative
        .split('/')
        .any(|s| s.is_empty() || s.starts_with('.'))
    {
        return HttpResponse::NotFound().finish();
    }
    let file = spa_dir().join(relative);
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        _ => "application/octet-stream",
    };
    match std::fs::read(&file) {
        Ok(bytes) => HttpResponse::Ok().content_type(content_type).body(bytes),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

/// Serves the SPA on 127.0.0.1 at a free port, which it returns.
fn serve_spa() -> (u16, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(spa_file))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (port, handle)
}

/// The app's signed-in user as it keeps it (oidc-client-ts, in sessionStorage).
async fn stored_user(chromium: &Chromium) -> Value {
    stored_user_of(chromium, "demo-spa").await
}

/// The signed-in user of the app's `client` (`demo-spa`, `demo-spa-dpop`).
async fn stored_user_of(chromium: &Chromium, client: &str) -> Value {
    let raw = chromium
        .eval(&format!("return sessionStorage.getItem('oidc.user:' + sessionStorage.getItem('demo-spa:issuer') + ':{client}');"))
        .await;
    match raw.as_str() {
        Some(text) => serde_json::from_str(text).expect("the stored user is JSON"),
        None => Value::Null,
    }
}

/// The example SPA served on `localhost`, gatehouse on `127.0.0.1` with the example
/// config as `edit` changes it: two origins, as in docs/clients.md. `None` (skipped)
/// without the SPA's `node_modules` or a browser.
async fn example_spa(
    test: &str,
    edit: impl FnOnce(String) -> String,
) -> Option<(Chromium, String, actix_web::dev::ServerHandle, TestServer)> {
    if !spa_dir()
        .join("node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js")
        .exists()
    {
        crate::support::skip::missing(
            test,
            "examples/spa/node_modules (cd examples/spa && npm ci)",
        );
        return None;
    }
    let chromium = Chromium::start().await?;
    let (spa_port, spa_server) = serve_spa();
    let spa = format!("http://localhost:{spa_port}");
    let gatehouse_port = free_port();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .expect("the example config");
    let config = edit(example)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gatehouse_port}"))
        .replace("http://localhost:5173", &spa);
    let server = TestServer::start(&config).await;
    assert_eq!(server.base, format!("http://127.0.0.1:{gatehouse_port}"));
    Some((chromium, spa, spa_server, server))
}

#[tokio::test]
async fn the_example_spa_logs_in_refreshes_calls_userinfo_and_logs_out_from_another_origin() {
    let Some((chromium, spa, spa_server, server)) = example_spa(
        "the_example_spa_logs_in_refreshes_calls_userinfo_and_logs_out_from_another_origin",
        |config| config,
    )
    .await
    else {
        return;
    };
    let issuer = server.base.clone();

    chromium.goto(&format!("{spa}/?issuer={issuer}")).await;
    chromium.wait_for_text("Signed out.").await;
    chromium.click("#login:enabled").await;

    // gatehouse's login page; demo-spa is first-party, so no consent page follows.
    chromium.wait_for_text("Demo single-page app").await;
    assert!(chromium.current_url().await.starts_with(&issuer));
    chromium.sign_in("demo", "demo-password").await;

    // Back at the app: the code was redeemed across origins, userinfo merged in.
    chromium
        .wait_for_text("Signed in as Demo User (sub u-1001)")
        .await;
    assert!(chromium.current_url().await.starts_with(&spa));
    let claims: Value =
        serde_json::from_str(&chromium.text_of("#claims").await).expect("claims are JSON");
    assert_eq!(claims["sub"], "u-1001");
    assert_eq!(claims["preferred_username"], "demo");
    assert_eq!(claims["email"], "demo@example.com");
    assert_eq!(claims["groups"], json!(["finance"]));
    let first = stored_user(&chromium).await;
    assert!(first["access_token"].is_string(), "{first}");
    assert!(first["refresh_token"].is_string(), "{first}");
    assert!(first["id_token"].is_string(), "{first}");

    // A silent refresh with the refresh token (no iframe, no page change).
    chromium.click("#refresh:enabled").await;
    chromium.wait_for_text("refresh token rotated: true").await;
    chromium.wait_for("body[data-state=signed-in]").await;
    let second = stored_user(&chromium).await;
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    // Userinfo with the new access token: a preflighted GET with Authorization.
    chromium.click("#userinfo:enabled").await;
    // The ID token's claims show the same name elsewhere on the page: wait for it in
    // the userinfo answer itself.
    let shown = chromium
        .text_of_once_it_shows("#userinfo-result", "\"preferred_username\": \"demo\"")
        .await;
    let userinfo: Value = serde_json::from_str(&shown).expect("userinfo is JSON");
    assert_eq!(userinfo["sub"], "u-1001");
    assert_eq!(userinfo["name"], "Demo User");

    // Logout: the app revokes its tokens, then gatehouse asks to confirm and returns.
    let last_refresh = second["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    chromium.wait_for("body[data-state=signed-in]").await;
    chromium.click("#logout:enabled").await;
    chromium.wait_for_text("Sign out?").await;
    assert!(chromium.current_url().await.starts_with(&issuer));
    chromium.click("button[type=submit]").await;
    chromium
        .wait_for_text("signed out at gatehouse and back")
        .await;
    chromium.wait_for("body[data-state=signed-out]").await;
    assert_eq!(chromium.current_url().await, format!("{spa}/"));
    assert_eq!(stored_user(&chromium).await, Value::Null);

    let page_log = chromium.text_of("#log").await;
    let console = chromium.console().await;
    eprintln!("---- the SPA's log, as the page shows it ----\n{page_log}");
    eprintln!("---- the browser console ----\n{}", console.join("\n"));
    assert!(
        !console.iter().any(|l| l.contains("CORS")),
        "the browser blocked nothing: {console:#?}"
    );
    assert!(
        page_log.contains("refresh_token revoked successfully"),
        "{page_log}"
    );

    // The app's last refresh token was revoked, and the gatehouse session is over:
    // the next login asks for the password again.
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-spa"),
            ("refresh_token", last_refresh.as_str()),
        ])
        .send()
        .await
        .expect("refresh");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(body["error_description"], "the token has been revoked");
    chromium.click("#login:enabled").await;
    chromium.wait_for("#password").await;

    chromium.close().await;
    spa_server.stop(true).await;
}

/// Headless Chromium signs in at one gatehouse through another (the upstream, on
/// `localhost` so that the two servers' cookies stay apart): the provider's button, the
/// upstream's login page, back through the callback to the client. It proves the
/// pages' CSP lets the whole chain through (the button's redirect to the upstream, and
/// the onward step after the upstream's form).
#[tokio::test]
async fn chromium_signs_in_through_an_upstream_gatehouse() {
    use crate::support::free_port;
    use crate::support::upstream::{PASSWORD, provider, start_downstream, upstream_config};
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    let (down_port, up_port) = (free_port(), free_port());
    let down_issuer = format!("http://127.0.0.1:{down_port}");
    let up_issuer = format!("http://localhost:{up_port}");
    let upstream = TestServer::start(
        &upstream_config(up_port, &["corp"], "")
            .replace(
                &format!("issuer = \"http://127.0.0.1:{up_port}\""),
                &format!("issuer = \"{up_issuer}\""),
            )
            .replace(ISSUER, &down_issuer),
    )
    .await;
    let body = format!(
        "{}\n[[clients]]\nid = \"cli\"\nname = \"Browser Test CLI\"\npublic = true\nfirst_party = true\nredirect_uris = [\"http://127.0.0.1/callback\"]\nscopes = [\"openid\", \"profile\", \"email\"]\n",
        provider(
            "corp",
            up_port,
            "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]"
        )
        .replace(&format!("http://127.0.0.1:{up_port}"), &up_issuer)
    );
    let config = crate::support::upstream::downstream_config(&body)
        .replace(
            &format!("issuer = \"{ISSUER}\""),
            &format!("issuer = \"{down_issuer}\""),
        )
        .replace(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{down_port}\""),
        );
    let downstream = start_downstream(&config).await;
    let callback_port = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let pkce = crate::support::browser::Pkce::new("chromium-upstream");
    let mut authorize = url::Url::parse(&downstream.url("/authorize")).expect("url");
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "cli"),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid profile email"),
        ("state", "chromium-upstream"),
        ("nonce", "chromium-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);

    chromium.goto(authorize.as_str()).await;
    chromium.wait_for_text("Sign in with Corp corp").await;
    chromium.screenshot("upstream-1-login-page").await;
    chromium.click("#provider-corp").await;
    let at_upstream = eventually(PAGE_WAIT, || async {
        chromium.current_url().await.starts_with(&up_issuer)
    })
    .await;
    assert!(
        at_upstream,
        "the browser reached the upstream, not {}",
        chromium.current_url().await
    );
    chromium.wait_for_text("Sign in").await;
    chromium.type_into("#username", "ann").await;
    chromium.type_into("#password", PASSWORD).await;
    chromium.screenshot("upstream-2-at-the-upstream").await;
    chromium.click("button[type=submit]").await;

    let reached = eventually(PAGE_WAIT, || async {
        chromium.current_url().await.starts_with(&redirect_uri)
    })
    .await;
    let landed = chromium.current_url().await;
    assert!(
        reached,
        "the browser reached the client's callback, not {landed}: {}",
        chromium.page_text().await
    );
    chromium.wait_for_text("callback ok").await;
    chromium.screenshot("upstream-3-back-at-the-client").await;
    let params: std::collections::HashMap<String, String> = url::Url::parse(&landed)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["state"], "chromium-upstream");
    let response = redeem_public(&downstream, &params["code"], &redirect_uri, &pkce).await;
    let tokens: Value = response.json().await.expect("json");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let (_, claims) = downstream
        .verify_issued_by(id_token, "cli", &down_issuer)
        .await;
    eprintln!("ID token claims after the upstream login: {claims:#}");
    assert_eq!(claims["sub"], "corp:u-ann");
    assert_eq!(
        claims["groups"],
        json!(["corp:staff", "corp:system:masters"])
    );
    assert_eq!(claims["nonce"], "chromium-nonce");
    chromium.close().await;
    upstream.stop().await;
    downstream.stop().await;
}

/// Introspects `token` as the `introspector` client the DPoP test adds.
async fn introspect(server: &TestServer, token: &str) -> Value {
    server
        .http
        .post(server.url("/introspect"))
        .form(&[
            ("client_id", "introspector"),
            ("client_secret", SERVICE_SECRET),
            ("token", token),
        ])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json")
}

/// POSTs a refresh of `demo-spa-dpop`'s `refresh_token` with `proof`: the answer's
/// `DPoP-Nonce`, if any, and its body.
async fn refresh_dpop(
    server: &TestServer,
    refresh_token: &str,
    proof: Option<&str>,
) -> (Option<String>, Value) {
    let mut request = server.http.post(server.url("/token")).form(&[
        ("grant_type", "refresh_token"),
        ("client_id", "demo-spa-dpop"),
        ("refresh_token", refresh_token),
    ]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("refresh");
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (nonce, response.json().await.expect("json"))
}

/// The example SPA's DPoP page (`examples/spa/dpop.html`: oidc-client-ts's `dpop`
/// setting, `bind_authorization_code`, its key in IndexedDB) against the example's
/// `demo-spa-dpop` client, with server nonces on: the code is bound by `dpop_jkt`,
/// the tokens to the browser's key (`token_type` DPoP, `cnf.jkt` at introspection),
/// the refresh token too (refused without a proof or with another key, taken with the
/// browser's), and userinfo answers the browser's DPoP request, never a Bearer one.
#[tokio::test]
async fn the_example_spa_with_dpop_logs_in_and_refreshes_with_its_browser_key() {
    let test = "the_example_spa_with_dpop_logs_in_and_refreshes_with_its_browser_key";
    let introspector = format!(
        "\n[[clients]]\nid = \"introspector\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\nintrospect = true\n",
        service_hash()
    );
    let Some((chromium, spa, spa_server, server)) = example_spa(test, |config| {
        assert_eq!(config.matches("\n[server]\n").count(), 1);
        config.replace("\n[server]\n", "\n[server]\ndpop_nonce = true\n") + &introspector
    })
    .await
    else {
        return;
    };
    let issuer = server.base.clone();
    chromium
        .goto(&format!("{spa}/dpop.html?issuer={issuer}"))
        .await;
    chromium.wait_for_text("Signed out.").await;
    chromium.click("#login:enabled").await;
    chromium
        .wait_for_text("Demo single-page app with DPoP")
        .await;
    let authorize = url::Url::parse(&chromium.current_url().await).expect("url");
    let dpop_jkt = authorize
        .query_pairs()
        .find(|(name, _)| name == "dpop_jkt")
        .map(|(_, value)| value.into_owned())
        .expect("oidc-client-ts sends dpop_jkt to /authorize");
    chromium.sign_in("demo", "demo-password").await;
    chromium
        .wait_for_text("Signed in as Demo User (sub u-1001); DPoP access token")
        .await;
    assert!(
        chromium
            .current_url()
            .await
            .starts_with(&format!("{spa}/dpop.html"))
    );

    // The tokens are bound to the key whose thumbprint bound the code.
    let first = stored_user_of(&chromium, "demo-spa-dpop").await;
    assert_eq!(first["token_type"], "DPoP", "{first}");
    let access = first["access_token"].as_str().expect("access token");
    let introspected = introspect(&server, access).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"], json!({"jkt": dpop_jkt}));
    let bearer = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(bearer.status(), 401, "a DPoP-bound token used as Bearer");
    let challenge = bearer.headers()["www-authenticate"].to_str().expect("text");
    assert!(challenge.starts_with("DPoP "), "{challenge}");

    // The refresh token is the browser key's alone.
    let refresh = first["refresh_token"].as_str().expect("refresh token");
    let (_, answer) = refresh_dpop(&server, refresh, None).await;
    assert_eq!(answer["error"], "invalid_dpop_proof", "{answer}");
    let thief = crate::support::dpop::DpopKey::new();
    let token_url = format!("{issuer}/token");
    let now = server.clock().now();
    let (nonce, answer) = refresh_dpop(
        &server,
        refresh,
        Some(&thief.proof("POST", &token_url, now)),
    )
    .await;
    assert_eq!(answer["error"], "use_dpop_nonce", "{answer}");
    let mut claims = thief.claims("POST", &token_url, now);
    claims["nonce"] = json!(nonce.expect("a DPoP-Nonce"));
    let (_, answer) = refresh_dpop(&server, refresh, Some(&thief.proof_with(&claims))).await;
    assert_eq!(
        answer["error"], "invalid_dpop_proof",
        "another key: {answer}"
    );

    // The browser refreshes with its key: new tokens, bound to the same key.
    chromium.click("#refresh:enabled").await;
    chromium.wait_for_text("refresh token rotated: true").await;
    chromium.wait_for("body[data-state=signed-in]").await;
    let second = stored_user_of(&chromium, "demo-spa-dpop").await;
    assert_eq!(second["token_type"], "DPoP", "{second}");
    assert_ne!(second["access_token"], first["access_token"]);
    let introspected = introspect(&server, second["access_token"].as_str().expect("access")).await;
    assert_eq!(
        introspected["cnf"],
        json!({"jkt": dpop_jkt}),
        "{introspected}"
    );

    // Userinfo as DPoP with the browser's proof (after the nonce challenge).
    chromium.click("#userinfo:enabled").await;
    // The ID token's claims show the same name elsewhere on the page: wait for it in
    // the userinfo answer itself.
    let shown = chromium
        .text_of_once_it_shows("#userinfo-result", "\"preferred_username\": \"demo\"")
        .await;
    let userinfo: Value = serde_json::from_str(&shown).expect("userinfo is JSON");
    assert_eq!(userinfo["sub"], "u-1001");

    // Logout revokes the tokens and comes back to the DPoP page.
    chromium.wait_for("body[data-state=signed-in]").await;
    chromium.click("#logout:enabled").await;
    chromium.wait_for_text("Sign out?").await;
    chromium.click("button[type=submit]").await;
    chromium
        .wait_for_text("signed out at gatehouse and back")
        .await;
    chromium.wait_for("body[data-state=signed-out]").await;
    assert_eq!(chromium.current_url().await, format!("{spa}/dpop.html"));
    let page_log = chromium.text_of("#log").await;
    let console = chromium.console().await;
    eprintln!("---- the SPA's log, as the page shows it ----\n{page_log}");
    eprintln!("---- the browser console ----\n{}", console.join("\n"));
    assert!(page_log.contains("token type: DPoP"), "{page_log}");
    assert!(
        page_log.contains("use_dpop_nonce"),
        "oidc-client-ts met the nonce challenge (and retried): {page_log}"
    );
    assert!(
        page_log.contains("refresh_token revoked successfully"),
        "{page_log}"
    );
    assert!(
        !console.iter().any(|l| l.contains("CORS")),
        "the browser blocked nothing: {console:#?}"
    );
    chromium.close().await;
    spa_server.stop(true).await;
}

/// The WebDriver WebAuthn extension (W3C WebAuthn §11.3): adds a virtual authenticator
/// to the session, a platform one that keeps discoverable credentials and verifies
/// its user.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        session_endpoint(base_url, session_id, "webauthn/authenticator")
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

/// The authorization URL of the public client `cli` at `base`, for `redirect_uri`.
fn cli_authorize(base: &str, redirect_uri: &str, pkce: &crate::support::browser::Pkce) -> String {
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).expect("url");
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "cli"),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("state", "passkey-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    authorize.into()
}

/// Waits until Chromium lands on `redirect_uri` after a login, redeems the code for
/// `cli` and returns the ID token's claims (issued by `base`).
async fn landed_login(
    chromium: &Chromium,
    server: &TestServer,
    redirect_uri: &str,
    pkce: &crate::support::browser::Pkce,
    base: &str,
) -> Value {
    let reached = eventually(PAGE_WAIT, || async {
        chromium.current_url().await.starts_with(redirect_uri)
    })
    .await;
    let landed = chromium.current_url().await;
    assert!(
        reached,
        "the login reached the callback, not {landed}: {:?}",
        chromium.page_text().await
    );
    let params: std::collections::HashMap<String, String> = url::Url::parse(&landed)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    let response = redeem_public(server, &params["code"], redirect_uri, pkce).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let id_token = body["id_token"].as_str().expect("an id token");
    server.verify_issued_by(id_token, "cli", base).await.1
}

/// Enrolment and passkey login in Chromium with a virtual authenticator: carol signs in
/// with her password, creates a passkey at `/account/passkeys`, the page's TOML lines
/// go into the config, and a browser without a session signs in with the passkey
/// alone (`amr` `swk`, `mfa`), then with her password and the passkey as the second
/// factor (`pwd`, `swk`, `mfa`). The issuer is `http://localhost:PORT`: WebAuthn needs a
/// domain as RP ID, not an IP address.
#[tokio::test]
async fn chromium_enrols_a_passkey_and_signs_in_with_it() {
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    chromium
        .client
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .expect("a virtual authenticator");
    let callback_port = callback_listener();
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let config = |carol_extra: &str| {
        format!(
            r#"issuer = "{base}"
[server]
bind = "127.0.0.1:{port}"

[[clients]]
id = "cli"
public = true
first_party = true
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid"]

[[users]]
username = "carol"
password_hash = "{}"
name = "Carol"
{carol_extra}
"#,
            service_hash()
        )
    };
    let server = TestServer::start(&config("")).await;
    let pkce = crate::support::browser::Pkce::new("chromium-passkey");

    chromium
        .goto(&cli_authorize(&base, &redirect_uri, &pkce))
        .await;
    chromium.sign_in("carol", SERVICE_SECRET).await;
    chromium.wait_for_text("callback ok").await;

    chromium.goto(&format!("{base}/account/passkeys")).await;
    chromium.type_into("#passkey-name", "Virtual").await;
    chromium.click("#passkey-create").await;
    chromium.wait_for_text("Passkey created").await;
    chromium.screenshot("passkey-created").await;
    let toml = chromium.text_of("#passkey-toml").await;
    assert!(toml.starts_with("passkeys = ["), "{toml}");
    assert!(toml.contains("name = \"Virtual\""), "{toml}");
    let console = chromium.console().await;
    assert!(
        !console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{console:?}"
    );

    server.rewrite_config(&config(&toml));
    server.wait_for_generation(2).await;

    chromium
        .client
        .delete_all_cookies()
        .await
        .expect("cookies gone");
    chromium
        .goto(&cli_authorize(&base, &redirect_uri, &pkce))
        .await;
    chromium.click("#passkey-button").await;
    let claims = landed_login(&chromium, &server, &redirect_uri, &pkce, &base).await;
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["amr"], json!(["swk", "mfa"]));

    // Password and passkey: carol now has a passkey, so after her password
    // (`second_factor = "optional"`, the default) the second-factor page asks for it.
    // (Cookies are deleted for the page's site: back on gatehouse's first.)
    chromium.goto(&format!("{base}/healthz")).await;
    chromium
        .client
        .delete_all_cookies()
        .await
        .expect("cookies gone");
    let pkce = crate::support::browser::Pkce::new("chromium-passkey-second");
    chromium
        .goto(&cli_authorize(&base, &redirect_uri, &pkce))
        .await;
    chromium.sign_in("carol", SERVICE_SECRET).await;
    chromium.wait_for_text("Use a passkey").await;
    chromium.screenshot("passkey-second-factor").await;
    chromium.click("#passkey-button").await;
    let claims = landed_login(&chromium, &server, &redirect_uri, &pkce, &base).await;
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]));
    assert_eq!(claims["acr"], "urn:gatehouse:acr:mfa");
    let console = chromium.console().await;
    assert!(
        !console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{console:?}"
    );
    chromium.close().await;
}
