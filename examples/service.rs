//! A service that gets an access token with the client-credentials grant, the way a
//! backend would before calling an API.
//!
//! Start gatehouse on the example config, then:
//!
//!     cargo run --example service
//!
//! Reads GATEHOUSE_ISSUER (default http://127.0.0.1:8080; the same variable the CLI
//! example reads), CLIENT_ID (default demo-service) and CLIENT_SECRET (default
//! demo-service-secret). GATEHOUSE_URL, the name this example read before, is still
//! taken when GATEHOUSE_ISSUER is unset, with a warning.

use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = issuer();
    let id = std::env::var("CLIENT_ID").unwrap_or_else(|_| "demo-service".into());
    let secret = std::env::var("CLIENT_SECRET").unwrap_or_else(|_| "demo-service-secret".into());
    let http = reqwest::Client::new();

    // Find the token endpoint by discovery, as any client library would, and only
    // from a document naming this very issuer (RFC 8414 3.3).
    let metadata: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if metadata["issuer"].as_str() != Some(issuer.as_str()) {
        anyhow::bail!(
            "the discovery document at {issuer} names the issuer {}, not {issuer}",
            metadata["issuer"]
        );
    }
    let token_endpoint = metadata["token_endpoint"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("discovery has no token_endpoint"))?;

    let response = http
        .post(token_endpoint)
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "invoices:read"),
        ])
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        anyhow::bail!("token request failed ({status}): {body}");
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// The issuer to ask: GATEHOUSE_ISSUER, else the older name GATEHOUSE_URL (with a
/// warning), else the example config's.
fn issuer() -> String {
    if let Ok(issuer) = std::env::var("GATEHOUSE_ISSUER") {
        return issuer;
    }
    if let Ok(url) = std::env::var("GATEHOUSE_URL") {
        eprintln!("warning: GATEHOUSE_URL is deprecated; set GATEHOUSE_ISSUER instead");
        return url;
    }
    "http://127.0.0.1:8080".into()
}
