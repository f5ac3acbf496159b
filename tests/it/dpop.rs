//! DPoP (RFC 9449, issue 23): a proof at `/token` binds the access token (`cnf.jkt`,
//! `token_type` `DPoP`) and a public client's refresh token to its key; a proof at
//! `/par` binds the code; `/userinfo` takes a bound token only as `DPoP` with a proof
//! carrying its hash, never as Bearer; introspection returns `cnf`. Each check of a
//! proof refuses on its own (replayed, wrong `htu`/`htm`, too old, another key); with
//! `[server] dpop_nonce` a proof without the server's nonce is answered
//! `use_dpop_nonce` with a `DPoP-Nonce` to retry with.

use crate::support::browser::{Browser, Pkce};
use crate::support::dpop::DpopKey;
use crate::support::redis::RedisServer;
use crate::support::replica::Replica;
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dpop_config(extra: &str) -> String {
    config_with(&format!(
        r#"
{extra}
[[clients]]
id = "spa"
public = true
first_party = true
dpop_bound_access_tokens = true
redirect_uris = ["https://spa.example.com/cb"]
scopes = ["openid", "profile", "offline_access"]

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]

[[clients]]
id = "rs"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
introspect = true

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
name = "Alice"
"#,
        hash = service_hash()
    ))
}

fn at(path: &str) -> String {
    format!("{ISSUER}{path}")
}

/// POSTs `form` to `path` with a `DPoP` header when given; status, headers, JSON.
async fn post(
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.http.post(server.url(path)).form(form);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `GET /userinfo` with `authorization` and a `DPoP` proof when given.
async fn userinfo(
    server: &TestServer,
    authorization: &str,
    proof: Option<&str>,
) -> (u16, String, Value) {
    let mut request = server
        .http
        .get(server.url("/userinfo"))
        .header("authorization", authorization);
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    let response = request.send().await.expect("userinfo");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("text").to_owned())
        .unwrap_or_default();
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The claims of a JWT, unverified (the server's own tests verify signatures).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("json")
}

fn svc_form() -> [(&'static str, &'static str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", SERVICE_SECRET),
    ]
}

/// Pushes the SPA's request with a proof by `key` and logs alice in: the code.
async fn bound_code(server: &TestServer, key: &DpopKey, pkce: &Pkce) -> String {
    let now = server.clock().now();
    let form = [
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", "https://spa.example.com/cb"),
        ("scope", "openid profile offline_access"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let proof = key.proof("POST", &at("/par"), now);
    let (status, _, body) = post(server, "/par", &form, Some(&proof)).await;
    assert_eq!(status, 201, "{body}");
    let request_uri = body["request_uri"].as_str().expect("request_uri");
    let mut browser = Browser::new(server);
    let seen = browser
        .authorize(&[("client_id", "spa"), ("request_uri", request_uri)])
        .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let seen = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    seen.redirect_params()["code"].clone()
}

#[tokio::test]
async fn a_public_client_gets_tokens_bound_to_its_key_from_a_bound_code() {
    let server = TestServer::start(&dpop_config("")).await;
    let (key, other) = (DpopKey::new(), DpopKey::new());
    let pkce = Pkce::new("dpop-flow");
    let code = bound_code(&server, &key, &pkce).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("redirect_uri", "https://spa.example.com/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let now = server.clock().now();
    let (status, _, body) = post(&server, "/token", &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "dpop_bound_access_tokens: no token without a proof"
    );
    let wrong = other.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &form, Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "the code is bound to the key of the proof at /par: {body}"
    );
    let good = key.proof("POST", &at("/token"), now);
    let (status, headers, body) = post(&server, "/token", &form, Some(&good)).await;
    assert_eq!(status, 200, "the code is still good for its key: {body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(payload(&access)["cnf"]["jkt"], key.jkt());
    let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();

    // userinfo: as DPoP with a proof of the token's hash, never as Bearer.
    let dpop_auth = format!("DPoP {access}");
    let proof = key.proof_for_token("GET", &at("/userinfo"), now, &access);
    let (status, _, body) = userinfo(&server, &dpop_auth, Some(&proof)).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("Alice")),
        "{body}"
    );
    let (status, challenge, _) = userinfo(&server, &format!("Bearer {access}"), None).await;
    assert_eq!(status, 401, "a bound token used as Bearer");
    assert!(
        challenge.starts_with("DPoP error=\"invalid_token\"") && challenge.contains("algs=\""),
        "{challenge}"
    );
    let no_ath = key.proof("GET", &at("/userinfo"), now);
    let (status, challenge, _) = userinfo(&server, &dpop_auth, Some(&no_ath)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    let others = other.proof_for_token("GET", &at("/userinfo"), now, &access);
    let (status, challenge, _) = userinfo(&server, &dpop_auth, Some(&others)).await;
    assert_eq!(status, 401, "another key's proof: {challenge}");
    let (status, _, _) = userinfo(&server, &dpop_auth, Some(&proof)).await;
    assert_eq!(status, 401, "a proof used twice");

    // Introspection tells a resource server the key.
    let form = [
        ("client_id", "rs"),
        ("client_secret", SERVICE_SECRET),
        ("token", access.as_str()),
    ];
    let (status, _, body) = post(&server, "/introspect", &form, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["cnf"], json!({"jkt": key.jkt()}));

    // The public client's refresh token is bound to the key.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", refresh.as_str()),
    ];
    let wrong = other.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &form, Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "a refresh with another key: {body}"
    );
    let good = key.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &form, Some(&good)).await;
    assert_eq!(status, 200, "the same key, the token still unused: {body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        payload(body["access_token"].as_str().expect("access"))["cnf"]["jkt"],
        key.jkt()
    );
}

