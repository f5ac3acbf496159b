//! Discovery documents, the JWKS, and signing with each supported key type.

use crate::support::*;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

#[tokio::test]
async fn discovery_lists_what_is_implemented() {
    let server = TestServer::start(&service_config()).await;
    let get = |path: &'static str| {
        let url = server.url(path);
        let http = server.http.clone();
        async move {
            let r = http.get(url).send().await.expect("request");
            assert_eq!(r.status(), 200, "{path}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap_or_default()
                    .starts_with("application/json")
            );
            r.json::<Value>().await.expect("json")
        }
    };
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let oidc = get("/.well-known/openid-configuration").await;
    assert_eq!(oauth, oidc);
    assert_eq!(oauth["issuer"], ISSUER);
    assert_eq!(oauth["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(oauth["jwks_uri"], format!("{ISSUER}/jwks"));
    assert_eq!(
        oauth["authorization_endpoint"],
        format!("{ISSUER}/authorize")
    );
    assert_eq!(oauth["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(oauth["end_session_endpoint"], format!("{ISSUER}/logout"));
    assert_eq!(
        oauth["introspection_endpoint"],
        format!("{ISSUER}/introspect")
    );
    assert_eq!(oauth["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        oauth["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        oauth["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oauth["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        oauth["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        oauth["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        oauth["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        oauth["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        oauth["scopes_supported"],
        serde_json::json!([
            "openid",
            "profile",
            "email",
            "offline_access",
            "invoices:read",
            "invoices:write"
        ])
    );

    let jwks = get("/jwks").await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "no [[keys]]: one ephemeral key");
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        assert!(key["kid"].is_string());
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
}

#[tokio::test]
async fn keys_from_keygen_sign_verifiable_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (alg, file) in [
        ("EdDSA", "ed.pem"),
        ("RS256", "rsa.pem"),
        ("ES256", "ec.pem"),
    ] {
        let out = Command::new(BIN)
            .args(["keygen", "--algorithm", alg, "--out"])
            .arg(dir.path().join(file))
            .output()
            .expect("keygen runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // keygen refuses to overwrite a key.
    let again = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(dir.path().join("ec.pem"))
        .output()
        .expect("runs");
    assert!(!again.status.success());

    let keys = |first: &str, second: &str| {
        format!(
            "[[keys]]\nalgorithm = \"{first}\"\nprivate_key_file = \"{}\"\n\n[[keys]]\nid = \"second\"\nalgorithm = \"{second}\"\nprivate_key_file = \"{}\"\n",
            file_of(first),
            file_of(second)
        )
    };
    fn file_of(alg: &str) -> &'static str {
        match alg {
            "EdDSA" => "ed.pem",
            "RS256" => "rsa.pem",
            _ => "ec.pem",
        }
    }
    let body = format!(
        "{}\n[[clients]]\nid = \"svc\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        keys("EdDSA", "RS256"),
        service_hash()
    );
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config_with(&body)).expect("write");
    let server = TestServer::start_at(dir, path).await;

    let jwks: JwkSet = server
        .http
        .get(server.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks.keys.len(), 2, "every configured key is published");
    let (status, body) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200);
    let (header, _) = verify_with(&jwks, body["access_token"].as_str().expect("token"), "svc");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::EdDSA,
        "the first key signs"
    );
    assert_ne!(header.kid.as_deref(), Some("second"));

    // Switch the order: RS256 signs now, and the token verifies too.
    let body = format!(
        "{}\n[[clients]]\nid = \"svc\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        keys("RS256", "ES256"),
        service_hash()
    );
    server.rewrite_config(&config_with(&body));
    let switched = eventually(std::time::Duration::from_secs(10), || async {
        let (_, body) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        jsonwebtoken::decode_header(&token).is_ok_and(|h| h.alg == jsonwebtoken::Algorithm::RS256)
    })
    .await;
    assert!(switched, "the reload switched the signing key");
    let jwks: JwkSet = server
        .http
        .get(server.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let (_, body) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    let (header, _) = verify_with(&jwks, body["access_token"].as_str().expect("token"), "svc");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
}

#[test]
fn hash_secret_reads_stdin_and_generate_prints_a_usable_pair() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("hash-secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hunter2\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        gatehouse::crypto::verify_phc(hash.trim(), "hunter2"),
        "{hash}"
    );

    let out = Command::new(BIN)
        .args(["hash-secret", "--generate"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("secret line");
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("secret_hash: "))
        .expect("hash line");
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert!(gatehouse::crypto::verify_phc(hash, secret));
}
