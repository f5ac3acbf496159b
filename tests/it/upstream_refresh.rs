//! A federated user's refresh tokens answer to the upstream: `cap` (the default) ends
//! the family `max_age` after the upstream login; `revalidate` asks the upstream again
//! once `every` has passed, with the upstream refresh token this family alone holds:
//! a user removed upstream gets `invalid_grant`, an unreachable upstream 503 with the
//! token still good afterwards. Time moves on the injected clocks of both servers.

use crate::support::browser::{Browser, Pkce};
use crate::support::upstream::*;
use crate::support::*;
use std::time::Duration;

const TOKEN_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::test]
async fn cap_ends_the_family_at_max_age_after_the_upstream_login() {
    let port = free_port();
    let upstream = start_upstream(port, &["corp"], "").await;
    let body = provider(
        "corp",
        port,
        "accept = \"rules\"\nrefresh = { max_age = \"2h\" }",
    );
    let downstream = start_downstream(&downstream_config(&body)).await;
    let pkce = Pkce::new("cap");
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let done = login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    let tokens = redeem(&downstream, &done, &pkce).await;
    let mut token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    downstream.clock().advance(Duration::from_secs(3600));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(status, 200, "{body}");
    token = body["refresh_token"].as_str().expect("rotated").to_owned();
    let (_, claims) = downstream
        .verify(body["id_token"].as_str().expect("id_token"), "web")
        .await;
    assert_eq!(claims["sub"], "corp:u-ann");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["corp:staff", "corp:system:masters"])
    );

    downstream.clock().advance(Duration::from_secs(3600));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// Logs ann in at `downstream` through `upstream`: her first refresh token.
