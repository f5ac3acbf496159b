//! CORS for browser apps over real HTTP: preflights of the token, userinfo and
//! revocation endpoints, the headers of answers to allowed and refused origins, the
//! refusal of a token or revocation request from a foreign origin before anything
//! changes, `*` on the public metadata, a reload that adds an origin, and logout as
//! `oidc-client-ts` asks for it.


use crate::support::browser::{Browser, Pkce};
use crate::support::*;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The SPA's origin: the default, from its redirect URI.
const SPA: &str = "http://localhost:5173";
const SPA_REDIRECT: &str = "http://localhost:5173/callback.html";
/// An origin allowed for another client only.
const OTHER: &str = "https://other.example.com";
/// An origin no client allows.
const FOREIGN: &str = "https://evil.example.com";

fn clients(spa_origins: &str) -> String {
    config_with(&format!(
        r#"
[[clients]]
id = "spa"
name = "SPA"
public = true
first_party = true
redirect_uris = ["{SPA_REDIRECT}"]
post_logout_redirect_uris = ["{SPA}/"]
scopes = ["openid", "profile"]
{spa_origins}

[[clients]]
id = "other"
public = true
first_party = true
redirect_uris = ["https://other.example.com/cb"]
allowed_origins = ["{OTHER}"]

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]

[[clients]]
id = "closed"
public = true
first_party = true
redirect_uris = ["http://localhost:5173/closed.html"]
scopes = ["openid", "profile"]
allowed_origins = []

[[users]]
id = "u-1"
username = "alice"
password_hash = "{hash}"
name = "Alice"
"#,
        hash = service_hash()
    ))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().expect("ascii header"))
}

/// Asserts the answer may be read by a page on `origin` and by no other.
fn assert_readable_by(headers: &HeaderMap, origin: &str) {
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some(origin),
        "{headers:?}"
    );
    assert_eq!(header(headers, "vary"), Some("Origin"), "{headers:?}");
    assert!(
        headers.get("access-control-allow-credentials").is_none(),
        "these endpoints take no cookies: {headers:?}"
    );
}

/// Asserts no page on another origin may read the answer.
fn assert_unreadable(headers: &HeaderMap) {
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
    assert!(
        headers.get("access-control-allow-credentials").is_none(),
        "{headers:?}"
    );
}

/// Logs alice in as `client` and returns a code for `redirect_uri`.
async fn login_code(
    browser: &mut Browser<'_>,
    client: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile"),
        ("state", "s"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut seen = browser.authorize(&params).await;
    if seen.status == 200 {
        seen = browser.login("alice", SERVICE_SECRET).await;
    }
    assert_eq!(seen.status, 303, "{}", seen.body);
    seen.redirect_params()["code"].clone()
}

/// A code for the SPA, from a fresh browser, and the PKCE pair it is bound to.
async fn spa_code(server: &TestServer, seed: &str) -> (Pkce, String) {
    let pkce = Pkce::new(seed);
    let code = login_code(&mut Browser::new(server), "spa", SPA_REDIRECT, &pkce).await;
    (pkce, code)
}

/// POSTs `form` to `path` with `Origin: origin` (when given); status, headers, JSON.
async fn post(
    server: &TestServer,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let mut request = server.http.post(server.url(path)).form(form);
    if let Some(o) = origin {
        request = request.header("origin", o);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json body")
    };
    (status, headers, body)
}

/// Redeems `code` of the SPA from `origin`.
async fn redeem(
    server: &TestServer,
    origin: Option<&str>,
    code: &str,
    pkce: &Pkce,
) -> (u16, HeaderMap, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    post(server, "/token", origin, &form).await
}

/// Uses the SPA's refresh `token` from `origin`.
async fn refresh(server: &TestServer, origin: &str, token: &str) -> (u16, HeaderMap, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", token),
    ];
    post(server, "/token", Some(origin), &form).await
}

/// A preflight of `path` from `origin`, asking for POST with a Content-Type.
async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    server
        .http
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

