//! Sessions that really end (issue 24): every login session has a `sid` that its ID
//! tokens carry; logging out ends the tokens issued in the session (but not the
//! `offline_access` ones); `tokens_not_before` on a user or a client ends what was
//! issued before it, on every replica and after a restart, because it lives in the
//! config.

use crate::support::browser::{Browser, Pkce};
use crate::support::logout_rp::LogoutRp;
use crate::support::redis::RedisServer;
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Two first-party confidential clients (`web`, `app`), two services, a resource
/// server that may introspect anything, and two users; `alice`, `web` and `svc` go
/// into those entries.
fn config(alice: &str, web: &str, svc: &str) -> String {
    config_apps(alice, web, svc, "")
}

/// [`config`], with `app` in the `app` client's entry.
fn config_apps(alice: &str, web: &str, svc: &str, app: &str) -> String {
    config_with(&format!(
        r#"
[[clients]]
id = "web"
name = "Web Mail"
secret_hash = "{hash}"
redirect_uris = ["https://web.example.com/cb"]
post_logout_redirect_uris = ["https://web.example.com/bye"]
scopes = ["openid", "offline_access"]
first_party = true
{web}

[[clients]]
id = "app"
name = "Time Sheets"
secret_hash = "{hash}"
redirect_uris = ["https://app.example.com/cb"]
scopes = ["openid", "offline_access"]
first_party = true
{app}

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
{svc}

[[clients]]
id = "svc2"
secret_hash = "{hash}"
grant_types = ["client_credentials"]

[[clients]]
id = "gateway"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
introspect = true

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
{alice}

[[users]]
id = "u-bob"
username = "bob"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

fn redirect_of(client: &str) -> String {
    format!("https://{client}.example.com/cb")
}

/// A code for `client` with `scope` in `browser`, signing in as `user` if asked.
async fn code(browser: &mut Browser<'_>, client: &str, scope: &str, user: &str) -> (String, Pkce) {
    let pkce = Pkce::new(&format!("{client}-{scope}-{user}").replace(' ', "."));
    let redirect = redirect_of(client);
    let mut seen = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", &redirect),
            ("scope", scope),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    if seen.status == 200 && seen.body.contains("name=\"password\"") {
        seen = browser.login(user, SERVICE_SECRET).await;
    }
    assert_eq!(seen.status, 303, "{}", seen.body);
    (seen.redirect_params()["code"].clone(), pkce)
}

async fn post(
    server: &TestServer,
    path: &str,
    client: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = server
        .http
        .post(server.url(path))
        .basic_auth(client, Some(SERVICE_SECRET))
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn redeem(server: &TestServer, client: &str, code: &str, pkce: &Pkce) -> (u16, Value) {
    let redirect = redirect_of(client);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    post(server, "/token", client, &form).await
}

/// Tokens for `client` with `scope`, signing in as `user` in `browser` if asked.
async fn tokens(browser: &mut Browser<'_>, client: &str, scope: &str, user: &str) -> Tokens {
    let (code, pkce) = code(browser, client, scope, user).await;
    let (status, body) = redeem(browser.server, client, &code, &pkce).await;
    assert_eq!(status, 200, "{body}");
    Tokens::of(client, &body)
}

/// One token response.
struct Tokens {
    client: String,
    access: String,
    refresh: String,
    id: String,
}

impl Tokens {
    fn of(client: &str, body: &Value) -> Self {
        let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        Self {
            client: client.to_owned(),
            access: s("access_token"),
            refresh: s("refresh_token"),
            id: s("id_token"),
        }
    }

    async fn refresh(&self, server: &TestServer) -> (u16, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.refresh.as_str()),
        ];
        post(server, "/token", &self.client, &form).await
    }

    /// Whether the access token is active at introspection and works at userinfo; the
    /// two must agree.
    async fn access_stands(&self, server: &TestServer) -> bool {
        let active = introspect(server, &self.access).await;
        let userinfo = userinfo_status(server, &self.access).await;
        assert_eq!(active, userinfo == 200, "introspection and userinfo agree");
        active
    }
}

async fn introspect(server: &TestServer, token: &str) -> bool {
    let (status, body) = post(server, "/introspect", "gateway", &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    body["active"] == true
}

/// Logs `browser` out through the confirmation page; the page's text.
async fn logout(browser: &mut Browser<'_>) -> String {
    let confirm = browser.get("/logout?client_id=web").await;
    assert_eq!(confirm.status, 200, "asks to confirm");
    let page = crate::support::browser::text(&confirm);
    let done = browser.submit("/logout", &[]).await;
    assert_eq!(done.status, 200, "signed out: {}", done.body);
    page
}

/// `at` as the config writes a `tokens_not_before`.
fn rfc3339(at: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at)).to_string()
}

fn not_before(at: u64) -> String {
    format!("tokens_not_before = \"{}\"", rfc3339(at))
}

/// A directory with a signing key and `gatehouse.toml`: [`config`] with nothing
/// added, then the key's `[[keys]]` and `store` (a `[store]` section, or nothing). The
/// directory, the file's path, and that tail, which a rewrite of the file keeps.
fn keyed_config(store: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write_signing_key(dir.path());
    let keys = format!(
        "\n[[keys]]\nid = \"k1\"\nalgorithm = \"ES256\"\nprivate_key_file = \"{}\"\n{store}",
        key.display(),
    );
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, format!("{}{keys}", config("", "", ""))).expect("write");
    (dir, path, keys)
}

