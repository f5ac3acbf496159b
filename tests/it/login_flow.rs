//! End-user login over real HTTP: the authorization-code flow with PKCE for confidential,
//! public and loopback native clients, driven by a cookie-holding browser stand-in that
//! reads and submits the server's forms; every error rule of the authorization and token
//! endpoints; refresh rotation; userinfo; logout.

use crate::support::browser::{Browser, Pkce, Seen};
use crate::support::*;
use serde_json::Value;

const ALICE_PASSWORD: &str = SERVICE_SECRET;

fn login_config(extra: &str) -> String {
    config_with(&format!(
        r#"
[limits]
login_max_failures = 4

[[scopes]]
name = "invoices:read"
description = "Read your invoices"

[[clients]]
id = "web"
name = "Web App"
secret_hash = "{hash}"
redirect_uris = ["https://web.example.com/cb", "https://web.example.com/cb2"]
post_logout_redirect_uris = ["https://web.example.com/bye"]
scopes = ["openid", "profile", "email", "offline_access", "invoices:read"]

[[clients]]
id = "spa"
public = true
first_party = true
redirect_uris = ["https://spa.example.com/cb"]
scopes = ["openid", "profile", "email"]

[[clients]]
id = "cli"
public = true
grant_types = ["authorization_code"]
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
email = "alice@example.com"
email_verified = true
name = "Alice Liddell"
{extra}
"#,
        hash = service_hash()
    ))
}

fn authz<'a>(
    client: &'a str,
    redirect: &'a str,
    scope: &'a str,
    pkce: &'a Pkce,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn assert_page_headers(seen: &Seen) {
    let csp = seen.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("script-src"),
        "no script is allowed at all: {csp}"
    );
    assert_eq!(seen.headers["x-frame-options"], "DENY");
    assert_eq!(seen.headers["referrer-policy"], "no-referrer");
    assert_eq!(seen.headers["cache-control"], "no-store");
}

/// Gets a code for the web client as alice: logs in and allows consent when asked.
async fn code_for_web(browser: &mut Browser<'_>, pkce: &Pkce, scope: &str) -> String {
    let mut seen = browser
        .authorize(&authz("web", "https://web.example.com/cb", scope, pkce))
        .await;
    if seen.status == 200 && seen.body.contains("name=\"password\"") {
        seen = browser.login("alice", ALICE_PASSWORD).await;
    }
    if seen.status == 200 {
        assert!(
            seen.body.contains("Web App"),
            "third-party client: consent page"
        );
        seen = browser.consent("allow").await;
    }
    assert_eq!(seen.status, 303, "{}", seen.body);
    seen.redirect_params()["code"].clone()
}

async fn redeem(
    server: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = server.http.post(server.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Redeems a code of the web client (Basic auth, its first redirect URI, `pkce`).
async fn redeem_web(server: &TestServer, code: &str, pkce: &Pkce) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "https://web.example.com/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    redeem(server, &form, Some(("web", SERVICE_SECRET))).await
}

async fn userinfo(server: &TestServer, token: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo");
    (
        r.status().as_u16(),
        r.headers().clone(),
        r.text().await.expect("body"),
    )
}

#[tokio::test]
async fn confidential_client_full_flow() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("confidential");

    let login = browser
        .authorize(&authz(
            "web",
            "https://web.example.com/cb",
            "openid profile email offline_access",
            &pkce,
        ))
        .await;
    assert_eq!(login.status, 200);
    assert_page_headers(&login);
    assert!(login.body.contains("name=\"password\"") && login.body.contains("Web App"));
    assert!(
        login.headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("form-action 'self' https://web.example.com")
    );

    let consent = browser.login("alice", ALICE_PASSWORD).await;
    assert_eq!(consent.status, 200);
    assert_page_headers(&consent);
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(consent.body.contains(scope), "consent lists {scope}");
    }
    let redirect = browser.consent("allow").await;
    assert_eq!(redirect.status, 303);
    assert_eq!(redirect.redirect_base(), "https://web.example.com/cb");
    let params = redirect.redirect_params();
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], ISSUER);
    assert_eq!(params["code"].len(), 43, "256-bit code");

    let (status, tokens) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", &pkce.verifier),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    let access = tokens["access_token"].as_str().expect("access token");
    let (header, claims) = server.verify(access, "web").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["sub"], "u-alice");
    assert_eq!(claims["client_id"], "web");

    let (header, id) = server
        .verify(tokens["id_token"].as_str().expect("id token"), "web")
        .await;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(id["sub"], "u-alice");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["name"], "Alice Liddell");
    assert!(id["auth_time"].as_u64().is_some());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    let expected_at_hash = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &digest.as_ref()[..16],
    );
    assert_eq!(id["at_hash"], expected_at_hash);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .is_some_and(|r| r.len() == 43)
    );

    let (status, _, body) = userinfo(&server, access).await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(info["sub"], "u-alice");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["preferred_username"], "alice");
    let post = server
        .http
        .post(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 200, "userinfo answers POST too");
    let in_body = server
        .http
        .post(server.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("post");
    assert_eq!(
        in_body.status(),
        200,
        "RFC 6750 2.2: the token as a form parameter"
    );
}

