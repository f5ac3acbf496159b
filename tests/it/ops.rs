//! What an operator runs: the Kubernetes manifests' own config through
//! `gatehouse check --offline` (as CI does, without the secrets), `diff --offline`, the
//! warnings about a deployment behind a proxy, the bind override of a container, and
//! the config errors' help (did you mean, case-insensitive `keygen --algorithm`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Runs `gatehouse ARGS` without the manifests' environment variables; the exit code
/// and stdout then stderr.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("GATEHOUSE_REDIS_URL")
        .env_remove("GATEHOUSE_BIND")
        .output()
        .expect("gatehouse runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `gatehouse.toml` of the ConfigMap in `deploy/kubernetes/NAME`.
fn manifest_config(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read the manifest");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .and_then(|d| d["data"]["gatehouse.toml"].as_str())
        .expect("a ConfigMap with gatehouse.toml");
    config.to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn the_manifests_config_passes_check_offline_and_needs_its_secrets_without() {
    for manifest in ["gatehouse.yaml", "gatehouse-single.yaml"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "gatehouse.toml", &manifest_config(manifest));

        let (code, out) = run(&["check", "--offline", &path]);
        assert_eq!(code, 0, "{manifest}: {out}");
        assert!(
            out.contains(": ok: 1 clients, 0 users, 1 keys, 1 custom scopes, 0 warnings")
                && out.contains("offline"),
            "{manifest}: {out}"
        );

        // Off-cluster, without --offline, the key and the secret are not there.
        let (code, out) = run(&["check", &path]);
        assert_eq!(code, 1, "{manifest}: {out}");
        assert!(
            out.contains(
                "keys[0].private_key_file: cannot read /run/secrets/gatehouse/signing-key.pem"
            ) && out.contains("clients[0].secret_file: cannot read"),
            "{manifest}: {out}"
        );
    }
    // The shared store's URL comes from the environment.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "g.toml", &manifest_config("gatehouse.yaml"));
    let (_, out) = run(&["check", &path]);
    assert!(
        out.contains("store.url: environment variable GATEHOUSE_REDIS_URL is not set"),
        "{out}"
    );
}

#[test]
fn offline_still_applies_every_other_rule_and_reads_included_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "issuer = \"http://127.0.0.1:9\"\n\
                  [store]\nurl = \"${env:NOT_SET_ANYWHERE}\"\n\
                  [[clients]]\nid = \"svc\"\nsecret_file = \"missing.secret\"\n\
                  grant_types = [\"client_credentials\"]\nscopes = [\"nope\"]\n";
    let path = write(dir.path(), "g.toml", config);
    let (code, out) = run(&["check", "--offline", &path]);
    assert_eq!(code, 1, "{out}");
    // The unknown scope is found; the missing file and variable are not errors; the
    // store from the environment is taken as shared, so it needs [[keys]].
    assert!(out.contains("clients[0].scopes[0]"), "{out}");
    assert!(
        out.contains("store.url: a shared store needs [[keys]]"),
        "{out}"
    );
    assert!(
        !out.contains("cannot read") && !out.contains("is not set"),
        "{out}"
    );

    // Included files are config: they must exist.
    let path = write(
        dir.path(),
        "h.toml",
        "include = [\"team.toml\"]\nissuer = \"http://127.0.0.1:9\"\n",
    );
    let (code, out) = run(&["check", "--offline", &path]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("include[0]: cannot read"), "{out}");
}

const DIFF_OLD: &str = "issuer = \"http://127.0.0.1:9\"\n\
    [[keys]]\nalgorithm = \"EdDSA\"\nprivate_key_file = \"/run/secrets/k.pem\"\n\
    [[clients]]\nid = \"svc\"\nsecret_file = \"/run/secrets/svc\"\n\
    grant_types = [\"client_credentials\"]\n";

