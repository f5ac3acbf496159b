//! The dispatch over provider kinds, and what is cached per provider beside the
//! registry (never in it): the discovery document and keys, fetched on first use and
//! kept an hour, keys fetched again on an unknown `kid` at most once a minute, and the
//! outcome of the last call for `/readyz`. A provider that cannot be reached fails
//! only the logins through it: a reload never contacts it.

use crate::upstream::http::Outbound;
use crate::upstream::oidc::{self, Checked, Metadata, Started};
use crate::upstream::provider::{Endpoints, Provider};
use crate::upstream::{UpstreamError, Vouched, github};
use dashmap::DashMap;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: u64 = 3600;
/// The least time between two key fetches for an unknown `kid`.
const KEYS_REFETCH_EVERY: u64 = 60;

/// What the callback received from the provider.
pub(crate) struct Response<'a> {
    pub(crate) code: &'a str,
    /// RFC 9207 `iss`, if sent.
    pub(crate) iss: Option<&'a str>,
}

/// What the login kept for its callback.
pub(crate) struct Attempt<'a> {
    pub(crate) nonce: &'a str,
    pub(crate) pkce_verifier: &'a str,
}

#[derive(Default)]
struct Cached {
    /// The endpoints it was fetched for (a reload may point the id elsewhere).
    endpoints: Option<Endpoints>,
    metadata: Option<Arc<Metadata>>,
    fetched_at: u64,
    keys_at: u64,
    /// `Ok(when)` of the last good call, or the last error.
    last: Option<Result<u64, String>>,
}

/// The providers' cache and the outbound client, shared by every request.
#[derive(Default)]
pub struct Upstreams {
    http: OnceLock<Result<Outbound, String>>,
    cache: DashMap<String, Mutex<Cached>>,
}

impl Upstreams {
    fn http(&self) -> Result<&Outbound, UpstreamError> {
        self.http
            .get_or_init(|| Outbound::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| UpstreamError::Unavailable(e.clone()))
    }

    fn with<T>(&self, provider: &Provider, f: impl FnOnce(&mut Cached) -> T) -> T {
        let entry = self.cache.entry(provider.id.clone()).or_default();
        let mut cached = entry.lock().unwrap_or_else(|e| e.into_inner());
        if cached.endpoints.as_ref() != Some(&provider.endpoints) {
            *cached = Cached {
                endpoints: Some(provider.endpoints.clone()),
                ..Cached::default()
            };
        }
        f(&mut cached)
    }

    /// Records the outcome of a call to `provider`, for `/readyz`.
    fn note<T>(
        &self,
        provider: &Provider,
        now: u64,
        result: Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let last = match &result {
            Ok(_) | Err(UpstreamError::Refused { .. } | UpstreamError::Denied(_)) => Ok(now),
            Err(e @ UpstreamError::Unavailable(_)) => Err(e.to_string()),
        };
        self.with(provider, |c| c.last = Some(last));
        result
    }

    /// The provider's discovery document, from the cache or fetched.
    async fn metadata(
        &self,
        provider: &Provider,
        issuer: &str,
        now: u64,
    ) -> Result<Arc<Metadata>, UpstreamError> {
        let cached = self.with(provider, |c| {
            c.metadata
                .clone()
                .filter(|_| now.saturating_sub(c.fetched_at) < METADATA_TTL)
        });
        if let Some(m) = cached {
            return Ok(m);
        }
        let fetched = oidc::discover(self.http()?, issuer).await;
        let fetched = self.note(provider, now, fetched)?;
        let fetched = Arc::new(fetched);
        self.with(provider, |c| {
            c.metadata = Some(fetched.clone());
            c.fetched_at = now;
            c.keys_at = now;
        });
        Ok(fetched)
    }

    /// The keys fetched again for an unknown `kid`, unless they were within the minute.
    async fn refetch_keys(
        &self,
        provider: &Provider,
        metadata: &Metadata,
        now: u64,
    ) -> Result<Option<Arc<Metadata>>, UpstreamError> {
        let due = self.with(provider, |c| {
            let due = now.saturating_sub(c.keys_at) >= KEYS_REFETCH_EVERY;
            if due {
                c.keys_at = now;
            }
            due
        });
        if !due {
            return Ok(None);
        }
        let fresh = oidc::refetch_keys(self.http()?, metadata).await;
        let fresh = Arc::new(self.note(provider, now, fresh)?);
        self.with(provider, |c| c.metadata = Some(fresh.clone()));
        Ok(Some(fresh))
    }

    /// The web origin a login through `provider` sends the browser to, when known
    /// (the login page's CSP `form-action` must allow it): GitHub's web URL, or an
    /// OIDC provider's authorization endpoint once discovered (its issuer before).
    pub(crate) fn authorization_target(&self, provider: &Provider) -> String {
        match &provider.endpoints {
            Endpoints::Github { web_url, .. } => web_url.clone(),
            Endpoints::Oidc { issuer } => self
                .with(provider, |c| {
                    c.metadata
                        .as_ref()
                        .map(|m| m.authorization_endpoint().to_string())
                })
                .unwrap_or_else(|| issuer.clone()),
        }
    }