#[tokio::test]
async fn first_party_public_spa_skips_consent_and_sso_reuses_the_session() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("spa");
    browser
        .authorize(&authz(
            "spa",
            "https://spa.example.com/cb",
            "openid email",
            &pkce,
        ))
        .await;
    let redirect = browser.login("alice", ALICE_PASSWORD).await;
    assert_eq!(redirect.status, 303, "first party: no consent page");
    let code = redirect.redirect_params()["code"].clone();
    let (status, tokens) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", "https://spa.example.com/cb"),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens["refresh_token"].is_string(),
        "public clients with the grant get rotating refresh tokens"
    );

    // Single sign-on: the next request in this browser needs no login.
    let again = browser
        .authorize(&authz(
            "spa",
            "https://spa.example.com/cb",
            "openid",
            &Pkce::new("spa2"),
        ))
        .await;
    assert_eq!(again.status, 303);
    assert!(again.redirect_params().contains_key("code"));

    // prompt=login asks for the password again.
    let mut params = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    params.push(("prompt", "login"));
    let relogin = browser.authorize(&params).await;
    assert_eq!(relogin.status, 200);
    assert!(relogin.body.contains("name=\"password\""));

    // max_age=60 two minutes after the login: the login is too old.
    server.clock().advance(std::time::Duration::from_secs(120));
    let mut params = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    params.push(("max_age", "60"));
    assert_eq!(browser.authorize(&params).await.status, 200);
    let mut params = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    params.push(("max_age", "3600"));
    assert_eq!(browser.authorize(&params).await.status, 303);

    // login_hint prefills the username.
    let mut fresh = Browser::new(&server);
    let mut params = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    params.push(("login_hint", "alice"));
    let page = fresh.authorize(&params).await;
    assert!(page.body.contains("value=\"alice\""), "{}", page.body);
}

#[tokio::test]
async fn loopback_native_client_on_any_port() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("native-cli");
    let redirect_uri = "http://127.0.0.1:54321/callback";
    browser
        .authorize(&authz("cli", redirect_uri, "openid", &pkce))
        .await;
    browser.login("alice", ALICE_PASSWORD).await;
    let redirect = browser.consent("allow").await;
    assert_eq!(
        redirect.redirect_base(),
        redirect_uri,
        "the port the CLI asked for"
    );
    let code = redirect.redirect_params()["code"].clone();
    let (status, tokens) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no refresh_token grant: no refresh token"
    );

    // Another path on the loopback host is not registered.
    let other = browser
        .authorize(&authz(
            "cli",
            "http://127.0.0.1:54321/other",
            "openid",
            &pkce,
        ))
        .await;
    assert_eq!(other.status, 400);
    assert!(other.location.is_none());
}

