//! Whether an issued token still stands, and how tokens are ended: denied access-token
//! ids, revoked refresh families, clients removed, secrets removed, and users removed
//! from the config. The one home of these rules: the refresh grant, introspection,
//! revocation and userinfo all ask here.
//!
//! Every token records the credential it was issued under: the fingerprint of the
//! secret the client authenticated with, or none for a public client. A token stands
//! while its client still lists that credential, so adding a new secret in front of
//! the old one ends nothing, and removing the old one ends exactly the tokens issued
//! under it. When a reload removes a credential (a secret dropped from the list, a
//! client removed, a public client made confidential), the reloader records a "not
//! before" time for that client and credential in the store: listing the same secret
//! again (or re-adding the client) later revives none of the tokens issued before.

use crate::crypto::hex;
use crate::identity;
use crate::jwt::verify::AccessClaims;
use crate::model::{CredentialId, Identity, IdentitySource};
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{RefreshGrant, StoreError};
use std::time::Duration;

/// Why an issued token no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Fallen {
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Its client is not in the serving config.
    #[error("the token's client is no longer registered")]
    ClientGone,
    /// The secret it was issued under is no longer listed, or was removed (or its
    /// client was) after it was issued.
    #[error("the secret the token was issued under is no longer the client's")]
    ClientReset,
    /// Its user is not in the serving config.
    #[error("the token's user no longer exists")]
    UserGone,
    /// Its id was denied or its refresh family revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// Its session ended, or a `tokens_not_before` of its user or client came after
    /// it began.
    #[error("the session or grant the token came from has ended")]
    Ended,
    /// Issued before the store lost its records (`AppState::store_epoch`): whether it
    /// was revoked since cannot be known, so it stands no more.
    #[error("the token was issued before the store lost its records")]
    Forgotten,
}

/// Who an access token that still stands was issued for.
#[derive(Debug)]
pub(crate) enum Holder {
    /// The client itself (client credentials): no user, no `auth_time`.
    Client,
    /// A user, as the config describes them now.
    User(Identity),
}

/// Whether a token stands: what it stands for, or why it fell.
pub(crate) type Standing<T> = Result<T, Fallen>;

/// What a token or session descends from, each of which may have a "not before": its
/// user (`[[users]] tokens_not_before`, `gatehouse revoke --user`), its client
/// (`[[clients]] tokens_not_before`, `gatehouse revoke --client`) and its login
/// session (ended by logout or `gatehouse revoke --session`).
#[derive(Debug, Default)]
pub(crate) struct Lineage<'a> {
    /// The user's `sub`.
    pub(crate) user: Option<&'a str>,
    /// The client it was issued to.
    pub(crate) client: Option<&'a str>,
    /// The login session (`sid`) it ends with.
    pub(crate) sid: Option<&'a str>,
}

/// The store name of the not-before of the user `sub`. Names starting with a space
/// are no client id (client ids hold no whitespace), so they never meet
/// [`reset_key`]'s.
pub(crate) fn user_key(sub: &str) -> String {
    format!(" user {sub}")
}

/// The store name of the not-before of every token of the client `id`.
pub(crate) fn client_key(id: &str) -> String {
    format!(" client {id}")
}

/// The store name of the end of the login session `sid`.
pub(crate) fn session_key(sid: &str) -> String {
    format!(" session {sid}")
}

/// Whether something begun at `since` (Unix seconds) falls to one of the `cut_offs`:
/// begun at or before any of them (whole seconds, so the very second of a cut-off
/// counts as before it).
pub(crate) fn falls(since: u64, cut_offs: &[Option<u64>]) -> bool {
    cut_offs.iter().flatten().any(|at| since <= *at)
}

/// Whether what `lineage` names, begun at `since`, has been ended: by the serving
/// config's `tokens_not_before` of its user or client, or by a not-before the store
/// records for its user, client or session. The store's three are read at once.
pub(crate) async fn ended(
    state: &AppState,
    registry: &Registry,
    lineage: &Lineage<'_>,
    since: u64,
) -> Result<bool, StoreError> {
    let configured_user = lineage
        .user
        .and_then(|sub| registry.user_by_id(sub))
        .and_then(|u| u.tokens_not_before);
    let configured_client = lineage
        .client
        .and_then(|id| registry.client(id))
        .and_then(|c| c.tokens_not_before);
    let read = |name: Option<String>| async move {
        match name {
            Some(name) => state.store.not_before(&name).await,
            None => Ok(None),
        }
    };
    let (user, client, session) = tokio::join!(
        read(lineage.user.map(user_key)),
        read(lineage.client.map(client_key)),
        read(lineage.sid.map(session_key)),
    );
    Ok(falls(
        since,
        &[configured_user, configured_client, user?, client?, session?],
    ))
}