async fn reload_to(server: &TestServer, config: &str, n: u64) {
    server.rewrite_config(config);
    server.wait_for_generation(n).await;
}

#[tokio::test]
async fn id_tokens_name_their_session_and_discovery_says_how_logout_works() {
    let server = TestServer::start(&config("", "", "")).await;
    let mut browser = Browser::new(&server);
    let web = tokens(&mut browser, "web", "openid", "alice").await;
    let app = tokens(&mut browser, "app", "openid", "alice").await;
    let (_, id) = server.verify(&web.id, "web").await;
    let sid = id["sid"]
        .as_str()
        .expect("the ID token has a sid")
        .to_owned();
    assert!(sid.len() >= 16, "a random id: {sid}");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["auth_time"].is_u64());
    let (_, other) = server.verify(&app.id, "app").await;
    assert_eq!(
        other["sid"], id["sid"],
        "one session, one sid for every client"
    );

    let (status, refreshed) = web.refresh(&server).await;
    assert_eq!(status, 200, "{refreshed}");
    let (_, again) = server
        .verify(refreshed["id_token"].as_str().expect("id token"), "web")
        .await;
    assert_eq!(
        (&again["sid"], &again["auth_time"]),
        (&id["sid"], &id["auth_time"])
    );

    let mut elsewhere = Browser::new(&server);
    let bob = tokens(&mut elsewhere, "web", "openid", "bob").await;
    let (_, bobs) = server.verify(&bob.id, "web").await;
    assert_ne!(bobs["sid"], id["sid"], "another session, another sid");

    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["frontchannel_logout_supported"], false);
    let claims = discovery["claims_supported"].as_array().expect("claims");
    assert!(claims.iter().any(|c| c == "sid") && claims.iter().any(|c| c == "amr"));
}

