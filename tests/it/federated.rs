//! Workload identity federation (issue 21): a platform's own token as the client
//! assertion. Two in-test issuers (`support::key_server`: OIDC discovery and a JWKS)
//! sign tokens shaped like a Kubernetes projected service-account token (RS256) and a
//! GitHub Actions OIDC token (ES256). Covered: the accepted case (reusable: no `jti`
//! rule), every refusal, key rotation at the issuer (a new kid after one refetch, the
//! dropped key refused), the issuer down (401, other clients unaffected), and the
//! bearer token sent to the issuer's own origin.

use crate::support::key_server::KeyServer;
use crate::support::*;
use gatehouse::config::file::Algorithm;
use gatehouse::jwt::keys::SigningKey;
use serde_json::{Value, json};
use std::time::Duration;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const GITHUB_AUDIENCE: &str = "https://auth.example.com";
const WORKLOAD: &str = "system:serviceaccount:billing:api";
const REPO: &str = "repo:acme/deploy:environment:prod";

/// A platform's signing key.
struct PlatformKey {
    alg: Algorithm,
    pem: String,
    jwk: Value,
    kid: String,
}

impl PlatformKey {
    fn new(alg: Algorithm, kid: &str) -> Self {
        let (key, pem) = SigningKey::generate(alg, Some(kid)).expect("a key");
        Self {
            alg,
            pem,
            jwk: key.public_jwk().clone(),
            kid: kid.to_owned(),
        }
    }

    fn jwks(keys: &[&PlatformKey]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    fn sign(&self, claims: &Value) -> String {
        let (alg, key) = match self.alg {
            Algorithm::ES256 => (
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()),
            ),
            Algorithm::RS256 => (
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::EncodingKey::from_rsa_pem(self.pem.as_bytes()),
            ),
            Algorithm::EdDSA => (
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::EncodingKey::from_ed_pem(self.pem.as_bytes()),
            ),
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.expect("a PEM key")).expect("signed")
    }
}

/// A Kubernetes projected service-account token's claims.
fn kubernetes(issuer: &str, now: u64) -> Value {
    json!({
        "aud": [ISSUER], "exp": now + 3600, "iat": now, "nbf": now, "iss": issuer,
        "sub": WORKLOAD,
        "kubernetes.io": {"namespace": "billing", "serviceaccount": {"name": "api", "uid": "5a1c"},
            "pod": {"name": "api-7d9f", "uid": "77e2"}},
    })
}

/// A GitHub Actions OIDC token's claims.
fn github(issuer: &str, now: u64) -> Value {
    json!({
        "jti": "6f1b", "sub": REPO, "aud": GITHUB_AUDIENCE, "ref": "refs/heads/main",
        "repository": "acme/deploy", "repository_owner": "acme", "environment": "prod",
        "run_id": "42", "event_name": "push", "iss": issuer, "nbf": now - 5, "exp": now + 300,
        "iat": now - 5,
    })
}

