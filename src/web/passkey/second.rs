//! A passkey as the second factor after a password: the second-factor page offers the
//! user's own passkeys (`allowCredentials` = their credential ids, so the browser asks
//! only for those) with a challenge bound to what the page continues (the pending
//! request, or the device grant's user code) and to the user; the answer must be an
//! assertion by one of that user's passkeys. User presence is required, user
//! verification is not: the password was the first factor, the key held is the second
//! (RFC 8176 `amr` `swk`, for the reason `passkey::login` gives).
//!
//! Counting and logging are `web::second_factor`'s, as for a TOTP code: this module
//! only says whether the assertion holds, and why not.

use super::assertion::{self, field};
use super::challenge::{self, Purpose};
use crate::crypto::RngError;
use crate::http::form::Form;
use crate::model::User;
use crate::registry::Registry;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

/// The page's offer of `user`'s passkeys for the second factor of what `bound` names:
/// the challenge, the RP ID and the credential ids the browser may use; `None` when
/// the user has no passkey.
pub(crate) fn offer(
    state: &AppState,
    registry: &Registry,
    user: &User,
    bound: &str,
) -> Result<Option<Value>, RngError> {
    if user.passkeys.is_empty() {
        return Ok(None);
    }
    let purpose = Purpose::SecondFactor {
        bound,
        user_id: &user.id,
    };
    let challenge = challenge::issue(state, &purpose, state.clock.now())?;
    let allow: Vec<String> = user
        .passkeys
        .iter()
        .map(|p| B64.encode(&p.credential_id))
        .collect();
    Ok(Some(json!({
        "challenge": challenge,
        "rp_id": registry.passkeys.rp_id,
        "allow": allow.join(","),
    })))
}

/// Checks the posted assertion as `user`'s second factor for what `bound` names, and
/// uses its challenge once: `Ok` when one of the user's passkeys signed it, else the
/// name of the check that failed (for the audit log; the person sees one message).
pub(crate) async fn verify(
    state: &AppState,
    registry: &Registry,
    user: &User,
    form: &Form,
    bound: &str,
) -> Result<(), &'static str> {
    let purpose = Purpose::SecondFactor {
        bound,
        user_id: &user.id,
    };
    let given = form.get("challenge").unwrap_or_default();
    let checked =
        challenge::check(state, &purpose, given, state.clock.now()).map_err(|e| e.name())?;
    let credential_id = field(form, "credential_id")?;
    // The credential must be one of this user's: a passkey of another user is no
    // second factor of this one.
    let passkey = user
        .passkeys
        .iter()
        .find(|p| bool::from(p.credential_id.ct_eq(&credential_id)))
        .ok_or("not_users_credential")?;
    // An authenticator may leave the handle out for a credential it was asked for by
    // id; when it gives one, it must be the listed one.
    let handle = field(form, "user_handle")?;
    if !handle.is_empty() && !bool::from(handle.ct_eq(&passkey.user_handle)) {
        return Err("user_handle");
    }
    assertion::verify(state, registry, (user, passkey), &checked, form, false).await
}