#[tokio::test]
async fn logout_ends_the_sessions_tokens_but_not_offline_ones_nor_other_sessions() {
    let server = TestServer::start(&config("", "", "")).await;
    let mut browser = Browser::new(&server);
    let online = tokens(&mut browser, "web", "openid", "alice").await;
    let offline = tokens(&mut browser, "app", "openid offline_access", "alice").await;
    let (pending_code, pending_pkce) = code(&mut browser, "web", "openid", "alice").await;
    let mut elsewhere = Browser::new(&server);
    let other = tokens(&mut elsewhere, "web", "openid", "alice").await;
    assert!(online.access_stands(&server).await);

    let page = logout(&mut browser).await;
    assert!(
        page.contains("Web Mail") && page.contains("Time Sheets"),
        "the confirmation names the applications signed in: {page}"
    );

    // The session's own tokens: the refresh token, the access tokens, an unused code.
    let (status, body) = online.refresh(&server).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(!online.access_stands(&server).await);
    assert!(
        !offline.access_stands(&server).await,
        "issued in the session"
    );
    let (status, body) = redeem(&server, "web", &pending_code, &pending_pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // offline_access is meant to outlive the session (OIDC Core 11).
    let (status, body) = offline.refresh(&server).await;
    assert_eq!(status, 200, "{body}");
    let renewed = Tokens::of("app", &body);
    assert!(renewed.access_stands(&server).await);
    let (status, body) = renewed.refresh(&server).await;
    assert_eq!(status, 200, "rotates on: {body}");

    // The same user's other session is untouched.
    assert!(other.access_stands(&server).await);
    let (status, body) = other.refresh(&server).await;
    assert_eq!(status, 200, "{body}");

    // Signed out: the next authorization asks for the password again.
    let again = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
            ("code_challenge", &pending_pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(again.body.contains("name=\"password\""));
}

#[tokio::test]
async fn tokens_not_before_on_a_user_ends_her_sessions_and_tokens_and_nothing_else() {
    let server = TestServer::start(&config("", "", "")).await;
    let mut browser = Browser::new(&server);
    let alice = tokens(&mut browser, "web", "openid offline_access", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    let bob = tokens(&mut bobs_browser, "web", "openid", "bob").await;

    server.clock().advance(Duration::from_secs(60));
    let cut_off = server.clock().now();
    reload_to(&server, &config(&not_before(cut_off), "", ""), 2).await;

    assert!(!alice.access_stands(&server).await);
    let (status, body) = alice.refresh(&server).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "offline too: {body}"
    );
    let asked = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
            ("code_challenge", &Pkce::new("x").challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(
        asked.body.contains("name=\"password\""),
        "her session ended"
    );

    assert!(bob.access_stands(&server).await, "nothing else");
    let (status, body) = bob.refresh(&server).await;
    assert_eq!(status, 200, "{body}");

    // What she does after the instant stands.
    server.clock().advance(Duration::from_secs(2));
    let fresh = tokens(&mut Browser::new(&server), "web", "openid", "alice").await;
    assert!(fresh.access_stands(&server).await);
    let (status, body) = fresh.refresh(&server).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_session_that_no_longer_stands_gets_no_code_from_a_memory_store_server() {
    no_code_for_an_ended_session("").await;
}

#[tokio::test]
async fn a_session_that_no_longer_stands_gets_no_code_from_a_redis_store_server() {
    let Some(redis) = RedisServer::start("a_session_that_no_longer_stands_gets_no_code") else {
        return;
    };
    no_code_for_an_ended_session(&format!("\n[store]\nurl = \"{}\"\n", redis.url())).await;
}

/// `/authorize` in a browser with a session gives a code at once (written while the
/// session's standing is read); once a `tokens_not_before` of its user passes the
/// session's start, the session is still in the `store` but no longer stands: the
/// same browser gets the login page, and with `prompt=none` `login_required`, never a
/// code.
async fn no_code_for_an_ended_session(store: &str) {
    let (dir, path, keys) = keyed_config(store);
    let server = TestServer::start_at(dir, path).await;
    let mut browser = Browser::new(&server);
    let _ = code(&mut browser, "web", "openid", "alice").await;
    let pkce = Pkce::new("again-and-again-and-again-and-again-and-again");
    let redirect = redirect_of("web");
    let mut asked = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let again = browser.authorize(&asked).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let (status, body) = redeem(&server, "web", &again.redirect_params()["code"], &pkce).await;
    assert_eq!(status, 200, "the session stands: {body}");

    server.clock().advance(Duration::from_secs(60));
    let cut_off = server.clock().now();
    let ended = format!("{}{keys}", config(&not_before(cut_off), "", ""));
    reload_to(&server, &ended, 2).await;
    let page = browser.authorize(&asked).await;
    assert_eq!(page.status, 200, "{:?}", page.location);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    asked.push(("prompt", "none"));
    let silent = browser.authorize(&asked).await;
    assert_eq!(silent.status, 303, "{}", silent.body);
    let params = silent.redirect_params();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("login_required")
    );
    assert!(!params.contains_key("code"), "{params:?}");
}

#[tokio::test]
async fn tokens_not_before_on_a_client_ends_its_tokens_and_nothing_else() {
    let server = TestServer::start(&config("", "", "")).await;
    let mut browser = Browser::new(&server);
    let web = tokens(&mut browser, "web", "openid offline_access", "alice").await;
    let app = tokens(&mut browser, "app", "openid", "alice").await;
    let (_, svc) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let svc = svc["access_token"].as_str().expect("token").to_owned();

    server.clock().advance(Duration::from_secs(60));
    let cut_off = not_before(server.clock().now());
    reload_to(&server, &config("", &cut_off, &cut_off), 2).await;

    assert!(!web.access_stands(&server).await);
    let (status, body) = web.refresh(&server).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(!introspect(&server, &svc).await, "a client's own token too");

    assert!(
        app.access_stands(&server).await,
        "another client's tokens stand"
    );
    let (status, body) = app.refresh(&server).await;
    assert_eq!(status, 200, "{body}");

    server.clock().advance(Duration::from_secs(2));
    let (_, later) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    assert!(introspect(&server, later["access_token"].as_str().expect("token")).await);
    // A session begun after the instant signs in to web again (a family counts from
    // the session it began in, so the old session's new codes stay ended).
    let (status, body) = tokens(&mut Browser::new(&server), "web", "openid", "alice")
        .await
        .refresh(&server)
        .await;
    assert_eq!(status, 200, "a later session: {body}");
}

#[tokio::test]
async fn tokens_not_before_survives_a_restart_of_a_memory_store_server() {
    // The memory store starts empty: only the config can end `svc`'s token, and the
    // other client's token, issued before the restart, still stands.
    tokens_not_before_after_a_restart("").await;
}

#[tokio::test]
async fn tokens_not_before_ends_what_a_restarted_redis_store_server_kept() {
    // The store keeps its records across the restart: what ends `svc`'s token is the
    // config's `tokens_not_before`, not the store.
    let Some(redis) = RedisServer::start("tokens_not_before_ends_what_a_restarted_redis") else {
        return;
    };
    tokens_not_before_after_a_restart(&format!("\n[store]\nurl = \"{}\"\n", redis.url())).await;
}

/// Two clients' tokens, then a restart with `tokens_not_before` on `svc`: `svc`'s token
/// ends, `svc2`'s stands, and `svc` gets a working token again after the instant.
async fn tokens_not_before_after_a_restart(store: &str) {
    let (dir, path, keys) = keyed_config(store);
    let server = TestServer::start_at(dir, path.clone()).await;
    let (_, svc) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let svc = svc["access_token"].as_str().expect("token").to_owned();
    let (_, svc2) = server.client_credentials("svc2", SERVICE_SECRET, &[]).await;
    let svc2 = svc2["access_token"].as_str().expect("token").to_owned();
    let (_, claims) = server.verify(&svc, "svc").await;
    let issued = claims["iat"].as_u64().expect("iat");
    let dir = server.stop_keeping_dir().await;

    std::fs::write(
        &path,
        format!("{}{keys}", config("", "", &not_before(issued))),
    )
    .expect("write");
    let restarted = TestServer::start_at(dir, path).await;
    assert!(
        !introspect(&restarted, &svc).await,
        "ended by the config, not the store"
    );
    assert!(
        introspect(&restarted, &svc2).await,
        "the other client's token stands"
    );
    restarted.clock().advance(Duration::from_secs(2));
    let (_, later) = restarted
        .client_credentials("svc", SERVICE_SECRET, &[])
        .await;
    assert!(introspect(&restarted, later["access_token"].as_str().expect("token")).await);
}

/// Verifies a logout token as a relying party must (Back-Channel Logout 2.6): the
/// signature under the issuer's keys, `iss`, `aud`, `typ`, the event, no `nonce`.
async fn verified_logout_token(server: &TestServer, token: &str, audience: &str) -> Value {
    verified_logout_token_of(server, ISSUER, token, audience).await
}

/// [`verified_logout_token`] for a server whose issuer is `issuer`.
async fn verified_logout_token_of(
    server: &TestServer,
    issuer: &str,
    token: &str,
    audience: &str,
) -> Value {
    let (header, claims) = server.verify_issued_by(token, audience, issuer).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let events = claims["events"].as_object().expect("events");
    assert_eq!(
        events.get("http://schemas.openid.net/event/backchannel-logout"),
        Some(&serde_json::json!({}))
    );
    assert!(
        claims.get("nonce").is_none(),
        "a logout token never has a nonce"
    );
    assert!(claims["jti"].is_string() && claims["iat"].is_u64());
    claims
}

#[tokio::test]
async fn backchannel_logout_tells_each_application_of_the_session_and_no_other() {
    let (web_rp, app_rp) = (LogoutRp::start().await, LogoutRp::start().await);
    let web = format!("backchannel_logout_uri = \"{}\"", web_rp.uri);
    let app = format!(
        "backchannel_logout_uri = \"{}\"\nbackchannel_logout_session_required = true",
        app_rp.uri
    );
    let server = TestServer::start(&config_apps("", &web, "", &app)).await;
    let mut browser = Browser::new(&server);
    let alice = tokens(&mut browser, "web", "openid", "alice").await;
    tokens(&mut browser, "app", "openid", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    tokens(&mut bobs_browser, "web", "openid", "bob").await;
    let (_, id) = server.verify(&alice.id, "web").await;

    logout(&mut browser).await;
    let told = eventually(Duration::from_secs(10), || async {
        web_rp.tokens().len() == 1 && app_rp.tokens().len() == 1
    })
    .await;
    assert!(
        told,
        "web: {:?}, app: {:?}",
        web_rp.tokens(),
        app_rp.tokens()
    );
    for (rp, client) in [(&web_rp, "web"), (&app_rp, "app")] {
        let claims = verified_logout_token(&server, &rp.tokens()[0], client).await;
        assert_eq!((&claims["sid"], &claims["sub"]), (&id["sid"], &id["sub"]));
    }

    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
    // Bob's session goes on: only one token reached web's endpoint.
    logout(&mut bobs_browser).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            web_rp.tokens().len() == 2
        })
        .await
    );
    let bobs = verified_logout_token(&server, &web_rp.tokens()[1], "web").await;
    assert_eq!(bobs["sub"], "u-bob");
    assert_ne!(bobs["sid"], id["sid"]);
}

#[tokio::test]
async fn a_failing_application_is_retried_then_given_up_without_holding_the_logout() {
    let flaky = LogoutRp::answering(503, true).await;
    let web = format!("backchannel_logout_uri = \"{}\"", flaky.uri);
    let server = TestServer::start(&config("", &web, "")).await;
    let mut browser = Browser::new(&server);
    tokens(&mut browser, "web", "openid", "alice").await;

    // The endpoint holds the first delivery: the logout answers all the same.
    tokio::time::timeout(Duration::from_secs(30), logout(&mut browser))
        .await
        .expect("the logout does not wait for the application");
    assert!(
        eventually(Duration::from_secs(10), || async {
            flaky.tokens().len() == 1
        })
        .await
    );
    flaky.release();
    let tried = eventually(Duration::from_secs(20), || async {
        flaky.tokens().len() == 3
    })
    .await;
    assert!(tried, "tried three times: {}", flaky.tokens().len());
    let tokens = flaky.tokens();
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "the same token each time"
    );
    let given_up = eventually(Duration::from_secs(10), || async {
        server.metrics().await.lines().any(|l| {
            l.starts_with("gatehouse_backchannel_logouts_total")
                && l.contains("client_id=\"web\"")
                && l.contains("result=\"failed\"")
        })
    })
    .await;
    assert!(given_up, "counted as failed");
}

