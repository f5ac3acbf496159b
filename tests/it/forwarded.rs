//! Behind a trusted proxy that writes `ip:port`, `[v6]:port` or something that is no
//! address (`unknown`) in `X-Forwarded-For`: each client keeps its own address (or an
//! opaque one), so one client's failures never lock out the others behind the proxy.

use crate::support::browser::{Browser, Pkce};
use crate::support::*;

fn config() -> String {
    config_with(&format!(
        r#"trusted_proxies = ["127.0.0.1/32"]

[limits]
login_max_failures = 3
pages_per_second = 10000
pages_burst = 10000

[[clients]]
id = "web"
first_party = true
secret_hash = "{h}"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]

[[users]]
id = "u-alice"
username = "alice"
password_hash = "{h}"
"#,
        h = service_hash()
    ))
}

/// A browser whose requests the proxy forwards with `hop`, on a fresh login page.
async fn on_login_page<'s>(server: &'s TestServer, hop: &str) -> Browser<'s> {
    let mut browser = Browser::behind_proxy(server, hop);
    let pkce = Pkce::new("forwarded");
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert_eq!(page.status, 200, "{hop}: {}", page.body);
    browser
}

#[tokio::test]
async fn one_client_behind_the_proxy_cannot_lock_out_the_others() {
    let server = TestServer::start(&config()).await;
    for (attacker, user) in [
        ("198.51.100.7:4711", "203.0.113.9:5555"),
        ("[2001:db8:1::7]:443", "[2001:db8:2::9]:443"),
        ("unknown", "203.0.114.9:80"),
    ] {
        let mut browser = on_login_page(&server, attacker).await;
        for _ in 0..3 {
            assert_eq!(browser.login("alice", "guess").await.status, 200);
        }
        assert_eq!(
            browser.login("alice", "guess").await.status,
            429,
            "{attacker}: its own budget is spent"
        );
        let mut other = on_login_page(&server, user).await;
        let seen = other.login("alice", SERVICE_SECRET).await;
        assert_eq!(seen.status, 303, "{user} after {attacker}: {}", seen.body);
        assert!(seen.redirect_params().contains_key("code"));
    }
    // Two different unparsable hops are two clients.
    let mut other = on_login_page(&server, "_obfuscated").await;
    let seen = other.login("alice", SERVICE_SECRET).await;
    assert_eq!(seen.status, 303, "{}", seen.body);
}
