//! Back-channel logout with two replicas on one Redis (issue 24): two real `gatehouse
//! serve` processes, each session used on both (a code for `web` from A, one for
//! `app` from B), then ended on both at once: the logout form posted to A and B in
//! the same instant, or `gatehouse revoke --session` called on both admin listeners
//! at once, or by a reload of the same config on both that sets the user's
//! `tokens_not_before`. Each application's endpoint receives exactly one logout token
//! per session, whichever replica sends it.

use crate::support::browser::{Pkce, hidden_in};
use crate::support::logout_rp::LogoutRp;
use crate::support::redis::RedisServer;
use crate::support::replica::Replica;
use crate::support::*;
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Sessions raced in the revocation test (where both replicas always find each).
const SESSIONS: usize = 6;
/// Sessions raced in the logout test: both replicas find a session only when both
/// read it before either ends it, a window of a few store round trips, so many races.
const LOGOUT_RACES: usize = 20;
const ADMIN_TOKEN: &str = "admin-token-0123456789-abcdefghijklmnop";

/// Two replicas on one Redis, each with its own admin listener, and the two
/// applications' back-channel endpoints.
struct Cluster {
    a: Replica,
    b: Replica,
    admins: [String; 2],
    web: LogoutRp,
    app: LogoutRp,
    redis: RedisServer,
    dir: tempfile::TempDir,
}

fn config(redis: &RedisServer, web: &LogoutRp, app: &LogoutRp) -> String {
    config_for_alice(redis, web, app, "")
}

/// [`config`], with `alice` in alice's `[[users]]` entry. Both listeners on port 0:
/// [`Replica`] gives each replica its own.
fn config_for_alice(redis: &RedisServer, web: &LogoutRp, app: &LogoutRp, alice: &str) -> String {
    config_with(&format!(
        r#"admin_bind = "127.0.0.1:0"
admin_token_file = "admin.token"

[limits]
pages_per_second = 1000

[store]
url = "{redis}"
key_prefix = "sessions-replicas:"

[[keys]]
private_key_file = "signing.pem"

[[clients]]
id = "web"
secret_hash = "{hash}"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]
first_party = true
backchannel_logout_uri = "{web}"

[[clients]]
id = "app"
secret_hash = "{hash}"
redirect_uris = ["https://app.example.com/cb"]
scopes = ["openid"]
first_party = true
backchannel_logout_uri = "{app}"

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
{alice}
"#,
        redis = redis.url(),
        web = web.uri,
        app = app.uri,
        hash = service_hash()
    ))
}

impl Cluster {
    async fn start(test: &str) -> Option<Self> {
        let redis = RedisServer::start(test)?;
        let dir = tempfile::tempdir().expect("tempdir");
        write_signing_key(dir.path());
        std::fs::write(dir.path().join("admin.token"), ADMIN_TOKEN).expect("write");
        let (web, app) = (LogoutRp::start().await, LogoutRp::start().await);
        let a = Replica::spawn(dir.path(), "a", &config(&redis, &web, &app));
        let b = Replica::spawn(dir.path(), "b", &config(&redis, &web, &app));
        let admin = |r: &Replica| r.admin.clone().expect("an admin listener");
        Some(Self {
            admins: [admin(&a), admin(&b)],
            a,
            b,
            web,
            app,
            redis,
            dir,
        })
    }

    /// Rewrites both replicas' config files (each keeping its own listener) with
    /// `alice` in alice's entry, then waits until both serve generation 2.
    async fn reload_both(&self, alice: &str) {
        for (replica, name) in [(&self.a, "a"), (&self.b, "b")] {
            let text =
                replica.config_for(&config_for_alice(&self.redis, &self.web, &self.app, alice));
            std::fs::write(self.dir.path().join(format!("{name}.toml")), text).expect("write");
        }
        let reloaded = eventually(Duration::from_secs(20), || async {
            let mut both = true;
            for admin in &self.admins {
                let ready: Value = reqwest::get(format!("{admin}/readyz"))
                    .await
                    .expect("readyz")
                    .json()
                    .await
                    .expect("json");
                both &= ready["config_generation"] == 2;
            }
            both
        })
        .await;
        assert!(reloaded, "both replicas reloaded");
    }

