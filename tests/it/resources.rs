//! Resource indicators (RFC 8707) over HTTP: the `aud` and `scope` of tokens for one
//! API or two, refresh downscoping, `invalid_target` at `/authorize` and `/token` (which
//! stores and consumes nothing), client credentials and the device grant with
//! `resource`, and per-client and per-resource lifetimes read on the injected clock.

use crate::support::browser::{Browser, Pkce, text};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const MCP: &str = "https://mcp.example.com/mcp";
const BILLING: &str = "https://billing.example.com/";
const UNUSED: &str = "https://unused.example.com/";
const REDIRECT: &str = "http://127.0.0.1/cb";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn resources_config() -> String {
    config_with(&format!(
        r#"
[[scopes]]
name = "mcp:tools"
[[scopes]]
name = "invoices:read"

[[resources]]
id = "{MCP}"
name = "Tools"
scopes = ["mcp:tools"]
access_token_ttl = "5m"

[[resources]]
id = "{BILLING}"
scopes = ["invoices:read"]

[[resources]]
id = "{UNUSED}"

[[clients]]
id = "cli"
name = "Tool CLI"
public = true
redirect_uris = ["{REDIRECT}"]
scopes = ["openid", "offline_access", "mcp:tools", "invoices:read"]
resources = ["{MCP}", "{BILLING}"]
access_token_ttl = "15m"
refresh_token_ttl = "7d"

[[clients]]
id = "svc"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
scopes = ["invoices:read", "mcp:tools"]
audience = ["legacy"]
resources = ["{BILLING}", "{MCP}"]

[[clients]]
id = "tv"
public = true
grant_types = ["{DEVICE_GRANT}", "refresh_token"]
scopes = ["openid", "mcp:tools"]
resources = ["{MCP}"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

/// The claims of a JWT, read without checking it (the signature is checked elsewhere).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

/// Posts `form` to `/token`; status and JSON.
async fn token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = server
        .http
        .post(server.url("/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Logs alice in at the public client `cli` asking for `resources`, allows the consent
/// (checking the page names each resource), and returns the code and PKCE pair.
async fn code_for(server: &TestServer, resources: &[&str], names: &[&str]) -> (String, Pkce) {
    let mut browser = Browser::new(server);
    let pkce = Pkce::new("resources");
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "cli"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid offline_access mcp:tools invoices:read"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s1"),
    ];
    params.extend(resources.iter().map(|r| ("resource", *r)));
    browser.authorize(&params).await;
    let consent = browser.login("alice", SERVICE_SECRET).await;
    assert_eq!(consent.status, 200, "the consent page: {}", consent.body);
    let shown = text(&consent).replace("&#x2f;", "/");
    for name in names {
        assert!(
            shown.contains(name),
            "the consent page names {name}: {shown}"
        );
    }
    let back = browser.consent("allow").await;
    let params = back.redirect_params();
    assert_eq!(params.get("state").map(String::as_str), Some("s1"));
    (params["code"].clone(), pkce)
}

async fn redeem(server: &TestServer, code: &str, pkce: &Pkce, resources: &[&str]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "cli"),
        ("code", code),
        ("code_verifier", pkce.verifier.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    token(server, &form).await
}

async fn refresh(server: &TestServer, refresh_token: &str, resources: &[&str]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", refresh_token),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    token(server, &form).await
}

fn lifetime(tokens: &Value) -> (Value, u64) {
    let c = claims(tokens["access_token"].as_str().expect("access token"));
    let exp = c["exp"].as_u64().expect("exp") - c["iat"].as_u64().expect("iat");
    (c, exp)
}

#[tokio::test]
async fn a_code_for_one_resource_gives_a_token_for_it_alone() {
    let server = TestServer::start(&resources_config()).await;
    let (code, pkce) = code_for(&server, &[MCP], &["Tools", MCP]).await;
    let (status, tokens) = redeem(&server, &code, &pkce, &[MCP]).await;
    assert_eq!(status, 200, "{tokens}");
    let (c, ttl) = lifetime(&tokens);
    assert_eq!(c["aud"], MCP, "aud is the resource, a string");
    assert_eq!(c["scope"], "openid offline_access mcp:tools");
    assert_eq!(tokens["scope"], "openid offline_access mcp:tools");
    assert_eq!(
        (ttl, tokens["expires_in"].as_u64()),
        (300, Some(300)),
        "the resource's 5m beats the client's 15m"
    );
    server
        .verify(tokens["access_token"].as_str().expect("at"), MCP)
        .await;
    assert_eq!(
        userinfo_status(&server, tokens["access_token"].as_str().expect("at")).await,
        200,
        "openid stays usable at userinfo with a token for a resource"
    );

    // A refresh for a resource the code did not authorize: refused, nothing consumed.
    let rt = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, refused) = refresh(&server, rt, &[BILLING]).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_target")),
        "{refused}"
    );
    let (status, again) = refresh(&server, rt, &[]).await;
    assert_eq!(
        status, 200,
        "the refresh token still works, and it was no reuse: {again}"
    );
    assert_eq!(
        claims(again["access_token"].as_str().expect("at"))["aud"],
        MCP
    );
}

#[tokio::test]
async fn two_resources_then_a_refresh_downscoped_to_each() {
    let server = TestServer::start(&resources_config()).await;
    let (code, pkce) = code_for(&server, &[MCP, BILLING], &["Tools", BILLING]).await;
    let (status, tokens) = redeem(&server, &code, &pkce, &[]).await;
    assert_eq!(status, 200, "{tokens}");
    let (c, ttl) = lifetime(&tokens);
    assert_eq!(c["aud"], json!([MCP, BILLING]));
    assert_eq!(c["scope"], "openid offline_access mcp:tools invoices:read");
    assert_eq!(ttl, 300);

    let rt = tokens["refresh_token"].as_str().expect("rt").to_owned();
    let (status, billing) = refresh(&server, &rt, &[BILLING]).await;
    assert_eq!(status, 200, "{billing}");
    let (c, ttl) = lifetime(&billing);
    assert_eq!(c["aud"], BILLING);
    assert_eq!(c["scope"], "openid offline_access invoices:read");
    assert_eq!(billing["scope"], "openid offline_access invoices:read");
    assert_eq!(ttl, 900, "the client's 15m, no resource asks for less");

    // The rotated refresh token still holds both resources.
    let rt = billing["refresh_token"].as_str().expect("rt").to_owned();
    let (status, mcp) = refresh(&server, &rt, &[MCP]).await;
    assert_eq!(status, 200, "{mcp}");
    assert_eq!(
        claims(mcp["access_token"].as_str().expect("at"))["aud"],
        MCP
    );
    assert_eq!(mcp["scope"], "openid offline_access mcp:tools");

    // Never more than authorized, and a refresh token lives the client's 7 days.
    let rt = mcp["refresh_token"].as_str().expect("rt").to_owned();
    let (status, refused) = refresh(&server, &rt, &[MCP, UNUSED]).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_target"))
    );
    server
        .clock()
        .advance(Duration::from_secs(7 * 24 * 3600 - 10));
    let (status, late) = refresh(&server, &rt, &[]).await;
    assert_eq!(status, 200, "{late}");
    let rt = late["refresh_token"].as_str().expect("rt").to_owned();
    server
        .clock()
        .advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let (status, expired) = refresh(&server, &rt, &[]).await;
    assert_eq!(
        (status, expired["error"].as_str()),
        (400, Some("invalid_grant")),
        "{expired}"
    );
}

#[tokio::test]
async fn invalid_targets_at_authorize_go_back_to_the_client_and_store_nothing() {
    let server = TestServer::start(&resources_config()).await;
    let pkce = Pkce::new("bad-targets");
    let before = server.state().store.sizes().await.expect("sizes");
    for bad in [
        "https://nowhere.example.com/",
        UNUSED,
        "https://mcp.example.com/mcp/",
        "/relative/mcp",
        "https://mcp.example.com/mcp#frag",
    ] {
        let mut browser = Browser::new(&server);
        let seen = browser
            .authorize(&[
                ("response_type", "code"),
                ("client_id", "cli"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", "st"),
                ("resource", MCP),
                ("resource", bad),
            ])
            .await;
        assert_eq!(seen.status, 303, "{bad}: {}", seen.body);
        assert_eq!(seen.redirect_base(), REDIRECT);
        let params = seen.redirect_params();
        assert_eq!(params["error"], "invalid_target", "{bad}");
        assert_eq!(params["state"], "st");
        assert_eq!(params["iss"], ISSUER);
    }
    let after = server.state().store.sizes().await.expect("sizes");
    assert_eq!(before, after, "nothing is stored for a refused request");
}

#[tokio::test]
async fn invalid_targets_at_token_are_400_and_leave_the_code_usable() {
    let server = TestServer::start(&resources_config()).await;
    let (code, pkce) = code_for(&server, &[MCP], &["Tools"]).await;
    for bad in [
        BILLING,
        UNUSED,
        "https://nowhere.example.com/",
        "https://mcp.example.com/mcp/",
        "mcp",
        "https://mcp.example.com/mcp#f",
    ] {
        let (status, refused) = redeem(&server, &code, &pkce, &[bad]).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("invalid_target")),
            "{bad}: {refused}"
        );
    }
    let (status, tokens) = redeem(&server, &code, &pkce, &[MCP]).await;
    assert_eq!(status, 200, "the code survived every refusal: {tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().expect("at"))["aud"],
        MCP
    );
    let (status, _) = redeem(&server, &code, &pkce, &[MCP]).await;
    assert_eq!(status, 400, "and is single-use as ever");
}

