//! `examples/cli.rs` end to end: the built example runs as a user would run it, against
//! the real server on a free port, and the browser's part is done over HTTP as the
//! other tests do it. The device login, `whoami`, `token` (and its refresh), `logout`,
//! the loopback login, and the callbacks the CLI must refuse.

use crate::support::browser::{Browser, Seen, text};
use crate::support::examples::example_binary;
use crate::support::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const ALICE_PASSWORD: &str = SERVICE_SECRET;
const ACCESS_TTL: u64 = 600;

/// The example CLI's executable (`support::examples`).
fn cli_binary() -> PathBuf {
    example_binary("cli")
}

/// A server whose issuer is its real address (the CLI finds everything by discovery),
/// with the CLI's client (not first-party: the loopback login asks consent) and alice;
/// and the CLI for it, its files in a fresh directory: the token file given with
/// --token-file when `own_token_file`, else the default under XDG_CONFIG_HOME.
async fn start(own_token_file: bool) -> (TestServer, Cli, tempfile::TempDir) {
    let (issuer, config) = discoverable_config(&format!(
        r#"
[tokens]
access_token_ttl = "{ACCESS_TTL}s"

[[clients]]
id = "cli"
name = "Terminal Tool"
public = true
grant_types = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]
scopes = ["openid", "profile", "email", "offline_access"]
redirect_uris = ["http://127.0.0.1/callback"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
name = "Alice Liddell"
email = "alice@example.com"
email_verified = true
"#,
        hash = service_hash()
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let cli = Cli {
        issuer,
        token_file: own_token_file.then(|| home.path().join("own").join("tokens.json")),
        config_home: home.path().join("config"),
    };
    (TestServer::start(&config).await, cli, home)
}

/// How the example is run: against one issuer, with its token file where `home` says.
struct Cli {
    issuer: String,
    /// `Some`: passed with --token-file; `None`: the default under XDG_CONFIG_HOME.
    token_file: Option<PathBuf>,
    config_home: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(cli_binary());
        command
            .args(["--issuer", &self.issuer, "--client-id", "cli"])
            .env_remove("GATEHOUSE_CLI_TOKEN_FILE")
            .env("XDG_CONFIG_HOME", &self.config_home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(file) = &self.token_file {
            command.arg("--token-file").arg(file);
        }
        command.args(args);
        command
    }

    /// Runs a command to its end (within 30 s).
    async fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).output();
        tokio::time::timeout(Duration::from_secs(30), child)
            .await
            .expect("the CLI finishes")
            .expect("the CLI runs")
    }

    /// Runs a command that must succeed; its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn token_path(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| self.config_home.join("gatehouse-cli").join("tokens.json"))
    }

    fn stored(&self) -> Value {
        let text = std::fs::read(self.token_path()).expect("the token file");
        serde_json::from_slice(&text).expect("JSON")
    }
}

/// A running `login`, read line by line as the user reads it.
struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    shown: Vec<String>,
}

impl Running {
    fn spawn(cli: &Cli, args: &[&str]) -> Self {
        let mut child = cli.command(args).spawn().expect("the CLI starts");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            shown: Vec::new(),
        }
    }

    /// Reads lines until one (trimmed) starts with `prefix`; returns the rest of it.
    async fn line_after(&mut self, prefix: &str) -> String {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("the CLI keeps talking")
                .expect("stdout")
                .unwrap_or_else(|| panic!("no line starting {prefix:?} in {:?}", self.shown));
            self.shown.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// Waits for the end (within 30 s, a device poll being 5 s apart): the exit status,
    /// all of stdout, and stderr.
    async fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let rest = async {
            while let Some(line) = self.lines.next_line().await.expect("stdout") {
                self.shown.push(line);
            }
            let mut stderr = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr)
                    .await
                    .expect("stderr");
            }
            let status = self.child.wait().await.expect("exit status");
            (status, stderr)
        };
        let (status, stderr) = tokio::time::timeout(Duration::from_secs(30), rest)
            .await
            .expect("the CLI finishes");
        (status, self.shown.join("\n"), stderr)
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// The user, on another device: opens the page with the code pre-filled, continues,
/// signs in as alice, sees the client and the code, and answers `decision`.
async fn decide_on_another_device(server: &TestServer, user_code: &str, decision: &str) -> Seen {
    let mut browser = Browser::new(server);
    let entry = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(entry.status, 200);
    let sign_in = browser.submit("/device", &[("user_code", user_code)]).await;
    assert!(text(&sign_in).contains("Sign in"), "{}", text(&sign_in));
    let confirm = browser
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", ALICE_PASSWORD)],
        )
        .await;
    let shown = text(&confirm);
    assert!(
        shown.contains("Terminal Tool") && shown.contains(user_code),
        "{shown}"
    );
    browser
        .submit("/device/decide", &[("decision", decision)])
        .await
}

