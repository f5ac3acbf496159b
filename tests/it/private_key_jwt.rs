//! Services without shared secrets (issue 21): `private_key_jwt` client
//! authentication (RFC 7523 2.2). A real client library, openid-client v6's
//! `PrivateKeyJwt` (`tests/node/private_key_jwt.mjs`), gets client-credentials tokens
//! with ES256 and EdDSA keys listed inline, in a key file, and at a `jwks_uri`, and
//! introspects and revokes with the same method. Each refusal (another key, a replayed
//! `jti`, expired, `exp` too far, wrong `aud`, `alg: none`, HS256 keyed with the public
//! key, `iss`/`sub` not the client) is its own 401 `invalid_client`, counted for the
//! limits; a `jti` used at one replica is refused at another on Redis.

use crate::support::key_server::KeyServer;
use crate::support::redis::RedisServer;
use crate::support::replica::Replica;
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse::config::file::Algorithm;
use gatehouse::jwt::keys::SigningKey;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's key pair: the PKCS#8 PEM the service keeps, the public JWK it commits.
struct ClientKey {
    alg: Algorithm,
    pem: String,
    jwk: Value,
    kid: String,
}

impl ClientKey {
    fn new(alg: Algorithm, kid: &str) -> Self {
        let (key, pem) = SigningKey::generate(alg, Some(kid)).expect("a key");
        // What `gatehouse keygen --client` writes: version 1 for Ed25519.
        let pem = gatehouse::jwt::keys::ed25519_pkcs8_v1(&pem).unwrap_or(pem);
        Self {
            alg,
            pem,
            jwk: key.public_jwk().clone(),
            kid: kid.to_owned(),
        }
    }

    /// The JWK Set of this key, as JSON.
    fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// The key inline, as a TOML inline table.
    fn toml(&self) -> String {
        let members: Vec<String> = self
            .jwk
            .as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("{{ keys = [ {{ {} }} ] }}", members.join(", "))
    }

    /// `claims` signed with this key (its kid in the header).
    fn sign(&self, claims: &Value) -> String {
        let (alg, key) = match self.alg {
            Algorithm::ES256 => (
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()),
            ),
            Algorithm::EdDSA => (
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::EncodingKey::from_ed_pem(self.pem.as_bytes()),
            ),
            Algorithm::RS256 => (
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::EncodingKey::from_rsa_pem(self.pem.as_bytes()),
            ),
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.expect("a PEM key")).expect("signed")
    }
}

/// The claims of a good assertion by `client` for `aud`, at `now`.
fn claims(client: &str, aud: &str, now: u64, jti: &str) -> Value {
    json!({"iss": client, "sub": client, "aud": aud, "iat": now, "exp": now + 60, "jti": jti})
}

/// `claims` with `patch` applied (a null removes the claim).
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

/// POSTs a client-credentials request authenticated by `assertion` to `url`.
async fn with_assertion(url: &str, assertion: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    let response = crate::support::http_client()
        .post(url)
        .form(&form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token(url: &str, assertion: &str) -> (u16, Value) {
    with_assertion(url, assertion, &[("grant_type", "client_credentials")]).await
}

fn assert_refused(outcome: &(u16, Value), why: &str) {
    assert_eq!(outcome.0, 401, "{why}: {}", outcome.1);
    assert_eq!(outcome.1["error"], "invalid_client", "{why}: {}", outcome.1);
    assert_eq!(
        outcome.1["error_description"], "client authentication failed",
        "{why}: the description says nothing of which check failed"
    );
}

/// Whether node and openid-client are installed; says what is missing otherwise.
fn node_ready(test: &str) -> bool {
    let node = std::process::Command::new("node").arg("--version").output();
    let lib = Path::new(ROOT).join("tests/node/node_modules/openid-client");
    if node.is_err() || !lib.is_dir() {
        crate::support::skip::missing(
            test,
            "node and openid-client (`cd tests/node && npm ci`, as .ci/run does)",
        );
        return false;
    }
    true
}

/// Runs `tests/node/private_key_jwt.mjs` as `client` with `key` against `issuer`.
async fn openid_client(issuer: &str, dir: &Path, client: &str, key: &ClientKey) -> String {
    let key_file = dir.join(format!("{client}.key.pem"));
    std::fs::write(&key_file, &key.pem).expect("write the key");
    let alg = match key.alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
    };
    let run = tokio::process::Command::new("node")
        .arg("private_key_jwt.mjs")
        .current_dir(Path::new(ROOT).join("tests/node"))
        .env("ISSUER", issuer)
        .env("CLIENT_ID", client)
        .env("KEY_FILE", &key_file)
        .env("ALG", alg)
        .env("KID", &key.kid)
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
        "openid-client as {client} failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "discovery: private_key_jwt=true",
        "token: type=bearer",
        "second token: new",
        &format!("introspection: active=true client_id={client}"),
        "after revocation: active=false",
        "PRIVATE KEY JWT OK",
    ] {
        assert!(
            stdout.contains(line),
            "{line:?} not in:\n{stdout}\n{stderr}"
        );
    }
    stdout
}

