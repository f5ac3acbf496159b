//! Issuing a user's tokens, shared by the authorization-code and refresh-token grants:
//! an access token, an ID token when `openid` was granted, and a refresh token when the
//! client has the `refresh_token` grant (public clients too: OAuth 2.1 4.3.1 allows it
//! with rotation and reuse detection, which gatehouse always does).

use super::rotation;
use super::{TokenRequest, TokenResponse};
use crate::crypto::{random_secret, sha256};
use crate::error::OAuthError;
use crate::jwt::access::{self, AccessToken, Issued};
use crate::jwt::claims;
use crate::jwt::id_token::{self, IdTokenInput};
use crate::model::{Identity, IdentitySource};
use crate::oauth::target::{self, Target};
use crate::store::{Key, Origin, RefreshGrant};
use std::time::Duration;

/// What the tokens are for.
pub(crate) struct UserGrant<'a> {
    pub(crate) identity: &'a Identity,
    /// Scopes of the ID token, and of the access token once narrowed to its target.
    pub(crate) scopes: &'a [String],
    /// Scopes the refresh token keeps (RFC 6749 6: the original grant's).
    pub(crate) refresh_scopes: &'a [String],
    /// The resources the grant's request named (RFC 8707; none: the client's defaults),
    /// which the refresh token keeps.
    pub(crate) resources: &'a [String],
    /// The resources this token request asks for: a subset of those authorized.
    pub(crate) requested: &'a [String],
    pub(crate) auth_time: u64,
    pub(crate) nonce: Option<&'a str>,
    /// The access token's id (chosen before a code is redeemed, so a replay can deny it).
    pub(crate) jti: String,
    /// The refresh token family to issue into; `None` issues no refresh token.
    pub(crate) family: Option<String>,
    /// The session the grant began in, which the refresh token keeps.
    pub(crate) origin: &'a Origin,
    /// True when the tokens outlive that session (a refresh of an `offline_access`
    /// family): the access token then carries no `sid`, so ending the session leaves
    /// it standing.
    pub(crate) outlives_session: bool,
    /// What becomes of refresh tokens in the family.
    pub(crate) refresh: Refresh,
}

/// The refresh token a grant issues (into its `family`).
pub(crate) enum Refresh {
    /// A new one (a code or a device code redeemed).
    New,
    /// One the store keeps already (its secret): stored with the code's redemption, in
    /// the same step (see [`new_refresh`]).
    Stored(String),
    /// One replacing the token (by its key) the request used: the old one is used up in
    /// the same store step that keeps the new one, so of two requests racing with one
    /// token only one gets a successor.
    Replaces(Key),
    /// None: the token used is kept rather than rotated (a FAPI 2.0 client, FAPI 2.0
    /// 5.3.2.1).
    Kept,
}

impl TokenResponse {
    /// This response as a DPoP-bound token's (RFC 9449 5): `token_type` `DPoP`.
    pub(crate) fn bound_if(self, jkt: Option<&str>) -> Self {
        match jkt {
            Some(_) => Self {
                token_type: "DPoP",
                ..self
            },
            None => self,
        }
    }

    /// A response carrying `access` alone, for `scope`.
    pub(crate) fn bearer(access: Issued, scope: String) -> Self {
        Self {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope,
            id_token: None,
            refresh_token: None,
        }
    }
}

/// Whose access token: the client's own (client credentials), or a user's, who logged
/// in at `auth_time`, with the refresh family issued beside it.
pub(crate) enum Holder<'a> {
    /// The client itself: `sub` is its id, and there is no `auth_time`.
    Client,
    /// A user.
    User {
        /// The user's `sub`.
        subject: &'a str,
        /// When the user logged in (Unix seconds).
        auth_time: u64,
        /// The refresh family issued with the token, if any.
        family: Option<&'a str>,
        /// The login session whose end ends the token, if any.
        sid: Option<&'a str>,
        /// The claims of a user the config does not describe.
        profile: Option<&'a serde_json::Map<String, serde_json::Value>>,
    },
}

/// Mints an access token from the request's client (authenticated with its
/// credential, bound to its DPoP key if it sent a proof), for `holder` and `target`
/// (its audience, scopes and lifetime).
pub(crate) fn access_token(
    request: &TokenRequest<'_>,
    holder: Holder<'_>,
    target: &Target,
    jti: String,
    now: u64,
) -> Result<Issued, OAuthError> {
    let TokenRequest {
        registry,
        client,
        credential,
        ..
    } = *request;
    let (sub, auth_time, family, sid, profile) = match holder {
        Holder::Client => (client.id.as_str(), None, None, None, None),
        Holder::User {
            subject,
            auth_time,
            family,
            sid,
            profile,
        } => (subject, Some(auth_time), family, sid, profile),
    };
    let scope = target.scopes.join(" ");
    let token = AccessToken {
        sub,
        client_id: &client.id,
        audience: &target.audience,
        scope: &scope,
        jti,
        auth_time,
        family,
        credential,
        lifetime: target.lifetime,
        sid,
        profile,
        jkt: request.dpop_jkt.as_deref(),
    };
    access::issue(&registry.jwt(), token, now).map_err(OAuthError::server)
}

