//! The device authorization grant (RFC 8628): `/device_authorization`, the polls at
//! `/token`, and the user's side at `/device`, over HTTP against the real server.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn device_config(extra: &str) -> String {
    config_with(&format!(
        r#"
[limits]
login_max_failures = 4
pending_per_address = 3

[[clients]]
id = "tv"
name = "Living Room TV"
public = true
grant_types = ["{DEVICE_GRANT}", "refresh_token"]
scopes = ["openid", "profile", "offline_access"]

[[clients]]
id = "box"
name = "Set-top Box"
secret_hash = "{hash}"
grant_types = ["{DEVICE_GRANT}"]
scopes = ["openid"]

[[clients]]
id = "own"
name = "Our Own CLI"
public = true
first_party = true
grant_types = ["{DEVICE_GRANT}"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
name = "Alice Liddell"
{extra}
"#,
        hash = service_hash()
    ))
}

/// `POST /device_authorization` with `form`; status and JSON.
async fn device_authorization(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = server
        .http
        .post(server.url("/device_authorization"))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

/// A poll at `/token` by the public client `client_id`.
async fn poll(server: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    let r = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ])
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

fn error(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"].as_str().unwrap_or_default())
}

async fn start() -> (TestServer, Value) {
    let server = TestServer::start(&device_config("")).await;
    let (status, issued) =
        device_authorization(&server, &[("client_id", "tv"), ("scope", "openid profile")]).await;
    assert_eq!(status, 200, "{issued}");
    (server, issued)
}

#[tokio::test]
async fn device_authorization_answers_rfc_8628_3_2() {
    let (server, issued) = start().await;
    let device_code = issued["device_code"].as_str().expect("device_code");
    assert_eq!(device_code.len(), 43, "256 bits, base64url");
    let user_code = issued["user_code"].as_str().expect("user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(issued["verification_uri"], format!("{ISSUER}/device"));
    assert_eq!(
        issued["verification_uri_complete"],
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(issued["expires_in"], 600);
    assert_eq!(issued["interval"], 5);
    let other = device_authorization(&server, &[("client_id", "tv")])
        .await
        .1;
    assert_ne!(other["device_code"], issued["device_code"]);
    assert_ne!(other["user_code"], issued["user_code"]);
}

#[tokio::test]
async fn device_authorization_checks_client_and_scope() {
    let server = TestServer::start(&device_config(
        r#"
[[clients]]
id = "web"
public = true
redirect_uris = ["https://web.example.com/cb"]
"#,
    ))
    .await;
    let bad_scope = device_authorization(&server, &[("client_id", "tv"), ("scope", "email")]).await;
    assert_eq!(error(&bad_scope), (400, "invalid_scope"));
    let not_allowed = device_authorization(&server, &[("client_id", "web")]).await;
    assert_eq!(error(&not_allowed), (400, "unauthorized_client"));
    let unknown = device_authorization(&server, &[("client_id", "nobody")]).await;
    assert_eq!(error(&unknown), (401, "invalid_client"));
    let no_secret = device_authorization(&server, &[("client_id", "box")]).await;
    assert_eq!(error(&no_secret), (401, "invalid_client"));
    let r = server
        .http
        .post(server.url("/device_authorization"))
        .basic_auth("box", Some(SERVICE_SECRET))
        .form(&[("scope", "openid")])
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        200,
        "a confidential client authenticates as at /token"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn polling_is_pending_then_slowed_down_with_a_growing_interval() {
    let (server, issued) = start().await;
    let code = issued["device_code"].as_str().expect("device_code");
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "authorization_pending")
    );
    let fast = poll(&server, "tv", code).await;
    assert_eq!(error(&fast), (400, "slow_down"));
    assert!(
        fast.1["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("10 seconds")),
        "{}",
        fast.1
    );
    server.clock().advance(Duration::from_secs(9));
    let still_fast = poll(&server, "tv", code).await;
    assert_eq!(error(&still_fast), (400, "slow_down"));
    assert!(
        still_fast.1["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("15 seconds")),
        "the interval grows by 5 s at each poll too fast: {}",
        still_fast.1
    );
    server.clock().advance(Duration::from_secs(15));
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "authorization_pending")
    );
}

#[tokio::test]
async fn an_expired_device_code_is_expired_token() {
    let (server, issued) = start().await;
    let code = issued["device_code"].as_str().expect("device_code");
    server.clock().advance(Duration::from_secs(601));
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "expired_token")
    );
    server.clock().advance(Duration::from_secs(601));
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "invalid_grant"),
        "long gone"
    );
}

#[tokio::test]
async fn another_clients_device_code_is_invalid_grant() {
    let (server, issued) = start().await;
    let code = issued["device_code"].as_str().expect("device_code");
    assert_eq!(
        error(&poll(&server, "own", code).await),
        (400, "invalid_grant")
    );
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "authorization_pending"),
        "another client's poll neither used the code nor counted as the owner's poll"
    );
    assert_eq!(
        error(&poll(&server, "tv", "made-up").await),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn device_codes_per_address_are_capped() {
    let server = TestServer::start(&device_config("")).await;
    for _ in 0..3 {
        assert_eq!(
            device_authorization(&server, &[("client_id", "tv")])
                .await
                .0,
            200
        );
    }
    let refused = device_authorization(&server, &[("client_id", "tv")]).await;
    assert_eq!(error(&refused), (429, "slow_down"));
    server.clock().advance(Duration::from_secs(601));
    assert_eq!(
        device_authorization(&server, &[("client_id", "tv")])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn discovery_lists_the_device_endpoint_and_grant() {
    let server = TestServer::start(&device_config("")).await;
    let doc: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{ISSUER}/device_authorization")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .expect("list")
            .contains(&Value::from(DEVICE_GRANT))
    );
}
