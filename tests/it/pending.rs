//! Requests waiting for the user: a request that waits for a login goes on only through
//! a login (never through `/consent`), a fresh login it asked for is the one in its
//! tokens, and what an unauthenticated caller can make the server keep is bounded:
//! `state`, `nonce`, `login_hint` in length, pending requests per address, in all, and
//! in time.

use crate::support::browser::{Browser, Pkce};
use crate::support::*;
use std::time::Duration;

fn config(limits: &str, session: &str) -> String {
    config_with(&format!(
        r#"
[limits]
pages_per_second = 10000
pages_burst = 10000
{limits}

[session]
{session}

[[clients]]
id = "web"
secret_hash = "{h}"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{h}"
"#,
        h = service_hash()
    ))
}

fn authz<'a>(pkce: &'a Pkce, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.retain(|(name, _)| !extra.iter().any(|(n, _)| n == name));
    params.extend_from_slice(extra);
    params
}

/// Redeems `code` for web; the ID token's `auth_time`.
async fn auth_time_of(server: &TestServer, code: &str, pkce: &Pkce) -> u64 {
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("web", Some(SERVICE_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.expect("json");
    let (_, claims) = server
        .verify(tokens["id_token"].as_str().expect("id token"), "web")
        .await;
    claims["auth_time"].as_u64().expect("auth_time")
}

#[tokio::test]
async fn a_request_waiting_for_a_login_cannot_be_consented_past_it() {
    let server = TestServer::start(&config("", "")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("first");
    // alice logs in and allows web: her session now holds that consent.
    browser.authorize(&authz(&pkce, &[])).await;
    let consent = browser.login("alice", SERVICE_SECRET).await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    let done = browser.consent("allow").await;
    assert_eq!(done.status, 303);
    let first_login = auth_time_of(&server, &done.redirect_params()["code"], &pkce).await;

    server.clock().advance(Duration::from_secs(600));
    for extra in [[("prompt", "login")], [("max_age", "60")]] {
        let pkce = Pkce::new("again");
        let page = browser.authorize(&authz(&pkce, &extra)).await;
        assert!(
            page.body.contains("name=\"password\""),
            "{extra:?} asks for a login"
        );
        // Posting the consent form for it instead of logging in does not get a code.
        let bypass = browser.consent("allow").await;
        assert_eq!(bypass.status, 200, "{extra:?}: {:?}", bypass.location);
        assert!(bypass.location.is_none());
        assert!(
            bypass.body.contains("name=\"password\""),
            "{extra:?}: the login page again"
        );

        // Logging in does; the code carries that login, not the old one.
        let requested_at = server.clock().now();
        server.clock().advance(Duration::from_secs(5));
        let consent = browser.login("alice", SERVICE_SECRET).await;
        assert!(
            consent.body.contains("name=\"decision\""),
            "{}",
            consent.body
        );
        let done = browser.consent("allow").await;
        assert_eq!(done.status, 303, "{}", done.body);
        let auth_time = auth_time_of(&server, &done.redirect_params()["code"], &pkce).await;
        assert!(
            auth_time > requested_at && auth_time > first_login,
            "{extra:?}: auth_time {auth_time} is the new login"
        );
        server.clock().advance(Duration::from_secs(600));
    }
}

#[tokio::test]
async fn state_nonce_and_login_hint_are_bounded() {
    let server = TestServer::start(&config("", "")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("lengths");
    let fits = "s".repeat(1024);
    let page = browser
        .authorize(&authz(&pkce, &[("nonce", &fits), ("login_hint", &fits)]))
        .await;
    assert_eq!(page.status, 200, "1 KiB each is accepted");

    let long = "s".repeat(1025);
    let seen = browser.authorize(&authz(&pkce, &[("state", &long)])).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    let params = seen.redirect_params();
    assert_eq!(params["error"], "invalid_request");
    assert!(
        !params.contains_key("state"),
        "the refused state is not echoed"
    );
    for name in ["nonce", "login_hint"] {
        let seen = browser.authorize(&authz(&pkce, &[(name, &long)])).await;
        let params = seen.redirect_params();
        assert_eq!(
            (params["error"].as_str(), params["state"].as_str()),
            ("invalid_request", "st"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn pending_requests_are_capped_per_address_and_in_all() {
    let server = TestServer::start(
        &config("pending_per_address = 3\npending_total = 5", "").replacen(
            "[server]\n",
            "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
            1,
        ),
    )
    .await;
    let pkce = Pkce::new("caps");
    let mut browser = Browser::behind_proxy(&server, "198.51.100.1");
    for _ in 0..3 {
        assert_eq!(browser.authorize(&authz(&pkce, &[])).await.status, 200);
    }
    let refused = Browser::behind_proxy(&server, "198.51.100.1")
        .authorize(&authz(&pkce, &[]))
        .await;
    assert_eq!(refused.status, 429);
    assert!(refused.headers.contains_key("retry-after"));
    // Finishing one frees its place.
    assert_eq!(browser.login("alice", SERVICE_SECRET).await.status, 200);
    browser.consent("deny").await;
    assert_eq!(browser.authorize(&authz(&pkce, &[])).await.status, 200);

    // Two more networks fill the total of 5; the next is sent back to the client.
    for n in 2..=3 {
        let mut other = Browser::behind_proxy(&server, &format!("198.51.10{n}.1"));
        assert_eq!(other.authorize(&authz(&pkce, &[])).await.status, 200);
    }
    let mut late = Browser::behind_proxy(&server, "198.51.109.1");
    let seen = late.authorize(&authz(&pkce, &[])).await;
    assert_eq!(seen.status, 303);
    assert_eq!(seen.redirect_params()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn a_pending_request_lives_pending_ttl() {
    let server = TestServer::start(&config("", "pending_ttl = \"2m\"")).await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("ttl");
    browser.authorize(&authz(&pkce, &[])).await;
    server.clock().advance(Duration::from_secs(100));
    let page = browser.login("alice", "wrong").await;
    assert!(
        page.body.contains("Incorrect username or password."),
        "still live at 100 s"
    );
    server.clock().advance(Duration::from_secs(21));
    let expired = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("Sign-in expired"), "{}", expired.body);
}

#[tokio::test]
async fn one_pending_request_yields_one_answer_however_often_its_form_is_posted() {
    let server = TestServer::start(&config("", "")).await;
    one_answer_per_pending_request(&server).await;
}

/// The same on a Redis store, where every store call is a round trip and racing
/// answers really interleave (the memory store answers without yielding).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_pending_request_yields_one_answer_on_a_shared_store_too() {
    let Some(redis) = crate::support::redis::RedisServer::start("one_pending_request_one_answer")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let path = dir.path().join("gatehouse.toml");
    let store = format!(
        "[store]\nurl = \"{}\"\n[[keys]]\nprivate_key_file = \"signing.pem\"\n",
        redis.url()
    );
    std::fs::write(
        &path,
        config("", "").replace("[limits]", &format!("{store}[limits]")),
    )
    .expect("config");
    let server = TestServer::start_at(dir, path).await;
    one_answer_per_pending_request(&server).await;
}

async fn one_answer_per_pending_request(server: &TestServer) {
    let mut browser = Browser::new(server);
    let pkce = Pkce::new("double");
    browser.authorize(&authz(&pkce, &[])).await;
    let consent = browser.login("alice", SERVICE_SECRET).await;
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    let form: Vec<(String, String)> = ["csrf_token", "request"]
        .iter()
        .map(|k| ((*k).to_owned(), browser.hidden(k).expect("hidden field")))
        .chain([("decision".to_owned(), "allow".to_owned())])
        .collect();
    // Ten posts of the same consent form at once (a double click, a retrying proxy):
    // one gets the code, the others the expired-request page (400, no redirect).
    let posts = (0..10).map(|_| {
        let (http, url, form) = (browser.http.clone(), server.url("/consent"), form.clone());
        tokio::spawn(async move {
            let response = http.post(url).form(&form).send().await.expect("post");
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (status, location)
        })
    });
    // All sent before any answer is awaited.
    let posts: Vec<_> = posts.collect();
    let mut codes = Vec::new();
    for post in posts {
        let (status, location) = post.await.expect("task");
        match status {
            303 => codes.push(location.expect("a redirect to the client")),
            400 => assert!(location.is_none()),
            other => panic!("a racing consent answered {other}"),
        }
    }
    assert_eq!(codes.len(), 1, "exactly one code: {codes:?}");
    assert!(codes[0].contains("code="), "{}", codes[0]);

    // Posted again later: still no second code.
    let again = browser.post_form("/consent", &form).await;
    assert_eq!(again.status, 400, "{:?}", again.location);
    assert!(again.body.contains("Sign-in expired"), "{}", again.body);
}