/// Runs `gatehouse revoke` against `admin` with `token_file` and `args`; its exit
/// status and output.
async fn revoke_cli(admin: &str, token_file: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .arg("revoke")
        .arg("--admin")
        .arg(admin)
        .arg("--token-file")
        .arg(token_file)
        .args(args);
    let out = command.output().await.expect("runs gatehouse");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn gatehouse_revoke_ends_a_user_a_client_or_a_session_and_needs_the_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "admin-token-0123456789-abcdefghijklmnop";
    std::fs::write(dir.path().join("admin.token"), format!("{token}\n")).expect("write");
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-admin-token-0123456789-abcdefgh").expect("write");
    let head = "[server]\nbind = \"127.0.0.1:0\"\nadmin_bind = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n";
    let body = config("", "", "").replacen("[server]\nbind = \"127.0.0.1:0\"\n", head, 1);
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, body).expect("write");
    let server = TestServer::start_at(dir, path).await;
    let admin = server.admin_url().expect("an admin listener");
    let token_file = server.dir.path().join("admin.token");

    let mut browser = Browser::new(&server);
    let alice = tokens(&mut browser, "web", "openid offline_access", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    let bob = tokens(&mut bobs_browser, "web", "openid", "bob").await;
    let bob_app = tokens(&mut bobs_browser, "app", "openid", "bob").await;
    let (_, svc) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let svc = svc["access_token"].as_str().expect("token").to_owned();

    // Without the admin token (or with another), nothing is recorded.
    let (ok, out) = revoke_cli(&admin, &wrong, &["--user", "u-alice"]).await;
    assert!(!ok && out.contains("401"), "{out}");
    let bare = server
        .http
        .post(format!("{admin}/revoke"))
        .form(&[("user", "u-alice")])
        .send()
        .await
        .expect("post");
    assert_eq!(bare.status(), 401);
    assert!(alice.access_stands(&server).await);

    let (ok, out) = revoke_cli(&admin, &token_file, &["--user", "u-alice"]).await;
    assert!(ok, "{out}");
    assert!(!alice.access_stands(&server).await);
    let (status, _) = alice.refresh(&server).await;
    assert_eq!(status, 400, "offline_access too: the user is revoked");
    assert!(bob.access_stands(&server).await);

    let (_, bobs) = server.verify(&bob.id, "web").await;
    let sid = bobs["sid"].as_str().expect("sid").to_owned();
    let (ok, out) = revoke_cli(&admin, &token_file, &["--session", &sid]).await;
    assert!(ok, "{out}");
    assert!(!bob.access_stands(&server).await);
    assert!(
        !bob_app.access_stands(&server).await,
        "every client of the session"
    );
    let (status, _) = bob_app.refresh(&server).await;
    assert_eq!(status, 400);

    assert!(introspect(&server, &svc).await);
    let (ok, out) = revoke_cli(&admin, &token_file, &["--client", "svc"]).await;
    assert!(ok, "{out}");
    assert!(!introspect(&server, &svc).await);

    // What comes after stands.
    server.clock().advance(Duration::from_secs(2));
    let (_, later) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    assert!(introspect(&server, later["access_token"].as_str().expect("token")).await);
    let fresh = tokens(&mut Browser::new(&server), "web", "openid", "alice").await;
    assert!(fresh.access_stands(&server).await);
}

