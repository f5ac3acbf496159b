//! The assertion a passkey form posts (`credential_id`, `user_handle`, `client_data`,
//! `authenticator_data`, `signature`, base64url), verified for one configured passkey:
//! what the passkey login and the passkey second factor share once each has found the
//! passkey the assertion claims to be.

use super::challenge::{self, Checked};
use crate::http::form::Form;
use crate::model::{Passkey, User};
use crate::protocol::webauthn::{self, Expected};
use crate::registry::Registry;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// The form field `name`, decoded (missing is empty), or `malformed`.
pub(crate) fn field(form: &Form, name: &str) -> Result<Vec<u8>, &'static str> {
    B64.decode(form.get(name).unwrap_or_default())
        .map_err(|_| "malformed")
}

/// Verifies the form's assertion as `user`'s `passkey` for the challenge `checked`
/// (the issuer's origin and RP ID, user presence, user verification when
/// `user_verification`, the signature), then uses the challenge once: `Ok`, or the
/// name of the check that failed.
pub(crate) async fn verify(
    state: &AppState,
    registry: &Registry,
    (user, passkey): (&User, &Passkey),
    checked: &Checked,
    form: &Form,
    user_verification: bool,
) -> Result<(), &'static str> {
    let expected = Expected {
        challenge: &checked.raw,
        origin: &registry.passkeys.origin,
        rp_id: &registry.passkeys.rp_id,
        user_verification,
    };
    let asserted = webauthn::verify_assertion(
        &expected,
        &passkey.key,
        &field(form, "client_data")?,
        &field(form, "authenticator_data")?,
        &field(form, "signature")?,
    )
    .map_err(|e| e.name())?;
    challenge::use_once(state, checked)
        .await
        .map_err(|e| e.name())?;
    tracing::debug!(user_id = %user.id, passkey = %passkey.name, sign_count = asserted.sign_count, "passkey assertion verified");
    Ok(())
}