#[tokio::test]
async fn client_credentials_with_and_without_resource() {
    let server = TestServer::start(&resources_config()).await;
    let (status, one) = server
        .client_credentials("svc", SERVICE_SECRET, &[("resource", BILLING)])
        .await;
    assert_eq!(status, 200, "{one}");
    let (c, ttl) = lifetime(&one);
    assert_eq!(c["aud"], BILLING);
    assert_eq!(
        c["scope"], "invoices:read",
        "the other resource's scope is dropped"
    );
    assert_eq!(one["scope"], "invoices:read");
    assert_eq!(ttl, 600, "[tokens] access_token_ttl");

    let (status, mcp) = server
        .client_credentials("svc", SERVICE_SECRET, &[("resource", MCP)])
        .await;
    assert_eq!(status, 200, "{mcp}");
    assert_eq!(lifetime(&mcp).1, 300, "the resource's own lifetime");

    let (status, all) = server.client_credentials("svc", SERVICE_SECRET, &[]).await;
    assert_eq!(status, 200, "{all}");
    let c = claims(all["access_token"].as_str().expect("at"));
    assert_eq!(
        c["aud"],
        json!(["legacy", BILLING, MCP]),
        "audience plus the resources granted"
    );
    assert_eq!(c["scope"], "invoices:read mcp:tools");

    // Introspection answers `aud` as issued.
    let r = server
        .http
        .post(server.url("/introspect"))
        .basic_auth("svc", Some(SERVICE_SECRET))
        .form(&[("token", one["access_token"].as_str().expect("at"))])
        .send()
        .await
        .expect("introspect");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (body["active"].clone(), body["aud"].clone()),
        (json!(true), json!(BILLING)),
        "{body}"
    );

    for bad in [UNUSED, "https://billing.example.com", "not a uri"] {
        let (status, refused) = server
            .client_credentials("svc", SERVICE_SECRET, &[("resource", bad)])
            .await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("invalid_target")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_device_grant_carries_its_resource() {
    let server = TestServer::start(&resources_config()).await;
    let r = server
        .http
        .post(server.url("/device_authorization"))
        .form(&[
            ("client_id", "tv"),
            ("scope", "openid mcp:tools"),
            ("resource", UNUSED),
        ])
        .send()
        .await
        .expect("device authorization");
    assert_eq!(r.status().as_u16(), 400);
    let refused: Value = r.json().await.expect("json");
    assert_eq!(refused["error"], "invalid_target");

    let r = server
        .http
        .post(server.url("/device_authorization"))
        .form(&[
            ("client_id", "tv"),
            ("scope", "openid mcp:tools"),
            ("resource", MCP),
        ])
        .send()
        .await
        .expect("device authorization");
    let issued: Value = r.json().await.expect("json");
    let device_code = issued["device_code"].as_str().expect("device_code");
    let user_code = issued["user_code"].as_str().expect("user_code");
    let mut browser = Browser::new(&server);
    browser.get("/device").await;
    browser.submit("/device", &[("user_code", user_code)]).await;
    let confirm = browser
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", SERVICE_SECRET)],
        )
        .await;
    let shown = text(&confirm).replace("&#x2f;", "/");
    assert!(
        shown.contains("Tools") && shown.contains(MCP),
        "the page names the resource: {shown}"
    );
    let done = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    server.clock().advance(Duration::from_secs(5));
    let (status, tokens) = token(
        &server,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", "tv"),
            ("device_code", device_code),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (c, ttl) = lifetime(&tokens);
    assert_eq!(c["aud"], MCP);
    assert_eq!(c["scope"], "openid mcp:tools");
    assert_eq!(ttl, 300);
}