/// The user claims an ID token states that `/userinfo` and introspection must state
/// the same.
const USER_CLAIMS: [&str; 7] = [
    "sub",
    "preferred_username",
    "name",
    "picture",
    "groups",
    "email",
    "email_verified",
];

/// Checks that the token response `tokens` of client web says the same about its user
/// in the ID token, at `/userinfo` and at introspection.
async fn one_identity(server: &TestServer, tokens: &Value) {
    let (_, id) = server
        .verify(tokens["id_token"].as_str().expect("id token"), "web")
        .await;
    assert_eq!(
        id["picture"], "ann@corp.com",
        "mapped by claims.picture: {id}"
    );
    let access = tokens["access_token"].as_str().expect("access token");
    let userinfo: Value = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    let (status, introspected) = post(server, "/introspect", "web", &[("token", access)]).await;
    assert_eq!((status, &introspected["active"]), (200, &Value::Bool(true)));
    for claim in USER_CLAIMS {
        assert!(!id[claim].is_null(), "the ID token states {claim}: {id}");
        assert_eq!(
            userinfo[claim], id[claim],
            "{claim} at /userinfo: {userinfo}"
        );
        assert_eq!(
            introspected[claim], id[claim],
            "{claim} at introspection: {introspected}"
        );
    }
}