async fn userinfo(server: &TestServer, origin: &str, token: &str) -> (u16, HeaderMap) {
    let response = server
        .http
        .get(server.url("/userinfo"))
        .header("origin", origin)
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo");
    (response.status().as_u16(), response.headers().clone())
}

fn assert_refused(status: u16, headers: &HeaderMap, body: &Value) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        body["error_description"], "origin not allowed for this client",
        "{body}"
    );
    assert_unreadable(headers);
}

#[tokio::test]
async fn preflights_are_answered_for_origins_some_client_allows() {
    let server = TestServer::start(&clients("")).await;
    for (path, methods) in [
        ("/token", "POST"),
        ("/revoke", "POST"),
        ("/userinfo", "GET, POST"),
    ] {
        // The SPA's origin comes from its redirect URI; OTHER is listed by another
        // client: a preflight names no client, so both are answered.
        for origin in [SPA, OTHER] {
            let response = preflight(&server, path, origin).await;
            assert_eq!(response.status(), 204, "{path} from {origin}");
            let h = response.headers();
            assert_readable_by(h, origin);
            assert_eq!(header(h, "access-control-allow-methods"), Some(methods));
            assert_eq!(
                header(h, "access-control-allow-headers"),
                Some("Authorization, Content-Type, DPoP")
            );
            assert_eq!(header(h, "access-control-max-age"), Some("600"));
        }
        for origin in [
            FOREIGN,
            "null",
            "http://localhost:5174",
            "https://localhost:5173",
        ] {
            let response = preflight(&server, path, origin).await;
            assert_eq!(response.status(), 400, "{path} from {origin}");
            assert_unreadable(response.headers());
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"], "invalid_request");
        }
        // An OPTIONS that is no preflight says which methods the endpoint takes.
        let plain = server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .send()
            .await
            .expect("options");
        assert_eq!(plain.status(), 204);
        assert_eq!(
            header(plain.headers(), "allow"),
            Some(format!("{methods}, OPTIONS").as_str())
        );
        assert_unreadable(plain.headers());
    }

    // Introspection is server-to-server: no CORS at all.
    let response = preflight(&server, "/introspect", SPA).await;
    assert_eq!(response.status(), 405);
    assert_unreadable(response.headers());
    let (_, headers, _) = post(&server, "/introspect", Some(SPA), &[("token", "x")]).await;
    assert_unreadable(&headers);
}

#[tokio::test]
async fn discovery_and_jwks_are_readable_from_any_origin() {
    let server = TestServer::start(&clients("")).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ] {
        for origin in [Some(FOREIGN), Some(SPA), None] {
            let mut request = server.http.get(server.url(path));
            if let Some(o) = origin {
                request = request.header("origin", o);
            }
            let response = request.send().await.expect("get");
            assert_eq!(response.status(), 200);
            let h = response.headers();
            assert_eq!(
                header(h, "access-control-allow-origin"),
                Some("*"),
                "{path}"
            );
            assert!(h.get("access-control-allow-credentials").is_none());
        }
    }
}