#[tokio::test]
async fn each_proof_check_refuses_on_its_own() {
    let server = TestServer::start(&dpop_config("")).await;
    let key = DpopKey::new();
    let now = server.clock().now();
    // Without a proof, a client that does not demand one gets a Bearer token.
    let (status, _, body) = post(&server, "/token", &svc_form(), None).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert!(payload(body["access_token"].as_str().expect("token"))["cnf"].is_null());
    let proof = key.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &svc_form(), Some(&proof)).await;
    assert_eq!(
        (status, body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{body}"
    );
    let refused = |outcome: (u16, reqwest::header::HeaderMap, Value), why: &str| {
        assert_eq!(
            (outcome.0, outcome.2["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{why}: {}",
            outcome.2
        );
    };
    refused(
        post(&server, "/token", &svc_form(), Some(&proof)).await,
        "a replayed proof",
    );
    let wrong_htu = key.proof("POST", &at("/userinfo"), now);
    refused(
        post(&server, "/token", &svc_form(), Some(&wrong_htu)).await,
        "another htu",
    );
    let wrong_htm = key.proof("GET", &at("/token"), now);
    refused(
        post(&server, "/token", &svc_form(), Some(&wrong_htm)).await,
        "another htm",
    );
    let old = key.proof("POST", &at("/token"), now - 61);
    refused(
        post(&server, "/token", &svc_form(), Some(&old)).await,
        "too old",
    );
    let mut claims = key.claims("POST", &at("/token"), now);
    claims["htu"] = json!(format!("{ISSUER}/token?query=ignored#and-fragment"));
    let with_query = key.proof_with(&claims);
    let (status, _, body) = post(&server, "/token", &svc_form(), Some(&with_query)).await;
    assert_eq!(
        status, 200,
        "htu compared without query and fragment: {body}"
    );
    let not_dpop = key.sign(
        &json!({"typ": "JWT", "alg": "ES256", "jwk": key.jwk()}),
        &key.claims("POST", &at("/token"), now),
    );
    refused(
        post(&server, "/token", &svc_form(), Some(&not_dpop)).await,
        "typ not dpop+jwt",
    );
    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let algs = discovery["dpop_signing_alg_values_supported"]
        .as_array()
        .expect("algs");
    assert!(algs.contains(&json!("ES256")) && !algs.contains(&json!("HS256")));
}

#[tokio::test]
async fn a_nonce_challenge_is_answered_with_a_retry() {
    let server = TestServer::start(&dpop_config("dpop_nonce = true")).await;
    let key = DpopKey::new();
    let now = server.clock().now();
    let proof = key.proof("POST", &at("/token"), now);
    let (status, headers, body) = post(&server, "/token", &svc_form(), Some(&proof)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = headers["dpop-nonce"].to_str().expect("nonce").to_owned();
    let mut claims = key.claims("POST", &at("/token"), now);
    claims["nonce"] = json!(nonce);
    let (status, _, body) = post(
        &server,
        "/token",
        &svc_form(),
        Some(&key.proof_with(&claims)),
    )
    .await;
    assert_eq!(status, 200, "the retry with the nonce: {body}");
    let mut claims = key.claims("POST", &at("/token"), now);
    claims["nonce"] = json!("made-up");
    let (status, _, body) = post(
        &server,
        "/token",
        &svc_form(),
        Some(&key.proof_with(&claims)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    // Nonces rotate: one from long ago is stale, and the answer gives a fresh one.
    server.clock().advance(Duration::from_secs(3600));
    let later = server.clock().now();
    let mut claims = key.claims("POST", &at("/token"), later);
    claims["nonce"] = json!(nonce);
    let (status, headers, body) = post(
        &server,
        "/token",
        &svc_form(),
        Some(&key.proof_with(&claims)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let fresh = headers["dpop-nonce"].to_str().expect("nonce");
    assert_ne!(fresh, nonce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_used_at_one_replica_is_refused_at_the_other_and_a_nonce_works_on_both() {
    let test = "a_proof_used_at_one_replica_is_refused_at_the_other";
    let Some(redis) = RedisServer::start(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let config = dpop_config(&format!(
        "dpop_nonce = true\n[store]\nurl = \"{}\"\nkey_prefix = \"dpop-test:\"\n[[keys]]\nprivate_key_file = \"signing.pem\"\n",
        redis.url()
    ));
    let a = Replica::spawn(dir.path(), "a", &config);
    let b = Replica::spawn(dir.path(), "b", &config);
    let http = crate::support::http_client();
    let send = async |url: String, proof: &str| {
        let response = http
            .post(url)
            .header("DPoP", proof)
            .form(&svc_form())
            .send()
            .await
            .expect("token");
        let status = response.status().as_u16();
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().expect("text").to_owned());
        let body: Value = response.json().await.expect("json");
        (status, nonce, body)
    };
    let key = DpopKey::new();
    let now = gatehouse::clock::Clock::system().now();
    // A's nonce, used at B: the replicas make the same nonces without storing them.
    let (status, nonce, body) = send(a.url("/token"), &key.proof("POST", &at("/token"), now)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let mut claims = key.claims("POST", &at("/token"), now);
    claims["nonce"] = json!(nonce.expect("a DPoP-Nonce header"));
    let proof = key.proof_with(&claims);
    let (status, _, body) = send(b.url("/token"), &proof).await;
    assert_eq!(status, 200, "A's nonce at B: {body}");
    let (status, _, body) = send(a.url("/token"), &proof).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "the proof B took, replayed at A: {body}"
    );
}

#[tokio::test]
async fn oauth4webapi_runs_par_and_dpop_with_nonces_and_refreshes_with_its_key_only() {
    let test = "oauth4webapi_runs_par_and_dpop";
    let lib = std::path::Path::new(ROOT).join("tests/node/node_modules/oauth4webapi");
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
        || !lib.is_dir()
    {
        crate::support::skip::missing(
            test,
            "node and oauth4webapi (`cd tests/node && npm ci`, as .ci/run does)",
        );
        return;
    }
    let (issuer, config) = discoverable_config(
        &dpop_config("dpop_nonce = true")
            .replacen(&format!("issuer = \"{ISSUER}\"\n[server]\nbind = \"127.0.0.1:0\"\n"), "", 1)
            .replace(
                "redirect_uris = [\"https://spa.example.com/cb\"]",
                "redirect_uris = [\"https://spa.example.com/cb\"]\nrequire_pushed_authorization_requests = true",
            ),
    );
    let server = TestServer::start(&config).await;
    let run = tokio::process::Command::new("node")
        .arg("dpop_par.mjs")
        .current_dir(std::path::Path::new(ROOT).join("tests/node"))
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", "spa")
        .env("REDIRECT_URI", "https://spa.example.com/cb")
        .env("USERNAME", "alice")
        .env("PASSWORD", SERVICE_SECRET)
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
        "oauth4webapi failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "discovery: par=true dpop=true",
        "par: nonce challenge, retried",
        "par: request_uri=true",
        "token: type=dpop refresh=true",
        "userinfo dpop: sub=true",
        "userinfo bearer: status=401 scheme=DPoP",
        "refresh same key: type=dpop",
        "refresh other key: refused invalid_dpop_proof",
        "DPOP PAR OK",
    ] {
        assert!(
            stdout.contains(line),
            "{line:?} not in:\n{stdout}\n{stderr}"
        );
    }
    server.stop().await;
}

/// `dpop_jkt` on a plain `/authorize` (no PAR, RFC 9449 10) binds the code to that key,
/// for a client that does not demand DPoP: the code is refused without a proof and with
/// a proof by another key (RFC 9449 10 says the request MUST be rejected and names no
/// error; gatehouse answers `invalid_dpop_proof`, as for any proof the token endpoint
/// will not take, and the code stays unused), and redeemed with the key's proof.
#[tokio::test]
async fn dpop_jkt_at_a_plain_authorize_binds_the_code_to_its_key() {
    let config = dpop_config("")
        + r#"
[[clients]]
id = "web"
public = true
first_party = true
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid", "offline_access"]
"#;
    let server = TestServer::start(&config).await;
    let (key, other) = (DpopKey::new(), DpopKey::new());
    let pkce = Pkce::new("dpop-jkt");
    let jkt = key.jkt();
    let base = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", "https://web.example.com/cb"),
        ("scope", "openid offline_access"),
        ("state", "s-jkt"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let with_jkt = |dpop_jkt| [base.as_slice(), &[("dpop_jkt", dpop_jkt)]].concat();
    let mut browser = Browser::new(&server);
    let seen = browser.authorize(&with_jkt("not-a-thumbprint")).await;
    assert_eq!(
        seen.redirect_params()["error"],
        "invalid_request",
        "a dpop_jkt that is no thumbprint"
    );
    let seen = browser.authorize(&with_jkt(&jkt)).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let seen = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    let code = seen.redirect_params()["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "web"),
        ("code", code.as_str()),
        ("redirect_uri", "https://web.example.com/cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let now = server.clock().now();
    let (status, _, body) = post(&server, "/token", &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "the bound code without a proof: {body}"
    );
    let wrong = other.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &form, Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "the bound code with another key's proof: {body}"
    );
    let right = key.proof("POST", &at("/token"), now);
    let (status, _, body) = post(&server, "/token", &form, Some(&right)).await;
    assert_eq!(status, 200, "the key dpop_jkt named: {body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().expect("access");
    assert_eq!(payload(access)["cnf"]["jkt"], jkt);
    let (status, _, body) = post(
        &server,
        "/token",
        &form,
        Some(&key.proof("POST", &at("/token"), now)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the code once only: {body}"
    );
}

/// With `dpop_nonce`, a successful answer to a request with a proof carries the nonce
/// of the slot now (RFC 9449 8.2): a client that takes it never meets the challenge
/// again, even as the slots rotate past the nonce it first had.
#[tokio::test]
async fn a_successful_answer_gives_the_fresh_nonce_before_the_old_one_lapses() {
    let server = TestServer::start(&dpop_config("dpop_nonce = true")).await;
    let key = DpopKey::new();
    let token = at("/token");
    let with_nonce = |nonce: &str| {
        let mut claims = key.claims("POST", &token, server.clock().now());
        claims["nonce"] = json!(nonce);
        key.proof_with(&claims)
    };
    let (_, headers, _) = post(
        &server,
        "/token",
        &svc_form(),
        Some(&key.proof("POST", &token, server.clock().now())),
    )
    .await;
    let first = headers["dpop-nonce"].to_str().expect("nonce").to_owned();
    let (status, headers, body) =
        post(&server, "/token", &svc_form(), Some(&with_nonce(&first))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers["dpop-nonce"],
        first.as_str(),
        "the same slot, the same nonce"
    );
    let (_, headers, _) = post(&server, "/token", &svc_form(), None).await;
    assert!(headers.get("dpop-nonce").is_none(), "no proof, no nonce");

    // The next slot: the first nonce is still taken, and the answer gives the new one.
    server.clock().advance(Duration::from_secs(300));
    let (status, headers, body) =
        post(&server, "/token", &svc_form(), Some(&with_nonce(&first))).await;
    assert_eq!(status, 200, "{body}");
    let second = headers["dpop-nonce"]
        .to_str()
        .expect("a fresh nonce")
        .to_owned();
    assert_ne!(second, first);

    // One slot more: the first has lapsed, the one the success gave is good.
    server.clock().advance(Duration::from_secs(300));
    let (status, _, body) = post(&server, "/token", &svc_form(), Some(&with_nonce(&first))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let (status, headers, body) =
        post(&server, "/token", &svc_form(), Some(&with_nonce(&second))).await;
    assert_eq!(status, 200, "{body}");
    let third = headers["dpop-nonce"]
        .to_str()
        .expect("a fresh nonce")
        .to_owned();
    assert_ne!(third, second, "the slot moved on again");

    // /par answers with it too.
    let pkce = Pkce::new("nonce-par");
    let form = [
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", "https://spa.example.com/cb"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut claims = key.claims("POST", &at("/par"), server.clock().now());
    claims["nonce"] = json!(third);
    let (status, headers, body) =
        post(&server, "/par", &form, Some(&key.proof_with(&claims))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["dpop-nonce"], third.as_str());
}
