//! The one outbound HTTP client, for upstream providers: every call has a connect
//! timeout and an overall deadline, never follows a redirect (a provider's endpoints
//! are where its metadata says), and reads at most [`MAX_BODY`] bytes of an answer, so
//! a slow or hostile upstream can hold neither a worker nor memory. It serves the
//! `openidconnect` crate (as its `AsyncHttpClient`) and the GitHub calls alike.

use openidconnect::http;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The largest answer read from an upstream (discovery, keys, tokens, user data).
pub(crate) const MAX_BODY: usize = 1 << 20;
/// How long connecting may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole call may take, answer included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("the HTTP client could not be built: {0}")]
    Build(String),
    #[error("{0}")]
    Request(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The outbound client.
#[derive(Clone)]
pub(crate) struct Outbound {
    client: reqwest::Client,
    /// The largest answer read.
    max_body: usize,
}

impl Outbound {
    /// A client with the timeouts, no redirects and no proxy from the environment
    /// unless `HTTPS_PROXY` and friends are set (reqwest's default).
    pub(crate) fn new() -> Result<Self, HttpError> {
        Self::with_roots(&[])
    }

    /// Like [`Outbound::new`], also trusting the PEM CA certificates `ca_pem` (an
    /// in-cluster API server's CA) besides the system's roots.
    pub(crate) fn with_roots(ca_pem: &[Vec<u8>]) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder();
        for pem in ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| HttpError::Build(format!("a CA file: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Self::bounded(builder, TIMEOUT, MAX_BODY)
    }

    /// A client from `builder` (its TLS roots, address overrides, proxy) with the same
    /// rules, but `timeout` for a whole call and answers of at most `max_body` bytes.
    pub(crate) fn bounded(
        builder: reqwest::ClientBuilder,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Self, HttpError> {
        builder
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(|client| Self { client, max_body })
            .map_err(|e| HttpError::Build(e.to_string()))
    }

    /// Sends `request` and reads the answer within the limits.
    pub(crate) async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        self.send_capped(request, self.max_body).await
    }

    /// GETs `url` with `headers`, reading at most `cap` bytes of the answer (at most
    /// the client's own limit); the status and the body.
    pub(crate) async fn get_capped(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        cap: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let mut builder = http::Request::get(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Vec::new())
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let response = self.send_capped(request, cap.min(self.max_body)).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }

    /// Sends `request`, reading at most `cap` bytes of the answer.
    async fn send_capped(
        &self,
        request: http::Request<Vec<u8>>,
        cap: usize,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| HttpError::Request(without_url(&e)))?;
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(HttpError::TooLarge(cap));
        }
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::Request(without_url(&e)))?
        {
            if body.len() + chunk.len() > cap {
                return Err(HttpError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| HttpError::Request(e.to_string()))
    }

    /// GETs `url` with `headers`; the status and the body.
    pub(crate) async fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), HttpError> {
        self.get_capped(url, headers, self.max_body).await
    }

    /// POSTs the urlencoded `form` to `url`, asking for JSON; the status and the body.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = http::Request::post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body.into_bytes())
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let response = self.send(request).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }
}

/// A reqwest error without its URL (which may carry a code or a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let host = e
        .url()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    format!("the request to {host} {kind}")
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Outbound {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Vec<u8>>, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: http::Request<Vec<u8>>) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    use crate::upstream::http::*;

    #[actix_web::test]
    async fn answers_over_the_limit_are_refused_and_dead_ends_time_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                    let _ = socket.write_all(head.as_bytes()).await;
                    let chunk = vec![b'a'; 64 * 1024];
                    for _ in 0..20 {
                        let size = format!("{:x}\r\n", chunk.len());
                        if socket.write_all(size.as_bytes()).await.is_err()
                            || socket.write_all(&chunk).await.is_err()
                            || socket.write_all(b"\r\n").await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        let client = Outbound::new().expect("client");
        let got = client.get(&format!("http://{addr}/big"), &[]).await;
        assert!(matches!(got, Err(HttpError::TooLarge(_))), "{got:?}");
    }
}
