//! The command line of services without secrets (issue 21): `gatehouse keygen
//! --client` makes a key pair whose printed lines a config takes as they are and whose
//! private key authenticates; `gatehouse check` places a private key member in the
//! config or in a key file at its line and column.

use crate::support::*;
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn keygen_for_a_client_writes_a_private_key_and_prints_the_lines_to_commit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("billing.key.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keygen", "--client", "billing", "--out"])
        .arg(&key_file)
        .output()
        .expect("gatehouse keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&key_file)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the private key is its owner's only");
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        !printed.contains("PRIVATE"),
        "only the public half is printed"
    );
    let set: Value = printed
        .lines()
        .find(|l| l.starts_with("{\"keys\""))
        .map(|l| serde_json::from_str(l).expect("a JWK Set"))
        .expect("the JWK Set is printed");
    assert!(set["keys"][0].get("d").is_none(), "{set}");
    let kid = set["keys"][0]["kid"].as_str().expect("a kid").to_owned();
    let lines = &printed[printed.find("[[clients]]").expect("the TOML lines")..];
    let server = TestServer::start(&config_with(lines)).await;
    let now = server.clock().now();
    let claims =
        json!({"iss": "billing", "sub": "billing", "aud": ISSUER, "exp": now + 60, "jti": "k"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid);
    let pem = std::fs::read(&key_file).expect("read the key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("an EC key");
    let assertion = jsonwebtoken::encode(&header, &claims, &key).expect("signed");
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status().as_u16(),
        200,
        "the printed lines and the written key work together"
    );
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keygen", "--client", "billing", "--out"])
        .arg(&key_file)
        .output()
        .expect("gatehouse keygen");
    assert!(
        !again.status.success(),
        "an existing key file is never overwritten"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_private_key_in_the_config_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = gatehouse::jwt::keys::SigningKey::generate(
        gatehouse::config::file::Algorithm::ES256,
        Some("k"),
    )
    .expect("a key");
    let mut private = key.public_jwk().clone();
    private["d"] = json!("c2VjcmV0");
    let set = serde_json::to_string_pretty(&json!({ "keys": [private] })).expect("json");
    std::fs::write(dir.path().join("svc.jwks.json"), &set).expect("write");
    let config = config_with(
        "[[clients]]\nid = \"svc\"\ngrant_types = [\"client_credentials\"]\njwks_file = \"svc.jwks.json\"\n",
    );
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("check")
        .arg(&path)
        .output()
        .expect("gatehouse check");
    let stderr =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    let line = set
        .lines()
        .position(|l| l.contains("\"d\""))
        .expect("d is written")
        + 1;
    let at = format!("svc.jwks.json:{line}:");
    assert!(
        stderr.contains(&at) && stderr.contains("private key member"),
        "{at} in {stderr}"
    );

    let inline = config_with(
        "[[clients]]\nid = \"svc\"\ngrant_types = [\"client_credentials\"]\njwks = { keys = [ { kty = \"OKP\", crv = \"Ed25519\", x = \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\", d = \"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\" } ] }\n",
    );
    let jwks_line = inline
        .lines()
        .position(|l| l.starts_with("jwks ="))
        .expect("jwks")
        + 1;
    std::fs::write(&path, inline).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("check")
        .arg(&path)
        .output()
        .expect("gatehouse check");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let at = format!("gatehouse.toml:{jwks_line}:");
    assert!(
        text.contains(&at) && text.contains("clients[0].jwks.keys[0].d"),
        "{at} in {text}"
    );
}