    /// Starts a login through `provider`: the URL to send the browser to and what the
    /// callback will need.
    pub(crate) async fn start(
        &self,
        provider: &Provider,
        callback: &str,
        state: &str,
        prompt_login: bool,
        max_age: Option<u64>,
        now: u64,
    ) -> Result<Started, UpstreamError> {
        match &provider.endpoints {
            Endpoints::Oidc { issuer } => {
                let metadata = self.metadata(provider, issuer, now).await?;
                oidc::authorization_url(&metadata, provider, callback, state, prompt_login, max_age)
            }
            Endpoints::Github { web_url, .. } => Ok(github::authorization_url(
                provider, web_url, callback, state,
            )),
        }
    }

    /// Finishes a login at the callback: the `iss` response check, the code exchange
    /// and the ID token checks (OIDC), or the token and the user's data (GitHub).
    pub(crate) async fn finish(
        &self,
        provider: &Provider,
        callback: &str,
        attempt: &Attempt<'_>,
        response: &Response<'_>,
        now: u64,
    ) -> Result<Vouched, UpstreamError> {
        let http = self.http()?;
        match &provider.endpoints {
            Endpoints::Oidc { issuer } => {
                let metadata = self.metadata(provider, issuer, now).await?;
                oidc::check_response_iss(&metadata, response.iss)?;
                let exchanged = oidc::exchange(
                    http,
                    &metadata,
                    provider,
                    callback,
                    response.code,
                    attempt.pkce_verifier,
                )
                .await;
                let exchanged = self.note(provider, now, exchanged)?;
                self.checked(
                    provider,
                    metadata,
                    callback,
                    &exchanged,
                    Some(attempt.nonce),
                    now,
                )
                .await
            }
            Endpoints::Github { web_url, api_url } => {
                if response.iss.is_some() {
                    return Err(UpstreamError::refused("wrong_iss", "GitHub sends no iss"));
                }
                let token = github::exchange(
                    http,
                    provider,
                    web_url,
                    callback,
                    response.code,
                    attempt.pkce_verifier,
                )
                .await;
                let token = self.note(provider, now, token)?;
                let user = github::user(http, api_url, &token).await;
                self.note(provider, now, user)
            }
        }
    }

    async fn checked(
        &self,
        provider: &Provider,
        metadata: Arc<Metadata>,
        callback: &str,
        exchanged: &oidc::Exchanged,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<Vouched, UpstreamError> {
        let unknown = || {
            UpstreamError::refused(
                "unknown_key",
                "signed with a key the provider does not publish",
            )
        };
        if let Checked::Good(v) =
            oidc::check_id_token(&metadata, provider, callback, exchanged, nonce, now)?
        {
            return Ok(v);
        }
        let fresh = self
            .refetch_keys(provider, &metadata, now)
            .await?
            .ok_or_else(unknown)?;
        match oidc::check_id_token(&fresh, provider, callback, exchanged, nonce, now)? {
            Checked::Good(v) => Ok(v),
            Checked::UnknownKey => Err(unknown()),
        }
    }

    /// Asks `provider` again about the user with the kept `token` (`mode =
    /// "revalidate"`): their claims now, and the token to keep (it may have rotated).
    pub(crate) async fn revalidate(
        &self,
        provider: &Provider,
        callback: &str,
        token: &str,
        now: u64,
    ) -> Result<Vouched, UpstreamError> {
        let http = self.http()?;
        match &provider.endpoints {
            Endpoints::Oidc { issuer } => {
                let metadata = self.metadata(provider, issuer, now).await?;
                let exchanged = oidc::refresh(http, &metadata, provider, callback, token).await;
                let exchanged = self.note(provider, now, exchanged)?;
                match self
                    .checked(provider, metadata.clone(), callback, &exchanged, None, now)
                    .await
                {
                    Ok(v) => Ok(v),
                    Err(UpstreamError::Refused {
                        reason: "no_id_token",
                        ..
                    }) => {
                        let claims = oidc::userinfo(http, &metadata, &exchanged).await;
                        Ok(Vouched {
                            claims: self.note(provider, now, claims)?,
                            token: exchanged.refresh_token().map(str::to_owned),
                            auth_time: None,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Endpoints::Github { api_url, .. } => {
                let user = github::user(http, api_url, token).await;
                self.note(provider, now, user)
            }
        }
    }

    /// Each provider of `providers` with what is known of it, for the operators'
    /// `/readyz`: `"not contacted yet"`, `"ok"` with the time of the last good call, or
    /// `"unreachable"` with the last error.
    pub(crate) fn status(&self, providers: &[Provider]) -> Value {
        let mut out = serde_json::Map::new();
        for p in providers {
            let last = self.with(p, |c| c.last.clone());
            let entry = match last {
                None => json!({"status": "not contacted yet"}),
                Some(Ok(at)) => json!({"status": "ok", "last_ok": at}),
                Some(Err(e)) => json!({"status": "unreachable", "error": e}),
            };
            out.insert(p.id.clone(), entry);
        }
        Value::Object(out)
    }
}
