//! Sign-in through GitHub, against a fake GitHub served by the test: PKCE S256 and
//! `state` at authorize, the numeric id as the subject, only a verified primary email
//! (here the primary is unverified, so none), orgs and teams as prefixed groups; and
//! with `revalidate`, a revoked GitHub token ending the family.

use crate::support::browser::{Browser, Pkce};
use crate::support::github::{CLIENT_SECRET, FakeGithub};
use crate::support::upstream::*;
use crate::support::*;
use std::time::Duration;

fn github_provider(port: u16, extra: &str) -> String {
    format!(
        r#"
[federation]
token_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

[[providers]]
id = "gh"
name = "GitHub"
kind = "github"
web_url = "http://127.0.0.1:{port}"
api_url = "http://127.0.0.1:{port}/api"
client_id = "gh-client"
client_secret_file = "github-secret"
accept = "rules"
allowed_groups = ["acme"]
refresh = {{ mode = "revalidate", every = "1h" }}
{extra}
"#
    )
}

async fn downstream(github: &FakeGithub, extra: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("github-secret"), CLIENT_SECRET).expect("secret");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        downstream_config(&github_provider(github.port, extra)),
    )
    .expect("config");
    TestServer::start_at(dir, path).await
}

/// Logs in through the fake GitHub; the downstream's final answer.
async fn login(
    down: &mut Browser<'_>,
    github: &FakeGithub,
    pkce: &Pkce,
) -> crate::support::browser::Seen {
    login_with(down, github, pkce, &[]).await
}

/// [`login`] with `extra` authorization parameters.
async fn login_with(
    down: &mut Browser<'_>,
    github: &FakeGithub,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> crate::support::browser::Seen {
    down.authorize(&web_request(pkce, extra)).await;
    let to_github = click_provider(down, "gh").await;
    let location = to_github.location.clone().expect("location");
    assert!(location.starts_with(&format!(
        "http://127.0.0.1:{}/login/oauth/authorize?",
        github.port
    )));
    // The fake approves at once and redirects back, as GitHub does for an authorized app.
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(&location)
        .send()
        .await
        .expect("authorize");
    let back = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    at_callback(down, &path_of(&back)).await
}

#[tokio::test]
async fn github_login_with_the_numeric_id_verified_email_only_and_prefixed_org_and_team_groups() {
    let github = FakeGithub::start();
    let server = downstream(&github, "").await;
    let pkce = Pkce::new("github");
    let mut down = Browser::new(&server);
    let done = login(&mut down, &github, &pkce).await;
    let sent = github.last_authorize();
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(sent["client_id"], "gh-client");
    assert_eq!(sent["redirect_uri"], format!("{ISSUER}/login/callback/gh"));
    assert_eq!(sent["scope"], "read:user user:email read:org");

    let tokens = redeem(&server, &done, &pkce).await;
    let (_, claims) = server
        .verify(tokens["id_token"].as_str().expect("id_token"), "web")
        .await;
    assert_eq!(claims["sub"], "gh:583231");
    assert_eq!(claims["preferred_username"], "octocat");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["gh:acme", "gh:acme/ops"])
    );
    assert!(
        claims.get("email").is_none(),
        "an unverified primary email is ignored: {claims}"
    );

    // revalidate: the user revokes the app at GitHub; the next check ends the family.
    let token = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    server.clock().advance(Duration::from_secs(3601));
    let (status, body) = refresh(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().expect("rotated").to_owned();
    github.revoke_all();
    server.clock().advance(Duration::from_secs(3601));
    let (status, body) = refresh(&server, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    github.stop().await;
}

#[tokio::test]
async fn github_rules_refuse_users_outside_the_allowed_org() {
    let github = FakeGithub::start();
    let server = downstream(&github, "").await;
    // Only members of another org may come in.
    let text = std::fs::read_to_string(&server.config)
        .expect("config")
        .replace(
            "allowed_groups = [\"acme\"]",
            "allowed_groups = [\"other-org\"]",
        );
    server.rewrite_config(&text);
    server.wait_for_generation(2).await;
    let pkce = Pkce::new("github-refused");
    let mut down = Browser::new(&server);
    let seen = login(&mut down, &github, &pkce).await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("not allowed here"), "{}", seen.body);
    github.stop().await;
}

/// GitHub never says when the user authenticated (no `auth_time`): a request that
/// demands a fresh login (`prompt=login`, `max_age`) cannot be met through it, and a
/// rules user (no password here to fall back on) gets `login_required`, never a code
/// whose login time would be a guess.
#[tokio::test]
async fn github_cannot_prove_a_fresh_login_so_step_up_requests_get_login_required() {
    let github = FakeGithub::start();
    let server = downstream(&github, "").await;
    for (name, extra) in [
        ("prompt", ("prompt", "login")),
        ("max-age", ("max_age", "300")),
    ] {
        let pkce = Pkce::new(&format!("github-step-up-{name}"));
        let mut down = Browser::new(&server);
        let done = login_with(&mut down, &github, &pkce, &[extra]).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.redirect_base(), "https://web.example.com/cb");
        let params = done.redirect_params();
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("login_required"),
            "{params:?}"
        );
        assert_eq!(params["state"], "client-state");
        assert!(!params.contains_key("code"), "{params:?}");
    }
    github.stop().await;
}

/// Orgs and teams are read page after page: a member of many orgs whose allowed org is
/// listed past GitHub's first page (30) still comes in, with that org and team as groups.
#[tokio::test]
async fn github_orgs_and_teams_are_read_past_the_first_page() {
    let github = FakeGithub::start();
    github.set_fillers(150);
    let server = downstream(&github, "").await;
    let pkce = Pkce::new("github-many-orgs");
    let mut down = Browser::new(&server);
    let done = login(&mut down, &github, &pkce).await;
    let tokens = redeem(&server, &done, &pkce).await;
    let (_, claims) = server
        .verify(tokens["id_token"].as_str().expect("id_token"), "web")
        .await;
    let groups = claims["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 302, "150 fillers and acme, orgs and teams");
    for group in ["gh:acme", "gh:acme/ops", "gh:filler-149"] {
        assert!(groups.iter().any(|g| g == group), "{group}");
    }
    github.stop().await;
}

/// An answer that arrived but does not parse is a refusal (the error page, logged as
/// `malformed_answer`), not "provider unavailable" (503).
#[tokio::test]
async fn a_malformed_github_answer_is_a_refusal() {
    let github = FakeGithub::start();
    github.set_malformed(true);
    let server = downstream(&github, "").await;
    let pkce = Pkce::new("github-malformed");
    let mut down = Browser::new(&server);
    let seen = login(&mut down, &github, &pkce).await;
    assert_eq!(seen.status, 403, "{}", seen.body);
    assert!(seen.body.contains("Sign-in failed"), "{}", seen.body);
    github.stop().await;
}
