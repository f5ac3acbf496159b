//! The embedded store (`[store] path`) survives a crash: the real `gatehouse serve`
//! binary, killed with SIGKILL while refresh rotations and code redemptions are in
//! flight, started again on the same file. Sessions, refresh tokens, revocations,
//! denied access tokens and not-before records are all there; nothing used or revoked
//! is active again; no code is usable twice. And a second process on the same file is
//! refused with a clear error.

use crate::replicas::{Visitor, active, code_of, config_on, field, post, redeem, refresh, sign_in};
use crate::support::browser::Pkce;
use crate::support::replica::Replica;
use crate::support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The clients of `replicas.rs` (`web`, `svc`) and `gone`, a service whose removal
/// writes a not-before record (left out when `with_gone` is false).
fn config(with_gone: bool) -> String {
    let gone = if with_gone {
        format!(
            "[[clients]]\nid = \"gone\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
            service_hash()
        )
    } else {
        String::new()
    };
    format!("{}\n{gone}", config_on("[store]\npath = \"state.redb\"\n"))
}

/// Rewrites `name`'s config in `dir` in place for the running `replica` (its port
/// kept), for the hot reload to pick up.
fn rewrite(dir: &std::path::Path, name: &str, replica: &Replica, config: &str) {
    replace_file(
        &dir.join(format!("{name}.toml")),
        &replica.config_for(config),
    );
}

/// Refresh tokens answered one after the other on one family: every one but the last
/// has been used.
type Chain = Arc<Mutex<Vec<String>>>;

/// Rotates `chain`'s refresh token on `at` until a request fails (the server died).
async fn rotate_until_killed(at: Arc<Replica>, chain: Chain) {
    loop {
        let last = chain
            .lock()
            .expect("chain")
            .last()
            .cloned()
            .expect("a token");
        let at = at.clone();
        let Some((status, body)) = answered(async move { refresh(&at, &last).await }).await else {
            return;
        };
        if status != 200 {
            return;
        }
        chain
            .lock()
            .expect("chain")
            .push(field(&body, "refresh_token"));
    }
}

