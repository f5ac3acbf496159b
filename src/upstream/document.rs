//! Fetching Client ID Metadata Documents, and the cache of the ones read. A fetch
//! resolves the host, checks every address (`protocol::client_metadata::address_allowed`:
//! no private or loopback address unless the prefix is a loopback one), then connects to
//! the checked addresses only (the client's DNS overridden, no proxy), over https (http
//! only for a loopback prefix), following no redirect, within
//! [`FETCH_TIMEOUT`] in all and reading at most [`MAX_DOCUMENT`] bytes, through the
//! one bounded outbound client (`upstream::http`). What it reads is kept for the
//! lifetime its `Cache-Control` gives (`cache_lifetime`), in a cache of at most
//! [`MAX_CACHED`] documents that makes room by dropping the expired, then the oldest.

use super::http::{HttpError, Outbound};
use crate::model::DocumentSource;
use crate::protocol::client_metadata::{
    FETCH_TIMEOUT, MAX_DOCUMENT, Refused, Registration, address_allowed, cache_lifetime,
    read_document,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::{Host, Url};

/// The most documents kept at once.
pub(crate) const MAX_CACHED: usize = 1024;

/// Why a document could not be had (nothing secret: the URL is a public client id).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL or the document breaks a rule.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The host resolves to an address documents may not come from.
    #[error("the document's host resolves to a private or loopback address")]
    Address,
    /// No address, no connection, a TLS failure, or too large an answer.
    #[error("the document could not be fetched: {0}")]
    Unreachable(String),
    /// An answer other than 200 (a redirect included).
    #[error("the document's server answered {0}")]
    Status(u16),
    /// Not all within [`FETCH_TIMEOUT`].
    #[error("the document's server did not answer in time")]
    Timeout,
}

/// Fetches and reads the document at `url` for `source`: what it registers and how
/// long it may be kept.
pub(crate) async fn fetch(
    url: &Url,
    source: &DocumentSource,
) -> Result<(Registration, Duration), FetchError> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_within(url, source))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn fetch_within(
    url: &Url,
    source: &DocumentSource,
) -> Result<(Registration, Duration), FetchError> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| FetchError::Unreachable("no port".into()))?;
    let mut builder = reqwest::Client::builder().no_proxy();
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(domain)) => {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
                .await
                .map_err(|_| FetchError::Unreachable(format!("{domain} does not resolve")))?
                .collect();
            builder = builder.resolve_to_addrs(domain, &found);
            found
        }
        None => return Err(FetchError::Unreachable("no host".into())),
    };
    if addresses.is_empty() {
        return Err(FetchError::Unreachable("the host has no address".into()));
    }
    if !addresses
        .iter()
        .all(|a| address_allowed(a.ip(), source.loopback))
    {
        return Err(FetchError::Address);
    }
    if let Some(pem) = &source.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| FetchError::Unreachable("the extra CA file does not parse".into()))?;
        builder = builder.tls_certs_merge(certs);
    }
    if !source.loopback {
        builder = builder.https_only(true);
    }
    let client = Outbound::bounded(builder, FETCH_TIMEOUT, MAX_DOCUMENT)
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let request = openidconnect::http::Request::get(url.as_str())
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let response = client.send(request).await.map_err(|e| match e {
        HttpError::TooLarge(n) => {
            FetchError::Unreachable(format!("the document is larger than {n} bytes"))
        }
        HttpError::Request(m) if m.ends_with("timed out") => FetchError::Timeout,
        other => FetchError::Unreachable(other.to_string()),
    })?;
    if response.status() != 200 {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let lifetime = cache_lifetime(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
    );
    Ok((read_document(url, response.body())?, lifetime))
}

struct Cached {
    registration: Arc<Registration>,
    fetched_at_ms: u64,
    expires_at_ms: u64,
}

/// The documents read, by URL, until their lifetime ends (at most [`MAX_CACHED`]).
#[derive(Default)]
pub struct DocumentCache(Mutex<HashMap<String, Cached>>);

impl DocumentCache {
    /// The document read from `url`, while its lifetime lasts at `now_ms`.
    pub(crate) fn get(&self, url: &str, now_ms: u64) -> Option<Arc<Registration>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(url)
            .filter(|c| c.expires_at_ms > now_ms)
            .map(|c| Arc::clone(&c.registration))
    }

    /// Keeps `registration` (read from `url` at `now_ms`) for `lifetime`; when the cache
    /// is full, the expired documents go first, then the one fetched longest ago.
    pub(crate) fn put(
        &self,
        url: &str,
        registration: Arc<Registration>,
        now_ms: u64,
        lifetime: Duration,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED && !map.contains_key(url) {
            map.retain(|_, c| c.expires_at_ms > now_ms);
            if map.len() >= MAX_CACHED {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, c)| c.fetched_at_ms)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        map.insert(
            url.to_owned(),
            Cached {
                registration,
                fetched_at_ms: now_ms,
                expires_at_ms: now_ms.saturating_add(lifetime_ms),
            },
        );
    }

    /// How many documents are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str) -> Arc<Registration> {
        Arc::new(Registration {
            client_id: id.to_owned(),
            host: "c.example.com".into(),
            name: None,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            scopes: None,
        })
    }

    #[test]
    fn the_cache_expires_and_a_full_one_drops_the_oldest() {
        let cache = DocumentCache::default();
        let minute = Duration::from_secs(60);
        cache.put("a", reg("a"), 1_000, minute);
        assert!(cache.get("a", 60_999).is_some());
        assert!(cache.get("a", 61_000).is_none());
        for i in 1..MAX_CACHED {
            cache.put(&format!("k{i}"), reg("k"), 2_000 + i as u64, minute);
        }
        assert_eq!(cache.len(), MAX_CACHED);
        // Full: the newest goes in, the oldest ("a") makes room.
        cache.put("new", reg("new"), 50_000, minute);
        assert_eq!(cache.len(), MAX_CACHED);
        assert!(cache.get("new", 50_000).is_some());
        assert!(cache.get("a", 50_000).is_none());
        assert!(cache.get("k1", 50_000).is_some());
        // Full of expired documents: they all go.
        cache.put("later", reg("later"), 10_000_000, minute);
        assert_eq!(cache.len(), 1);
    }
}
