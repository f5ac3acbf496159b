//! A relying party's back-channel logout endpoint on 127.0.0.1 (hyper): keeps every
//! `logout_token` POSTed to it, answers with the status the test chose, and can hold
//! each request until the test lets it through (to show a logout does not wait for it).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

struct Shared {
    tokens: Mutex<Vec<String>>,
    status: u16,
    /// One permit per request let through; `None`: never held.
    gate: Option<Semaphore>,
}

/// The running endpoint.
pub struct LogoutRp {
    /// Its `backchannel_logout_uri`.
    pub uri: String,
    shared: Arc<Shared>,
}

impl LogoutRp {
    /// An endpoint answering 200.
    pub async fn start() -> Self {
        Self::answering(200, false).await
    }

    /// An endpoint answering `status`, holding each request until [`Self::release`]
    /// when `held`.
    pub async fn answering(status: u16, held: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri = format!(
            "http://{}/backchannel",
            listener.local_addr().expect("addr")
        );
        let shared = Arc::new(Shared {
            tokens: Mutex::new(Vec::new()),
            status,
            gate: held.then(|| Semaphore::new(0)),
        });
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { answer(request, &state).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { uri, shared }
    }

    /// The logout tokens received so far.
    pub fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().expect("lock").clone()
    }

    /// Lets every held request (and the next ones) through.
    pub fn release(&self) {
        if let Some(gate) = &self.shared.gate {
            gate.add_permits(1000);
        }
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Shared,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let form_ok = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-www-form-urlencoded");
    let body = request.into_body().collect().await?.to_bytes();
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let status = match token {
        Some(token) if form_ok => {
            state.tokens.lock().expect("lock").push(token);
            if let Some(gate) = &state.gate {
                let _ = gate.acquire().await.map(|p| p.forget());
            }
            state.status
        }
        _ => 400,
    };
    Ok(hyper::Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("response"))
}
