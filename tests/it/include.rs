//! `include = [globs]`: a config tree checked as one with every error in its own file at
//! its own line, duplicates across files naming both places, a file added to an
//! included directory picked up by a running server, and trees compared by `diff`.


use crate::support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Writes `text` at `dir/rel`, making its directory.
fn put(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Runs the binary with `args`; the exit code and stdout.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    (out.status.code().unwrap_or(-1), stdout)
}

fn check(main: &Path) -> (i32, String) {
    run(&["check", main.to_str().expect("utf8 path")])
}

/// A confidential client-credentials client, as a TOML table.
fn service(id: &str) -> String {
    format!(
        "[[clients]]\nid = \"{id}\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        service_hash()
    )
}

const MAIN_HEAD: &str = "include = [\"clients.d/*.toml\", \"clients.d/*.yaml\", \"users.yaml\", \"empty.d/*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n\n[[scopes]]\nname = \"a:read\"\n\n";

/// A directory with `main.toml` (MAIN_HEAD and a client `svc`) and an empty `empty.d/`.
fn main_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("empty.d")).expect("mkdir");
    put(
        dir.path(),
        "main.toml",
        &format!("{MAIN_HEAD}{}", service("svc")),
    );
    dir
}

#[test]
fn check_validates_the_tree_and_reports_each_file_at_its_own_lines() {
    let dir = main_tree();
    let d = dir.path();
    put(
        d,
        "clients.d/a.toml",
        &format!(
            "[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"http://127.0.0.1/cb\"]\n\n{}scopes = [\"nope\"]\n",
            service("svc")
        ),
    );
    put(
        d,
        "clients.d/b.yaml",
        "clients:\n  - id: spa\n    public: true\n    redirect_uris: [\"ftp://x/cb\"]\nscopes:\n  - name: a:read\n",
    );
    let hash = service_hash();
    put(
        d,
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    password_hash: \"{hash}\"\n  - username: alice\n    password_hash: \"{hash}\"\n"
        ),
    );
    let (code, stdout) = check(&d.join("main.toml"));
    assert_eq!(code, 1, "{stdout}");
    let at = |rel: &str| at_of(d, rel);
    let expected = [
        format!(
            "{}:7:1: clients[1].id: duplicate client id \"svc\" (also at {}:8:1: clients[0].id)",
            at("clients.d/a.toml"),
            at("main.toml")
        ),
        format!(
            "{}:10:11: clients[1].scopes[0]: unknown scope \"nope\"",
            at("clients.d/a.toml")
        ),
        format!(
            "{}:4:21: clients[0].redirect_uris[0]: \"ftp://x/cb\" uses scheme \"ftp\"",
            at("clients.d/b.yaml")
        ),
        format!(
            "{}:6:5: scopes[0].name: duplicate scope \"a:read\" (also at {}:5:1: scopes[0].name)",
            at("clients.d/b.yaml"),
            at("main.toml")
        ),
        format!(
            "{}:4:5: users[1].username: duplicate username \"alice\" (also at {}:2:5: users[0].username)",
            at("users.yaml"),
            at("users.yaml")
        ),
    ];
    for want in &expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(want.as_str())),
            "missing {want:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("5 error(s)"), "{stdout}");

    // Fixed, the tree passes, counted as a whole.
    put(
        d,
        "clients.d/a.toml",
        &format!(
            "[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"http://127.0.0.1/cb\"]\n\n{}scopes = [\"a:read\"]\n",
            service("svc2")
        ),
    );
    put(
        d,
        "clients.d/b.yaml",
        "clients:\n  - id: spa\n    public: true\n    redirect_uris: [\"http://127.0.0.1/spa\"]\n",
    );
    put(
        d,
        "users.yaml",
        &format!("users:\n  - username: alice\n    password_hash: \"{hash}\"\n"),
    );
    let (code, stdout) = check(&d.join("main.toml"));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(
            ": ok: 4 clients, 1 users, 0 keys, 1 custom scopes, 0 warnings, 3 included files"
        ),
        "{stdout}"
    );
}

#[test]
fn included_files_hold_only_the_lists_and_plain_paths_must_exist() {
    let dir = main_tree();
    let d = dir.path();
    put(
        d,
        "clients.d/a.toml",
        &format!("{}\n[tokens]\naccess_token_ttl = \"1h\"\n", service("a")),
    );
    put(d, "clients.d/b.yaml", "include: [\"more/*.toml\"]\n");
    put(d, "users.yaml", "users: []\n");
    let (code, stdout) = check(&d.join("main.toml"));
    assert_eq!(code, 1, "{stdout}");
    let at = |rel: &str| at_of(d, rel);
    for want in [
        format!(
            "{}:6:2: tokens: an included file holds only [[clients]], [[users]] and [[scopes]]; `tokens` belongs in the main file",
            at("clients.d/a.toml")
        ),
        format!(
            "{}:1:1: include: an included file includes nothing",
            at("clients.d/b.yaml")
        ),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(want.as_str())),
            "missing {want:?} in:\n{stdout}"
        );
    }

    // A plain path that does not exist is an error at the entry; a directory that
    // matches nothing is not.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir(d.join("clients.d")).expect("mkdir");
    put(
        d,
        "main.toml",
        "include = [\"clients.d/*.toml\", \"team.toml\"]\nissuer = \"http://127.0.0.1:9\"\n",
    );
    let (code, stdout) = check(&d.join("main.toml"));
    assert_eq!(code, 1, "{stdout}");
    let want = format!(
        "{}:1:32: include[1]: cannot read {}",
        at_of(d, "main.toml"),
        at_of(d, "team.toml")
    );
    assert!(stdout.starts_with(&want), "{want:?} in:\n{stdout}");
    put(
        d,
        "main.toml",
        "include = [\"clients.d/*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n",
    );
    let (code, stdout) = check(&d.join("main.toml"));
    assert_eq!(code, 0, "{stdout}");
}