/// How long a recorded not-before must last: as long as anything it ends could live
/// (a token of this generation, or a session).
pub(crate) fn not_before_ttl(registry: &Registry) -> Duration {
    registry.longest_token_ttl().max(registry.session.ttl)
}

/// Ends the login session `sid` now: its access tokens, codes and refresh families
/// (except `offline_access` ones) stop standing on every replica sharing the store.
pub(crate) async fn end_session(
    state: &AppState,
    registry: &Registry,
    sid: &str,
) -> Result<(), StoreError> {
    let ttl = not_before_ttl(registry);
    state
        .store
        .set_not_before(&session_key(sid), state.clock.now(), ttl)
        .await
}

/// Denies the access token `jti` until it would have expired anyway (`exp`).
pub(crate) async fn deny_access(state: &AppState, jti: &str, exp: u64) -> Result<(), StoreError> {
    let left = Duration::from_secs(exp.saturating_sub(state.clock.now()).max(1));
    state.store.deny_jti(jti, left).await
}

/// Revokes a whole refresh family, for as long as any member could live. The access
/// tokens issued with the family (they carry its id) fall with it.
pub(crate) async fn revoke_family(
    state: &AppState,
    registry: &Registry,
    family: &str,
) -> Result<(), StoreError> {
    state
        .store
        .revoke_family(family, registry.longest_refresh_ttl())
        .await
}

/// The name under which the store keeps the "not before" time of the tokens issued to
/// `client_id` under `credential`: the client id itself for a public client's tokens,
/// the client id, a space and the secret's fingerprint in hex otherwise. Client ids
/// hold no whitespace, so no two of these names collide.
pub(crate) fn reset_key(client_id: &str, credential: Option<&CredentialId>) -> String {
    match credential {
        None => client_id.to_owned(),
        Some(id) => format!("{client_id} secret:{}", hex(id)),
    }
}

/// Ends every token issued to `client_id` under `credential` until now: the reloader
/// calls this when the credential is no longer listed. Kept for `ttl`, the longest a
/// token of either generation lives.
pub(crate) async fn end_credential(
    state: &AppState,
    client_id: &str,
    credential: Option<&CredentialId>,
    ttl: Duration,
) -> Result<(), StoreError> {
    state
        .store
        .set_not_before(&reset_key(client_id, credential), state.clock.now(), ttl)
        .await
}

/// The name under which the store keeps the time before which (inclusive) the
/// identities provider `provider` admitted by its rules no longer stand. Client ids
/// hold no whitespace, so it collides with no [`reset_key`].
pub(crate) fn rules_key(provider: &str) -> String {
    format!("{provider} provider-rules")
}

/// Ends every identity `provider` admitted by its rules until now, with their
/// sessions, refresh families and access tokens: the reloader calls this when a reload
/// narrows the provider's rules (an email domain or a group removed, a claim
/// required), so nobody stays in on rules that would refuse them now. Kept for `ttl`.
pub(crate) async fn end_admissions(
    state: &AppState,
    provider: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    state
        .store
        .set_not_before(&rules_key(provider), state.clock.now(), ttl)
        .await
}

/// Whether `identity`, last vouched for at `vouched_at` (its login, or the provider's
/// last revalidation), still stands as far as its admission goes: a local user (linked
/// or not) always; someone a provider's rules let in, unless a reload narrowed those
/// rules since ([`end_admissions`]). One store read, for upstream identities only.
pub(crate) async fn admission_stands(
    state: &AppState,
    identity: &Identity,
    vouched_at: u64,
) -> Result<bool, StoreError> {
    if identity.source != IdentitySource::Upstream {
        return Ok(true);
    }
    let Some((provider, _)) = identity.subject.split_once(':') else {
        return Ok(false);
    };
    let ended = state.store.not_before(&rules_key(provider)).await?;
    Ok(ended.is_none_or(|at| vouched_at > at))
}

/// Whether a token issued to `client_id` under `credential` at `issued_at` stands as
/// far as its client goes: the client registered, still listing the credential, and
/// the credential not removed since the token was issued. Times are whole seconds, so
/// a token issued in the very second of a removal counts as older than it.
async fn client_stands(
    state: &AppState,
    registry: &Registry,
    client_id: &str,
    credential: Option<&CredentialId>,
    issued_at: u64,
) -> Result<Standing<()>, StoreError> {
    // A client registered by its metadata document stands while its document (cached
    // or fetched again) still registers it under a configured prefix.
    let Ok(Some(client)) = super::client_document::lookup(state, registry, client_id).await else {
        return Ok(Err(Fallen::ClientGone));
    };
    if !client.accepts_credential(credential) {
        return Ok(Err(Fallen::ClientReset));
    }
    let removed = state
        .store
        .not_before(&reset_key(client_id, credential))
        .await?;
    if removed.is_some_and(|at| issued_at <= at) {
        return Ok(Err(Fallen::ClientReset));
    }
    Ok(Ok(()))
}

