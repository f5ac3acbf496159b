//! WebAuthn challenges: issued without storing anything, used once through the store.
//!
//! A challenge is `nonce (16) || expiry (8, Unix seconds) || HMAC (32)`, the HMAC under
//! the shared form key (`AppState::form_key`, as CSRF tokens) of the nonce, the expiry,
//! what the ceremony is for and what it is bound to (the pending request of a login;
//! the session and the user handle of an enrolment). Showing a page stores nothing, so
//! a stranger cannot fill the store with challenges; a challenge cannot be made up,
//! carried to another request or session, or used after it expires; and the first
//! ceremony that uses it marks its nonce in the store (`Store::remember_once`, atomic
//! across replicas) until it expires, so a replayed assertion is refused.

use crate::crypto::{RngError, random_bytes};
use crate::state::AppState;
use crate::store::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// How long a challenge can be answered: time to find and touch a security key.
pub(crate) const LIFETIME: u64 = 300;

const LEN: usize = 16 + 8 + 32;

/// What a challenge is for, and bound to.
pub(crate) enum Purpose<'a> {
    /// A passkey login for the pending request `id`.
    Login(&'a str),
    /// An enrolment in the session whose cookie hashes to `session`, with `user_handle`.
    Enrol {
        session: &'a str,
        user_handle: &'a [u8],
    },
    /// A passkey as `user_id`'s second factor for what `bound` names: a pending
    /// request's id, or a device grant's user code.
    SecondFactor { bound: &'a str, user_id: &'a str },
}

impl Purpose<'_> {
    fn parts(&self) -> [&[u8]; 3] {
        match self {
            Self::Login(id) => [b"login", id.as_bytes(), b""],
            Self::Enrol {
                session,
                user_handle,
            } => [b"enrol", session.as_bytes(), user_handle],
            Self::SecondFactor { bound, user_id } => {
                [b"second", bound.as_bytes(), user_id.as_bytes()]
            }
        }
    }
}

fn tag(state: &AppState, purpose: &Purpose<'_>, head: &[u8]) -> [u8; 32] {
    let [kind, bound, extra] = purpose.parts();
    let parts: [&[u8]; 5] = [b"gatehouse webauthn challenge v1", kind, bound, extra, head];
    state.form_key().1.tag(&parts)
}

/// A fresh challenge for `purpose`, base64url, good until `now + LIFETIME`.
pub(crate) fn issue(state: &AppState, purpose: &Purpose<'_>, now: u64) -> Result<String, RngError> {
    let mut raw = random_bytes::<16>()?.to_vec();
    raw.extend((now + LIFETIME).to_be_bytes());
    let mac = tag(state, purpose, &raw);
    raw.extend(mac);
    Ok(B64.encode(raw))
}

/// A challenge that checked out: its bytes (what the client data must carry), its
/// nonce and its expiry.
pub(crate) struct Checked {
    pub(crate) raw: Vec<u8>,
    nonce: String,
    expires: u64,
}

/// Why a challenge is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("the challenge is malformed, forged or for something else")]
    Invalid,
    #[error("the challenge expired")]
    Expired,
    #[error("the challenge was used already")]
    Used,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refused {
    /// A short name for the audit log.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Invalid => "challenge",
            Self::Expired => "challenge_expired",
            Self::Used => "replayed",
            Self::Store(_) => "store",
        }
    }
}

/// Checks a challenge a form sent back: made by us for `purpose`, not expired. Does not
/// use it ([`use_once`] does, after the ceremony verified).
pub(crate) fn check(
    state: &AppState,
    purpose: &Purpose<'_>,
    given: &str,
    now: u64,
) -> Result<Checked, Refused> {
    use subtle::ConstantTimeEq;
    let raw = B64.decode(given).map_err(|_| Refused::Invalid)?;
    if raw.len() != LEN {
        return Err(Refused::Invalid);
    }
    let (head, mac) = raw.split_at(24);
    if !bool::from(mac.ct_eq(&tag(state, purpose, head))) {
        return Err(Refused::Invalid);
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&head[16..24]);
    let expires = u64::from_be_bytes(expiry);
    if now >= expires {
        return Err(Refused::Expired);
    }
    let nonce = B64.encode(&head[..16]);
    Ok(Checked {
        raw,
        nonce,
        expires,
    })
}

/// Uses a checked challenge: `Ok` only for the first ceremony that does, on any
/// replica, while it lives.
pub(crate) async fn use_once(state: &AppState, checked: &Checked) -> Result<(), Refused> {
    let key = format!("webauthn:{}", checked.nonce);
    if state.store.remember_once(&key, checked.expires).await? {
        Ok(())
    } else {
        Err(Refused::Used)
    }
}
