//! The authorization-code grant, both halves: issuing a code when the user's side of
//! `/authorize` is done (OAuth 2.1 4.1.2), and redeeming it at the token endpoint
//! (4.1.3). A code is redeemed once, by the client it was issued to, with the redirect
//! URI of its request and the PKCE verifier of its challenge. A replayed code revokes
//! what its first redemption issued.

use super::token_set::{self, NewRefresh, Refresh, UserGrant};
use super::{Granted, TokenRequest};
use crate::config::file::GrantType;
use crate::crypto::{random_id, random_secret, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::with_params;
use crate::identity;
use crate::model::Identity;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::{standing, target};
use crate::protocol::pkce;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{CodeGrant, IssuedIds, Origin, Redeemed};

/// Issues a code for `request`, approved by `identity` who logged in at `auth_time`
/// in the session `origin` names, and returns the client's redirect URI carrying it
/// with `state` and `iss`.
pub(crate) async fn issue_code(
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
    identity: &Identity,
    auth_time: u64,
    origin: Origin,
) -> Result<String, OAuthError> {
    let code = random_secret().map_err(OAuthError::server)?;
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request
            .redirect_uri_given
            .then(|| request.redirect_uri.clone()),
        code_challenge: request.code_challenge.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        identity: identity.clone(),
        auth_time,
        issued: None,
        resources: request.resources.clone(),
        origin,
        dpop_jkt: request.dpop_jkt.clone(),
    };
    state
        .store
        .put_code(sha256(code.as_bytes()), grant, code_ttl(registry, request))
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &registry.issuer));
    Ok(with_params(&request.redirect_uri, &params))
}

/// How long a code for `request` lives: `[tokens] authorization_code_ttl`, at most
/// 60 s for a FAPI 2.0 client (FAPI 2.0 5.3.2.1).
fn code_ttl(registry: &Registry, request: &AuthRequest) -> std::time::Duration {
    let ttl = registry.tokens.authorization_code_ttl;
    match registry.client(&request.client_id) {
        Some(c) if c.protections.fapi2 => ttl.min(std::time::Duration::from_secs(60)),
        _ => ttl,
    }
}

/// Redeems a code at the token endpoint.
pub(crate) async fn exchange(request: &TokenRequest<'_>) -> Result<Granted, OAuthError> {
    let TokenRequest { client, form, .. } = *request;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("PKCE is required: code_verifier is missing"))?;

    let requested = target::admitted(form, client)?;
    let peeked = peek(request, code).await?;
    if let Some(grant) = &peeked {
        check_target(request, grant, &requested)?;
    }
    let issued = issued_ids(request)?;
    let first = match &peeked {
        Some(grant) => first_refresh(request, grant, verifier, &requested, &issued)?,
        None => None,
    };
    let stored = first.as_ref().map(|f| f.token.clone());
    // The redemption (storing the refresh token it starts) and the standing of the
    // peeked grant's lineage are independent: asked at once, they are one round trip
    // to a shared store, not three.
    let (grant, read) = match &peeked {
        Some(peeked) => {
            let redeemed = redeem(request, code, issued.clone(), first);
            let (redeemed, ended) = tokio::join!(redeemed, ended(request, peeked));
            (redeemed?, Some((peeked, ended?)))
        }
        None => (redeem(request, code, issued.clone(), None).await?, None),
    };
    if stored.is_some() && !peeked.as_ref().is_some_and(|p| same_grant(p, &grant)) {
        return Err(OAuthError::server("a code changed while it was redeemed"));
    }
    check_redemption(request, &grant, verifier)?;
    let user = still_standing(request, &grant, read).await?;
    let refresh = stored.map_or(Refresh::New, Refresh::Stored);
    let tokens = user_grant(&grant, &user, &requested, &issued, refresh);
    let response = token_set::issue(request, tokens).await?;
    Ok(Granted {
        response,
        event: "token_issued",
        user_id: Some(user.subject),
    })
}

