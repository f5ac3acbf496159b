//! `gatehouse diff OLD NEW`: the real binary on files, stdin and `git:REV:PATH`, its
//! marks, `--fail-on widens`, and invalid input reported as FILE:LINE:COL.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

const OLD: &str = r#"issuer = "http://127.0.0.1:9"
[tokens]
access_token_ttl = "10m"

[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1/callback"]
"#;

/// OLD with a redirect URI added, a longer access token and consent skipped.
fn widened() -> String {
    OLD.replace("\"10m\"", "\"1h\"")
        .replace(
            "[\"http://127.0.0.1/callback\"]",
            "[\"http://127.0.0.1/callback\", \"http://127.0.0.1/other\"]",
        )
        .replace("public = true", "public = true\nfirst_party = true")
}

/// Runs `gatehouse diff ARGS` in `dir` with `stdin`; the exit code and stdout.
fn diff(dir: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(BIN)
        .arg("diff")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("diff runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("diff ends");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// Runs `git ARGS` in `dir` with a committer identity; it must succeed.
fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

const EXPECTED: &str = "\
widens   client cli: redirect URI added \"http://127.0.0.1/other\"
widens   client cli: first_party (consent is skipped) turned on
widens   tokens access_token_ttl: 10m -> 1h
3 change(s): 3 widen, 0 narrow, 0 neutral
";

#[test]
fn files_print_each_change_and_fail_on_widening() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("old.toml"), OLD).expect("write");
    std::fs::write(dir.path().join("new.toml"), widened()).expect("write");
    let (code, out) = diff(dir.path(), &["old.toml", "new.toml"], "");
    assert_eq!((code, out.as_str()), (0, EXPECTED));
    let (code, out) = diff(
        dir.path(),
        &["--fail-on", "widens", "old.toml", "new.toml"],
        "",
    );
    assert_eq!(code, 1, "{out}");
    // The other way round everything narrows, which --fail-on widens lets through.
    let (code, out) = diff(
        dir.path(),
        &["--fail-on", "widens", "new.toml", "old.toml"],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("narrows  client cli: first_party (consent is skipped) turned off"),
        "{out}"
    );
    assert!(
        out.ends_with("3 change(s): 0 widen, 3 narrow, 0 neutral\n"),
        "{out}"
    );
    let (code, out) = diff(dir.path(), &["old.toml", "old.toml"], "");
    assert_eq!((code, out.as_str()), (0, "no security-relevant changes\n"));
}

#[test]
fn stdin_needs_a_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("old.toml"), OLD).expect("write");
    let (code, out) = diff(
        dir.path(),
        &["--format", "toml", "old.toml", "-"],
        &widened(),
    );
    assert_eq!((code, out.as_str()), (0, EXPECTED));
    let (code, out) = diff(dir.path(), &["old.toml", "-"], &widened());
    assert_eq!(code, 1);
    assert!(out.contains("pass --format toml|yaml"), "{out}");
}

#[test]
fn invalid_input_is_reported_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("old.toml"), OLD).expect("write");
    let bad = OLD.replace("redirect_uris", "redirect_uri");
    std::fs::write(dir.path().join("bad.toml"), bad).expect("write");
    let (code, out) = diff(dir.path(), &["old.toml", "bad.toml"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("bad.toml:8:1: clients[0]"), "{out}");
    assert!(out.contains("bad.toml: 1 error(s)"), "{out}");
    assert!(!out.contains("change(s)"), "{out}");
}

#[test]
fn git_revision_against_the_working_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| git(dir.path(), args);
    git(&["init", "-q"]);
    std::fs::write(dir.path().join("gatehouse.toml"), OLD).expect("write");
    git(&["add", "gatehouse.toml"]);
    git(&["commit", "-q", "-m", "first"]);
    std::fs::write(dir.path().join("gatehouse.toml"), widened()).expect("write");
    let (code, out) = diff(
        dir.path(),
        &["git:HEAD:gatehouse.toml", "gatehouse.toml"],
        "",
    );
    assert_eq!((code, out.as_str()), (0, EXPECTED));
    let (code, out) = diff(dir.path(), &["git:HEAD:missing.toml", "gatehouse.toml"], "");
    assert_eq!(code, 1);
    assert!(out.contains("git show HEAD:missing.toml failed"), "{out}");
}

