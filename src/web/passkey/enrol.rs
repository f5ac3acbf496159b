//! `/account/passkeys`: a logged-in user enrols a passkey. The page's script creates a
//! discoverable credential (`residentKey` and `userVerification` required, attestation
//! "none") for a challenge bound to the session and the user handle; the POST verifies
//! the registration (`protocol::webauthn`), uses the challenge once, and answers the
//! TOML lines the operator commits. gatehouse never writes its config.
//!
//! The user handle: the one the user's passkeys already carry (so an authenticator
//! replaces its older credential for this account rather than adding one), else 32
//! random bytes, fresh per enrolment. Random rather than derived from the user id: it
//! says nothing about the user, and a server without a database needs nothing more
//! than the config to find the user by credential id.

use super::challenge::{self, Purpose};
use crate::crypto::{hex, random_bytes, sha256};
use crate::model::{IdentitySource, User};
use crate::protocol::webauthn::{self, CoseAlg, Expected};
use crate::registry::Registry;
use crate::state::AppState;
use crate::web::cookies::{self, Kind};
use crate::web::csrf::Binding;
use crate::web::session::{self, Current};
use crate::web::{page, posted_form};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

/// The longest passkey name kept (characters).
const MAX_NAME: usize = 64;

/// The signed-in local user of this browser, with the session's cookie value; or the
/// page to answer instead.
async fn signed_in<'r>(
    req: &HttpRequest,
    state: &AppState,
    registry: &'r Registry,
) -> Result<(&'r User, Current, String), HttpResponse> {
    let current = session::current(req, state, registry)
        .await
        .map_err(|e| page::unavailable(registry, e))?;
    let cookie = cookies::read(req, registry, Kind::Session);
    let (Some(current), Some(cookie)) = (current, cookie) else {
        return Err(page::error(
            registry,
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Sign in to an application that uses this server, then come back to this page to add a passkey.",
        ));
    };
    let identity = &current.session.identity;
    let user = (identity.source == IdentitySource::Local)
        .then(|| registry.user_by_id(&identity.subject))
        .flatten();
    match user {
        Some(user) => Ok((user, current, cookie)),
        None => Err(page::error(
            registry,
            StatusCode::FORBIDDEN,
            "Passkeys unavailable",
            "Passkeys are for the users listed in this server's configuration; you signed in through another provider.",
        )),
    }
}

/// The session as a challenge binding: the store key of its cookie, in hex.
fn session_binding(current: &Current) -> String {
    hex(&current.key)
}

/// `GET /account/passkeys`.
pub(crate) async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let registry = state.snapshot();
    let (user, current, cookie) = match signed_in(&req, &state, &registry).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let handle = match user.passkeys.first() {
        Some(p) => p.user_handle.clone(),
        None => match random_bytes::<32>() {
            Ok(b) => b.to_vec(),
            Err(e) => return page::unavailable(&registry, e),
        },
    };
    let session = session_binding(&current);
    let purpose = Purpose::Enrol {
        session: &session,
        user_handle: &handle,
    };
    let challenge = match challenge::issue(&state, &purpose, state.clock.now()) {
        Ok(c) => c,
        Err(e) => return page::unavailable(&registry, e),
    };
    let existing: Vec<String> = user
        .passkeys
        .iter()
        .map(|p| B64.encode(&p.credential_id))
        .collect();
    let context = json!({
        "challenge": challenge,
        "rp_id": registry.passkeys.rp_id,
        "user_handle": B64.encode(&handle),
        "user_name": user.username,
        "display_name": user.name.as_deref().unwrap_or(&user.username),
        "algorithms": CoseAlg::IDS.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
        "exclude": existing.join(","),
        "passkeys": user.passkeys.iter().map(|p| &p.name).collect::<Vec<_>>(),
    });
    scripted(page::render_form(
        &req,
        &state,
        &registry,
        "passkeys.html",
        &Binding::Session(cookie),
        context,
        None,
    ))
}