/// Starts `login --device`; the CLI and the user code it shows.
async fn start_device(cli: &Cli) -> (Running, String) {
    let mut login = Running::spawn(cli, &["login", "--device"]);
    let verification = login.line_after("To sign in, open ").await;
    assert_eq!(
        verification,
        format!("{}/device on any device and enter the code", cli.issuer)
    );
    let complete = login.line_after("or open ").await;
    let user_code = complete
        .strip_prefix(&format!("{}/device?user_code=", cli.issuer))
        .expect("verification_uri_complete")
        .to_owned();
    assert!(
        login.shown.iter().any(|l| l.trim() == user_code),
        "the code is shown on its own line: {:?}",
        login.shown
    );
    (login, user_code)
}

#[tokio::test]
async fn a_device_login_denied_in_the_browser_fails_and_saves_nothing() {
    let (server, cli, _home) = start(false).await;
    let (login, user_code) = start_device(&cli).await;
    let done = decide_on_another_device(&server, &user_code, "deny").await;
    assert!(text(&done).contains("Device denied"), "{}", text(&done));
    let (status, _, stderr) = login.finish().await;
    assert!(!status.success());
    assert!(
        stderr.contains("the login was denied in the browser"),
        "{stderr}"
    );
    assert!(!cli.token_path().exists(), "nothing saved");
}

