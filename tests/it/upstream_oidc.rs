//! Upstream login through a second, real gatehouse as the OpenID provider: who the user
//! becomes (rules: `"<provider>:<sub>"` with prefixed groups; linked: the static user;
//! `accept = "linked"` refusing the unlinked; email domains with and without
//! `email_verified`), `idp_hint`, a client's `providers`, `prompt=login` passed up,
//! and every check of the callback (wrong or missing `iss`, a replayed, foreign or
//! mixed-up `state`).


use crate::support::browser::{Browser, Pkce};
use crate::support::upstream::*;
use crate::support::*;

/// The upstream on a free port, and the downstream with providers `corp` (rules,
/// corp.com emails), `staff` (linked only) and `loose` (rules, corp.com, trusting
/// unverified emails); alice is linked to ann's upstream id through `staff`.
async fn servers() -> (TestServer, TestServer, u16) {
    let port = free_port();
    let upstream = start_upstream(port, &["corp", "staff", "loose"], "").await;
    let body = format!(
        "{}{}{}\n[[users]]\nid = \"u-alice\"\nusername = \"alice\"\ngroups = [\"admins\"]\nname = \"Alice Linked\"\nlinks = [{{ provider = \"staff\", subject = \"u-ann\" }}]\n",
        provider(
            "corp",
            port,
            "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]"
        ),
        provider("staff", port, "accept = \"linked\""),
        provider(
            "loose",
            port,
            "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]\ntrust_email = true"
        ),
    );
    let downstream = start_downstream(&downstream_config(&body)).await;
    (upstream, downstream, port)
}

#[tokio::test]
async fn a_rules_login_gets_a_prefixed_subject_and_groups() {
    let (upstream, downstream, port) = servers().await;
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let pkce = Pkce::new("rules");

    let page = down.authorize(&web_request(&pkce, &[])).await;
    assert!(
        page.body.contains("Sign in with Corp corp"),
        "{}",
        page.body
    );
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains(&format!(
            "form-action 'self' https://web.example.com http://127.0.0.1:{port}"
        )),
        "{csp}"
    );
    let to_upstream = click_provider(&mut down, "corp").await;
    let location = to_upstream.location.clone().expect("location");
    assert!(
        location.starts_with(&format!("http://127.0.0.1:{port}/authorize?")),
        "{location}"
    );
    let sent = to_upstream.redirect_params();
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(
        sent["redirect_uri"],
        format!("{ISSUER}/login/callback/corp")
    );
    assert!(
        sent["state"].len() >= 40 && sent["nonce"].len() >= 20,
        "{sent:?}"
    );
    assert!(!sent.contains_key("prompt"));

    let back = sign_in_upstream(&mut up, &to_upstream, "ann").await;
    assert_eq!(
        back.redirect_params()["iss"],
        format!("http://127.0.0.1:{port}")
    );
    let done = at_callback(
        &mut down,
        &path_of(back.location.as_deref().expect("location")),
    )
    .await;
    let tokens = redeem(&downstream, &done, &pkce).await;
    let (_, claims) = downstream
        .verify(tokens["id_token"].as_str().expect("id_token"), "web")
        .await;
    assert_eq!(claims["sub"], "corp:u-ann");
    assert_eq!(claims["nonce"], "client-nonce");
    assert_eq!(claims["email"], "ann@corp.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ann Upstream");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["corp:staff", "corp:system:masters"])
    );

    // The access token works at userinfo, and the provider shows as reachable.
    let userinfo: serde_json::Value = downstream
        .http
        .get(downstream.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(userinfo["sub"], "corp:u-ann");
    let ready = downstream.ready_details().await;
    assert_eq!(ready["providers"]["corp"]["status"], "ok", "{ready}");
    assert_eq!(
        ready["providers"]["staff"]["status"], "not contacted yet",
        "{ready}"
    );
    assert!(
        downstream
            .metrics()
            .await
            .contains("gatehouse_upstream_logins_total{provider=\"corp\",result=\"success\"}")
    );
}