/// A page that runs `/assets/passkey.js`: its CSP allows this server's scripts.
fn scripted(mut response: HttpResponse) -> HttpResponse {
    if let Some(csp) = crate::http::content_security_policy_with_scripts(&[]) {
        response
            .headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// `POST /account/passkeys`: the browser's new credential.
pub(crate) async fn submit(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let registry = state.snapshot();
    let cookie = cookies::read(&req, &registry, Kind::Session).unwrap_or_default();
    let form = match posted_form(&req, &state, &registry, &body, |_| Binding::Session(cookie)) {
        Ok(form) => form,
        Err(page) => return page,
    };
    let (user, current, _) = match signed_in(&req, &state, &registry).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match register(&state, &registry, &form, &current).await {
        Ok((registered, handle)) => {
            let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
            let name: String = name.unwrap_or("Passkey").chars().take(MAX_NAME).collect();
            tracing::info!(event = "passkey_registered", user_id = %user.id, credential = %hex(&sha256(&registered.credential_id)[..8]), format = %registered.format, alg = registered.key.alg().name());
            let toml = toml_lines(user, &name, &registered, &handle);
            let context = json!({"toml": toml, "user_name": user.username});
            scripted(page::render(
                &registry,
                StatusCode::OK,
                "passkey_added.html",
                context,
                None,
            ))
        }
        Err(reason) => {
            tracing::warn!(event = "passkey_refused", reason, user_id = %user.id);
            page::error(
                &registry,
                StatusCode::BAD_REQUEST,
                "Passkey not added",
                "The passkey could not be added. Open this page again and try once more.",
            )
        }
    }
}

/// Verifies the posted registration: the credential and the user handle it was made
/// with, or the name of the check it failed.
async fn register(
    state: &AppState,
    registry: &Registry,
    form: &crate::http::form::Form,
    current: &Current,
) -> Result<(webauthn::Registered, Vec<u8>), &'static str> {
    let decode = |name: &str| {
        B64.decode(form.get(name).unwrap_or_default())
            .map_err(|_| "malformed")
    };
    let handle = decode("user_handle")?;
    let session = session_binding(current);
    let purpose = Purpose::Enrol {
        session: &session,
        user_handle: &handle,
    };
    let given = form.get("challenge").unwrap_or_default();
    let checked =
        challenge::check(state, &purpose, given, state.clock.now()).map_err(|e| e.name())?;
    let expected = Expected {
        challenge: &checked.raw,
        origin: &registry.passkeys.origin,
        rp_id: &registry.passkeys.rp_id,
        user_verification: true,
    };
    let registered = webauthn::verify_registration(
        &expected,
        &decode("client_data")?,
        &decode("attestation_object")?,
    )
    .map_err(|e| e.name())?;
    if registry.passkey(&registered.credential_id).is_some() {
        return Err("already_listed");
    }
    challenge::use_once(state, &checked)
        .await
        .map_err(|e| e.name())?;
    Ok((registered, handle))
}

/// The `passkeys = [...]` line of `user`'s `[[users]]` entry with the new passkey
/// after those listed already.
fn toml_lines(user: &User, name: &str, registered: &webauthn::Registered, handle: &[u8]) -> String {
    let entry = |name: &str, id: &[u8], key: &[u8], handle: &[u8]| {
        format!(
            "  {{ name = {}, credential_id = \"{}\", public_key = \"{}\", user_handle = \"{}\" }},\n",
            toml::Value::String(name.to_owned()),
            B64.encode(id),
            B64.encode(key),
            B64.encode(handle)
        )
    };
    let mut out = String::from("passkeys = [\n");
    for p in &user.passkeys {
        out.push_str(&entry(
            &p.name,
            &p.credential_id,
            &p.public_key,
            &p.user_handle,
        ));
    }
    out.push_str(&entry(
        name,
        &registered.credential_id,
        &registered.public_key,
        handle,
    ));
    out.push(']');
    out
}