#[test]
fn referenced_files_resolve_against_the_path_for_git_and_the_cwd_for_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| git(dir.path(), args);
    let with_secret = format!(
        "{OLD}\n[[clients]]\nid = \"svc\"\nsecret_file = \"svc.secret\"\ngrant_types = [\"client_credentials\"]\n"
    );
    std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
    std::fs::write(dir.path().join("conf/gatehouse.toml"), &with_secret).expect("write");
    std::fs::write(
        dir.path().join("conf/svc.secret"),
        "first-secret-0123456789",
    )
    .expect("write");
    git(&["init", "-q"]);
    git(&["add", "conf/gatehouse.toml"]);
    git(&["commit", "-q", "-m", "first"]);
    // git:REV:conf/gatehouse.toml reads conf/svc.secret from the working tree.
    let (code, out) = diff(
        dir.path(),
        &["git:HEAD:conf/gatehouse.toml", "conf/gatehouse.toml"],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "no security-relevant changes\n"));
    // Stdin reads it relative to the current directory: from conf/ it is found...
    let (code, out) = diff(
        &dir.path().join("conf"),
        &["--format", "toml", "-", "gatehouse.toml"],
        &with_secret,
    );
    assert_eq!((code, out.as_str()), (0, "no security-relevant changes\n"));
    // ...and from the repository root it is not.
    let (code, out) = diff(
        dir.path(),
        &["--format", "toml", "-", "conf/gatehouse.toml"],
        &with_secret,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("-:"), "{out}");
    assert!(out.contains("svc.secret"), "{out}");
}

#[test]
fn a_git_revision_brings_its_own_included_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let git = |args: &[&str]| git(d, args);
    // `*.toml` also names the main file, which is never included in itself.
    let main = "include = [\"clients.d/*.toml\", \"*.toml\"]\nissuer = \"http://127.0.0.1:9\"\n";
    let web = |uris: &str| {
        format!("[[clients]]\nid = \"web\"\npublic = true\nredirect_uris = [{uris}]\n")
    };
    std::fs::create_dir_all(d.join("conf/clients.d")).expect("mkdir");
    std::fs::write(d.join("conf/gatehouse.toml"), main).expect("write");
    std::fs::write(
        d.join("conf/clients.d/web.toml"),
        web("\"http://127.0.0.1/cb\""),
    )
    .expect("write");
    git(&["init", "-q"]);
    git(&["add", "conf"]);
    git(&["commit", "-q", "-m", "first"]);
    // The pull request: web gains a redirect URI, a team adds a file.
    std::fs::write(
        d.join("conf/clients.d/web.toml"),
        web("\"http://127.0.0.1/cb\", \"http://127.0.0.1/other\""),
    )
    .expect("write");
    std::fs::write(
        d.join("conf/clients.d/cli.toml"),
        "[[clients]]\nid = \"cli\"\npublic = true\ngrant_types = [\"urn:ietf:params:oauth:grant-type:device_code\"]\n",
    )
    .expect("write");
    let want = "\
widens   client cli: added (public)
widens   client web: redirect URI added \"http://127.0.0.1/other\"
2 change(s): 2 widen, 0 narrow, 0 neutral
";
    // From the repository root, and ./-relative from a subdirectory.
    for (cwd, old, new) in [
        (
            d.to_owned(),
            "git:HEAD:conf/gatehouse.toml",
            "conf/gatehouse.toml",
        ),
        (
            d.join("conf"),
            "git:HEAD:./gatehouse.toml",
            "gatehouse.toml",
        ),
    ] {
        let (code, out) = diff(&cwd, &[old, new], "");
        assert_eq!((code, out.as_str()), (0, want), "from {}", cwd.display());
    }
    // An error in an included file of the revision names it as such.
    std::fs::write(d.join("conf/clients.d/web.toml"), "issuer = \"x\"\n").expect("write");
    git(&["commit", "-q", "-a", "-m", "broken"]);
    let (code, out) = diff(
        d,
        &["git:HEAD:conf/gatehouse.toml", "conf/gatehouse.toml"],
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "git:HEAD:conf/clients.d/web.toml:1:1: issuer: an included file holds only"
        ),
        "{out}"
    );
}