#[test]
fn diff_offline_compares_what_the_configs_say_without_their_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = write(dir.path(), "old.toml", DIFF_OLD);
    // The same references: nothing changed, although no file was read.
    let (code, out) = run(&["diff", "--offline", "--fail-on", "widens", &old, &old]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("rotated") && !out.contains("key "), "{out}");

    let widened = DIFF_OLD.replace(
        "grant_types = [\"client_credentials\"]",
        "grant_types = [\"client_credentials\"]\nintrospect = true",
    );
    let new = write(dir.path(), "new.toml", &widened);
    let (code, out) = run(&["diff", "--offline", "--fail-on", "widens", &old, &new]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("widens") && out.contains("svc"), "{out}");

    // Another secret file is another secret.
    let moved = DIFF_OLD.replace("/run/secrets/svc", "/run/secrets/svc-2");
    let new = write(dir.path(), "moved.toml", &moved);
    let (_, out) = run(&["diff", "--offline", &old, &new]);
    assert!(out.contains("client svc: secret rotated"), "{out}");

    // Without --offline, the secrets must be there.
    let (code, out) = run(&["diff", &old, &new]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn check_warns_about_a_proxy_in_front_that_is_not_trusted_or_one_that_trusts_everyone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "",
            Some("server.trusted_proxies: warning: the issuer is https"),
        ),
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n",
            Some("server.trusted_proxies[1]: warning: \"0.0.0.0/0\" trusts every address"),
        ),
        (
            "[server]\ntrusted_proxies = [\"::/0\"]\n",
            Some("server.trusted_proxies[0]: warning: \"::/0\" trusts every address"),
        ),
        ("[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n", None),
    ];
    for (server, warning) in cases {
        let text = format!("issuer = \"https://id.example.com\"\n{server}");
        let path = write(dir.path(), "g.toml", &text);
        let (code, out) = run(&["check", &path]);
        // Warnings never fail the check.
        assert_eq!(code, 0, "{out}");
        match warning {
            Some(w) => assert!(out.contains(w) && out.contains("1 warnings"), "{out}"),
            None => assert!(out.contains("0 warnings"), "{out}"),
        }
    }
    // A plain-http issuer (development, no proxy) draws no warning.
    let path = write(dir.path(), "g.toml", "issuer = \"http://127.0.0.1:9\"\n");
    let (_, out) = run(&["check", &path]);
    assert!(out.contains("0 warnings"), "{out}");
}

#[test]
fn an_unknown_field_or_value_names_the_closest_valid_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "issuer = \"http://127.0.0.1:9\"\n[[clients]]\nid = \"x\"\npublic = true\nredirect_uri = [\"http://127.0.0.1/cb\"]\n";
    let path = write(dir.path(), "typo.toml", toml);
    let (code, out) = run(&["check", &path]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(":5:1: clients[0].redirect_uri: unknown field `redirect_uri`")
            && out.contains("did you mean `redirect_uris`?"),
        "{out}"
    );

    let yaml =
        "issuer: http://127.0.0.1:9\nkeys:\n  - algorithm: es256\n    private_key_file: k.pem\n";
    let path = write(dir.path(), "case.yaml", yaml);
    let (code, out) = run(&["check", &path]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("did you mean `ES256`?"), "{out}");

    // Nothing close: no guess.
    let path = write(
        dir.path(),
        "far.toml",
        "issuer = \"http://127.0.0.1:9\"\ncolour = 1\n",
    );
    let (_, out) = run(&["check", &path]);
    assert!(
        out.contains("unknown field `colour`") && !out.contains("did you mean"),
        "{out}"
    );
}

#[test]
fn a_syntax_error_has_a_position_and_no_field_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "broken.toml",
        "issuer = \"http://127.0.0.1:9\"\n[server\n",
    );
    let (code, out) = run(&["check", &path]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{path}:2:")))
        .unwrap_or_else(|| panic!("a diagnostic at line 2: {out}"));
    let rest = line.splitn(4, ':').nth(3).unwrap_or_default();
    assert!(
        !rest.starts_with(" .:") && !rest.starts_with(" :"),
        "{line}"
    );
}

#[test]
fn keygen_takes_the_algorithm_in_any_case() {
    for algorithm in ["es256", "ES256", "eddsa"] {
        let (code, out) = run(&["keygen", "--algorithm", algorithm]);
        assert_eq!(code, 0, "{algorithm}: {out}");
        assert!(out.starts_with("-----BEGIN PRIVATE KEY-----"), "{out}");
    }
    let (code, _) = run(&["keygen", "--algorithm", "es257"]);
    assert_eq!(code, 2);
}

