//! The authorization-code grant, both halves: issuing a code when the user's side of
//! `/authorize` is done (OAuth 2.1 4.1.2), and redeeming it at the token endpoint
//! (4.1.3). A code is redeemed once, by the client it was issued to, with the redirect
//! URI of its request and the PKCE verifier of its challenge. A replayed code revokes
//! what its first redemption issued.

use super::token_set::{self, Refresh, UserGrant};
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
    // The redemption and the standing of the peeked grant's lineage are independent:
    // asked at once, they are one round trip to a shared store, not two.
    let ((grant, issued), read) = match &peeked {
        Some(peeked) => {
            let (redeemed, ended) = tokio::join!(redeem(request, code), ended(request, peeked));
            (redeemed?, Some((peeked, ended?)))
        }
        None => (redeem(request, code).await?, None),
    };
    check_redemption(request, &grant, verifier)?;
    let user = still_standing(request, &grant, read).await?;
    let response = token_set::issue(
        request,
        UserGrant {
            identity: &user,
            scopes: &grant.scopes,
            refresh_scopes: &grant.scopes,
            resources: &grant.resources,
            requested: &requested,
            auth_time: grant.auth_time,
            nonce: grant.nonce.as_deref(),
            jti: issued.access_jti,
            family: issued.refresh_family,
            origin: &grant.origin,
            outlives_session: false,
            refresh: Refresh::New,
        },
    )
    .await?;
    Ok(Granted {
        response,
        event: "token_issued",
        user_id: Some(user.subject),
    })
}

/// Uses the code, once, noting the ids of the tokens this redemption will issue; a
/// replayed code revokes what its first redemption issued.
async fn redeem(
    request: &TokenRequest<'_>,
    code: &str,
) -> Result<(CodeGrant, IssuedIds), OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        remote,
        ..
    } = *request;
    let issued = IssuedIds {
        access_jti: random_id().map_err(OAuthError::server)?,
        access_exp: state.clock.now() + target::longest_access(registry, client).as_secs(),
        refresh_family: if client.allows_grant(GrantType::RefreshToken) {
            Some(random_id().map_err(OAuthError::server)?)
        } else {
            None
        },
    };
    match state
        .store
        .redeem_code(sha256(code.as_bytes()), issued.clone())
        .await?
    {
        Redeemed::Fresh(grant) => Ok((grant, issued)),
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
        Some((peeked, has_ended)) if same_lineage(peeked, grant) => has_ended,
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

/// True when two grants stand or fall together: the same user, session and start.
fn same_lineage(a: &CodeGrant, b: &CodeGrant) -> bool {
    a.identity.subject == b.identity.subject
        && a.origin.sid == b.origin.sid
        && a.origin.since == b.origin.since
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
