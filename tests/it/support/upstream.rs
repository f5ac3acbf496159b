//! Two gatehouses: an upstream (a real gatehouse on its own port and issuer, with a
//! client for the downstream) and the downstream under test, which signs its users in
//! through it. Each side gets its own browser stand-in (cookie jars are per host, and
//! both run on 127.0.0.1).

use super::browser::{Browser, Pkce, Seen};
use super::{SERVICE_SECRET, TestServer, config_with, service_hash};
use serde_json::Value;

/// The password of every upstream user.
pub const PASSWORD: &str = SERVICE_SECRET;

/// The upstream gatehouse's config: issuer and listener on `port`, a first-party
/// client `downstream` (secret [`PASSWORD`]) whose redirect URIs are the downstream's
/// callbacks for `callbacks` (provider ids), and users ann (corp.com, verified,
/// groups staff and system:masters), bob (corp.com, unverified) and eve (evil.com).
pub fn upstream_config(port: u16, callbacks: &[&str], users_extra: &str) -> String {
    let uris: Vec<String> = callbacks
        .iter()
        .map(|id| format!("\"{}/login/callback/{id}\"", super::ISSUER))
        .collect();
    format!(
        r#"issuer = "http://127.0.0.1:{port}"
[server]
bind = "127.0.0.1:{port}"

[[clients]]
id = "downstream"
secret_hash = "{hash}"
first_party = true
redirect_uris = [{uris}]
scopes = ["openid", "profile", "email", "offline_access"]

[[users]]
id = "u-ann"
username = "ann"
password_hash = "{hash}"
email = "ann@corp.com"
email_verified = true
name = "Ann Upstream"
groups = ["staff", "system:masters"]

[[users]]
id = "u-bob"
username = "bob"
password_hash = "{hash}"
email = "bob@corp.com"

[[users]]
id = "u-eve"
username = "eve"
password_hash = "{hash}"
email = "eve@evil.com"
email_verified = true
{users_extra}
"#,
        hash = service_hash(),
        uris = uris.join(", ")
    )
}

/// Starts the upstream on `port`.
pub async fn start_upstream(port: u16, callbacks: &[&str], users_extra: &str) -> TestServer {
    TestServer::start(&upstream_config(port, callbacks, users_extra)).await
}

/// A `[[providers]]` entry for the upstream on `port`, as `id`, with `extra` lines.
pub fn provider(id: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[[providers]]
id = "{id}"
name = "Corp {id}"
kind = "oidc"
issuer = "http://127.0.0.1:{port}"
client_id = "downstream"
client_secret_file = "upstream-secret"
{extra}
"#
    )
}

/// The downstream's config: a first-party confidential client `web` (refresh tokens),
/// a client `pw-only` with `providers = []`, then `body` (providers, users, ...).
pub fn downstream_config(body: &str) -> String {
    config_with(&format!(
        r#"
[[clients]]
id = "web"
secret_hash = "{hash}"
first_party = true
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid", "profile", "email", "offline_access"]

[[clients]]
id = "pw-only"
public = true
first_party = true
redirect_uris = ["https://pw.example.com/cb"]
scopes = ["openid"]
providers = []
{body}
"#,
        hash = service_hash()
    ))
}

/// Starts the downstream on `config`, with the upstream client secret in the file its
/// providers read.
pub async fn start_downstream(config: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("upstream-secret"), PASSWORD).expect("secret");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config).expect("config");
    TestServer::start_at(dir, path).await
}

/// The path and query of an absolute URL (to replay a redirect on a test server).
pub fn path_of(url: &str) -> String {
    let u = url::Url::parse(url).expect("absolute URL");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// The authorization request of client `web` with PKCE `pkce`, plus `extra`.
pub fn web_request<'a>(pkce: &'a Pkce, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", "https://web.example.com/cb"),
        ("scope", "openid profile email offline_access"),
        ("state", "client-state"),
        ("nonce", "client-nonce"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

/// From the downstream's login page, clicks `provider`'s button: the redirect to the
/// upstream.
pub async fn click_provider(down: &mut Browser<'_>, provider: &str) -> Seen {
    let seen = down
        .submit("/login/upstream", &[("provider", provider)])
        .await;
    assert_eq!(seen.status, 303, "{}", seen.body);
    seen
}

/// Follows the redirect `to_upstream` at the upstream as `username` (logging in when
/// the upstream asks): the upstream's redirect back to the downstream's callback.
pub async fn sign_in_upstream(up: &mut Browser<'_>, to_upstream: &Seen, username: &str) -> Seen {
    let location = to_upstream.location.as_deref().expect("a redirect");
    let mut seen = up.get(&path_of(location)).await;
    if seen.status == 200 && seen.body.contains("name=\"password\"") {
        seen = up.login(username, PASSWORD).await;
    }
    assert_eq!(seen.status, 303, "upstream: {}", seen.body);
    seen
}

/// The whole login of `username` through `provider`, starting at `/authorize` with
/// `extra`: the downstream's final answer (a redirect to the client, or a page).
pub async fn login_through(
    down: &mut Browser<'_>,
    up: &mut Browser<'_>,
    provider: &str,
    username: &str,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> Seen {
    let page = down.authorize(&web_request(pkce, extra)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let to_upstream = click_provider(down, provider).await;
    let back = sign_in_upstream(up, &to_upstream, username).await;
    at_callback(down, &path_of(back.location.as_deref().expect("redirect"))).await
}

/// Redeems the code of `seen` (a redirect to web's redirect URI) at the downstream.
pub async fn redeem(server: &TestServer, seen: &Seen, pkce: &Pkce) -> Value {
    assert_eq!(seen.status, 303, "{}", seen.body);
    let params = seen.redirect_params();
    assert_eq!(
        seen.redirect_base(),
        "https://web.example.com/cb",
        "{:?}",
        seen.location
    );
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("web", Some(SERVICE_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", "https://web.example.com/cb"),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// A refresh at the downstream: status and body.
pub async fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth("web", Some(SERVICE_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("token");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// A TCP proxy in front of the upstream, which the test can take down (refusing and
/// cutting every connection) and bring back: the upstream "unreachable" without
/// losing its state.
pub struct Proxy {
    pub port: u16,
    down: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// Listens on `port` and forwards to `target` (a port on 127.0.0.1).
    pub async fn start(port: u16, target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("proxy bind");
        let (down, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = watch.clone();
                if *watch.borrow() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { port, down }
    }

    /// Takes the upstream down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

/// Opens a provider callback at the downstream. Its onward redirect is a page that
/// navigates by itself (`<meta http-equiv="refresh">`, so that no form's CSP holds the
/// chain): that comes back as the 303 a redirect would be.
pub async fn at_callback(down: &mut Browser<'_>, path: &str) -> Seen {
    let mut seen = down.get(path).await;
    let marker = "http-equiv=\"refresh\" content=\"0; url=";
    if seen.status == 200
        && let Some(start) = seen.body.find(marker)
    {
        let rest = &seen.body[start + marker.len()..];
        let url = rest[..rest.find('"').expect("closing quote")]
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        seen.status = 303;
        seen.location = Some(url);
    }
    seen
}
