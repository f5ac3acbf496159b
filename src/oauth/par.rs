//! Pushed authorization requests (RFC 9126): `POST /par` authenticates the client as
//! the token endpoint does, checks every authorization parameter as `/authorize`
//! does (errors as JSON), and keeps the request for [`EXPIRES_IN`] under a random
//! `request_uri`, counted against the same cap as pending logins. `/authorize` with
//! `client_id` and `request_uri` takes the pushed request ([`recall`]), only for that
//! client, ignoring every other parameter (RFC 9126 4); a reload of the login page may
//! use it again, and it is used up when its code is issued ([`use_up`]): once, across
//! replicas.

use super::authorize_request::{AuthRequest, Rejection, validate};
use super::{client_auth, client_document, cors, dpop};
use crate::crypto::{hex, random_secret, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::http::no_store;
use crate::model::Client;
use crate::registry::Registry;
use crate::state::AppState;
use crate::store::{Key, StoreError};
use crate::throttle::{self, Cap, Full};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The prefix of every `request_uri` gatehouse hands out (RFC 9126 2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request may be used at `/authorize`.
pub(crate) const EXPIRES_IN: Duration = Duration::from_secs(60);

/// A pushed request as kept in the store.
#[derive(Serialize, Deserialize)]
struct Pushed {
    request: AuthRequest,
    /// The network it was pushed from, whose count in the cap it is.
    address: String,
}

/// The handle of a pushed request: the hex SHA-256 of the random part of its
/// `request_uri` (the store never holds the value itself).
fn handle_of(id: &str) -> String {
    hex(&sha256(id.as_bytes()))
}

/// The store key of the pushed request `handle` names, apart from pending logins'.
fn store_key(handle: &str) -> Key {
    sha256(format!("par:{handle}").as_bytes())
}

/// The cap pushed requests count against: the pending logins' own.
fn cap(registry: &Registry) -> Cap {
    let limits = &registry.limits;
    Cap::new(
        "pending",
        limits.pending_per_address,
        limits.pending_total,
        registry.session.pending_ttl,
    )
}

/// True when `client` may use `/authorize` only with a pushed request.
pub(crate) fn required(registry: &Registry, client: &Client) -> bool {
    registry.server.require_par || client.protections.require_par
}

/// `POST /par`.
pub(crate) async fn push(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    if form.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri may not be pushed (RFC 9126 2.1)",
        ));
    }
    let credentials = client_auth::presented(req.headers(), &form)?;
    let document = client_document::resolve(&state, &registry, credentials.client_id()).await?;
    let authenticated =
        client_auth::authenticate(&state, &registry, document.as_ref(), ip.0, &credentials).await?;
    let client = authenticated.client;
    cors::refuse_foreign_origin(&req, &registry, client)?;
    if form.get("client_id") != Some(client.id.as_str()) {
        return Err(OAuthError::invalid_request(
            "client_id must name the authenticated client",
        ));
    }
    if client.protections.fapi2 && form.get("redirect_uri").is_none() {
        return Err(OAuthError::invalid_request(
            "a FAPI 2.0 client's pushed request names its redirect_uri",
        ));
    }
    let mut request = match validate(&registry, document.as_ref(), &form) {
        Ok(request) => request,
        Err(Rejection::Page(message)) => return Err(OAuthError::invalid_request(message)),
        Err(Rejection::Redirect { error, .. }) => return Err(error),
    };
    // A proof sent with the pushed request binds its code to that key (RFC 9449 10.1).
    if let Some(proof) = dpop::at_endpoint(&req, &state, &registry, client, "/par").await? {
        if request.dpop_jkt.as_ref().is_some_and(|j| *j != proof.jkt) {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "dpop_jkt does not match the proof's key",
            ));
        }
        request.dpop_jkt = Some(proof.jkt);
    }
    let request_uri = keep(&state, &registry, request, ip).await?;
    let mut answer = HttpResponse::Created();
    dpop::fresh_nonce(no_store(&mut answer), &req, &state, &registry);
    Ok(answer.json(json!({
        "request_uri": request_uri,
        "expires_in": EXPIRES_IN.as_secs(),
    })))
}

/// Keeps `request` within the cap and returns its `request_uri`.
async fn keep(
    state: &AppState,
    registry: &Registry,
    mut request: AuthRequest,
    ip: ClientIp,
) -> Result<String, OAuthError> {
    let address = throttle::network(&registry.limits, ip.0).to_string();
    match cap(registry).admit(state.store.as_ref(), &address).await? {
        Ok(()) => {}
        Err(full) => {
            let (limit, counted, wait) = match full {
                Full::Address(left) => ("pending_per_address", "pending", left.as_secs().max(1)),
                Full::Total => ("pending_total", "pending_total", 60),
            };
            tracing::warn!(event = "rate_limited", limit, remote = %ip);
            metrics::counter!("gatehouse_rate_limited_total", "limit" => counted).increment(1);
            return Err(OAuthError {
                retry_after: Some(wait),
                ..OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many authorization requests are waiting; try again later",
                )
            });
        }
    }
    let id = random_secret().map_err(OAuthError::server)?;
    let handle = handle_of(&id);
    request.pushed = Some(handle.clone());
    let pushed = Pushed { request, address };
    let json = serde_json::to_string(&pushed).map_err(OAuthError::server)?;
    state
        .store
        .put_pending(store_key(&handle), json, EXPIRES_IN)
        .await?;
    Ok(format!("{REQUEST_URI_PREFIX}{id}"))
}

/// Why a `request_uri` at `/authorize` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Recall {
    /// Unknown, expired, used, or pushed by another client: an error page
    /// (`invalid_request_uri`).
    #[error("{0}")]
    Refused(&'static str),
    /// The store failed.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// The pushed request `request_uri` names, for `client_id` (RFC 9126 4): the other
/// parameters of the authorization request are ignored.
pub(crate) async fn recall(
    state: &AppState,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<AuthRequest, Recall> {
    let unknown = Recall::Refused("The request_uri is unknown, expired or used already.");
    let Some(id) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return Err(unknown);
    };
    let handle = handle_of(id);
    let Some(json) = state.store.get_pending(store_key(&handle)).await? else {
        return Err(unknown);
    };
    let pushed: Pushed = serde_json::from_str(&json).map_err(|_| unknown)?;
    if client_id != Some(pushed.request.client_id.as_str()) {
        return Err(Recall::Refused(
            "The request_uri was pushed by another application.",
        ));
    }
    Ok(pushed.request)
}

/// Uses up the pushed request `request` came from as its code is issued: true for
/// the first use (across replicas: `Store::remember_once`), false when a code was
/// issued for it already. A request that was not pushed is always true.
pub(crate) async fn use_up(
    state: &AppState,
    registry: &Registry,
    request: &AuthRequest,
) -> Result<bool, StoreError> {
    let Some(handle) = &request.pushed else {
        return Ok(true);
    };
    // Remembered for as long as a login started from it may go on.
    let until = state.clock.now() + registry.session.pending_ttl.as_secs() + EXPIRES_IN.as_secs();
    if !state
        .store
        .remember_once(&format!("par-used:{handle}"), until)
        .await?
    {
        return Ok(false);
    }
    let key = store_key(handle);
    if let Some(json) = state.store.get_pending(key).await?
        && state.store.delete_pending(key).await?
        && let Ok(pushed) = serde_json::from_str::<Pushed>(&json)
    {
        cap(registry)
            .release(state.store.as_ref(), &pushed.address)
            .await?;
    }
    Ok(true)
}