#[tokio::test]
async fn openid_client_authenticates_with_es256_and_eddsa_keys_inline_in_a_file_and_at_a_jwks_uri()
{
    if !node_ready("openid_client_authenticates_with_private_key_jwt") {
        return;
    }
    let es = ClientKey::new(Algorithm::ES256, "billing-1");
    let ed = ClientKey::new(Algorithm::EdDSA, "reports-1");
    let uri_key = ClientKey::new(Algorithm::ES256, "ledger-1");
    let key_server = KeyServer::start(uri_key.jwks()).await;
    let (issuer, config) = discoverable_config(&format!(
        r#"
[[clients]]
id = "billing"
grant_types = ["client_credentials"]
jwks = {inline}

[[clients]]
id = "reports"
grant_types = ["client_credentials"]
jwks_file = "clients/reports.jwks.json"
token_endpoint_auth_method = "private_key_jwt"

[[clients]]
id = "ledger"
grant_types = ["client_credentials"]
jwks_uri = "{uri}"
"#,
        inline = es.toml(),
        uri = key_server.jwks_uri()
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("clients")).expect("mkdir");
    std::fs::write(
        dir.path().join("clients/reports.jwks.json"),
        ed.jwks().to_string(),
    )
    .expect("write the key file");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).expect("write config");
    let server = TestServer::start_at(dir, path).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    openid_client(&issuer, scratch.path(), "billing", &es).await;
    openid_client(&issuer, scratch.path(), "reports", &ed).await;
    openid_client(&issuer, scratch.path(), "ledger", &uri_key).await;
    assert_eq!(
        key_server.fetches(),
        1,
        "the jwks_uri is fetched once and cached"
    );
    server.stop().await;
}

/// A server with client `svc` (ES256 key `svc-1` inline), a device client `tv` with an
/// EdDSA key, and a secret client `old`.
async fn refusal_server(key: &ClientKey, tv: &ClientKey, max_failures: u32) -> TestServer {
    TestServer::start(&config_with(&format!(
        r#"
[limits]
token_max_failures = {max_failures}

[[clients]]
id = "svc"
grant_types = ["client_credentials"]
jwks = {svc}

[[clients]]
id = "tv"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
jwks = {tv}

[[clients]]
id = "old"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
"#,
        svc = key.toml(),
        tv = tv.toml(),
        hash = service_hash()
    )))
    .await
}