#[tokio::test]
async fn a_linked_user_becomes_the_static_user_and_linked_refuses_others() {
    let (upstream, downstream, _) = servers().await;
    let pkce = Pkce::new("linked");
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let done = login_through(&mut down, &mut up, "staff", "ann", &pkce, &[]).await;
    let tokens = redeem(&downstream, &done, &pkce).await;
    let (_, claims) = downstream
        .verify(tokens["id_token"].as_str().expect("id_token"), "web")
        .await;
    assert_eq!(claims["sub"], "u-alice");
    assert_eq!(claims["name"], "Alice Linked");
    assert_eq!(claims["groups"], serde_json::json!(["admins"]));

    // bob is not linked: accept = "linked" turns him away, back at the login page.
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let refused = login_through(&mut down, &mut up, "staff", "bob", &pkce, &[]).await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("not linked to a user here"),
        "{}",
        refused.body
    );

    // alice has no password: the password form never lets her in.
    let mut browser = Browser::new(&downstream);
    browser.authorize(&web_request(&pkce, &[])).await;
    let seen = browser.login("alice", PASSWORD).await;
    assert!(
        seen.body.contains("Incorrect username or password"),
        "{}",
        seen.body
    );
}

#[tokio::test]
async fn email_domains_count_only_verified_emails_unless_trusted() {
    let (upstream, downstream, _) = servers().await;
    let pkce = Pkce::new("domains");
    for (provider, user, admitted) in [
        ("corp", "bob", false), // corp.com, but not verified
        ("corp", "eve", false), // verified, another domain
        ("loose", "bob", true), // trust_email
    ] {
        let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
        let seen = login_through(&mut down, &mut up, provider, user, &pkce, &[]).await;
        if admitted {
            let tokens = redeem(&downstream, &seen, &pkce).await;
            let (_, claims) = downstream
                .verify(tokens["id_token"].as_str().expect("id_token"), "web")
                .await;
            assert_eq!(claims["sub"], format!("{provider}:u-{user}"));
            assert_eq!(claims["email_verified"], true, "trusted: {claims}");
        } else {
            assert_eq!(seen.status, 200, "{provider} {user}");
            assert!(
                seen.body.contains("email address is not allowed"),
                "{}",
                seen.body
            );
        }
    }
}

#[tokio::test]
async fn idp_hint_skips_the_page_and_clients_may_restrict_providers() {
    let (upstream, downstream, port) = servers().await;
    let pkce = Pkce::new("hint");
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let to_upstream = down
        .authorize(&web_request(&pkce, &[("idp_hint", "corp")]))
        .await;
    assert_eq!(to_upstream.status, 303, "{}", to_upstream.body);
    assert!(
        to_upstream
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(&format!("http://127.0.0.1:{port}/authorize")))
    );
    let back = sign_in_upstream(&mut up, &to_upstream, "ann").await;
    let done = at_callback(
        &mut down,
        &path_of(back.location.as_deref().expect("location")),
    )
    .await;
    assert_eq!(
        redeem(&downstream, &done, &pkce).await["token_type"],
        "Bearer"
    );

    // An unknown hint is ignored: the login page.
    let mut other = Browser::new(&downstream);
    let page = other
        .authorize(&web_request(&pkce, &[("idp_hint", "nope")]))
        .await;
    assert_eq!(page.status, 200);

    // pw-only lists no providers: no button, and a crafted post is refused.
    let mut browser = Browser::new(&downstream);
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "pw-only"),
            ("redirect_uri", "https://pw.example.com/cb"),
            ("scope", "openid"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("idp_hint", "corp"),
        ])
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Sign in with"), "{}", page.body);
    let seen = browser
        .submit("/login/upstream", &[("provider", "corp")])
        .await;
    assert_eq!(seen.status, 400);
}

