//! A client's `providers` list is enforced where a session is used, not only where the
//! buttons are drawn: a client with `providers = []` (passwords only) never gets a
//! code or a device grant from a session that signed in through a provider.

use crate::support::browser::{Browser, Pkce, text};
use crate::support::upstream::*;
use crate::support::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn pw_only_request<'a>(pkce: &'a Pkce, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "pw-only"),
        ("redirect_uri", "https://pw.example.com/cb"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

#[tokio::test]
async fn a_passwords_only_client_gets_nothing_from_a_provider_session() {
    let port = free_port();
    let upstream = start_upstream(port, &["corp"], "").await;
    let body = format!(
        "{}\n[[clients]]\nid = \"pw-tv\"\npublic = true\ngrant_types = [\"{DEVICE_GRANT}\"]\nscopes = [\"openid\"]\nproviders = []\n",
        provider(
            "corp",
            port,
            "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]"
        )
    );
    let downstream = start_downstream(&downstream_config(&body)).await;
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let pkce = Pkce::new("restricted");
    // ann signs in through corp for web: a session through the provider.
    let done = login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    assert!(done.redirect_params().contains_key("code"), "{}", done.body);

    // The same browser at pw-only: the login page, not a code.
    let page = down.authorize(&pw_only_request(&pkce, &[])).await;
    assert_eq!(page.status, 200, "{:?}", page.location);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let silent = down
        .authorize(&pw_only_request(&pkce, &[("prompt", "none")]))
        .await;
    assert_eq!(silent.status, 303);
    assert_eq!(silent.redirect_params()["error"], "login_required");

    // A device code of pw-tv: the sign-in form, not the confirmation.
    let issued: serde_json::Value = downstream
        .http
        .post(downstream.url("/device_authorization"))
        .form(&[("client_id", "pw-tv")])
        .send()
        .await
        .expect("device_authorization")
        .json()
        .await
        .expect("json");
    let code = issued["user_code"].as_str().expect("user_code");
    down.get("/device").await;
    let seen = down.submit("/device", &[("user_code", code)]).await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("name=\"password\""), "{}", text(&seen));
    assert!(!seen.body.contains("value=\"allow\""), "{}", text(&seen));
    // A crafted decision without a usable session is not taken.
    let crafted = down
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert!(
        crafted.body.contains("name=\"password\""),
        "{}",
        text(&crafted)
    );
    let (status, answer) = {
        let r = downstream
            .http
            .post(downstream.url("/token"))
            .form(&[
                ("grant_type", DEVICE_GRANT),
                ("client_id", "pw-tv"),
                (
                    "device_code",
                    issued["device_code"].as_str().expect("device_code"),
                ),
            ])
            .send()
            .await
            .expect("token");
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.expect("json"),
        )
    };
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("authorization_pending"))
    );
}
