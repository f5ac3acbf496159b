//! The facts the login policy decides from ([`Facts`]), gathered from the
//! request, the client, the browser's session and the kept request: what the pages
//! pass to [`super::policy::next`] and nothing else.

use super::pending::Pending;
use super::policy::{Facts, SessionFacts, Strength};
use crate::config::file::GrantType;
use crate::model::{Client, Identity, IdentitySource, User};
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::target;
use crate::registry::Registry;
use crate::store::Session;
use crate::upstream::provider::RefreshPolicy;

/// The facts about `request` for `client`, with the browser's `session` (one the
/// client may use) and the `kept` request it continues, at `now`.
pub(crate) fn gather<'a>(
    registry: &'a Registry,
    request: &'a AuthRequest,
    client: &Client,
    session: Option<&'a Session>,
    kept: Option<&Pending>,
    now: u64,
) -> Facts<'a> {
    Facts {
        request,
        made_at: kept.map(|k| k.created_at),
        now,
        session: session.map(|s| session_facts(registry, s, request, client)),
        first_party: client.first_party,
        refreshes: client.allows_grant(GrantType::RefreshToken),
        hinted: request
            .idp_hint
            .as_deref()
            .and_then(|id| registry.provider(id))
            .filter(|p| client.allows_provider(&p.id))
            .map(|p| p.id.as_str()),
        upstream_token_kept: kept.is_some_and(|k| k.upstream_token.is_some()),
        upstream_trips: kept.map_or(0, |k| k.upstream_trips),
        second_factor: registry.login.second_factor,
        client_requires_second_factor: client.protections.second_factor,
    }
}

/// The `[[users]]` entry a session's `identity` is (a password login, or a provider's
/// login linked to the user): whose second factors it may prove.
pub(crate) fn local_user<'r>(registry: &'r Registry, identity: &Identity) -> Option<&'r User> {
    match identity.source {
        IdentitySource::Local => registry.user_by_id(&identity.subject),
        IdentitySource::Upstream => None,
    }
}

/// The session as the policy weighs it, for `request`.
/// A client registered by its metadata document never counts as consented: the
/// consent page, naming the document's host, shows at each of its sign-ins.
fn session_facts<'s>(
    registry: &'s Registry,
    session: &'s Session,
    request: &AuthRequest,
    client: &Client,
) -> SessionFacts<'s> {
    let granted = session.consents.get(&request.client_id);
    let allowed = session
        .consents
        .get(&target::consent_key(&request.client_id));
    let revalidating = session
        .identity
        .upstream
        .as_ref()
        .and_then(|f| registry.provider(&f.provider))
        .filter(|p| matches!(p.refresh, RefreshPolicy::Revalidate(_)));
    SessionFacts {
        auth_time: session.auth_time,
        consented: client.document_host.is_none()
            && request
                .scopes
                .iter()
                .all(|s| granted.is_some_and(|g| g.contains(s)))
            && request
                .resources
                .iter()
                .all(|r| allowed.is_some_and(|g| g.contains(r))),
        revalidating_provider: revalidating.map(|p| p.id.as_str()),
        strength: Strength::of(&session.amr),
        has_second_factor: local_user(registry, &session.identity)
            .is_some_and(|u| !u.second_factors().is_empty()),
    }
}

/// True when `client` may use `session` (a login through a provider it does not allow
/// is as no session: the user signs in again, with a password or a provider the client
/// allows).
pub(crate) fn may_use(client: &Client, session: &Session, remote: impl std::fmt::Display) -> bool {
    let ok = client.allows_identity(&session.identity);
    if !ok {
        tracing::info!(event = "session_not_used", client_id = %client.id, remote = %remote, reason = "provider_not_allowed", "the session signed in through a provider this client does not allow");
    }
    ok
}