#[tokio::test]
async fn authorization_errors_never_redirect_to_unregistered_uris() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("errors");

    for (client, redirect) in [
        ("nobody", "https://web.example.com/cb"),
        ("web", "https://evil.example.com/cb"),
        ("web", "https://web.example.com/cb/"),
        ("web", "https://web.example.com/cb?x=1"),
        ("web", "https://web.example.com/c"),
        ("web", "http://web.example.com/cb"),
    ] {
        let seen = browser
            .authorize(&authz(client, redirect, "openid", &pkce))
            .await;
        assert_eq!(seen.status, 400, "{client} {redirect}");
        assert!(
            seen.location.is_none(),
            "never redirected: {client} {redirect}"
        );
        assert_page_headers(&seen);
    }
    // Several registered URIs: redirect_uri may not be left out.
    let seen = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(seen.status, 400);

    let redirected = |seen: &Seen, error: &str| {
        assert_eq!(seen.status, 303, "{}", seen.body);
        let p = seen.redirect_params();
        assert_eq!(p["error"], error);
        assert_eq!(p["state"], "st-1");
        assert_eq!(p["iss"], ISSUER);
        assert!(p.contains_key("error_description"));
    };
    let base = authz("web", "https://web.example.com/cb", "openid", &pkce);
    let with = |changes: &[(&'static str, Option<&'static str>)]| {
        let mut p: Vec<(&str, &str)> = base.clone();
        for (k, v) in changes {
            p.retain(|(name, _)| name != k);
            if let Some(v) = v {
                p.push((k, v));
            }
        }
        p
    };
    redirected(
        &browser.authorize(&with(&[("code_challenge", None)])).await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("code_challenge_method", Some("plain"))]))
            .await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("code_challenge_method", None)]))
            .await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("code_challenge", Some("too-short"))]))
            .await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("response_type", Some("token"))]))
            .await,
        "unsupported_response_type",
    );
    redirected(
        &browser.authorize(&with(&[("response_type", None)])).await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("scope", Some("openid admin"))]))
            .await,
        "invalid_scope",
    );
    redirected(
        &browser
            .authorize(&with(&[("prompt", Some("none login"))]))
            .await,
        "invalid_request",
    );
    redirected(
        &browser.authorize(&with(&[("max_age", Some("soon"))])).await,
        "invalid_request",
    );
    redirected(
        &browser
            .authorize(&with(&[("request", Some("eyJ..."))]))
            .await,
        "request_not_supported",
    );
    // prompt=none without a session.
    redirected(
        &browser.authorize(&with(&[("prompt", Some("none"))])).await,
        "login_required",
    );

    // A repeated parameter is refused without a redirect.
    let url = format!("{}?client_id=web&client_id=spa", server.url("/authorize"));
    let r = browser.http.get(url).send().await.expect("get");
    assert_eq!(r.status(), 400);

    // Logged in but never consented: prompt=none says consent_required.
    browser.authorize(&base).await;
    browser.login("alice", ALICE_PASSWORD).await;
    redirected(
        &browser.authorize(&with(&[("prompt", Some("none"))])).await,
        "consent_required",
    );
}

#[tokio::test]
async fn consent_deny_remember_and_ask_again_for_new_scopes() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("consent");
    browser
        .authorize(&authz(
            "web",
            "https://web.example.com/cb",
            "openid profile",
            &pkce,
        ))
        .await;
    browser.login("alice", ALICE_PASSWORD).await;
    let denied = browser.consent("deny").await;
    assert_eq!(denied.status, 303);
    let p = denied.redirect_params();
    assert_eq!(
        (p["error"].as_str(), p["state"].as_str(), p["iss"].as_str()),
        ("access_denied", "st-1", ISSUER)
    );

    // Deny remembered nothing: consent is asked again; allow is remembered.
    assert_eq!(
        browser
            .authorize(&authz(
                "web",
                "https://web.example.com/cb",
                "openid profile",
                &pkce
            ))
            .await
            .status,
        200
    );
    assert_eq!(browser.consent("allow").await.status, 303);
    let same = browser
        .authorize(&authz("web", "https://web.example.com/cb", "openid", &pkce))
        .await;
    assert_eq!(
        same.status, 303,
        "a subset of what was granted: no consent page"
    );
    let more = browser
        .authorize(&authz(
            "web",
            "https://web.example.com/cb",
            "openid invoices:read",
            &pkce,
        ))
        .await;
    assert_eq!(more.status, 200, "a new scope asks again");
    assert!(more.body.contains("Read your invoices"));
    let mut forced = authz("web", "https://web.example.com/cb", "openid", &pkce);
    forced.push(("prompt", "consent"));
    assert_eq!(
        browser.authorize(&forced).await.status,
        200,
        "prompt=consent asks again"
    );
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("csrf");
    browser
        .authorize(&authz("web", "https://web.example.com/cb", "openid", &pkce))
        .await;
    let request = browser.hidden("request").expect("request id");
    let csrf = browser.hidden("csrf_token").expect("csrf");
    let creds = |csrf: Option<&str>| {
        let mut f = vec![
            ("request".to_owned(), request.clone()),
            ("username".to_owned(), "alice".to_owned()),
            ("password".to_owned(), ALICE_PASSWORD.to_owned()),
        ];
        if let Some(c) = csrf {
            f.push(("csrf_token".to_owned(), c.to_owned()));
        }
        f
    };
    assert_eq!(
        browser.post_form("/login", &creds(None)).await.status,
        403,
        "missing"
    );
    assert_eq!(
        browser
            .post_form("/login", &creds(Some("forged-token-forged-token")))
            .await
            .status,
        403,
        "wrong"
    );

    // Another browser (no CSRF cookie) posting this page's token: refused too.
    let mut attacker = Browser::new(&server);
    assert_eq!(
        attacker
            .post_form("/login", &creds(Some(&csrf)))
            .await
            .status,
        403,
        "cross-site"
    );

    // The real form works, and the consent form is protected the same way.
    assert_eq!(
        browser
            .post_form("/login", &creds(Some(&csrf)))
            .await
            .status,
        200
    );
    let consent = vec![
        ("request".to_owned(), request.clone()),
        ("decision".to_owned(), "allow".to_owned()),
    ];
    assert_eq!(browser.post_form("/consent", &consent).await.status, 403);
}

