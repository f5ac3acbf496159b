//! A key server on 127.0.0.1: a client's `jwks_uri`, or a workload platform's issuer
//! (OIDC discovery at `/.well-known/openid-configuration`, its keys at `/jwks`), whose
//! keys the test changes and which the test can take down. Counts the key fetches and
//! keeps the `Authorization` header of each request.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Shared {
    jwks: Value,
    down: bool,
    fetches: usize,
    authorizations: Vec<Option<String>>,
}

/// The running server.
pub struct KeyServer {
    /// `http://127.0.0.1:PORT`: the issuer of its discovery document.
    pub base: String,
    shared: Arc<Mutex<Shared>>,
}

impl KeyServer {
    /// Serves `jwks` (a JWK Set).
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Mutex::new(Shared {
            jwks,
            ..Shared::default()
        }));
        let (issuer, state) = (base.clone(), shared.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (issuer, state) = (issuer.clone(), state.clone());
                tokio::spawn(async move { answer(stream, &issuer, &state).await });
            }
        });
        Self { base, shared }
    }

    /// The URL of its key set.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// Serves `jwks` from now on.
    pub fn set_keys(&self, jwks: Value) {
        self.lock().jwks = jwks;
    }

    /// Closes every connection at once (`true`) or answers again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// How often its key set was fetched.
    pub fn fetches(&self) -> usize {
        self.lock().fetches
    }

    /// The `Authorization` header of each request so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.lock().authorizations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn answer(mut stream: tokio::net::TcpStream, issuer: &str, state: &Mutex<Shared>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let authorization = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    });
    let body = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.down {
            return;
        }
        s.authorizations.push(authorization);
        match path.as_str() {
            "/jwks" => {
                s.fetches += 1;
                Some(s.jwks.to_string())
            }
            "/.well-known/openid-configuration" => {
                Some(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string())
            }
            _ => None,
        }
    };
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
