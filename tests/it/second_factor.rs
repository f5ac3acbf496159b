//! The second factor after a password (issue 25): TOTP codes through the real pages,
//! time from the server's injectable clock; `[login] second_factor` off, optional and
//! required; a client's `require_second_factor`; `acr_values`; `prompt=login` and
//! `prompt=none`; `amr`/`acr` in the ID token; single use across two servers on one
//! Redis; wrong codes counted with failed logins; the device grant's pages;
//! `gatehouse check` and `gatehouse totp new`.

use crate::support::browser::{Browser, Pkce, Seen};
use crate::support::*;
use gatehouse::protocol::totp::{STEP_SECONDS, Secret, step_of};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// alice's secret: RFC 6238's SHA-1 test secret, base32, kept in a file.
const ALICE_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const MFA: &str = "urn:gatehouse:acr:mfa";
const PWD: &str = "urn:gatehouse:acr:pwd";

fn body(mode: &str, head: &str) -> String {
    config_with(&format!(
        r#"{head}
[login]
second_factor = "{mode}"

[limits]
login_max_failures = 4

[[clients]]
id = "web"
secret_hash = "{hash}"
first_party = true
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]

[[clients]]
id = "strict"
secret_hash = "{hash}"
first_party = true
require_second_factor = true
redirect_uris = ["https://strict.example.com/cb"]
scopes = ["openid"]

[[clients]]
id = "tv"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{hash}"
totp_secret = "${{file:alice.totp}}"

[[users]]
id = "u-bob"
username = "bob"
password_hash = "{hash}"
"#,
        hash = service_hash()
    ))
}

/// A server on the config of `mode` (`head` before it: a `[store]`), alice's secret
/// in the file it names.
async fn start_with(mode: &str, head: &str, dir: tempfile::TempDir) -> TestServer {
    std::fs::write(dir.path().join("alice.totp"), format!("{ALICE_TOTP}\n")).expect("secret");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, body(mode, head)).expect("config");
    TestServer::start_at(dir, path).await
}

async fn start(mode: &str) -> TestServer {
    start_with(mode, "", tempfile::tempdir().expect("tempdir")).await
}

/// alice's code `offset` steps from the server's now.
fn code(server: &TestServer, offset: i64) -> String {
    let secret = Secret::from_base32(ALICE_TOTP).expect("secret");
    let step = step_of(server.clock().now()).saturating_add_signed(offset);
    format!("{:06}", secret.code_of_step(step, 6))
}

/// Moves the server's clock to one second into the next step, so that a test's codes
/// are for the step they were made for (nothing here takes 29 s).
fn to_step_start(server: &TestServer) {
    let step_ms = STEP_SECONDS * 1000;
    let into = server.clock().now_ms() % step_ms;
    server
        .clock()
        .advance(Duration::from_millis(step_ms - into + 1000));
}

fn authz<'a>(
    client: &'a str,
    pkce: &'a Pkce,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let redirect = if client == "web" {
        "https://web.example.com/cb"
    } else {
        "https://strict.example.com/cb"
    };
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

fn is_second_factor_page(seen: &Seen) -> bool {
    seen.status == 200
        && seen.body.contains("name=\"code\"")
        && seen.body.contains("autocomplete=\"one-time-code\"")
        && seen.body.contains("inputmode=\"numeric\"")
}

/// Opens `/authorize` for `client` and signs in as `user`: the page that follows.
async fn password(browser: &mut Browser<'_>, client: &str, user: &str, pkce: &Pkce) -> Seen {
    let login = browser.authorize(&authz(client, pkce, &[])).await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    browser.login(user, SERVICE_SECRET).await
}

async fn enter(browser: &mut Browser<'_>, code: &str) -> Seen {
    browser
        .submit("/login/second-factor", &[("code", code)])
        .await
}

/// Redeems the code of the redirect `seen` for `client`: the ID token's claims.
async fn id_token_of(server: &TestServer, seen: &Seen, client: &str, pkce: &Pkce) -> Value {
    assert_eq!(seen.status, 303, "{}", seen.body);
    let params = seen.redirect_params();
    let redirect = format!("https://{client}.example.com/cb");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(client, Some(SERVICE_SECRET))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("json");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    server.verify(id_token, client).await.1
}