#[tokio::test]
async fn a_federated_user_is_the_same_at_userinfo_in_the_id_token_and_introspection() {
    use crate::support::upstream;
    let port = free_port();
    let up_server = upstream::start_upstream(port, &["corp"], "").await;
    // The upstream (a gatehouse) issues no `picture`: the mapping takes it from
    // another claim it does issue, which is what `claims.picture` is for.
    let body = upstream::provider(
        "corp",
        port,
        "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]\n[providers.claims]\npicture = \"email\"",
    );
    let down_server = upstream::start_downstream(&upstream::downstream_config(&body)).await;
    let (mut down, mut up) = (Browser::new(&down_server), Browser::new(&up_server));
    let pkce = Pkce::new("one-identity");
    let done = upstream::login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    let tokens = upstream::redeem(&down_server, &done, &pkce).await;
    one_identity(&down_server, &tokens).await;

    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, refreshed) = upstream::refresh(&down_server, refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    one_identity(&down_server, &refreshed).await;
}

/// Whether node and `tests/node`'s packages are installed; says what is missing
/// otherwise.
fn node_ready(test: &str) -> bool {
    let lib = std::path::Path::new(ROOT).join("tests/node/node_modules/openid-client");
    let node = std::process::Command::new("node").arg("--version").output();
    if node.is_err() || !lib.is_dir() {
        crate::support::skip::missing(
            test,
            "node and openid-client (`cd tests/node && npm ci`, as .ci/run does)",
        );
        return false;
    }
    true
}

#[tokio::test]
async fn openid_client_checks_a_federated_users_sid_and_userinfo_after_a_refresh_too() {
    use crate::support::upstream;
    if !node_ready("openid_client_checks_a_federated_users_sid_and_userinfo") {
        return;
    }
    let rp = LogoutRp::start().await;
    let (issuer, head) = discoverable_config("");
    let port = free_port();
    let callbacks = format!("\"{issuer}/login/callback");
    let up_config = upstream::upstream_config(port, &["corp"], "")
        .replace(&format!("\"{ISSUER}/login/callback"), &callbacks);
    let up_server = TestServer::start(&up_config).await;
    let body = upstream::provider(
        "corp",
        port,
        "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]",
    );
    let scopes = "scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n";
    let down_config = upstream::downstream_config(&body)
        .replacen(
            &format!("issuer = \"{ISSUER}\"\n[server]\nbind = \"127.0.0.1:0\"\n"),
            &head,
            1,
        )
        .replacen(
            scopes,
            &format!("{scopes}backchannel_logout_uri = \"{}\"\n", rp.uri),
            1,
        );
    let down_server = upstream::start_downstream(&down_config).await;
    let (mut down, mut up) = (Browser::new(&down_server), Browser::new(&up_server));
    let pkce = Pkce::new("openid-client-federated");
    let done = upstream::login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);

    let run = tokio::process::Command::new("node")
        .arg("federated_identity.mjs")
        .current_dir(std::path::Path::new(ROOT).join("tests/node"))
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", "web")
        .env("CLIENT_SECRET", SERVICE_SECRET)
        .env(
            "CALLBACK_URL",
            done.location.as_deref().expect("a redirect"),
        )
        .env("CODE_VERIFIER", &pkce.verifier)
        .env("STATE", "client-state")
        .env("NONCE", "client-nonce")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the node script finishes within a minute")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openid-client failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "discovery: backchannel_logout_session_supported=true",
        "code: userinfo agrees with the ID token on sub,preferred_username,name,email,email_verified,groups",
        "refresh: same sub, sid and auth_time",
        "refresh: userinfo agrees with the ID token",
        "FEDERATED IDENTITY OK",
    ] {
        assert!(
            stdout.contains(line),
            "{line:?} not in:\n{stdout}\n{stderr}"
        );
    }
    let sid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sid="))
        .expect("the sid openid-client read");

    // The session openid-client's ID token named is the one the logout names.
    logout(&mut down).await;
    let told = eventually(Duration::from_secs(10), || async { rp.tokens().len() == 1 }).await;
    assert!(told, "told: {:?}", rp.tokens());
    let claims = verified_logout_token_of(&down_server, &issuer, &rp.tokens()[0], "web").await;
    assert_eq!(claims["sid"], sid, "{claims}");
    assert_eq!(claims["sub"], "corp:u-ann", "{claims}");
}