#[tokio::test]
async fn prompt_login_is_passed_up_and_honoured() {
    let (upstream, downstream, _) = servers().await;
    let pkce = Pkce::new("prompt");
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let first = login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    assert_eq!(first.status, 303);
    // Later, the client asks for a fresh login: the upstream is asked for one too, and
    // shows its login form although its session is live.
    let page = down
        .authorize(&web_request(&pkce, &[("prompt", "login")]))
        .await;
    assert_eq!(page.status, 200);
    let to_upstream = click_provider(&mut down, "corp").await;
    assert_eq!(to_upstream.redirect_params()["prompt"], "login");
    let at_upstream = up
        .get(&path_of(to_upstream.location.as_deref().expect("location")))
        .await;
    assert!(
        at_upstream.body.contains("name=\"password\""),
        "{}",
        at_upstream.body
    );
    let back = up.login("ann", PASSWORD).await;
    let done = at_callback(
        &mut down,
        &path_of(back.location.as_deref().expect("location")),
    )
    .await;
    let tokens = redeem(&downstream, &done, &pkce).await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn the_callback_refuses_a_wrong_or_missing_iss_and_replayed_foreign_or_mixed_up_state() {
    let (upstream, downstream, port) = servers().await;
    let pkce = Pkce::new("callback");
    let start = async |down: &mut Browser<'_>, up: &mut Browser<'_>, provider: &str| {
        down.authorize(&web_request(&pkce, &[])).await;
        let to_upstream = click_provider(down, provider).await;
        let back = sign_in_upstream(up, &to_upstream, "ann").await;
        path_of(back.location.as_deref().expect("location"))
    };
    let own_iss = format!("iss=http%3A%2F%2F127.0.0.1%3A{port}");

    // A response naming another issuer (a mix-up), or none although the upstream
    // advertises it: refused.
    for replacement in ["iss=https%3A%2F%2Fevil.example.com", "x=y"] {
        let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
        let callback = start(&mut down, &mut up, "corp").await;
        assert!(callback.contains(&own_iss), "{callback}");
        let seen = down.get(&callback.replace(&own_iss, replacement)).await;
        assert_eq!(seen.status, 403, "{replacement}: {}", seen.body);
    }

    // The right response, replayed: the second use is refused.
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let callback = start(&mut down, &mut up, "corp").await;
    // Another browser with this browser's response: refused, and it does not spend it.
    let mut stranger = Browser::new(&downstream);
    assert_eq!(stranger.get(&callback).await.status, 403);
    // The same response at another provider's callback: refused.
    let mixed = callback.replace("/login/callback/corp", "/login/callback/staff");
    assert_eq!(down.get(&mixed).await.status, 403);
    let first = at_callback(&mut down, &callback).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(down.get(&callback).await.status, 403);
    // A state never issued.
    let made_up = down.get("/login/callback/corp?code=x&state=made-up").await;
    assert_eq!(made_up.status, 403);
}

#[tokio::test]
async fn an_unreachable_provider_fails_only_its_logins_and_shows_in_readyz() {
    let dead = free_port();
    let downstream = start_downstream(&downstream_config(&provider(
        "corp",
        dead,
        "accept = \"rules\"",
    )))
    .await;
    let pkce = Pkce::new("dead");
    let mut down = Browser::new(&downstream);
    let page = down.authorize(&web_request(&pkce, &[])).await;
    assert_eq!(page.status, 200, "the login page is served");
    let seen = down
        .submit("/login/upstream", &[("provider", "corp")])
        .await;
    assert_eq!(seen.status, 503, "{}", seen.body);
    assert!(seen.body.contains("cannot be reached"), "{}", seen.body);
    let ready = downstream.ready_details().await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["providers"]["corp"]["status"], "unreachable",
        "{ready}"
    );
    // A reload does not contact it either.
    let text = std::fs::read_to_string(&downstream.config).expect("config");
    downstream.rewrite_config(&text.replace("name = \"Corp corp\"", "name = \"Corp renamed\""));
    downstream.wait_for_generation(2).await;
}

#[tokio::test]
async fn keys_are_fetched_again_for_an_unknown_kid_at_most_once_a_minute() {
    let port = free_port();
    let (dir, path) = {
        let dir = tempfile::tempdir().expect("tempdir");
        for kid in ["k1", "k2"] {
            let (_, pem) = gatehouse::jwt::keys::SigningKey::generate(
                gatehouse::config::file::Algorithm::ES256,
                Some(kid),
            )
            .expect("key");
            std::fs::write(dir.path().join(format!("{kid}.pem")), pem).expect("key file");
        }
        let path = dir.path().join("gatehouse.toml");
        (dir, path)
    };
    let keyed = |kid: &str| {
        upstream_config(port, &["corp"], "").replacen(
            "[[clients]]",
            &format!("[[keys]]\nid = \"{kid}\"\nprivate_key_file = \"{kid}.pem\"\n\n[[clients]]"),
            1,
        )
    };
    std::fs::write(&path, keyed("k1")).expect("config");
    let upstream = TestServer::start_at(dir, path).await;
    let downstream = start_downstream(&downstream_config(&provider(
        "corp",
        port,
        "accept = \"rules\"",
    )))
    .await;
    let pkce = Pkce::new("keys");
    let login = async || {
        let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
        login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await
    };
    assert_eq!(login().await.status, 303, "k1 signs, the keys are cached");

    // The upstream now signs with k2, which the cached keys lack.
    upstream.rewrite_config(&keyed("k2"));
    upstream.wait_for_generation(2).await;
    // Within the minute of the last fetch, the keys are not fetched again: refused.
    assert_eq!(login().await.status, 403);
    // A minute later an unknown kid fetches them once more, and the login goes on.
    downstream
        .clock()
        .advance(std::time::Duration::from_secs(61));
    let done = login().await;
    assert_eq!(done.status, 303, "{}", done.body);
}