#[tokio::test]
async fn a_right_code_after_the_password_makes_two_factors() {
    let server = start("optional").await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("two-factors");
    let page = password(&mut browser, "web", "alice", &pkce).await;
    assert!(is_second_factor_page(&page), "{}", page.body);
    assert!(browser.hidden("csrf_token").is_some() && browser.hidden("request").is_some());
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(!csp.contains("script-src"), "{csp}");

    to_step_start(&server);
    let done = enter(&mut browser, &code(&server, 0)).await;
    let claims = id_token_of(&server, &done, "web", &pkce).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], MFA);

    // The session has both now: the next request goes straight through.
    let pkce = Pkce::new("two-factors-again");
    let again = browser.authorize(&authz("web", &pkce, &[])).await;
    assert_eq!(again.status, 303, "{}", again.body);

    let discovery: Value = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["acr_values_supported"],
        serde_json::json!([PWD, MFA])
    );
}

#[tokio::test]
async fn codes_of_the_steps_either_side_pass_and_two_away_do_not() {
    let server = start("optional").await;
    for (offset, accepted) in [(-2, false), (2, false), (-1, true), (1, true)] {
        let mut browser = Browser::new(&server);
        let pkce = Pkce::new("drift");
        let page = password(&mut browser, "web", "alice", &pkce).await;
        assert!(is_second_factor_page(&page));
        to_step_start(&server);
        let seen = enter(&mut browser, &code(&server, offset)).await;
        if accepted {
            assert_eq!(seen.status, 303, "offset {offset}: {}", seen.body);
        } else {
            assert!(
                is_second_factor_page(&seen),
                "offset {offset}: {}",
                seen.body
            );
            assert!(
                seen.body.contains("That code is not valid"),
                "{}",
                seen.body
            );
        }
    }
}

#[tokio::test]
async fn a_used_code_is_refused() {
    let server = start("optional").await;
    to_step_start(&server);
    let code = code(&server, 0);
    let mut first = Browser::new(&server);
    let pkce = Pkce::new("once");
    password(&mut first, "web", "alice", &pkce).await;
    assert_eq!(enter(&mut first, &code).await.status, 303);

    let mut second = Browser::new(&server);
    password(&mut second, "web", "alice", &pkce).await;
    let replay = enter(&mut second, &code).await;
    assert!(is_second_factor_page(&replay), "{}", replay.body);
    assert!(replay.body.contains("That code is not valid"));
}