#[tokio::test]
async fn gatehouse_revoke_session_tells_the_sessions_applications_once() {
    let (web_rp, app_rp) = (LogoutRp::start().await, LogoutRp::start().await);
    let web = format!("backchannel_logout_uri = \"{}\"", web_rp.uri);
    let app = format!("backchannel_logout_uri = \"{}\"", app_rp.uri);
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "admin-token-0123456789-abcdefghijklmnop";
    std::fs::write(dir.path().join("admin.token"), token).expect("write");
    let head = "[server]\nbind = \"127.0.0.1:0\"\nadmin_bind = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n";
    let body =
        config_apps("", &web, "", &app).replacen("[server]\nbind = \"127.0.0.1:0\"\n", head, 1);
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, body).expect("write");
    let server = TestServer::start_at(dir, path).await;
    let admin = server.admin_url().expect("an admin listener");
    let token_file = server.dir.path().join("admin.token");

    let mut browser = Browser::new(&server);
    let alice = tokens(&mut browser, "web", "openid", "alice").await;
    tokens(&mut browser, "app", "openid", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    tokens(&mut bobs_browser, "web", "openid", "bob").await;
    let (_, id) = server.verify(&alice.id, "web").await;
    let sid = id["sid"].as_str().expect("sid").to_owned();

    let (ok, out) = revoke_cli(&admin, &token_file, &["--session", &sid]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(r#""backchannel_logout":["app","web"]"#),
        "{out}"
    );
    let told = eventually(Duration::from_secs(10), || async {
        web_rp.tokens().len() == 1 && app_rp.tokens().len() == 1
    })
    .await;
    assert!(
        told,
        "web: {:?}, app: {:?}",
        web_rp.tokens(),
        app_rp.tokens()
    );
    for (rp, client) in [(&web_rp, "web"), (&app_rp, "app")] {
        let claims = verified_logout_token(&server, &rp.tokens()[0], client).await;
        assert_eq!((&claims["sid"], &claims["sub"]), (&id["sid"], &id["sub"]));
    }
    // Told once: the same session revoked again sends nothing more.
    let (ok, out) = revoke_cli(&admin, &token_file, &["--session", &sid]).await;
    assert!(ok, "{out}");
    let skipped = eventually(Duration::from_secs(10), || async {
        let metrics = reqwest::get(format!("{admin}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        ["web", "app"].iter().all(|client| {
            metrics.lines().any(|l| {
                l.starts_with("gatehouse_backchannel_logouts_total")
                    && l.contains(&format!("client_id=\"{client}\""))
                    && l.contains("result=\"skipped\"")
            })
        })
    })
    .await;
    assert!(skipped, "the second ending counted as skipped");
    assert_eq!((web_rp.tokens().len(), app_rp.tokens().len()), (1, 1));
}

/// A server with an admin listener (`admin.token`) whose clients `web` and `app` send
/// back-channel logout to `web_rp` and `app_rp`: the server, the admin URL and the
/// token file.
async fn admin_server(
    web_rp: &LogoutRp,
    app_rp: &LogoutRp,
) -> (TestServer, String, std::path::PathBuf) {
    let web = format!("backchannel_logout_uri = \"{}\"", web_rp.uri);
    let app = format!("backchannel_logout_uri = \"{}\"", app_rp.uri);
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "admin-token-0123456789-abcdefghijklmnop";
    std::fs::write(dir.path().join("admin.token"), token).expect("write");
    let head = "[server]\nbind = \"127.0.0.1:0\"\nadmin_bind = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n";
    let body =
        config_apps("", &web, "", &app).replacen("[server]\nbind = \"127.0.0.1:0\"\n", head, 1);
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, body).expect("write");
    let server = TestServer::start_at(dir, path).await;
    let admin = server.admin_url().expect("an admin listener");
    let token_file = server.dir.path().join("admin.token");
    (server, admin, token_file)
}

/// The `sid` of an ID token of web's.
async fn sid_of(server: &TestServer, tokens: &Tokens) -> String {
    let (_, id) = server.verify(&tokens.id, &tokens.client).await;
    id["sid"].as_str().expect("sid").to_owned()
}

/// Waits until `rp` holds `n` logout tokens, then verifies each for `client`: their
/// `(sub, sid)`, sorted.
async fn told(server: &TestServer, rp: &LogoutRp, client: &str, n: usize) -> Vec<(String, String)> {
    let arrived = eventually(Duration::from_secs(10), || async { rp.tokens().len() >= n }).await;
    assert!(arrived, "{client} got {} of {n}", rp.tokens().len());
    let mut seen = Vec::new();
    for token in rp.tokens() {
        let claims = verified_logout_token(server, &token, client).await;
        let text = |k: &str| claims[k].as_str().expect("a string").to_owned();
        seen.push((text("sub"), text("sid")));
    }
    seen.sort();
    seen
}