#[tokio::test]
async fn csrf_tokens_are_bound_to_their_request_and_browser_and_cross_site_posts_refused() {
    let server = TestServer::start(&login_config("")).await;
    let pkce = Pkce::new("csrf-bound");
    let params = authz("web", "https://web.example.com/cb", "openid", &pkce);
    let mut browser = Browser::new(&server);
    browser.authorize(&params).await;
    let (first_request, first_token) = (
        browser.hidden("request").expect("request"),
        browser.hidden("csrf_token").expect("csrf"),
    );
    browser.authorize(&params).await;
    let (second_request, second_token) = (
        browser.hidden("request").expect("request"),
        browser.hidden("csrf_token").expect("csrf"),
    );
    assert_ne!(first_token, second_token, "one token per pending request");
    let login = |request: &str, token: &str| {
        vec![
            ("request".to_owned(), request.to_owned()),
            ("csrf_token".to_owned(), token.to_owned()),
            ("username".to_owned(), "alice".to_owned()),
            ("password".to_owned(), "wrong".to_owned()),
        ]
    };
    assert_eq!(
        browser
            .post_form("/login", &login(&second_request, &first_token))
            .await
            .status,
        403,
        "a token carried to another pending request"
    );

    // A cookie and token of the attacker's choosing (double submit of a short value).
    let planted = server
        .http
        .post(server.url("/login"))
        .header("cookie", "gatehouse_csrf=abc")
        .form(&login(&first_request, "abc"))
        .send()
        .await
        .expect("post");
    assert_eq!(planted.status(), 403, "a planted cookie and token");

    // The right token, posted from another site.
    let post = |headers: &[(&'static str, &'static str)]| {
        let mut r = browser
            .http
            .post(server.url("/login"))
            .form(&login(&first_request, &first_token));
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        async move { r.send().await.expect("post").status().as_u16() }
    };
    assert_eq!(post(&[("sec-fetch-site", "cross-site")]).await, 403);
    assert_eq!(post(&[("sec-fetch-site", "same-site")]).await, 403);
    assert_eq!(post(&[("origin", "https://evil.example")]).await, 403);
    // From our own pages it goes through (a wrong password: the form again).
    assert_eq!(post(&[("sec-fetch-site", "same-origin")]).await, 200);
    assert_eq!(post(&[("origin", ISSUER)]).await, 200);
    assert_eq!(
        post(&[("sec-fetch-site", "same-origin"), ("origin", "null")]).await,
        200
    );
}

