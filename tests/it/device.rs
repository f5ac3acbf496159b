//! The device authorization grant (RFC 8628): `/device_authorization`, the polls at
//! `/token`, and the user's side at `/device`, over HTTP against the real server.


use crate::support::browser::{Browser, Seen, text};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const ALICE_PASSWORD: &str = SERVICE_SECRET;
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

/// Opens `verification_uri_complete`, confirms the pre-filled code, logs in as alice:
/// the confirmation page.
async fn reach_confirmation(browser: &mut Browser<'_>, issued: &Value) -> Seen {
    let complete = issued["verification_uri_complete"].as_str().expect("uri");
    let path = complete.strip_prefix(ISSUER).expect("on the issuer");
    let entry = browser.get(path).await;
    assert_eq!(entry.status, 200);
    let code = issued["user_code"].as_str().expect("user_code");
    assert!(
        entry.body.contains(&format!("value=\"{code}\"")),
        "pre-filled: {}",
        entry.body
    );
    assert!(
        !entry.body.contains("Allow"),
        "arriving with the code still asks for a click"
    );
    let login = browser.submit("/device", &[("user_code", code)]).await;
    assert_eq!(login.status, 200);
    assert!(text(&login).contains("Sign in"), "{}", text(&login));
    let confirm = browser
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", ALICE_PASSWORD)],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm
}

#[tokio::test]
async fn an_approved_device_code_gives_the_tokens_exactly_once() {
    let (server, issued) = start().await;
    let code = issued["device_code"].as_str().expect("device_code");
    let user_code = issued["user_code"].as_str().expect("user_code");
    let mut browser = Browser::new(&server);
    let confirm = reach_confirmation(&mut browser, &issued).await;
    let shown = text(&confirm);
    assert!(shown.contains("Living Room TV"), "{shown}");
    assert!(shown.contains(user_code), "{shown}");
    assert!(
        shown.contains("openid") && shown.contains("profile"),
        "{shown}"
    );
    assert!(shown.contains("Alice Liddell"), "{shown}");
    assert!(
        confirm.headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(confirm.headers["x-frame-options"], "DENY");
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "authorization_pending")
    );

    let confirm_form: Vec<(String, String)> = ["csrf_token", "user_code"]
        .iter()
        .map(|k| ((*k).to_owned(), browser.hidden(k).expect("hidden field")))
        .collect();
    let done = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(done.status, 200);
    assert!(text(&done).contains("Device connected"), "{}", text(&done));

    server.clock().advance(Duration::from_secs(5));
    let (status, tokens) = poll(&server, "tv", code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    assert!(
        tokens["refresh_token"].is_string(),
        "the client has the refresh grant"
    );
    let (_, claims) = server
        .verify(tokens["id_token"].as_str().expect("id_token"), "tv")
        .await;
    assert_eq!(claims["sub"], "u-alice");
    let (_, access) = server
        .verify(tokens["access_token"].as_str().expect("access"), "tv")
        .await;
    assert_eq!(access["client_id"], "tv");

    server.clock().advance(Duration::from_secs(5));
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "invalid_grant"),
        "a device code gives its tokens once"
    );
    let refreshed = server
        .token_raw(&format!(
            "grant_type=refresh_token&client_id=tv&refresh_token={}",
            tokens["refresh_token"].as_str().expect("refresh")
        ))
        .await;
    assert_eq!(refreshed.status(), 200, "the device's refresh token works");
    let mut deny = confirm_form;
    deny.push(("decision".to_owned(), "deny".to_owned()));
    let again = browser.post_form("/device/decide", &deny).await;
    assert_eq!(again.status, 400, "a decided code cannot be decided again");
    assert!(text(&again).contains("Code expired"), "{}", text(&again));
}