#[tokio::test]
async fn an_allowed_origin_reads_its_tokens_userinfo_and_refresh() {
    let server = TestServer::start(&clients("")).await;
    let (pkce, code) = spa_code(&server, "cors-allowed").await;

    let (status, headers, tokens) = redeem(&server, Some(SPA), &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    assert_readable_by(&headers, SPA);
    assert_eq!(
        header(&headers, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After, DPoP-Nonce")
    );
    let access = tokens["access_token"].as_str().expect("access token");
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");

    // Userinfo answers about the token's client: readable by its origin only. It
    // changes nothing, so another origin gets the answer but no header to read it by.
    let (status, headers) = userinfo(&server, SPA, access).await;
    assert_eq!(status, 200);
    assert_readable_by(&headers, SPA);
    let (status, headers) = userinfo(&server, OTHER, access).await;
    assert_eq!(status, 200);
    assert_unreadable(&headers);
    assert_eq!(header(&headers, "vary"), Some("Origin"));

    let (status, headers, refreshed) = refresh(&server, SPA, refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_readable_by(&headers, SPA);

    // The issuer's own origin is always allowed.
    let (pkce, code) = spa_code(&server, "cors-own-origin").await;
    let (status, _, body) = redeem(&server, Some(ISSUER), &code, &pkce).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_code_sent_from_a_foreign_origin_is_refused_and_still_works_afterwards() {
    let server = TestServer::start(&clients("")).await;
    let (pkce, code) = spa_code(&server, "cors-refused").await;

    // A foreign page, a page of another client, an opaque origin: each refused, and
    // the code is not spent (a spent code, used again, would be invalid_grant).
    for origin in [FOREIGN, OTHER, "null", "http://localhost:5174"] {
        let (status, headers, body) = redeem(&server, Some(origin), &code, &pkce).await;
        assert_refused(status, &headers, &body);
        assert_eq!(header(&headers, "vary"), Some("Origin"));
    }
    let (status, headers, tokens) = redeem(&server, Some(SPA), &code, &pkce).await;
    assert_eq!(
        status, 200,
        "the code still works from the right origin: {tokens}"
    );
    assert_readable_by(&headers, SPA);
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");

    // The same for a refresh token: refused, not rotated.
    let (status, headers, body) = refresh(&server, FOREIGN, refresh_token).await;
    assert_refused(status, &headers, &body);
    let (status, _, body) = refresh(&server, SPA, refresh_token).await;
    assert_eq!(status, 200, "the refresh token was not used up: {body}");
}

#[tokio::test]
async fn a_revocation_from_a_foreign_origin_revokes_nothing() {
    let server = TestServer::start(&clients("")).await;
    let (pkce, code) = spa_code(&server, "cors-revoke").await;
    let (_, _, tokens) = redeem(&server, Some(SPA), &code, &pkce).await;
    let access = tokens["access_token"].as_str().expect("access token");
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");

    for token in [access, refresh_token] {
        let form = [("token", token), ("client_id", "spa")];
        let (status, headers, body) = post(&server, "/revoke", Some(FOREIGN), &form).await;
        assert_refused(status, &headers, &body);
    }
    let (status, _) = userinfo(&server, SPA, access).await;
    assert_eq!(status, 200, "the access token still stands");

    let (status, headers, _) = post(
        &server,
        "/revoke",
        Some(SPA),
        &[("token", access), ("client_id", "spa")],
    )
    .await;
    assert_eq!(status, 200);
    assert_readable_by(&headers, SPA);
    let (status, headers) = userinfo(&server, SPA, access).await;
    assert_eq!(status, 401, "revoked from the right origin");
    // An error about the token's client is readable by its origin, challenge included.
    assert_readable_by(&headers, SPA);
    assert!(header(&headers, "www-authenticate").is_some_and(|c| c.starts_with("Bearer")));

    let (status, _, body) = refresh(&server, SPA, refresh_token).await;
    assert_eq!(
        status, 200,
        "the refused revocation left the refresh token: {body}"
    );
}

#[tokio::test]
async fn confidential_and_closed_clients_allow_no_browser_origin() {
    let server = TestServer::start(&clients("")).await;
    let form = [("grant_type", "client_credentials")];
    let send = |origin: Option<&'static str>| {
        let server = &server;
        async move {
            let mut request = server
                .http
                .post(server.url("/token"))
                .basic_auth("svc", Some(SERVICE_SECRET))
                .form(&form);
            if let Some(o) = origin {
                request = request.header("origin", o);
            }
            let response = request.send().await.expect("token");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (
                status,
                headers,
                response.json::<Value>().await.expect("json"),
            )
        }
    };
    let (status, headers, body) = send(Some(SPA)).await;
    assert_refused(status, &headers, &body);
    let (status, _, body) = send(None).await;
    assert_eq!(status, 200, "server to server, no Origin: {body}");
    let (status, _, body) = send(Some(ISSUER)).await;
    assert_eq!(status, 200, "the issuer's own origin: {body}");

    // A public client with `allowed_origins = []`: its redirect URI's origin is not
    // allowed for it, though it is for the SPA.
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("cors-closed");
    let code = login_code(
        &mut browser,
        "closed",
        "http://localhost:5173/closed.html",
        &pkce,
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "closed"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:5173/closed.html"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, headers, body) = post(&server, "/token", Some(SPA), &form).await;
    assert_refused(status, &headers, &body);
}

#[tokio::test]
async fn errors_before_a_client_is_known_are_readable_by_registered_origins() {
    let server = TestServer::start(&clients("")).await;
    // No grant_type, an unknown client: the app can read why, if its origin is one
    // some client allows.
    for (form, expected) in [
        (vec![("client_id", "spa")], (400, "invalid_request")),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", "nobody"),
                ("refresh_token", "x"),
            ],
            (401, "invalid_client"),
        ),
    ] {
        let (status, headers, body) = post(&server, "/token", Some(SPA), &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (expected.0, Some(expected.1))
        );
        assert_readable_by(&headers, SPA);
        let (_, headers, _) = post(&server, "/token", Some(FOREIGN), &form).await;
        assert_unreadable(&headers);
    }
    let (status, headers) = userinfo(&server, SPA, "not-a-token").await;
    assert_eq!(status, 401);
    assert_readable_by(&headers, SPA);
    let (_, headers) = userinfo(&server, FOREIGN, "not-a-token").await;
    assert_unreadable(&headers);
}

#[tokio::test]
async fn a_reload_adds_an_origin_and_a_listed_one_replaces_the_default() {
    let server = TestServer::start(&clients("")).await;
    let added = "https://spa.example.com";
    let response = preflight(&server, "/token", added).await;
    assert_eq!(response.status(), 400, "not allowed yet");

    let (pkce, code) = spa_code(&server, "cors-reload").await;
    let (status, headers, body) = redeem(&server, Some(added), &code, &pkce).await;
    assert_refused(status, &headers, &body);

    server.rewrite_config(&clients(&format!("allowed_origins = [\"{added}\"]")));
    server.wait_for_generation(2).await;

    let response = preflight(&server, "/token", added).await;
    assert_eq!(response.status(), 204);
    assert_readable_by(response.headers(), added);
    let (status, headers, tokens) = redeem(&server, Some(added), &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    assert_readable_by(&headers, added);

    // The list replaced the default: the redirect URI's origin is no longer allowed.
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh");
    let (status, headers, body) = refresh(&server, SPA, refresh_token).await;
    assert_refused(status, &headers, &body);
    let response = preflight(&server, "/token", SPA).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn logout_as_oidc_client_ts_sends_it_returns_to_the_app() {
    let server = TestServer::start(&clients("")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("cors-logout");
    let code = login_code(&mut browser, "spa", SPA_REDIRECT, &pkce).await;
    let (_, _, tokens) = redeem(&server, Some(SPA), &code, &pkce).await;
    let id_token = tokens["id_token"].as_str().expect("id token");

    // signoutRedirect: id_token_hint and post_logout_redirect_uri, with state, and
    // no client_id (the hint names the client).
    let post_logout = format!("{SPA}/");
    let confirm = browser
        .http
        .get(server.url("/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", post_logout.as_str()),
            ("state", "f0e1d2"),
        ])
        .send()
        .await
        .expect("logout");
    assert_eq!(confirm.status(), 200, "asks to confirm");
    let csp = header(confirm.headers(), "content-security-policy")
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {SPA}")),
        "the confirming form may lead back to the app: {csp}"
    );
    browser.last_page = confirm.text().await.expect("page");
    let done = browser.submit("/logout", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.redirect_base(), post_logout);
    assert_eq!(done.redirect_params()["state"], "f0e1d2");

    // The session is over: the next login asks for the password again.
    let again = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("name=\"password\""));
}
