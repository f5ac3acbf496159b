//! Test harness: writes a config into a temporary directory, starts the real server on
//! 127.0.0.1:0 in-process, and talks HTTP to it like any client would.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

pub mod browser;
pub mod documents;
pub mod dpop;
pub mod examples;
pub mod github;
pub mod key_server;
pub mod logout_rp;
pub mod redis;
pub mod replica;
pub mod skip;
pub mod upstream;

use gatehouse::server::{self, Running};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The issuer every test config uses.
pub const ISSUER: &str = "http://127.0.0.1:9";

/// The plaintext secret behind [`service_hash`].
pub const SERVICE_SECRET: &str = "service-secret-0123456789";

/// An argon2id hash of [`SERVICE_SECRET`], made once per test binary.
pub fn service_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| gatehouse::crypto::hash_secret(SERVICE_SECRET).expect("hash"))
}

/// An HTTP client for the tests: a request that gets no answer within a minute fails
/// with the URL it was sent to, instead of holding the test run until CI's limit.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// A port that was free a moment ago, so an issuer can name the server's real address
/// (for clients that find the endpoints by discovery and check the issuer).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A config whose issuer is the server's real address, on a port free a moment ago,
/// followed by `body`; and that issuer. For clients that find the endpoints by
/// discovery and check the issuer, as client libraries do.
pub fn discoverable_config(body: &str) -> (String, String) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = format!("issuer = \"{issuer}\"\n[server]\nbind = \"127.0.0.1:{port}\"\n{body}");
    (issuer, config)
}

/// Writes a fresh ES256 signing key as `signing.pem` in `dir` (a shared store needs
/// `[[keys]]`); returns its path.
pub fn write_signing_key(dir: &Path) -> PathBuf {
    let (_, pem) =
        gatehouse::jwt::keys::SigningKey::generate(gatehouse::config::file::Algorithm::ES256, None)
            .expect("a key");
    let path = dir.join("signing.pem");
    std::fs::write(&path, pem).expect("write key");
    path
}

/// A config file head (issuer, listener on a free port) followed by `body`.
pub fn config_with(body: &str) -> String {
    format!("issuer = \"{ISSUER}\"\n[server]\nbind = \"127.0.0.1:0\"\n\n{body}")
}

/// A config with a confidential service client `svc` (hashed secret), allowed two scopes.
pub fn service_config() -> String {
    config_with(&format!(
        r#"
[[scopes]]
name = "invoices:read"
[[scopes]]
name = "invoices:write"

[[clients]]
id = "svc"
secret_hash = "{}"
grant_types = ["client_credentials"]
scopes = ["invoices:read", "invoices:write"]
audience = ["https://api.example.com"]
"#,
        service_hash()
    ))
}

/// A server running on a config file in its own temporary directory.
pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: reqwest::Client,
    running: Option<Running>,
}

impl TestServer {
    /// `POST /device_authorization` for the public client `client_id` with `scope`:
    /// the JSON answer (user code, device code).
    pub async fn device_authorization(&self, client_id: &str, scope: &str) -> serde_json::Value {
        self.http
            .post(self.url("/device_authorization"))
            .form(&[("client_id", client_id), ("scope", scope)])
            .send()
            .await
            .expect("device authorization")
            .json()
            .await
            .expect("json")
    }

    /// Writes `config` as `gatehouse.toml` and starts the server on it.
    pub async fn start(config: &str) -> Self {
        Self::start_named("gatehouse.toml", config).await
    }

    /// Writes `config` under `name` (the extension picks the format) and starts on it.
    pub async fn start_named(name: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, config).expect("write config");
        Self::start_at(dir, path).await
    }

    /// Starts on an existing config file inside `dir`.
    pub async fn start_at(dir: tempfile::TempDir, config: PathBuf) -> Self {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let running = server::start(config.clone()).await.expect("server starts");
        Self {
            base: format!("http://{}", running.addr),
            dir,
            config,
            http: http_client(),
            running: Some(running),
        }
    }

    /// The admin listener's base URL, when `[server] admin_bind` is set.
    pub fn admin_url(&self) -> Option<String> {
        let running = self.running.as_ref()?;
        running.admin_addr.map(|a| format!("http://{a}"))
    }

    /// The absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a raw urlencoded body to /token.
    pub async fn token_raw(&self, body: &str) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// Client credentials with HTTP Basic; returns status and JSON body.
    pub async fn client_credentials(
        &self,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let response = self
            .http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// The `/metrics` page, as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Replaces the config file atomically (write, then rename over it).
    pub fn rewrite_config(&self, text: &str) {
        replace_file(&self.config, text);
    }

    /// The readiness details (generation, load time, last reload error) that the admin
    /// listener's `/readyz` shows; read in-process, since the public `/readyz` says only
    /// its status.
    pub async fn ready_details(&self) -> Value {
        gatehouse::health::details(self.state()).await
    }

    /// The running server's shared state, for what a test must read in-process.
    pub fn state(&self) -> &gatehouse::state::AppState {
        &self.running.as_ref().expect("the server is running").state
    }

    /// Waits (up to 10 s) until config generation `n` serves. Tests wait on this rather
    /// than on failing logins, which the server would rightly throttle.
    pub async fn wait_for_generation(&self, n: u64) {
        let reached = eventually(Duration::from_secs(10), || async {
            self.ready_details().await["config_generation"]
                .as_u64()
                .is_some_and(|g| g >= n)
        })
        .await;
        assert!(
            reached,
            "config generation {n} never served: {}",
            self.ready_details().await
        );
    }

    /// Verifies `token` against the served JWKS and returns its header and claims.
    pub async fn verify(&self, token: &str, audience: &str) -> (jsonwebtoken::Header, Value) {
        self.verify_issued_by(token, audience, ISSUER).await
    }

    /// [`Self::verify`] for a server whose issuer is `issuer` rather than [`ISSUER`].
    pub async fn verify_issued_by(
        &self,
        token: &str,
        audience: &str,
        issuer: &str,
    ) -> (jsonwebtoken::Header, Value) {
        let jwks: JwkSet = self
            .http
            .get(self.url("/jwks"))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json");
        verify_for(&jwks, token, audience, issuer)
    }

    /// The server's clock: tests move it forward instead of sleeping.
    pub fn clock(&self) -> &gatehouse::clock::Clock {
        &self.state().clock
    }

    /// Stops the server and hands back its directory, to start another on it.
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.dir
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// `GET /userinfo` with `token`; the status.
pub async fn userinfo_status(server: &TestServer, token: &str) -> u16 {
    server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

/// Verifies `token` with the key its `kid` names in `jwks`, checking iss, aud and exp.
pub fn verify_with(jwks: &JwkSet, token: &str, audience: &str) -> (jsonwebtoken::Header, Value) {
    verify_for(jwks, token, audience, ISSUER)
}

/// [`verify_with`] for tokens of the issuer `issuer`.
pub fn verify_for(
    jwks: &JwkSet,
    token: &str,
    audience: &str,
    issuer: &str,
) -> (jsonwebtoken::Header, Value) {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).expect("token verifies");
    (header, data.claims)
}

/// Writes `text` to a sibling temp file and renames it over `path`, as editors and
/// deploy tools do.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Polls `check` every 50 ms until it is true or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
