//! The device authorization grant (RFC 8628), the protocol half: `POST
//! /device_authorization` issues a device code (256 random bits) and a user code (see
//! `protocol::user_code`), both stored hashed; the user's side (`web::device`) finds a
//! code by what the user typed and records their decision here; the client's polls are
//! `grants::device_code`. How many codes wait is bounded per address and in all
//! (`[limits] pending_per_address`, `pending_total`, within `[tokens] device_code_ttl`).

use super::authorize_request::requested_scopes;
use super::{client_auth, cors, target};
use crate::config::file::GrantType;
use crate::crypto::{random_bytes, random_secret, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::client_ip::ClientIp;
use crate::http::form::Form;
use crate::http::no_store;
use crate::model::Identity;
use crate::protocol::user_code;
use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use crate::store::{DeviceDecision, DeviceGrant, Key};
use crate::throttle::{self, Cap, Full};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Seconds a client waits between polls at first (RFC 8628 3.2 `interval`).
pub(crate) const INTERVAL: u64 = 5;

/// Seconds the interval grows by at each poll too fast (RFC 8628 3.5 `slow_down`).
pub(crate) const SLOW_DOWN_STEP: u64 = 5;

/// How many times a colliding user code is drawn again before giving up.
const DRAWS: usize = 4;

/// The device authorization response (RFC 8628 3.2).
#[derive(Serialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// `POST /device_authorization`.
pub(crate) async fn authorize(
    req: HttpRequest,
    ip: ClientIp,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::posted(&req, &body)?;
    let registry = state.snapshot();
    let credentials = client_auth::presented(req.headers(), &form)?;
    let client = client_auth::authenticate(&state, &registry, None, ip.0, &credentials)
        .await?
        .client;
    cors::refuse_foreign_origin(&req, &registry, client)?;
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let scopes = requested_scopes(form.get("scope"), client)?;
    let resources = target::admitted(&form, client)?;
    admit(&state, &registry, &ip).await?;
    let ttl = registry.tokens.device_code_ttl;
    let now = state.clock.now();
    let device_code = random_secret().map_err(OAuthError::server)?;
    let grant = DeviceGrant {
        client_id: client.id.clone(),
        scopes: scopes.clone(),
        expires_at: now + ttl.as_secs(),
        interval: INTERVAL,
        last_poll: None,
        decision: DeviceDecision::Pending,
        resources,
    };
    // Kept twice as long as it is good for: a late poll hears `expired_token`.
    let kept_for = ttl.saturating_mul(2);
    let mut issued = None;
    for _ in 0..DRAWS {
        let code = draw_user_code()?;
        let stored = state
            .store
            .put_device(
                sha256(device_code.as_bytes()),
                sha256(code.as_bytes()),
                grant.clone(),
                kept_for,
            )
            .await?;
        if stored {
            issued = Some(code);
            break;
        }
    }
    let code = issued.ok_or_else(|| OAuthError::server("no free user code after 4 draws"))?;
    let shown = user_code::display(&code);
    let verification_uri = endpoint(&registry.issuer, "/device");
    let complete = url::Url::parse_with_params(&verification_uri, [("user_code", &shown)])
        .map_err(OAuthError::server)?;
    tracing::info!(event = "device_code_issued", remote = %ip, client_id = %client.id, scope = %scopes.join(" "));
    metrics::counter!("gatehouse_device_codes_total", "event" => "issued", "client_id" => client.id.clone()).increment(1);
    let answer = DeviceAuthorization {
        device_code,
        user_code: shown,
        verification_uri,
        verification_uri_complete: complete.to_string(),
        expires_in: ttl.as_secs(),
        interval: INTERVAL,
    };
    Ok(no_store(&mut HttpResponse::Ok()).json(answer))
}

/// Counts a new device code against the caps: 429 past the address's, 503
/// `temporarily_unavailable` past the total. Codes are counted for their lifetime (a
/// window of `device_code_ttl` from the first), not taken back when answered: what an
/// address may make the server store is bounded either way.
async fn admit(state: &AppState, registry: &Registry, ip: &ClientIp) -> Result<(), OAuthError> {
    let limits = &registry.limits;
    let cap = Cap::new(
        "device",
        limits.pending_per_address,
        limits.pending_total,
        registry.tokens.device_code_ttl,
    );
    let network = throttle::network(limits, ip.0).to_string();
    match cap.admit(state.store.as_ref(), &network).await? {
        Ok(()) => Ok(()),
        Err(Full::Address(left)) => {
            tracing::warn!(event = "rate_limited", limit = "device_per_address", remote = %ip);
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "device").increment(1);
            Err(OAuthError {
                retry_after: Some(left.as_secs().max(1)),
                ..OAuthError::new(
                    ErrorCode::SlowDown,
                    "too many device codes from this address are waiting; try again later",
                )
            })
        }
        Err(Full::Total) => {
            tracing::warn!(event = "rate_limited", limit = "device_total", remote = %ip);
            metrics::counter!("gatehouse_rate_limited_total", "limit" => "device_total")
                .increment(1);
            Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many device codes are waiting; try again later",
            ))
        }
    }
}

/// A fresh user code, canonical (no dash).
fn draw_user_code() -> Result<String, OAuthError> {
    loop {
        let bytes = random_bytes::<16>().map_err(OAuthError::server)?;
        if let Some(code) = user_code::from_random(&bytes) {
            return Ok(code);
        }
    }
}

/// A device code waiting for its user, found by the user code typed.
pub(crate) struct Waiting {
    /// The store key of the user code.
    pub(crate) key: Key,
    /// The user code as the user is shown it (`XXXX-XXXX`).
    pub(crate) shown: String,
    /// What it stands for.
    pub(crate) grant: DeviceGrant,
}

/// The device code waiting for the user code `typed` (any case, dash optional): `None`
/// when it is malformed, unknown, expired or already decided.
pub(crate) async fn waiting(state: &AppState, typed: &str) -> Result<Option<Waiting>, OAuthError> {
    let Some(code) = user_code::normalize(typed) else {
        return Ok(None);
    };
    let key = sha256(code.as_bytes());
    let now = state.clock.now();
    let found = state.store.device_by_user_code(key).await?;
    Ok(found
        .filter(|g| now < g.expires_at && matches!(g.decision, DeviceDecision::Pending))
        .map(|grant| Waiting {
            key,
            shown: user_code::display(&code),
            grant,
        }))
}

/// Records that `identity` (logged in at `auth_time`) approved, or (`None`) denied,
/// the device code behind `key`, logging and counting it. False when it was no longer
/// waiting (decided meanwhile, or expired).
pub(crate) async fn decide(
    state: &AppState,
    key: Key,
    identity: &Identity,
    auth_time: u64,
    approve: bool,
    remote: &ClientIp,
) -> Result<bool, OAuthError> {
    let decision = if approve {
        DeviceDecision::Approved {
            identity: identity.clone(),
            auth_time,
        }
    } else {
        DeviceDecision::Denied
    };
    let now = state.clock.now();
    let Some(grant) = state.store.decide_device(key, decision).await? else {
        return Ok(false);
    };
    if now >= grant.expires_at {
        return Ok(false);
    }
    let event = if approve {
        "device_approved"
    } else {
        "device_denied"
    };
    tracing::info!(event, remote = %remote, client_id = %grant.client_id, user_id = %identity.subject, scope = %grant.scopes.join(" "));
    let label = if approve { "approved" } else { "denied" };
    metrics::counter!("gatehouse_device_codes_total", "event" => label, "client_id" => grant.client_id.clone()).increment(1);
    Ok(true)
}