#[tokio::test]
async fn a_denied_device_code_is_access_denied() {
    let (server, issued) = start().await;
    let code = issued["device_code"].as_str().expect("device_code");
    let mut browser = Browser::new(&server);
    reach_confirmation(&mut browser, &issued).await;
    let done = browser
        .submit("/device/decide", &[("decision", "deny")])
        .await;
    assert_eq!(done.status, 200);
    assert!(text(&done).contains("Device denied"), "{}", text(&done));
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "access_denied")
    );
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let server = TestServer::start(&device_config("")).await;
    let r = server
        .http
        .post(server.url("/device_authorization"))
        .basic_auth("box", Some(SERVICE_SECRET))
        .form(&[("scope", "openid")])
        .send()
        .await
        .expect("request");
    let issued: Value = r.json().await.expect("json");
    let mut browser = Browser::new(&server);
    reach_confirmation(&mut browser, &issued).await;
    browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    let r = server
        .http
        .post(server.url("/token"))
        .basic_auth("box", Some(SERVICE_SECRET))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", issued["device_code"].as_str().expect("code")),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.expect("json");
    assert!(tokens["id_token"].is_string(), "openid was granted");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_first_party_client_is_still_confirmed_with_its_code() {
    let server = TestServer::start(&device_config("")).await;
    let (_, issued) = device_authorization(&server, &[("client_id", "own")]).await;
    let code = issued["device_code"].as_str().expect("device_code");
    let mut browser = Browser::new(&server);
    let confirm = reach_confirmation(&mut browser, &issued).await;
    let shown = text(&confirm);
    assert!(shown.contains("Allow this device?"), "{shown}");
    assert!(shown.contains("Our Own CLI"), "{shown}");
    assert!(
        shown.contains(issued["user_code"].as_str().expect("code")),
        "{shown}"
    );
    assert_eq!(
        error(&poll(&server, "own", code).await),
        (400, "authorization_pending"),
        "logging in approved nothing by itself"
    );
    // A second code in the same session: no login, straight to the confirmation.
    let (_, second) = device_authorization(&server, &[("client_id", "own")]).await;
    browser.get("/device").await;
    let code2 = second["user_code"]
        .as_str()
        .expect("code")
        .to_lowercase()
        .replace('-', "");
    let confirm = browser.submit("/device", &[("user_code", &code2)]).await;
    assert!(
        text(&confirm).contains("Allow this device?"),
        "lower case and no dash are the same code: {}",
        text(&confirm)
    );
}

#[tokio::test]
async fn wrong_and_guessed_user_codes_count_toward_the_address_limit() {
    let (server, issued) = start().await;
    let mut browser = Browser::new(&server);
    let entry = browser.get("/device").await;
    assert_eq!(entry.status, 200);
    for guess in ["BCDF-GHJK", "nonsense", "BCDF-GHJ"] {
        browser.get("/device").await;
        let wrong = browser.submit("/device", &[("user_code", guess)]).await;
        assert_eq!(wrong.status, 200);
        assert!(
            text(&wrong).contains("That code is not valid"),
            "{}",
            text(&wrong)
        );
    }
    browser.get("/device").await;
    let fourth = browser
        .submit("/device", &[("user_code", "CDFG-HJKL")])
        .await;
    assert_eq!(fourth.status, 200, "the fourth failure is still answered");
    browser.get("/device").await;
    let code = issued["user_code"].as_str().expect("code");
    let refused = browser.submit("/device", &[("user_code", code)]).await;
    assert_eq!(
        refused.status, 429,
        "past login_max_failures, even the right code waits"
    );
    assert!(refused.headers.contains_key("retry-after"));
    server.clock().advance(Duration::from_secs(15 * 60 + 1));
    let (_, fresh) = device_authorization(&server, &[("client_id", "tv")]).await;
    let code = fresh["user_code"].as_str().expect("code");
    browser.get("/device").await;
    let ok = browser.submit("/device", &[("user_code", code)]).await;
    assert_eq!(ok.status, 200);
    assert!(text(&ok).contains("Sign in"), "{}", text(&ok));
}

#[tokio::test]
async fn device_forms_need_their_csrf_token() {
    let (server, issued) = start().await;
    let mut browser = Browser::new(&server);
    browser.get("/device").await;
    let code = issued["user_code"].as_str().expect("code");
    let forged = browser
        .post_form("/device", &[("user_code".to_owned(), code.to_owned())])
        .await;
    assert_eq!(forged.status, 403);
    reach_confirmation(&mut browser, &issued).await;
    let token = browser.hidden("csrf_token").expect("token");
    // The confirmation's token is bound to its code: it cannot approve another.
    let (_, other) = device_authorization(&server, &[("client_id", "tv")]).await;
    let crossed = browser
        .post_form(
            "/device/decide",
            &[
                ("csrf_token".to_owned(), token),
                (
                    "user_code".to_owned(),
                    other["user_code"].as_str().expect("c").to_owned(),
                ),
                ("decision".to_owned(), "allow".to_owned()),
            ],
        )
        .await;
    assert_eq!(crossed.status, 403);
    let other_code = other["device_code"].as_str().expect("device_code");
    assert_eq!(
        error(&poll(&server, "tv", other_code).await),
        (400, "authorization_pending")
    );
}

#[tokio::test]
async fn an_expired_user_code_cannot_be_approved() {
    let (server, issued) = start().await;
    let mut browser = Browser::new(&server);
    reach_confirmation(&mut browser, &issued).await;
    server.clock().advance(Duration::from_secs(601));
    let late = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(late.status, 400);
    assert!(text(&late).contains("Code expired"), "{}", text(&late));
    let code = issued["device_code"].as_str().expect("device_code");
    assert_eq!(
        error(&poll(&server, "tv", code).await),
        (400, "expired_token")
    );
}
