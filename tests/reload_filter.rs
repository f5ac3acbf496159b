//! The reloader reacts to the files the config was read through, and to the names an
//! `include` glob matches in the directory it reads, and to nothing else in those
//! directories. In a binary of its own: it counts the process-wide
//! `gatehouse_config_reloads_total` metric, which other tests would move too.

#[path = "it/support/mod.rs"]
mod support;

use support::*;
use std::time::Duration;

/// The number of rejected reloads the server has counted.
async fn rejected_reloads(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(r#"gatehouse_config_reloads_total{result="rejected"} "#))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

const INCLUDE: &str = "include = [\"clients.d/*.toml\"]\n";

#[tokio::test]
async fn unrelated_files_in_the_config_directory_cause_no_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("clients.d")).expect("mkdir");
    let main = dir.path().join("gatehouse.toml");
    std::fs::write(&main, format!("{INCLUDE}{}", service_config())).expect("write");
    let server = TestServer::start_at(dir, main).await;
    // Serving (and so watching: the reloader starts beside the listener).
    assert_eq!(
        server
            .client_credentials("svc", SERVICE_SECRET, &[])
            .await
            .0,
        200
    );
    // An invalid config in place (whose include is still resolved): every reload
    // attempt from now on is rejected, and counted.
    std::fs::write(&server.config, format!("{INCLUDE}issuer = \"nope\"\n")).expect("write");
    assert!(
        eventually(Duration::from_secs(10), || async {
            rejected_reloads(&server).await == 1
        })
        .await,
        "the invalid file is seen"
    );

    // Other files in the same directory: a note, an editor's swap file, a log; and in
    // the included directory, names its glob does not match.
    for round in 0..5 {
        for name in [
            "notes.txt",
            ".gatehouse.toml.swp",
            "gatehouse.log",
            "clients.d/README.md",
            "clients.d/.team.toml",
        ] {
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

    // A file the glob matches counts.
    std::fs::write(server.dir.path().join("clients.d/team.toml"), "").expect("write");
    assert!(
        eventually(Duration::from_secs(10), || async {
            rejected_reloads(&server).await == 2
        })
        .await,
        "a new included file is seen"
    );
    // The config itself still counts.
    std::fs::write(&server.config, "issuer = 6\n").expect("write");
    assert!(
        eventually(Duration::from_secs(10), || async {
            rejected_reloads(&server).await == 3
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