/// A refresh token not handed out yet: its secret, and the record the store keeps
/// under the secret's digest `key` for `lifetime`.
pub(crate) struct NewRefresh {
    pub(crate) token: String,
    pub(crate) key: Key,
    pub(crate) record: RefreshGrant,
    pub(crate) lifetime: Duration,
}

/// A new refresh token of `grant`, in `family`, for the request's client: what a
/// token of it stands on (user, scopes, resources, session, the client's credential,
/// a public client's DPoP key) and how long it lives.
pub(crate) fn new_refresh(
    request: &TokenRequest<'_>,
    grant: &UserGrant<'_>,
    family: &str,
) -> Result<NewRefresh, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        credential,
        ..
    } = *request;
    let now = state.clock.now();
    let token = random_secret().map_err(OAuthError::server)?;
    let lifetime = target::refresh_lifetime(registry, client);
    let record = RefreshGrant {
        family: family.to_owned(),
        client_id: client.id.clone(),
        source: grant.identity.source,
        subject: grant.identity.subject.clone(),
        scopes: grant.refresh_scopes.to_vec(),
        auth_time: grant.auth_time,
        issued_at: now,
        expires_at: now + lifetime.as_secs(),
        credential,
        federated: grant
            .identity
            .upstream
            .is_some()
            .then(|| Box::new(grant.identity.clone())),
        resources: grant.resources.to_vec(),
        origin: grant.origin.clone(),
        // A confidential client's token is bound to its authentication.
        dpop_jkt: request
            .dpop_jkt
            .as_deref()
            .filter(|_| client.is_public())
            .map(str::to_owned),
    };
    Ok(NewRefresh {
        key: sha256(token.as_bytes()),
        token,
        record,
        lifetime,
    })
}

/// Mints and stores the tokens of `grant` for the request's client.
pub(crate) async fn issue(
    request: &TokenRequest<'_>,
    mut grant: UserGrant<'_>,
) -> Result<TokenResponse, OAuthError> {
    let TokenRequest {
        state,
        registry,
        client,
        ..
    } = *request;
    let now = state.clock.now();
    let target = target::for_token(
        registry,
        client,
        grant.resources,
        grant.requested,
        grant.scopes,
    )?;
    let scope = target.scopes.join(" ");
    // A user a provider's rules let in has no entry to read the claims from again:
    // the access token carries the ones the ID token states.
    let profile = (grant.identity.source == IdentitySource::Upstream)
        .then(|| claims::for_scopes(grant.identity, &target.scopes));
    let holder = Holder::User {
        subject: &grant.identity.subject,
        auth_time: grant.auth_time,
        family: grant.family.as_deref(),
        sid: grant
            .origin
            .sid
            .as_deref()
            .filter(|_| !grant.outlives_session),
        profile: profile.as_ref(),
    };
    let jkt = request.dpop_jkt.as_deref();
    let jti = std::mem::take(&mut grant.jti);
    let access = access_token(request, holder, &target, jti, now)?;
    let id_token = if grant.scopes.iter().any(|s| s == "openid") {
        let input = IdTokenInput {
            client_id: &client.id,
            user: grant.identity,
            scopes: grant.scopes,
            nonce: grant.nonce,
            auth_time: grant.auth_time,
            access_token: &access.token,
            sid: grant.origin.sid.as_deref(),
            amr: &grant.origin.amr,
        };
        Some(id_token::issue(&registry.jwt(), &input, now).map_err(OAuthError::server)?)
    } else {
        None
    };
    let refresh = std::mem::replace(&mut grant.refresh, Refresh::Kept);
    let refresh_token = match (&grant.family, refresh) {
        (None, _) | (_, Refresh::Kept) => None,
        (Some(_), Refresh::Stored(token)) => Some(token),
        (Some(family), Refresh::New) => {
            let new = new_refresh(request, &grant, family)?;
            let stored = state.store.put_refresh(new.key, new.record, new.lifetime);
            stored.await?;
            Some(new.token)
        }
        (Some(family), Refresh::Replaces(old)) => {
            let new = new_refresh(request, &grant, family)?;
            let used = state
                .store
                .rotate_refresh(old, new.key, new.record, new.lifetime);
            rotation::fresh(request, used.await?).await?;
            Some(new.token)
        }
    };
    Ok(TokenResponse {
        id_token,
        refresh_token,
        ..TokenResponse::bearer(access, scope)
    }
    .bound_if(jkt))
}
