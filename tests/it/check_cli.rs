//! `gatehouse check`: every error as FILE:LINE:COLUMN: field.path: message, warnings
//! too, exit 1 on any error and 0 otherwise.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn check(name: &str, text: &str) -> (i32, Vec<String>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    let out = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .output()
        .expect("check runs");
    let prefix = format!("{}:", path.display());
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let lines = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    (out.status.code().unwrap_or(-1), lines, stdout)
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$wAAo5/DFEiVnZ8vmHGRgUg$s4AnLZrkvdbf3DYedBaibN1NmuvfqJHnN2UpW7gb+6M";

#[test]
fn toml_with_several_errors_reports_them_all_with_positions() {
    let text = format!(
        r#"issuer = "http://id.example.com"

[[clients]]
id = "svc"
secret = "literal-secret"
grant_types = ["client_credentials"]
scopes = ["nope"]

[[clients]]
id = "spa"
public = true
secret_hash = "{HASH}"
grant_types = ["authorization_code", "client_credentials"]

[[clients]]
id = "svc"
secret_hash = "not-a-hash"
redirect_uris = ["http://evil.example.com/cb"]

[[users]]
username = "a"
password_hash = "{HASH}"

[[users]]
username = "a"
password_hash = "{HASH}"
"#
    );
    let (code, lines, stdout) = check("bad.toml", &text);
    assert_eq!(code, 1, "{stdout}");
    let expected = [
        "1:1: issuer: ",
        "5:1: clients[0].secret: warning: a literal secret",
        "7:11: clients[0].scopes[0]: unknown scope \"nope\"",
        "9:1: clients[1].redirect_uris: a client with the authorization_code grant needs at least one redirect URI",
        "12:1: clients[1].secret_hash: a public client has no secret",
        "13:1: clients[1].grant_types: a public client may not use client_credentials",
        "16:1: clients[2].id: duplicate client id \"svc\"",
        "17:1: clients[2].secret_hash: not a PHC hash string",
        "18:18: clients[2].redirect_uris[0]: \"http://evil.example.com/cb\" uses http",
        "25:1: users[1].username: duplicate username \"a\"",
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("9 error(s)"), "{stdout}");
}