fn at_of(dir: &Path, rel: &str) -> String {
    dir.join(rel).display().to_string()
}

#[test]
fn diff_compares_whole_trees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for side in ["old", "new"] {
        put(
            d,
            &format!("{side}/main.toml"),
            "include = [\"clients.d/*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n",
        );
        put(
            d,
            &format!("{side}/clients.d/web.toml"),
            "[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"http://127.0.0.1/cb\"]\n",
        );
    }
    put(
        d,
        "new/clients.d/web.toml",
        "[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [\"http://127.0.0.1/cb\", \"http://127.0.0.1/other\"]\n",
    );
    put(d, "new/clients.d/svc.toml", &service("svc"));
    let (old, new) = (d.join("old/main.toml"), d.join("new/main.toml"));
    let (code, stdout) = run(&[
        "diff",
        old.to_str().expect("utf8"),
        new.to_str().expect("utf8"),
        "--fail-on",
        "widens",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("widens   client svc: added (confidential)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("widens   client web: redirect URI added \"http://127.0.0.1/other\""),
        "{stdout}"
    );
}

/// How long a test waits for a reload to show (the requirement is 2 s).
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_file_added_to_an_included_directory_is_picked_up_by_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_owned();
    std::fs::create_dir(d.join("clients.d")).expect("mkdir");
    let main = d.join("gatehouse.toml");
    std::fs::write(
        &main,
        format!(
            "include = [\"clients.d/*.toml\"]\n{}",
            config_with(&service("svc"))
        ),
    )
    .expect("write");
    let server = TestServer::start_at(dir, main.clone()).await;
    let status = |id: &'static str, secret: &'static str| {
        let server = &server;
        async move { server.client_credentials(id, secret, &[]).await.0 }
    };
    assert_eq!(status("svc", SERVICE_SECRET).await, 200);
    assert_eq!(status("team", "team-secret-0123456789").await, 401);
    let first = server.ready_details().await["config_sha256"].clone();

    // A new file, written as deploy tools do (a temporary name, then a rename), whose
    // secret file is found beside it.
    std::fs::write(d.join("clients.d/team.secret"), "team-secret-0123456789\n").expect("write");
    let team = "[[clients]]\nid = \"team\"\nsecret_file = \"team.secret\"\ngrant_types = [\"client_credentials\"]\n";
    replace_file(&d.join("clients.d/team.toml"), team);
    server.wait_for_generation(2).await;
    assert_eq!(status("team", "team-secret-0123456789").await, 200);
    let second = server.ready_details().await["config_sha256"].clone();
    assert_ne!(first, second);
    let loaded = gatehouse::config::load(&main).expect("the tree is valid");
    assert_eq!(second, gatehouse::crypto::hex(&loaded.fingerprint).as_str());

    // A bad included file is rejected with its own position; the last good tree
    // keeps serving.
    replace_file(
        &d.join("clients.d/team.toml"),
        &format!("{team}\n[server]\nbind = \"127.0.0.1:0\"\n"),
    );
    assert!(
        eventually(WAIT, || async {
            server.ready_details().await["last_reload_error"]
                .as_str()
                .is_some_and(|e| e.contains("team.toml:6:2: server: an included file holds only"))
        })
        .await,
        "{}",
        server.ready_details().await
    );
    assert_eq!(status("team", "team-secret-0123456789").await, 200);

    // Removed, its client goes.
    std::fs::remove_file(d.join("clients.d/team.toml")).expect("remove");
    server.wait_for_generation(3).await;
    assert_eq!(status("team", "team-secret-0123456789").await, 401);
    assert_eq!(status("svc", SERVICE_SECRET).await, 200);
    assert_eq!(
        server.ready_details().await["last_reload_error"],
        serde_json::Value::Null
    );
}

#[test]
fn a_glob_beside_a_main_file_named_from_its_own_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    put(
        d,
        "gatehouse.toml",
        "include = [\"*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n",
    );
    put(d, "team.toml", &service("team"));
    put(d, "broken.toml", "[tokens]\n");
    let out = Command::new(BIN)
        .args(["check", "gatehouse.toml"])
        .current_dir(d)
        .output()
        .expect("runs");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        stdout.starts_with("broken.toml:1:2: tokens: an included file holds only"),
        "{stdout}"
    );
    std::fs::remove_file(d.join("broken.toml")).expect("remove");
    let out = Command::new(BIN)
        .args(["check", "gatehouse.toml"])
        .current_dir(d)
        .output()
        .expect("runs");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        stdout.starts_with("gatehouse.toml: ok: 1 clients") && stdout.contains("1 included files"),
        "the main file is not included in itself: {stdout}"
    );
}
