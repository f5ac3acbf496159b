//! Limits count networks, not addresses, and stay fair when full: 200 networks filling
//! the pending-login and device-code caps leave room for a user from a quiet network;
//! the addresses of one network (an IPv4 /24, an IPv6 /64) share one budget; wrong
//! user codes have a server-wide budget.

use crate::support::browser::{Browser, text};
use crate::support::*;
use std::net::IpAddr;
use std::time::Duration;
use tokio::task::JoinSet;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The attacking networks: 127.10.0.0/24 … 127.10.199.0/24 (the whole of 127/8 is
/// loopback, so the server sees each as its peer address).
const ATTACKERS: u8 = 200;

fn config(limits: &str) -> String {
    config_with(&format!(
        r#"
[limits]
pages_per_second = 10000
pages_burst = 10000
{limits}

[[clients]]
id = "web"
secret_hash = "{h}"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]

[[clients]]
id = "tv"
public = true
grant_types = ["{DEVICE_GRANT}"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{h}"
"#,
        h = service_hash()
    ))
}

/// A client whose connections leave from `address`.
fn from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// What one entry costs: a login page (a pending request) or a device code.
#[derive(Clone, Copy)]
enum Entry {
    Login,
    Device,
}

/// Asks for one `entry` as `client`; true when the server kept it.
async fn ask(client: reqwest::Client, base: String, entry: Entry) -> bool {
    let response = match entry {
        Entry::Login => client
            .get(format!("{base}/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "web"),
                ("scope", "openid"),
                ("state", "st"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize"),
        Entry::Device => client
            .post(format!("{base}/device_authorization"))
            .form(&[("client_id", "tv")])
            .send()
            .await
            .expect("device_authorization"),
    };
    response.status() == 200
}

/// Every attacking network asks for `entry` at once, round after round, until a whole
/// round is refused; returns the entries kept.
async fn flood(server: &TestServer, attackers: &[reqwest::Client], entry: Entry) -> usize {
    let base = server.url("");
    let base = base.trim_end_matches('/').to_owned();
    let mut kept = 0;
    for _ in 0..20 {
        let mut round = JoinSet::new();
        for client in attackers {
            round.spawn(ask(client.clone(), base.clone(), entry));
        }
        let admitted = round.join_all().await.into_iter().filter(|k| *k).count();
        if admitted == 0 {
            return kept;
        }
        kept += admitted;
    }
    panic!("the caps never filled");
}

#[tokio::test]
async fn a_quiet_network_gets_a_login_page_and_a_device_code_while_200_networks_fill_the_caps() {
    let server = TestServer::start(&config("pending_per_address = 10\npending_total = 1000")).await;
    let attackers: Vec<reqwest::Client> = (0..ATTACKERS)
        .map(|n| from(IpAddr::from([127, 10, n, 1])))
        .collect();
    let base = server.url("").trim_end_matches('/').to_owned();
    let user = from(IpAddr::from([127, 99, 0, 1]));
    for entry in [Entry::Login, Entry::Device] {
        let kept = flood(&server, &attackers, entry).await;
        assert!(
            (900..=1000).contains(&kept),
            "the attackers hold the cap up to its reserve: {kept}"
        );
        assert!(
            !ask(attackers[7].clone(), base.clone(), entry).await,
            "a busy network stays refused"
        );
        assert!(
            ask(user.clone(), base.clone(), entry).await,
            "a user from a quiet network still gets in"
        );
    }
    // The login page the quiet network got is a real one.
    let page = user
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("password"));
}

/// Types `code` at `/device` as `browser`; the status.
async fn type_code(browser: &mut Browser<'_>, code: &str) -> u16 {
    browser.get("/device").await;
    browser
        .submit("/device", &[("user_code", code)])
        .await
        .status
}

#[tokio::test]
async fn the_addresses_of_one_network_share_its_budget() {
    let server = TestServer::start(&config("login_max_failures = 3").replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    ))
    .await;
    for (network, other) in [
        ("198.51.100.", "198.51.101.1"),
        ("2001:db8:1:2::", "2001:db8:1:3::1"),
    ] {
        // Each wrong code from a new address of the same network.
        for host in 1..=3 {
            let mut browser = Browser::behind_proxy(&server, &format!("{network}{host}"));
            assert_eq!(type_code(&mut browser, "BCDF-GHJK").await, 200);
        }
        let mut rotated = Browser::behind_proxy(&server, &format!("{network}77"));
        assert_eq!(
            type_code(&mut rotated, "BCDF-GHJK").await,
            429,
            "{network}: a new address of the network has no new budget"
        );
        let mut neighbour = Browser::behind_proxy(&server, other);
        assert_eq!(type_code(&mut neighbour, "BCDF-GHJK").await, 200, "{other}");
    }
}

#[tokio::test]
async fn wrong_user_codes_have_a_server_wide_budget() {
    let server = TestServer::start(&config("user_code_max_failures_total = 4").replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    ))
    .await;
    let issued: serde_json::Value = server
        .http
        .post(server.url("/device_authorization"))
        .form(&[("client_id", "tv")])
        .send()
        .await
        .expect("device_authorization")
        .json()
        .await
        .expect("json");
    let code = issued["user_code"].as_str().expect("user_code");
    // A right code costs the budget nothing.
    let mut user = Browser::behind_proxy(&server, "203.0.113.5");
    assert_eq!(type_code(&mut user, code).await, 200);
    for n in 0..4 {
        let mut guesser = Browser::behind_proxy(&server, &format!("198.51.{n}.1"));
        assert_eq!(type_code(&mut guesser, "BCDF-GHJK").await, 200);
    }
    let mut fifth = Browser::behind_proxy(&server, "198.51.50.1");
    assert_eq!(
        type_code(&mut fifth, "BCDF-GHJK").await,
        429,
        "every network is refused once the budget is spent"
    );
    user.get("/device").await;
    let seen = user.submit("/device", &[("user_code", code)]).await;
    assert_eq!(seen.status, 429, "{}", text(&seen));
    assert!(seen.headers.contains_key("retry-after"));
    server.clock().advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(type_code(&mut user, code).await, 200, "the window ended");
}
