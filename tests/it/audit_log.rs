//! The audit log of the real binary as an operator runs it: text format on a pipe (no
//! ANSI colours), every event with a caller carries `remote`, and failed
//! authentications are warnings, so a server run at `RUST_LOG=warn` still shows attacks.
//! The log is written in batches: a SIGTERM under load still loses no line.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const PASSWORD: &str = "audit-password";

/// The real binary, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary serving `config` with `rust_log` (None: the default level) on a free
/// port (at `warn` it does not log its address), its address and its stderr lines.
fn spawn(
    dir: &tempfile::TempDir,
    config: &str,
    rust_log: Option<&str>,
) -> (Server, String, Receiver<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let path = dir.path().join("gatehouse.toml");
    let config = config.replace("bind = \"127.0.0.1:0\"", &format!("bind = \"{addr}\""));
    std::fs::write(&path, config).expect("write config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped());
    if let Some(level) = rust_log {
        command.env("RUST_LOG", level);
    }
    let mut child = Server(command.spawn().expect("spawn"));
    let stderr = child.0.stderr.take().expect("stderr");
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let up = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(&addr).is_ok()
    });
    assert!(up, "the server listens on {addr}");
    (child, addr, log_rx)
}

/// Stops the server with SIGTERM and returns every line it logged.
fn stop(mut child: Server, logs: Receiver<String>) -> Vec<String> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = child.0.wait();
    // The reader thread ends with the pipe; give it the last lines.
    let mut lines = Vec::new();
    while let Ok(line) = logs.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    lines
}

fn config() -> String {
    let hash = gatehouse::crypto::hash_secret(PASSWORD).expect("hash");
    config_with(&format!(
        r#"
[[clients]]
id = "svc"
secret_hash = "{}"
grant_types = ["client_credentials"]

[[clients]]
id = "web"
public = true
first_party = true
redirect_uris = ["http://127.0.0.1/cb"]

[[users]]
id = "u-7"
username = "alice"
password_hash = "{hash}"
"#,
        service_hash()
    ))
}

/// The value of `<input name="NAME" value="...">` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden input") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A login through the pages of the real binary: returns the redirect with the code.
async fn log_in(base: &str) -> String {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let pkce = crate::support::browser::Pkce::new("audit");
    let page = http
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "http://127.0.0.1:5000/cb"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize")
        .text()
        .await
        .expect("page");
    let response = http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", hidden(&page, "csrf_token")),
            ("request", hidden(&page, "request")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 303);
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

fn line_with<'a>(logs: &'a [String], event: &str) -> Option<&'a String> {
    let field = format!("event=\"{event}\"");
    logs.iter().find(|l| l.contains(&field))
}