#[tokio::test]
async fn wrong_codes_count_with_failed_logins() {
    let server = start("optional").await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("wrong");
    password(&mut browser, "web", "alice", &pkce).await;
    to_step_start(&server);
    let accepted = [code(&server, -1), code(&server, 0), code(&server, 1)];
    let wrong = (0..4)
        .map(|n| format!("{n:06}"))
        .find(|c| !accepted.contains(c))
        .expect("a wrong code");
    // `login_max_failures = 4`: four wrong codes are told so, the fifth is refused,
    // and so is a password from the same address.
    for n in 1..=4 {
        let seen = enter(&mut browser, &wrong).await;
        assert!(is_second_factor_page(&seen), "attempt {n}: {}", seen.body);
    }
    let refused = enter(&mut browser, &code(&server, 0)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let mut other = Browser::new(&server);
    other.authorize(&authz("web", &pkce, &[])).await;
    assert_eq!(other.login("alice", SERVICE_SECRET).await.status, 429);
}

#[tokio::test]
async fn required_refuses_a_user_without_a_factor_with_a_clear_page() {
    let server = start("required").await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("required");
    let seen = password(&mut browser, "web", "bob", &pkce).await;
    assert_eq!(seen.status, 403, "{}", seen.body);
    assert!(
        seen.body.contains("Ask an administrator to enrol one"),
        "{}",
        seen.body
    );
    assert!(seen.location.is_none(), "no code");

    let mut alice = Browser::new(&server);
    let page = password(&mut alice, "web", "alice", &pkce).await;
    assert!(is_second_factor_page(&page));
}

#[tokio::test]
async fn off_asks_nothing_unless_the_client_or_the_request_asks() {
    let server = start("off").await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("off");
    let done = password(&mut browser, "web", "alice", &pkce).await;
    let claims = id_token_of(&server, &done, "web", &pkce).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], PWD);

    // The same session, for a client with `require_second_factor`: the code first.
    let strict = browser.authorize(&authz("strict", &pkce, &[])).await;
    assert!(is_second_factor_page(&strict), "{}", strict.body);
    to_step_start(&server);
    let done = enter(&mut browser, &code(&server, 0)).await;
    let claims = id_token_of(&server, &done, "strict", &pkce).await;
    assert_eq!(claims["acr"], MFA);

    // `acr_values` naming the two-factor acr asks too.
    let mut other = Browser::new(&server);
    let pkce = Pkce::new("acr");
    other
        .authorize(&authz(
            "web",
            &pkce,
            &[("acr_values", &format!("{PWD} {MFA}"))],
        ))
        .await;
    let page = other.login("alice", SERVICE_SECRET).await;
    assert!(is_second_factor_page(&page), "{}", page.body);
    let done = enter(&mut other, &code(&server, 1)).await;
    let claims = id_token_of(&server, &done, "web", &pkce).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // bob has no factor: refused for the strict client and for the acr.
    let mut bob = Browser::new(&server);
    let seen = password(&mut bob, "strict", "bob", &pkce).await;
    assert_eq!(seen.status, 403, "{}", seen.body);
    let seen = bob
        .authorize(&authz("web", &pkce, &[("acr_values", MFA)]))
        .await;
    assert_eq!(seen.status, 403, "{}", seen.body);
}

#[tokio::test]
async fn prompt_login_asks_both_again_and_prompt_none_is_interaction_required() {
    let server = start("optional").await;
    let mut browser = Browser::new(&server);
    let pkce = Pkce::new("prompt");
    let page = password(&mut browser, "web", "alice", &pkce).await;
    assert!(is_second_factor_page(&page));
    // Waiting on the second factor, a silent request is refused, back to the client.
    let silent = browser
        .authorize(&authz("web", &pkce, &[("prompt", "none")]))
        .await;
    assert_eq!(silent.status, 303, "{}", silent.body);
    assert_eq!(silent.redirect_params()["error"], "interaction_required");

    let page = browser.authorize(&authz("web", &pkce, &[])).await;
    assert!(is_second_factor_page(&page));
    to_step_start(&server);
    assert_eq!(enter(&mut browser, &code(&server, 0)).await.status, 303);

    let login = browser
        .authorize(&authz("web", &pkce, &[("prompt", "login")]))
        .await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    let page = browser.login("alice", SERVICE_SECRET).await;
    assert!(
        is_second_factor_page(&page),
        "a new login asks the code again"
    );
    let done = enter(&mut browser, &code(&server, 1)).await;
    let claims = id_token_of(&server, &done, "web", &pkce).await;
    assert_eq!(claims["acr"], MFA);
}

#[tokio::test]
async fn a_code_used_at_one_server_is_refused_at_another_on_the_same_redis() {
    let Some(redis) = crate::support::redis::RedisServer::start("totp_single_use_shared") else {
        return;
    };
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"totp:\"\n[[keys]]\nprivate_key_file = \"signing.pem\"\n",
        redis.url()
    );
    let mut servers = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        write_signing_key(dir.path());
        servers.push(start_with("optional", &store, dir).await);
    }
    // No clock moved: both read the system time, and a code stays accepted (and used)
    // for the step either side of its own.
    let code = code(&servers[0], 0);
    let pkce = Pkce::new("replicas");
    let mut at_a = Browser::new(&servers[0]);
    password(&mut at_a, "web", "alice", &pkce).await;
    assert_eq!(enter(&mut at_a, &code).await.status, 303);
    let mut at_b = Browser::new(&servers[1]);
    let page = password(&mut at_b, "web", "alice", &pkce).await;
    assert!(is_second_factor_page(&page), "{}", page.body);
    let replay = enter(&mut at_b, &code).await;
    assert!(
        replay.body.contains("That code is not valid"),
        "{}",
        replay.body
    );
}