fn patched(mut claims: Value, patch: &Value) -> Value {
    if let (Some(c), Some(p)) = (claims.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

/// Client credentials for `client_id` (if any) with the platform token `assertion`.
async fn token(server: &TestServer, client_id: Option<&str>, assertion: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    let response = server
        .http
        .post(server.url("/token"))
        .form(&form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_refused(outcome: &(u16, Value), why: &str) {
    assert_eq!(
        (outcome.0, outcome.1["error"].as_str()),
        (401, Some("invalid_client")),
        "{why}: {}",
        outcome.1
    );
}

struct Setup {
    server: TestServer,
    cluster: KeyServer,
    actions: KeyServer,
    k8s_key: PlatformKey,
    gh_key: PlatformKey,
}

async fn setup() -> Setup {
    let k8s_key = PlatformKey::new(Algorithm::RS256, "k8s-1");
    let gh_key = PlatformKey::new(Algorithm::ES256, "gh-1");
    let cluster = KeyServer::start(PlatformKey::jwks(&[&k8s_key])).await;
    let actions = KeyServer::start(PlatformKey::jwks(&[&gh_key])).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("sa-token"), "the-reader-token\n").expect("write");
    let config = config_with(&format!(
        r#"
[[trusted_issuers]]
id = "cluster"
issuer = "{cluster}"
bearer_token_file = "sa-token"

[[trusted_issuers]]
id = "github"
issuer = "{actions}"
jwks_uri = "{actions}/jwks"
audience = "{GITHUB_AUDIENCE}"
max_token_age = "10m"

[[clients]]
id = "deployer"
grant_types = ["client_credentials"]
federated_credentials = [
  {{ issuer = "cluster", subject = "{WORKLOAD}" }},
  {{ issuer = "github", subject = "{REPO}", claims = {{ repository_owner = "acme" }} }},
]

[[clients]]
id = "other"
grant_types = ["client_credentials"]
federated_credentials = [ {{ issuer = "github", subject = "repo:acme/other:ref:refs/heads/main" }} ]

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
"#,
        cluster = cluster.base,
        actions = actions.base,
        hash = service_hash()
    ));
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).expect("write config");
    let server = TestServer::start_at(dir, path).await;
    Setup {
        server,
        cluster,
        actions,
        k8s_key,
        gh_key,
    }
}

#[tokio::test]
async fn platform_tokens_authenticate_their_client_and_nothing_else() {
    let s = setup().await;
    let now = s.server.clock().now();
    let k8s = s.k8s_key.sign(&kubernetes(&s.cluster.base, now));
    let (status, body) = token(&s.server, Some("deployer"), &k8s).await;
    assert_eq!(status, 200, "a Kubernetes token: {body}");
    assert_eq!(
        token(&s.server, Some("deployer"), &k8s).await.0,
        200,
        "a platform token is reusable within its lifetime"
    );
    let gh = s.gh_key.sign(&github(&s.actions.base, now));
    let (status, body) = token(&s.server, Some("deployer"), &gh).await;
    assert_eq!(status, 200, "a GitHub Actions token: {body}");
    let seen = s.cluster.authorizations();
    assert!(
        !seen.is_empty()
            && seen
                .iter()
                .all(|a| a.as_deref() == Some("Bearer the-reader-token")),
        "discovery and keys fetched with the bearer token: {seen:?}"
    );
    assert!(
        s.actions.authorizations().iter().all(Option::is_none),
        "the bearer token goes to its issuer's origin only"
    );

    let k8s_claims = kubernetes(&s.cluster.base, now);
    let gh_claims = github(&s.actions.base, now);
    let cases: Vec<(&str, &PlatformKey, Value, Option<&str>)> = vec![
        ("no client_id", &s.k8s_key, k8s_claims.clone(), None),
        (
            "another client",
            &s.gh_key,
            gh_claims.clone(),
            Some("other"),
        ),
        (
            "another workload",
            &s.k8s_key,
            patched(
                k8s_claims.clone(),
                &json!({"sub": "system:serviceaccount:billing:cron"}),
            ),
            Some("deployer"),
        ),
        (
            "another owner",
            &s.gh_key,
            patched(gh_claims.clone(), &json!({"repository_owner": "evil"})),
            Some("deployer"),
        ),
        (
            "the claim missing",
            &s.gh_key,
            patched(gh_claims.clone(), &json!({"repository_owner": null})),
            Some("deployer"),
        ),
        (
            "another audience",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"aud": ["https://elsewhere"]})),
            Some("deployer"),
        ),
        (
            "github's audience is not the cluster's",
            &s.gh_key,
            patched(gh_claims.clone(), &json!({"aud": ISSUER})),
            Some("deployer"),
        ),
        (
            "expired",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"exp": now - 1})),
            Some("deployer"),
        ),
        (
            "no exp",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"exp": null})),
            Some("deployer"),
        ),
        (
            "iat in the future",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"iat": now + 120})),
            Some("deployer"),
        ),
        (
            "nbf in the future",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"nbf": now + 120})),
            Some("deployer"),
        ),
        (
            "older than max_token_age",
            &s.gh_key,
            patched(gh_claims.clone(), &json!({"iat": now - 601})),
            Some("deployer"),
        ),
        (
            "an untrusted issuer",
            &s.k8s_key,
            patched(k8s_claims.clone(), &json!({"iss": "https://evil.example"})),
            Some("deployer"),
        ),
        (
            "the cluster's token claiming github's iss",
            &s.k8s_key,
            patched(gh_claims.clone(), &json!({})),
            Some("deployer"),
        ),
    ];
    for (why, key, claims, client) in cases {
        assert_refused(&token(&s.server, client, &key.sign(&claims)).await, why);
    }
    let forged = PlatformKey::new(Algorithm::ES256, "gh-1");
    assert_refused(
        &token(&s.server, Some("deployer"), &forged.sign(&gh_claims)).await,
        "signed by another key under the issuer's kid",
    );
    let (status, _) = s
        .server
        .client_credentials("svc", SERVICE_SECRET, &[])
        .await;
    assert_eq!(status, 200, "a secret client still works");
    s.server.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_a_dropped_key_is_refused() {
    let s = setup().await;
    let now = s.server.clock().now();
    let old = s.k8s_key.sign(&kubernetes(&s.cluster.base, now));
    assert_eq!(token(&s.server, Some("deployer"), &old).await.0, 200);
    let fetched = s.cluster.fetches();
    let new_key = PlatformKey::new(Algorithm::RS256, "k8s-2");
    s.cluster.set_keys(PlatformKey::jwks(&[&new_key]));
    let new = new_key.sign(&kubernetes(&s.cluster.base, now));
    assert_refused(
        &token(&s.server, Some("deployer"), &new).await,
        "a new kid within a minute of the last fetch",
    );
    assert_eq!(s.cluster.fetches(), fetched, "no fetch within the minute");
    s.server.clock().advance(Duration::from_secs(61));
    let now = s.server.clock().now();
    let new = new_key.sign(&kubernetes(&s.cluster.base, now));
    let (status, body) = token(&s.server, Some("deployer"), &new).await;
    assert_eq!(status, 200, "the new kid after one refetch: {body}");
    assert_eq!(s.cluster.fetches(), fetched + 1, "exactly one refetch");
    let old = s.k8s_key.sign(&kubernetes(&s.cluster.base, now));
    assert_refused(
        &token(&s.server, Some("deployer"), &old).await,
        "the key the issuer dropped",
    );
    s.server.stop().await;
}

#[tokio::test]
async fn an_issuer_down_fails_its_tokens_only() {
    let s = setup().await;
    s.cluster.set_down(true);
    let now = s.server.clock().now();
    let k8s = s.k8s_key.sign(&kubernetes(&s.cluster.base, now));
    assert_refused(
        &token(&s.server, Some("deployer"), &k8s).await,
        "the issuer unreachable",
    );
    let gh = s.gh_key.sign(&github(&s.actions.base, now));
    assert_eq!(
        token(&s.server, Some("deployer"), &gh).await.0,
        200,
        "another issuer"
    );
    let (status, _) = s
        .server
        .client_credentials("svc", SERVICE_SECRET, &[])
        .await;
    assert_eq!(status, 200, "another client");
    s.cluster.set_down(false);
    s.server.clock().advance(Duration::from_secs(61));
    let now = s.server.clock().now();
    let k8s = s.k8s_key.sign(&kubernetes(&s.cluster.base, now));
    assert_eq!(
        token(&s.server, Some("deployer"), &k8s).await.0,
        200,
        "back up"
    );
    s.server.stop().await;
}
