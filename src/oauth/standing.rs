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
use crate::store::{RefreshGrant, StandingQuery, StoreError};
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
    let found = records(state, lineage_names(lineage), None, None).await?;
    Ok(ended_by(registry, lineage, since, found.not_before))
}

/// Whether what `lineage` names, begun at `since`, falls to the config's
/// `tokens_not_before` of its user or client, or to `stored`: the store's not-befores
/// of [`lineage_names`].
fn ended_by(
    registry: &Registry,
    lineage: &Lineage<'_>,
    since: u64,
    stored: [Option<u64>; 3],
) -> bool {
    let configured_user = lineage
        .user
        .and_then(|sub| registry.user_by_id(sub))
        .and_then(|u| u.tokens_not_before);
    let configured_client = lineage
        .client
        .and_then(|id| registry.client(id))
        .and_then(|c| c.tokens_not_before);
    let [user, client, session] = stored;
    falls(
        since,
        &[configured_user, configured_client, user, client, session],
    )
}

/// The store names of `lineage`'s not-befores: its user's, client's and session's.
fn lineage_names(lineage: &Lineage<'_>) -> [Option<String>; 3] {
    [
        lineage.user.map(user_key),
        lineage.client.map(client_key),
        lineage.sid.map(session_key),
    ]
}

/// What [`records`] found: the not-befores in the order of the names asked for (none
/// for a name not asked), the denial and the revocation.
struct Found<const N: usize> {
    not_before: [Option<u64>; N],
    jti_denied: bool,
    family_revoked: bool,
}

/// The store's not-befores of `names` (`None` reads as no record), whether `jti` is
/// denied and whether `family` is revoked: one [`crate::store::Store::standing`] call,
/// one round trip to a shared store.
async fn records<const N: usize>(
    state: &AppState,
    names: [Option<String>; N],
    jti: Option<&str>,
    family: Option<&str>,
) -> Result<Found<N>, StoreError> {
    let asked = names.each_ref().map(Option::is_some);
    let query = StandingQuery {
        not_before: names.into_iter().flatten().collect(),
        jti: jti.map(str::to_owned),
        family: family.map(str::to_owned),
    };
    let found = state.store.standing(&query).await?;
    let mut stored = found.not_before.into_iter();
    Ok(Found {
        // Only the names asked have an answer, in order.
        not_before: asked.map(|asked| if asked { stored.next().flatten() } else { None }),
        jti_denied: found.jti_denied,
        family_revoked: found.family_revoked,
    })
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

/// What `identity`'s admission rests on: nothing for a local user (linked or not);
/// for someone a provider's rules let in, those rules, which a reload may narrow
/// ([`end_admissions`]).
enum Admission {
    /// A local user: always admitted.
    Local,
    /// Let in by the rules of a provider: the store name of their not-before.
    ByRules(String),
    /// An upstream subject that names no provider: never admitted.
    Malformed,
}

impl Admission {
    fn of(identity: &Identity) -> Self {
        if identity.source != IdentitySource::Upstream {
            return Self::Local;
        }
        match identity.subject.split_once(':') {
            Some((provider, _)) => Self::ByRules(rules_key(provider)),
            None => Self::Malformed,
        }
    }

    /// The store name to read, if any.
    fn name(&self) -> Option<String> {
        match self {
            Self::ByRules(name) => Some(name.clone()),
            Self::Local | Self::Malformed => None,
        }
    }

    /// Whether the identity, last vouched for at `vouched_at` (its login, or the
    /// provider's last revalidation), still stands given the rules' not-before `ended`.
    fn stands(&self, vouched_at: u64, ended: Option<u64>) -> bool {
        match self {
            Self::Local => true,
            Self::ByRules(_) => ended.is_none_or(|at| vouched_at > at),
            Self::Malformed => false,
        }
    }
}

/// Whether a login session of `identity` still stands: what `lineage` names not ended
/// since the session `began`, and the identity's admission not ended since
/// `vouched_at`. One store call.
pub(crate) async fn session(
    state: &AppState,
    registry: &Registry,
    lineage: &Lineage<'_>,
    began: u64,
    identity: &Identity,
    vouched_at: u64,
) -> Result<bool, StoreError> {
    let admission = Admission::of(identity);
    let [user, client, sid] = lineage_names(lineage);
    let found = records(state, [user, client, sid, admission.name()], None, None).await?;
    let [user, client, sid, rules] = found.not_before;
    Ok(!ended_by(registry, lineage, began, [user, client, sid])
        && admission.stands(vouched_at, rules))
}

/// Whether a token issued to `client_id` under `credential` stands as far as the
/// client's registration goes: the client registered and still listing the
/// credential. (Whether the credential was removed since the token was issued is the
/// store's not-before of [`reset_key`], read with the token's other records.)
async fn client_registered(
    state: &AppState,
    registry: &Registry,
    client_id: &str,
    credential: Option<&CredentialId>,
) -> Standing<()> {
    // A client registered by its metadata document stands while its document (cached
    // or fetched again) still registers it under a configured prefix.
    let Ok(Some(client)) = super::client_document::lookup(state, registry, client_id).await else {
        return Err(Fallen::ClientGone);
    };
    if !client.accepts_credential(credential) {
        return Err(Fallen::ClientReset);
    }
    Ok(())
}

/// Whether a token issued at `issued_at` fell to the removal of its credential, given
/// the store's not-before of its [`reset_key`]. Times are whole seconds, so a token
/// issued in the very second of a removal counts as older than it.
fn reset_since(issued_at: u64, removed: Option<u64>) -> bool {
    removed.is_some_and(|at| issued_at <= at)
}

/// The denial and revocation a token's standing asks the store about, besides its
/// not-befores.
#[derive(Clone, Copy)]
struct Marks<'a> {
    jti: Option<&'a str>,
    family: Option<&'a str>,
}