#[test]
fn yaml_with_several_errors_reports_them_all_with_positions() {
    let text = r#"issuer: "https://id.example.com"
clients:
  - id: svc
    grant_types: [client_credentials]
    scopes: [nope]
  - id: cli
    public: true
    redirect_uris: ["http://127.0.0.1/cb", "ftp://x/cb"]
keys:
  - private_key_file: missing.pem
"#;
    let (code, lines, stdout) = check("bad.yaml", text);
    assert_eq!(code, 1, "{stdout}");
    let expected = [
        "3:5: clients[0].secret_hash: a confidential client needs one of",
        "5:14: clients[0].scopes[0]: unknown scope",
        "8:44: clients[1].redirect_uris[1]: \"ftp://x/cb\" uses scheme \"ftp\"",
        "10:5: keys[0].private_key_file: cannot read",
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{stdout}"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_with_their_path() {
    let toml = "issuer = \"http://127.0.0.1:8080\"\n[[clients]]\nid = \"x\"\npublic = true\nredirect_uri = [\"http://127.0.0.1/cb\"]\n";
    let (code, lines, stdout) = check("typo.toml", toml);
    assert_eq!(code, 1);
    assert!(
        lines[0].starts_with("5:1: clients[0].redirect_uri: unknown field `redirect_uri`"),
        "{stdout}"
    );

    let yaml = "issuer: http://127.0.0.1:8080\nclients:\n  - id: x\n    public: true\n    redirect_uri: [http://127.0.0.1/cb]\n";
    let (code, lines, stdout) = check("typo.yaml", yaml);
    assert_eq!(code, 1);
    assert!(
        lines[0].starts_with("5:5: clients[0].redirect_uri: unknown field `redirect_uri`"),
        "{stdout}"
    );

    let (code, lines, stdout) = check(
        "type.toml",
        "issuer = \"http://127.0.0.1:8080\"\n[tokens]\naccess_token_ttl = \"ten minutes\"\n",
    );
    assert_eq!(code, 1);
    assert!(
        lines[0].starts_with("3:20: tokens.access_token_ttl: invalid duration"),
        "{stdout}"
    );

    let (code, lines, stdout) = check(
        "dup.yaml",
        "issuer: http://127.0.0.1:8080\nissuer: http://127.0.0.1:8081\n",
    );
    assert_eq!(code, 1);
    assert!(
        lines[0].starts_with("2:1: issuer: duplicate mapping key"),
        "{stdout}"
    );

    let (code, _, _) = check("cfg.json", "{}");
    assert_eq!(code, 1);
}

#[test]
fn the_example_config_passes_and_warnings_do_not_fail() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let out = Command::new(BIN)
        .args(["check", example])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok: 4 clients, 2 users"), "{stdout}");

    let (code, lines, stdout) = check(
        "warn.toml",
        "issuer = \"http://127.0.0.1:8080\"\n[[clients]]\nid = \"svc\"\nsecret = \"plain\"\ngrant_types = [\"client_credentials\"]\n",
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(
        lines[0].starts_with("4:1: clients[0].secret: warning:"),
        "{stdout}"
    );
}

#[test]
fn allowed_origins_are_checked_one_by_one_with_their_positions() {
    let toml = format!(
        r#"issuer = "http://127.0.0.1:8080"

[[clients]]
id = "spa"
public = true
redirect_uris = ["https://spa.example.com/cb"]
allowed_origins = ["https://spa.example.com", "https://*.example.com", "https://spa.example.com/app",
                   "http://spa.example.com", "https://SPA.example.com", "https://spa.example.com"]

[[clients]]
id = "svc"
secret_hash = "{HASH}"
grant_types = ["client_credentials"]
allowed_origins = ["https://admin.example.com"]
"#
    );
    let (code, lines, stdout) = check("origins.toml", &toml);
    assert_eq!(code, 1, "{stdout}");
    let expected = [
        "7:47: clients[0].allowed_origins[1]: \"https://*.example.com\" has a wildcard",
        "7:72: clients[0].allowed_origins[2]: \"https://spa.example.com/app\" has a path",
        "8:20: clients[0].allowed_origins[3]: \"http://spa.example.com\" uses http; only loopback hosts",
        "8:46: clients[0].allowed_origins[4]: \"https://SPA.example.com\" is not written as browsers send it; write \"https://spa.example.com\"",
        "8:73: clients[0].allowed_origins[5]: \"https://spa.example.com\" is listed twice",
        "14:1: clients[1].allowed_origins: warning: a confidential client's secret cannot be kept in a browser page",
    ];
    assert_eq!(lines.len(), expected.len() + 1, "{stdout}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(want),
            "{line:?} should start with {want:?}\n{stdout}"
        );
    }

    let yaml = "issuer: http://127.0.0.1:8080\nclients:\n  - id: spa\n    public: true\n    redirect_uris: [http://localhost:5173/callback.html]\n    allowed_origins:\n      - http://localhost:5173\n      - \"null\"\n";
    let (code, lines, stdout) = check("origins.yaml", yaml);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines[0].starts_with("8:9: clients[0].allowed_origins[1]: \"null\" is not an origin"),
        "{stdout}"
    );
}

#[test]
fn the_device_grant_needs_no_redirect_uri_and_carries_refresh_tokens() {
    let ok = "issuer = \"http://127.0.0.1:8080\"\n[tokens]\ndevice_code_ttl = \"5m\"\n[[clients]]\nid = \"tv\"\npublic = true\ngrant_types = [\"urn:ietf:params:oauth:grant-type:device_code\", \"refresh_token\"]\n";
    let (code, _, stdout) = check("device.toml", ok);
    assert_eq!(code, 0, "{stdout}");

    let bad = "issuer = \"http://127.0.0.1:8080\"\n[tokens]\ndevice_code_ttl = \"0s\"\n[[clients]]\nid = \"tv\"\npublic = true\ngrant_types = [\"refresh_token\"]\n";
    let (code, lines, stdout) = check("device-bad.toml", bad);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tokens.device_code_ttl: must be at least one second")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refresh_token needs authorization_code or the device_code grant")),
        "{stdout}"
    );
    let (code, _, stdout) = check(
        "device-name.toml",
        "issuer = \"http://127.0.0.1:8080\"\n[[clients]]\nid = \"tv\"\npublic = true\ngrant_types = [\"device_code\"]\n",
    );
    assert_eq!(code, 1, "the grant is named by its URN: {stdout}");
}

