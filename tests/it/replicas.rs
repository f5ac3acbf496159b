//! Two replicas behind a load balancer: two real `gatehouse serve` processes on one
//! config and one real Redis, and a user moved between them at every step. Login on
//! A, consent on B, the code redeemed on B, refreshed on A, the old refresh token
//! reused on B (the family dies on both), a revocation on A seen by introspection on
//! B, twenty concurrent refreshes and twenty concurrent redemptions of a code over
//! both (one wins each), A killed with SIGKILL in the
//! middle of a login that B finishes, a brute force split over A and B locked out at
//! the limit, and Redis stopped (client credentials still issue, the rest is 503,
//! `/readyz` not ready) and started again (everything works, no restart). And a
//! device code (RFC 8628) issued on A, approved on B and polled on C.

use crate::support::browser::{Pkce, hidden_in};
use crate::support::redis::RedisServer;
use crate::support::replica::Replica;
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = SERVICE_SECRET;
pub(crate) const REDIRECT: &str = "https://web.example.com/cb";

fn config(redis: &RedisServer) -> String {
    config_on(&format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"replicas-test:\"\n",
        redis.url()
    ))
}

/// The clients and user of these tests, their state kept in the store `store` (a
/// `[store]` section).
pub(crate) fn config_on(store: &str) -> String {
    config_with(&format!(
        r#"
{store}
[limits]
login_max_failures = 4

[[keys]]
private_key_file = "signing.pem"

[[clients]]
id = "web"
secret_hash = "{hash}"
redirect_uris = ["{REDIRECT}"]
scopes = ["openid", "offline_access"]

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
introspect = true

[[clients]]
id = "tv"
name = "Living Room TV"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
scopes = ["openid", "offline_access"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

/// A browser: one cookie jar whichever replica the balancer sends it to (cookies are
/// per host, not per port), redirects not followed.
pub(crate) struct Visitor {
    http: reqwest::Client,
    page: String,
}

/// What a response was: status, redirect target, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) location: String,
    pub(crate) body: String,
}

impl Visitor {
    pub(crate) fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            page: String::new(),
        }
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.expect("body");
        self.page = body.clone();
        Answer {
            status,
            location,
            body,
        }
    }

    /// Opens `/authorize` for `web` on `at`.
    pub(crate) async fn authorize(&mut self, at: &Replica, pkce: &Pkce) -> Answer {
        let response = self
            .http
            .get(at.url("/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid offline_access"),
                ("state", "st"),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize");
        self.answer(response).await
    }

    /// Submits the form of the last page (whichever replica rendered it) to `at`.
    pub(crate) async fn submit(
        &mut self,
        at: &Replica,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut form: Vec<(String, String)> = ["csrf_token", "request", "user_code"]
            .iter()
            .filter(|name| !fields.iter().any(|(k, _)| k == *name))
            .filter_map(|name| Some(((*name).to_owned(), hidden_in(&self.page, name)?)))
            .collect();
        form.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let response = self
            .http
            .post(at.url(action))
            .form(&form)
            .send()
            .await
            .expect("post");
        self.answer(response).await
    }
}

/// The `code` of a redirect to the client.
pub(crate) fn code_of(answer: &Answer) -> String {
    assert_eq!(
        answer.status, 303,
        "a redirect with a code: {}",
        answer.body
    );
    let url = url::Url::parse(&answer.location).expect("absolute location");
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {}", answer.location))
}

/// POSTs `form` to `path` on `at` as `client` (HTTP Basic): status and JSON.
pub(crate) async fn post(
    at: &Replica,
    path: &str,
    client: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = crate::support::http_client()
        .post(at.url(path))
        .basic_auth(client, Some(SERVICE_SECRET))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) async fn redeem(at: &Replica, code: &str, pkce: &Pkce) -> (u16, Value) {
    post(
        at,
        "/token",
        "web",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

pub(crate) async fn refresh(at: &Replica, token: &str) -> (u16, Value) {
    post(
        at,
        "/token",
        "web",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

pub(crate) async fn active(at: &Replica, token: &str) -> bool {
    let (status, body) = post(at, "/introspect", "svc", &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    body["active"] == true
}

async fn client_credentials(at: &Replica) -> (u16, Value) {
    post(at, "/token", "svc", &[("grant_type", "client_credentials")]).await
}

async fn readyz(at: &Replica) -> (u16, Value) {
    let response = reqwest::get(at.url("/readyz")).await.expect("readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// POSTs `form` to `/token` as `web` twenty times at once, alternately at `a` and `b`:
/// the statuses.
async fn race(a: &Replica, b: &Replica, form: &[(&str, &str)]) -> Vec<u16> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url("/token")
            } else {
                b.url("/token")
            };
            let form = form.clone();
            tokio::spawn(async move {
                crate::support::http_client()
                    .post(url)
                    .basic_auth("web", Some(SERVICE_SECRET))
                    .form(&form)
                    .send()
                    .await
                    .expect("token request")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer"));
    }
    statuses
}

/// Says which step runs (shown with `--nocapture`: the steps as run).
fn step(what: &str) {
    println!("step: {what}");
}

pub(crate) fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {body}"))
        .to_owned()
}

/// Logs in on `login_at` and consents on `consent_at`: the code.
pub(crate) async fn sign_in(
    visitor: &mut Visitor,
    login_at: &Replica,
    consent_at: &Replica,
    pkce: &Pkce,
) -> String {
    let page = visitor.authorize(login_at, pkce).await;
    assert_eq!(page.status, 200, "the login page: {}", page.body);
    let consent = visitor
        .submit(
            login_at,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(consent.status, 200, "the consent page: {}", consent.body);
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    code_of(
        &visitor
            .submit(consent_at, "/consent", &[("decision", "allow")])
            .await,
    )
}

/// A code issued on `a` and redeemed on `b`: its replay on `a`, which keeps the codes
/// it wrote for their token requests, is refused as a replay (Redis decides the use)
/// and ends the refresh token `b` issued.
async fn replayed_where_it_was_issued(visitor: &mut Visitor, a: &Replica, b: &Replica) {
    let pkce = Pkce::new("replicas-kept");
    let code = code_of(&visitor.authorize(a, &pkce).await);
    let (status, tokens) = redeem(b, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, replay) = redeem(a, &code, &pkce).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant")),
        "the replay on the replica that wrote the code: {replay}"
    );
    let (status, _) = refresh(b, &field(&tokens, "refresh_token")).await;
    assert_eq!(
        status, 400,
        "the replay revoked the first redemption's refresh token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_moves_between_two_replicas_at_every_step() {
    let Some(mut redis) = RedisServer::start("a_user_moves_between_two_replicas") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let config = config(&redis);
    let a = Replica::spawn(dir.path(), "a", &config);
    let b = Replica::spawn(dir.path(), "b", &config);

    step("login on A, consent on B, code redeemed on B, its replay on A refused");
    // Login on A; the consent form A rendered is posted to B (the pending request and
    // the CSRF key are shared); the code B issued is redeemed on B.
    let mut alice = Visitor::new();
    let pkce = Pkce::new("replicas-one");
    let code = sign_in(&mut alice, &a, &b, &pkce).await;
    let (status, tokens) = redeem(&b, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, replay) = redeem(&a, &code, &pkce).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant")),
        "the code is single-use across replicas"
    );

    step("the replay revoked the code's refresh token on A");
    // That replay revoked what the code issued, on both replicas.
    let first_refresh = field(&tokens, "refresh_token");
    let (status, _) = refresh(&a, &first_refresh).await;
    assert_eq!(status, 400, "a replayed code's refresh token is revoked");

    step("SSO: A's session lets B issue a code");
    // SSO: the session (made on A) lets B issue a code without a login page.
    let pkce = Pkce::new("replicas-two");
    let code = code_of(&alice.authorize(&b, &pkce).await);
    let (status, tokens) = redeem(&b, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");

    step("a code A issued, redeemed on B, replayed on A: refused, its tokens revoked");
    replayed_where_it_was_issued(&mut alice, &a, &b).await;

    step("refresh on A; reuse of the old refresh token on B detected; the family dead on A");
    // Refresh on A; reusing the old refresh token on B is detected and ends the family
    // everywhere.
    let old = field(&tokens, "refresh_token");
    let (status, rotated) = refresh(&a, &old).await;
    assert_eq!(status, 200, "{rotated}");
    let newer = field(&rotated, "refresh_token");
    let newer_access = field(&rotated, "access_token");
    assert!(active(&b, &newer_access).await, "A's token is active at B");
    let (status, reuse) = refresh(&b, &old).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&a, &newer).await.0,
        400,
        "the family is revoked on A too"
    );
    assert!(
        !active(&a, &newer_access).await,
        "and its access token with it"
    );

    step("revocation on A, inactive at introspection on B");
    // A revocation on A is seen by introspection on B.
    let pkce = Pkce::new("replicas-three");
    let code = code_of(&alice.authorize(&a, &pkce).await);
    let (status, tokens) = redeem(&a, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = field(&tokens, "access_token");
    assert!(active(&b, &access).await);
    let (status, _) = post(&a, "/revoke", "web", &[("token", &access)]).await;
    assert_eq!(status, 200);
    assert!(!active(&b, &access).await, "revoked on A, inactive on B");

    step("20 concurrent refreshes over A and B: one succeeds");
    // Twenty concurrent refreshes of one token, spread over both: exactly one wins.
    let contested = field(&tokens, "refresh_token");
    let statuses = race(
        &a,
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &contested),
        ],
    )
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one of twenty concurrent refreshes succeeds: {statuses:?}"
    );

    step("20 concurrent redemptions of one code over A and B: one succeeds");
    let pkce = Pkce::new("replicas-race");
    let code = code_of(&alice.authorize(&a, &pkce).await);
    let statuses = race(
        &a,
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one of twenty concurrent redemptions succeeds: {statuses:?}"
    );

    step("SIGKILL A mid-login; B finishes the login; a restarted A knows the session");
    // A dies (SIGKILL) in the middle of a login; B finishes it, and a restarted A
    // knows the session.
    let mut bob = Visitor::new();
    let pkce = Pkce::new("replicas-four");
    assert_eq!(bob.authorize(&a, &pkce).await.status, 200);
    a.kill();
    let consent = bob
        .submit(
            &b,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(consent.status, 200, "B takes over the login A started");
    let code = code_of(&bob.submit(&b, "/consent", &[("decision", "allow")]).await);
    assert_eq!(redeem(&b, &code, &pkce).await.0, 200);
    let a = Replica::spawn(dir.path(), "a", &config);
    let pkce = Pkce::new("replicas-five");
    let code = code_of(&bob.authorize(&a, &pkce).await);
    assert_eq!(
        redeem(&a, &code, &pkce).await.0,
        200,
        "a restart logs nobody out"
    );

    step("brute force split over A and B: locked out at the limit on both");
    // A brute force split over A and B is counted once: four failures (the limit),
    // then even the right password is refused, on either replica.
    let mut mallory = Visitor::new();
    let pkce = Pkce::new("replicas-six");
    assert_eq!(mallory.authorize(&a, &pkce).await.status, 200);
    for at in [&a, &b, &a, &b] {
        let wrong = mallory
            .submit(
                at,
                "/login",
                &[("username", "alice"), ("password", "wrong")],
            )
            .await;
        assert_eq!(wrong.status, 200, "a failed login shows the form again");
    }
    let login_form = mallory.page.clone();
    for at in [&a, &b] {
        mallory.page = login_form.clone();
        let refused = mallory
            .submit(
                at,
                "/login",
                &[("username", "alice"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(
            refused.status, 429,
            "locked out at the limit on both replicas"
        );
    }

    step(
        "Redis stopped: client credentials 200, refresh/introspect 503, pages 503, /readyz not ready",
    );
    // Redis stops: client credentials still issue on both, everything else that needs
    // the store is 503 (JSON at the endpoints, a page in the browser), and /readyz
    // says not ready and why.
    let refresh_before = {
        let pkce = Pkce::new("replicas-seven");
        let code = code_of(&alice.authorize(&b, &pkce).await);
        let (status, tokens) = redeem(&b, &code, &pkce).await;
        assert_eq!(status, 200, "{tokens}");
        field(&tokens, "refresh_token")
    };
    redis.stop();
    for at in [&a, &b] {
        let (status, body) = client_credentials(at).await;
        assert_eq!(status, 200, "client credentials need no store: {body}");
        let (status, body) = refresh(at, &refresh_before).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{body}"
        );
        let (status, body) = post(at, "/introspect", "svc", &[("token", &access)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{body}"
        );
        let page = Visitor::new().authorize(at, &Pkce::new("down")).await;
        assert_eq!(page.status, 503);
        assert!(
            page.body.contains("Temporarily unavailable"),
            "{}",
            page.body
        );
        let (status, body) = readyz(at).await;
        assert_eq!(
            (status, body),
            (
                503,
                serde_json::json!({"status": "not_ready", "reason": "store_unreachable"})
            )
        );
    }
    let unknown_client = post(
        &a,
        "/token",
        "nobody",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        unknown_client.0, 401,
        "failed client authentications are still counted (locally) and answered"
    );
    // The log is written in batches (within 100 ms): wait for the line, not a time.
    let warned = eventually(Duration::from_secs(5), || async {
        std::fs::read_to_string(dir.path().join("a.log"))
            .is_ok_and(|log| log.contains("failure_counting_local"))
    })
    .await;
    let log = std::fs::read_to_string(dir.path().join("a.log")).expect("a's log");
    assert!(
        warned,
        "the fallback to local counting is a warning in the log: {log}"
    );

    step("Redis restarted: /readyz ready, login, code, refresh work without a restart");
    // Redis is back (empty: nothing persisted): ready again, logins work, no restart.
    redis.restart();
    for at in [&a, &b] {
        let ready = eventually(Duration::from_secs(10), || async {
            readyz(at).await.0 == 200
        })
        .await;
        assert!(ready, "ready again once Redis is back");
    }
    let mut carol = Visitor::new();
    let pkce = Pkce::new("replicas-eight");
    let code = sign_in(&mut carol, &b, &a, &pkce).await;
    let (status, tokens) = redeem(&a, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, rotated) = refresh(&b, &field(&tokens, "refresh_token")).await;
    assert_eq!(status, 200);
    assert_eq!(client_credentials(&b).await.0, 200);

    step("[store] changed in B's config: logged, applied at the next restart only");
    let path = dir.path().join("b.toml");
    let text = std::fs::read_to_string(&path).expect("b's config");
    replace_file(
        &path,
        &text.replace(
            "key_prefix = \"replicas-test:\"",
            "key_prefix = \"elsewhere:\"",
        ),
    );
    let logged = eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(dir.path().join("b.log"))
            .is_ok_and(|log| log.contains("[store] changed; it takes effect at the next restart"))
    })
    .await;
    assert!(logged, "the store change is logged");
    let (status, _) = refresh(&b, &field(&rotated, "refresh_token")).await;
    assert_eq!(status, 200, "B still serves from the store it started with");
}

/// `POST /token` polling with `device_code` as the public client `tv`.
async fn poll_device(at: &Replica, device_code: &str) -> (u16, Value) {
    let response = crate::support::http_client()
        .post(at.url("/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "tv"),
        ])
        .send()
        .await
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_code_issued_on_one_replica_is_approved_on_another_and_polled_on_a_third() {
    let Some(redis) = RedisServer::start("a_device_code_over_three_replicas") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let config = config(&redis);
    let a = Replica::spawn(dir.path(), "a", &config);
    let b = Replica::spawn(dir.path(), "b", &config);
    let c = Replica::spawn(dir.path(), "c", &config);

    step("device code issued on A");
    let response = crate::support::http_client()
        .post(a.url("/device_authorization"))
        .form(&[("client_id", "tv"), ("scope", "openid offline_access")])
        .send()
        .await
        .expect("device_authorization");
    assert_eq!(response.status(), 200);
    let issued: Value = response.json().await.expect("json");
    let device_code = field(&issued, "device_code");
    let user_code = field(&issued, "user_code");

    step("the code typed, the login and the approval on B");
    let mut alice = Visitor::new();
    let entry = alice
        .http
        .get(b.url("/device"))
        .send()
        .await
        .expect("device page");
    let entry = alice.answer(entry).await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    let login = alice
        .submit(&b, "/device", &[("user_code", &user_code)])
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let confirm = alice
        .submit(
            &b,
            "/device/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("Living Room TV") && confirm.body.contains(&user_code),
        "the confirmation names the client and the code: {}",
        confirm.body
    );
    let done = alice
        .submit(&b, "/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    step("polled on C: the tokens; polled again on A: used already");
    let (status, tokens) = poll_device(&c, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let (status, again) = poll_device(&a, &device_code).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "the tokens are handed out once across replicas: {again}"
    );
    let response = crate::support::http_client()
        .post(a.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &field(&tokens, "refresh_token")),
            ("client_id", "tv"),
        ])
        .send()
        .await
        .expect("refresh");
    let status = response.status().as_u16();
    let refreshed: Value = response.json().await.expect("json");
    assert_eq!(
        status, 200,
        "the device's refresh token works on A: {refreshed}"
    );
}