/// A `gatehouse serve` child, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `config` with `args` and `env`; the address it logs that it listens on, or
/// its output when it exits first.
fn serve(config: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(Served, String), String> {
    let mut child = Command::new(BIN)
        .args(["serve", "--log-format", "json", "--config", config])
        .args(args)
        .env_remove("GATEHOUSE_BIND")
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
    let stderr = child.stderr.take().expect("stderr");
    let served = Served(child);
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["fields"]["message"] == "listening"
        {
            let addr = v["fields"]["addr"].as_str().unwrap_or_default().to_owned();
            return Ok((served, addr));
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    Err(seen)
}

/// `GET /healthz` over a plain TCP connection; the response's first line.
fn healthz(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn gatehouse_bind_and_the_bind_flag_override_the_configured_address() {
    // The configured address is taken, so only an override can serve.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "g.toml",
        &format!("issuer = \"http://127.0.0.1:9\"\n[server]\nbind = \"{taken_addr}\"\n"),
    );
    let refused = serve(&config, &[], &[])
        .err()
        .expect("the taken address fails");
    assert!(refused.contains("binding"), "{refused}");

    let (_env, addr) =
        serve(&config, &[], &[("GATEHOUSE_BIND", "127.0.0.1:0")]).expect("serves by env");
    assert_ne!(addr, taken_addr);
    assert_eq!(healthz(&addr), "HTTP/1.1 200 OK");

    // The flag wins over the environment.
    let (_flag, addr) = serve(
        &config,
        &["--bind", "127.0.0.1:0"],
        &[("GATEHOUSE_BIND", &taken_addr)],
    )
    .expect("serves by flag");
    assert_eq!(healthz(&addr), "HTTP/1.1 200 OK");

    let (code, out) = {
        let out = Command::new(BIN)
            .args(["serve", "--config", &config])
            .env("GATEHOUSE_BIND", "everywhere")
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--bind"), "{out}");
}

#[test]
fn every_unknown_field_and_wrong_type_of_a_file_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "issuer = \"http://127.0.0.1:9\"\ncolour = 1\n[[clients]]\nid = \"x\"\npublic = \"yes\"\nredirect_uri = [\"http://127.0.0.1/cb\"]\n";
    let yaml = "issuer: http://127.0.0.1:9\ncolour: 1\nclients:\n  - id: x\n    public: \"yes\"\n    redirect_uri: [http://127.0.0.1/cb]\n";
    for (name, text) in [("shape.toml", toml), ("shape.yaml", yaml)] {
        let path = write(dir.path(), name, text);
        let (code, out) = run(&["check", &path]);
        assert_eq!(code, 1, "{out}");
        let at = |line: usize| format!("{path}:{line}:");
        let lines: Vec<&str> = out.lines().collect();
        for (line, field, what) in [
            (2, "colour", "unknown field `colour`"),
            (5, "clients[0].public", "\"yes\""),
            (6, "clients[0].redirect_uri", "unknown field `redirect_uri`"),
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(&at(line))
                    && l.contains(&format!(": {field}: "))
                    && l.contains(what)),
                "{name}: missing {field} at line {line}:\n{out}"
            );
        }
        assert!(out.contains("3 error(s)"), "{name}: {out}");
    }
}

#[test]
fn the_committed_configuration_reference_is_what_the_command_prints() {
    let (code, printed) = run(&["schema", "--markdown"]);
    assert_eq!(code, 0, "{printed}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let committed = std::fs::read_to_string(&path).expect("docs/configuration.md");
    assert!(
        printed == committed,
        "docs/configuration.md is stale: run `gatehouse schema --markdown > docs/configuration.md`"
    );
    // Every section and a field of each kind is there.
    for line in [
        "## `[server]`",
        "## `[[clients]]`",
        "| `trusted_proxies` |",
        "| `issuer` | string | required |",
    ] {
        assert!(committed.contains(line), "missing {line}");
    }
}
