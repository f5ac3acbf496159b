//! The MCP authorization end to end (issue 22): the official MCP TypeScript SDK's
//! server and client (`tests/node/mcp_e2e.mjs`, packages from `tests/node`'s
//! package-lock.json) against this server. The SDK client discovers gatehouse through
//! the MCP server's protected resource metadata, logs in as a pre-registered public
//! client with PKCE and `resource`, and calls a tool; the SDK server's bearer-auth
//! verifier checks `aud` and refuses a token issued for another resource.

use crate::support::*;
use std::path::Path;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const OTHER: &str = "https://billing.example.com/";

fn mcp_config(mcp_url: &str) -> (String, String) {
    discoverable_config(&format!(
        r#"
[[scopes]]
name = "mcp:tools"
description = "Use the tools"
[[scopes]]
name = "invoices:read"

[[resources]]
id = "{mcp_url}"
name = "Tools"
scopes = ["mcp:tools"]
access_token_ttl = "5m"

[[resources]]
id = "{OTHER}"
scopes = ["invoices:read"]

[[clients]]
id = "mcp-cli"
name = "MCP client"
public = true
redirect_uris = ["http://127.0.0.1/callback"]
scopes = ["openid", "mcp:tools"]
resources = ["{mcp_url}"]

[[clients]]
id = "billing-job"
secret_hash = "{hash}"
grant_types = ["client_credentials"]
scopes = ["invoices:read"]
resources = ["{OTHER}"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

/// Whether node and the SDK are installed; says what is missing otherwise.
fn node_ready(test: &str) -> bool {
    let node = std::process::Command::new("node").arg("--version").output();
    let sdk = Path::new(ROOT).join("tests/node/node_modules/@modelcontextprotocol/sdk");
    if node.is_err() || !sdk.is_dir() {
        crate::support::skip::missing(
            test,
            "node and the MCP SDK (`cd tests/node && npm ci`, as .ci/run does)",
        );
        return false;
    }
    true
}

#[tokio::test]
async fn the_mcp_sdk_logs_in_with_resource_and_calls_a_tool() {
    if !node_ready("the_mcp_sdk_logs_in_with_resource_and_calls_a_tool") {
        return;
    }
    let mcp_port = free_port();
    let mcp_url = format!("http://127.0.0.1:{mcp_port}/mcp");
    let (issuer, config) = mcp_config(&mcp_url);
    let server = TestServer::start(&config).await;
    let run = tokio::process::Command::new("node")
        .arg("mcp_e2e.mjs")
        .current_dir(Path::new(ROOT).join("tests/node"))
        .env("ISSUER", &issuer)
        .env("MCP_PORT", mcp_port.to_string())
        .env("USERNAME", "alice")
        .env("PASSWORD", SERVICE_SECRET)
        .env("CLIENT_ID", "mcp-cli")
        .env("REDIRECT_URI", "http://127.0.0.1/callback")
        .env("SERVICE_ID", "billing-job")
        .env("SERVICE_SECRET", SERVICE_SECRET)
        .env("OTHER_RESOURCE", OTHER)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the node script finishes within a minute")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP end-to-end script failed:\n{stdout}\n{stderr}"
    );
    for line in [
        format!("authorization request: resource={mcp_url}"),
        format!("token: aud={mcp_url} scope=mcp:tools"),
        "tool result: echo: hello (for mcp-cli)".to_owned(),
        "other resource refused: 401".to_owned(),
        "MCP E2E OK".to_owned(),
    ] {
        assert!(
            stdout.contains(&line),
            "{line:?} not in:\n{stdout}\n{stderr}"
        );
    }
    server.stop().await;
}