#[tokio::test]
async fn the_logout_form_is_bound_to_its_session() {
    let server = TestServer::start(&login_config("")).await;
    let pkce = Pkce::new("logout-csrf");
    let params = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    let mut browser = Browser::new(&server);
    browser.authorize(&params).await;
    assert_eq!(browser.login("alice", ALICE_PASSWORD).await.status, 303);
    let confirm = browser
        .http
        .get(server.url("/logout"))
        .send()
        .await
        .expect("get");
    browser.last_page = confirm.text().await.expect("body");
    let token = browser.hidden("csrf_token").expect("csrf");
    // The same browser logs in again: a new session, so the old form is stale.
    browser.authorize(&params).await;
    let params_login = authz("spa", "https://spa.example.com/cb", "openid", &pkce);
    browser
        .authorize(&[params_login.as_slice(), &[("prompt", "login")]].concat())
        .await;
    assert_eq!(browser.login("alice", ALICE_PASSWORD).await.status, 303);
    let form = vec![("csrf_token".to_owned(), token)];
    assert_eq!(browser.post_form("/logout", &form).await.status, 403);
}

#[tokio::test]
async fn wrong_passwords_get_one_message_then_are_slowed_and_refused() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("throttle");
    browser
        .authorize(&authz("web", "https://web.example.com/cb", "openid", &pkce))
        .await;

    let unknown = browser.login("mallory", "whatever").await;
    let wrong = browser.login("alice", "wrong-password").await;
    assert_eq!((unknown.status, wrong.status), (200, 200));
    for page in [&unknown, &wrong] {
        assert!(page.body.contains("Incorrect username or password."));
        assert!(
            page.body.contains("name=\"password\""),
            "the form is shown again"
        );
    }
    // alice: 1 failure so far; limit 4 (slowed from 2). Two more failures...
    browser.login("alice", "wrong-password").await;
    let started = std::time::Instant::now();
    browser.login("alice", "wrong-password").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "slowed down"
    );
    // ...the fourth is counted; the next attempt is refused, even with the right password.
    let refused = browser.login("alice", ALICE_PASSWORD).await;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60);
}

#[tokio::test]
async fn code_redemption_errors() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);

    // Wrong verifier.
    let pkce = Pkce::new("verifier");
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", &Pkce::new("another").verifier),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Missing verifier.
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb"),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Different redirect_uri (another registered one).
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb2"),
            ("code_verifier", &pkce.verifier),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A code from another client.
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A confidential client must authenticate to redeem.
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Unknown code.
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", &pkce.verifier),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("replay");
    let code = code_for_web(&mut browser, &pkce, "openid offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://web.example.com/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, first) = redeem(&server, &form, Some(("web", SERVICE_SECRET))).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().expect("access");
    assert_eq!(userinfo(&server, access).await.0, 200);

    let (status, replay) = redeem(&server, &form, Some(("web", SERVICE_SECRET))).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, headers, _) = userinfo(&server, access).await;
    assert_eq!(status, 401, "the first access token is revoked");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );
    let (status, body) = redeem(
        &server,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first["refresh_token"].as_str().expect("refresh"),
            ),
        ],
        Some(("web", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "its refresh token too"
    );
}

/// The live refresh tokens the server's store holds, from `/metrics`.
async fn refresh_tokens_stored(server: &TestServer) -> String {
    let text = server.metrics().await;
    let gauge = r#"gatehouse_store_entries{kind="refresh_tokens"} "#;
    let line = text.lines().find(|l| l.starts_with(gauge));
    line.expect("the refresh token gauge")[gauge.len()..].to_owned()
}