    /// A browser signed in on A with a code for `web` from A and one for `app` from
    /// B: the browser and the session's `sid` (from the ID token of web's code).
    async fn session_on_both(&self, n: usize) -> (reqwest::Client, String) {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let pkce = Pkce::new(&format!("replica-session-{n}"));
        let login = authorize(&http, &self.a, "web", &pkce).await;
        assert_eq!(login.0, 200, "the login page: {}", login.2);
        let form = [
            (
                "csrf_token",
                hidden_in(&login.2, "csrf_token").expect("csrf"),
            ),
            ("request", hidden_in(&login.2, "request").expect("request")),
            ("username", "alice".to_owned()),
            ("password", SERVICE_SECRET.to_owned()),
        ];
        let done = send(http.post(self.a.url("/login")).form(&form)).await;
        let web_code = code_of(&done);
        let at_b = authorize(&http, &self.b, "app", &pkce).await;
        code_of(&at_b);
        let tokens = redeem(&self.b, &web_code, &pkce).await;
        let id = claims(tokens["id_token"].as_str().expect("an ID token"));
        (http, id["sid"].as_str().expect("sid").to_owned())
    }

    /// Per client, the deliveries both replicas counted, by result.
    async fn counted(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = BTreeMap::new();
        for admin in &self.admins {
            let text = reqwest::get(format!("{admin}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            for line in text
                .lines()
                .filter(|l| l.starts_with("gatehouse_backchannel_logouts_total{"))
            {
                let label = |name: &str| {
                    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
                    let len = line[start..].find('"')?;
                    Some(line[start..start + len].to_owned())
                };
                let value: f64 = line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("a count");
                let key = (
                    label("client_id").expect("client"),
                    label("result").expect("result"),
                );
                *counts.entry(key).or_default() += value as u64;
            }
        }
        counts
    }

    /// Waits until each endpoint has a token for each of `sids`, then checks it has
    /// exactly one per session and no other.
    async fn each_told_once(&self, sids: &[String]) {
        for (rp, client) in [(&self.web, "web"), (&self.app, "app")] {
            let told = eventually(Duration::from_secs(20), || async {
                rp.tokens().len() >= sids.len()
            })
            .await;
            assert!(
                told,
                "{client} told {} of {}",
                rp.tokens().len(),
                sids.len()
            );
            let mut seen: Vec<String> = rp
                .tokens()
                .iter()
                .map(|t| {
                    let c = claims(t);
                    assert_eq!(c["aud"], client, "{c}");
                    c["sid"].as_str().expect("sid").to_owned()
                })
                .collect();
            seen.sort();
            let mut expected = sids.to_vec();
            expected.sort();
            assert_eq!(seen, expected, "{client}: one logout token per session");
        }
    }
}

/// `(status, location, body)` of a response.
type Answer = (u16, String, String);

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, response.text().await.expect("body"))
}

