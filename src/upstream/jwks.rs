//! Public key sets fetched from elsewhere: a `private_key_jwt` client's `jwks_uri`, a
//! trusted workload issuer's keys (its `jwks_uri`, or found by OIDC discovery). Every
//! fetch is https (http only to a loopback host), within [`FETCH_TIMEOUT`], at most
//! [`MAX_JWKS`] bytes, without redirects (the one outbound client's rules). A set is
//! cached; it is fetched again when a token names a key it lacks or it is older than
//! [`MAX_AGE`], but never sooner than [`REFETCH_AFTER`] after the previous attempt, so
//! no caller can make gatehouse hammer a key server. A fetch replaces the whole set
//! (keys the server dropped are dropped here). A failed fetch keeps the last good set;
//! with none, the caller's authentication fails (never a 5xx). Each set has its own
//! lock: a slow key server holds up only the callers waiting for its keys.

use super::http::Outbound;
use crate::protocol::jwk::{self, PublicJwk, check_fetch_url};
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest key set (or discovery document) read.
pub(crate) const MAX_JWKS: usize = 64 * 1024;
/// How long one fetch (discovery and keys together) may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two fetches of one set (seconds on the server's clock).
pub(crate) const REFETCH_AFTER: u64 = 60;
/// A set older than this is fetched again at its next use (seconds).
pub(crate) const MAX_AGE: u64 = 600;

/// Where a key set is.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// At this URL.
    Jwks(String),
    /// At the `jwks_uri` of this issuer's OIDC discovery document
    /// (`issuer + "/.well-known/openid-configuration"`).
    Discovery(String),
}

/// A key set's location and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeySource {
    pub(crate) location: Location,
    /// PEM CA certificates trusted for this source besides the system's.
    pub(crate) ca_pem: Option<Arc<Vec<u8>>>,
    /// A file whose content (trimmed) is sent as a bearer token with requests to this
    /// origin (scheme, host, port) only; read at each fetch, as it may rotate.
    pub(crate) bearer: Option<(String, std::path::PathBuf)>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match &self.location {
            Location::Jwks(u) | Location::Discovery(u) => u,
        };
        write!(f, "KeySource({at})")
    }
}

/// Why no keys could be had.
#[derive(Debug, thiserror::Error)]
#[error("keys unavailable from {at}: {why}")]
pub(crate) struct FetchError {
    at: String,
    why: String,
}

#[derive(Default)]
struct Cached {
    source: Option<KeySource>,
    http: Option<Outbound>,
    keys: Arc<Vec<PublicJwk>>,
    /// When the last fetch was tried, and when one last succeeded.
    tried_at: Option<u64>,
    good_at: Option<u64>,
}

/// The fetched key sets, by the name of what uses them (`client:billing`,
/// `issuer:cluster`).
#[derive(Default)]
pub struct KeySets {
    cache: DashMap<String, Arc<tokio::sync::Mutex<Cached>>>,
}

impl KeySets {
    /// The keys of `source` (named `name`) at `now`: the cached set when `has` finds
    /// what the caller needs in it and it is not too old; else fetched again if the
    /// last attempt is [`REFETCH_AFTER`] ago; else the cached set.
    pub(crate) async fn keys(
        &self,
        name: &str,
        source: &KeySource,
        now: u64,
        has: impl Fn(&[PublicJwk]) -> bool,
    ) -> Result<Arc<Vec<PublicJwk>>, FetchError> {
        let entry = self.cache.entry(name.to_owned()).or_default().clone();
        let mut cached = entry.lock().await;
        if cached.source.as_ref() != Some(source) {
            *cached = Cached {
                source: Some(source.clone()),
                ..Cached::default()
            };
        }
        let young = cached
            .good_at
            .is_some_and(|t| now < t.saturating_add(MAX_AGE));
        if young && has(&cached.keys) {
            return Ok(cached.keys.clone());
        }
        let may_fetch = cached
            .tried_at
            .is_none_or(|t| now >= t.saturating_add(REFETCH_AFTER));
        if may_fetch {
            cached.tried_at = Some(now);
            match fetch(&mut cached, source).await {
                Ok(keys) => {
                    cached.keys = Arc::new(keys);
                    cached.good_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(keys = %name, error = %e, "fetching public keys failed");
                    if cached.good_at.is_none() {
                        return Err(e);
                    }
                }
            }
        }
        match cached.good_at {
            Some(_) => Ok(cached.keys.clone()),
            None => Err(FetchError {
                at: name.to_owned(),
                why: "no keys fetched yet; the last attempt failed".into(),
            }),
        }
    }
}

async fn fetch(cached: &mut Cached, source: &KeySource) -> Result<Vec<PublicJwk>, FetchError> {
    let at = match &source.location {
        Location::Jwks(u) | Location::Discovery(u) => u.clone(),
    };
    let fail = |why: String| FetchError {
        at: at.clone(),
        why,
    };
    if cached.http.is_none() {
        let roots: Vec<Vec<u8>> = source.ca_pem.iter().map(|p| p.to_vec()).collect();
        cached.http = Some(Outbound::with_roots(&roots).map_err(|e| fail(e.to_string()))?);
    }
    let http = cached
        .http
        .as_ref()
        .ok_or_else(|| fail("no client".into()))?;
    let work = async {
        let jwks_uri = match &source.location {
            Location::Jwks(u) => u.clone(),
            Location::Discovery(issuer) => discover(http, source, issuer).await?,
        };
        let value = get_json(http, source, &jwks_uri).await?;
        jwk::parse_published(&value).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(FETCH_TIMEOUT, work).await {
        Ok(result) => result.map_err(fail),
        Err(_) => Err(fail(format!("no answer within {FETCH_TIMEOUT:?}"))),
    }
}

/// The `jwks_uri` of `issuer`'s discovery document, whose `issuer` must be it.
async fn discover(http: &Outbound, source: &KeySource, issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(http, source, &url).await?;
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or("the discovery document has no jwks_uri")?;
    check_fetch_url(uri)?;
    Ok(uri.to_owned())
}

/// The origin (`scheme://host:port`) of `url`.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

async fn get_json(
    http: &Outbound,
    source: &KeySource,
    url: &str,
) -> Result<serde_json::Value, String> {
    check_fetch_url(url)?;
    let auth;
    let mut headers = vec![("accept", "application/json")];
    if let Some((allowed, file)) = &source.bearer
        && origin(url).as_deref() == Some(allowed.as_str())
    {
        let token = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| format!("reading the bearer token file {}: {e}", file.display()))?;
        auth = format!("Bearer {}", token.trim());
        headers.push(("authorization", auth.as_str()));
    }
    let (status, body) = http
        .get_capped(url, &headers, MAX_JWKS)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|_| "the answer is not JSON".into())
}

/// The origin of `url` as [`KeySource::bearer`] names it.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    origin(url)
}
