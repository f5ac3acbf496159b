//! `gatehouse revoke`: ends a user's, a client's or one session's tokens on the running
//! server, through its admin listener.

use anyhow::{Context, bail};
use std::path::Path;

/// What `gatehouse revoke` ends: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct RevokeTarget {
    /// A user's id (`sub`): every session of theirs and every token issued from one.
    #[arg(long, allow_hyphen_values = true)]
    user: Option<String>,
    /// A client's id: every token issued to it.
    #[arg(long, allow_hyphen_values = true)]
    client: Option<String>,
    /// A login session's `sid` (from an ID token or a logout token): it and its tokens.
    /// A sid is base64url and may begin with `-`: taken as the value, not a flag.
    #[arg(long, allow_hyphen_values = true)]
    session: Option<String>,
}

/// `gatehouse revoke`: one POST to the admin listener's `/revoke`.
pub(crate) fn revoke(admin: &str, token_file: &Path, target: &RevokeTarget) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?;
    let token = token.trim_end_matches(['\n', '\r']);
    let (kind, id) = match target {
        RevokeTarget { user: Some(id), .. } => ("user", id),
        RevokeTarget {
            client: Some(id), ..
        } => ("client", id),
        RevokeTarget {
            session: Some(id), ..
        } => ("session", id),
        _ => bail!("name one of --user, --client, --session"),
    };
    let url = format!("{}/revoke", admin.trim_end_matches('/'));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (status, body) = runtime
        .block_on(async {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()?
                .post(&url)
                .bearer_auth(token)
                .form(&[(kind, id.as_str())])
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .with_context(|| format!("calling {url}"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    println!("{body}");
    Ok(())
}