fn pairs(of: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = of
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn gatehouse_revoke_user_tells_each_application_of_each_of_her_sessions_and_no_one_elses() {
    let (web_rp, app_rp) = (LogoutRp::start().await, LogoutRp::start().await);
    let (server, admin, token_file) = admin_server(&web_rp, &app_rp).await;
    let mut laptop = Browser::new(&server);
    let on_laptop = tokens(&mut laptop, "web", "openid", "alice").await;
    tokens(&mut laptop, "app", "openid", "alice").await;
    let mut phone = Browser::new(&server);
    let on_phone = tokens(&mut phone, "web", "openid", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    let bobs = tokens(&mut bobs_browser, "web", "openid", "bob").await;
    let (laptop_sid, phone_sid) = (
        sid_of(&server, &on_laptop).await,
        sid_of(&server, &on_phone).await,
    );
    let bob_sid = sid_of(&server, &bobs).await;

    let (ok, out) = revoke_cli(&admin, &token_file, &["--user", "u-alice"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(r#""backchannel_logout":["app","web"]"#)
            && out.contains(r#""sessions_told":2"#),
        "her two sessions, not Bob's: {out}"
    );
    assert_eq!(
        told(&server, &web_rp, "web", 2).await,
        pairs(&[("u-alice", &laptop_sid), ("u-alice", &phone_sid)])
    );
    assert_eq!(
        told(&server, &app_rp, "app", 1).await,
        pairs(&[("u-alice", &laptop_sid)])
    );
    assert!(bobs.access_stands(&server).await, "Bob's session goes on");

    // Bob's session was not told: his logout is the one token web gets of it.
    logout(&mut bobs_browser).await;
    assert_eq!(
        told(&server, &web_rp, "web", 3).await,
        pairs(&[
            ("u-alice", &laptop_sid),
            ("u-alice", &phone_sid),
            ("u-bob", &bob_sid)
        ])
    );
}

#[tokio::test]
async fn gatehouse_revoke_client_tells_that_client_alone_of_each_session_it_was_in() {
    let (web_rp, app_rp) = (LogoutRp::start().await, LogoutRp::start().await);
    let (server, admin, token_file) = admin_server(&web_rp, &app_rp).await;
    let mut browser = Browser::new(&server);
    let alice_web = tokens(&mut browser, "web", "openid", "alice").await;
    let alice_app = tokens(&mut browser, "app", "openid", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    let bob_app = tokens(&mut bobs_browser, "app", "openid", "bob").await;
    // Bob's other session has no code of app's: app is not told of it.
    let mut bobs_phone = Browser::new(&server);
    tokens(&mut bobs_phone, "web", "openid", "bob").await;
    let (alice_sid, bob_sid) = (
        sid_of(&server, &alice_web).await,
        sid_of(&server, &bob_app).await,
    );

    let (ok, out) = revoke_cli(&admin, &token_file, &["--client", "app"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(r#""backchannel_logout":["app"]"#) && out.contains(r#""sessions_told":2"#),
        "app alone, of the two sessions it was in: {out}"
    );
    assert_eq!(
        told(&server, &app_rp, "app", 2).await,
        pairs(&[("u-alice", &alice_sid), ("u-bob", &bob_sid)])
    );
    assert!(!alice_app.access_stands(&server).await, "app's tokens end");
    assert!(
        alice_web.access_stands(&server).await,
        "the session goes on for web"
    );

    // web was not told: Alice's logout is the one token it gets of her session.
    logout(&mut browser).await;
    assert_eq!(
        told(&server, &web_rp, "web", 1).await,
        pairs(&[("u-alice", &alice_sid)])
    );
}

#[tokio::test]
async fn a_reload_that_ends_a_users_sessions_tells_their_applications() {
    let (web_rp, app_rp) = (LogoutRp::start().await, LogoutRp::start().await);
    let web = format!("backchannel_logout_uri = \"{}\"", web_rp.uri);
    let app = format!("backchannel_logout_uri = \"{}\"", app_rp.uri);
    let server = TestServer::start(&config_apps("", &web, "", &app)).await;
    let mut browser = Browser::new(&server);
    let alice = tokens(&mut browser, "web", "openid", "alice").await;
    tokens(&mut browser, "app", "openid", "alice").await;
    let mut bobs_browser = Browser::new(&server);
    let bob = tokens(&mut bobs_browser, "web", "openid", "bob").await;
    let (alice_sid, bob_sid) = (sid_of(&server, &alice).await, sid_of(&server, &bob).await);

    // tokens_not_before on Alice: her session's applications are told, Bob's are not.
    let cut_off = server.clock().now();
    let alice_cut = not_before(cut_off);
    reload_to(&server, &config_apps(&alice_cut, &web, "", &app), 2).await;
    assert_eq!(
        told(&server, &web_rp, "web", 1).await,
        pairs(&[("u-alice", &alice_sid)])
    );
    assert_eq!(
        told(&server, &app_rp, "app", 1).await,
        pairs(&[("u-alice", &alice_sid)])
    );
    assert!(bob.access_stands(&server).await);

    // Bob removed from the config: his session's application is told.
    let without_bob = config_apps(&alice_cut, &web, "", &app).replace(
        "id = \"u-bob\"\nusername = \"bob\"",
        "id = \"u-carol\"\nusername = \"carol\"",
    );
    reload_to(&server, &without_bob, 3).await;
    assert_eq!(
        told(&server, &web_rp, "web", 2).await,
        pairs(&[("u-alice", &alice_sid), ("u-bob", &bob_sid)])
    );
    assert!(!bob.access_stands(&server).await);
}