/// Whether a verified access token still stands: issued since the store's records
/// began (`AppState::store_epoch`), its client registered and still listing the secret
/// it was issued under (see [`client_stands`]), its id not denied;
/// for a user's token (one with `auth_time`), the user still in the config and the
/// token's refresh family not revoked.
pub(crate) async fn access(
    state: &AppState,
    registry: &Registry,
    claims: &AccessClaims,
) -> Result<Standing<Holder>, StoreError> {
    let Ok(credential) = claims.credential() else {
        return Ok(Err(Fallen::ClientReset));
    };
    if claims.iat < state.store_epoch().since {
        return Ok(Err(Fallen::Forgotten));
    }
    let lineage = Lineage {
        // A client's own token (no `auth_time`) has no user, whatever its `sub`.
        user: claims.auth_time.map(|_| claims.sub.as_str()),
        client: Some(&claims.client_id),
        sid: claims.sid.as_deref(),
    };
    // Independent reads, asked at once: one round trip to a shared store.
    let (stands, denied, ended) = tokio::join!(
        client_stands(
            state,
            registry,
            &claims.client_id,
            credential.as_ref(),
            claims.iat,
        ),
        state.store.jti_denied(&claims.jti),
        ended(state, registry, &lineage, claims.iat),
    );
    if let Err(fallen) = stands? {
        return Ok(Err(fallen));
    }
    if denied? {
        return Ok(Err(Fallen::Revoked));
    }
    if ended? {
        return Ok(Err(Fallen::Ended));
    }
    if claims.auth_time.is_none() {
        return Ok(Ok(Holder::Client));
    }
    let Some(user) = identity::by_token_subject(registry, &claims.sub) else {
        return Ok(Err(Fallen::UserGone));
    };
    if !admission_stands(state, &user, claims.auth_time.unwrap_or_default()).await? {
        return Ok(Err(Fallen::UserGone));
    }
    if let Some(family) = &claims.family
        && state.store.family_revoked(family).await?
    {
        return Ok(Err(Fallen::Revoked));
    }
    Ok(Ok(Holder::User(user)))
}

/// Whether a refresh grant that was not used yet still stands: not expired, its client
/// registered and still listing the secret it was issued under, its family not
/// revoked, its user still in the config (whom it gives back) and, for someone a
/// provider's rules let in, those rules not narrowed since ([`admission_stands`]).
pub(crate) async fn refresh(
    state: &AppState,
    registry: &Registry,
    grant: &RefreshGrant,
) -> Result<Standing<Identity>, StoreError> {
    if grant.expires_at <= state.clock.now() {
        return Ok(Err(Fallen::Expired));
    }
    let lineage = Lineage {
        user: Some(&grant.subject),
        client: Some(&grant.client_id),
        // OIDC Core 11: an offline_access family outlives its session.
        sid: grant.origin.sid.as_deref().filter(|_| !grant.offline()),
    };
    let (stands, revoked, ended) = tokio::join!(
        client_stands(
            state,
            registry,
            &grant.client_id,
            grant.credential.as_ref(),
            grant.issued_at,
        ),
        state.store.family_revoked(&grant.family),
        ended(state, registry, &lineage, grant.origin.since),
    );
    if let Err(fallen) = stands? {
        return Ok(Err(fallen));
    }
    if revoked? {
        return Ok(Err(Fallen::Revoked));
    }
    if ended? {
        return Ok(Err(Fallen::Ended));
    }
    let (user, vouched_at) = match &grant.federated {
        Some(snapshot) => (
            identity::current(registry, snapshot),
            snapshot
                .upstream
                .as_ref()
                .map_or(grant.auth_time, |f| f.checked_at),
        ),
        None => (
            identity::by_subject(registry, grant.source, &grant.subject),
            grant.auth_time,
        ),
    };
    let Some(user) = user else {
        return Ok(Err(Fallen::UserGone));
    };
    if !admission_stands(state, &user, vouched_at).await? {
        return Ok(Err(Fallen::UserGone));
    }
    Ok(Ok(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_began_at_or_before_a_cut_off_falls() {
        assert!(!falls(100, &[]));
        assert!(!falls(100, &[None, None]));
        assert!(falls(100, &[Some(100)]), "the very second counts as before");
        assert!(falls(100, &[None, Some(150)]));
        assert!(!falls(100, &[Some(99), None]), "begun after the cut-off");
        assert!(falls(100, &[Some(99), Some(100)]), "any cut-off is enough");
    }

    #[test]
    fn store_names_never_meet_a_client_id_or_each_other() {
        let names = [
            user_key("a"),
            client_key("a"),
            session_key("a"),
            reset_key("a", None),
        ];
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names[..3].iter().all(|n| n.starts_with(' ')));
    }
}
