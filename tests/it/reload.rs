//! Hot reload against a running server: clients added, removed and rotated; an invalid
//! file keeps the last good config serving; a Kubernetes ConfigMap-style symlink swap;
//! SIGHUP on the real binary.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a test waits for a reload to show. The requirement is 2 s; the wait is
/// longer so a loaded CI machine does not turn latency into a failure.
const WAIT: Duration = Duration::from_secs(10);

fn service_client(id: &str, hash: &str) -> String {
    format!(
        "\n[[clients]]\nid = \"{id}\"\nsecret_hash = \"{hash}\"\ngrant_types = [\"client_credentials\"]\n"
    )
}

async fn status_for(server: &TestServer, id: &str, secret: &str) -> u16 {
    server.client_credentials(id, secret, &[]).await.0
}

#[tokio::test]
async fn clients_added_removed_and_rotated() {
    let server = TestServer::start(&config_with(&service_client("svc", service_hash()))).await;
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 200);
    assert_eq!(status_for(&server, "new", SERVICE_SECRET).await, 401);
    assert_eq!(server.ready_details().await["config_generation"], 1);

    // Add a client.
    server.rewrite_config(&config_with(
        &(service_client("svc", service_hash()) + &service_client("new", service_hash())),
    ));
    server.wait_for_generation(2).await;
    assert_eq!(status_for(&server, "new", SERVICE_SECRET).await, 200);
    assert_eq!(server.ready_details().await["config_generation"], 2);

    // Rotate svc's secret: the old one stops working at once (the cache went with the
    // old generation), the new one works.
    let rotated = gatehouse::crypto::hash_secret("rotated-secret").expect("hash");
    server.rewrite_config(&config_with(
        &(service_client("svc", &rotated) + &service_client("new", service_hash())),
    ));
    server.wait_for_generation(3).await;
    assert_eq!(status_for(&server, "svc", "rotated-secret").await, 200);
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 401);

    // Remove a client, writing in place this time (no rename).
    std::fs::write(
        &server.config,
        config_with(&service_client("svc", &rotated)),
    )
    .expect("write");
    server.wait_for_generation(4).await;
    assert_eq!(status_for(&server, "new", SERVICE_SECRET).await, 401);
    assert_eq!(status_for(&server, "svc", "rotated-secret").await, 200);
    assert_eq!(
        server.ready_details().await["last_reload_error"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn an_invalid_file_is_rejected_and_the_last_good_config_keeps_serving() {
    let server = TestServer::start(&config_with(&service_client("svc", service_hash()))).await;
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 200);

    // Valid TOML, invalid config: a public client with client_credentials.
    server.rewrite_config(&config_with(
        "[[clients]]\nid = \"svc\"\npublic = true\ngrant_types = [\"client_credentials\"]\n",
    ));
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["last_reload_error"].is_string()
        })
        .await
    );
    let ready = server.ready_details().await;
    let error = ready["last_reload_error"].as_str().expect("error");
    assert!(
        error.contains("gatehouse.toml:8:1: clients[0].grant_types: a public client"),
        "{error}"
    );
    assert_eq!(ready["config_generation"], 1);
    assert_eq!(
        status_for(&server, "svc", SERVICE_SECRET).await,
        200,
        "last good config still serves"
    );

    // Broken syntax: same.
    server.rewrite_config("issuer = \"http://127.0.0.1:9\"\n[[clients]\n");
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["last_reload_error"]
                .as_str()
                .is_some_and(|e| e.contains("gatehouse.toml:2:"))
        })
        .await
    );
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 200);

    // The file is fixed: the error clears and the new config applies.
    server.rewrite_config(&config_with(&service_client("svc2", service_hash())));
    server.wait_for_generation(2).await;
    assert_eq!(status_for(&server, "svc2", SERVICE_SECRET).await, 200);
    let ready = server.ready_details().await;
    assert_eq!(ready["last_reload_error"], serde_json::Value::Null);
    assert_eq!(ready["config_generation"], 2);
    assert!(
        ready["config_loaded_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

/// Lays out `dir` as the kubelet does a ConfigMap volume: the file is a symlink through
/// `..data`, a symlink to a timestamped directory, swapped atomically by rename.
fn configmap_publish(dir: &std::path::Path, version: u32, text: &str) {
    let versioned = dir.join(format!("..2026_11_23_v{version}"));
    std::fs::create_dir(&versioned).expect("mkdir");
    std::fs::write(versioned.join("gatehouse.toml"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(versioned.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    let link = dir.join("gatehouse.toml");
    if !link.exists() {
        std::os::unix::fs::symlink("..data/gatehouse.toml", &link).expect("symlink file");
    }
}

#[tokio::test]
async fn a_configmap_symlink_swap_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    configmap_publish(
        dir.path(),
        1,
        &config_with(&service_client("svc", service_hash())),
    );
    let path = dir.path().join("gatehouse.toml");
    let server = TestServer::start_at(dir, path).await;
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 200);

    configmap_publish(
        server.dir.path(),
        2,
        &config_with(&service_client("svc-v2", service_hash())),
    );
    server.wait_for_generation(2).await;
    assert_eq!(status_for(&server, "svc-v2", SERVICE_SECRET).await, 200);
    assert_eq!(status_for(&server, "svc", SERVICE_SECRET).await, 401);
}

#[tokio::test]
async fn a_rotated_secret_file_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("mkdir");
    std::fs::write(secrets.join("svc"), "first\n").expect("write");
    let path = dir.path().join("gatehouse.toml");
    let client = "[[clients]]\nid = \"svc\"\nsecret_file = \"secrets/svc\"\ngrant_types = [\"client_credentials\"]\n";
    std::fs::write(&path, config_with(client)).expect("write");
    let server = TestServer::start_at(dir, path).await;
    assert_eq!(status_for(&server, "svc", "first").await, 200);

    replace_file(&server.dir.path().join("secrets/svc"), "second\n");
    server.wait_for_generation(2).await;
    assert_eq!(status_for(&server, "svc", "second").await, 200);
    assert_eq!(status_for(&server, "svc", "first").await, 401);
}

#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gatehouse.toml");
    // The readiness details are on the admin listener only.
    let config = config_with(&service_client("svc", service_hash())).replacen(
        "[server]\n",
        "[server]\nadmin_bind = \"127.0.0.1:0\"\n",
        1,
    );
    std::fs::write(&path, config).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (admin_tx, admin_rx) = std::sync::mpsc::channel();
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "listening"
            {
                let _ = addr_tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "admin listener (/metrics, /healthz, /readyz)"
            {
                let _ = admin_tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
            let _ = log_tx.send(line);
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server logs its address");
    let admin = admin_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server logs its admin address");
    let http = crate::support::http_client();
    let ready = || async {
        http.get(format!("http://{admin}/readyz"))
            .send()
            .await
            .expect("readyz")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    assert_eq!(ready().await["config_generation"], 1);

    // Audit events: a token issued and a failed authentication.
    for secret in [SERVICE_SECRET, "wrong-secret"] {
        http.post(format!("http://{addr}/token"))
            .basic_auth("svc", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    assert!(eventually(WAIT, || async { ready().await["config_generation"] == 2 }).await);

    // SIGTERM stops it cleanly.
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    assert!(status.success() || status.code().is_none(), "{status}");

    // Nothing logged carries the secret or its hash.
    let logs: Vec<String> = log_rx.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("config_reloaded")),
        "{logs:?}"
    );
    let event = |name: &str| {
        logs.iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["fields"]["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {logs:?}"))
    };
    let issued = event("token_issued");
    assert_eq!(issued["fields"]["client_id"], "svc");
    assert_eq!(issued["fields"]["grant"], "client_credentials");
    assert_eq!(issued["fields"]["remote"], "127.0.0.1");
    let failed = event("client_auth_failed");
    assert_eq!(failed["fields"]["client_id"], "svc");
    assert_eq!(failed["fields"]["remote"], "127.0.0.1");
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("wrong-secret") || l.contains("eyJ")),
        "no secret or token logged"
    );
    for line in &logs {
        assert!(
            !line.contains(SERVICE_SECRET) && !line.contains(service_hash()),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_file_rewritten_without_pause_still_reloads() {
    let server = TestServer::start(&config_with(&service_client("svc", service_hash()))).await;
    let changed = config_with(
        &(service_client("svc", service_hash()) + &service_client("new", service_hash())),
    );
    // Rewrite every 100 ms for 8 s: never 200 ms of quiet.
    let path = server.config.clone();
    let writer = tokio::spawn(async move {
        for n in 0..80 {
            replace_file(&path, &format!("{changed}\n# rewrite {n}\n"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Wait on the generation, not on logins: failed authentications would be throttled.
    assert!(
        eventually(Duration::from_secs(5), || async {
            server.ready_details().await["config_generation"] != 1
        })
        .await
    );
    assert!(
        !writer.is_finished(),
        "the change applied while the writes went on"
    );
    assert_eq!(status_for(&server, "new", SERVICE_SECRET).await, 200);
    writer.abort();
}

/// The SHA-256 the loader computes over every input of the file at `path`.
fn fingerprint_of(path: &std::path::Path) -> String {
    match gatehouse::load::load(path) {
        Ok(loaded) => gatehouse::crypto::hex(&loaded.fingerprint),
        Err(e) => panic!("the test config is invalid: {e}"),
    }
}

#[tokio::test]
async fn readiness_and_metrics_name_the_serving_config_by_its_digest() {
    let server = TestServer::start(&config_with(&service_client("svc", service_hash()))).await;
    let first = fingerprint_of(&server.config);
    assert_eq!(first.len(), 64);
    assert_eq!(
        server.ready_details().await["config_sha256"],
        first.as_str()
    );
    let info = |sha: &str| format!("gatehouse_config_info{{sha256=\"{sha}\"}} 1\n");
    assert!(server.metrics().await.contains(&info(&first)));

    server.rewrite_config(&config_with(
        &(service_client("svc", service_hash()) + &service_client("new", service_hash())),
    ));
    server.wait_for_generation(2).await;
    let second = fingerprint_of(&server.config);
    assert_ne!(first, second);
    assert_eq!(
        server.ready_details().await["config_sha256"],
        second.as_str()
    );
    let text = server.metrics().await;
    assert!(text.contains(&info(&second)), "{text}");
    assert!(
        !text.contains(&first),
        "only the serving digest is listed: {text}"
    );
}