#[tokio::test]
async fn the_device_pages_ask_the_second_factor_before_the_approval() {
    let server = start("optional").await;
    let issued = server.device_authorization("tv", "openid").await;
    let user_code = issued["user_code"].as_str().expect("user_code");
    let mut browser = Browser::new(&server);
    browser.get("/device").await;
    let login = browser.submit("/device", &[("user_code", user_code)]).await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    let factor = browser
        .submit(
            "/device/login",
            &[("username", "alice"), ("password", SERVICE_SECRET)],
        )
        .await;
    assert!(
        factor.body.contains("name=\"code\"") && factor.body.contains("name=\"user_code\""),
        "{}",
        factor.body
    );
    assert!(factor.body.contains("autocomplete=\"one-time-code\""));
    // Approving now, with the page's token, decides nothing: the code comes first.
    let early = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert!(early.body.contains("name=\"code\""), "{}", early.body);
    to_step_start(&server);
    let wrong = browser
        .submit("/device/second-factor", &[("code", &code(&server, -3))])
        .await;
    assert!(
        wrong.body.contains("That code is not valid"),
        "{}",
        wrong.body
    );
    let confirm = browser
        .submit("/device/second-factor", &[("code", &code(&server, 0))])
        .await;
    assert!(
        confirm.body.contains("name=\"decision\""),
        "{}",
        confirm.body
    );
    let done = browser
        .submit("/device/decide", &[("decision", "allow")])
        .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Device connected"), "{}", done.body);
}

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .output()
        .expect("check runs");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    (
        out.status.success(),
        stdout.replace(&format!("{}:", path.display()), "FILE:"),
    )
}

#[test]
fn check_refuses_a_bad_secret_with_its_position() {
    let user = |secret: &str| {
        config_with(&format!(
            "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\ntotp_secret = \"{secret}\"\n",
            service_hash()
        ))
    };
    let line = user("").lines().count();
    for (secret, message) in [
        ("GEZDGNBVGY3TQOJ1", "not base32"),
        ("GEZDGNBVGY3TQOJQ", "at least 16 (128 bits)"),
        ("${vault:alice}", "malformed reference"),
        ("${env:GATEHOUSE_TEST_NO_SUCH_TOTP}", "is not set"),
    ] {
        let (ok, out) = check(&user(secret));
        assert!(!ok, "{secret}: {out}");
        let expected = format!("FILE:{line}:1: users[0].totp_secret: ");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&expected) && l.contains(message)),
            "{secret}: {out}"
        );
    }
    let (ok, out) = check(&user(ALICE_TOTP));
    assert!(ok, "{out}");
    assert!(
        out.contains("users[0].totp_secret: warning: a literal TOTP secret"),
        "{out}"
    );
}

#[test]
fn totp_new_prints_a_secret_that_validates_and_its_uri() {
    let out = Command::new(BIN)
        .args(["totp", "new", "--user", "carol", "--issuer", "Example Co"])
        .output()
        .expect("totp new runs");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let secret = field("secret: ");
    assert_eq!(secret.len(), 32, "20 bytes in base32");
    assert!(Secret::from_base32(&secret).is_ok());
    let uri = field("uri: ");
    assert!(
        uri.starts_with(&format!(
            "otpauth://totp/Example%20Co:carol?secret={secret}&issuer=Example%20Co"
        )),
        "{uri}"
    );
    assert!(
        stdout.contains('█') || stdout.contains('▀'),
        "a QR code: {stdout}"
    );
    assert!(
        stdout.contains("totp_secret = \"${env:TOTP_CAROL}\""),
        "{stdout}"
    );

    let (ok, out) = check(&config_with(&format!(
        "[[users]]\nusername = \"carol\"\npassword_hash = \"{}\"\ntotp_secret = \"{secret}\"\n",
        service_hash()
    )));
    assert!(ok, "{out}");
}