/// The tokens `grant` gives `user` (as the config has them now) for this request.
fn user_grant<'a>(
    grant: &'a CodeGrant,
    user: &'a Identity,
    requested: &'a [String],
    issued: &IssuedIds,
    refresh: Refresh,
) -> UserGrant<'a> {
    UserGrant {
        identity: user,
        scopes: &grant.scopes,
        refresh_scopes: &grant.scopes,
        resources: &grant.resources,
        requested,
        auth_time: grant.auth_time,
        nonce: grant.nonce.as_deref(),
        jti: issued.access_jti.clone(),
        family: issued.refresh_family.clone(),
        origin: &grant.origin,
        outlives_session: false,
        refresh,
    }
}

/// The ids of the tokens this redemption will issue, chosen before the code is used
/// so that a replay can revoke them.
fn issued_ids(request: &TokenRequest<'_>) -> Result<IssuedIds, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        ..
    } = *request;
    Ok(IssuedIds {
        access_jti: random_id().map_err(OAuthError::server)?,
        access_exp: state.clock.now() + target::longest_access(registry, client).as_secs(),
        refresh_family: if client.allows_grant(GrantType::RefreshToken) {
            Some(random_id().map_err(OAuthError::server)?)
        } else {
            None
        },
    })
}

/// The refresh token the code's first use stores with it: when the client gets one,
/// and the peeked `grant` passes the checks the redeemed one will face, so a wrong
/// verifier or another client's code never stores one. (A session that ended, which
/// is read with the redemption, leaves the stored token unused: nobody has its secret.)
fn first_refresh(
    request: &TokenRequest<'_>,
    grant: &CodeGrant,
    verifier: &str,
    requested: &[String],
    issued: &IssuedIds,
) -> Result<Option<NewRefresh>, OAuthError> {
    let Some(family) = &issued.refresh_family else {
        return Ok(None);
    };
    if check_redemption(request, grant, verifier).is_err() {
        return Ok(None);
    }
    let Some(user) = identity::current(request.registry, &grant.identity) else {
        return Ok(None);
    };
    let tokens = user_grant(grant, &user, requested, issued, Refresh::New);
    token_set::new_refresh(request, &tokens, family).map(Some)
}

/// Uses the code, once, recording the ids of the tokens this redemption will issue
/// and storing `first`, the refresh token it starts, in the same step; a replayed
/// code revokes what its first redemption issued.
async fn redeem(
    request: &TokenRequest<'_>,
    code: &str,
    issued: IssuedIds,
    first: Option<NewRefresh>,
) -> Result<CodeGrant, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        remote,
        ..
    } = *request;
    let hash = sha256(code.as_bytes());
    let redeemed = match first {
        Some(f) => {
            state
                .store
                .redeem_code_with_refresh(hash, issued, f.key, f.record, f.lifetime)
                .await?
        }
        None => state.store.redeem_code(hash, issued).await?,
    };
    match redeemed {
        Redeemed::Fresh(grant) => Ok(grant),
        Redeemed::Unknown => Err(OAuthError::invalid_grant(
            "the code is invalid or has expired",
        )),
        Redeemed::Replayed(grant) => {
            revoke_first_use(state, registry, &grant).await?;
            tracing::warn!(event = "code_replayed", remote = %remote, client_id = %client.id, user_id = %grant.identity.subject);
            Err(OAuthError::invalid_grant(
                "the code was already used; the tokens it gave are revoked",
            ))
        }
    }
}

