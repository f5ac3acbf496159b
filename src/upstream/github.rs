//! GitHub (and GitHub Enterprise) as a provider: OAuth 2 with PKCE S256 at `web_url`,
//! then its REST API at `api_url` with the access token. Small enough to write with
//! the outbound client. The claims it builds: `sub` the numeric user id (a login can
//! be renamed and reused, the id cannot), `preferred_username` the login, `email` only
//! the primary address and only when GitHub has verified it, and `groups` the user's
//! organizations (`org`) and teams (`org/team`), which the provider's prefix then
//! marks as GitHub's.

use crate::upstream::http::Outbound;
use crate::upstream::oidc::{MALFORMED, Started};
use crate::upstream::provider::Provider;
use crate::upstream::{UpstreamError, Vouched};
use openidconnect::PkceCodeChallenge;
use serde::Deserialize;
use serde_json::{Map, Value, json};

fn unavailable(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}

/// The authorization request: `client_id`, the callback, the scopes, `state` and a
/// PKCE S256 challenge. GitHub has no `nonce`, `prompt` or `max_age`.
pub(crate) fn authorization_url(
    provider: &Provider,
    web_url: &str,
    callback: &str,
    state: &str,
) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url =
        url::Url::parse(&format!("{web_url}/login/oauth/authorize")).unwrap_or_else(|_| {
            url::Url::parse("https://github.com/login/oauth/authorize").expect("a URL")
        });
    url.query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", callback)
        .append_pair("scope", &provider.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .append_pair("allow_signup", "false");
    Started {
        url: url.to_string(),
        nonce: String::new(),
        pkce_verifier: verifier.secret().clone(),
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
}

/// Exchanges the code for an access token (GitHub answers errors with 200 and an
/// `error` field).
pub(crate) async fn exchange(
    http: &Outbound,
    provider: &Provider,
    web_url: &str,
    callback: &str,
    code: &str,
    pkce_verifier: &str,
) -> Result<String, UpstreamError> {
    let (status, body) = http
        .post_form(
            &format!("{web_url}/login/oauth/access_token"),
            &[
                ("client_id", &provider.client_id),
                ("client_secret", &provider.client_secret),
                ("code", code),
                ("redirect_uri", callback),
                ("code_verifier", pkce_verifier),
            ],
        )
        .await
        .map_err(unavailable)?;
    if status >= 500 {
        return Err(unavailable(format!("access_token answered {status}")));
    }
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| UpstreamError::refused(MALFORMED, e))?;
    match (answer.access_token, answer.error) {
        (Some(token), None) if !token.is_empty() => Ok(token),
        (_, error) => Err(UpstreamError::Denied(
            error.unwrap_or_else(|| "no access token".into()),
        )),
    }
}

async fn api<T: for<'de> Deserialize<'de>>(
    http: &Outbound,
    api_url: &str,
    path: &str,
    token: &str,
) -> Result<T, UpstreamError> {
    let bearer = format!("Bearer {token}");
    let (status, body) = http
        .get(
            &format!("{api_url}{path}"),
            &[
                ("authorization", &bearer),
                ("accept", "application/vnd.github+json"),
                ("x-github-api-version", "2022-11-28"),
            ],
        )
        .await
        .map_err(unavailable)?;
    match status {
        200 => serde_json::from_slice(&body).map_err(|e| UpstreamError::refused(MALFORMED, e)),
        401 => Err(UpstreamError::Denied(format!(
            "{path} answered 401: the token was revoked"
        ))),
        _ => Err(unavailable(format!("{path} answered {status}"))),
    }
}

/// Entries per page of a list (GitHub's most).
const PER_PAGE: usize = 100;

/// The most pages of one list read: 1,000 orgs, teams or emails. Past it the list is
/// cut (with a warning): fewer groups, never more.
const MAX_PAGES: usize = 10;

/// Every page of the list at `path`, up to [`MAX_PAGES`]: a page shorter than
/// [`PER_PAGE`] is the last.
async fn list<T: for<'de> Deserialize<'de>>(
    http: &Outbound,
    api_url: &str,
    path: &str,
    token: &str,
) -> Result<Vec<T>, UpstreamError> {
    let mut all = Vec::new();
    for page in 1..=MAX_PAGES {
        let query = format!("{path}?per_page={PER_PAGE}&page={page}");
        let items: Vec<T> = api(http, api_url, &query, token).await?;
        let last = items.len() < PER_PAGE;
        all.extend(items);
        if last {
            return Ok(all);
        }
    }
    tracing::warn!(
        event = "upstream_list_cut",
        path,
        entries = all.len(),
        "a GitHub list is longer than gatehouse reads: the rest is left out"
    );
    Ok(all)
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct GithubOrg {
    login: String,
}

#[derive(Deserialize)]
struct GithubTeam {
    slug: String,
    organization: GithubOrg,
}

/// The user's claims as the REST API gives them, with `token` (kept for a
/// revalidation).
pub(crate) async fn user(
    http: &Outbound,
    api_url: &str,
    token: &str,
) -> Result<Vouched, UpstreamError> {
    let user: GithubUser = api(http, api_url, "/user", token).await?;
    let emails: Vec<GithubEmail> = list(http, api_url, "/user/emails", token).await?;
    let orgs: Vec<GithubOrg> = list(http, api_url, "/user/orgs", token).await?;
    let teams: Vec<GithubTeam> = list(http, api_url, "/user/teams", token).await?;
    Ok(Vouched {
        claims: claims(user, &emails, &orgs, &teams),
        token: Some(token.to_owned()),
        auth_time: None,
    })
}

fn claims(
    user: GithubUser,
    emails: &[GithubEmail],
    orgs: &[GithubOrg],
    teams: &[GithubTeam],
) -> Map<String, Value> {
    let mut groups: Vec<String> = orgs.iter().map(|o| o.login.clone()).collect();
    groups.extend(
        teams
            .iter()
            .map(|t| format!("{}/{}", t.organization.login, t.slug)),
    );
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id.to_string()));
    claims.insert("preferred_username".into(), json!(user.login));
    if let Some(name) = user.name.filter(|n| !n.is_empty()) {
        claims.insert("name".into(), json!(name));
    }
    if let Some(primary) = emails.iter().find(|e| e.primary && e.verified) {
        claims.insert("email".into(), json!(primary.email));
        claims.insert("email_verified".into(), json!(true));
    }
    claims.insert("groups".into(), json!(groups));
    claims
}

#[cfg(test)]
mod tests {
    use crate::upstream::github::*;

    #[test]
    fn only_a_verified_primary_email_and_orgs_and_teams_as_groups() {
        let user = || GithubUser {
            id: 583231,
            login: "octocat".into(),
            name: None,
        };
        let email = |e: &str, primary, verified| GithubEmail {
            email: e.into(),
            primary,
            verified,
        };
        let orgs = [GithubOrg {
            login: "acme".into(),
        }];
        let teams = [GithubTeam {
            slug: "ops".into(),
            organization: GithubOrg {
                login: "acme".into(),
            },
        }];
        let c = claims(
            user(),
            &[
                email("x@evil.com", true, false),
                email("o@acme.com", false, true),
            ],
            &orgs,
            &teams,
        );
        assert_eq!(c["sub"], "583231");
        assert!(c.get("email").is_none(), "{c:?}");
        assert_eq!(c["groups"], json!(["acme", "acme/ops"]));
        let c = claims(user(), &[email("o@acme.com", true, true)], &[], &[]);
        assert_eq!(
            (&c["email"], &c["email_verified"]),
            (&json!("o@acme.com"), &json!(true))
        );
    }
}
