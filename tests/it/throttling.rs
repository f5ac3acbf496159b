//! Failure throttling that cannot be raced or aimed: attempts are counted before the
//! secret is hashed, so parallel guesses reach argon2 at most the limit's worth of
//! times; an address that keeps failing is refused, while a client or a user that
//! others fail on purpose is only slowed down; and an unknown client id costs the same
//! argon2 run as a known one. Addresses are told apart through a trusted proxy's
//! `X-Forwarded-For`.

use crate::support::browser::{Browser, Pkce};
use crate::support::*;
use std::collections::BTreeMap;

/// Both limits at 5; the pages unthrottled; 127.0.0.1 a trusted proxy.
fn config() -> String {
    config_with(&format!(
        r#"
[limits]
token_max_failures = 5
login_max_failures = 5
pages_per_second = 10000
pages_burst = 10000

[[clients]]
id = "svc"
secret_hash = "{h}"
grant_types = ["client_credentials"]

[[clients]]
id = "svc2"
secret_hash = "{h}"
grant_types = ["client_credentials"]

[[clients]]
id = "digest"
secret = "a-literal-secret-kept-as-a-digest"
grant_types = ["client_credentials"]

[[clients]]
id = "spa"
public = true
first_party = true
redirect_uris = ["https://spa.example.com/cb"]

[[users]]
username = "alice"
password_hash = "{h}"
"#,
        h = service_hash()
    ))
    .replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    )
}

/// Client credentials for `id` with `secret`, from `address`; the status.
async fn token_from(server: &TestServer, address: &str, id: &str, secret: &str) -> u16 {
    server
        .http
        .post(server.url("/token"))
        .header("x-forwarded-for", address)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .status()
        .as_u16()
}

/// A browser at `address` on the login page of a fresh request by `spa`.
async fn on_login_page<'s>(server: &'s TestServer, address: &str) -> Browser<'s> {
    let mut browser = Browser::behind_proxy(server, address);
    let pkce = Pkce::new(address);
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    browser
}

/// Runs 400 copies of `request` at once; how many answered each status.
async fn at_once<F, Fut>(request: F) -> BTreeMap<u16, usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let tasks: Vec<_> = (0..400).map(|_| tokio::spawn(request())).collect();
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.expect("task")).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_secrets_reach_argon2_at_most_the_limit() {
    let server = TestServer::start(&config()).await;
    let verifier = &server.state().verifier;

    // 400 wrong client secrets at once, from one address.
    let before = verifier.hashes_run();
    let counts = at_once(|| {
        let (http, url) = (server.http.clone(), server.url("/token"));
        async move {
            http.post(url)
                .header("x-forwarded-for", "198.51.100.7")
                .basic_auth("svc", Some("wrong"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token request")
                .status()
                .as_u16()
        }
    })
    .await;
    let hashed = verifier.hashes_run() - before;
    assert!(
        counts.get(&401).copied().unwrap_or(0) <= 5
            && counts.get(&429).copied().unwrap_or(0) >= 395,
        "at most the limit's worth of wrong secrets are checked: {counts:?}"
    );
    assert!(
        hashed <= 5,
        "{hashed} argon2 runs for 400 parallel wrong secrets"
    );

    // 400 wrong passwords at once, from another address, on one login form.
    let browser = on_login_page(&server, "198.51.100.8").await;
    let form = vec![
        (
            "csrf_token".to_owned(),
            browser.hidden("csrf_token").expect("csrf"),
        ),
        (
            "request".to_owned(),
            browser.hidden("request").expect("request"),
        ),
        ("username".to_owned(), "alice".to_owned()),
        ("password".to_owned(), "wrong".to_owned()),
    ];
    let before = verifier.hashes_run();
    let counts = at_once(|| {
        let (http, url, form) = (browser.http.clone(), server.url("/login"), form.clone());
        async move {
            let r = http.post(url).form(&form).send().await.expect("login");
            let status = r.status().as_u16();
            let body = r.text().await.expect("body");
            if status == 200 {
                assert!(body.contains("Incorrect username or password."), "{body}");
            }
            status
        }
    })
    .await;
    let hashed = verifier.hashes_run() - before;
    assert!(
        counts.get(&200).copied().unwrap_or(0) <= 5
            && counts.get(&429).copied().unwrap_or(0) >= 395,
        "at most the limit's worth of wrong passwords are checked: {counts:?}"
    );
    assert!(
        hashed <= 5,
        "{hashed} argon2 runs for 400 parallel wrong passwords"
    );
}

#[tokio::test]
async fn nobody_can_lock_out_a_client_or_a_user_by_failing_on_purpose() {
    let server = TestServer::start(&config()).await;
    // svc has authenticated once: its secret is known good.
    assert_eq!(
        token_from(&server, "203.0.113.1", "svc", SERVICE_SECRET).await,
        200
    );

    // An attacker fails as svc, svc2 and alice from two addresses, past the limit of
    // each account, until the first address is refused.
    for (attacker, logins) in [("198.51.100.1", 5), ("198.51.102.2", 1)] {
        for _ in 0..3 {
            assert_eq!(token_from(&server, attacker, "svc", "guess").await, 401);
        }
        for _ in 0..2 {
            assert_eq!(token_from(&server, attacker, "svc2", "guess").await, 401);
        }
        assert_eq!(
            token_from(&server, attacker, "svc2", "guess").await,
            429,
            "the attacker's address is refused"
        );
        let mut browser = on_login_page(&server, attacker).await;
        for _ in 0..logins {
            let seen = browser.login("alice", "guess").await;
            assert_eq!(seen.status, 200);
            assert!(seen.body.contains("Incorrect username or password."));
        }
    }
    let mut refused = on_login_page(&server, "198.51.100.1").await;
    assert_eq!(refused.login("alice", "guess").await.status, 429);

    // svc's known-good secret passes at once, from its own address and even from one
    // that is refused.
    for address in ["203.0.113.1", "198.51.100.1"] {
        let started = std::time::Instant::now();
        assert_eq!(
            token_from(&server, address, "svc", SERVICE_SECRET).await,
            200
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    // svc2 was never verified: slowed down, but not refused.
    assert_eq!(
        token_from(&server, "203.0.113.2", "svc2", SERVICE_SECRET).await,
        200
    );
    // alice, from her own address, logs in.
    let mut browser = on_login_page(&server, "203.0.113.3").await;
    let seen = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    assert!(seen.redirect_params().contains_key("code"));
}

#[tokio::test]
async fn an_unknown_client_id_costs_the_same_argon2_run_as_a_known_one() {
    let server = TestServer::start(&config()).await;
    let verifier = &server.state().verifier;
    for (id, secret) in [
        ("svc", "wrong"),
        ("no-such-client", "wrong"),
        ("digest", "wrong"),
        ("no-such-client", SERVICE_SECRET),
    ] {
        let before = verifier.hashes_run();
        assert_eq!(token_from(&server, "203.0.113.9", id, secret).await, 401);
        assert_eq!(
            verifier.hashes_run() - before,
            1,
            "a wrong secret for {id} costs one argon2 run"
        );
    }
}