#[test]
fn secret_lists_are_checked_item_by_item_and_more_than_two_warned() {
    let (a, b) = (
        gatehouse::crypto::hash_secret("a-secret").expect("hash"),
        gatehouse::crypto::hash_secret("b-secret").expect("hash"),
    );
    let client = |hashes: &str| {
        format!(
            "issuer = \"http://127.0.0.1:8080\"\n[[clients]]\nid = \"svc\"\ngrant_types = [\"client_credentials\"]\nsecret_hash = {hashes}\n"
        )
    };
    let (code, _, stdout) = check("two.toml", &client(&format!("[\"{a}\", \"{HASH}\"]")));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("1 clients") && stdout.contains("0 warnings"),
        "{stdout}"
    );

    let (code, lines, stdout) = check(
        "three.toml",
        &client(&format!("[\"{a}\", \"{b}\", \"{HASH}\"]")),
    );
    assert_eq!(code, 0, "a warning does not fail: {stdout}");
    assert!(
        lines[0].starts_with(
            "5:1: clients[0].secret_hash: warning: lists 3 secrets: a rotation needs two"
        ),
        "{stdout}"
    );

    let (code, lines, stdout) = check(
        "bad.toml",
        &client(&format!("[\n  \"{a}\",\n  \"not-a-hash\",\n  \"{a}\",\n]")),
    );
    assert_eq!(code, 1, "{stdout}");
    for want in [
        "7:3: clients[0].secret_hash[1]: not a PHC hash string",
        "8:3: clients[0].secret_hash[2]: the same secret is listed twice",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains(&a[30..]), "no hash is echoed: {stdout}");

    let (code, lines, stdout) = check("empty.toml", &client("[]"));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines[0].starts_with("5:1: clients[0].secret_hash: list at least one secret"),
        "{stdout}"
    );

    let yaml = "issuer: http://127.0.0.1:8080\nclients:\n  - id: svc\n    grant_types: [client_credentials]\n    secret_file: [new.txt, old.txt]\n";
    let (code, lines, stdout) = check("files.yaml", yaml);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines[0].starts_with("5:19: clients[0].secret_file[0]: cannot read")
            && lines[1].starts_with("5:28: clients[0].secret_file[1]: cannot read"),
        "{stdout}"
    );
}

#[test]
fn a_short_secret_kept_as_itself_is_warned_and_a_random_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("short"), "hunter2\n").expect("write");
    std::fs::write(
        dir.path().join("random"),
        "x3PpQkq7Jw2hV9sB4mZtR8cLyN6aE1fGdU5oWiKjHs0\n",
    )
    .expect("write");
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        "issuer = \"http://127.0.0.1:8080\"\n\
         [[clients]]\nid = \"weak\"\nsecret_file = \"short\"\ngrant_types = [\"client_credentials\"]\n\
         [[clients]]\nid = \"strong\"\nsecret_file = \"random\"\ngrant_types = [\"client_credentials\"]\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check")
        .arg(&config)
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning does not fail: {stdout}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    assert!(
        warnings[0].contains("4:1: clients[0].secret_file: warning: a secret kept as itself should be random and at least 32 characters"),
        "{stdout}"
    );
}

#[test]
fn a_shared_store_needs_keys_and_a_redis_url() {
    let (code, lines, stdout) = check(
        "shared.toml",
        "issuer = \"http://127.0.0.1:9\"\n\n[store]\nurl = \"redis://127.0.0.1:6379/0\"\n",
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("4:1: store.url:")
            && l.contains("needs [[keys]]")
            && l.contains("gatehouse keygen")),
        "the error says where and how to fix it: {stdout}"
    );

    let (code, lines, stdout) = check(
        "bad-url.toml",
        "issuer = \"http://127.0.0.1:9\"\n[store]\nurl = \"memcached://x\"\nkey_prefix = \"has space\"\n",
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("3:1: store.url:")),
        "{stdout}"
    );

    let (code, lines, stdout) = check(
        "env.toml",
        "issuer = \"http://127.0.0.1:9\"\n[store]\nurl = \"${env:GATEHOUSE_TEST_UNSET_REDIS_URL}\"\n",
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("store.url")
                && l.contains("GATEHOUSE_TEST_UNSET_REDIS_URL is not set")),
        "{stdout}"
    );
}