#[tokio::test]
async fn a_redemption_with_the_wrong_verifier_stores_no_refresh_token() {
    // The first refresh token is stored in the redemption's own store step: only for
    // a code whose checks the request passes.
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("verifier");
    let code = code_for_web(&mut browser, &pkce, "openid offline_access").await;
    let stranger = Pkce::new("someone else");
    let (status, body) = redeem_web(&server, &code, &stranger).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh_tokens_stored(&server).await, "0");
    let (status, _) = redeem_web(&server, &code, &pkce).await;
    assert_eq!(
        status, 400,
        "a code redeemed with a wrong verifier is used up"
    );
    assert_eq!(refresh_tokens_stored(&server).await, "0");

    let code = code_for_web(&mut browser, &pkce, "openid offline_access").await;
    let (status, body) = redeem_web(&server, &code, &pkce).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    assert_eq!(refresh_tokens_stored(&server).await, "1");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let config = login_config("").replace(
        "[limits]",
        "[tokens]\nauthorization_code_ttl = \"30s\"\n\n[limits]",
    );
    let server = TestServer::start(&config).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("expiry");
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    server.clock().advance(std::time::Duration::from_secs(31));
    let (status, body) = redeem_web(&server, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_narrow_and_detect_reuse() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("refresh");
    let code = code_for_web(&mut browser, &pkce, "openid profile offline_access").await;
    let (_, tokens) = redeem_web(&server, &code, &pkce).await;
    let first = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let refresh =
        |token: String, scope: Option<&'static str>, client: (&'static str, &'static str)| {
            let server = &server;
            async move {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", token),
                ];
                if let Some(s) = scope {
                    form.push(("scope", s.to_owned()));
                }
                let r = server
                    .http
                    .post(server.url("/token"))
                    .basic_auth(client.0, Some(client.1))
                    .form(&form)
                    .send()
                    .await
                    .expect("refresh");
                (r.status().as_u16(), r.json::<Value>().await.expect("json"))
            }
        };
    let web = ("web", SERVICE_SECRET);

    // Narrowing is allowed; widening is not.
    let (status, body) = refresh(first.clone(), Some("openid invoices:read"), web).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, second) = refresh(first.clone(), Some("openid"), web).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "openid");
    let second_token = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(second_token, first);
    assert!(second["id_token"].is_string());

    // The narrowed refresh still carries the original grant.
    let (status, third) = refresh(second_token.clone(), None, web).await;
    assert_eq!(status, 200);
    assert_eq!(third["scope"], "openid profile offline_access");
    let third_token = third["refresh_token"].as_str().expect("rotated").to_owned();

    // Reusing a rotated token: invalid_grant, and the whole family is revoked.
    let (status, body) = refresh(first.clone(), None, web).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(third_token, None, web).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the newest member dies too"
    );

    // Only the client it was issued to may use a refresh token.
    let code = code_for_web(&mut browser, &pkce, "openid offline_access").await;
    let (_, tokens) = redeem_web(&server, &code, &pkce).await;
    let r = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("refresh"),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn userinfo_refuses_bad_tokens() {
    let server = TestServer::start(&format!("{}\n[[clients]]\nid = \"svc\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n", login_config(""), service_hash())).await;
    let r = server
        .http
        .get(server.url("/userinfo"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");

    for bad in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LWFsaWNlIn0.",
    ] {
        let (status, headers, _) = userinfo(&server, bad).await;
        assert_eq!(status, 401, "{bad}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .expect("ascii")
                .starts_with("Bearer error=\"invalid_token\"")
        );
    }

    // A client-credentials token has no user: refused as a token, whatever its scope.
    let (_, cc) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let (status, headers, _) = userinfo(&server, cc["access_token"].as_str().expect("token")).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );

    // A user's token without openid is short of scope.
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("userinfo-profile");
    let code = code_for_web(&mut browser, &pkce, "profile").await;
    let (_, tokens) = redeem_web(&server, &code, &pkce).await;
    let (status, headers, _) =
        userinfo(&server, tokens["access_token"].as_str().expect("access")).await;
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );

    // An ID token is not an access token.
    let pkce = Pkce::new("userinfo");
    let code = code_for_web(&mut browser, &pkce, "openid").await;
    let (_, tokens) = redeem_web(&server, &code, &pkce).await;
    assert_eq!(
        userinfo(&server, tokens["id_token"].as_str().expect("id"))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_returns_to_registered_uris_only() {
    let server = TestServer::start(&login_config("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("logout");
    code_for_web(&mut browser, &pkce, "openid").await;

    let bad = browser
        .http
        .get(server.url("/logout"))
        .query(&[
            ("client_id", "web"),
            ("post_logout_redirect_uri", "https://evil.example.com/"),
        ])
        .send()
        .await
        .expect("logout");
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("location").is_none());

    let confirm = browser
        .http
        .get(server.url("/logout"))
        .query(&[
            ("client_id", "web"),
            ("post_logout_redirect_uri", "https://web.example.com/bye"),
            ("state", "bye-1"),
        ])
        .send()
        .await
        .expect("logout");
    assert_eq!(confirm.status(), 200, "asks to confirm");
    browser.last_page = confirm.text().await.expect("page");
    let done = browser.submit("/logout", &[]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.redirect_base(), "https://web.example.com/bye");
    assert_eq!(done.redirect_params()["state"], "bye-1");

    // The session is gone: the next authorization asks for the password.
    let again = browser
        .authorize(&authz("web", "https://web.example.com/cb", "openid", &pkce))
        .await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("name=\"password\""));
}