#[tokio::test]
async fn device_login_then_whoami_token_refresh_and_logout() {
    let (server, cli, _home) = start(false).await;

    let (login, user_code) = start_device(&cli).await;
    let done = decide_on_another_device(&server, &user_code, "allow").await;
    assert!(text(&done).contains("Device connected"), "{}", text(&done));

    let (status, stdout, stderr) = login.finish().await;
    assert!(status.success(), "{status}: {stdout}\n{stderr}");
    let path = cli.token_path();
    assert!(
        stdout.contains(&format!(
            "Logged in as alice@example.com. Tokens saved in {}",
            path.display()
        )),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600, "the token file is the user's alone");
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }
    let first = cli.stored();
    assert_eq!(first["subject"], "u-alice");
    let access = first["access_token"].as_str().expect("access").to_owned();
    let refresh = first["refresh_token"].as_str().expect("refresh").to_owned();

    let me: Value = serde_json::from_str(&cli.ok(&["whoami"]).await).expect("claims");
    assert_eq!(me["sub"], "u-alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["name"], "Alice Liddell");

    assert_eq!(
        cli.ok(&["token"]).await.trim(),
        access,
        "a token valid for 10 more minutes is printed as it is"
    );

    // The access token's lifetime (and the server's 5 s leeway) passes at the server.
    // The CLI's clock is now that much behind the server's, so a token still valid at
    // the server's now is one valid that much longer by the CLI's: --min-valid says so.
    let passed = ACCESS_TTL + 10;
    server.clock().advance(Duration::from_secs(passed));
    assert_eq!(userinfo_status(&server, &access).await, 401);
    let min_valid = format!("{}s", passed + 1);
    let renewed = cli.ok(&["token", "--min-valid", &min_valid]).await;
    let renewed = renewed.trim();
    assert_ne!(renewed, access, "refreshed");
    assert_eq!(userinfo_status(&server, renewed).await, 200);
    let second = cli.stored();
    assert_eq!(second["access_token"], renewed);
    let rotated = second["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(rotated, refresh, "the rotated refresh token is saved");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600, "still private after the rewrite");
    assert_eq!(
        serde_json::from_str::<Value>(&cli.ok(&["whoami"]).await).expect("claims")["sub"],
        "u-alice"
    );

    let bye = cli.ok(&["logout"]).await;
    assert!(bye.contains("Logged out"), "{bye}");
    assert!(!path.exists(), "the token file is deleted");
    let again = server
        .token_raw(&format!(
            "grant_type=refresh_token&client_id=cli&refresh_token={rotated}"
        ))
        .await;
    assert_eq!(again.status(), 400, "the refresh token is revoked");
    let body: Value = again.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(userinfo_status(&server, renewed).await, 401);

    let out = cli.run(&["token"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not logged in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `login --no-browser` and reads the URL it prints; the URL's query too.
async fn start_loopback(
    cli: &Cli,
) -> (Running, url::Url, std::collections::HashMap<String, String>) {
    let mut login = Running::spawn(cli, &["login", "--no-browser", "--timeout", "60s"]);
    let url = login
        .line_after(&format!("{}/authorize?", cli.issuer))
        .await;
    let url = url::Url::parse(&format!("{}/authorize?{url}", cli.issuer)).expect("a URL");
    let params = url.query_pairs().into_owned().collect();
    (login, url, params)
}

#[tokio::test]
async fn loopback_login_with_pkce_state_and_iss() {
    let (server, cli, _home) = start(true).await;
    let issuer = cli.issuer.clone();
    let (login, url, params) = start_loopback(&cli).await;
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], "cli");
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params.contains_key("state") && params.contains_key("nonce"));
    let redirect = &params["redirect_uri"];
    let port = redirect
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/callback"))
        .expect("a loopback redirect on a port of the CLI's choosing");
    assert_ne!(port, "0");

    // The browser: the URL, sign in, allow (the client is not first-party), and the
    // redirect to the CLI's listener.
    let mut browser = Browser::new(&server);
    let page = browser
        .get(&format!("/authorize?{}", url.query().expect("query")))
        .await;
    assert_eq!(page.status, 200);
    let consent = browser.login("alice", ALICE_PASSWORD).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let back = browser.consent("allow").await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(&back.redirect_base(), redirect);
    assert_eq!(back.redirect_params()["iss"], issuer);
    let landing = server
        .http
        .get(back.location.clone().expect("location"))
        .send()
        .await
        .expect("the CLI's listener answers");
    assert_eq!(landing.status(), 200);
    assert_eq!(landing.headers()["cache-control"], "no-store");
    let landing = landing.text().await.expect("page");
    assert!(landing.contains("You can close this tab"), "{landing}");

    let (status, stdout, stderr) = login.finish().await;
    assert!(status.success(), "{status}: {stdout}\n{stderr}");
    assert!(
        stdout.contains("Logged in as alice@example.com"),
        "{stdout}"
    );
    let stored = cli.stored();
    assert_eq!(stored["subject"], "u-alice");
    assert!(stored["refresh_token"].is_string());
    #[cfg(unix)]
    assert_eq!(mode(&cli.token_path()), 0o600);
    assert_eq!(
        userinfo_status(&server, stored["access_token"].as_str().expect("access")).await,
        200
    );
}

#[tokio::test]
async fn loopback_login_refuses_a_callback_of_another_login_or_issuer() {
    let (server, cli, _home) = start(true).await;
    let issuer = cli.issuer.clone();

    let (login, _, params) = start_loopback(&cli).await;
    let redirect = &params["redirect_uri"];
    let stray = server
        .http
        .get(redirect.replace("/callback", "/favicon.ico"))
        .send()
        .await
        .expect("listener");
    assert_eq!(stray.status(), 404, "other paths do not end the login");
    refused(
        &server,
        &cli,
        login,
        &params,
        "not-this-login",
        &issuer,
        "state is not this login's",
    )
    .await;

    let (login, _, params) = start_loopback(&cli).await;
    let state = params["state"].clone();
    refused(
        &server,
        &cli,
        login,
        &params,
        &state,
        "http://127.0.0.1:1",
        "RFC 9207",
    )
    .await;
}

/// Sends the waiting `login` a callback with `state` and `iss`: the CLI answers 400,
/// fails saying `why`, and saves nothing.
async fn refused(
    server: &TestServer,
    cli: &Cli,
    login: Running,
    params: &HashMap<String, String>,
    state: &str,
    iss: &str,
    why: &str,
) {
    let answer = server
        .http
        .get(&params["redirect_uri"])
        .query(&[("code", "from-elsewhere"), ("state", state), ("iss", iss)])
        .send()
        .await
        .expect("listener");
    assert_eq!(answer.status(), 400);
    let (status, _, stderr) = login.finish().await;
    assert!(!status.success(), "the login fails");
    assert!(stderr.contains(why), "{stderr}");
    assert!(!cli.token_path().exists(), "nothing saved");
}