#[test]
fn a_redis_url_from_the_environment_with_keys_passes_and_its_password_is_not_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("signing.pem");
    let made = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .expect("keygen runs");
    assert!(made.status.success());
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        "issuer = \"http://127.0.0.1:9\"\n[store]\nurl = \"${env:TEST_REDIS_URL}\"\nkey_prefix = \"team-a:\"\n\n[[keys]]\nprivate_key_file = \"signing.pem\"\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .env("TEST_REDIS_URL", "redis://:hunter2-secret@10.0.0.1:6379/2")
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");

    // A literal password is allowed, with a warning naming the way out.
    std::fs::write(
        &path,
        "issuer = \"http://127.0.0.1:9\"\n[store]\nurl = \"redis://:hunter2-secret@10.0.0.1:6379/2\"\n\n[[keys]]\nprivate_key_file = \"signing.pem\"\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("store.url") && stdout.contains("${env:NAME}"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
}

#[test]
fn resources_and_client_lifetimes_are_checked() {
    let head = "issuer = \"http://127.0.0.1:9\"\n[[scopes]]\nname = \"a\"\n";
    let ok = r#"
[[resources]]
id = "https://mcp.example.com/mcp"
scopes = ["a"]
access_token_ttl = "5m"
[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1/cb"]
resources = ["https://mcp.example.com/mcp"]
access_token_ttl = "15m"
refresh_token_ttl = "7d"
"#;
    let (code, _, out) = check("ok.toml", &format!("{head}{ok}"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 warnings"), "{out}");
    let bad = r#"
[[resources]]
id = "https://x/#frag"
[[resources]]
id = "relative/path"
[[resources]]
id = "https://mcp.example.com/mcp"
name = " "
scopes = ["a", "openid", "nope"]
access_token_ttl = "0s"
[[resources]]
id = "https://mcp.example.com/mcp"
scopes = ["a"]
[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1/cb"]
resources = ["https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", "https://mcp.example.com/mcp"]
access_token_ttl = "0s"
"#;
    let (code, lines, out) = check("bad.toml", &format!("{head}{bad}"));
    assert_eq!(code, 1, "{out}");
    for path in [
        "resources[0].id",
        "resources[1].id",
        "resources[2].name",
        "resources[2].scopes[1]",
        "resources[2].scopes[2]",
        "resources[2].access_token_ttl",
        "resources[3].id",
        "resources[3].scopes[0]",
        "clients[0].resources[0]",
        "clients[0].resources[2]",
        "clients[0].access_token_ttl",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(": error: {path}: "))
                    || l.contains(&format!(" {path}: "))),
            "{path} in {out}"
        );
    }
    assert!(!out.contains("clients[0].resources[1]"), "{out}");
}

/// A valid Ed25519 COSE_Key (kty OKP, alg EdDSA, crv Ed25519, x = 32 bytes), base64url.
fn cose_ed25519() -> String {
    use base64::Engine;
    let key = aws_lc_rs::signature::Ed25519KeyPair::generate().expect("key");
    let x = aws_lc_rs::signature::KeyPair::public_key(&key)
        .as_ref()
        .to_vec();
    let int = |i: i64| ciborium::Value::Integer(i.into());
    let map = ciborium::Value::Map(vec![
        (int(1), int(1)),
        (int(3), int(-8)),
        (int(-1), int(6)),
        (int(-2), ciborium::Value::Bytes(x)),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&map, &mut out).expect("cbor");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

#[test]
fn passkeys_are_checked_with_positions() {
    let key = cose_ed25519();
    let text = format!(
        r#"issuer = "https://login.example.com"
[login]
rp_id = "example.org"

[[users]]
username = "a"
passkeys = [
  {{ name = "ok", credential_id = "Y3JlZC0x", public_key = "{key}", user_handle = "aGFuZGxl" }},
  {{ name = "bad key", credential_id = "Y3JlZC0y", public_key = "oQEC", user_handle = "aGFuZGxl" }},
  {{ name = "bad id", credential_id = "not base64!", public_key = "{key}", user_handle = "" }},
]

[[users]]
username = "b"
passkeys = [{{ name = "twice", credential_id = "Y3JlZC0x", public_key = "{key}", user_handle = "Yg" }}]

[[users]]
username = "c"
"#
    );
    let (code, lines, stdout) = check("passkeys.toml", &text);
    assert_eq!(code, 1, "{stdout}");
    let expected = [
        "9:51: users[0].passkeys[1].public_key: malformed COSE key",
        "10:22: users[0].passkeys[2].credential_id: is not base64url without padding",
        "10:126: users[0].passkeys[2].user_handle: must be 1 to 64 bytes, is 0",
        "15:31: users[1].passkeys[0].credential_id: credential id used twice",
        "17:1: users[2].password_hash: a user needs a password_hash, passkeys, or links",
        "3:1: login.rp_id: \"example.org\" is not the issuer's host",
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{stdout}"
        );
    }
    // The first passkey is fine; a user with passkeys needs no password.
    assert!(!stdout.contains("passkeys[0].public_key"), "{stdout}");
    assert!(!stdout.contains("users[0].password_hash"), "{stdout}");
    assert!(!stdout.contains("users[1].password_hash"), "{stdout}");
}

/// A file of 6,000 clients (parsed 256 at a time) with a table between them: what a
/// whole parse reports, at the same places, and the clients counted once each. At
/// 1.3 MB its text is released once parsed and read again to place the errors.
#[test]
fn a_big_file_is_checked_as_a_whole_file_would_be() {
    let client = |id: &str, scope: &str| {
        format!(
            "[[clients]]\nid = \"{id}\"\nsecret_hash = \"{HASH}\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"{scope}\"]\n"
        )
    };
    let file = |last_id: &str, scope_450: &str, tail: &str| {
        let mut text = String::from("issuer = \"https://id.example.com\"\n");
        for i in 0..6000 {
            if i == 3000 {
                text.push_str("[[scopes]]\nname = \"read\"\n");
            }
            let id = if i == 5999 {
                last_id.to_owned()
            } else {
                format!("svc-{i}")
            };
            let scope = if i == 4500 { scope_450 } else { "read" };
            text.push_str(&client(&id, scope));
        }
        text.push_str(tail);
        text
    };
    let line_of = |text: &str, needle: &str| {
        let at = text.find(needle).expect("in the file");
        text[..at].matches('\n').count() + 1
    };

    let good = file("svc-5999", "read", "");
    assert!(
        good.len() > 1 << 20,
        "{} bytes: kept, not released",
        good.len()
    );
    let (code, _, stdout) = check("big.toml", &good);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("ok: 6000 clients"), "{stdout}");

    let bad = file("svc-3", "nope", "");
    let (code, lines, stdout) = check("big.toml", &bad);
    assert_eq!(code, 1, "{stdout}");
    let first = line_of(&bad, "id = \"svc-3\"");
    let last = bad.rfind("id = \"svc-3\"").expect("the duplicate");
    let again = bad[..last].matches('\n').count() + 1;
    let nope = line_of(&bad, "scopes = [\"nope\"]");
    for want in [
        format!("{again}:1: clients[5999].id: duplicate client id \"svc-3\" (also at "),
        format!("{nope}:11: clients[4500].scopes[0]: unknown scope \"nope\""),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&want)),
            "missing {want:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("big.toml:{first}:1: clients[3].id)")),
        "{stdout}"
    );

    // A syntax error in a later piece: the whole parse's message, at its place.
    let broken = file("svc-5999", "read", "[[clients]]\nid = \"unterminated\n");
    let (code, lines, stdout) = check("big.toml", &broken);
    assert_eq!(code, 1, "{stdout}");
    let at = line_of(&broken, "id = \"unterminated");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{at}:"))),
        "no error at line {at} in:\n{stdout}"
    );
}
