//! Pushed authorization requests (RFC 9126, issue 23): `POST /par` checks the client
//! and every parameter as `/authorize` would, answers 201 with a `request_uri`;
//! `/authorize` takes the pushed request by `request_uri` for its client only, ignores
//! the URL's other parameters, lets a login page reload use it again, and is done with
//! it once its code is issued; an expired one is refused; a client (or a server) that
//! requires PAR is refused a plain request; pushes count against the pending cap;
//! errors are JSON; CORS per client; discovery names the endpoint.

use crate::support::browser::{Browser, Pkce};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const SPA_ORIGIN: &str = "https://spa.example.com";

fn par_config(extra: &str) -> String {
    config_with(&format!(
        r#"
{extra}
[[clients]]
id = "spa"
public = true
first_party = true
require_pushed_authorization_requests = true
redirect_uris = ["https://spa.example.com/cb"]
scopes = ["openid", "profile"]

[[clients]]
id = "web"
secret_hash = "{hash}"
first_party = true
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

/// The authorization parameters of the SPA.
fn spa_params(pkce: &Pkce) -> Vec<(&str, &str)> {
    vec![
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", "https://spa.example.com/cb"),
        ("scope", "openid profile"),
        ("state", "st-pushed"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// POSTs `form` to `/par` (with `Origin` when given); status, headers and JSON.
async fn push(
    server: &TestServer,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.http.post(server.url("/par")).form(form);
    if let Some(o) = origin {
        request = request.header("origin", o);
    }
    let response = request.send().await.expect("par");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Pushes the SPA's request; its `request_uri`.
async fn pushed(server: &TestServer, pkce: &Pkce) -> String {
    let (status, headers, body) = push(server, &spa_params(pkce), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"]
        .as_str()
        .expect("a request_uri")
        .to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:") && uri.len() > 60,
        "{uri}"
    );
    uri
}

#[tokio::test]
async fn a_pushed_request_gives_one_code_and_the_url_parameters_are_ignored() {
    let server = TestServer::start(&par_config("")).await;
    let pkce = Pkce::new("par-flow");
    let request_uri = pushed(&server, &pkce).await;
    let mut browser = Browser::new(&server);
    // Other parameters on the URL are ignored (RFC 9126 4): this state is not echoed.
    let by_reference = [
        ("client_id", "spa"),
        ("request_uri", request_uri.as_str()),
        ("state", "from-the-url"),
        ("scope", "openid"),
    ];
    let seen = browser.authorize(&by_reference).await;
    assert_eq!(seen.status, 200, "the login page: {}", seen.body);
    // A reload of the login page uses the pushed request again.
    let seen = browser.authorize(&by_reference).await;
    assert_eq!(seen.status, 200, "a reload: {}", seen.body);
    let seen = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    assert_eq!(seen.redirect_base(), "https://spa.example.com/cb");
    let params = seen.redirect_params();
    assert_eq!(
        params["state"], "st-pushed",
        "the pushed state, not the URL's"
    );
    let code = params["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("redirect_uri", "https://spa.example.com/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let response = server
        .http
        .post(server.url("/token"))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["scope"], "openid profile", "the pushed scope");
    // Its code was issued: the request_uri is used up, even in a session that needs
    // no login page.
    let seen = browser.authorize(&by_reference).await;
    assert_eq!(seen.status, 400, "used up: {}", seen.body);
    assert!(seen.body.contains("unknown, expired or used already"));
}

#[tokio::test]
async fn a_request_uri_of_another_client_or_expired_or_unknown_is_refused() {
    let server = TestServer::start(&par_config("")).await;
    let pkce = Pkce::new("par-refusals");
    let request_uri = pushed(&server, &pkce).await;
    let mut browser = Browser::new(&server);
    let seen = browser
        .authorize(&[("client_id", "web"), ("request_uri", &request_uri)])
        .await;
    assert_eq!(seen.status, 400, "another client's: {}", seen.body);
    assert!(seen.location.is_none(), "never a redirect");
    assert!(seen.body.contains("another application"), "{}", seen.body);
    let seen = browser
        .authorize(&[("request_uri", request_uri.as_str())])
        .await;
    assert_eq!(seen.status, 400, "no client_id");
    let unknown = "urn:ietf:params:oauth:request_uri:not-pushed";
    let seen = browser
        .authorize(&[("client_id", "spa"), ("request_uri", unknown)])
        .await;
    assert_eq!(seen.status, 400, "unknown");
    // Still good for its own client, until it expires (60 s).
    let seen = browser
        .authorize(&[("client_id", "spa"), ("request_uri", &request_uri)])
        .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    server.clock().advance(Duration::from_secs(61));
    let seen = browser
        .authorize(&[("client_id", "spa"), ("request_uri", &request_uri)])
        .await;
    assert_eq!(seen.status, 400, "expired: {}", seen.body);
}

#[tokio::test]
async fn a_client_that_requires_par_is_refused_a_plain_request_and_so_is_every_client_when_the_server_does()
 {
    let server = TestServer::start(&par_config("")).await;
    let pkce = Pkce::new("par-required");
    let mut browser = Browser::new(&server);
    let seen = browser.authorize(&spa_params(&pkce)).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    let params = seen.redirect_params();
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("PAR"));
    assert_eq!(params["state"], "st-pushed");
    // The other client may still use plain requests.
    let web = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", "https://web.example.com/cb"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    assert_eq!(browser.authorize(&web).await.status, 200);
    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        format!("{ISSUER}/par")
    );
    assert_eq!(discovery["require_pushed_authorization_requests"], false);

    let strict =
        TestServer::start(&par_config("require_pushed_authorization_requests = true")).await;
    let mut browser = Browser::new(&strict);
    let seen = browser.authorize(&web).await;
    assert_eq!(seen.status, 303);
    assert_eq!(seen.redirect_params()["error"], "invalid_request");
    let discovery: Value = strict
        .http
        .get(strict.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["require_pushed_authorization_requests"], true);
}

#[tokio::test]
async fn par_checks_the_client_and_every_parameter_and_answers_json() {
    let server = TestServer::start(&par_config("")).await;
    let pkce = Pkce::new("par-errors");
    let with = |name: &'static str, value: &'static str| {
        let mut params: Vec<(&str, &str)> = spa_params(&pkce)
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect();
        if !value.is_empty() {
            params.push((name, value));
        }
        params
    };
    for (params, status, error, why) in [
        (
            with("redirect_uri", "https://evil.example/cb"),
            400,
            "invalid_request",
            "an unregistered redirect_uri",
        ),
        (
            with("code_challenge", ""),
            400,
            "invalid_request",
            "no PKCE",
        ),
        (
            with("scope", "openid admin"),
            400,
            "invalid_scope",
            "a scope not allowed",
        ),
        (
            with("response_type", "token"),
            400,
            "unsupported_response_type",
            "an implicit request",
        ),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            400,
            "invalid_request",
            "a request_uri pushed",
        ),
        (
            with("client_id", "nobody"),
            401,
            "invalid_client",
            "an unknown client",
        ),
    ] {
        let (got, _, body) = push(&server, &params, None).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{why}: {body}"
        );
    }
    // A confidential client authenticates as at /token.
    let web = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("client_secret", "wrong"),
        ("redirect_uri", "https://web.example.com/cb"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (status, _, body) = push(&server, &web, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let mut web = web.to_vec();
    web[2] = ("client_secret", SERVICE_SECRET);
    let (status, _, body) = push(&server, &web, None).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn pushed_requests_count_against_the_pending_cap_and_cors_follows_the_client() {
    let server = TestServer::start(&par_config(
        "[limits]\npending_per_address = 2\npending_total = 100",
    ))
    .await;
    let pkce = Pkce::new("par-cap");
    let (status, headers, body) = push(&server, &spa_params(&pkce), Some(SPA_ORIGIN)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    let (status, headers, body) =
        push(&server, &spa_params(&pkce), Some("https://evil.example")).await;
    assert_eq!(status, 400, "a foreign origin is refused: {body}");
    assert!(headers.get("access-control-allow-origin").is_none());
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/par"))
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "dpop, content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 204);
    let (status, _, _) = push(&server, &spa_params(&pkce), None).await;
    assert_eq!(status, 201, "the second of two");
    let (status, headers, body) = push(&server, &spa_params(&pkce), None).await;
    assert_eq!(status, 429, "a third from the network: {body}");
    assert!(headers.contains_key("retry-after"));
}
