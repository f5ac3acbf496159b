//! `examples/service.rs` end to end: the built example gets a client-credentials token
//! from the real server on a free port, finding the token endpoint by discovery. It
//! reads the issuer from GATEHOUSE_ISSUER, the name the CLI example reads too; the older
//! GATEHOUSE_URL still works when GATEHOUSE_ISSUER is unset, with a warning.

use crate::support::examples::example_binary;
use crate::support::*;
use serde_json::Value;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

/// A server whose issuer is its real address, with the example's scope and a service.
async fn start() -> (TestServer, String) {
    let (issuer, config) = discoverable_config(&format!(
        r#"
[[scopes]]
name = "invoices:read"

[[clients]]
id = "billing"
secret_hash = "{}"
grant_types = ["client_credentials"]
scopes = ["invoices:read"]
"#,
        service_hash()
    ));
    (TestServer::start(&config).await, issuer)
}

/// Runs the example with only the given environment variables of its own (within 30 s).
async fn run(vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(example_binary("service"));
    command
        .env_remove("GATEHOUSE_ISSUER")
        .env_remove("GATEHOUSE_URL")
        .env("CLIENT_ID", "billing")
        .env("CLIENT_SECRET", SERVICE_SECRET)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the example finishes")
        .expect("the example runs")
}

/// The token answer the example printed, after checking it succeeded.
fn token_answer(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the example prints the token answer")
}

#[tokio::test]
async fn the_service_example_gets_a_token_from_gatehouse_issuer() {
    let (_server, issuer) = start().await;
    // GATEHOUSE_ISSUER is read first: a stale GATEHOUSE_URL beside it is ignored.
    let out = run(&[
        ("GATEHOUSE_ISSUER", &issuer),
        ("GATEHOUSE_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let answer = token_answer(&out);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "invoices:read");
    assert!(
        answer["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("deprecated"), "{stderr}");
}

#[tokio::test]
async fn the_older_gatehouse_url_still_works_with_a_warning() {
    let (_server, issuer) = start().await;
    let out = run(&[("GATEHOUSE_URL", &issuer)]).await;
    assert_eq!(token_answer(&out)["scope"], "invoices:read");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GATEHOUSE_URL is deprecated; set GATEHOUSE_ISSUER"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_service_example_refuses_discovery_naming_another_issuer() {
    let (_server, issuer) = start().await;
    // The same server under another name: its metadata names 127.0.0.1, not localhost.
    let other = issuer.replace("127.0.0.1", "localhost");
    let out = run(&[("GATEHOUSE_ISSUER", &other)]).await;
    assert!(!out.status.success(), "{}", out.status);
    assert!(out.stdout.is_empty(), "no token is printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("names the issuer"), "{stderr}");
}
