//! Token lifecycle over HTTP: introspection (RFC 7662) and who may ask, revocation
//! (RFC 7009), what a replayed code, a removed client and a rotated secret do to
//! issued tokens, and signing-key rotation walked through reloads.


use crate::support::browser::{Browser, Pkce};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn clients(hash: &str, extra: &str) -> String {
    config_with(&format!(
        r#"
[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
audience = ["api"]

[[clients]]
id = "api"
secret_hash = "{hash}"
grant_types = ["client_credentials"]

[[clients]]
id = "other"
secret_hash = "{hash}"
grant_types = ["client_credentials"]

[[clients]]
id = "gateway"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
introspect = true

[[clients]]
id = "web"
secret_hash = "{hash}"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid", "offline_access"]
first_party = true

[[clients]]
id = "spa"
public = true
redirect_uris = ["https://spa.example.com/cb"]
first_party = true

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
{extra}
"#
    ))
}

async fn post(
    server: &TestServer,
    path: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = server
        .http
        .post(server.url(path))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn introspect(server: &TestServer, caller: &str, token: &str) -> Value {
    let (status, body) = post(
        server,
        "/introspect",
        (caller, SERVICE_SECRET),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Uses `refresh` as `client` (secret [`SERVICE_SECRET`]); status and body.
async fn refresh(server: &TestServer, client: &str, refresh: &str) -> (u16, Value) {
    post(
        server,
        "/token",
        (client, SERVICE_SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
}

/// Rewrites the config and waits until generation `n` serves.
async fn reload_to(server: &TestServer, config: &str, n: u64) {
    server.rewrite_config(config);
    server.wait_for_generation(n).await;
}

async fn service_token(server: &TestServer, id: &str) -> String {
    let (status, body) = server.client_credentials(id, SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Logs alice in through the first-party web client; returns the code and its PKCE pair.
async fn web_code(server: &TestServer, seed: &str) -> (String, Pkce) {
    let mut browser = Browser::new(server);
    let pkce = Pkce::new(seed);
    browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid offline_access"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let seen = browser.login("alice", SERVICE_SECRET).await;
    (seen.redirect_params()["code"].clone(), pkce)
}

/// Logs alice in through the first-party web client; returns its token response.
async fn web_tokens(server: &TestServer) -> Value {
    web_tokens_with(server, SERVICE_SECRET).await
}

/// Logs alice in through the web client, which redeems the code with `secret`.
async fn web_tokens_with(server: &TestServer, secret: &str) -> Value {
    let (code, pkce) = web_code(server, "lifecycle").await;
    let (status, tokens) = post(
        server,
        "/token",
        ("web", secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn introspection_answers_only_those_entitled() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let token = service_token(&server, "svc").await;

    let own = introspect(&server, "svc", &token).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], "svc");
    assert_eq!(own["sub"], "svc");
    assert_eq!(own["iss"], ISSUER);
    assert_eq!(own["aud"], "api");
    assert_eq!(own["token_type"], "Bearer");
    for field in ["exp", "iat", "jti", "scope"] {
        assert!(own.get(field).is_some(), "{field}");
    }
    assert_eq!(
        introspect(&server, "api", &token).await["active"],
        true,
        "the audience may ask"
    );
    assert_eq!(
        introspect(&server, "gateway", &token).await["active"],
        true,
        "introspect = true may ask"
    );
    assert_eq!(
        introspect(&server, "other", &token).await,
        serde_json::json!({"active": false}),
        "a stranger may not"
    );

    for junk in [
        "",
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJzdmMifQ.",
    ] {
        let (status, body) = post(
            &server,
            "/introspect",
            ("svc", SERVICE_SECRET),
            &[("token", junk)],
        )
        .await;
        if junk.is_empty() {
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
        } else {
            assert_eq!(
                (status, body),
                (200, serde_json::json!({"active": false})),
                "{junk}"
            );
        }
    }
    // Public clients and bad credentials cannot introspect.
    let r = server
        .http
        .post(server.url("/introspect"))
        .form(&[("client_id", "spa"), ("token", &token)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let (status, _) = post(
        &server,
        "/introspect",
        ("svc", "wrong"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn expired_access_tokens_are_inactive() {
    let config = clients(service_hash(), "")
        .replace("[server]", "[tokens]\naccess_token_ttl = \"60s\"\n[server]");
    let server = TestServer::start(&config).await;
    let token = service_token(&server, "svc").await;
    assert_eq!(introspect(&server, "svc", &token).await["active"], true);
    server.clock().advance(Duration::from_secs(60));
    assert_eq!(
        introspect(&server, "svc", &token).await["active"],
        true,
        "within the 5 s leeway"
    );
    server.clock().advance(Duration::from_secs(7));
    assert_eq!(introspect(&server, "svc", &token).await["active"], false);
}

#[tokio::test]
async fn revocation_of_access_and_refresh_tokens() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let access = service_token(&server, "svc").await;

    // Another client may not revoke it.
    let (status, body) = post(
        &server,
        "/revoke",
        ("other", SERVICE_SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(introspect(&server, "svc", &access).await["active"], true);

    let (status, _) = post(
        &server,
        "/revoke",
        ("svc", SERVICE_SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(introspect(&server, "svc", &access).await["active"], false);
    // Revoking again, or revoking nonsense, is still 200.
    assert_eq!(
        post(
            &server,
            "/revoke",
            ("svc", SERVICE_SECRET),
            &[("token", &access)]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(
            &server,
            "/revoke",
            ("svc", SERVICE_SECRET),
            &[("token", "never-issued")]
        )
        .await
        .0,
        200
    );

    // A refresh token: revoking it revokes the family, the access token stays until exp.
    let tokens = web_tokens(&server).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let introspected = introspect(&server, "web", refresh).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "refresh_token");
    assert_eq!(introspected["sub"], "u-alice");
    let (status, _) = post(
        &server,
        "/revoke",
        ("web", SERVICE_SECRET),
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(introspect(&server, "web", refresh).await["active"], false);
    let (status, body) = post(
        &server,
        "/token",
        ("web", SERVICE_SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_deactivates_what_it_issued() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let (code, pkce) = web_code(&server, "replay-introspect").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (_, tokens) = post(&server, "/token", ("web", SERVICE_SECRET), &form).await;
    let access = tokens["access_token"].as_str().expect("access");
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    assert_eq!(introspect(&server, "web", access).await["active"], true);
    assert_eq!(introspect(&server, "web", refresh).await["active"], true);

    assert_eq!(
        post(&server, "/token", ("web", SERVICE_SECRET), &form)
            .await
            .0,
        400
    );
    assert_eq!(introspect(&server, "web", access).await["active"], false);
    assert_eq!(introspect(&server, "web", refresh).await["active"], false);
}

#[tokio::test]
async fn removing_a_client_or_rotating_its_secret_ends_its_tokens_for_good() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let svc_token = service_token(&server, "svc").await;
    let other_token = service_token(&server, "other").await;
    let tokens = web_tokens(&server).await;
    let web_access = tokens["access_token"].as_str().expect("access").to_owned();
    let web_refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(userinfo_status(&server, &web_access).await, 200);

    // Drop svc and rotate web's secret A -> B; then put both back as they were
    // (B -> A). Each step ends the tokens issued before it, and undoing it revives none.
    let original = clients(service_hash(), "");
    let rotated = gatehouse::crypto::hash_secret("rotated").expect("hash");
    let svc_block = format!(
        "[[clients]]\nid = \"svc\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\naudience = [\"api\"]\n",
        service_hash()
    );
    let changed = original
        .replacen(
            &format!("id = \"web\"\nsecret_hash = \"{}\"", service_hash()),
            &format!("id = \"web\"\nsecret_hash = \"{rotated}\""),
            1,
        )
        .replacen(&svc_block, "", 1);
    assert_ne!(changed, original);
    for (generation, config, web_secret) in
        [(2, &changed, "rotated"), (3, &original, SERVICE_SECRET)]
    {
        reload_to(&server, config, generation).await;
        for (token, what) in [
            (&svc_token, "client removed, then re-added"),
            (&web_access, "secret rotated, then rotated back"),
            (&web_refresh, "secret rotated, then rotated back"),
        ] {
            assert_eq!(
                introspect(&server, "gateway", token).await["active"],
                false,
                "generation {generation}: {what}"
            );
        }
        assert_eq!(userinfo_status(&server, &web_access).await, 401);
        let (status, body) = post(
            &server,
            "/token",
            ("web", web_secret),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &web_refresh),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "generation {generation}: {body}"
        );
        assert_eq!(
            introspect(&server, "gateway", &other_token).await["active"],
            true,
            "other clients are untouched"
        );
        server.clock().advance(Duration::from_secs(1));
    }

    // Tokens issued after the changes stand.
    let fresh = service_token(&server, "svc").await;
    assert_eq!(introspect(&server, "gateway", &fresh).await["active"], true);
    let tokens = web_tokens(&server).await;
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(userinfo_status(&server, access).await, 200);
}

/// The refresh and access tokens of a token response.
fn pair(tokens: &Value) -> (String, String) {
    let get = |k: &str| tokens[k].as_str().expect(k).to_owned();
    (get("refresh_token"), get("access_token"))
}

/// `(status, error)` of refreshing `token` as web with `secret`, and the new tokens.
async fn refresh_with(server: &TestServer, secret: &str, token: &str) -> (u16, Value) {
    post(
        server,
        "/token",
        ("web", secret),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn overlapping_secrets_end_only_the_removed_secrets_tokens() {
    const NEW: &str = "the-new-secret-9876543210";
    let new_hash = gatehouse::crypto::hash_secret(NEW).expect("hash");
    let old_hash = service_hash();
    // web and svc list `hashes`; everyone else keeps the old secret.
    let with = |hashes: &str| {
        clients(old_hash, "")
            .replacen(
                &format!("id = \"web\"\nsecret_hash = \"{old_hash}\""),
                &format!("id = \"web\"\nsecret_hash = {hashes}"),
                1,
            )
            .replacen(
                &format!("id = \"svc\"\nsecret_hash = \"{old_hash}\""),
                &format!("id = \"svc\"\nsecret_hash = {hashes}"),
                1,
            )
    };
    let both = with(&format!("[\"{new_hash}\", \"{old_hash}\"]"));
    let new_only = with(&format!("[\"{new_hash}\"]"));
    let server = TestServer::start(&clients(old_hash, "")).await;
    let cc_old = service_token(&server, "svc").await;
    let (refresh_old, access_old) = pair(&web_tokens(&server).await);
    let (refresh_old2, _) = pair(&web_tokens(&server).await);

    // Step 1: the new hash goes in front. Nothing ends, and both secrets work.
    reload_to(&server, &both, 2).await;
    for token in [&cc_old, &access_old, &refresh_old, &refresh_old2] {
        assert_eq!(introspect(&server, "gateway", token).await["active"], true);
    }
    assert_eq!(userinfo_status(&server, &access_old).await, 200);
    for secret in [SERVICE_SECRET, NEW] {
        assert_eq!(server.client_credentials("svc", secret, &[]).await.0, 200);
    }
    // The service, redeployed with the new secret, refreshes a token of the old one:
    // what it gets is the new secret's.
    let (status, body) = refresh_with(&server, NEW, &refresh_old).await;
    assert_eq!(status, 200, "{body}");
    let (refresh_new, access_new) = pair(&body);
    let (refresh_new2, _) = pair(&web_tokens_with(&server, NEW).await);
    let (status, body) = server.client_credentials("svc", NEW, &[]).await;
    assert_eq!(status, 200, "{body}");
    let cc_new = body["access_token"].as_str().expect("token").to_owned();
    // An old instance still refreshes with the old secret while it is listed.
    let (status, body) = refresh_with(&server, SERVICE_SECRET, &refresh_old2).await;
    assert_eq!(status, 200, "{body}");
    let (refresh_old3, access_old3) = pair(&body);

    // Step 2: the old hash is removed. Its tokens end; the new secret's stand.
    reload_to(&server, &new_only, 3).await;
    for (token, what) in [
        (&cc_old, "client credentials token of the old secret"),
        (&access_old, "access token of the old secret"),
        (&access_old3, "access token refreshed with the old secret"),
        (&refresh_old3, "refresh token of the old secret"),
    ] {
        assert_eq!(
            introspect(&server, "gateway", token).await["active"],
            false,
            "{what}"
        );
    }
    assert_eq!(userinfo_status(&server, &access_old).await, 401);
    let (status, body) = refresh_with(&server, NEW, &refresh_old3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        server
            .client_credentials("svc", SERVICE_SECRET, &[])
            .await
            .0,
        401
    );
    for token in [&cc_new, &access_new, &refresh_new] {
        assert_eq!(introspect(&server, "gateway", token).await["active"], true);
    }
    assert_eq!(userinfo_status(&server, &access_new).await, 200);
    let (status, body) = refresh_with(&server, NEW, &refresh_new2).await;
    assert_eq!(status, 200, "{body}");

    // Listing the old hash again revives none of its tokens; new ones stand.
    server.clock().advance(Duration::from_secs(1));
    reload_to(&server, &both, 4).await;
    for token in [&cc_old, &access_old, &access_old3, &refresh_old3] {
        assert_eq!(introspect(&server, "gateway", token).await["active"], false);
    }
    let (status, body) = refresh_with(&server, SERVICE_SECRET, &refresh_old3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let fresh = service_token(&server, "svc").await;
    assert_eq!(introspect(&server, "gateway", &fresh).await["active"], true);
    assert_eq!(
        introspect(&server, "gateway", &cc_new).await["active"],
        true
    );
}

#[tokio::test]
async fn signing_key_rotation_through_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["old.pem", "new.pem"] {
        let (_, pem) = gatehouse::jwt::keys::SigningKey::generate(
            gatehouse::config::file::Algorithm::ES256,
            None,
        )
        .expect("key");
        std::fs::write(dir.path().join(name), pem).expect("write");
    }
    let with_keys = |keys: &str| {
        format!(
            "{keys}\n{}",
            clients(service_hash(), "")
                .split_once("\n\n")
                .map(|(_, rest)| rest)
                .unwrap_or_default()
        )
    };
    let head = |keys: &str| {
        format!(
            "issuer = \"{ISSUER}\"\n[server]\nbind = \"127.0.0.1:0\"\n\n{}",
            with_keys(keys)
        )
    };
    let old_only = "[[keys]]\nid = \"old\"\nprivate_key_file = \"old.pem\"\n";
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, head(old_only)).expect("write");
    let server = TestServer::start_at(dir, path).await;
    let kid_of = |token: &str| {
        jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .expect("kid")
    };

    let t1 = service_token(&server, "svc").await;
    assert_eq!(kid_of(&t1), "old");

    // 1. Publish the new key, not yet signing.
    server.rewrite_config(&head(&format!(
        "{old_only}[[keys]]\nid = \"new\"\nprivate_key_file = \"new.pem\"\n"
    )));
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["config_generation"] == 2
        })
        .await
    );
    let jwks: Value = server
        .http
        .get(server.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        kid_of(&service_token(&server, "svc").await),
        "old",
        "still signing with the old key"
    );

    // 2. Switch the active key.
    server.rewrite_config(&head(&format!(
        "{old_only}[[keys]]\nid = \"new\"\nprivate_key_file = \"new.pem\"\nactive = true\n"
    )));
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["config_generation"] == 3
        })
        .await
    );
    let t2 = service_token(&server, "svc").await;
    assert_eq!(kid_of(&t2), "new");
    assert_eq!(
        introspect(&server, "svc", &t1).await["active"],
        true,
        "old tokens stay valid"
    );
    assert_eq!(introspect(&server, "svc", &t2).await["active"], true);

    // 3. Retire the old key (after the longest token lifetime): its tokens end.
    server.rewrite_config(&head(
        "[[keys]]\nid = \"new\"\nprivate_key_file = \"new.pem\"\n",
    ));
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["config_generation"] == 4
        })
        .await
    );
    assert_eq!(introspect(&server, "svc", &t1).await["active"], false);
    assert_eq!(introspect(&server, "svc", &t2).await["active"], true);
}

#[tokio::test]
async fn revoking_a_family_ends_the_access_tokens_it_issued() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let first = web_tokens(&server).await;
    let first_access = first["access_token"].as_str().expect("access").to_owned();
    let first_refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, second) = refresh(&server, "web", &first_refresh).await;
    assert_eq!(status, 200, "{second}");
    let second_access = second["access_token"].as_str().expect("access").to_owned();
    assert_eq!(
        introspect(&server, "gateway", &second_access).await["active"],
        true
    );

    // The rotated token comes back: someone holds a copy, and the family is revoked.
    let (status, _) = refresh(&server, "web", &first_refresh).await;
    assert_eq!(status, 400);
    for access in [&first_access, &second_access] {
        assert_eq!(
            introspect(&server, "gateway", access).await["active"],
            false,
            "an access token of a revoked family"
        );
        assert_eq!(userinfo_status(&server, access).await, 401);
    }

    // Revoking a refresh token at /revoke does the same.
    let third = web_tokens(&server).await;
    let access = third["access_token"].as_str().expect("access");
    let (status, _) = post(
        &server,
        "/revoke",
        ("web", SERVICE_SECRET),
        &[("token", third["refresh_token"].as_str().expect("refresh"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        introspect(&server, "gateway", access).await["active"],
        false
    );
}

#[tokio::test]
async fn a_removed_user_loses_every_token_at_every_endpoint() {
    let server = TestServer::start(&clients(service_hash(), "")).await;
    let tokens = web_tokens(&server).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let without_alice = clients(service_hash(), "").replacen(
        &format!(
            "[[users]]\nid = \"u-alice\"\nusername = \"alice\"\npassword_hash = \"{}\"\n",
            service_hash()
        ),
        "",
        1,
    );
    assert!(!without_alice.contains("alice"));
    reload_to(&server, &without_alice, 2).await;
    assert_eq!(
        introspect(&server, "gateway", &access).await["active"],
        false
    );
    assert_eq!(
        introspect(&server, "gateway", &refresh_token).await["active"],
        false
    );
    assert_eq!(userinfo_status(&server, &access).await, 401);
    let (status, body) = refresh(&server, "web", &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_credentials_token_never_reads_a_user_at_userinfo() {
    // A service allowed openid, whose id is also a user's subject.
    let server = TestServer::start(&clients(
        service_hash(),
        &format!(
            "[[users]]\nid = \"robot\"\nusername = \"robot-user\"\npassword_hash = \"{}\"\n\n[[clients]]\nid = \"robot\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"openid\"]\n",
            service_hash(),
            service_hash()
        ),
    ))
    .await;
    let (status, body) = server
        .client_credentials("robot", SERVICE_SECRET, &[("scope", "openid")])
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access");
    assert_eq!(userinfo_status(&server, token).await, 401);
    // Introspection still knows it as the client's own token.
    let seen = introspect(&server, "gateway", token).await;
    assert_eq!(
        (seen["active"].as_bool(), seen["sub"].as_str()),
        (Some(true), Some("robot"))
    );
}
