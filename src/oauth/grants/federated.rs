//! What a refresh owes the upstream a federated user signed in through (the provider's
//! `refresh` setting), checked before the token is rotated:
//!
//! - `cap` (the default, 12h): no upstream token is kept; the refresh family ends
//!   `max_age` after the upstream login.
//! - `revalidate`: once `every` has passed since the upstream last vouched, the kept
//!   upstream token (sealed, held by this family alone) asks the upstream again. It
//!   says no, or the provider's rules now fail: the family is revoked and the client
//!   gets `invalid_grant`. It cannot be reached: `temporarily_unavailable` (503) and
//!   the token stays valid for a retry.

use crate::error::OAuthError;
use crate::model::{Federation, Identity};
use crate::oauth::standing;
use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use crate::upstream::provider::{Provider, RefreshPolicy};
use crate::upstream::{UpstreamError, rules};

/// Whether a cap of `max_age` seconds from the upstream login `login_at` has ended a
/// family at `now`.
pub(crate) fn capped(login_at: u64, max_age: u64, now: u64) -> bool {
    now >= login_at.saturating_add(max_age)
}

/// Whether a refresh at `now` must ask the upstream again (last vouched at
/// `checked_at`, every `every` seconds).
pub(crate) fn due(checked_at: u64, every: u64, now: u64) -> bool {
    now.saturating_sub(checked_at) >= every
}

/// How a refused refresh ends: the audit line, the metric and the family revoked.
struct Ending<'a> {
    state: &'a AppState,
    registry: &'a Registry,
    family: &'a str,
    provider: &'a str,
    user_id: &'a str,
}

impl Ending<'_> {
    /// Logs `reason`, revokes the family and answers `invalid_grant` with `detail`.
    async fn end(&self, reason: &str, detail: &str) -> OAuthError {
        tracing::warn!(event = "upstream_refresh_refused", provider = %self.provider, reason = %reason, user_id = %self.user_id);
        metrics::counter!("gatehouse_upstream_refreshes_total", "provider" => self.provider.to_owned(), "result" => "refused").increment(1);
        match standing::revoke_family(self.state, self.registry, self.family).await {
            Ok(()) => OAuthError::invalid_grant(detail.to_owned()),
            Err(e) => e.into(),
        }
    }
}

/// The identity the refresh goes on with: `user` unchanged (not federated, or within
/// its cap or its `every`), or as the upstream describes them now (with the new
/// sealed upstream token). The family is revoked when it must end.
pub(crate) async fn check(
    state: &AppState,
    registry: &Registry,
    family: &str,
    user: Identity,
) -> Result<Identity, OAuthError> {
    let Some(federation) = user.upstream.as_deref() else {
        return Ok(user);
    };
    let now = state.clock.now();
    let ending = Ending {
        state,
        registry,
        family,
        provider: &federation.provider,
        user_id: &user.subject,
    };
    let Some(provider) = registry.provider(&federation.provider) else {
        let detail = "the provider the user signed in through is gone";
        return Err(ending.end("provider_gone", detail).await);
    };
    let every = match provider.refresh {
        RefreshPolicy::Cap(max_age) if capped(federation.login_at, max_age.as_secs(), now) => {
            let detail = "the sign-in at the provider is older than its max_age; sign in again";
            return Err(ending.end("max_age", detail).await);
        }
        RefreshPolicy::Cap(_) => return Ok(user),
        RefreshPolicy::Revalidate(every) => every,
    };
    if !due(federation.checked_at, every.as_secs(), now) {
        return Ok(user);
    }
    let identity = revalidate(&ending, provider, federation, &user.subject, now).await?;
    tracing::info!(event = "upstream_refresh_revalidated", provider = %provider.id, user_id = %user.subject);
    metrics::counter!("gatehouse_upstream_refreshes_total", "provider" => provider.id.clone(), "result" => "success").increment(1);
    Ok(identity)
}

/// Asks the upstream again with the kept token and admits the answer through the
/// provider's rules, as at the callback: the identity must still be the same user.
async fn revalidate(
    ending: &Ending<'_>,
    provider: &Provider,
    federation: &Federation,
    user_id: &str,
    now: u64,
) -> Result<Identity, OAuthError> {
    let registry = ending.registry;
    let (Some(sealed), Some(key)) = (&federation.token, &registry.token_key) else {
        let detail = "no upstream token to check the sign-in with; sign in again";
        return Err(ending.end("no_upstream_token", detail).await);
    };
    let Ok(token) = key.open(&provider.id, &federation.subject, sealed) else {
        let detail = "the upstream token cannot be opened (token_key changed); sign in again";
        return Err(ending.end("unsealable", detail).await);
    };
    let callback = endpoint(&registry.issuer, &provider.callback_path());
    let upstreams = &ending.state.upstreams;
    let vouched = match upstreams.revalidate(provider, &callback, &token, now).await {
        Ok(v) => v,
        Err(e @ UpstreamError::Unavailable(_)) => {
            metrics::counter!("gatehouse_upstream_refreshes_total", "provider" => provider.id.clone(), "result" => "unavailable").increment(1);
            return Err(OAuthError::unavailable(e));
        }
        Err(e) => {
            return Err(ending
                .end(e.reason(), "the provider no longer vouches for the user")
                .await);
        }
    };
    let new_token = match vouched
        .token
        .as_deref()
        .map(|t| key.seal(&provider.id, &federation.subject, t))
    {
        Some(Ok(sealed)) => Some(sealed),
        Some(Err(e)) => return Err(OAuthError::server(e)),
        None => Some(sealed.clone()),
    };
    let renewed = |_: &rules::UpstreamUser| Federation {
        checked_at: now,
        token: new_token,
        ..federation.clone()
    };
    let linked = |subject: &str| registry.linked_user(&provider.id, subject);
    let someone_else = "the provider answered for someone else";
    match rules::admission(provider, vouched.claims, linked, renewed) {
        Ok(a) if a.user.subject != federation.subject => {
            Err(ending.end("other_subject", someone_else).await)
        }
        Ok(a) if a.identity.subject == user_id => Ok(a.identity),
        Ok(_) => Err(ending
            .end(
                "other_subject",
                "the user is now someone else here; sign in again",
            )
            .await),
        Err(rules::Refusal::NoSubject) => Err(ending.end("other_subject", someone_else).await),
        Err(refusal) => Err(ending
            .end(
                &refusal.to_string(),
                "the provider's rules no longer let the user in",
            )
            .await),
    }
}

#[cfg(test)]
mod tests {
    use crate::oauth::grants::federated::{capped, due};

    #[test]
    fn caps_and_revalidation_times() {
        assert!(!capped(100, 3600, 3699));
        assert!(capped(100, 3600, 3700));
        assert!(!due(100, 60, 159));
        assert!(due(100, 60, 160));
        // A clock that went back never makes a check due early.
        assert!(!due(200, 60, 100));
    }
}