async fn authorize(http: &reqwest::Client, at: &Replica, client: &str, pkce: &Pkce) -> Answer {
    let redirect = format!("https://{client}.example.com/cb");
    let request = http.get(at.url("/authorize")).query(&[
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", &redirect),
        ("scope", "openid"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    send(request).await
}

fn code_of(answer: &Answer) -> String {
    assert_eq!(answer.0, 303, "a code: {}", answer.2);
    let url = url::Url::parse(&answer.1).expect("absolute location");
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {}", answer.1))
}

async fn redeem(at: &Replica, code: &str, pkce: &Pkce) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "https://web.example.com/cb"),
        ("code_verifier", &pkce.verifier),
    ];
    let request = crate::support::http_client()
        .post(at.url("/token"))
        .basic_auth("web", Some(SERVICE_SECRET))
        .form(&form);
    let (status, _, body) = send(request).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// The claims of a JWT, unverified (the signature is checked in tests/it/sessions.rs;
/// here only who was told of which session counts).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_posted_to_both_replicas_at_once_tells_each_application_once() {
    let Some(cluster) = Cluster::start("logout_posted_to_both_replicas_at_once").await else {
        return;
    };
    let mut sessions = Vec::new();
    for n in 0..LOGOUT_RACES {
        sessions.push(cluster.session_on_both(n).await);
    }
    // Each browser's logout form, from A, and a connection open to B too; then every
    // form posted to A and to B, all released at once.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2 * LOGOUT_RACES));
    let mut posts = Vec::new();
    for (http, _) in &sessions {
        let (status, _, page) = send(http.get(cluster.a.url("/logout"))).await;
        assert_eq!(status, 200, "asks to confirm: {page}");
        send(http.get(cluster.b.url("/healthz"))).await;
        let csrf = hidden_in(&page, "csrf_token").expect("csrf");
        for at in [&cluster.a, &cluster.b] {
            let request = http.post(at.url("/logout")).form(&[("csrf_token", &csrf)]);
            let start = start.clone();
            posts.push(tokio::spawn(async move {
                start.wait().await;
                send(request).await
            }));
        }
    }
    for post in posts {
        let (status, _, body) = post.await.expect("post");
        assert_eq!(status, 200, "signed out on either: {body}");
    }

    let sids: Vec<String> = sessions.into_iter().map(|(_, sid)| sid).collect();
    cluster.each_told_once(&sids).await;
    let counted = cluster.counted().await;
    let ok = |client: &str| counted.get(&(client.to_owned(), "ok".to_owned())).copied();
    assert_eq!(
        (ok("web"), ok("app")),
        (Some(LOGOUT_RACES as u64), Some(LOGOUT_RACES as u64)),
        "one delivery per client and session over both replicas: {counted:?}"
    );
    println!("deliveries counted over both replicas: {counted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_session_on_both_replicas_at_once_tells_each_application_once() {
    let Some(cluster) = Cluster::start("revoking_a_session_on_both_replicas").await else {
        return;
    };
    let mut sids = Vec::new();
    for n in 0..SESSIONS {
        sids.push(cluster.session_on_both(n).await.1);
    }
    // Both replicas find every session (a revocation keeps the session's copy), so
    // each tries to tell each client: only the store's once-record keeps it to one.
    let mut calls = Vec::new();
    for sid in &sids {
        for admin in &cluster.admins {
            let request = crate::support::http_client()
                .post(format!("{admin}/revoke"))
                .bearer_auth(ADMIN_TOKEN)
                .form(&[("session", sid)]);
            calls.push(tokio::spawn(send(request)));
        }
    }
    for call in calls {
        let (status, _, body) = call.await.expect("call");
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            answer["backchannel_logout"],
            serde_json::json!(["app", "web"]),
            "{answer}"
        );
    }

    // Every attempt has been decided (sent or skipped) on one replica or the other.
    let attempts = 2 * SESSIONS as u64;
    let decided = eventually(Duration::from_secs(20), || async {
        let counted = cluster.counted().await;
        ["web", "app"].iter().all(|client| {
            let sum: u64 = counted
                .iter()
                .filter(|((c, _), _)| c == client)
                .map(|(_, n)| n)
                .sum();
            sum >= attempts
        })
    })
    .await;
    let counted = cluster.counted().await;
    assert!(decided, "every attempt decided: {counted:?}");
    cluster.each_told_once(&sids).await;
    for client in ["web", "app"] {
        let get = |result: &str| {
            counted
                .get(&(client.to_owned(), result.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            (get("ok"), get("skipped")),
            (SESSIONS as u64, SESSIONS as u64),
            "{client}: {counted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_of_both_replicas_that_ends_a_users_sessions_tells_each_application_once() {
    let Some(cluster) = Cluster::start("a_reload_of_both_replicas").await else {
        return;
    };
    let mut sids = Vec::new();
    for n in 0..SESSIONS {
        sids.push(cluster.session_on_both(n).await.1);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(now));
    // Both replicas reload the same change and find every session of alice's.
    cluster
        .reload_both(&format!("tokens_not_before = \"{at}\""))
        .await;

    let attempts = 2 * SESSIONS as u64;
    let decided = eventually(Duration::from_secs(20), || async {
        let counted = cluster.counted().await;
        ["web", "app"].iter().all(|client| {
            let sum: u64 = counted
                .iter()
                .filter(|((c, _), _)| c == client)
                .map(|(_, n)| n)
                .sum();
            sum >= attempts
        })
    })
    .await;
    let counted = cluster.counted().await;
    assert!(
        decided,
        "every attempt decided on one replica or the other: {counted:?}"
    );
    cluster.each_told_once(&sids).await;
    for client in ["web", "app"] {
        let get = |result: &str| {
            counted
                .get(&(client.to_owned(), result.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            (get("ok"), get("skipped")),
            (SESSIONS as u64, SESSIONS as u64),
            "{client}: {counted:?}"
        );
    }
}