/// A token's client registration ([`client_registered`]) and its store records, asked
/// at once: one round trip to a shared store. The not-befores come in this order: the
/// credential's reset ([`reset_key`]), the lineage's user, client and session, the
/// admission's rules.
async fn token_records(
    state: &AppState,
    registry: &Registry,
    lineage: &Lineage<'_>,
    credential: Option<&CredentialId>,
    admission: Option<&Admission>,
    marks: Marks<'_>,
) -> Result<Standing<Found<5>>, StoreError> {
    let client_id = lineage.client.unwrap_or_default();
    let [user, client, sid] = lineage_names(lineage);
    let names = [
        Some(reset_key(client_id, credential)),
        user,
        client,
        sid,
        admission.and_then(Admission::name),
    ];
    let (registered, found) = tokio::join!(
        client_registered(state, registry, client_id, credential),
        records(state, names, marks.jti, marks.family),
    );
    match registered {
        Err(fallen) => Ok(Err(fallen)),
        Ok(()) => Ok(Ok(found?)),
    }
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
    // A user's token: who it names in the config now (`None`: gone).
    let user = claims
        .auth_time
        .map(|_| identity::by_token_subject(registry, &claims.sub));
    let admission = user.as_ref().and_then(|u| u.as_ref()).map(Admission::of);
    let marks = Marks {
        jti: Some(&claims.jti),
        family: claims.family.as_deref(),
    };
    let found = match token_records(
        state,
        registry,
        &lineage,
        credential.as_ref(),
        admission.as_ref(),
        marks,
    )
    .await?
    {
        Ok(found) => found,
        Err(fallen) => return Ok(Err(fallen)),
    };
    let [reset, user_nb, client_nb, sid_nb, rules] = found.not_before;
    if reset_since(claims.iat, reset) {
        return Ok(Err(Fallen::ClientReset));
    }
    if found.jti_denied {
        return Ok(Err(Fallen::Revoked));
    }
    if ended_by(registry, &lineage, claims.iat, [user_nb, client_nb, sid_nb]) {
        return Ok(Err(Fallen::Ended));
    }
    let Some(user) = user else {
        return Ok(Ok(Holder::Client));
    };
    let (Some(user), Some(admission)) = (user, admission) else {
        return Ok(Err(Fallen::UserGone));
    };
    if !admission.stands(claims.auth_time.unwrap_or_default(), rules) {
        return Ok(Err(Fallen::UserGone));
    }
    if found.family_revoked {
        return Ok(Err(Fallen::Revoked));
    }
    Ok(Ok(Holder::User(user)))
}

/// Whether a refresh grant that was not used yet still stands: not expired, its client
/// registered and still listing the secret it was issued under, its family not
/// revoked, its user still in the config (whom it gives back) and, for someone a
/// provider's rules let in, those rules not narrowed since.
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
    let admission = user.as_ref().map(Admission::of);
    let marks = Marks {
        jti: None,
        family: Some(&grant.family),
    };
    let credential = grant.credential.as_ref();
    let found = match token_records(
        state,
        registry,
        &lineage,
        credential,
        admission.as_ref(),
        marks,
    )
    .await?
    {
        Ok(found) => found,
        Err(fallen) => return Ok(Err(fallen)),
    };
    let [reset, user_nb, client_nb, sid_nb, rules] = found.not_before;
    if reset_since(grant.issued_at, reset) {
        return Ok(Err(Fallen::ClientReset));
    }
    if found.family_revoked {
        return Ok(Err(Fallen::Revoked));
    }
    if ended_by(
        registry,
        &lineage,
        grant.origin.since,
        [user_nb, client_nb, sid_nb],
    ) {
        return Ok(Err(Fallen::Ended));
    }
    let (Some(user), Some(admission)) = (user, admission) else {
        return Ok(Err(Fallen::UserGone));
    };
    if !admission.stands(vouched_at, rules) {
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
    fn an_admission_by_rules_stands_until_the_rules_narrow_after_it() {
        let identity =
            |source, subject: &str| Identity::bare(source, subject.into(), subject.into());
        let local = Admission::of(&identity(IdentitySource::Local, "alice"));
        assert!(local.name().is_none());
        assert!(
            local.stands(100, Some(200)),
            "a local user rests on no rules"
        );
        let upstream = Admission::of(&identity(IdentitySource::Upstream, "corp:42"));
        assert_eq!(upstream.name(), Some(rules_key("corp")));
        assert!(upstream.stands(100, None));
        assert!(
            upstream.stands(201, Some(200)),
            "vouched for after the narrowing"
        );
        assert!(
            !upstream.stands(200, Some(200)),
            "the very second counts as before"
        );
        let malformed = Admission::of(&identity(IdentitySource::Upstream, "no-provider"));
        assert!(malformed.name().is_none());
        assert!(!malformed.stands(100, None));
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
