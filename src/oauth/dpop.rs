//! DPoP (RFC 9449) at gatehouse's endpoints: the `DPoP` header read (one at most),
//! the proof checked by the pure `protocol::dpop` rules against the endpoint's URL
//! under the issuer, its `jti` used once in the store across replicas
//! (`Store::remember_once`, for as long as the proof is young enough to be accepted),
//! and, with `[server] dpop_nonce`, a server-provided nonce: the HMAC of a time slot
//! under the key the replicas share, so every replica makes and accepts the same
//! nonces without storing them.

use crate::crypto::{hex, sha256};
use crate::error::{ErrorCode, OAuthError};
use crate::model::Client;
use crate::protocol::dpop::{self, Expected, FAPI2_ALGS, ProofError};
use crate::protocol::jwk::Alg;
use crate::registry::{Registry, endpoint};
use crate::state::AppState;
use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponseBuilder};

/// The algorithms a proof may use; a FAPI 2.0 client's are `protocol::dpop::FAPI2_ALGS`.
pub(crate) const ALGS: [&str; 6] = Alg::NAMES;

/// How long one nonce slot lasts, in seconds; the slot before is accepted too.
pub(crate) const NONCE_PERIOD: u64 = 300;

/// The `DPoP` request header, named once: a name given as text is parsed on every
/// lookup, and every token request looks.
const DPOP: HeaderName = HeaderName::from_static("dpop");

/// A proof that passed: the key tokens are bound to.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: String,
}

/// The algorithms `client`'s proofs may use.
pub(crate) fn algs_for(client: Option<&Client>) -> &'static [&'static str] {
    match client {
        Some(c) if c.protections.fapi2 => &FAPI2_ALGS,
        _ => &ALGS,
    }
}

/// The nonce of the slot `now` falls in.
fn nonce_at(state: &AppState, now: u64) -> String {
    let slot = now / NONCE_PERIOD;
    state
        .form_key()
        .1
        .token(&[b"dpop-nonce".as_slice(), slot.to_be_bytes().as_slice()])
}

/// The nonce a client should use now (sent in `DPoP-Nonce`), when nonces are on.
pub(crate) fn current_nonce(state: &AppState, registry: &Registry) -> Option<String> {
    registry
        .server
        .dpop_nonce
        .then(|| nonce_at(state, state.clock.now()))
}

/// With `[server] dpop_nonce`, the success answer to a request that carried a proof
/// gives the nonce of the slot now in a `DPoP-Nonce` header (RFC 9449 8.2 and 9 allow
/// it in any answer): a client moves to it while its own is still accepted, instead of
/// meeting `use_dpop_nonce` when its slot has passed.
pub(crate) fn fresh_nonce<'b>(
    builder: &'b mut HttpResponseBuilder,
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
) -> &'b mut HttpResponseBuilder {
    if req.headers().contains_key(DPOP)
        && let Some(nonce) = current_nonce(state, registry)
    {
        builder.insert_header(("DPoP-Nonce", nonce));
    }
    builder
}

/// True when `given` is the nonce of this slot or the one before (constant time).
fn nonce_ok(state: &AppState, now: u64, given: &str) -> bool {
    let key = state.form_key();
    [now / NONCE_PERIOD, (now / NONCE_PERIOD).saturating_sub(1)]
        .iter()
        .any(|slot| {
            key.1.verify_token(
                &[b"dpop-nonce".as_slice(), slot.to_be_bytes().as_slice()],
                given,
            )
        })
}

/// The request's `DPoP` header: `Ok(None)` without one; two are `invalid_dpop_proof`.
fn header(req: &HttpRequest) -> Result<Option<&str>, OAuthError> {
    let mut values = req.headers().get_all(DPOP);
    let first = values.next();
    if values.next().is_some() {
        return Err(refused("more than one DPoP header"));
    }
    match first {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| refused("the DPoP header is not text")),
    }
}

fn refused(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, why)
}

/// The proof of a request to `path` (`/token`, `/par`) by `client`, if it sends one.
pub(crate) async fn at_endpoint(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    client: &Client,
    path: &str,
) -> Result<Option<Proven>, OAuthError> {
    check(req, state, registry, path, None, algs_for(Some(client))).await
}

/// The proof of a request to the resource `path` (`/userinfo`) carrying
/// `access_token` (its `ath` must match).
pub(crate) async fn at_resource(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    path: &str,
    access_token: &str,
) -> Result<Option<Proven>, OAuthError> {
    check(req, state, registry, path, Some(access_token), &ALGS).await
}

async fn check(
    req: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    path: &str,
    access_token: Option<&str>,
    algs: &[&str],
) -> Result<Option<Proven>, OAuthError> {
    let Some(proof) = header(req)? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let htu = endpoint(&registry.issuer, path);
    let good = |n: &str| nonce_ok(state, now, n);
    let expected = Expected {
        htm: req.method().as_str(),
        htu: &htu,
        algs,
        now,
        access_token,
        nonce: registry
            .server
            .dpop_nonce
            .then_some(&good as &dyn Fn(&str) -> bool),
    };
    let proof = match dpop::check(proof, &expected) {
        Ok(proof) => proof,
        Err(ProofError::Nonce) => {
            return Err(OAuthError {
                dpop_nonce: Some(nonce_at(state, now)),
                ..OAuthError::new(ErrorCode::UseDpopNonce, ProofError::Nonce.to_string())
            });
        }
        Err(e) => return Err(refused(e.to_string())),
    };
    let once = format!(
        "dpop-jti:{}",
        hex(&sha256(format!("{} {}", proof.jkt, proof.jti).as_bytes()))
    );
    let until = proof.iat.max(now) + dpop::MAX_AGE + dpop::LEEWAY;
    if !state.store.remember_once(&once, until).await? {
        return Err(refused("the DPoP proof was used already"));
    }
    Ok(Some(Proven { jkt: proof.jkt }))
}
