//! The outbound side of back-channel logout: POSTing a logout token to a client's
//! `backchannel_logout_uri` through the one outbound client (`http::Outbound`), with
//! a 5 s deadline, a small answer, and at most [`CONCURRENCY`] deliveries in flight
//! per process (the others wait for a turn), so a flood of logouts to a slow client
//! holds neither sockets nor memory. What to send and when is `oauth::backchannel`'s.

use super::http::{HttpError, Outbound};
use openidconnect::http;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long one delivery may take, answer included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries in flight at once in one process.
pub(crate) const CONCURRENCY: usize = 16;
/// The most of an answer read (clients answer with an empty body or a short error).
const MAX_ANSWER: usize = 4096;

/// The sender, one per `AppState`.
pub struct LogoutPoster {
    http: OnceLock<Result<Outbound, String>>,
    permits: Semaphore,
}

impl Default for LogoutPoster {
    fn default() -> Self {
        Self {
            http: OnceLock::new(),
            permits: Semaphore::new(CONCURRENCY),
        }
    }
}

impl LogoutPoster {
    /// POSTs `logout_token` as a form (`logout_token=...`, 2.5) to `uri`, waiting for a
    /// turn first; the answer's status.
    pub(crate) async fn post(&self, uri: &str, logout_token: &str) -> Result<u16, HttpError> {
        let client = self
            .http
            .get_or_init(|| {
                Outbound::bounded(reqwest::Client::builder(), TIMEOUT, MAX_ANSWER)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| HttpError::Build(e.clone()))?;
        let _turn = self
            .permits
            .acquire()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", logout_token)
            .finish();
        let request = http::Request::post(uri)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.into_bytes())
            .map_err(|e| HttpError::Request(e.to_string()))?;
        Ok(client.send(request).await?.status().as_u16())
    }
}
