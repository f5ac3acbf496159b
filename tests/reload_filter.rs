//! The reloader reacts to the files the config was read through and to nothing else in
//! their directories. In a binary of its own: it counts the process-wide
//! `gatehouse_config_reloads_total` metric, which other tests would move too.

mod common;

use common::*;
use std::time::Duration;

/// The number of rejected reloads the server has counted.
async fn rejected_reloads(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(r#"gatehouse_config_reloads_total{result="rejected"} "#))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

#[tokio::test]
async fn unrelated_files_in_the_config_directory_cause_no_reload() {
    let server = TestServer::start(&service_config()).await;
    // Serving (and so watching: the reloader starts beside the listener).
    assert_eq!(
        server
            .client_credentials("svc", SERVICE_SECRET, &[])
            .await
            .0,
        200
    );
    // An invalid config in place: every reload attempt from now on is rejected, and
    // counted.
    std::fs::write(&server.config, "issuer = 5\n").expect("write");
    assert!(
        eventually(Duration::from_secs(10), || async {
            rejected_reloads(&server).await == 1
        })
        .await,
        "the invalid file is seen"
    );

    // Other files in the same directory: a note, an editor's swap file, a log.
    for round in 0..5 {
        for name in ["notes.txt", ".gatehouse.toml.swp", "gatehouse.log"] {
            std::fs::write(server.dir.path().join(name), format!("{round}\n")).expect("write");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Longer than the debounce and the longest a burst may postpone a reload: a reload
    // the writes had started would have been counted by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rejected_reloads(&server).await,
        1,
        "no reload attempt for files the config does not read"
    );

    // The config itself still counts.
    std::fs::write(&server.config, "issuer = 6\n").expect("write");
    assert!(
        eventually(Duration::from_secs(10), || async {
            rejected_reloads(&server).await == 2
        })
        .await
    );
    // And the good config still serves.
    assert_eq!(
        server
            .client_credentials("svc", SERVICE_SECRET, &[])
            .await
            .0,
        200
    );
}