/// The answer of a request to a server that may die under it: `None` when the
/// request failed (the helpers panic on a dropped connection: their task ends) or hung.
async fn answered<T: Send + 'static>(
    request: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::time::timeout(Duration::from_secs(5), tokio::spawn(request)).await {
        Ok(Ok(answer)) => Some(answer),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_restarts_on_its_file_with_nothing_lost_and_nothing_revived() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let a = Arc::new(Replica::spawn(dir.path(), "gh", &config(true)));
    let mut visitor = Visitor::new();
    let pkce = Pkce::new("file-store");

    // A session, and a family whose refresh token stays unused until after the crash.
    let code = sign_in(&mut visitor, &a, &a, &pkce).await;
    let (status, kept) = redeem(&a, &code, &pkce).await;
    assert_eq!(status, 200, "{kept}");
    let kept_refresh = field(&kept, "refresh_token");
    // An access token revoked (its jti denied) and a family revoked.
    let (status, revoked) = redeem(&a, &code_of(&visitor.authorize(&a, &pkce).await), &pkce).await;
    assert_eq!(status, 200, "{revoked}");
    let denied_access = field(&revoked, "access_token");
    let revoked_refresh = field(&revoked, "refresh_token");
    for token in [&denied_access, &revoked_refresh] {
        let (status, body) = post(&a, "/revoke", "web", &[("token", token)]).await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(!active(&a, &denied_access).await);
    // A client removed: its tokens end with a not-before record, which must keep them
    // dead when the client comes back.
    let (status, gone) = post(
        &a,
        "/token",
        "gone",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{gone}");
    let gone_access = field(&gone, "access_token");
    rewrite(dir.path(), "gh", &a, &config(false));
    let ended = eventually(Duration::from_secs(20), || async {
        !active(&a, &gone_access).await
    })
    .await;
    assert!(ended, "removing the client ended its token");

    // Load: eight families rotating as fast as they can, and ten codes redeemed at once.
    let mut chains = Vec::new();
    for _ in 0..8 {
        let (status, body) = redeem(&a, &code_of(&visitor.authorize(&a, &pkce).await), &pkce).await;
        assert_eq!(status, 200, "{body}");
        chains.push(Arc::new(Mutex::new(vec![field(&body, "refresh_token")])));
    }
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(code_of(&visitor.authorize(&a, &pkce).await));
    }
    let rotations: Vec<_> = chains
        .iter()
        .map(|chain| tokio::spawn(rotate_until_killed(a.clone(), chain.clone())))
        .collect();
    let redemptions: Vec<_> = codes
        .iter()
        .map(|code| {
            let (at, code, pkce) = (a.clone(), code.clone(), Pkce::new("file-store"));
            tokio::spawn(answered(async move { redeem(&at, &code, &pkce).await.0 }))
        })
        .collect();
    // Let the load run, then kill the server in the middle of it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    for rotation in rotations {
        rotation.await.expect("rotation task");
    }
    let mut answered_codes = Vec::new();
    for (code, redemption) in codes.iter().zip(redemptions) {
        if matches!(redemption.await, Ok(Some(200))) {
            answered_codes.push(code.clone());
        }
    }
    let rotated: usize = chains
        .iter()
        .map(|c| c.lock().expect("chain").len() - 1)
        .sum();
    println!(
        "before the kill: {rotated} rotations and {} redemptions answered",
        answered_codes.len()
    );

    // Started again on the same file, the removed client back in the config.
    let b = Replica::spawn(dir.path(), "gh", &config(true));
    for code in &answered_codes {
        let (status, body) = redeem(&b, code, &pkce).await;
        assert_eq!(
            status, 400,
            "a code redeemed before the crash is used: {body}"
        );
    }
    for chain in &chains {
        let chain = chain.lock().expect("chain").clone();
        // Every token but the last was used before the crash (the last may have been
        // in flight: either outcome is right for it).
        for used in &chain[..chain.len() - 1] {
            let (status, body) = refresh(&b, used).await;
            assert_eq!(status, 400, "a used refresh token stays used: {body}");
        }
    }
    assert!(
        !active(&b, &denied_access).await,
        "a revoked access token stays revoked"
    );
    assert_eq!(
        refresh(&b, &revoked_refresh).await.0,
        400,
        "a revoked family stays revoked"
    );
    assert!(
        !active(&b, &gone_access).await,
        "the not-before record survived"
    );
    let (status, body) = refresh(&b, &kept_refresh).await;
    assert_eq!(
        status, 200,
        "a refresh token issued before the crash works: {body}"
    );
    // The session cookie from before the crash still signs the user in.
    let again = visitor.authorize(&b, &pkce).await;
    assert_eq!(again.status, 303, "the session survived: {}", again.body);
}

#[tokio::test]
async fn a_second_process_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_signing_key(dir.path());
    let _first = Replica::spawn(dir.path(), "one", &config(true));
    // The same file, another process on a port of its own.
    let copy = dir.path().join("two.toml");
    std::fs::write(&copy, config(true)).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--config"])
        .arg(&copy)
        .output()
        .expect("run gatehouse");
    assert!(!out.status.success(), "a second process on the file starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another process") && stderr.contains("Redis"),
        "{stderr}"
    );
}

/// The operators' `/readyz` names the store's kind and says it answers; `/metrics`
/// has the store's operations, each timed, labelled with the operation and the kind.
#[tokio::test]
async fn readyz_details_name_the_file_store_and_metrics_time_its_operations() {
    let server = TestServer::start(&config_with("[store]\npath = \"state.redb\"\n")).await;
    let details = server.ready_details().await;
    assert_eq!(details["status"], "ready", "{details}");
    assert_eq!(details["store_kind"], "file", "{details}");
    assert_eq!(details["store_healthy"], true, "{details}");
    assert!(
        details["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("file:")),
        "{details}"
    );
    let metrics = server.metrics().await;
    let ping = "gatehouse_store_operation_seconds_count{op=\"ping\",store=\"file\"}";
    assert!(metrics.contains(ping), "{ping} in {metrics}");
    server.stop().await;
}
