//! A service that gets an access token with the client-credentials grant, the way a
//! backend would before calling an API.
//!
//! Start gatehouse on the example config, then:
//!
//!     cargo run --example service
//!
//! Reads GATEHOUSE_URL (default http://127.0.0.1:8080), CLIENT_ID (default demo-service)
//! and CLIENT_SECRET (default demo-service-secret).

use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::var("GATEHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let id = std::env::var("CLIENT_ID").unwrap_or_else(|_| "demo-service".into());
    let secret = std::env::var("CLIENT_SECRET").unwrap_or_else(|_| "demo-service-secret".into());
    let http = reqwest::Client::new();

    // Find the token endpoint by discovery, as any client library would.
    let metadata: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
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