#[tokio::test]
async fn events_carry_the_caller_and_failures_are_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr, logs) = spawn(&dir, &config(), None);
    let base = format!("http://{addr}");
    let http = crate::support::http_client();
    let token: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth("svc", Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = token["access_token"].as_str().expect("access token");
    let wrong = http
        .post(format!("{base}/token"))
        .basic_auth("svc", Some("wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(wrong.status(), 401);
    let revoked = http
        .post(format!("{base}/revoke"))
        .basic_auth("svc", Some(SERVICE_SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert!(log_in(&base).await.contains("code="));
    let logs = stop(child, logs);

    assert!(
        !logs.iter().any(|l| l.contains('\u{1b}')),
        "no ANSI escapes when stderr is a pipe: {logs:?}"
    );
    for event in [
        "token_issued",
        "token_revoked",
        "code_issued",
        "login_succeeded",
        "client_auth_failed",
    ] {
        let line = line_with(&logs, event).unwrap_or_else(|| panic!("no {event} in {logs:?}"));
        assert!(
            line.contains("remote=127.0.0.1"),
            "{event} names its caller: {line}"
        );
    }
    let failed = line_with(&logs, "client_auth_failed").expect("client_auth_failed");
    assert!(
        failed.contains(" WARN "),
        "a failed authentication is a warning: {failed}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("wrong-secret") || l.contains(access)),
        "no secret or token logged"
    );
}

#[tokio::test]
async fn a_caller_cannot_forge_a_log_line_or_reach_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr, logs) = spawn(&dir, &config(), None);
    let response = crate::support::http_client()
        .post(format!("http://{addr}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_id",
                "nobody\n2026-12-01T00:00:00Z  INFO gatehouse: event=\"token_issued\" forged=1\r\u{1b}[2J",
            ),
            ("client_secret", "whatever"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 401);
    let logs = stop(child, logs);
    let failed = line_with(&logs, "client_auth_failed").expect("client_auth_failed");
    assert!(
        failed.contains("client_id=nobody\\n2026-12-01") && failed.contains("forged=1\\r\\x1b[2J"),
        "the caller's newline, carriage return and escape are shown escaped on the event's own line: {failed}"
    );
    assert!(
        !logs.iter().any(|l| l.starts_with("2026-12-01T00:00:00Z")),
        "no forged line: {logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.contains('\u{1b}') || l.contains('\r')),
        "{logs:?}"
    );
}

#[tokio::test]
async fn at_warn_the_attacks_still_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr, logs) = spawn(&dir, &config(), Some("warn"));
    let http = crate::support::http_client();
    for secret in [SERVICE_SECRET, "wrong-secret"] {
        http.post(format!("http://{addr}/token"))
            .basic_auth("svc", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
    }
    let logs = stop(child, logs);
    assert!(line_with(&logs, "client_auth_failed").is_some(), "{logs:?}");
    assert!(line_with(&logs, "token_issued").is_none(), "{logs:?}");
}

#[tokio::test]
async fn a_reload_logs_what_it_changes_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = config();
    let (child, _addr, logs) = spawn(&dir, &before, None);
    let rotated = gatehouse::crypto::hash_secret("a-new-service-secret").expect("hash");
    let after = before.replace(service_hash(), &rotated).replace(
        "[\"http://127.0.0.1/cb\"]",
        "[\"http://127.0.0.1/cb\", \"http://127.0.0.1/cb2\"]",
    );
    assert_ne!(before, after);
    // Keep the bind the server was started with: rewrite the file it serves in place.
    let path = dir.path().join("gatehouse.toml");
    let serving = std::fs::read_to_string(&path).expect("read config");
    let bind = serving
        .lines()
        .find(|l| l.starts_with("bind = "))
        .expect("bind line")
        .to_owned();
    replace_file(&path, &after.replace("bind = \"127.0.0.1:0\"", &bind));
    let mut reloaded = None;
    for _ in 0..100 {
        match logs.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("event=\"config_reloaded\"") => {
                reloaded = Some(line);
                break;
            }
            _ => {}
        }
    }
    let _ = stop(child, logs);
    let line = reloaded.expect("a config_reloaded line");
    assert!(
        line.contains("credential_replaced client svc: secret rotated"),
        "{line}"
    );
    assert!(
        line.contains("widens client web: redirect URI added \"http://127.0.0.1/cb2\""),
        "{line}"
    );
    assert!(line.contains("widens=1"), "{line}");
    assert!(!line.contains("argon2"), "no hash logged: {line}");
    let serving = match gatehouse::load::load(&path) {
        Ok(loaded) => gatehouse::crypto::hex(&loaded.fingerprint),
        Err(e) => panic!("the new config is invalid: {e}"),
    };
    assert!(
        line.contains(&format!("config_sha256=\"{serving}\""))
            || line.contains(&format!("config_sha256={serving}")),
        "the line names the serving config: {line}"
    );
}

/// Client-credentials tokens asked for as fast as one connection can until the server
/// stops answering; `after` tokens in all (over every task), the first task to pass
/// it sends SIGTERM. The tokens this task got.
async fn issue_until_stopped(
    base: String,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pid: u32,
    after: usize,
) -> usize {
    use std::sync::atomic::Ordering;
    let http = crate::support::http_client();
    let mut mine = 0;
    loop {
        let sent = http
            .post(format!("{base}/token"))
            .basic_auth("svc", Some(SERVICE_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let Ok(response) = sent else {
            // Refused or closed: the server stopped listening.
            return mine;
        };
        if response.status() != 200 || response.bytes().await.is_err() {
            continue;
        }
        mine += 1;
        if issued.fetch_add(1, Ordering::SeqCst) + 1 == after {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test]
async fn sigterm_under_load_loses_no_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr, logs) = spawn(&dir, &config(), None);
    let base = format!("http://{addr}");
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pid = child.0.id();
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(issue_until_stopped(base.clone(), issued.clone(), pid, 2000)))
        .collect();
    let mut got = 0;
    for task in tasks {
        got += task.await.expect("task");
    }
    let logs = stop(child, logs);
    assert!(got >= 2000, "the load ran until the signal: {got} tokens");
    let logged = logs
        .iter()
        .filter(|l| l.contains("event=\"token_issued\""))
        .count();
    // Every token a client got has its line (a request answered while the client was
    // cut off may have a line and no token: never the other way round).
    assert!(
        logged >= got && logged <= got + 8,
        "{got} tokens issued, {logged} token_issued lines"
    );
    assert!(
        logs.iter().any(|l| l.contains("event=\"stopped\"")),
        "the server logged its clean stop: {:?}",
        logs.last()
    );
}