#[tokio::test]
async fn every_broken_rule_is_invalid_client() {
    let key = ClientKey::new(Algorithm::ES256, "svc-1");
    let tv = ClientKey::new(Algorithm::EdDSA, "tv-1");
    let server = refusal_server(&key, &tv, 1000).await;
    let url = server.url("/token");
    let now = server.clock().now();
    let good = |jti: &str| claims("svc", ISSUER, now, jti);

    let (status, body) = token(&url, &key.sign(&good("first"))).await;
    assert_eq!(status, 200, "a good assertion with aud = issuer: {body}");
    let token_endpoint = format!("{ISSUER}/token");
    let at_endpoint = patched(good("to-endpoint"), &json!({"aud": token_endpoint}));
    assert_eq!(
        token(&url, &key.sign(&at_endpoint)).await.0,
        200,
        "aud = token endpoint"
    );
    let both = patched(good("both"), &json!({"aud": [ISSUER, token_endpoint]}));
    assert_eq!(token(&url, &key.sign(&both)).await.0, 200, "aud = both");
    assert_eq!(
        with_assertion(
            &url,
            &key.sign(&good("with-id")),
            &[("grant_type", "client_credentials"), ("client_id", "svc")]
        )
        .await
        .0,
        200,
        "with the client_id too"
    );

    let other = ClientKey::new(Algorithm::ES256, "svc-1");
    assert_refused(
        &token(&url, &other.sign(&good("other-key"))).await,
        "another key, same kid",
    );
    let unknown = ClientKey::new(Algorithm::ES256, "nobody");
    assert_refused(
        &token(&url, &unknown.sign(&good("unknown-kid"))).await,
        "an unknown kid",
    );
    let replay = key.sign(&good("replay"));
    assert_eq!(token(&url, &replay).await.0, 200);
    assert_refused(&token(&url, &replay).await, "a replayed jti");
    let again = key.sign(&patched(good("replay"), &json!({"exp": now + 61})));
    assert_refused(
        &token(&url, &again).await,
        "the same jti in a new assertion",
    );
    let expired = patched(good("expired"), &json!({"iat": now - 120, "exp": now - 1}));
    assert_refused(&token(&url, &key.sign(&expired)).await, "expired");
    let far = patched(good("far"), &json!({"exp": now + 600}));
    assert_refused(
        &token(&url, &key.sign(&far)).await,
        "exp more than 5 minutes ahead",
    );
    let no_exp = patched(good("no-exp"), &json!({"exp": null}));
    assert_refused(&token(&url, &key.sign(&no_exp)).await, "no exp");
    let no_jti = patched(good("x"), &json!({"jti": null}));
    assert_refused(&token(&url, &key.sign(&no_jti)).await, "no jti");
    for aud in [
        json!("https://elsewhere.example"),
        json!([ISSUER, "https://elsewhere.example"]),
        json!([]),
    ] {
        let wrong = patched(good(&format!("aud-{aud}")), &json!({ "aud": aud }));
        assert_refused(&token(&url, &key.sign(&wrong)).await, &format!("aud {aud}"));
    }
    let iss = patched(good("iss"), &json!({"iss": "old"}));
    assert_refused(&token(&url, &key.sign(&iss)).await, "iss is another client");
    let sub = patched(good("sub"), &json!({"sub": "old"}));
    assert_refused(&token(&url, &key.sign(&sub)).await, "sub is another client");
    let as_other = with_assertion(
        &url,
        &key.sign(&good("as-old")),
        &[("grant_type", "client_credentials"), ("client_id", "old")],
    )
    .await;
    assert_refused(&as_other, "an assertion for a client with a secret");

    let header = |alg: &str| B64.encode(json!({"alg": alg, "kid": "svc-1"}).to_string());
    let body = B64.encode(good("none").to_string());
    let none = format!("{}.{body}.", header("none"));
    assert_refused(&token(&url, &none).await, "alg none");
    let hs_key = jsonwebtoken::EncodingKey::from_secret(key.jwk.to_string().as_bytes());
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some("svc-1".into());
    let hs = jsonwebtoken::encode(&hs_header, &good("hs256"), &hs_key).expect("hs256");
    assert_refused(&token(&url, &hs).await, "HS256 keyed with the public key");
    assert_refused(&token(&url, "not-a-jwt").await, "not a JWT");

    let (status, body) = with_assertion(
        &url,
        &key.sign(&good("two-methods")),
        &[("grant_type", "client_credentials"), ("client_secret", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "two methods"
    );
    server.stop().await;
}

#[tokio::test]
async fn introspection_revocation_and_device_authorization_accept_assertions() {
    let key = ClientKey::new(Algorithm::ES256, "svc-1");
    let tv = ClientKey::new(Algorithm::EdDSA, "tv-1");
    let server = refusal_server(&key, &tv, 1000).await;
    let now = server.clock().now();
    let (status, issued) = token(
        &server.url("/token"),
        &key.sign(&claims("svc", ISSUER, now, "t")),
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    let access = issued["access_token"].as_str().expect("a token");
    let (status, info) = with_assertion(
        &server.url("/introspect"),
        &key.sign(&claims("svc", ISSUER, now, "i")),
        &[("token", access)],
    )
    .await;
    assert_eq!(
        (status, info["active"].as_bool()),
        (200, Some(true)),
        "{info}"
    );
    let (status, _) = with_assertion(
        &server.url("/revoke"),
        &key.sign(&claims("svc", ISSUER, now, "r")),
        &[("token", access)],
    )
    .await;
    assert_eq!(status, 200, "revocation");
    let (status, device) = with_assertion(
        &server.url("/device_authorization"),
        &tv.sign(&claims("tv", ISSUER, now, "d")),
        &[],
    )
    .await;
    assert_eq!(status, 200, "device authorization: {device}");
    assert!(device["device_code"].is_string(), "{device}");
    let reused = with_assertion(
        &server.url("/introspect"),
        &key.sign(&claims("svc", ISSUER, now, "i")),
        &[("token", access)],
    )
    .await;
    assert_refused(&reused, "a jti used at introspection is used up everywhere");
    server.stop().await;
}

#[tokio::test]
async fn failed_assertions_count_toward_the_client_authentication_limit() {
    let key = ClientKey::new(Algorithm::ES256, "svc-1");
    let tv = ClientKey::new(Algorithm::EdDSA, "tv-1");
    let server = refusal_server(&key, &tv, 2).await;
    let url = server.url("/token");
    let now = server.clock().now();
    let stranger = ClientKey::new(Algorithm::ES256, "svc-1");
    for jti in ["a", "b"] {
        assert_refused(
            &token(&url, &stranger.sign(&claims("svc", ISSUER, now, jti))).await,
            "forged",
        );
    }
    let (status, _) = token(&url, &key.sign(&claims("svc", ISSUER, now, "c"))).await;
    assert_eq!(
        status, 429,
        "past the limit even a good assertion waits for the window"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_jwks_uri_is_invalid_client_and_other_clients_go_on() {
    let key = ClientKey::new(Algorithm::ES256, "k-1");
    let key_server = KeyServer::start(key.jwks()).await;
    let inline = ClientKey::new(Algorithm::EdDSA, "i-1");
    let server = TestServer::start(&config_with(&format!(
        r#"
[[clients]]
id = "remote"
grant_types = ["client_credentials"]
jwks_uri = "{uri}"

[[clients]]
id = "local"
grant_types = ["client_credentials"]
jwks = {inline}
"#,
        uri = key_server.jwks_uri(),
        inline = inline.toml()
    )))
    .await;
    let url = server.url("/token");
    let now = server.clock().now();
    key_server.set_down(true);
    assert_refused(
        &token(&url, &key.sign(&claims("remote", ISSUER, now, "1"))).await,
        "key server down",
    );
    let (status, body) = token(&url, &inline.sign(&claims("local", ISSUER, now, "2"))).await;
    assert_eq!(status, 200, "another client is not held up: {body}");

    key_server.set_down(false);
    let soon = key.sign(&claims("remote", ISSUER, now, "3"));
    assert_refused(
        &token(&url, &soon).await,
        "no second fetch within a minute of the first",
    );
    server.clock().advance(Duration::from_secs(61));
    let now = server.clock().now();
    let (status, body) = token(&url, &key.sign(&claims("remote", ISSUER, now, "4"))).await;
    assert_eq!(status, 200, "back up, a minute later: {body}");

    // Rotation at the client: a new kid is fetched (once a minute at most), and the
    // key it dropped is refused from then on.
    let rotated = ClientKey::new(Algorithm::ES256, "k-2");
    key_server.set_keys(rotated.jwks());
    let fetched = key_server.fetches();
    assert_refused(
        &token(&url, &rotated.sign(&claims("remote", ISSUER, now, "5"))).await,
        "a new kid within a minute of the last fetch",
    );
    assert_eq!(key_server.fetches(), fetched, "no fetch within the minute");
    server.clock().advance(Duration::from_secs(61));
    let now = server.clock().now();
    let (status, body) = token(&url, &rotated.sign(&claims("remote", ISSUER, now, "6"))).await;
    assert_eq!(status, 200, "the new kid after one fetch: {body}");
    assert_eq!(key_server.fetches(), fetched + 1);
    assert_refused(
        &token(&url, &key.sign(&claims("remote", ISSUER, now, "7"))).await,
        "the key the client dropped",
    );
    server.stop().await;
}

#[tokio::test]
async fn discovery_lists_private_key_jwt_and_its_algorithms() {
    let server = TestServer::start(&service_config()).await;
    let doc: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let methods = doc["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("private_key_jwt"), "{methods}");
    let algs = &doc["token_endpoint_auth_signing_alg_values_supported"];
    for alg in ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"] {
        assert!(
            algs.to_string().contains(&format!("\"{alg}\"")),
            "{alg}: {algs}"
        );
    }
    for never in ["none", "HS256"] {
        assert!(!algs.to_string().contains(never), "{algs}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jti_used_at_one_replica_is_refused_at_the_other() {
    let Some(redis) = RedisServer::start("a_jti_used_at_one_replica_is_refused_at_the_other")
    else {
        return;
    };
    let key = ClientKey::new(Algorithm::ES256, "svc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let config = config_with(&format!(
        r#"
[store]
url = "{url}"
key_prefix = "pkjwt-test:"

[[keys]]
private_key_file = "signing.pem"

[[clients]]
id = "svc"
grant_types = ["client_credentials"]
jwks = {jwks}
"#,
        url = redis.url(),
        jwks = key.toml()
    ));
    let a = Replica::spawn(dir.path(), "a", &config);
    let b = Replica::spawn(dir.path(), "b", &config);
    let now = gatehouse::clock::Clock::system().now();
    let assertion = key.sign(&claims("svc", ISSUER, now, "once"));
    let (status, body) = token(&a.url("/token"), &assertion).await;
    assert_eq!(status, 200, "first use at A: {body}");
    assert_refused(
        &token(&b.url("/token"), &assertion).await,
        "the same assertion at B",
    );
    let fresh = key.sign(&claims("svc", ISSUER, now, "another"));
    assert_eq!(
        token(&b.url("/token"), &fresh).await.0,
        200,
        "a fresh jti at B"
    );
    // B's audit line names the check that failed, never the assertion.
    let log = dir.path().join("b.log");
    let named = eventually(Duration::from_secs(5), || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.contains("client_auth_failed") && l.contains("replayed_jti"))
            })
        }
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(named, "the audit line names the check: {text}");
    assert!(!text.contains(&assertion), "the assertion is never logged");
}

#[tokio::test]
async fn removing_a_key_at_a_reload_ends_the_tokens_issued_under_it() {
    let kept = ClientKey::new(Algorithm::ES256, "kept");
    let dropped = ClientKey::new(Algorithm::EdDSA, "dropped");
    let config = |keys: &str| {
        config_with(&format!(
            "[[clients]]\nid = \"svc\"\ngrant_types = [\"client_credentials\"]\njwks = {{ keys = [ {keys} ] }}\n"
        ))
    };
    let inline = |k: &ClientKey| {
        let toml = k.toml();
        toml["{ keys = [ ".len()..toml.len() - " ] }".len()].to_owned()
    };
    let both = format!("{}, {}", inline(&kept), inline(&dropped));
    let server = TestServer::start(&config(&both)).await;
    let url = server.url("/token");
    let now = server.clock().now();
    let issue = |key: &ClientKey, jti: &str| key.sign(&claims("svc", ISSUER, now, jti));
    let (status, under_dropped) = token(&url, &issue(&dropped, "d")).await;
    assert_eq!(status, 200, "{under_dropped}");
    let (status, under_kept) = token(&url, &issue(&kept, "k")).await;
    assert_eq!(status, 200, "{under_kept}");
    server.rewrite_config(&config(&inline(&kept)));
    server.wait_for_generation(2).await;
    let active = |token: &Value, jti: &'static str| {
        let access = token["access_token"].as_str().expect("a token").to_owned();
        let assertion = kept.sign(&claims("svc", ISSUER, now, jti));
        let url = server.url("/introspect");
        async move {
            let (status, info) = with_assertion(&url, &assertion, &[("token", &access)]).await;
            assert_eq!(status, 200, "{info}");
            info["active"].as_bool()
        }
    };
    assert_eq!(
        active(&under_dropped, "i1").await,
        Some(false),
        "a token issued under the removed key ends with it"
    );
    assert_eq!(
        active(&under_kept, "i2").await,
        Some(true),
        "a token under the kept key stands"
    );
    assert_refused(
        &token(&url, &issue(&dropped, "d2")).await,
        "the removed key",
    );
    server.stop().await;
}
