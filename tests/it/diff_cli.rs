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

/// A config with one of everything the per-field cases below edit.
const FULL: &str = r#"issuer = "http://127.0.0.1:9"
[server]
admin_bind = "127.0.0.1:9100"
trusted_proxies = ["10.0.0.0/8"]
[limits]
login_max_failures = 10
[federation]
token_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[keys]]
id = "k1"
private_key_file = "k1.pem"
[[clients]]
id = "svc"
secret_hash = "CLIENT_HASH"
grant_types = ["client_credentials"]
[[providers]]
id = "corp"
name = "Corp"
kind = "oidc"
issuer = "https://idp.example.com"
client_id = "gh"
client_secret = "s1"
scopes = ["openid", "email"]
accept = "linked"
[[users]]
id = "u1"
username = "a"
password_hash = "USER_HASH"
"#;

/// How `--fail-on` treats a change.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Widens,
    Neutral,
    CredentialReplaced,
}

#[test]
fn every_field_is_compared_and_classified() {
    use gatehouse::config::file::Algorithm;
    use gatehouse::jwt::keys::SigningKey;
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["k1.pem", "k1b.pem"] {
        let (_, pem) = SigningKey::generate(Algorithm::ES256, Some("k1")).expect("key");
        std::fs::write(dir.path().join(file), pem).expect("write key");
    }
    std::fs::create_dir(dir.path().join("pages")).expect("mkdir");
    let hash = crate::support::service_hash();
    let other = gatehouse::crypto::hash_secret("another-secret-0123456789").expect("hash");
    let old = FULL.replace("CLIENT_HASH", hash).replace("USER_HASH", hash);
    let cases: &[(&str, &str, &str, Class)] = &[
        (
            "issuer = \"http://127.0.0.1:9\"",
            "issuer = \"http://127.0.0.1:10\"",
            "widens   issuer issuer: changed",
            Class::Widens,
        ),
        (
            "[\"10.0.0.0/8\"]",
            "[\"0.0.0.0/0\"]",
            "widens   server trusted_proxies: trusted proxy added \"0.0.0.0/0\"",
            Class::Widens,
        ),
        (
            "admin_bind = \"127.0.0.1:9100\"\n",
            "",
            "widens   server admin_bind: removed",
            Class::Widens,
        ),
        (
            "login_max_failures = 10\n",
            "login_max_failures = 10000\n",
            "widens   limits login_max_failures: 10 -> 10000",
            Class::Widens,
        ),
        (
            "[limits]\n",
            "[limits]\nipv6_prefix = 128\n",
            "widens   limits ipv6_prefix: 64 -> 128",
            Class::Widens,
        ),
        (
            "[federation]",
            "[ui]\ntemplates_dir = \"pages\"\n[federation]",
            "widens   ui templates_dir: set to \"pages\"",
            Class::Widens,
        ),
        (
            "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
            "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
            "credential_replaced federation token_key: replaced",
            Class::CredentialReplaced,
        ),
        (
            "\"k1.pem\"",
            "\"k1b.pem\"",
            "credential_replaced key k1: key material replaced under the same kid",
            Class::CredentialReplaced,
        ),
        (
            "accept = \"linked\"\n",
            "accept = \"linked\"\n[providers.claims]\nsubject = \"email\"\n",
            "widens   provider corp: claims mapping changed",
            Class::Widens,
        ),
        (
            "[\"openid\", \"email\"]",
            "[\"openid\", \"email\", \"groups\"]",
            "neutral  provider corp: upstream scope added \"groups\"",
            Class::Neutral,
        ),
        (
            "name = \"Corp\"",
            "name = \"Corp SSO\"",
            "neutral  provider corp: name changed \"Corp\" -> \"Corp SSO\"",
            Class::Neutral,
        ),
        (
            &format!("password_hash = \"{hash}\""),
            &format!("password_hash = \"{other}\""),
            "credential_replaced user u1: password changed",
            Class::CredentialReplaced,
        ),
        (
            &format!("secret_hash = \"{hash}\""),
            &format!("secret_hash = \"{other}\""),
            "credential_replaced client svc: secret rotated",
            Class::CredentialReplaced,
        ),
    ];
    std::fs::write(dir.path().join("old.toml"), &old).expect("write");
    for (from, to, line, class) in cases {
        assert!(old.contains(from), "{from:?}");
        std::fs::write(dir.path().join("new.toml"), old.replacen(from, to, 1)).expect("write");
        let (code, out) = diff(dir.path(), &["old.toml", "new.toml"], "");
        assert_eq!(code, 0, "{out}");
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "{line:?} in:\n{out}"
        );
        let (widens, _) = diff(
            dir.path(),
            &["--fail-on", "widens", "old.toml", "new.toml"],
            "",
        );
        let (replaced, _) = diff(
            dir.path(),
            &["--fail-on", "credential_replaced", "old.toml", "new.toml"],
            "",
        );
        let expected = match class {
            Class::Widens => (1, 0),
            Class::CredentialReplaced => (1, 1),
            Class::Neutral => (0, 0),
        };
        assert_eq!((widens, replaced), expected, "{line}");
    }
}

#[test]
fn a_git_revision_is_never_taken_as_an_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q"]);
    std::fs::write(dir.path().join("gatehouse.toml"), OLD).expect("write");
    git(dir.path(), &["add", "gatehouse.toml"]);
    git(dir.path(), &["commit", "-q", "-m", "first"]);
    let target = dir.path().join("written");
    let spec = format!("git:--output={}:gatehouse.toml", target.display());
    let (code, out) = diff(dir.path(), &[&spec, "gatehouse.toml"], "");
    assert_eq!(code, 1, "{out}");
    let written = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("written"));
    assert!(!written, "git wrote a file: {out}");
    // An include listed at a revision goes through `git ls-tree` the same way.
    let (code, _) = diff(
        dir.path(),
        &["git:HEAD:gatehouse.toml", "gatehouse.toml"],
        "",
    );
    assert_eq!(code, 0);
}