async fn refresh_token_of_ann(
    upstream: &TestServer,
    downstream: &TestServer,
    seed: &str,
) -> String {
    let pkce = Pkce::new(seed);
    let (mut down, mut up) = (Browser::new(downstream), Browser::new(upstream));
    let done = login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    redeem(downstream, &done, &pkce).await["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

/// Advances both servers' clocks (the upstream's tokens are judged by its own).
fn advance(a: &TestServer, b: &TestServer, by: Duration) {
    a.clock().advance(by);
    b.clock().advance(by);
}

#[tokio::test]
async fn revalidate_asks_the_upstream_and_ends_the_family_of_a_user_removed_there() {
    let (proxy_port, real_port) = (free_port(), free_port());
    let config = upstream_config(proxy_port, &["corp"], "").replace(
        &format!("bind = \"127.0.0.1:{proxy_port}\""),
        &format!("bind = \"127.0.0.1:{real_port}\""),
    );
    let upstream = TestServer::start(&config).await;
    let proxy = Proxy::start(proxy_port, real_port).await;
    let body = format!(
        "[federation]\ntoken_key = \"{TOKEN_KEY}\"\n{}",
        provider(
            "corp",
            proxy_port,
            "accept = \"rules\"\nrefresh = { mode = \"revalidate\", every = \"1h\" }"
        )
    );
    let downstream = start_downstream(&downstream_config(&body)).await;
    let mut token = refresh_token_of_ann(&upstream, &downstream, "revalidate").await;

    // Within `every`: no upstream call is needed, so even a down upstream is fine.
    proxy.set_down(true);
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(status, 200, "{body}");
    token = body["refresh_token"].as_str().expect("rotated").to_owned();

    // Past `every`, upstream down: 503, and the token is not spent.
    advance(&upstream, &downstream, Duration::from_secs(3601));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let ready = downstream.ready_details().await;
    assert_eq!(
        ready["providers"]["corp"]["status"], "unreachable",
        "{ready}"
    );

    // Back up: the same token refreshes, asking the upstream (which rotates its own).
    proxy.set_down(false);
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(status, 200, "{body}");
    token = body["refresh_token"].as_str().expect("rotated").to_owned();

    // ann is removed upstream; past `every` again the upstream says no: invalid_grant,
    // and the family is gone (its newest token too).
    let without_ann = config.replace(
        "id = \"u-ann\"\nusername = \"ann\"",
        "id = \"u-ann-gone\"\nusername = \"ann-gone\"",
    );
    upstream.rewrite_config(&without_ann);
    upstream.wait_for_generation(2).await;
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        status, 200,
        "within every the upstream is not asked: {body}"
    );
    token = body["refresh_token"].as_str().expect("rotated").to_owned();
    advance(&upstream, &downstream, Duration::from_secs(3601));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// A reload that narrows a provider's rules ends at once what they admitted before
/// (issue 26): the refresh family (without waiting for a revalidation), the browser's
/// session (the next `/authorize` shows the login page, not a code) and the access
/// token (userinfo 401). Rules only widened end nothing.
#[tokio::test]
async fn narrowed_rules_end_what_they_admitted_at_once() {
    let port = free_port();
    let upstream = start_upstream(port, &["corp"], "").await;
    let body = format!(
        "[federation]\ntoken_key = \"{TOKEN_KEY}\"\n{}",
        provider(
            "corp",
            port,
            "accept = \"rules\"\nallowed_email_domains = [\"corp.com\"]\nrefresh = { mode = \"revalidate\", every = \"1h\" }"
        )
    );
    let downstream = start_downstream(&downstream_config(&body)).await;
    let pkce = Pkce::new("rules-now");
    let (mut down, mut up) = (Browser::new(&downstream), Browser::new(&upstream));
    let done = login_through(&mut down, &mut up, "corp", "ann", &pkce, &[]).await;
    let tokens = redeem(&downstream, &done, &pkce).await;
    let token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let text = std::fs::read_to_string(&downstream.config).expect("config");

    // Widened: nothing ends.
    downstream.rewrite_config(&text.replace("[\"corp.com\"]", "[\"corp.com\", \"elsewhere.com\"]"));
    downstream.wait_for_generation(2).await;
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(status, 200, "widened rules end nothing: {body}");
    let token = body["refresh_token"].as_str().expect("rotated").to_owned();
    let access = body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(userinfo_status(&downstream, &access).await, 200);
    let again = down
        .authorize(&web_request(&Pkce::new("rules-again"), &[]))
        .await;
    assert_eq!(
        again.status, 303,
        "the session still signs ann in: {}",
        again.body
    );

    // Narrowed (corp.com no longer allowed): the family, the session and the access
    // token end at once, before any revalidation is due.
    downstream.clock().advance(Duration::from_secs(1));
    downstream.rewrite_config(&text.replace("[\"corp.com\"]", "[\"elsewhere.com\"]"));
    downstream.wait_for_generation(3).await;
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(userinfo_status(&downstream, &access).await, 401);
    let page = down
        .authorize(&web_request(&Pkce::new("rules-after"), &[]))
        .await;
    assert_eq!(
        page.status, 200,
        "the login page, not a code: {:?}",
        page.location
    );
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
}

/// The same round trip with the downstream on a real Redis store: the pending upstream
/// login (state, nonce, PKCE verifier), the federated identity and the sealed upstream
/// token live in Redis, and revalidation still works from what came back out of it.
#[tokio::test]
async fn a_federated_family_kept_in_redis_is_revalidated_and_ended() {
    let Some(redis) = crate::support::redis::RedisServer::start("a_federated_family_kept_in_redis")
    else {
        return;
    };
    let port = free_port();
    let upstream = start_upstream(port, &["corp"], "").await;
    let up_config = std::fs::read_to_string(&upstream.config).expect("config");
    let body = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"federated-test:\"\n[[keys]]\nprivate_key_file = \"signing.pem\"\n[federation]\ntoken_key = \"{TOKEN_KEY}\"\n{}",
        redis.url(),
        provider(
            "corp",
            port,
            "accept = \"rules\"\nrefresh = { mode = \"revalidate\", every = \"1h\" }"
        )
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("upstream-secret"), PASSWORD).expect("secret");
    write_signing_key(dir.path());
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, downstream_config(&body)).expect("config");
    let downstream = TestServer::start_at(dir, path).await;
    let ready = downstream.ready_details().await;
    assert!(
        ready["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("redis://")),
        "the downstream keeps its state in Redis: {ready}"
    );

    let token = refresh_token_of_ann(&upstream, &downstream, "redis").await;
    advance(&upstream, &downstream, Duration::from_secs(3601));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        status, 200,
        "revalidated with the token out of Redis: {body}"
    );
    let (_, claims) = downstream
        .verify(body["id_token"].as_str().expect("id_token"), "web")
        .await;
    assert_eq!(claims["sub"], "corp:u-ann");
    let token = body["refresh_token"].as_str().expect("rotated").to_owned();

    upstream.rewrite_config(&up_config.replace(
        "id = \"u-ann\"\nusername = \"ann\"",
        "id = \"u-ann-gone\"\nusername = \"ann-gone\"",
    ));
    upstream.wait_for_generation(2).await;
    advance(&upstream, &downstream, Duration::from_secs(3601));
    let (status, body) = refresh(&downstream, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the upstream said no: {body}"
    );
}