/// The redeemed code was issued to this client, for this redirect URI (OAuth 2.1
/// 4.1.3), with the challenge of this PKCE verifier.
fn check_redemption(
    request: &TokenRequest<'_>,
    grant: &CodeGrant,
    verifier: &str,
) -> Result<(), OAuthError> {
    let client = request.client;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    let redirect_ok = match (&grant.redirect_uri, request.form.get("redirect_uri")) {
        (Some(expected), Some(given)) => expected == given,
        (Some(_), None) => false,
        (None, Some(given)) => matches!(client.redirect_uris.as_slice(), [only] if only == given),
        (None, None) => true,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce::verify(verifier, &grant.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// The user the code was issued to, as the config has them now; refused when gone or
/// when the session the code was issued in has ended since. `read`: a grant of the
/// same code whose standing was read already, and what was read.
async fn still_standing(
    request: &TokenRequest<'_>,
    grant: &CodeGrant,
    read: Option<(&CodeGrant, bool)>,
) -> Result<Identity, OAuthError> {
    let user = identity::current(request.registry, &grant.identity)
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let has_ended = match read {
        Some((peeked, has_ended)) if same_grant(peeked, grant) => has_ended,
        _ => ended(request, grant).await?,
    };
    if has_ended {
        return Err(OAuthError::invalid_grant(
            "the session the code was issued in has ended",
        ));
    }
    Ok(user)
}

/// Whether the session `grant` was issued in (its user as the config has them now,
/// this client, its `sid`) has ended since it began; `false` for a user who is gone,
/// whom [`still_standing`] refuses anyway.
async fn ended(request: &TokenRequest<'_>, grant: &CodeGrant) -> Result<bool, OAuthError> {
    let Some(user) = identity::current(request.registry, &grant.identity) else {
        return Ok(false);
    };
    let lineage = standing::Lineage {
        user: Some(&user.subject),
        client: Some(&request.client.id),
        sid: grant.origin.sid.as_deref(),
    };
    let since = grant.origin.since;
    Ok(standing::ended(request.state, request.registry, &lineage, since).await?)
}

/// True when two reads of a code agree on all its tokens stand on: client, user,
/// session, scopes, resources and the time of the login.
fn same_grant(a: &CodeGrant, b: &CodeGrant) -> bool {
    a.client_id == b.client_id
        && a.identity == b.identity
        && a.origin == b.origin
        && a.scopes == b.scopes
        && a.resources == b.resources
        && a.auth_time == b.auth_time
}

/// The code's grant before it is used, when it is unused and this client's: what the
/// checks that must leave the code good look at.
async fn peek(request: &TokenRequest<'_>, code: &str) -> Result<Option<CodeGrant>, OAuthError> {
    let peeked = request
        .state
        .store
        .peek_code(sha256(code.as_bytes()))
        .await?;
    Ok(match peeked {
        Redeemed::Fresh(grant) if grant.client_id == request.client.id => Some(grant),
        _ => None,
    })
}

/// Refuses, before the code is used, a token request for resources the code did not
/// authorize (RFC 8707 2.2): `invalid_target` leaves the code good for a correct one;
/// and one without a proof by the DPoP key the code is bound to (RFC 9449 10), which
/// leaves it good for the client that holds the key.
fn check_target(
    request: &TokenRequest<'_>,
    grant: &CodeGrant,
    requested: &[String],
) -> Result<(), OAuthError> {
    let TokenRequest {
        registry, client, ..
    } = *request;
    target::for_token(registry, client, &grant.resources, requested, &grant.scopes)?;
    if grant.dpop_jkt.is_some() && grant.dpop_jkt != request.dpop_jkt {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the code is bound to a DPoP key: send a proof by that key",
        ));
    }
    Ok(())
}

/// Revokes the access token and refresh family of a code's first redemption.
async fn revoke_first_use(
    state: &AppState,
    registry: &Registry,
    grant: &CodeGrant,
) -> Result<(), OAuthError> {
    let Some(issued) = &grant.issued else {
        return Ok(());
    };
    standing::deny_access(state, &issued.access_jti, issued.access_exp).await?;
    if let Some(family) = &issued.refresh_family {
        standing::revoke_family(state, registry, family).await?;
    }
    Ok(())
}
